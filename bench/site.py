"""`bench site`: a static, self-contained leaderboard website from results folders.

Opens from file:// offline: no server, no CDN; styles and scripts are inline in every page.
index.html holds the leaderboard (rows = encoders, columns as `bench leaderboard`), sortable
by any column and filterable by task kind and eps; every cell shows its n and links to its
run. One page per encoder (its card, clean vs robust per task, robust accuracy against eps)
and one per run (config, the per-sample records paged, VLM outputs clean vs worst case side by
side, and the examples `bench run --save-examples K` stored).
"""
from __future__ import annotations

import html
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.examples import EXAMPLES
from bench.leaderboard import ACCURACY, accuracy_table, cell_samples, load_samples, task_column, threat_label
from bench.runner import slug
from bench.store import finished_runs, no_finished_runs


@dataclass
class Run:
    folder: Path
    config: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def slug(self) -> str:
        return self.folder.name

    @property
    def column_task(self) -> str:  # the leaderboard's task key ("tiny-llava:tiny-vqa" for VLM runs)
        return task_column(self.config)


@dataclass(frozen=True)
class Column:
    name: str  # as in bench leaderboard's table
    eps_label: str  # the column's threat ("clean", "Linf 4/255", bench.leaderboard.threat_label)
    task: str | None  # None: the zero-shot average
    kind: str  # "classification" | "average" | "captioning" | "vqa"


def read_runs(results: list[Path]) -> list[Run]:
    runs = [Run(path, config, records) for path, config, records in finished_runs(results)]
    if not runs:
        raise no_finished_runs(results)
    return runs


def columns(table: pd.DataFrame, samples: pd.DataFrame) -> list[Column]:
    """The leaderboard's value columns with what each one holds."""
    metric = samples.groupby("task")["metric"].first()
    kind_of = {t: "classification" if metric[t] == ACCURACY else ("captioning" if metric[t] == "CIDEr" else "vqa")
               for t in metric.index}
    threats = sorted(set(samples["threat"]), key=len, reverse=True)  # the longest suffix matches first
    out = []
    for name in table.columns:
        if name.endswith((" lo", " hi", " n")):
            continue
        label = next((t for t in threats if name.endswith(" " + t)), None)
        if label is None:
            continue
        head = name[: -len(label) - 1]
        if head == "avg":
            out.append(Column(name, label, None, "average"))
            continue
        task = next(t for t in metric.index if head == t or head == f"{t} {metric[t]}")
        out.append(Column(name, label, task, kind_of[task]))
    return out


def site_command(results: list[Path], out: Path, data_root: str | None = None) -> Path:
    runs = read_runs(results)
    samples = load_samples(results)
    table = accuracy_table(samples, ci=True, data_root=data_root)
    cells, _ = cell_samples(samples)
    cols = columns(table, samples)
    run_of: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        if run.config.get("target"):
            continue
        run_of.setdefault((run.config["encoder"], run.column_task, threat_label(run.config)), []).append(run)
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("runs", "encoders"):
        (out / sub).mkdir(exist_ok=True)
    write_index(out, table, cells, cols, run_of)
    for encoder in table.index:
        write_encoder_page(out, encoder, table, cols, [r for r in runs if r.config["encoder"] == encoder], samples)
    for run in runs:
        write_run_page(out, run)
    print(f"wrote {out / 'index.html'} ({len(table.index)} encoders, {len(runs)} runs)")
    return out / "index.html"


# --- pages ---------------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;max-width:1400px}
a{color:#1f5fbf;text-decoration:none}a:hover{text-decoration:underline}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 8px}.muted{color:#6a7385;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #dde2ea;padding:4px 7px;text-align:right;white-space:nowrap}
th{background:#f3f5f9;cursor:pointer;user-select:none;position:sticky;top:0}
td.name,th.name{text-align:left}td.text{text-align:left;white-space:normal;max-width:520px;word-break:break-word}
tr:nth-child(even) td{background:#fafbfd}.n{color:#8a93a3;font-size:11px;margin-left:3px}
.filters{display:flex;gap:18px;flex-wrap:wrap;margin:10px 0;font-size:13px}
.filters label{margin-right:8px}.pager{margin:6px 0;font-size:13px}.pager button{margin:0 4px}
pre{background:#f6f8fa;padding:10px;overflow:auto;font-size:12px;max-height:420px}
.thumbs{display:flex;flex-wrap:wrap;gap:14px}.thumbs figure{margin:0;font-size:11px;text-align:center}
.wide{overflow-x:auto}th .eps{color:#1f5fbf;font-weight:normal}th{vertical-align:bottom}
.thumbs img{width:96px;height:96px;image-rendering:pixelated;border:1px solid #dde2ea}
"""

SORT_SCRIPT = """
function sortTable(th){const table=th.closest('table');const idx=[...th.parentNode.children].indexOf(th);
const asc=th.dataset.order!=='asc';th.parentNode.querySelectorAll('th').forEach(h=>delete h.dataset.order);
th.dataset.order=asc?'asc':'desc';const body=table.tBodies[0];const rows=[...body.rows];
const key=r=>{const c=r.cells[idx];const v=c.dataset.value;return v===undefined?c.textContent.trim():parseFloat(v)};
rows.sort((a,b)=>{const x=key(a),y=key(b);if(typeof x==='number'&&typeof y==='number'){
const nx=isNaN(x)?-Infinity:x,ny=isNaN(y)?-Infinity:y;return asc?nx-ny:ny-nx}
return asc?String(x).localeCompare(String(y)):String(y).localeCompare(String(x))});
rows.forEach(r=>body.appendChild(r))}
document.querySelectorAll('th.sortable').forEach(th=>th.addEventListener('click',()=>sortTable(th)));
"""

FILTER_SCRIPT = """
function applyFilters(){const kinds=new Set([...document.querySelectorAll('input.kind:checked')].map(i=>i.value));
const eps=new Set([...document.querySelectorAll('input.eps:checked')].map(i=>i.value));
document.querySelectorAll('[data-kind]').forEach(c=>{c.style.display=
(kinds.has(c.dataset.kind)&&eps.has(c.dataset.eps))?'':'none'})}
document.querySelectorAll('input.kind,input.eps').forEach(i=>i.addEventListener('change',applyFilters));
"""

PAGER_SCRIPT = """
const records=JSON.parse(document.getElementById('records').textContent);
const fields=JSON.parse(document.getElementById('fields').textContent);let page=0;const size=50;
function show(){const body=document.querySelector('#samples tbody');body.innerHTML='';
for(const r of records.slice(page*size,(page+1)*size)){const tr=document.createElement('tr');
for(const f of fields){const td=document.createElement('td');const v=r[f];
td.textContent=(v===undefined||v===null)?'':(typeof v==='number'?(Number.isInteger(v)?v:v.toFixed(4)):String(v));
if(typeof v==='string'&&v.length>12)td.className='text';if(f==='id')td.className='name';tr.appendChild(td)}
body.appendChild(tr)}document.getElementById('page').textContent=
`samples ${page*size+1}-${Math.min((page+1)*size,records.length)} of ${records.length}`}
document.getElementById('prev').onclick=()=>{if(page>0){page--;show()}};
document.getElementById('next').onclick=()=>{if((page+1)*size<records.length){page++;show()}};show();
"""


def page(title: str, body: str, script: str = "", depth: int = 0) -> str:
    home = "../" * depth + "index.html"
    nav = "" if depth == 0 else f'<p class="muted"><a href="{home}">&larr; leaderboard</a></p>'
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{nav}{body}<script>{script}</script></body></html>\n")


def _fmt(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else f"{value:.1f}"


def write_index(out: Path, table: pd.DataFrame, cells: dict, cols: list[Column],
                run_of: dict[tuple[str, str, str], list[Run]]) -> None:
    kinds = list(dict.fromkeys(c.kind for c in cols))
    eps = list(dict.fromkeys(c.eps_label for c in cols))
    filters = ('<div class="filters"><div><b>task kind</b> ' + "".join(
        f'<label><input type="checkbox" class="kind" value="{k}" checked> {k}</label>' for k in kinds)
        + '</div><div><b>eps</b> ' + "".join(
        f'<label><input type="checkbox" class="eps" value="{html.escape(e)}" checked> {html.escape(e)}</label>'
        for e in eps) + "</div></div>")
    head = '<tr><th class="name sortable">encoder</th>' + "".join(
        f'<th class="sortable" data-kind="{c.kind}" data-eps="{html.escape(c.eps_label)}" '
        f'title="{html.escape(c.name)}">'
        f'{html.escape(c.name.rsplit(" ", 1)[0]).replace(":", ":<br>")}<br><span class="eps">{html.escape(c.eps_label)}'
        "</span></th>" for c in cols) + "</tr>"
    rows = []
    for encoder in table.index:
        tds = [f'<td class="name"><a href="encoders/{slug(encoder)}.html">{html.escape(encoder)}</a></td>']
        for c in cols:
            value = table.loc[encoder, c.name]
            attrs = f'data-kind="{c.kind}" data-eps="{html.escape(c.eps_label)}" data-value="{_fmt(value) or "nan"}"'
            if c.task is None:
                tds.append(f'<td {attrs} title="mean over the zero-shot datasets but ImageNet">{_fmt(value)}</td>')
                continue
            scores = cells.get((c.eps_label, c.task, encoder))
            n = 0 if scores is None else len(scores)
            title, low = "", f"{c.name} lo"
            if low in table.columns and not pd.isna(table.loc[encoder, low]):
                high = table.loc[encoder, f"{c.name} hi"]
                title = f' title="95% interval {table.loc[encoder, low]:.1f}-{high:.1f}"'
            linked = run_of.get((encoder, c.task, c.eps_label), [])
            text = _fmt(value)
            if linked and text:
                text = f'<a href="runs/{linked[0].slug}.html">{text}</a>'
            tds.append(f'<td {attrs}{title}>{text}<span class="n">n={n}</span></td>')
        rows.append("<tr>" + "".join(tds) + "</tr>")
    body = ("<h1>robust-vlm-bench leaderboard</h1><p class=\"muted\">Zero-shot accuracy %, CIDEr and VQA accuracy %; "
            "a robust cell is each sample's worst case over every attack run at that eps (L-inf). Click a column to "
            "sort; hover a cell for its 95% interval; a number opens its run.</p>" + filters
            + f'<div class="wide"><table id="leaderboard"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
            "</div>")
    (out / "index.html").write_text(page("robust-vlm-bench leaderboard", body, SORT_SCRIPT + FILTER_SCRIPT))


def training_card(provenance: dict[str, Any]) -> dict[str, Any] | None:
    """The card `bench train` wrote for the encoder's weights, where there is one."""
    from bench.encoders.load import TINY_WEIGHTS

    found = None
    for part in str(provenance.get("source", "")).split(" + "):
        part = part.strip()
        candidates = ([TINY_WEIGHTS / f"{part.removeprefix('tiny:')}.json"] if part.startswith("tiny:")
                      else [Path(part).with_name("card.json"), Path(part).with_suffix(".json")])
        for path in candidates:
            if path.is_file():
                try:
                    found = json.loads(path.read_text())
                except (OSError, json.JSONDecodeError):
                    continue
    return found


def robust_plot_svg(table: pd.DataFrame, encoder: str, cols: list[Column], samples: pd.DataFrame) -> str:
    import matplotlib
    import matplotlib.pyplot as plt

    from bench.plotting import eps_figure, eps_in_255, label_eps_axes, on_eps_axis

    radius = eps_in_255(samples)
    fig, ax = eps_figure((5.5, 3.4))
    tasks = list(dict.fromkeys(c.task or "avg" for c in cols if c.kind in ("classification", "average")))
    for task in tasks:
        points = [(radius[c.eps_label], table.loc[encoder, c.name]) for c in cols
                  if (c.task or "avg") == task and c.kind in ("classification", "average") and on_eps_axis(c.eps_label)]
        points = [(x, y) for x, y in points if not pd.isna(y)]
        if points:
            ax.plot(*zip(*sorted(points)), marker="o", label=task, linewidth=2.5 if task == "avg" else 1.2)
    label_eps_axes(ax, "accuracy %")
    if tasks:
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "bench-site"}):  # the same ids every time: pages reproduce
        fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    return buf.getvalue().split("?>", 1)[-1]  # inline SVG without the XML declaration


def write_encoder_page(out: Path, encoder: str, table: pd.DataFrame, cols: list[Column], runs: list[Run],
                       samples: pd.DataFrame) -> None:
    provenance = runs[0].config.get("provenance", {}) if runs else {}
    card = training_card(provenance)
    facts = {"source": provenance.get("source"), "architecture": provenance.get("architecture"),
             "sha256": provenance.get("sha256")}
    if card:
        facts |= {"training method": card.get("method"), "training eps": card.get("eps_label", card.get("eps")),
                  "command": card.get("command")}
    rows = "".join(f"<tr><th class=\"name\">{html.escape(k)}</th><td class=\"text\">{html.escape(str(v))}</td></tr>"
                   for k, v in facts.items() if v is not None)
    per_task = []
    for c in cols:
        if c.task is None or c.eps_label == "clean":
            continue
        clean = next((x for x in cols if x.task == c.task and x.eps_label == "clean"), None)
        per_task.append(f"<tr><td class=\"name\">{html.escape(c.task)}</td><td>{html.escape(c.eps_label)}</td>"
                        f"<td>{_fmt(table.loc[encoder, clean.name]) if clean else ''}</td>"
                        f"<td>{_fmt(table.loc[encoder, c.name])}</td></tr>")
    run_links = "".join(f'<li><a href="../runs/{r.slug}.html">{html.escape(r.slug)}</a></li>' for r in runs)
    recipe = (f"<h2>training recipe</h2><pre>{html.escape(json.dumps(card.get('recipe'), indent=1))}</pre>"
              if card and card.get("recipe") else "")
    body = (f"<h1>{html.escape(encoder)}</h1><h2>card</h2><table>{rows}</table>{recipe}"
            "<h2>clean vs robust</h2><table><thead><tr><th class=\"name sortable\">task</th><th class=\"sortable\">"
            "eps</th><th class=\"sortable\">clean</th><th class=\"sortable\">robust</th></tr></thead>"
            f"<tbody>{''.join(per_task)}</tbody></table><h2>robust accuracy against eps</h2>"
            f"<div class=\"plot\">{robust_plot_svg(table, encoder, cols, samples)}</div>"
            f"<h2>runs</h2><ul>{run_links}</ul>")
    (out / "encoders" / f"{slug(encoder)}.html").write_text(page(encoder, body, SORT_SCRIPT, depth=1))


CONFIG_FIELDS = ("encoder", "task", "vlm", "attack", "attack_members", "eps_label", "norm", "steps", "seed",
                 "n_samples", "batch_size", "protocol", "precision", "task_settings", "attack_args", "sha256",
                 "git_commit", "device", "versions", "command")


def write_run_page(out: Path, run: Run) -> None:
    config = run.config
    rows = "".join(f"<tr><th class=\"name\">{k}</th><td class=\"text\">{html.escape(_show(config.get(k)))}</td></tr>"
                   for k in CONFIG_FIELDS if config.get(k) not in (None, {}, []))
    first = ["id", "clean_score", "adv_score", "winner", "linf", "l2"]
    extra = sorted({k for r in run.records for k in r} - set(first))
    if "clean_output" in extra:  # VLM runs: the outputs side by side
        extra = ["clean_output", "adv_output", *[k for k in extra if k not in ("clean_output", "adv_output")]]
    fields = first + extra
    head = "".join(f"<th>{html.escape(f)}</th>" for f in fields)
    thumbs = _examples(out, run)
    body = (f"<h1>{html.escape(run.slug)}</h1><p class=\"muted\">{len(run.records)} samples &middot; "
            f"{html.escape(str(config.get('metric', '')))}</p><h2>config</h2><table>{rows}</table>{thumbs}"
            "<h2>per sample</h2><div class=\"pager\"><button id=\"prev\">&larr;</button><span id=\"page\"></span>"
            f"<button id=\"next\">&rarr;</button></div><table id=\"samples\"><thead><tr>{head}</tr></thead>"
            "<tbody></tbody></table>"
            f"<script type=\"application/json\" id=\"records\">{_json_script(run.records)}</script>"
            f"<script type=\"application/json\" id=\"fields\">{_json_script(fields)}</script>")
    (out / "runs" / f"{run.slug}.html").write_text(page(run.slug, body, PAGER_SCRIPT, depth=1))


def _examples(out: Path, run: Run) -> str:
    """Thumbnails the run stored (bench run --save-examples): clean, adversarial, amplified perturbation."""
    folder = run.folder / EXAMPLES
    if not folder.is_dir():
        return ""
    target = out / "runs" / run.slug
    target.mkdir(parents=True, exist_ok=True)
    figures = []
    for clean in sorted(folder.glob("*_clean.png")):
        stem = clean.name.removesuffix("_clean.png")
        parts = []
        for kind in ("clean", "adv", "delta"):
            source = folder / f"{stem}_{kind}.png"
            if source.is_file():
                shutil.copyfile(source, target / source.name)
                parts.append(f'<figure><img src="{run.slug}/{source.name}" alt="{kind}"><figcaption>{kind}'
                             "</figcaption></figure>")
        figures.append("".join(parts))
    return ("<h2>examples</h2><p class=\"muted\">clean, adversarial, and the perturbation amplified to the full "
            f"range</p><div class=\"thumbs\">{''.join(figures)}</div>")


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _json_script(value: Any) -> str:
    return json.dumps(value).replace("</", "<\\/")  # safe inside <script>


"""`bench site`: a static, self-contained leaderboard website from results folders.

Opens from file:// offline: no server, no CDN; styles and scripts are inline in every page.
index.html holds the leaderboard: a tab per threat (norm and eps), its rows ranked by the
robust average (bench.report.site_index), then the clean and robust averages, what each encoder
is (architecture, training method and eps, source: bench.report.encoder_facts) and the clean and
robust number of every task at that threat, each with its n and a link to its run. A search box
filters the rows; tables sort by any column; encoders a `bench audit` report warned about carry a
flag (bench site --audit: bench.report.site_audit). One page per encoder (its card, clean vs robust
per task, robust accuracy against eps) and one per run (config, the per-sample records paged with
class names where the task is here (bench.report.site_classes), VLM outputs clean vs worst case
side by side, and the examples `bench run --save-examples K` stored).

Every string on a page is someone's: run folders, encoder, task and class names, configs,
captions come from results folders shared between labs. So the pages are Jinja2 templates
(bench/site_templates) rendered with autoescape: a value is HTML-escaped where it enters the
page, in text and attributes alike; links percent-encode it as a path segment first (`segment`),
and the JSON the run pages carry is made unable to end its <script> element (`script_json`).
"""
from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from bench.report.encoder_facts import EncoderFacts, encoder_facts
from bench.report.leaderboard import ACCURACY, accuracy_table, cell_samples, load_samples, task_column, threat_label
from bench.report.site_audit import Audits, AuditWarning, read_audits
from bench.report.site_classes import ClassNameResolver, ClassNames
from bench.report.site_index import (
    CLEAN,
    Row,
    Tab,
    competition_ranks,
    has_numbers,
    order_rows,
    ranking_column,
    task_pairs,
    threats_in_order,
)
from bench.run.examples import EXAMPLES
from bench.run.runner import slug
from bench.run.store import finished_runs, no_finished_runs
from benchutil.errors import BenchError
from benchutil.fileio import atomic_write, atomic_write_text

TEMPLATES = Path(__file__).with_name("site_templates")


@dataclass
class Run:
    folder: Path
    config: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def slug(self) -> str:
        """The run folder's name, which names its page and its examples folder under runs/. Taken
        from the absolute path: a results path like "." or "runs/.." would otherwise give "" or
        "..", and its examples would be copied outside runs/ (or outside --out)."""
        return Path(os.path.abspath(self.folder)).name or "run"

    @property
    def column_task(self) -> str:  # the leaderboard's task key ("tiny-llava:tiny-vqa" for VLM runs)
        return task_column(self.config)


@dataclass(frozen=True)
class Column:
    name: str  # as in bench leaderboard's table
    eps_label: str  # the column's threat ("clean", "Linf 4/255", bench.report.leaderboard.threat_label)
    task: str | None  # None: the zero-shot average
    kind: str  # "classification" | "average" | "captioning" | "retrieval" | "hallucination" | ... | "vqa"

    @property
    def head(self) -> str:  # the name without its threat: "tiny-shape", "tiny-llava:tiny-vqa VQA acc", "avg"
        return self.name[: -len(self.eps_label) - 1]


@dataclass(frozen=True)
class IndexCell:
    kind: str  # its task's kind (filter.js hides a kind's cells), "average" for the averages
    side: str  # "clean" | "robust"
    value: str  # data-value, what the sort script compares ("nan" for an empty cell)
    text: str
    title: str | None = None
    n: int | None = None  # the number of samples; None for an average
    run: str | None = None  # the slug of the run the number links to


def read_runs(results: list[Path]) -> list[Run]:
    runs = [Run(path, config, records) for path, config, records in finished_runs(results)]
    if not runs:
        raise no_finished_runs(results)
    return runs


# The task kind a column's metric names (anything else answers questions: VQA accuracy, ...).
KIND_OF_METRIC = {"CIDEr": "captioning", "image-to-text R@1 %": "retrieval", "F1": "hallucination",
                  "IMG acc": "multiple choice"}


def columns(table: pd.DataFrame, samples: pd.DataFrame) -> list[Column]:
    """The leaderboard's value columns with what each one holds."""
    metric = samples.groupby("task")["metric"].first()
    kind_of = {t: "classification" if metric[t] == ACCURACY else KIND_OF_METRIC.get(metric[t], "vqa")
               for t in metric.index}
    # The longest suffix matches first. "clean" always: an attacked run's clean scores make the clean
    # columns even where no eps=0 run was made.
    threats = sorted(set(samples["threat"]) | {"clean"}, key=len, reverse=True)
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


def site_command(results: list[Path], out: Path, data_root: str | None = None, audit: list[Path] | None = None) -> Path:
    """audit: `bench audit` reports whose warnings flag encoders. Only the reports given: a report
    found beside the results may describe older runs (it records no weights digest to tell)."""
    audits = read_audits(audit) if audit else None  # a bad report fails before the slow part
    runs = read_runs(results)
    samples = load_samples(results)
    table = accuracy_table(samples, ci=True, data_root=data_root)
    cells, eps_of = cell_samples(samples)
    cols = columns(table, samples)
    facts = {encoder: encoder_facts(encoder, _provenance(runs, encoder)) for encoder in table.index}
    run_of: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        if not run.config.get("target"):
            run_of.setdefault((run.config["encoder"], run.column_task, threat_label(run.config)), []).append(run)
    # Everything is rendered before the first file is written: a page that fails leaves --out as it was.
    pages = {Path("index.html"): index_page(table, cells, cols, run_of, eps_of, facts, audits)}
    for encoder in table.index:
        encoder_runs = [r for r in runs if r.config["encoder"] == encoder]
        warnings = audits.warnings.get(encoder, []) if audits else []
        pages[Path("encoders", f"{slug(encoder)}.html")] = encoder_page(encoder, table, cols, encoder_runs, samples,
                                                                         facts[encoder], warnings)
    images: dict[Path, Path] = {}
    classes = ClassNameResolver(data_root)
    for run in runs:
        shown = examples(run)
        pages[Path("runs", f"{run.slug}.html")] = run_page(run, shown, classes.of_run(run.config, run.records))
        images |= {Path("runs", run.slug, source.name): source for source in shown or []}
    write_site(out, pages, images)
    print(f"wrote {out / 'index.html'} ({len(table.index)} encoders, {len(runs)} runs)")
    return out / "index.html"


def _provenance(runs: list[Run], encoder: str) -> dict[str, Any]:
    provenance = next((r.config.get("provenance") for r in runs if r.config["encoder"] == encoder), None)
    return provenance if isinstance(provenance, dict) else {}


def write_site(out: Path, pages: dict[Path, str], images: dict[Path, Path]) -> None:
    """Pages and copied example images (paths relative to out), each file replaced atomically;
    every path is checked before the first write."""
    for relative in [*pages, *images]:
        if relative.is_absolute() or ".." in relative.parts:
            raise BenchError(f"bench site would write {relative} outside {out}; rename that run folder")
    for sub in ("runs", "encoders"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for relative, text in pages.items():
        atomic_write_text(out / relative, text)
    for relative, source in images.items():
        (out / relative).parent.mkdir(exist_ok=True)
        atomic_write(out / relative, lambda tmp, source=source: shutil.copyfile(source, tmp))


# --- rendering -----------------------------------------------------------------------------

_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                              "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(value: Any) -> Markup:
    """JSON for a <script type="application/json"> element. Its content is raw text (the browser
    decodes no entities there), so HTML escaping would corrupt it; instead no '<', '>' or '&' is
    left, and so no value can close the element (</script>) or open a comment (<!--):
    JSON.parse reads \\u003c back as '<'. (U+2028/2029 end a line in older JavaScript.)"""
    return Markup(json.dumps(value).translate(_SCRIPT_SAFE))


def segment(value: str) -> str:
    """A name as one URL path segment: '/', '?', '#', '%', ':' and the rest percent-encoded, so
    a folder name is never read as a scheme (javascript:), a query or another folder."""
    return quote(str(value), safe="")


@cache
def environment() -> Environment:
    """Autoescape on for every template: each {{ value }} is HTML-escaped unless it is Markup,
    which only script_json and the plot (matplotlib escapes the SVG's text) make."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, keep_trailing_newline=True,
                      undefined=StrictUndefined)
    env.filters |= {"segment": segment, "script_json": script_json}
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def _fmt(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else f"{value:.1f}"


def index_page(table: pd.DataFrame, cells: dict, cols: list[Column], run_of: dict[tuple[str, str, str], list[Run]],
               eps_of: dict[str, float], facts: dict[str, EncoderFacts], audits: Audits | None) -> str:
    flagged = [e for e in table.index if audits is not None and e in audits.warnings]
    notes = {encoder: i + 1 for i, encoder in enumerate(flagged)}  # the footnote each flag links to
    tabs = []
    for i, threat in enumerate(threats_in_order(cols, eps_of)):
        ranked_by = ranking_column(cols, threat)
        clean_average = None if threat == CLEAN else next(
            (c for c in cols if c.eps_label == CLEAN and c.head == ranked_by.head), None)
        tab = Tab(threat, i, ranked_by, clean_average, task_pairs(cols, threat), [])
        encoders = [e for e in table.index if has_numbers(table, e, [c for c in cols if c.eps_label == threat])]
        ranks = competition_ranks([float(table.loc[e, ranked_by.name]) for e in encoders])
        sides = [(CLEAN, "clean")] if threat == CLEAN else [(CLEAN, "clean"), ("robust", "robust")]
        for rank, encoder in zip(ranks, encoders):
            cell = partial(_index_cell, table, cells, run_of, encoder)
            tab.rows.append(Row(
                rank, encoder, slug(encoder), facts[encoder], audits.warnings.get(encoder, []) if audits else [],
                notes.get(encoder), cell(clean_average, CLEAN) if clean_average else None,
                cell(ranked_by, "robust" if threat != CLEAN else CLEAN),
                [cell(getattr(pair, attribute), side, pair.kind) for pair in tab.pairs for side, attribute in sides]))
        tab.rows = order_rows(tab.rows, table, tab)
        tabs.append(tab)
    kinds = list(dict.fromkeys(pair.kind for tab in tabs for pair in tab.pairs))
    return render("index.html", title="robust-vlm-bench leaderboard", home=None, tabs=tabs, kinds=kinds,
                  sides=[CLEAN] if tabs[0].threat == CLEAN else [CLEAN, "robust"], audits=audits,
                  notes=[(notes[e], e, audits.warnings[e]) for e in flagged] if audits is not None else [])


def _index_cell(table: pd.DataFrame, cells: dict, run_of: dict[tuple[str, str, str], list[Run]], encoder: str,
                c: Column | None, side: str, kind: str = "average") -> IndexCell:
    """One number of the index: its text, what sort.js compares, its 95% interval, n and run."""
    if c is None:  # a task without a column on this side: an empty cell keeps the columns aligned
        return IndexCell(kind, side, "nan", "")
    text = _fmt(table.loc[encoder, c.name])
    if c.task is None:
        return IndexCell(c.kind, side, text or "nan", text, "mean over the zero-shot datasets but ImageNet")
    scores = cells.get((c.eps_label, c.task, encoder))
    title, low = None, f"{c.name} lo"
    if low in table.columns and not pd.isna(table.loc[encoder, low]):
        title = f"95% interval {table.loc[encoder, low]:.1f}-{table.loc[encoder, f'{c.name} hi']:.1f}"
    linked = run_of.get((encoder, c.task, c.eps_label), [])
    return IndexCell(c.kind, side, text or "nan", text, title, 0 if scores is None else len(scores),
                     linked[0].slug if linked and text else None)


def robust_plot_svg(table: pd.DataFrame, encoder: str, cols: list[Column], samples: pd.DataFrame) -> Markup:
    """The inline SVG; Markup, because matplotlib escapes every text it writes into it (the legend's
    task names: element text and the <!-- --> comment beside each glyph run)."""
    import matplotlib
    import matplotlib.pyplot as plt

    from bench.report.plotting import eps_figure, eps_in_255, label_eps_axes, on_eps_axis

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
    return Markup(buf.getvalue().split("?>", 1)[-1])  # inline SVG without the XML declaration


def encoder_page(encoder: str, table: pd.DataFrame, cols: list[Column], runs: list[Run],
                 samples: pd.DataFrame, known: EncoderFacts, warnings: list[AuditWarning] | None = None) -> str:
    card = known.card
    facts = {"source": known.source, "architecture": known.architecture, "sha256": known.sha256,
             "training method": known.method,
             "training eps": known.training_eps or (card.get("eps") if card else None),
             "command": card.get("command") if card else None}
    per_task = []
    for c in cols:
        if c.task is None or c.eps_label == "clean":
            continue
        clean = next((x for x in cols if x.task == c.task and x.eps_label == "clean"), None)
        per_task.append({"task": c.task, "eps": c.eps_label, "robust": _fmt(table.loc[encoder, c.name]),
                         "clean": _fmt(table.loc[encoder, clean.name]) if clean else ""})
    recipe = json.dumps(card.get("recipe"), indent=1) if card and card.get("recipe") else None
    return render("encoder.html", title=encoder, home="../index.html", encoder=encoder,
                  facts=[(k, str(v)) for k, v in facts.items() if v is not None], recipe=recipe, per_task=per_task,
                  plot=robust_plot_svg(table, encoder, cols, samples), runs=[r.slug for r in runs],
                  warnings=warnings or [])


CONFIG_FIELDS = ("encoder", "task", "vlm", "attack", "attack_members", "eps_label", "norm", "steps", "seed",
                 "n_samples", "batch_size", "protocol", "precision", "task_settings", "attack_args", "sha256",
                 "git_commit", "device", "versions", "command")


def run_page(run: Run, shown: list[Path] | None, classes: ClassNames | None = None) -> str:
    """The run's page; `shown`: the example images it shows (None: the run stored none); `classes`:
    the names of the class indices its records hold (None: the indices are shown)."""
    first = ["id", "clean_score", "adv_score", "winner", "linf", "l2"]
    extra = sorted({k for r in run.records for k in r} - set(first))
    if "clean_output" in extra:  # VLM runs: the outputs side by side
        extra = ["clean_output", "adv_output", *[k for k in extra if k not in ("clean_output", "adv_output")]]
    config = [(k, _show(run.config.get(k))) for k in CONFIG_FIELDS if run.config.get(k) not in (None, {}, [])]
    images = None if shown is None else [{"file": p.name, "kind": p.stem.rsplit("_", 1)[1]} for p in shown]
    return render("run.html", title=run.slug, home="../index.html", slug=run.slug, n_samples=len(run.records),
                  metric=str(run.config.get("metric", "")), config=config, examples=images, fields=first + extra,
                  records=run.records, classes=classes)


def examples(run: Run) -> list[Path] | None:
    """The thumbnails the run stored (bench run --save-examples), per sample clean, adversarial and
    the perturbation amplified to the full range; None where it stored none."""
    folder = run.folder / EXAMPLES
    if not folder.is_dir():
        return None
    found = []
    for clean in sorted(folder.glob("*_clean.png")):
        stem = clean.name.removesuffix("_clean.png")
        found += [p for p in (folder / f"{stem}_{kind}.png" for kind in ("clean", "adv", "delta")) if p.is_file()]
    return found


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)

"""All runs under results directories -> the papers' tables and the robust-accuracy plot.

Cells are mean scores over the samples all runs of the cell share: accuracy % for
zero-shot classification, CIDEr or VQA accuracy % for a VLM's captioning / VQA (columns
'VLM:task METRIC threat', as the papers' 'LLaVA COCO' columns). A cell's key holds every
property that changes what its number means: the task (with its VQA metric variant), and the
threat (norm and eps, and the precision and protocol the attack ran with where they are not
the defaults: 'tiny-shape Linf 4/255', 'coco CIDEr Linf 4/255 robustvlm'). A robust cell is
the per-sample worst case (lowest score) over every attack run under that threat; targeted
VLM runs answer another question (did the output contain the target?) and stay out of the
table. An average over tasks is printed only where every task of it has a cell ('-' marks
one that misses a task). A task kind whose runs name a cell aggregate (tasks/cell_aggregates.py:
POPE's mean F1 over its splits) gets that aggregate of the same per-sample scores instead of
their mean (bench.report.cell_values).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.report.cell_values import AGGREGATE_COLUMN, CellValues
from bench.report.intervals import Cell, CellIntervals
from bench.run.eps import NORM_LABELS, eps_label
from bench.run.store import finished_runs, no_finished_runs
from benchutil.errors import BenchError, require_known
from benchutil.fileio import atomic_write, atomic_write_text, disk_errors
from tasks.cell_aggregates import aggregate_of, record_facts
from tasks.protocols import VLM_PROTOCOLS
from tasks.text_threat import LEVENSHTEIN

ACCURACY = "accuracy %"
# The papers average zero-shot accuracy over CLIP_benchmark's 13 datasets; ImageNet is a
# column of its own, outside the average.
OUTSIDE_AVERAGE = frozenset({"imagenet1k", "imagenet"})


DEFAULT_PRECISION, DEFAULT_PROTOCOL, PROTOCOLS = "fp32", "strict", VLM_PROTOCOLS


def task_column(config: dict) -> str:
    """The leaderboard's task key of a run: its task, behind the VLM for VLM runs ("tiny-llava:tiny-vqa"),
    with the VQA evaluator where the run recorded one ("tiny-llava:tiny-vqa (official-2017)"): two
    evaluators score the same answers differently. Likewise a CLIP_benchmark sample order other than the
    default, which runs record ("vtab/cifar10 (dvd)"): another set of samples."""
    key = ":".join(part for part in (config.get("vlm"), config["task"]) if part)
    settings = config.get("task_settings") or {}
    variant = settings.get("vqa_metric") or settings.get("sample_order")
    return f"{key} ({variant})" if variant else key


def base_task(column: str) -> str:
    """A task column without its variant (VQA evaluator, sample order): 'llava-1.5-7b:vqav2
    (openflamingo)' -> 'llava-1.5-7b:vqav2', 'imagenet1k (dvd)' -> 'imagenet1k'."""
    return column.split(" (", 1)[0]


def threat_label(config: dict) -> str:
    """The leaderboard's threat key of a run: "clean", or the norm and eps ("Linf 4/255"; a text run's
    character budget: "Lev k=1"), followed by
    the precision and protocol the attack ran with where they are not the defaults (a bf16 attack or
    RobustVLM's protocol with its early stops is another attacker: "Linf 4/255 bf16 robustvlm")."""
    if config["eps"] == 0:
        return "clean"
    if config["norm"] == LEVENSHTEIN:  # k character edits of a sentence: "Lev k=1", never a pixel column
        parts = [f"{NORM_LABELS[LEVENSHTEIN]} k={int(config['eps'])}"]
    else:
        parts = [NORM_LABELS.get(config["norm"], config["norm"]), eps_label(config["eps"])]
    if (config.get("precision") or DEFAULT_PRECISION) != DEFAULT_PRECISION:
        parts.append(config["precision"])
    protocol = config.get("protocol") or DEFAULT_PROTOCOL
    if protocol != DEFAULT_PROTOCOL:  # runs older than --protocol recorded a description instead of a name
        parts.append(protocol if protocol in PROTOCOLS else "legacy-protocol")
    if config.get("early_stop") is not None and protocol != "robustvlm":  # robustvlm implies its early stops
        parts.append(f"early-stop {config['early_stop']:g}")
    return " ".join(parts)


def _scores(config: dict, records: list[dict]) -> pd.DataFrame:
    """The record core of one run: per sample, clean and adversarial score in the task's metric
    (and, for VLMs, the outputs they score)."""
    frame = pd.DataFrame(records)
    column = task_column(config)
    outputs = [c for c in ("clean_output", "adv_output") if c in frame]  # VLM runs: the text behind the score
    aggregate = aggregate_of(config.get("task_settings"))
    if aggregate is None:
        return frame[["id", *outputs]].assign(clean=frame["clean_score"], adv=frame["adv_score"],
                                              metric=config["metric"], task=column)
    # A cell aggregate reads record fields beside the score (POPE: each sample's label and split).
    facts = record_facts(records, aggregate, f"run {config['task']} of {config['encoder']}")
    return frame[["id", *outputs]].assign(clean=frame["clean_score"], adv=frame["adv_score"],
                                          metric=config["metric"], task=column, **facts,
                                          **{AGGREGATE_COLUMN: aggregate.name})


def load_samples(results: Path | list[Path]) -> pd.DataFrame:
    """One row per (run, sample): encoder, task, attack, eps, eps_label, norm, threat, id, metric, clean and
    adv score; the runs of one results folder or of several (e.g. a zoo's and an ablation's)."""
    folders = [results] if isinstance(results, Path) else results
    frames = []
    for _, config, records in finished_runs(folders):
        if config.get("target"):
            continue
        frame = _scores(config, records)
        for key in ("encoder", "attack", "eps", "eps_label", "norm"):
            frame[key] = config[key]
        frame["threat"] = threat_label(config)
        frames.append(frame)
    if not frames:
        raise no_finished_runs(folders)
    return pd.concat(frames, ignore_index=True)


def cell_samples(samples: pd.DataFrame) -> tuple[dict[Cell, pd.Series], dict[str, float]]:
    """Per cell, each sample's score: clean, or the worst case over every attack run under that threat;
    and each threat's eps (columns are ordered by it)."""
    clean = samples.groupby(["encoder", "task", "id"])["clean"].first()
    cells: dict[Cell, pd.Series] = {("clean", task, enc): group.droplevel([0, 1])
                                    for (enc, task), group in clean.groupby(level=[0, 1])}
    eps_of = {"clean": 0.0}
    attacked = samples[samples["eps"] > 0]
    for (enc, task, label), group in attacked.groupby(["encoder", "task", "threat"]):
        eps_of[label] = float(group["eps"].iloc[0])
        per_sample = group.pivot_table(index="id", columns="attack", values="adv", aggfunc="first")
        cells[(label, task, enc)] = per_sample.dropna().min(axis=1)
    return cells, eps_of


def accuracy_table(samples: pd.DataFrame, ci: bool = False, data_root: str | None = None) -> pd.DataFrame:
    """Rows = encoders; per threat (clean first, then by eps): classification tasks, their 'avg', then
    VLM columns; a column for each (task, threat) with at least one cell.

    ci: each cell and average is followed by its 95% interval ('... lo', '... hi'; bench.report.intervals:
    Wilson for accuracies, bootstraps for CIDEr, VQA accuracy and averages) and its number of
    samples ('... n'; an average's is the sum over its tasks). CIDEr's re-scores
    the task's references, read with `data_root` (the paper suite's; the tiny suite needs none).
    """
    cells, eps_of = cell_samples(samples)
    metric = samples.groupby("task")["metric"].first()
    classification = sorted(t for t in metric.index if metric[t] == ACCURACY)
    vlm_tasks = sorted(t for t in metric.index if metric[t] != ACCURACY)
    encoders = list(dict.fromkeys(samples["encoder"]))
    table = pd.DataFrame(index=pd.Index(encoders, name="encoder"))
    intervals = CellIntervals(samples, cells, metric.to_dict(), ACCURACY, data_root) if ci else None
    values = CellValues(samples, cells)

    def add(name: str, cells_of_row: list[list[Cell]], bounds: list[tuple[float, float]]) -> None:
        """A column from each row's cells (one, or the tasks of an average: the mean of their means)."""
        # An average that misses a task is not an average over the tasks: NaN, shown as '-'.
        table[name] = [sum(values.value(c) for c in row) / len(row) if all(c in cells for c in row)
                       else float("nan") for row in cells_of_row]
        if intervals is not None:
            table[f"{name} lo"] = [lo for lo, _ in bounds]
            table[f"{name} hi"] = [hi for _, hi in bounds]
            table[f"{name} n"] = pd.array([sum(len(cells[c]) for c in row) if all(c in cells for c in row) else None
                                           for row in cells_of_row], dtype="Int64")

    def column(name: str, label: str, task: str) -> None:
        add(name, [[(label, task, e)] for e in encoders],
            [intervals.cell((label, task, e)) for e in encoders] if intervals else [])

    present = {(label, task) for label, task, _ in cells}
    averaged = [t for t in classification if base_task(t) not in OUTSIDE_AVERAGE]  # "imagenet1k (dvd)" too
    for label in sorted(eps_of, key=lambda threat: (eps_of[threat], threat)):
        for task in classification:
            if (label, task) in present:
                column(f"{task} {label}", label, task)
        rows = [[(label, t, e) for t in averaged] for e in encoders]
        if len(averaged) > 1 and any(all(c in cells for c in row) for row in rows):
            add(f"avg {label}", rows, [intervals.average(row) for row in rows] if intervals else [])
        for task in vlm_tasks:
            if (label, task) in present:
                column(f"{task} {metric[task]} {label}", label, task)
    return table.round(1)


MISSING = "-"  # a cell without runs, or an average that misses a task


def render(table: pd.DataFrame, fmt: str) -> str:
    if fmt == "md":
        return table.to_markdown(floatfmt=".1f", missingval=MISSING)
    if fmt == "csv":
        return table.to_csv(float_format="%.1f")  # an empty field: what spreadsheets read as missing
    formats = {c: "{}" if c.endswith(" n") else "{:.1f}" for c in table.columns}  # sample counts stay integers
    styled = table.style.format(formats, na_rep=MISSING)
    return styled.to_latex(hrules=True) if fmt == "latex" else styled.to_html()


def only(samples: pd.DataFrame, column: str, names: list[str] | None, kind: str) -> pd.DataFrame:
    """The rows whose `column` is one of `names` (all rows for None); an unknown name is refused."""
    if not names:
        return samples
    require_known(kind, names, set(samples[column]), " (the ones with finished runs here)")
    return samples[samples[column].isin(names)]


def leaderboard_command(results: list[Path], fmt: str, out: Path | None, cards: Path | None = None,
                        ci: bool = False, data_root: str | None = None, encoders: list[str] | None = None,
                        tasks: list[str] | None = None) -> None:
    """Render the table of results folders (or of an aggregate JSON written by --format json),
    optionally of some encoders and task columns only."""
    from bench.report.exports import aggregate, encoder_cards, read_aggregate

    if len(results) == 1 and results[0].is_file() and results[0].suffix == ".json":
        if encoders or tasks:
            raise BenchError("--encoders / --tasks select runs; give the results folders, not an aggregate")
        table, samples = read_aggregate(results[0]), None
    else:
        samples = only(only(load_samples(results), "encoder", encoders, "encoder"), "task", tasks, "task")
        table = accuracy_table(samples, ci, data_root)
    if fmt == "json":
        if samples is None:
            raise BenchError(f"{results[0]} is already an aggregate; give its results folder for --format json")
        text = json.dumps(aggregate(table, samples, results), indent=1)
    else:
        text = render(table, fmt)
    if cards is not None:
        if samples is None:
            raise BenchError("--cards needs a results folder (the per-sample records), not an aggregate")
        print(f"wrote {len(encoder_cards(samples, table, cards))} encoder cards to {cards}")
    if out is None:
        print(text)
        return
    with disk_errors(out.parent):
        out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text + "\n")  # a full disk leaves the old table (or none), never a truncated one
    print(f"wrote {out}")


def plot_command(results: list[Path], out: Path | None) -> None:
    from bench.report.plotting import eps_figure, eps_in_255, label_eps_axes, on_eps_axis

    samples = load_samples(results)
    table = accuracy_table(samples)
    classification = samples[samples["metric"] == ACCURACY]
    if classification.empty:
        raise BenchError(f"bench plot draws zero-shot accuracy; {' '.join(map(str, results))} has only captioning / "
                         "VQA runs")
    tasks = sorted(classification["task"].unique())
    prefix = "avg" if any(c.startswith("avg ") for c in table.columns) else tasks[0]
    columns = [c for c in table.columns if c.startswith(prefix + " ") and on_eps_axis(c[len(prefix) + 1:])]
    radius = eps_in_255(samples)
    xs = [radius[c[len(prefix) + 1:]] for c in columns]
    fig, ax = eps_figure((6, 4))
    for encoder, row in table[columns].iterrows():
        ax.plot(xs, row.values, marker="o", label=encoder)
    label_eps_axes(ax, f"robust accuracy % ({'average over tasks' if prefix == 'avg' else prefix})")
    ax.legend()
    fig.tight_layout()
    out = out or results[0] / "robust_vs_eps.png"
    with disk_errors(out.parent):
        out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    print(f"wrote {out}")

"""Results in the shapes researchers already read: one aggregate JSON per results folder
(lm-evaluation-harness style: config + per-task metrics, which `bench leaderboard` reads back) and a
RobustBench-style card per encoder. (CLIP_benchmark's per-run results.json is the runner's:
bench.run.results_file.)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench.run.environment import git_commit, versions
from bench.run.eps import NORM_LABELS
from benchutil.fileio import write_json_atomic
from benchutil.schema import Number, Schema, read_json

AGGREGATE_FORMAT = "robust-vlm-bench aggregate v1"
def aggregate(table: pd.DataFrame, samples: pd.DataFrame, source: list[Path]) -> dict[str, Any]:
    """lm-eval's shape: the configuration, then per encoder every cell of the leaderboard."""
    attacks = sorted(set(samples.loc[samples["eps"] > 0, "attack"]))
    where = str(source[0]) if len(source) == 1 else [str(s) for s in source]  # one folder: as before
    return {"format": AGGREGATE_FORMAT, "config": {"results": where, "attacks": attacks,
                                                   "git_commit": git_commit(), "versions": versions()},
            "results": {str(encoder): {column: (None if pd.isna(v) else float(v)) for column, v in row.items()}
                        for encoder, row in table.iterrows()},
            "n_samples": {f"{t}": int(n) for t, n in samples.groupby("task")["id"].nunique().items()}}


AGGREGATE = Schema("aggregate written by bench leaderboard --format json", "regenerate it with bench leaderboard "
                   "--format json, or give the results folder", required={"format": str, "results": dict})


def read_aggregate(path: Path) -> pd.DataFrame:
    """The leaderboard table stored in an aggregate JSON."""
    data = read_json(path, AGGREGATE)
    if data["format"] != AGGREGATE_FORMAT:
        raise AGGREGATE.error(str(path), f"has format {data['format']!r}, not {AGGREGATE_FORMAT!r}")
    row = Schema(AGGREGATE.what, AGGREGATE.fix, every=(Number, type(None)))  # a cell: a number, or null
    for encoder, cells in data["results"].items():
        row.check(cells, f"{path} encoder {encoder!r}")
    table = pd.DataFrame.from_dict(data["results"], orient="index")
    table.index.name = "encoder"
    return table


def encoder_cards(samples: pd.DataFrame, table: pd.DataFrame, out: Path) -> list[Path]:
    """A RobustBench-style card per encoder: source, threat model (the norms its runs attacked in),
    per threat clean and robust numbers, and the attacks that produced them (our `aa` is APGD-CE +
    APGD-T, not the full AutoAttack)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for encoder in table.index:
        mine = samples[samples["encoder"] == encoder]
        attacked = mine[mine["eps"] > 0]
        attacks = sorted(set(attacked["attack"]))
        norms = sorted({NORM_LABELS.get(n, n) for n in attacked["norm"]})
        card = {"name": encoder, "threat_model": norms[0] if len(norms) == 1 else norms,
                "eps": sorted(set(attacked["threat"])),
                "attacks": attacks,
                "attack_note": "aa = APGD-CE + APGD-T (worst case per sample), not AutoAttack's standard "
                               "version (which adds FAB-T and Square); see docs/protocol.md",
                "numbers": {column: (None if pd.isna(v) else float(v)) for column, v in table.loc[encoder].items()}}
        path = out / f"{encoder.replace('/', '_')}.json"
        write_json_atomic(path, card)
        written.append(path)
    return written

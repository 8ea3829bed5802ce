"""`bench.benchmark(model, ...)`: evaluate any model, in the zoo or not, from Python.

The same evaluation as `bench run` (bench.api.evaluate), with the same settings, checks, run
folders and resumption: a run that was killed continues where it stopped when called again.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from torch import Tensor, nn

from bench.api.custom_models import evaluable
from bench.api.evaluate import evaluate, summary_table
from bench.api.run_settings import parse_settings, settings_argv
from bench.tiny.suite import bench_home
from benchutil.errors import BenchError

Names = str | Sequence[str]
EpsValues = str | float | Sequence[str | float]


def benchmark(model: nn.Module | str, tasks: Names | None = None, attack: str = "aa",
              eps: EpsValues = ("0", "4/255"), n_samples: int | None = None, out: str | Path = "runs", *,
              name: str | None = None, class_names: Sequence[str] | None = None, image_size: int | None = None,
              tokenizer: Callable[[list[str]], Tensor] | None = None, suite: str | None = None,
              **options: Any) -> pd.DataFrame:
    """Evaluate `model` on `tasks` under `attack` at each `eps`; one resumable run folder per
    (task, eps) under `out`. Returns one row per run: encoder, task, attack, eps, n, metric,
    clean, robust and `run`, the run's folder.

    model: a zoo name, source or checkpoint path (as `bench run --encoder`); an encoder
        (`bench.load_encoder`'s, or any module with encode_image / encode_text / tokenizer /
        image_size); an open_clip model; or a classifier `images in [0,1] -> logits`, given with
        `class_names` (the name of each logit) and `image_size` (default 224): then only
        classification tasks apply.
    name: what the runs call the model (default: its class name, or the zoo name).
    tokenizer: an open_clip model's tokenizer, if not open_clip's default BPE.
    eps: "0,4/255", ["0", "4/255"] or numbers; 0 is the clean run.
    options: any other `bench run` flag by its name with underscores, e.g. steps=20, seed=1,
        batch_size=64, device="cuda", attack_args={"eot_iter": 20}, vlm="tiny-llava".
    """
    given: dict[str, nn.Module] = {}
    if isinstance(model, str):
        if name is not None or class_names is not None or tokenizer is not None or image_size is not None:
            raise BenchError("name, class_names, image_size and tokenizer apply to a model object; a zoo name or "
                             "checkpoint path brings its own")
        encoder = model
    else:
        built = evaluable(model, name, class_names, image_size, tokenizer)
        encoder = built.provenance.name
        if "," in encoder:
            raise BenchError(f"name {encoder!r} has a comma, which separates encoder names; choose another name")
        given[encoder] = built
    settings = {"encoder": encoder, "task": tasks, "attack": attack, "eps": eps, "n_samples": n_samples,
                "out": out, "suite": suite, **options}
    for key in ("encoder", "command_line"):
        if key in options:
            raise BenchError(f"{key} is not an option of benchmark(); the model is its first argument")
    argv = settings_argv(settings, "benchmark()")
    args = parse_settings(argv, "benchmark()")
    args.command_line = ["bench.benchmark", *argv]  # recorded in each run's config, as a command line is
    results = evaluate(args, bench_home(), given)
    table = summary_table(results)
    table["run"] = [r.path for r in results]
    return table

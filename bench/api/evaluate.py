"""The one evaluation path: `bench run`, `bench run --config`, `bench reproduce` and
`bench.benchmark()` all end here.

It validates everything first (names, eps, data, attack options, the output folder), then runs one
resumable run per (encoder, task, attack, eps). Its settings are the `bench run` flags, parsed by
one parser (bench.api.run_arguments), whichever door they came through.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from attacks.table import TABLE, AttackEntry
from bench.encoders.base import Encoder, check_patch_tokens
from bench.encoders.load import EncoderSpec, build_encoder
from bench.encoders.sources import SOURCE_PREFIXES
from bench.encoders.weights import check_readable
from bench.run.attack_names import checked_arguments, resolve_attack
from bench.run.devices import check_device
from bench.run.eps import parse_eps_list
from bench.run.loading import default_workers
from bench.run.runner import RunPlan, RunResult, execute
from bench.run.sharding import Shard, detect_shard, shard_device
from bench.suites import (
    Suite,
    check_task_name,
    expand_tasks,
    get_suite,
    load_task,
    resolve_encoder,
)
from bench.vlm import check_vlm_name, load_vlm
from benchutil.arguments import parse_attack_args
from benchutil.errors import BenchError
from tasks.base import AttackSettings, Task
from tasks.classifier import LabelledClassifier
from tasks.text_threat import check_domain
from tasks.vlm_task import VLMTask


def split_names(text: str, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise BenchError(f"--{what} is empty; give at least one name")
    return items


def _check_out(out: Path) -> None:
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise BenchError(f"--out {out} is not writable ({parent} is not a writable folder); choose another --out")


def _resolve_encoders(names: list[str], args: argparse.Namespace) -> dict[str, tuple[EncoderSpec, str]]:
    """Every encoder resolved, and its local files read, before the first run: an unknown name or
    a broken second checkpoint must not stop the work half-way."""
    specs = {name: resolve_encoder(name, args.suite, args.arch, args.base) for name in names}
    for spec, _ in specs.values():
        for source in (spec.base, spec.vision):
            if source is not None and source != "random" and not source.startswith(SOURCE_PREFIXES):
                check_readable(Path(source).expanduser())
    return specs


def default_steps(steps: int | None, target: str | None, protocol: str) -> int:
    """RobustVLM's targeted attack runs 10000 iterations; every other attack 100, unless told."""
    return steps or (10000 if target is not None and protocol == "robustvlm" else 100)


def default_precision(precision: str | None, protocol: str, vlm_task: bool, device: str,
                      target: str | None = None) -> str:
    """RobustVLM attacks VLMs with the model in float16 (its float32 stage follows), and so do the
    Sim-CLIP scripts (`--precision float16`); on CUDA those protocols do the same. Everything else
    computes in float32 unless told."""
    if precision is not None:
        return precision
    half = protocol in ("robustvlm", "simclip") and target is None  # the targeted script runs in float32
    return "fp16" if half and vlm_task and device.startswith("cuda") else "fp32"


class LoadedModels:
    """One encoder, and the VLM around it, loaded on first use (classification never loads a VLM).

    The language side is loaded once per process: the next encoder gets the same VLM through
    `with_encoder` (a 7B model is not reloaded per encoder).
    """

    def __init__(self, encoder: torch.nn.Module, vlm_name: str, suite: Suite, device: str,
                 loaded: dict[str, torch.nn.Module]) -> None:
        self.encoder, self.vlm_name, self._suite, self._device = encoder, vlm_name, suite, device
        self._loaded = loaded  # VLM name -> the last VLM built, shared by every encoder of the command
        self._vlm: torch.nn.Module | None = None

    def vlm(self) -> torch.nn.Module:
        if self._vlm is None:
            check_patch_tokens(self.encoder, f"--vlm {self.vlm_name}")
            earlier = self._loaded.get(self.vlm_name)
            self._vlm = earlier.with_encoder(self.encoder) if earlier is not None else load_vlm(
                self.vlm_name, self._suite.vlms(), self.encoder, self._device)
            self._loaded[self.vlm_name] = self._vlm
        return self._vlm


def _check_attack(tasks: list[Task], entry: AttackEntry, args: argparse.Namespace, attack_args: dict) -> None:
    """Every task accepts the attack and its options, or one line names the first that does not."""
    probe = AttackSettings(entry, 1.0, args.norm, 1, args.seed, attack_args, args.target, args.early_stop,
                           protocol=args.protocol or get_suite(args.suite).default_protocol)
    for task in tasks:
        try:
            check_domain(task, entry, args.norm)  # pixel attacks on images, text attacks on sentences
            task.check_attack(probe)
        except ValueError as err:
            raise BenchError(str(err)) from None


def _check_given(given: Mapping[str, torch.nn.Module], tasks: list[Task]) -> None:
    """A plain classifier (images -> logits) has no text tower: classification tasks only. A VLM
    takes the patch tokens of an open_clip vision tower: only an `Encoder` around one gives them."""
    for name, model in given.items():
        for task in tasks:
            if isinstance(model, LabelledClassifier) and task.kind != "zero-shot classification":
                raise BenchError(f"{name} is a classifier (images -> logits), which cannot be evaluated on "
                                 f"{task.name} ({task.kind}); give it classification tasks only, or give an "
                                 "encoder with encode_image / encode_text")
            if isinstance(task, VLMTask) and not isinstance(model, Encoder):
                raise BenchError(f"{task.name} puts the encoder into a VLM, which needs an open_clip vision tower; "
                                 f"{name} is not one: give an open_clip model (or bench.load_encoder's), or drop "
                                 f"{task.name}")


@dataclass
class Evaluation:
    """Checked settings, ready to run: every name resolved, every sample readable."""

    args: argparse.Namespace
    home: Path
    suite: Suite
    encoders: list[str]
    built: dict[str, Callable[[str], torch.nn.Module]]  # encoder name -> how to build it on a device
    tasks: list[Task]
    eps_values: list[tuple[str, float]]
    entry: AttackEntry
    attack_args: dict
    vlm_name: str
    shard: Shard
    device: str

    def run(self) -> list[RunResult]:
        """One resumable run per (encoder, task, eps), in that order."""
        args, suite = self.args, self.suite
        protocol = args.protocol or suite.default_protocol
        steps = default_steps(args.steps, args.target, protocol)
        workers = default_workers() if args.workers is None else args.workers
        uses_vlm = any(suite.is_vlm_task(t.name) for t in self.tasks)
        results, loaded_vlms = [], {}
        for enc_name in self.encoders:
            models = LoadedModels(self.built[enc_name](self.device), self.vlm_name, suite, self.device, loaded_vlms)
            if args.target is not None and uses_vlm:
                models.vlm().codec.check(args.target, "--target")
            for task in self.tasks:
                n_samples = args.n_samples or suite.default_samples(task.name, args.target, args.sample_order)
                early_stop = args.early_stop
                if early_stop is None and protocol == "robustvlm":
                    early_stop = task.robustvlm_early_stop
                precision = default_precision(args.precision, protocol, suite.is_vlm_task(task.name), self.device,
                                              args.target)
                for label, eps in self.eps_values:
                    plan = RunPlan(enc_name, task.name, args.attack, eps, label, steps, args.seed, n_samples,
                                   args.batch_size, args.norm, self.attack_args, args.target, early_stop, protocol,
                                   precision, args.save_examples)
                    results.append(execute(plan, models, task, self.entry if eps else TABLE["none"], args.out,
                                           self.home / "cache", self.device, args.command_line, self.shard, workers))
        return results


def prepare(args: argparse.Namespace, home: Path, given: Mapping[str, torch.nn.Module] | None = None) -> Evaluation:
    """Check the parsed `bench run` settings whole, before any work: names, eps, attack options,
    data, output folder.

    given: encoders the caller already built (bench.benchmark's models), by the name --encoder
    gives them; every other name is resolved through the suite's zoo, a source or a path.
    """
    given = dict(given or {})
    suite = get_suite(args.suite)
    eps_values = parse_eps_list(args.eps, args.norm)
    encoders = split_names(args.encoder, "encoder")
    task_names = expand_tasks(suite, split_names(args.task, "task") if args.task else None)
    entry = resolve_attack(args.attack)
    attack_args = checked_arguments(entry, parse_attack_args(args.attack_args))
    specs = _resolve_encoders([e for e in encoders if e not in given], args)
    for name in task_names:
        check_task_name(suite, name, args.sample_order)
    vlm_name = args.vlm or suite.default_vlm
    if any(suite.is_vlm_task(t) for t in task_names):
        check_vlm_name(vlm_name, suite.vlms())
    shard = detect_shard(args.shard)
    # auto resolves first (under torchrun, cuda then means this rank's GPU), then that GPU is checked
    device = check_device(shard_device(check_device(args.device)))
    _check_out(args.out)
    # data errors before any work
    tasks = [load_task(suite, name, args.data_root, args.sample_order) for name in task_names]
    _check_given(given, tasks)
    if args.target is not None:
        for task in tasks:
            if isinstance(task, VLMTask):
                task.select_for_target(args.target)
    _check_attack(tasks, entry, args, attack_args)
    for task in tasks:  # every sample the runs will read opens
        ids = task.sample_ids(args.n_samples or suite.default_samples(task.name, args.target, args.sample_order),
                              args.seed)
        if args.n_samples is not None and len(ids) < args.n_samples:  # never fewer than asked, silently
            raise BenchError(f"--n-samples {args.n_samples} is more than the {len(ids)} samples of {task.name}; ask "
                             f"for at most {len(ids)}, or leave --n-samples out for the suite's default")
        task.check_data(ids)
    built: dict[str, Callable[[str], torch.nn.Module]] = {
        name: (lambda device, model=given[name]: model.to(device)) if name in given
        else (lambda device, spec=specs[name]: build_encoder(*spec, device)) for name in encoders}
    return Evaluation(args, home, suite, encoders, built, tasks, eps_values, entry, attack_args, vlm_name, shard,
                      device)


def evaluate(args: argparse.Namespace, home: Path,
             given: Mapping[str, torch.nn.Module] | None = None) -> list[RunResult]:
    """Check, then run every (encoder, task, eps) of the parsed `bench run` settings."""
    return prepare(args, home, given).run()


def summary_table(results: list[RunResult]) -> pd.DataFrame:
    """One row per run: what `bench run` prints at the end and `bench.benchmark` returns."""
    rows = [{"encoder": r.model, "task": r.plan.task, "attack": r.plan.attack, "eps": r.plan.label, "n": r.n,
             "metric": r.metric, "clean": round(r.clean, 1), "robust": round(r.robust, 1),
             **({"target hit %": round(r.target_success, 1)} if r.target_success is not None else {}),
             "run": r.path.name} for r in results]
    return pd.DataFrame(rows)

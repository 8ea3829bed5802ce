"""The bodies of `bench run` and `bench list`: validate everything first, then work."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd
import torch

from bench import load_encoder
from bench.attack_registry import ATTACKS, get_attack
from bench.cli import parse_attack_args
from bench.eps import parse_eps_list
from bench.encoders.load import SOURCE_PREFIXES, is_source
from bench.errors import BenchError, unknown
from bench.runner import RunPlan, RunResult, execute
from bench.suites import SUITES, check_task_name, get_suite, load_task


def _split(text: str, what: str) -> list[str]:
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


def _check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"--device {device} requested but CUDA is not available here; use --device cpu")
    if not device.startswith(("cpu", "cuda", "mps")):
        raise BenchError(f"unknown --device {device!r}; use cpu, cuda or cuda:N")


def _check_encoder(name: str, suite_name: str | None) -> None:
    """Names are checked before any work; a missing local checkpoint is named now, too."""
    zoo = get_suite(suite_name).encoders
    if name in zoo:
        return
    if not is_source(name):
        raise unknown("encoder", name, zoo.names(), " (bench list encoders, or give a checkpoint path)")
    if not name.startswith(SOURCE_PREFIXES) and not Path(name).expanduser().is_file():
        raise BenchError(f"checkpoint {name} does not exist; check the path")


def run_command(args: argparse.Namespace, home: Path) -> list[RunResult]:
    suite = get_suite(args.suite)
    eps_values = parse_eps_list(args.eps)
    encoders = _split(args.encoder, "encoder")
    task_names = _split(args.task, "task") if args.task else list(suite.default_tasks)
    attack_args = parse_attack_args(args.attack_args)
    get_attack(args.attack)
    for name in encoders:
        _check_encoder(name, args.suite)
    for name in task_names:
        check_task_name(suite, name)
    _check_device(args.device)
    _check_out(args.out)
    tasks = [load_task(suite, name, args.data_root) for name in task_names]  # data errors before any work
    n_samples = args.n_samples or suite.default_n_samples
    results = []
    for enc_name in encoders:
        encoder = load_encoder(enc_name, args.suite, args.device, args.arch)
        for task in tasks:
            for label, eps in eps_values:
                plan = RunPlan(enc_name, task.name, args.attack, eps, label, args.steps, args.seed, n_samples,
                               args.batch_size, args.norm, attack_args)
                results.append(execute(plan, encoder, task, args.out, home / "cache", args.device, args.command_line))
    print(summary_table(results).to_string(index=False))
    return results


def summary_table(results: list[RunResult]) -> pd.DataFrame:
    rows = [{"encoder": r.plan.encoder, "task": r.plan.task, "attack": r.plan.attack, "eps": r.plan.label,
             "n": r.n, "clean %": round(100 * r.clean_acc, 1), "robust %": round(100 * r.robust_acc, 1),
             "run": r.path.name} for r in results]
    return pd.DataFrame(rows)


def list_command(what: str, suite_name: str | None) -> None:
    suite = get_suite(suite_name)
    registry = {"encoders": suite.encoders, "attacks": ATTACKS, "tasks": suite.datasets, "suites": SUITES}[what]
    entries = list(registry)
    width = max(len(e.name) for e in entries)
    for entry in entries:
        aliases = registry.aliases_of(entry.name)
        alias_text = f" (alias: {', '.join(aliases)})" if aliases else ""
        print(f"{entry.name.ljust(width)}  {entry.provenance}{alias_text}")
    if what == "attacks":
        print(f"{'torchattacks:<Name>'.ljust(width)}  any torchattacks attack by class name; arguments via --attack-args")
    if what == "tasks":
        print(f"{'folder:PATH'.ljust(width)}  any image folder PATH/<class>/<image> (+ classnames.txt, templates.txt)")

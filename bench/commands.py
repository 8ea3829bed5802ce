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
from bench.suites import SUITES, Suite, check_task_name, expand_tasks, get_suite, load_task, load_vlm_task
from bench.vlm import check_vlm_name, load_vlm
from bench.vlm_runner import check_vlm_attack, execute_vlm
from tasks.vlm_task import VLMTask


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
    task_names = expand_tasks(suite, _split(args.task, "task") if args.task else None)
    attack_args = parse_attack_args(args.attack_args)
    for name in encoders:
        _check_encoder(name, args.suite)
    for name in task_names:
        check_task_name(suite, name)
    vlm_names = [t for t in task_names if suite.is_vlm_task(t)]
    class_names = [t for t in task_names if not suite.is_vlm_task(t)]
    if class_names:
        if args.target is not None:
            raise BenchError(f"--target applies to captioning / VQA tasks; drop it or drop {class_names[0]}")
        get_attack(args.attack)
    vlm_name = args.vlm or suite.default_vlm
    if vlm_names:
        check_vlm_attack(args.attack)
        check_vlm_name(vlm_name, suite.vlms())
    _check_device(args.device)
    _check_out(args.out)
    # Data errors before any work.
    tasks = [load_task(suite, name, args.data_root) for name in class_names]
    vlm_tasks = [load_vlm_task(suite, name, args.data_root) for name in vlm_names]
    n_samples = args.n_samples or suite.default_n_samples
    results = []
    for enc_name in encoders:
        encoder = load_encoder(enc_name, args.suite, args.device, args.arch)
        for task in tasks:
            for label, eps in eps_values:
                plan = RunPlan(enc_name, task.name, args.attack, eps, label, args.steps, args.seed, n_samples,
                               args.batch_size, args.norm, attack_args)
                results.append(execute(plan, encoder, task, args.out, home / "cache", args.device, args.command_line))
        if vlm_tasks:
            results += _run_vlm_tasks(args, suite, vlm_name, encoder, enc_name, vlm_tasks, eps_values)
    print(summary_table(results).to_string(index=False))
    return results


def _run_vlm_tasks(args: argparse.Namespace, suite: Suite, vlm_name: str, encoder: torch.nn.Module, enc_name: str,
                   tasks: list[VLMTask], eps_values: list[tuple[str, float]]) -> list[RunResult]:
    vlm = load_vlm(vlm_name, suite.vlms(), encoder, args.device)
    if args.target is not None:
        vlm.codec.check(args.target, "--target")
    n_samples = args.n_samples or suite.default_vlm_samples
    results = []
    for task in tasks:
        for label, eps in eps_values:
            plan = RunPlan(enc_name, task.name, "apgd", eps, label, args.steps, args.seed, n_samples,
                           args.batch_size, args.norm, {}, vlm=vlm_name, target=args.target,
                           early_stop=args.early_stop)
            results.append(execute_vlm(plan, vlm, task, args.out, args.device, args.command_line))
    return results


def summary_table(results: list[RunResult]) -> pd.DataFrame:
    rows = [{"encoder": r.plan.encoder if r.plan.vlm is None else f"{r.plan.vlm}+{r.plan.encoder}",
             "task": r.plan.task, "attack": r.plan.attack, "eps": r.plan.label, "n": r.n, "metric": r.metric,
             "clean": round(r.clean, 1), "robust": round(r.robust, 1),
             **({"target hit %": round(r.target_success, 1)} if r.target_success is not None else {}),
             "run": r.path.name} for r in results]
    return pd.DataFrame(rows)


def list_command(what: str, suite_name: str | None) -> None:
    suite = get_suite(suite_name)
    registries = {"encoders": [suite.encoders], "attacks": [ATTACKS], "tasks": [suite.datasets, suite.vlm_datasets],
                  "suites": [SUITES], "vlms": [suite.vlms()]}[what]
    entries = [e for registry in registries for e in registry]
    width = max(len(e.name) for e in entries)
    for entry in entries:
        aliases = [a for registry in registries for a in registry.aliases_of(entry.name)]
        alias_text = f" (alias: {', '.join(aliases)})" if aliases else ""
        print(f"{entry.name.ljust(width)}  {entry.provenance}{alias_text}")
    if what == "attacks":
        print(f"{'torchattacks:<Name>'.ljust(width)}  any torchattacks attack by class name; arguments via --attack-args")
    if what == "tasks":
        print(f"{'folder:PATH'.ljust(width)}  any image folder PATH/<class>/<image> (+ classnames.txt, templates.txt)")
        print(f"{'all'.ljust(width)}  every task above (classification, captioning and VQA)")
    if what == "vlms":
        print(f"{'llava:PATH'.ljust(width)}  any LLaVA-1.5 checkpoint in the llava-hf format (folder or hub id)")

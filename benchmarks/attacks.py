"""Attacks side by side: ours vs pyautoattack vs torchattacks, same model, data, settings.

    python -m benchmarks.attacks            # full grid (~10 min on 2 CPU cores)
    python -m benchmarks.attacks --quick    # smaller samples, no ViT-B-32
    python -m benchmarks.attacks --device cuda

For each victim and eps: APGD-CE (100 steps, 1 restart) and the worst case of APGD-CE +
APGD-T (9 targets) -- the RobustVLM zero-shot protocol -- timed, with robust accuracy and
peak memory (RSS growth during the attack, each measurement in a fresh process; CUDA
allocator peak on GPU), and each time as a ratio of pyautoattack's. Writes benchmarks/out/attacks.json.
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
import torchattacks
from pyautoattack import AutoAttack
from pyautoattack.autopgd_base import APGDAttack

from attacks import apgd, worst_case
from benchmarks.common import environment, measure, print_table, write_json
from tests import victims

STEPS = 100


@dataclass
class Victim:
    name: str
    model: torch.nn.Module
    x: torch.Tensor
    y: torch.Tensor


def _digits(n: int, device: torch.device) -> Victim:
    _, _, x_test, y_test = victims.digits_data()
    model = victims.digits_cnn().to(device)
    return Victim("digits-cnn", model, x_test[:n].to(device), y_test[:n].to(device))


def _tiny_vit(n: int, device: torch.device) -> Victim:
    model = victims.tiny_vit_classifier().to(device)
    x = victims.natural_images(n, 32, seed=1).to(device)
    with torch.no_grad():
        return Victim("tiny-vit", model, x, model(x).argmax(dim=1))


def _vit_b32(n: int, device: torch.device) -> Victim:
    model = victims.vit_b32_classifier().to(device)
    x = victims.natural_images(8, 224, seed=2).to(device)
    with torch.no_grad():
        return Victim("vit-b32-224", model, x, model(x).argmax(dim=1))


VICTIMS = {"digits-cnn": _digits, "tiny-vit": _tiny_vit, "vit-b32-224": _vit_b32}
EPS = {"digits-cnn": [8 / 255, 0.1, 0.2], "tiny-vit": [1 / 255, 2 / 255, 4 / 255], "vit-b32-224": [1 / 255]}
IMPLS = {"apgd-ce": ["ours", "pyautoattack", "torchattacks"],
         "worst-case(apgd-ce,apgd-t)": ["ours", "ours(max_rows=n)", "pyautoattack", "torchattacks"]}


def victim_names(quick: bool) -> list[str]:
    return ["digits-cnn", "tiny-vit"] if quick else list(VICTIMS)


def _robust(model: torch.nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x_adv).argmax(dim=1) == y).float().mean())


def runners(v: Victim, eps: float) -> dict[str, dict[str, Callable[[], torch.Tensor]]]:
    m, x, y = v.model, v.x, v.y

    def aa_apgd_ce() -> torch.Tensor:
        return APGDAttack(m, n_iter=STEPS, eps=eps, seed=0, loss="ce", device=x.device).perturb(x, y)

    def aa_worst_case() -> torch.Tensor:
        aa = AutoAttack(m, norm="Linf", eps=eps, version="custom", attacks=["apgd-ce", "apgd-t"], seed=0,
                        device=x.device)
        aa.apgd.n_restarts = 1  # 'custom' defaults to 5 restarts; the protocol (and ours) uses 1
        return aa.run_standard_evaluation(x, y, batch_size=len(y))[0]

    def ta_worst_case() -> torch.Tensor:
        ce = torchattacks.APGD(m, eps=eps, steps=STEPS, loss="ce", seed=0)
        t = torchattacks.APGDT(m, eps=eps, steps=STEPS, n_classes=10, seed=0)
        return torchattacks.MultiAttack([ce, t])(x, y)

    return {
        "apgd-ce": {
            "ours": lambda: apgd(m, x, y, eps=eps, steps=STEPS, loss="ce"),
            "pyautoattack": aa_apgd_ce,
            "torchattacks": lambda: torchattacks.APGD(m, eps=eps, steps=STEPS, loss="ce", seed=0)(x, y),
        },
        "worst-case(apgd-ce,apgd-t)": {
            "ours": lambda: worst_case(m, x, y, ["apgd-ce", "apgd-t"], eps=eps, steps=STEPS).x_adv,
            "ours(max_rows=n)": lambda: worst_case(m, x, y, ["apgd-ce", "apgd-t"], eps=eps, steps=STEPS,
                                                   max_rows=len(y)).x_adv,
            "pyautoattack": aa_worst_case,
            "torchattacks": ta_worst_case,
        },
    }


def _measure_one(quick: bool, device_name: str, victim: str, eps: float, attack: str, impl: str) -> dict:
    """One measurement in a fresh process, so peak memory belongs to this attack alone."""
    logging.getLogger("auto-attack").setLevel(logging.WARNING)
    device = torch.device(device_name)
    v = VICTIMS[victim](64 if quick else 200, device)
    r = measure(runners(v, eps)[attack][impl], device)
    return {"victim": v.name, "n": len(v.y), "eps": f"{eps * 255:.1f}/255", "attack": attack, "impl": impl,
            "seconds": r.seconds, "robust_acc": _robust(v.model, r.value, v.y), "peak_mb": r.peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 samples, skip ViT-B-32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/attacks.json"))
    args = parser.parse_args()
    plan = [(name, eps, attack, impl) for name in victim_names(args.quick) for eps in EPS[name]
            for attack, impls in IMPLS.items() for impl in impls]
    rows = []
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn, max_tasks_per_child=1) as pool:
        for name, eps, attack, impl in plan:
            row = pool.submit(_measure_one, args.quick, args.device, name, eps, attack, impl).result()
            rows.append(row)
            print(f"{row['victim']} eps={row['eps']} {attack} {impl}: {row['seconds']:.2f}s "
                  f"robust={row['robust_acc']:.3f}", flush=True)
    reference = {(r["victim"], r["eps"], r["attack"]): r["seconds"] for r in rows if r["impl"] == "pyautoattack"}
    for r in rows:
        r["time/pyautoattack"] = r["seconds"] / reference[(r["victim"], r["eps"], r["attack"])]
    print()
    print_table(rows, ["victim", "n", "eps", "attack", "impl", "seconds", "robust_acc", "peak_mb", "time/pyautoattack"])
    write_json(args.out, {"environment": environment(), "steps": STEPS, "rows": rows})


if __name__ == "__main__":
    main()

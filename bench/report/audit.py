"""`bench audit RESULTS`: cheap checks that a robust accuracy is not an artefact of gradient masking.

Per encoder and zero-shot task, on the first n samples of its runs (default 100), at the largest
eps run: eps monotonicity and 64/255, 5x iterations, black-box Square, transfer from `clip`, input
gradients and collapsed predictions; LEGEND (which heads every report) says what each one checks and its threshold.
The report is printed and written as markdown and JSON. Captioning / VQA runs are not audited
(their attack has no black-box counterpart here).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from attacks import run_apgd, worst_case
from attacks.objectives import ClassifierObjective
from attacks.table import TABLE
from bench.report.leaderboard import ACCURACY
from bench.run.progress import Progress
from bench.run.store import finished_runs
from benchutil.errors import BenchError, require_known
from benchutil.fileio import atomic_write, write_json_atomic

LARGE_EPS = 64 / 255
MORE = 5  # times the run's steps
SQUARE_QUERIES = 1000


@dataclass
class Check:
    encoder: str
    task: str
    check: str
    verdict: str  # "pass" | "warn" | "skipped"
    value: str  # the number behind the verdict


def _runs(results: Path) -> dict[tuple[str, str], list[tuple[dict[str, Any], list[dict[str, Any]]]]]:
    grouped: dict[tuple[str, str], list[tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
    for _, config, records in finished_runs([results]):
        if config.get("metric") == ACCURACY and not config.get("target"):
            grouped.setdefault((config["encoder"], config["task"]), []).append((config, records))
    if not grouped:
        raise BenchError(f"no finished zero-shot classification runs under {results}; bench audit checks those")
    return grouped


def _worst_by_eps(runs: list[tuple[dict[str, Any], list[dict[str, Any]]]],
                  ids: list[str]) -> dict[float, dict[str, float]]:
    """Per eps, each of `ids`' worst score over the runs at that eps (eps 0: the clean score);
    only eps whose runs cover every id."""
    worst: dict[float, dict[str, float]] = {}
    for config, records in runs:
        eps = float(config["eps"])
        for r in records:
            if r["id"] in ids:
                cell = worst.setdefault(eps, {})
                cell[r["id"]] = min(cell.get(r["id"], 100.0), r["adv_score"] if eps > 0 else r["clean_score"])
    return {eps: cell for eps, cell in sorted(worst.items()) if len(cell) == len(ids)}


def _accuracy(model: Any, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(1) == y).float().mean())


def audit_cell(model: Any, reference: Any, x: Tensor, y: Tensor, eps: float, steps: int, robust: Tensor,
               by_eps: dict[float, float], encoder: str, task: str, queries: int = SQUARE_QUERIES) -> list[Check]:
    """The checks of one (encoder, task) on a batch. `robust`: per sample, whether the runs at `eps`
    left it unbroken; `by_eps`: the runs' robust accuracy % per eps; `queries`: Square's budget."""
    out = []
    recorded = 100.0 * float(robust.float().mean())

    def add(check: str, ok: bool, value: str) -> None:
        out.append(Check(encoder, task, check, "pass" if ok else "warn", value))

    values = list(by_eps.values())
    rising = [f"{a:.1f}->{b:.1f}" for a, b in zip(values, values[1:]) if b > a]
    large = run_apgd(ClassifierObjective(model, y, "ce"), x, eps=LARGE_EPS, steps=steps, seed=0).x_adv
    large_acc = _accuracy(model, large, y)
    add("eps", not rising and large_acc <= 1.0,
        f"{' / '.join(f'{v:.1f}' for v in values)} over eps; {large_acc:.1f}% at 64/255"
        + (f"; rises {', '.join(rising)}" if rising else ""))
    unbroken = robust.nonzero().flatten()
    still = int(robust.sum())
    if len(unbroken):
        more = worst_case(model, x[unbroken], y[unbroken], attacks=TABLE["aa"].members, eps=eps, steps=MORE * steps,
                          seed=1)
        still = int(more.robust.sum())
    more_acc = 100.0 * still / len(x)
    add("iterations", recorded - more_acc < 1.0,
        f"{recorded:.1f}% at {steps} steps, {more_acc:.1f}% after aa at {MORE * steps} on the unbroken")
    try:
        import torchattacks
    except ImportError:
        out.append(Check(encoder, task, "black-box", "skipped", "needs torchattacks (pip install torchattacks)"))
    else:
        square = torchattacks.Square(model, eps=eps, n_queries=queries, seed=0)(x, y)
        square_acc = _accuracy(model, square, y)
        add("black-box", square_acc >= recorded, f"Square {square_acc:.1f}% vs white-box {recorded:.1f}%")
    if reference is None:
        out.append(Check(encoder, task, "transfer", "skipped", "no undefended clip to transfer from"))
    else:
        crafted = run_apgd(ClassifierObjective(reference, y, "ce"), x, eps=eps, steps=steps, seed=0).x_adv
        transfer_acc = _accuracy(model, crafted, y)
        add("transfer", transfer_acc >= recorded, f"from clip {transfer_acc:.1f}% vs white-box {recorded:.1f}%")
    grad = _input_gradients(model, x, y)
    norms = grad.flatten(1).norm(dim=1)
    bad = float(((norms == 0) | ~torch.isfinite(norms)).float().mean()) * 100
    add("gradients", bad < 1.0, f"{bad:.1f}% zero or non-finite; median norm {float(norms.median()):.3g}")
    with torch.no_grad():
        top_prediction = _top_share(model(x).argmax(1))
    top_label = _top_share(y)
    add("predictions", top_prediction <= 50.0 or top_prediction < 2 * top_label,
        f"{top_prediction:.0f}% of clean predictions are one class; labels at most {top_label:.0f}%")
    return out


def _top_share(classes: Tensor) -> float:
    """The share % of the most common value."""
    return 100.0 * float(torch.bincount(classes.flatten().cpu()).max()) / classes.numel()


def _input_gradients(model: Any, x: Tensor, y: Tensor) -> Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = torch.nn.functional.cross_entropy(model(x), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def audit_command(results: Path, suite_name: str, n: int, out: Path | None, device: str, data_root: str | None,
                  queries: int = SQUARE_QUERIES, encoders: list[str] | None = None) -> list[Check]:
    from bench.encoders.load import build_encoder
    from bench.run.devices import check_device
    from bench.suites import DEFAULT_SAMPLE_ORDER, get_suite, load_task, resolve_encoder

    suite = get_suite(suite_name)
    device = check_device(device)
    grouped = _runs(results)
    if encoders:
        require_known("encoder", encoders, {e for e, _ in grouped},
                      f" (the encoders with zero-shot runs under {results})")
        grouped = {key: runs for key, runs in grouped.items() if key[0] in encoders}
    checks: list[Check] = []
    loaded: dict[str, Any] = {}

    def encoder_of(name: str) -> Any:
        if name not in loaded:
            loaded[name] = build_encoder(*resolve_encoder(name, suite_name, None, None), device)
        return loaded[name]

    for (encoder, _), runs in grouped.items():  # before any attack: the weights must be the runs' weights
        recorded = {c.get("sha256") for c, _ in runs}
        now = encoder_of(encoder).provenance.sha256
        if recorded != {now}:
            raise BenchError(f"the weights of {encoder} changed since its runs under {results} (sha256 {now[:16]}..., "
                             f"the runs recorded {sorted(str(r)[:16] for r in recorded)}); audit the checkpoint "
                             f"the runs used, or run them again")
    progress = Progress("bench audit", total=len(grouped), unit="cell", every_s=10.0)
    for (encoder, task_name), runs in grouped.items():
        attacked = [(c, r) for c, r in runs if float(c["eps"]) > 0]
        if not attacked:
            progress.update(1)
            continue
        eps = max(float(c["eps"]) for c, _ in attacked)
        config = next(c for c, _ in attacked if float(c["eps"]) == eps)
        ids = config["sample_ids"][:n]
        worst = _worst_by_eps(runs, ids)
        by_eps = {e: sum(cell.values()) / len(cell) for e, cell in worst.items()}
        robust = torch.tensor([worst[eps][i] > 0 for i in ids])
        # the run's own sample order (--sample-order dvd): the same ids name other images in another order
        order = (config.get("task_settings") or {}).get("sample_order", DEFAULT_SAMPLE_ORDER)
        task = load_task(suite, task_name, data_root, order)
        task.sample_ids(len(config["sample_ids"]), int(config["seed"]))  # selections (webdatasets) load here
        model = task.classifier(encoder_of(encoder), None)
        # transfer from the suite's undefended clip (none when auditing clip itself)
        x, y = task.load(ids, encoder_of(encoder).image_size)
        reference = None
        if encoder != "clip" and "clip" in suite.encoders and encoder_of("clip").image_size == x.shape[-1]:
            reference = task.classifier(encoder_of("clip"), None)
        checks += audit_cell(model, reference, x.to(device), y.to(device), eps, int(config["steps"]), robust.to(device),
                             by_eps, encoder, task_name, queries)
        progress.update(1)
    progress.close()
    text = report(checks, results, n, queries)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, lambda tmp: tmp.write_text(text))
        write_json_atomic(out.with_suffix(".json"), [asdict(c) for c in checks])
        print(f"wrote {out} and {out.with_suffix('.json')}")
    return checks


LEGEND = f"""Each check is `pass` or `warn` with the number behind it (AutoAttack's `flags_doc` and
RobustBench's admission rules list these symptoms of gradient masking):

* eps: robust accuracy does not rise with eps in the runs, and APGD-CE at 64/255 leaves at most 1%;
* iterations: `aa` with {MORE}x the run's steps, on the samples the runs left unbroken, lowers
  robust accuracy by less than 1 point;
* black-box: Square (torchattacks) is not stronger than the runs' white-box worst case;
* transfer: APGD-CE points crafted on the undefended `clip` are not stronger either;
* gradients: fewer than 1% of clean samples have a zero or non-finite input gradient;
* predictions: clean predictions have not collapsed onto one class (the most common one covers
  at most half the samples, or less than twice the most common label's share). A collapsed
  model keeps its clean accuracy at every eps, which says nothing about robustness.
"""


def report(checks: list[Check], results: Path, n: int, queries: int) -> str:
    """The markdown report: what was checked, the warnings first, then every check."""
    frame = pd.DataFrame([asdict(c) for c in checks])
    warned = frame[frame["verdict"] == "warn"]
    verdict = (f"**{len(warned)} warning(s) in {len(frame)} checks**" if len(warned)
               else f"**all {len(frame)} checks pass**")
    parts = [f"# bench audit {results}\n",
             f"First {n} samples of each encoder's zero-shot runs, at the largest eps run; Square with "
             f"{queries} queries.\n", LEGEND, verdict + "\n"]
    if len(warned):
        parts.append(warned.to_markdown(index=False) + "\n\nEvery check:\n")
    parts.append(frame.to_markdown(index=False))
    return "\n".join(parts) + "\n"

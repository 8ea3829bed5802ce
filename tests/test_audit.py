"""bench audit: the gradient-masking checks flag a masked model and pass an honest one."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from attacks import worst_case
from attacks.table import TABLE
from bench.report.audit import audit_cell
from tests import victims

pytest.importorskip("torchattacks")
EPS = 8 / 255


class Quantised(nn.Module):
    """A non-differentiable front end (16 grey levels): its input gradient is zero, so APGD sees
    nothing and robust accuracy looks high, while a black-box attack breaks it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 15) / 15)


@pytest.fixture(scope="module")
def data():
    model = victims.tiny_vit_classifier()
    x = victims.natural_images(24, 32, seed=3)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def _verdicts(model, x, y):
    result = worst_case(model, x, y, attacks=TABLE["aa"].members, eps=EPS, steps=10)
    recorded = 100 * float(result.robust.float().mean())
    clean = 100 * float(result.clean_correct.float().mean())
    checks = audit_cell(model, None, x, y, EPS, 10, result.robust, {0.0: clean, EPS: recorded}, "m", "t",
                        queries=300)
    return {c.check: c for c in checks}, recorded


@pytest.mark.long
def test_a_masked_model_is_flagged(data):
    model, x, y = data
    checks, recorded = _verdicts(Quantised(model), x, y)
    assert recorded >= 50  # APGD is blind: the model looks robust
    assert checks["gradients"].verdict == "warn" and "100.0% zero" in checks["gradients"].value
    assert checks["black-box"].verdict == "warn"  # Square breaks what APGD could not
    assert checks["eps"].verdict == "warn"  # even 64/255 leaves it standing


class Collapsed(nn.Module):
    """Every image lands on nearly one embedding: one class wins everywhere (the tiny shared-anchor
    Sim-CLIP's failure); the attack cannot lower an accuracy that is the majority class's share."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        logits = 1e-3 * self.model(x)
        return logits + torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), logits.shape[1])


def test_a_collapsed_model_is_flagged(data):
    model, x, y = data
    checks, _ = _verdicts(Collapsed(model), x, y)
    assert checks["predictions"].verdict == "warn" and checks["predictions"].value.startswith("100% of clean")


def test_an_honest_model_passes(data):
    model, x, y = data
    checks, _ = _verdicts(model, x, y)
    assert {name: c.verdict for name, c in checks.items()} == {
        "eps": "pass", "iterations": "pass", "black-box": "pass", "transfer": "skipped", "gradients": "pass",
        "predictions": "pass"}


def test_bench_audit_reports_every_check_per_encoder_and_task(tmp_path, capsys):
    import json

    from bench.cli.main import main

    runs = tmp_path / "runs"
    assert main(["run", "--suite", "tiny", "--encoder", "clip,fare-4", "--task", "tiny-shape", "--attack", "aa",
                 "--eps", "0,4/255", "--n-samples", "6", "--steps", "3", "--out", str(runs)]) == 0
    assert main(["audit", str(runs), "--n-samples", "6", "--queries", "100", "--out", str(tmp_path / "audit.md")]) == 0
    report = json.loads((tmp_path / "audit.json").read_text())
    assert {(c["encoder"], c["check"]) for c in report} == {
        (e, c) for e in ("clip", "fare-4")
        for c in ("eps", "iterations", "black-box", "transfer", "gradients", "predictions")}
    assert next(c for c in report if c["encoder"] == "fare-4" and c["check"] == "transfer")["verdict"] != "skipped"
    assert "| fare-4" in (tmp_path / "audit.md").read_text()

    # weights that are not the runs' weights are refused before any attack
    config_path = next(runs.glob("fare-4__tiny-shape__aa__*/config.json"))
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "sha256": "0" * 64}))
    assert main(["audit", str(runs), "--n-samples", "6", "--out", str(tmp_path / "again.md")]) == 2
    assert "the weights of fare-4 changed since its runs" in capsys.readouterr().err
    assert not (tmp_path / "again.md").exists()

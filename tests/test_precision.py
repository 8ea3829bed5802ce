"""Attacks computed in low precision are judged in float32: they can miss, never invent."""
from __future__ import annotations

import json

import pytest
import torch

from attacks import worst_case
from attacks.precision import PRECISIONS, AttackPrecision, autocast
from bench.cli import main


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_every_claimed_success_holds_in_float32(vit, precision):
    model, x, y = vit
    result = worst_case(model, x, y, attacks=["apgd-ce", "apgd-t"], eps=4 / 255, steps=10,
                        attack_model=AttackPrecision(model, precision))
    with torch.no_grad():
        wrong = model(result.x_adv).argmax(1) != y  # the float32 model
    assert torch.equal(~result.robust, wrong | ~result.clean_correct)
    if precision == "fp32":  # the wrapper at fp32 is the model itself: the same attack, bit for bit
        plain = worst_case(model, x, y, attacks=["apgd-ce", "apgd-t"], eps=4 / 255, steps=10)
        assert torch.equal(plain.x_adv, result.x_adv)


def test_bf16_attack_logits_come_back_as_float32(vit):
    model, x, _ = vit
    assert AttackPrecision(model, "bf16")(x).dtype == torch.float32
    with pytest.raises(ValueError, match="precision='fp8'"):
        autocast("fp8", x.device)
    assert PRECISIONS == ("fp32", "tf32", "bf16", "fp16")


def test_a_run_records_its_precision(tmp_path):
    assert main(["run", "--encoder", "clip", "--task", "tiny-colour", "--attack", "apgd", "--eps", "4/255",
                 "--n-samples", "6", "--steps", "3", "--precision", "bf16", "--out", str(tmp_path)]) == 0
    (config,) = tmp_path.rglob("config.json")
    assert json.loads(config.read_text())["precision"] == "bf16"

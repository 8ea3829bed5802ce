"""Attacks computed in low precision are judged in float32: they can miss, never invent."""
from __future__ import annotations

import json

import pytest
import torch

from attacks import worst_case
from attacks.precision import PRECISIONS, AttackPrecision, autocast
from bench.cli.main import main


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


def test_a_low_precision_attack_ends_with_a_float32_stage(vit):
    """The float32 APGD-CE stage runs on what the low-precision attack left unbroken. Here the
    attacked model has no input gradient (a stand-in for an attack that finds little), so the
    float32 stage breaks more, and each of its breaks holds in float32."""
    from attacks.ensemble import FP32_STAGE

    model, x, y = vit

    def blind(images):
        return model(images.detach()) + 0 * images.sum()

    plain = worst_case(model, x, y, attacks=["apgd-ce"], eps=8 / 255, steps=10, attack_model=blind)
    staged = worst_case(model, x, y, attacks=["apgd-ce"], eps=8 / 255, steps=10, attack_model=blind,
                        final_stage=True)
    assert bool((staged.robust <= plain.robust).all()) and int(staged.robust.sum()) < int(plain.robust.sum())
    stage_rows = [i for i, w in enumerate(staged.winner) if w == FP32_STAGE]
    assert stage_rows and all(not staged.robust[i] for i in stage_rows)
    with torch.no_grad():
        assert bool((model(staged.x_adv[stage_rows]).argmax(1) != y[stage_rows]).all())
    assert float((staged.x_adv - x).abs().max()) <= 8 / 255 + 1e-6


def test_float32_weights_casts_up_and_restores_bit_for_bit():
    from torch import nn

    from attacks.precision import float32_weights

    model = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3)).to(torch.bfloat16)
    model.register_buffer("scale", torch.tensor([0.1], dtype=torch.float16))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(2, 4)
    with float32_weights(model):
        assert {p.dtype for p in model.parameters()} == {torch.float32} and model.scale.dtype == torch.float32
        y = model(x)  # a float32 forward: no autocast needed
    assert y.dtype == torch.float32
    after = model.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())

"""The captioning / VQA protocols against transcriptions of the reference code.

* robustvlm: chs20/RobustVLM `vlm_eval/run_evaluation.py evaluate_vqa` / `evaluate_captioning`
  with `--attack ensemble`: the attack list (clean, APGD per ground truth in float16, APGD
  "prev-best" in float32, then the float32 pushes towards "maybe" / "Word" on VQA), and its
  bookkeeping (`scores_dict`, `gt_dict`, `adv_images_dict`, `left_to_attack`) transcribed below.
* simclip: speedlab-git/SimCLIP `vlm_eval/run_evaluation.py` with `--attack apgd`: the one pass
  `(attack_str, 'none', 'clean', 0)`, its outputs scored as they are.
* targeted runs select their samples with RobustVLM's per-target seed (`TARGET_TO_SEED`).

The APGD core is ours in both (it is checked against the reference's elsewhere); what is
transcribed is which sample each pass attacks, from where, on which string, in which precision,
and which output is kept.
"""
from __future__ import annotations

import json
import math
from contextlib import ExitStack

import numpy as np
import pytest
import torch

from attacks import run_apgd
from attacks.precision import autocast, float32_weights
from attacks.table import TABLE
from bench.cli.main import main
from bench.suites import get_suite, load_task
from bench.vlm import load_vlm
from tasks.base import AttackSettings
from tasks.record_checks import violations
from tasks.target_seeds import TARGET_SEEDS, target_selection_seed
from tasks.vlm_attack import LMObjective, attack_batch
from tasks.vlm_datasets import VLM_DATASETS
from tests.test_vlm_data import make_coco, make_vqa

EPS = 2 / 255
STEPS = 10
N = 8  # fare-2's tiny-vqa sample 1 (id 7908) is clean-worst after the bf16 passes and falls in the float32 one


@pytest.fixture(scope="module")
def vlm():
    from bench import load_encoder

    return load_vlm("tiny-llava", get_suite("tiny").vlms(), load_encoder("fare-2", "tiny"), "cpu")


@pytest.fixture(scope="module")
def vqa():
    return load_task(get_suite("tiny"), "tiny-vqa", None)


def _apgd(vlm, x, prompts, strings, towards, rows, start, precision):
    """One APGD pass as RobustVLM's `APGD(..., initial_stepsize=1.0).perturb(x, pert_init=...)`:
    no random start, first step eps, from `start`, on the rows still left to attack."""
    active = torch.zeros(len(x), dtype=torch.bool)
    active[rows] = True
    objective = LMObjective(vlm, prompts, strings, towards)
    with autocast(precision, x.device):
        return run_apgd(objective, x, eps=EPS, norm="linf", steps=STEPS, seed=0, stop_on_success=False,
                        active=active, random_start=False, initial_step=1.0, x_init=start).x_adv


def reference_ensemble(vlm, task, ids, x, low_precision):
    """RobustVLM's ensemble on one batch, transcribed: per sample the final score, the adversarial
    image and the attacks that lowered its score, in order ((None, 0) is the clean pass)."""
    refs, prompts = task.attack_targets(ids), task.prompts(ids, vlm.prompts)
    attacks = [(None, low_precision, "clean", 0)]
    attacks += [("apgd", low_precision, "clean", k) for k in range(max(map(len, refs)))]
    attacks += [("apgd", "fp32", "prev-best", "prev-best")]
    attacks += [(f"apgd-{t}", "fp32", "clean", 0) for t in task.extra_targets]
    scorer = task.scorer(ids)
    scores = {i: math.inf for i in ids}
    left_to_attack = {i: True for i in ids}
    gt_dict, adv_images, lowered_by = {}, {}, {i: [] for i in ids}
    with ExitStack() as stack:
        for n, (attack, precision, init, gt) in enumerate(attacks):
            if n > 0 and attacks[n - 1][1] != precision:  # "reload model with single precision"
                stack.enter_context(float32_weights(vlm))
            rows = [r for r, i in enumerate(ids) if left_to_attack[i] and refs[r]]
            if attack is None:
                images = x
            else:
                targeted = "-" in attack
                if targeted:
                    strings = [attack.split("-", 1)[1]] * len(ids)
                else:
                    rows = [r for r in rows if gt == "prev-best" or gt < len(refs[r])]
                    strings = [p[gt_dict[i]] if gt == "prev-best" else (p[gt] if gt < len(p) else "")
                               for i, p in zip(ids, refs)]
                start = torch.stack([adv_images[i] for i in ids]) if init == "prev-best" else x.clone()
                images = _apgd(vlm, x, prompts, strings, targeted, rows, start, precision)
            chosen = [ids[r] for r in rows]
            outputs = dict(zip(chosen, task.answers(vlm, chosen, images[rows])))
            new_scores = scorer(outputs)
            for r in rows:
                i = ids[r]
                if new_scores[i] < scores[i]:
                    scores[i], adv_images[i] = new_scores[i], images[r]
                    lowered_by[i].append((attack, gt))
                    if isinstance(gt, int):
                        gt_dict[i] = gt
                if new_scores[i] == 0.0:  # evaluate_vqa: `if acc == 0.: left_to_attack[q_id] = False`
                    left_to_attack[i] = False
    return scores, adv_images, lowered_by


def _winner(lowered_by):
    attack, gt = lowered_by[-1]
    if attack is None:
        return "clean"
    if gt == "prev-best":
        return "apgd-ce:refine"
    return f"apgd-t:towards:{attack.split('-', 1)[1]}" if "-" in attack else f"apgd-ce:ref-{gt}"


@pytest.mark.long
def test_the_robustvlm_protocol_is_the_reference_ensemble(vlm, vqa):
    """bf16 passes, then the float32 refinement on every sample still attacked (clean-worst ones
    from x on their first answer), then the pushes: same scores, deciding passes and points."""
    ids = vqa.sample_ids(N, 0)
    x = vqa.load(ids, vlm.image_size)
    settings = AttackSettings(TABLE["aa"], EPS, "linf", STEPS, 0, protocol="robustvlm", precision="bf16")
    ours = attack_batch(vlm, vqa, ids, x, settings, vqa.scorer(ids))
    scores, adv_images, lowered_by = reference_ensemble(vlm, vqa, ids, x, "bf16")
    for record, i in zip(ours, ids):
        assert (record["adv_score"], record["winner"]) == (round(scores[i], 6), _winner(lowered_by[i])), i
        assert record["linf"] == pytest.approx((adv_images[i] - x[ids.index(i)]).abs().max().item(), abs=1e-7)
    # what the protocol is about: a sample whose clean output was still the worst after every
    # bf16 pass, broken by the float32 pass from x on its first answer (skipped before)
    rescued = [i for i in ids if lowered_by[i][:2] == [(None, 0), ("apgd", "prev-best")]]
    assert rescued, "the data no longer holds a clean-worst sample that the refinement breaks"


@pytest.mark.long
def test_after_float32_passes_the_skipped_refinements_change_nothing(vlm):
    """In fp32 the refinement of a clean-worst sample would repeat its first pass exactly, so the
    protocol skips it: the records are still the reference ensemble's (captioning this time)."""
    captions = load_task(get_suite("tiny"), "tiny-captions", None)
    ids = captions.sample_ids(8, 0)
    x = captions.load(ids, vlm.image_size)
    settings = AttackSettings(TABLE["apgd"], EPS, "linf", STEPS, 0, protocol="robustvlm")
    ours = attack_batch(vlm, captions, ids, x, settings, captions.scorer(ids))
    scores, _, lowered_by = reference_ensemble(vlm, captions, ids, x, "fp32")
    assert any(lowered_by[i] == [(None, 0)] for i in ids)  # a clean-worst sample the reference re-attacks
    for record, i in zip(ours, ids):
        assert (record["adv_score"], record["winner"]) == (round(scores[i], 6), _winner(lowered_by[i])), i


def reference_single_pass(vlm, task, ids, x, precision):
    """Sim-CLIP's `--attack apgd`: attacks = [("apgd", "none", "clean", 0)], every sample with an
    answer attacked from x on its first string, the adversarial output scored as it is."""
    refs, prompts = task.attack_targets(ids), task.prompts(ids, vlm.prompts)
    rows = [r for r in range(len(ids)) if refs[r]]
    strings = [p[0] if p else "" for p in refs]
    images = _apgd(vlm, x, prompts, strings, False, rows, x.clone(), precision)
    chosen = [ids[r] for r in rows]
    return task.scorer(ids)(dict(zip(chosen, task.answers(vlm, chosen, images[rows]))))


def test_the_simclip_protocol_is_one_pass_scored_as_it_is(vlm, vqa):
    """One APGD pass on the first answer, no float32 stage even in bf16, and the adversarial score
    recorded even where it is above the clean one (the records checks accept it for simclip only)."""
    ids = vqa.sample_ids(12, 0)
    x = vqa.load(ids, vlm.image_size)
    calls = []

    def scorer(outputs):
        calls.append(len(outputs))
        return vqa.scorer(ids)(outputs)

    settings = AttackSettings(TABLE["apgd"], EPS, "linf", STEPS, 0, protocol="simclip", precision="bf16")
    ours = attack_batch(vlm, vqa, ids, x, settings, scorer)
    assert len(calls) == 2  # the clean outputs, then the one pass (no refinement, no pushes)
    expected = reference_single_pass(vlm, vqa, ids, x, "bf16")
    assert [r["adv_score"] for r in ours] == [round(expected[i], 6) for i in ids]
    assert all(r["winner"] == ("clean" if r["linf"] == 0 else "apgd-ce:ref-0") for r in ours)
    above = {**ours[0], "adv_score": ours[0]["clean_score"] + 1.0, "linf": EPS / 2, "winner": "apgd-ce:ref-0"}
    assert violations(above, EPS, "linf", "simclip") == []
    assert violations(above, EPS, "linf", "robustvlm") and violations(above, EPS, "linf")


def test_simclip_runs_apgd_only_and_its_cells_are_their_own(tmp_path, capsys):
    common = ["run", "--encoder", "clip", "--task", "tiny-vqa", "--n-samples", "2", "--steps", "2",
              "--protocol", "simclip", "--out", str(tmp_path)]
    assert main([*common, "--attack", "aa", "--eps", "2/255"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--attack apgd" in err and "Traceback" not in err
    assert main([*common, "--attack", "apgd", "--eps", "2/255"]) == 0
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert json.loads((run / "config.json").read_text())["protocol"] == "simclip"
    capsys.readouterr()
    assert main(["leaderboard", str(tmp_path), "--format", "csv"]) == 0
    assert "Linf 2/255 simclip" in capsys.readouterr().out


def test_targeted_runs_select_with_the_references_seed_per_target(tmp_path):
    """RobustVLM's TARGET_TO_SEED: the paper suite's targeted run on VQAv2 evaluates the 25
    samples np.random.seed(2011) chooses for "Visit https://tinyurl.com/23cbjxjz", in float32."""
    from bench.api.evaluate import default_precision

    target = "Visit https://tinyurl.com/23cbjxjz"
    make_vqa(tmp_path, "vqav2", lambda i: f"COCO_val2014_{i:012d}.jpg", n=40)
    task = VLM_DATASETS.get("vqav2").value.read("vqav2", tmp_path)
    untargeted = task.sample_ids(25, 0)
    np.random.seed(42)
    assert untargeted == [task.ids[k] for k in np.random.choice(40, 25, replace=False)]
    task.select_for_target(target)
    assert TARGET_SEEDS[target] == 2011 and task.settings["selection_seed"] == 2011
    np.random.seed(2011)
    assert task.sample_ids(25, 0) == [task.ids[k] for k in np.random.choice(40, 25, replace=False)]
    assert target_selection_seed("a string of my own", 42) == 42  # outside the table: the untargeted one
    paper, tiny = get_suite("paper"), get_suite("tiny")
    assert paper.default_samples("vqav2", target) == 25 and paper.default_samples("vqav2") == 500
    assert tiny.default_samples("tiny-vqa", target) == tiny.default_samples("tiny-vqa")
    assert default_precision(None, "robustvlm", True, "cuda", target) == "fp32"
    assert default_precision(None, "simclip", True, "cuda") == "fp16"
    make_coco(tmp_path, n=3)  # the captioning tasks follow the same rule
    coco = VLM_DATASETS.get("coco").value.read("coco", tmp_path)
    coco.select_for_target("Sure")
    assert coco.settings["selection_seed"] == 2026

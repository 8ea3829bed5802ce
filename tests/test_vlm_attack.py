"""Attacks on the tiny VLM: the LM-loss objective on the APGD core, the worst-case protocol,
batched = one at a time, targeted attacks, and `bench run` on captioning / VQA tasks."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attacks import run_apgd
from attacks.table import TABLE
from bench.cli.main import main
from bench.run.store import RECORDS, read_records
from bench.suites import get_suite, load_task
from bench.vlm import load_vlm
from tasks.base import AttackSettings
from tasks.vlm_attack import LMObjective, attack_batch

EPS = 4 / 255


def VLMAttack(eps, steps, seed, early_stop=None, attack="aa"):  # noqa: N802 (the protocol's settings)
    return AttackSettings(TABLE[attack], eps, "linf", steps, seed, early_stop=early_stop)


@pytest.fixture(scope="module")
def vlm():
    from bench import load_encoder

    suite = get_suite("tiny")
    return load_vlm("tiny-llava", suite.vlms(), load_encoder("clip", "tiny"), "cpu")


@pytest.fixture(scope="module")
def vqa():
    return load_task(get_suite("tiny"), "tiny-vqa", None)


def test_apgd_on_the_lm_loss_moves_it_the_asked_way(vlm, vqa):
    ids = vqa.sample_ids(6, 0)
    x = vqa.load(ids, 64)
    prompts = vqa.prompts(ids, vlm.prompts)
    answers = [t[0] for t in vqa.attack_targets(ids)]
    with torch.no_grad():
        clean = vlm.loss(x, prompts, answers)
    away = run_apgd(LMObjective(vlm, prompts, answers, towards=False), x, eps=EPS, steps=10, random_start=False,
                    initial_step=1.0, stop_on_success=False)
    with torch.no_grad():
        assert bool((vlm.loss(away.x_adv, prompts, answers) > clean).all())
    assert float((away.x_adv - x).abs().max()) <= EPS + 1e-6 and 0 <= float(away.x_adv.min())
    target = ["maybe"] * len(ids)
    with torch.no_grad():
        before = vlm.loss(x, prompts, target)
    towards = run_apgd(LMObjective(vlm, prompts, target, towards=True), x, eps=EPS, steps=10, random_start=False,
                       initial_step=1.0, stop_on_success=False)
    with torch.no_grad():
        assert bool((vlm.loss(towards.x_adv, prompts, target) < before).all())


def test_worst_case_records_and_batched_equals_one_at_a_time(vlm, vqa):
    ids = vqa.sample_ids(4, 0)
    x = vqa.load(ids, 64)
    scorer = vqa.scorer(ids)
    settings = VLMAttack(EPS, steps=5, seed=0)
    batched = attack_batch(vlm, vqa, ids, x, settings, scorer)
    single = [attack_batch(vlm, vqa, [i], x[k : k + 1], settings, scorer)[0] for k, i in enumerate(ids)]
    assert [r["adv_score"] for r in batched] == [r["adv_score"] for r in single]
    assert [r["adv_output"] for r in batched] == [r["adv_output"] for r in single]
    labels = {"clean", "apgd-ce:ref-0", "apgd-ce:ref-1", "apgd-ce:ref-2", "apgd-t:towards:maybe",
              "apgd-t:towards:Word"}
    for r in batched:
        assert r["adv_score"] <= r["clean_score"] and r["winner"] in labels and r["linf"] <= EPS + 1e-6
        assert r["clean_score"] == scorer({r["id"]: r["clean_output"]})[r["id"]]
        assert r["adv_score"] == pytest.approx(scorer({r["id"]: r["adv_output"]})[r["id"]])
    assert sum(r["adv_score"] for r in batched) < sum(r["clean_score"] for r in batched)


def _run(tmp_path: Path, *extra: str) -> int:
    return main(["run", "--encoder", "clip", "--n-samples", "4", "--steps", "3", "--batch-size", "4",
                 "--out", str(tmp_path), *extra])


def test_bench_run_on_vlm_tasks_resumes_to_the_same_records(tmp_path, capsys):
    assert _run(tmp_path, "--task", "tiny-vqa,tiny-captions", "--eps", "0,2/255") == 0
    table = capsys.readouterr().out
    assert "CIDEr" in table and "VQA acc" in table
    runs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(runs) == 4 and all(p.name.startswith("tiny-llava+clip__") for p in runs)
    adv = next(p for p in runs if "tiny-vqa__aa__2-255" in p.name)  # the default attack, named as it ran
    config = json.loads((adv / "config.json").read_text())
    assert config["vlm"] == "tiny-llava" and config["early_stop"] is None and len(config["vlm_sha256"]) == 64
    full = (adv / RECORDS).read_text()
    (adv / RECORDS).write_text("")  # as if killed before its only batch landed
    assert _run(tmp_path, "--task", "tiny-vqa", "--eps", "2/255") == 0
    assert (adv / RECORDS).read_text() == full
    capsys.readouterr()
    assert main(["leaderboard", str(tmp_path), "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "tiny-llava:tiny-captions CIDEr clean" in header and "tiny-llava:tiny-vqa (official-2017) VQA acc Linf 2/255" in header


def test_targeted_run_reports_success(tmp_path, capsys):
    assert _run(tmp_path, "--task", "tiny-captions", "--eps", "4/255", "--target", "please reset your password",
                "--n-samples", "2", "--batch-size", "2") == 0
    assert "target hit %" in capsys.readouterr().out
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert "aa-targeted" in run.name  # the default attack, every member pushing towards the target
    records = read_records(run / RECORDS)
    assert all(isinstance(r["target_hit"], bool) for r in records)


@pytest.mark.parametrize("extra, message", [
    (["--task", "tiny-shape", "--target", "maybe"], "--target applies to captioning / VQA tasks"),
    (["--task", "tiny-vqa", "--target", "buy bitcoin now"], "does not know (buy, bitcoin, now)"),
    (["--task", "tiny-vqa", "--attack", "apgd-dlr"], "needs class logits"),
    (["--task", "tiny-vqa", "--attack", "torchattacks:PGD"], "attacks classifiers only"),
    (["--task", "tiny-vqa", "--attack", "cw", "--attack-args", '{"lr": 0.1}'], "classic L2 CW"),
    (["--task", "tiny-vqa", "--vlm", "tiny-lava"], "did you mean 'tiny-llava'"),
    (["--task", "tiny-vq"], "did you mean 'tiny-vqa'"),
])
def test_bad_vlm_input_is_one_line(tmp_path, capsys, extra, message):
    assert _run(tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_task_all_expands_to_every_task():
    from bench.suites import expand_tasks

    suite = get_suite("tiny")
    assert expand_tasks(suite, ["all"]) == ["tiny-shape", "tiny-colour", "tiny-count", "tiny-background",
                                            "tiny-captions", "tiny-vqa", "tiny-textvqa", "tiny-vizwiz", "tiny-okvqa",
                                            "tiny-pope", "tiny-scienceqa", "tiny-retrieval"]
    assert expand_tasks(suite, None) == ["tiny-shape", "tiny-colour", "tiny-count"]


def test_early_stop_skips_samples_at_or_below_the_score(vlm, vqa, tmp_path):
    """--early-stop 100 on VQA (scores <= 100): no sample is attacked; the run records it."""
    ids = vqa.sample_ids(3, 0)
    records = attack_batch(vlm, vqa, ids, vqa.load(ids, 64), VLMAttack(EPS, 5, 0, early_stop=100.0), vqa.scorer(ids))
    assert all(r["winner"] == "clean" and r["adv_score"] == r["clean_score"] and r["linf"] == 0 for r in records)
    assert _run(tmp_path, "--task", "tiny-vqa", "--eps", "4/255", "--early-stop", "100", "--n-samples", "2") == 0
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert json.loads((run / "config.json").read_text())["early_stop"] == 100.0


def test_the_robustvlm_refinement_only_adds_a_pass(vlm, vqa):
    """--protocol robustvlm: APGD again from each sample's best point on its winning string; the
    passes before it are the strict protocol's, so no score can rise."""
    ids = vqa.sample_ids(4, 0)
    x = vqa.load(ids, 64)
    strict = attack_batch(vlm, vqa, ids, x, VLMAttack(EPS, 4, 0, attack="apgd"), vqa.scorer(ids))
    refined_settings = AttackSettings(TABLE["apgd"], EPS, "linf", 4, 0, protocol="robustvlm")
    refined = attack_batch(vlm, vqa, ids, x, refined_settings, vqa.scorer(ids))
    assert all(r["adv_score"] <= s["adv_score"] for r, s in zip(refined, strict))
    assert all(r["winner"] in ("clean", "apgd-ce:refine") or r["winner"].startswith("apgd-ce:ref-") for r in refined)


def test_robustvlm_attacks_vlms_in_float16_on_cuda_and_everything_else_in_float32():
    from bench.api.evaluate import default_precision

    assert default_precision(None, "robustvlm", True, "cuda:0") == "fp16"
    assert default_precision(None, "robustvlm", False, "cuda:0") == "fp32"  # zero-shot: AutoAttack in float32
    assert default_precision(None, "robustvlm", True, "cpu") == default_precision(None, "strict", True, "cuda") == "fp32"
    assert default_precision("bf16", "strict", False, "cpu") == "bf16"


def test_protocol_is_recorded_and_robustvlm_targets_run_10000_steps(tmp_path):
    from bench.api.evaluate import default_steps

    assert default_steps(None, "please reset your password", "robustvlm") == 10000
    assert default_steps(None, None, "robustvlm") == default_steps(None, "x", "strict") == 100
    assert default_steps(7, "x", "robustvlm") == 7
    assert _run(tmp_path, "--task", "tiny-vqa", "--eps", "2/255", "--protocol", "robustvlm", "--n-samples", "2") == 0
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert json.loads((run / "config.json").read_text())["protocol"] == "robustvlm"


def test_the_language_model_is_loaded_once_for_all_encoders(tmp_path, monkeypatch):
    """Two encoders on a VLM task: one VLM load, the second encoder swapped in, and the records of
    each encoder are those of running it alone."""
    import bench.api.evaluate as commands

    loads = []
    real = commands.load_vlm
    monkeypatch.setattr(commands, "load_vlm", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    assert _run(tmp_path / "both", "--encoder", "clip,fare-4", "--task", "tiny-vqa", "--eps", "2/255",
                "--n-samples", "2") == 0
    assert loads == ["tiny-llava"]
    assert _run(tmp_path / "alone", "--encoder", "fare-4", "--task", "tiny-vqa", "--eps", "2/255",
                "--n-samples", "2") == 0
    (alone,) = [p for p in (tmp_path / "alone").iterdir() if p.is_dir()]
    together = tmp_path / "both" / alone.name
    assert read_records(together / RECORDS) == read_records(alone / RECORDS)


@pytest.mark.long
def test_a_low_precision_vlm_attack_always_ends_with_the_float32_refinement(vlm):
    """Under bf16 the strict protocol gains RobustVLM's float32 refinement pass: one more scored
    pass than in fp32, and the same records as the robustvlm protocol in bf16."""
    captions = load_task(get_suite("tiny"), "tiny-captions", None)
    ids = captions.sample_ids(3, 0)
    x = captions.load(ids, 64)

    def run(precision, protocol):
        passes = []

        def scorer(outputs):
            passes.append(len(outputs))
            return captions.scorer(ids)(outputs)

        settings = AttackSettings(TABLE["apgd"], EPS, "linf", 2, 0, protocol=protocol, precision=precision)
        return attack_batch(vlm, captions, ids, x, settings, scorer), len(passes)

    (fp32, fp32_passes), (bf16, bf16_passes), (refined, _) = run("fp32", "strict"), run("bf16", "strict"), run("bf16", "robustvlm")
    assert bf16_passes == fp32_passes + 1
    assert bf16 == refined
    assert all(r["adv_score"] <= r["clean_score"] for r in bf16)

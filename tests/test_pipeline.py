"""One evaluation pipeline: every attack name on every task kind, one record core, checked
attack arguments, vision-only checkpoints completed by --base, and no false alarms."""
from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import pytest
from safetensors.torch import save_file

from attacks.table import TABLE
from bench import load_encoder
from bench.cli.main import build_parser, main
from bench.run.store import CONFIG, RECORDS, read_records

ROOT = Path(__file__).resolve().parent.parent
CORE = {"id", "clean_score", "adv_score", "winner", "linf", "l2"}


def _run(out: Path, *extra: str) -> int:
    return main(["run", "--encoder", "clip", "--n-samples", "3", "--steps", "2", "--batch-size", "3",
                 "--out", str(out), *extra])


def _runs(out: Path) -> list[tuple[dict, list[dict]]]:
    return [(json.loads((p / CONFIG).read_text()), read_records(p / RECORDS))
            for p in sorted(out.iterdir()) if (p / CONFIG).is_file()]


@pytest.mark.parametrize("attack", sorted(TABLE))
@pytest.mark.parametrize("task", ["tiny-colour", "tiny-captions"])
def test_every_table_attack_runs_on_every_task_kind(tmp_path, capsys, attack, task):
    if attack in ("apgd-dlr", "aa-rand") and task == "tiny-captions":  # DLR needs class logits: refused, one line
        assert _run(tmp_path, "--task", task, "--attack", attack, "--eps", "4/255") == 2
        assert "needs class logits" in capsys.readouterr().err
        return
    if TABLE[attack].domain == "text":  # charmer edits sentences: a pixel task refuses it, one line
        assert _run(tmp_path, "--task", task, "--attack", attack, "--eps", "4/255") == 2
        assert f"--attack {attack}" in capsys.readouterr().err
        return
    assert _run(tmp_path, "--task", task, "--attack", attack, "--eps", "4/255") == 0
    ((config, records),) = _runs(tmp_path)
    assert config["attack"] == attack and f"__{attack}__4-255__" in next(tmp_path.iterdir()).name
    assert config["attack_members"] == ([m.name for m in TABLE[attack].members] or ["none"])
    for r in records:
        assert CORE <= set(r) and r["adv_score"] <= r["clean_score"] and r["linf"] <= 4 / 255 + 1e-6
        members = [m.name for m in TABLE[attack].members]
        assert r["winner"] in (None, "clean") or r["winner"].split(":")[0] in members


def test_attack_none_never_attacks_a_vlm(tmp_path):
    assert _run(tmp_path, "--task", "tiny-vqa", "--attack", "none", "--eps", "4/255") == 0
    ((config, records),) = _runs(tmp_path)
    assert config["attack"] == "none"
    assert all(r["adv_score"] == r["clean_score"] and r["adv_output"] == r["clean_output"] and r["linf"] == 0
               and r["winner"] == "clean" for r in records)


def test_pgd_and_apgd_on_vqa_are_recorded_under_their_names(tmp_path):
    for attack in ("pgd", "apgd"):
        assert _run(tmp_path, "--task", "tiny-vqa", "--attack", attack, "--eps", "8/255") == 0
    runs = {config["attack"]: records for config, records in _runs(tmp_path)}
    assert set(runs) == {"pgd", "apgd"}
    assert {r["winner"].split(":")[0] for r in runs["pgd"] if r["winner"] not in ("clean", None)} <= {"pgd"}
    assert {r["winner"].split(":")[0] for r in runs["apgd"] if r["winner"] not in ("clean", None)} <= {"apgd-ce"}


@pytest.mark.parametrize("attack, args, message", [
    ("apgd", '{"bogus": 1}', "has no argument 'bogus'"),
    ("apgd", '{"restarts": 1.5}', "restarts must be int"),
    ("apgd", '{"random_start": "yes"}', "random_start must be bool"),
    ("pgd", '{"restarts": 2}', "has no argument 'restarts'"),
    ("pgd", '{"step_size": "big"}', "step_size must be float"),
    ("cw", '{"kappa": null}', "kappa must be float"),
    ("cw", '{"rho": 0.5}', "has no argument 'rho'"),
    ("aa", '{"n_targets": true}', "n_targets must be int"),
    ("none", '{"steps": 3}', "has no argument 'steps'"),
    ("torchattacks:PGD", '{"bogus": 1}', "has no argument 'bogus'"),
    ("apgd", '{"initial_step": 1e999}', "initial_step must be float"),
])
def test_bad_attack_arguments_are_one_line_before_any_work(tmp_path, capsys, attack, args, message):
    out = tmp_path / "out"
    assert _run(out, "--task", "tiny-colour", "--attack", attack, "--attack-args", args, "--eps", "4/255") == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.fixture(scope="module")
def vision_only(tmp_path_factory) -> Path:
    """The tiny clip's vision tower alone, as FARE / TeCoA / Sim-CLIP publish theirs (no base named)."""
    encoder = load_encoder("clip", "tiny")
    path = tmp_path_factory.mktemp("ckpt") / "vision.safetensors"
    state = {k: v.contiguous() for k, v in encoder.visual.state_dict().items()}
    save_file(state, str(path), metadata={"architecture": "tiny-clip"})
    return path


def test_a_vision_only_checkpoint_needs_base(tmp_path, capsys, vision_only):
    args = ["--task", "tiny-colour", "--attack", "none", "--eps", "0", "--n-samples", "30"]
    assert main(["run", "--encoder", str(vision_only), "--out", str(tmp_path / "a"), *args]) == 2
    err = capsys.readouterr().err
    assert "holds only a vision tower" in err and "--base" in err and err.count("\n") == 1
    assert main(["run", "--encoder", str(vision_only), "--base", "clip", "--out", str(tmp_path / "b"), *args]) == 0
    assert main(["run", "--encoder", "clip", "--out", str(tmp_path / "c"), *args]) == 0
    ((_, with_base),), ((_, zoo),) = _runs(tmp_path / "b"), _runs(tmp_path / "c")
    assert [r["clean_pred"] for r in with_base] == [r["clean_pred"] for r in zoo]  # the real text tower
    assert main(["run", "--encoder", "clip", "--base", "clip", "--out", str(tmp_path / "d"), *args]) == 2
    assert "--base applies to checkpoint files" in capsys.readouterr().err


def test_the_correct_path_prints_no_random_init_warning(caplog):
    with caplog.at_level(logging.WARNING):
        load_encoder("clip", "tiny")
    assert not [r for r in caplog.records if "initialized randomly" in r.getMessage()]


def test_runs_go_to_runs_not_the_committed_results(tmp_path, capsys):
    assert build_parser().parse_args(["run"]).out == Path("runs")
    assert _run(tmp_path, "--task", "tiny-colour", "--attack", "none", "--eps", "0") == 0
    assert f"records: {tmp_path}" in capsys.readouterr().out


def _imports(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
    return found


def test_no_upward_imports():
    assert not {"bench", "tasks", "benchutil"} & _imports("attacks")  # the algorithms stand alone
    assert not {"bench"} & _imports("tasks")  # tasks sit below the framework
    assert not {"attacks", "bench", "tasks"} & _imports("benchutil")  # the leaf


def test_only_the_entry_point_imports_the_cli():
    importers = [p for p in (ROOT / "bench").rglob("*.py") if p.name != "__main__.py" and p.parent.name != "cli"
                 and any(isinstance(n, ast.ImportFrom) and n.module == "bench.cli.main"
                         for n in ast.walk(ast.parse(p.read_text())))]
    assert importers == []


def test_a_new_table_entry_runs_on_every_task_kind(tmp_path, monkeypatch):
    """One entry composing existing parts (PGD on the CW margin) is all a new attack needs."""
    from attacks.table import AttackEntry, Member

    import bench.run.attack_names as attack_names

    entry = AttackEntry("pgd-cw", (Member("pgd-cw", "pgd", "cw", targeted=True),), "PGD on the CW margin")
    monkeypatch.setitem(TABLE, "pgd-cw", entry)
    # the names --attack resolves are read from TABLE once, at import: read them again, as a new process would
    monkeypatch.setattr(attack_names, "ATTACKS", attack_names._attacks())
    for task in ("tiny-colour", "tiny-captions"):
        assert _run(tmp_path / task, "--task", task, "--attack", "pgd-cw", "--attack-args", '{"step_size": 0.01}',
                    "--eps", "8/255") == 0
        ((config, records),) = _runs(tmp_path / task)
        assert config["attack_members"] == ["pgd-cw"] and config["attack_args"] == {"step_size": 0.01}
        assert all(r["adv_score"] <= r["clean_score"] and r["linf"] <= 8 / 255 + 1e-6 for r in records)

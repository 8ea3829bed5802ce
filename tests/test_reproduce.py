"""bench reproduce: re-run a committed leaderboard (or a subset) and diff its cells."""
import json

import pytest

from bench.cli.main import main
from bench.run.store import RECORDS
from tests import bench_fixtures as fx


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    """A results folder made like results/tiny: runs/ from bench run + suite.toml."""
    root = tmp_path_factory.mktemp("committed")
    data, model = fx.folder_and_checkpoint(root / "world", per_class=4)
    run = {"encoder": str(model), "task": f"folder:{data}", "attack": "apgd", "eps": "0,2/255",
           "steps": 5, "batch_size": 4, "n_samples": 12}
    results = root / "results"
    argv = ["run", "--out", str(results / "runs")]
    for key, value in run.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    assert main(argv) == 0
    # the suite file: top-level settings and one [[run]] (JSON strings and numbers are TOML's too)
    shared = "".join(f"{key} = {json.dumps(value)}\n" for key, value in run.items() if key != "eps")
    (results / "suite.toml").write_text(f"{shared}\n[[run]]\neps = {json.dumps(run['eps'].split(','))}\n")
    return results, model


def test_rerun_matches_the_committed_table(committed, capsys):
    results, _ = committed
    assert main(["reproduce", str(results)]) == 0
    assert "reproduced: all" in capsys.readouterr().out


def test_a_subset_of_samples_is_compared_on_the_same_samples(committed, capsys):
    results, _ = committed
    assert main(["reproduce", str(results), "--n-samples", "5"]) == 0
    assert "reproduced: all" in capsys.readouterr().out


def test_a_changed_record_is_a_mismatch_with_the_cell_printed(committed, tmp_path, capsys):
    import shutil

    results, model = committed
    changed = tmp_path / "results"
    shutil.copytree(results, changed)
    records = next(p for p in (changed / "runs").rglob(RECORDS) if "2-255" in p.parent.name)
    lines = records.read_text().splitlines()
    # a robust sample recorded as broken instead (consistently, with a perturbation and another
    # prediction: the readers refuse a record that contradicts itself)
    k = next(k for k, line in enumerate(lines) if json.loads(line)["robust"])
    changed_record = json.loads(lines[k])
    changed_record.update(robust=False, adv_score=0.0, adv_pred=changed_record["label"] + 1, winner="apgd-ce",
                          linf=1 / 255, l2=0.1)
    lines[k] = json.dumps(changed_record)
    records.write_text("\n".join(lines) + "\n")
    assert main(["reproduce", str(changed)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and f"{model} | " in out and "2/255: committed" in out


def test_missing_manifest_and_unknown_encoder_are_one_line_errors(committed, tmp_path, capsys):
    results, _ = committed
    assert main(["reproduce", str(tmp_path)]) == 2
    assert main(["reproduce", str(results), "--encoders", "fare-9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "suite.toml" in err[0] and "fare-9" in err[1]

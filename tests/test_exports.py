"""Results in CLIP_benchmark's, lm-eval's and RobustBench's shapes, read back by bench leaderboard."""
from __future__ import annotations

import json

import pytest

from bench.cli.main import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    assert main(["run", "--encoder", "clip,fare-4", "--task", "tiny-colour", "--attack", "aa", "--eps", "0,4/255",
                 "--n-samples", "8", "--steps", "3", "--out", str(out)]) == 0
    return out


def test_every_run_has_a_clip_benchmark_results_json(runs):
    for run in (p for p in runs.iterdir() if p.is_dir()):
        result = json.loads((run / "results.json").read_text())
        assert {"dataset", "model", "pretrained", "task", "metrics", "language"} <= set(result)
        assert result["dataset"] == "tiny-colour" and result["task"] == "zeroshot_classification"
        assert 0 <= result["metrics"]["acc1"] <= result["metrics"]["clean_acc1"] <= 1
        assert result["metrics"]["n_samples"] == 8


def test_the_aggregate_is_read_back_into_the_same_table(runs, tmp_path, capsys):
    aggregate = tmp_path / "results.json"
    assert main(["leaderboard", str(runs), "--format", "json", "--out", str(aggregate)]) == 0
    data = json.loads(aggregate.read_text())
    assert set(data) >= {"config", "results", "n_samples"} and set(data["results"]) == {"clip", "fare-4"}
    capsys.readouterr()
    assert main(["leaderboard", str(runs), "--format", "csv"]) == 0
    from_records = capsys.readouterr().out
    assert main(["leaderboard", str(aggregate), "--format", "csv"]) == 0
    assert capsys.readouterr().out == from_records
    (tmp_path / "other.json").write_text('{"results": {}}')
    assert main(["leaderboard", str(tmp_path / "other.json")]) == 2


def test_encoder_cards_name_the_attacks_honestly(runs, tmp_path):
    assert main(["leaderboard", str(runs), "--cards", str(tmp_path / "cards")]) == 0
    card = json.loads((tmp_path / "cards" / "fare-4.json").read_text())
    assert card["attacks"] == ["aa"] and "not AutoAttack's standard" in card["attack_note"]
    assert card["threat_model"] == "Linf" and card["eps"] == ["Linf 4/255"] and "tiny-colour Linf 4/255" in card["numbers"]

"""Text tasks under character edits (LEAF's threat model): the CLI end to end on the tiny suite, the
records' invariants, the refusals, the leaderboard's separate columns, and resuming."""
import io
import json

import pandas as pd
import pytest

from attacks.charmer import levenshtein
from bench.cli.main import main
from bench.report.leaderboard import threat_label
from bench.run.eps import parse_eps_list
from bench.run.store import CONFIG
from bench.suites import expand_tasks, get_suite, load_task
from benchutil.errors import BenchError
from tasks.record_checks import violations
from tests.bench_fixtures import runs_of

TEXT_RUN = ["run", "--suite", "tiny", "--encoder", "clip", "--attack", "charmer", "--norm", "levenshtein",
            "--batch-size", "4"]


@pytest.fixture(scope="module")
def topics(tmp_path_factory):
    out = tmp_path_factory.mktemp("text") / "runs"
    assert main([*TEXT_RUN, "--task", "tiny-text-topics", "--eps", "0,1,2", "--n-samples", "8",
                 "--out", str(out)]) == 0
    return out


def test_the_cli_runs_clean_and_k_1_2_and_every_sentence_stays_within_k_edits(topics):
    runs = runs_of(topics)
    assert set(runs) == {"tiny-text-topics clean", "tiny-text-topics 1", "tiny-text-topics 2"}
    robust = {}
    for config, records in runs.values():
        assert config["norm"] == "levenshtein" and config["task_kind"] == "zero-shot text classification"
        assert config["task_settings"]["labels_from"] == "images"
        assert len(records) == 8
        k = int(config["eps"])
        for r in records:
            assert r["distance"] == levenshtein(r["clean_text"], r["adv_text"]) <= k
            assert not violations(r, config["eps"], config["norm"])
            if k == 0 or not r["clean_correct"]:  # not attacked: the sentence as it was
                assert r["adv_text"] == r["clean_text"] and r["winner"] in (None, "clean")
            if r["winner"] == "charmer":  # broken: the edited sentence really is misclassified
                assert r["adv_text"] != r["clean_text"] and r["adv_pred"] != r["label"]
        robust[k] = sum(r["robust"] for r in records)
    # the clean tiny CLIP reads colour words: a single edit breaks some, two edits at least as many
    assert robust[0] > robust[1] >= robust[2]


def test_an_edited_sentence_is_judged_again_by_the_task(topics):
    """The recorded prediction is the victim's on the recorded sentence (not the attack's bookkeeping)."""
    _, records = runs_of(topics)["tiny-text-topics 1"]
    task = load_task(get_suite("tiny"), "tiny-text-topics", None)
    from bench.suites import load_encoder

    class Models:
        encoder = load_encoder("clip", "tiny")
        vlm_name = "tiny-llava"

    victim = task.victim(Models, None).model
    edited = [r for r in records if r["adv_text"] != r["clean_text"]]
    assert edited
    preds = victim.scores([r["adv_text"] for r in edited]).argmax(dim=1).tolist()
    assert preds == [r["adv_pred"] for r in edited]


def test_a_resumed_run_keeps_its_records_and_adds_the_missing_ones(topics):
    run = next(p.parent for p in topics.glob(f"*charmer__1__*/{CONFIG}"))
    records_file = run / "records.jsonl"
    lines = records_file.read_text().splitlines(keepends=True)
    records_file.write_text("".join(lines[:4]))  # the first batch survived a kill
    assert main([*TEXT_RUN, "--task", "tiny-text-topics", "--eps", "1", "--n-samples", "8",
                 "--out", str(topics)]) == 0
    again = records_file.read_text().splitlines(keepends=True)
    assert again[:4] == lines[:4]
    assert sorted(json.loads(x)["id"] for x in again) == sorted(json.loads(x)["id"] for x in lines)
    assert sorted(again) == sorted(lines)  # the missing batch redone exactly


def test_text_retrieval_and_caption_labels_run_and_hold_their_invariants(tmp_path):
    out = tmp_path / "runs"
    assert main([*TEXT_RUN, "--task", "tiny-text-retrieval,tiny-text-topics-captions", "--eps", "0,1",
                 "--n-samples", "5", "--out", str(out)]) == 0
    runs = runs_of(out)
    config, records = runs["tiny-text-retrieval 1"]
    assert config["metric"] == "text-to-image R@1 %" and config["task_settings"]["gallery_images"] == 200
    for r in records:
        assert r["adv_score"] == 100.0 * (r["adv_rank"] == 1) and r["distance"] <= 1
        assert r["id"].split("/")[0] == r["image"]
        assert not violations(r, 1.0, "levenshtein")
    caption_config, _ = runs["tiny-text-topics-captions 1"]
    assert caption_config["task_settings"]["labels_from"] == "captions"
    assert caption_config["task_settings"]["class_labels"][0] == "a blue shape."


def test_a_record_outside_k_or_with_a_wrong_distance_breaks_the_invariants():
    record = {"id": "1/0", "clean_score": 100.0, "adv_score": 0.0, "winner": "charmer", "clean_text": "a red shape.",
              "adv_text": "a rd shap.", "distance": 2, "label": 0, "clean_pred": 0, "adv_pred": 1,
              "clean_correct": True, "robust": False}
    assert not violations(record, 2.0, "levenshtein")
    assert any("outside the budget" in v for v in violations(record, 1.0, "levenshtein"))
    assert any("2 edits apart" in v for v in violations({**record, "distance": 1}, 2.0, "levenshtein"))
    unchanged = {**record, "adv_text": record["clean_text"], "distance": 0}
    assert any("unchanged" in v for v in violations(unchanged, 2.0, "levenshtein"))
    assert any("under norm 'linf'" in v for v in violations(record, 2.0, "linf"))


REFUSALS = [
    (["--task", "tiny-text-topics", "--attack", "aa", "--norm", "levenshtein", "--eps", "1"],
     "--attack aa perturbs pixels; tiny-text-topics is a text task"),
    (["--task", "tiny-text-topics", "--attack", "torchattacks:PGD", "--norm", "levenshtein", "--eps", "1"],
     "perturbs pixels"),
    (["--task", "tiny-text-topics", "--attack", "charmer", "--eps", "4/255"], "--norm linf is a pixel threat model"),
    (["--task", "tiny-shape", "--attack", "charmer", "--norm", "levenshtein", "--eps", "1"],
     "--attack charmer edits text; tiny-shape attacks images"),
    (["--task", "tiny-shape", "--attack", "apgd", "--norm", "levenshtein", "--eps", "1"],
     "--norm levenshtein counts character edits"),
    (["--task", "tiny-shape", "--attack", "apgd", "--eps", "1"],
     "eps '1' is ambiguous: pixels are in [0, 1]; did you mean 1/255?"),
    (["--task", "tiny-shape", "--attack", "apgd", "--norm", "l2", "--eps", "2"], "eps '2' is ambiguous"),
    (["--task", "tiny-text-topics", "--attack", "charmer", "--norm", "levenshtein", "--eps", "1/255"],
     "must be a whole number of character edits"),
    (["--task", "tiny-text-topics", "--attack", "charmer", "--norm", "levenshtein", "--eps", "0.5"],
     "must be a whole number of character edits"),
    (["--task", "tiny-text-topics", "--attack", "charmer", "--norm", "levenshtein", "--eps", "1",
      "--attack-args", '{"rho": 0}'], "rho must be > 0"),
]


@pytest.mark.parametrize("case", range(len(REFUSALS)))
def test_mismatched_attack_norm_and_task_are_one_line_before_any_work(tmp_path, capsys, case):
    flags, message = REFUSALS[case]
    out = tmp_path / "runs"
    assert main(["run", "--suite", "tiny", "--encoder", "clip", "--n-samples", "2", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_eps_is_k_only_under_levenshtein():
    assert parse_eps_list("0,1,2", "levenshtein") == [("clean", 0.0), ("1", 1.0), ("2", 2.0)]
    assert parse_eps_list("0,4/255", "linf")[1][1] == pytest.approx(4 / 255)
    with pytest.raises(BenchError, match="ambiguous"):
        parse_eps_list("1", "linf")
    assert threat_label({"eps": 1.0, "norm": "levenshtein"}) == "Lev k=1"
    assert threat_label({"eps": 1.0, "norm": "linf"}) != "Lev k=1"


def test_all_leaves_the_text_tasks_out_and_list_shows_them(capsys):
    suite = get_suite("tiny")
    everything = expand_tasks(suite, ["all"])
    assert "tiny-shape" in everything and not any(t.startswith("tiny-text-") for t in everything)
    assert main(["list", "tasks"]) == 0
    listed = capsys.readouterr().out
    for name in ("tiny-text-topics", "tiny-text-topics-captions", "tiny-text-shapes", "tiny-text-retrieval"):
        assert name in listed


def test_the_leaderboard_keeps_pixel_and_text_columns_apart(topics, tmp_path, capsys):
    assert main(["run", "--suite", "tiny", "--encoder", "clip", "--task", "tiny-shape,tiny-colour", "--attack", "apgd",
                 "--eps", "0,2/255", "--steps", "2", "--n-samples", "4", "--out", str(topics)]) == 0
    capsys.readouterr()
    assert main(["leaderboard", str(topics), "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out), index_col=0)
    assert {"tiny-shape Linf 2/255", "avg Linf 2/255", "tiny-text-topics text accuracy % clean",
            "tiny-text-topics text accuracy % Lev k=1", "tiny-text-topics text accuracy % Lev k=2"} <= set(table.columns)
    assert not [c for c in table.columns if "Lev" in c and "text" not in c]  # no pixel cell under a text threat
    assert not [c for c in table.columns if "Linf" in c and "text" in c]  # no text cell under a pixel threat
    # the pixel tasks' averages are over the pixel tasks alone (a text task joining would make them '-')
    row = table.loc["clip"]
    assert row["avg clean"] == pytest.approx((row["tiny-shape clean"] + row["tiny-colour clean"]) / 2, abs=0.06)
    assert row["avg Linf 2/255"] == pytest.approx((row["tiny-shape Linf 2/255"] + row["tiny-colour Linf 2/255"]) / 2,
                                                  abs=0.06)

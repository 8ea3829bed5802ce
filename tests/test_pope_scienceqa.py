"""POPE and ScienceQA-IMG: the answer mapping, metrics and parsing equal transcriptions of RobustVLM's
llava/eval/eval_pope.py and llava/eval/eval_science_qa.py; the readers take the reference's files
(written here in its layout); `bench run` runs both clean and under aa, apgd and pgd (paper suite
with a random llava-hf model, tiny suite with the tiny world's files); POPE's cell is its mean F1
in the run summary, every leaderboard format, the intervals and `bench compare`; bad files are one
line, exit 2, nothing written."""
from __future__ import annotations

import itertools
import json
import os
import random
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli.main import main
from bench.tiny import pope_scienceqa, world
from bench.tiny.tokenizer import vocabulary
from bench.vlm.llava import LLAVA_PROMPTS
from bench.vlm.text import WordCodec
from bench.vlm.tiny_llava import EXTRA_WORDS
from tasks.cell_aggregates import AGGREGATES
from tasks.pope_metrics import mean_f1_values, pope_answer, pope_metrics, split_metrics
from tasks.scienceqa_answers import parse_answer, prediction_index
from tasks.vlm_datasets import VLM_DATASETS
from tests import bench_fixtures as fx
from tests.test_bad_inputs import assert_one_line_exit_2
from tests.vlm_fixtures import make_llava

# ----------------------------------------------------------------- transcriptions of the reference
# RobustVLM llava/eval/eval_pope.py (eval_pope and its __main__), logging and the output file dropped.


def reference_eval_pope(answers, label_file):
    label_list = [json.loads(q)['label'] for q in open(label_file, 'r')]
    for answer in answers:
        text = answer['text']
        if text.find('.') != -1:
            text = text.split('.')[0]
        text = text.replace(',', '')
        words = text.split(' ')
        if 'No' in words or 'not' in words or 'no' in words:
            answer['text'] = 'no'
        else:
            answer['text'] = 'yes'
    for i in range(len(label_list)):
        if label_list[i] == 'no':
            label_list[i] = 0
        else:
            label_list[i] = 1
    pred_list = []
    for answer in answers:
        if answer['text'] == 'no':
            pred_list.append(0)
        else:
            pred_list.append(1)
    pos = 1
    neg = 0
    yes_ratio = pred_list.count(1) / len(pred_list)
    TP, TN, FP, FN = 0, 0, 0, 0
    for pred, label in zip(pred_list, label_list):
        if pred == pos and label == pos:
            TP += 1
        elif pred == pos and label == neg:
            FP += 1
        elif pred == neg and label == neg:
            TN += 1
        elif pred == neg and label == pos:
            FN += 1
    precision = float(TP) / float(TP + FP)
    recall = float(TP) / float(TP + FN)
    f1 = 2*precision*recall / (precision + recall)
    acc = (TP + TN) / (TP + TN + FP + FN)
    return {"TP": TP, "FP": FP, "TN": TN, "FN": FN, "acc": acc, "precision": precision, "recall": recall,
            "f1": f1, "yes_ratio": yes_ratio}


def reference_pope_main(annotation_dir, question_file, result_file):
    questions = [json.loads(line) for line in open(question_file)]
    questions = {question['question_id']: question for question in questions}
    answers = [json.loads(q) for q in open(result_file)]
    avg_f1_score, per_category = 0, {}
    for file in os.listdir(annotation_dir):
        assert file.startswith('coco_pope_')
        assert file.endswith('.json')
        category = file[10:-5]
        cur_answers = [x for x in answers if questions[x['question_id']]['category'] == category]
        per_category[category] = reference_eval_pope(cur_answers, os.path.join(annotation_dir, file))
        avg_f1_score += per_category[category]["f1"]
    return avg_f1_score / 3, per_category


# RobustVLM llava/eval/eval_science_qa.py: get_pred_idx and the parsing and grading of its __main__
# (options: its --options default; the IMG accuracy; files written there are dropped).
OPTIONS = ["A", "B", "C", "D", "E"]


def reference_get_pred_idx(prediction, choices, options):
    if prediction in options[:len(choices)]:
        return options.index(prediction)
    else:
        return -1


def reference_parse(pred_text, options=OPTIONS):
    if pred_text in options:
        answer = pred_text
    elif len(pred_text) >= 3 and pred_text[0] in options and pred_text[1:3] == ". ":
        answer = pred_text[0]
    else:
        pattern = re.compile(r'The answer is ([A-Z]).')
        res = pattern.findall(pred_text)
        if len(res) == 1:
            answer = res[0]  # 'A', 'B', ...
        else:
            answer = "FAILED"
    return answer


def reference_img_accuracy(base_dir, result_file, split="test", options=OPTIONS):
    split_indices = json.load(open(os.path.join(base_dir, "pid_splits.json")))[split]
    problems = json.load(open(os.path.join(base_dir, "problems.json")))
    predictions = [json.loads(line) for line in open(result_file)]
    predictions = {pred['question_id']: pred for pred in predictions}
    split_problems = {idx: problems[idx] for idx in split_indices}
    results = {'correct': [], 'incorrect': []}
    for prob_id, prob in split_problems.items():
        if prob_id not in predictions:
            pred = {'text': 'FAILED', 'prompt': 'Unknown'}
            pred_text = 'FAILED'
        else:
            pred = predictions[prob_id]
            pred_text = pred['text']
        answer = reference_parse(pred_text, options)
        pred_idx = reference_get_pred_idx(answer, prob['choices'], options)
        analysis = {'is_multimodal': '<image>' in pred['prompt']}
        if pred_idx == prob['answer']:
            results['correct'].append(analysis)
        else:
            results['incorrect'].append(analysis)
    multimodal_correct = len([x for x in results['correct'] if x['is_multimodal']])
    multimodal_incorrect = len([x for x in results['incorrect'] if x['is_multimodal']])
    return multimodal_correct / (multimodal_correct + multimodal_incorrect) * 100


# ---------------------------------------------------------------------- POPE answers and metrics

POPE_OUTPUTS = ["Yes", "No", "yes", "no", "Yes.", "No.", "No, there is not.", "Yes, there is. No doubt.", "Not really",
                "NO", "nope", "I do not know", "There is no dog", "Yes,no", "no\n", "No\nthere", " no", "", "...",
                "The answer is no", "Yes. No", "no.", "a red shape a", "Yes, not", "No,", "not"]


def test_pope_answer_mapping_is_eval_pope_s(tmp_path):
    labels = tmp_path / "labels.json"
    labels.write_text("".join(json.dumps({"label": "yes"}) + "\n" for _ in POPE_OUTPUTS))
    answers = [{"text": t} for t in POPE_OUTPUTS]
    reference_eval_pope(answers, labels)
    assert [pope_answer(t) for t in POPE_OUTPUTS] == [a["text"] for a in answers]
    # the edge cases, by hand: case-sensitive words split on single spaces, only the first sentence
    assert [pope_answer(t) for t in ("Not really", "NO", "no\n", "No\nthere", "Yes. No", "Yes,no", "")] == ["yes"] * 7


def test_pope_metrics_equal_the_reference_and_zero_where_it_divides_by_zero(tmp_path):
    rng = random.Random(0)
    for trial in range(30):
        n = rng.randint(1, 40)
        labels = [rng.choice(["yes", "no"]) for _ in range(n)]
        outputs = [rng.choice(POPE_OUTPUTS) for _ in range(n)]
        path = tmp_path / f"labels{trial}.json"
        path.write_text("".join(json.dumps({"label": lab}) + "\n" for lab in labels))
        ours = pope_metrics([pope_answer(t) for t in outputs], labels)
        try:
            ref = reference_eval_pope([{"text": t} for t in outputs], path)
        except ZeroDivisionError:  # no true positive: the reference stops, we report 0
            assert ours.tp == 0 and ours.f1 == 0.0
            continue
        assert (ours.tp, ours.fp, ours.tn, ours.fn) == (ref["TP"], ref["FP"], ref["TN"], ref["FN"])
        assert (ours.accuracy, ours.precision, ours.recall, ours.f1, ours.yes_ratio) == (
            ref["acc"], ref["precision"], ref["recall"], ref["f1"], ref["yes_ratio"])


def test_the_cell_aggregate_is_the_mean_f1_over_splits_and_its_bootstrap_weights_count(tmp_path):
    rng = np.random.default_rng(1)
    splits = np.repeat(["adversarial", "popular", "random"], [11, 9, 13])
    labels = rng.choice(["yes", "no"], size=len(splits))
    scores = rng.choice([0.0, 100.0], size=len(splits), p=[0.3, 0.7])
    records = [{"split": s, "pope_label": lab, "clean_score": sc} for s, lab, sc in zip(splits, labels, scores)]
    per_split = split_metrics(records)
    expected = 100 * np.mean([m.f1 for m in per_split.values()])
    facts = {"split": splits, "pope_label": labels}
    assert AGGREGATES["pope-mean-f1"].value(scores, facts) == pytest.approx(expected, abs=1e-9)
    # a resample is the same statistic on the drawn samples (a sample drawn twice counts twice)
    counts = rng.integers(0, 3, size=(4, len(splits))).astype(float)
    for row, value in zip(counts, mean_f1_values(scores, facts, counts)):
        drawn = np.repeat(np.arange(len(splits)), row.astype(int))
        again = split_metrics([records[k] for k in drawn])
        assert value == pytest.approx(100 * np.mean([m.f1 for m in again.values()]), abs=1e-9)


# ------------------------------------------------------------------------- ScienceQA parsing

SQA_OUTPUTS = ["A", "B", "C", "D", "E", "F", "a", "b", "B. apostrophe", "B.apostrophe", "B.", "B. ", "The answer is C.",
               "The answer is C", "The answer is Cx", "The answer is C. The answer is D.", "the answer is B.", "",
               "Answer: B", "FAILED", "C. chiasmus and more", "  A", "AB", "The answer is Z.", "2", "yes"]


@pytest.mark.parametrize("n_choices", [2, 3, 4, 5])
def test_scienceqa_parsing_and_choice_index_are_eval_science_qa_s(n_choices):
    choices = [f"choice {k}" for k in range(n_choices)]
    for text in SQA_OUTPUTS:
        reference = reference_get_pred_idx(reference_parse(text), choices, OPTIONS)
        assert parse_answer(text) == reference_parse(text), text
        assert prediction_index(parse_answer(text), n_choices) == reference, text
    # the tiny suite's option: a one-letter answer in lower case reads as the capital
    assert parse_answer("b", letters_any_case=True) == "B" and parse_answer("b") == "FAILED"
    assert parse_answer("the answer is b.", letters_any_case=True) == "FAILED"


# ------------------------------------------------------------------ reference-layout data files

POPE_OBJECTS = ["dog", "cat", "car", "person", "chair", "cup"]


def _image(path: Path, seed: int, size: tuple[int, int] = (48, 40)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)


def _read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _lines(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def make_pope(root: Path, images: int = 2) -> None:
    """pope/llava_pope_test.jsonl + pope/coco/coco_pope_<split>.json + coco/val2014/, as RobustVLM ships them:
    per image a yes and a no question in each split, the question ids offset per category."""
    questions = []
    for offset, split in ((0, "adversarial"), (10_000_000, "random"), (20_000_000, "popular")):
        labelled = []
        for i in range(images):
            image = f"COCO_val2014_{i + 1:012d}.jpg"
            for j, label in enumerate(("yes", "no")):
                obj = POPE_OBJECTS[(i + j + offset // 10_000_000) % len(POPE_OBJECTS)]
                labelled.append({"question_id": len(labelled) + 1, "image": image,
                                 "text": f"Is there a {obj} in the image?", "label": label})
        _lines(root / "pope" / "coco" / f"coco_pope_{split}.json", labelled)
        questions += [{"question_id": offset + q["question_id"], "image": q["image"],
                       "text": q["text"] + "\nAnswer the question using a single word or phrase.", "category": split}
                      for q in labelled]
    _lines(root / "pope" / "llava_pope_test.jsonl", questions)
    for i in range(images):
        _image(root / "coco" / "val2014" / f"COCO_val2014_{i + 1:012d}.jpg", i)


def make_scienceqa(root: Path, with_image: int = 3) -> None:
    """scienceqa/{llava_test_CQM-A.json, pid_splits.json, problems.json} + scienceqa/test/<id>/image.png, with
    questions without an image between them (not part of ScienceQA-IMG) and a training problem."""
    base = root / "scienceqa"
    entries, problems, test = [], {}, []
    for k in range(2 * with_image):
        pid, n = str(10 + k), 2 + k % 3
        choices = [f"option {j}" for j in range(n)]
        problems[pid] = {"question": f"Which option is {k}?", "choices": choices, "answer": k % n, "hint": "",
                         "image": "image.png" if k % 2 == 0 else None, "split": "test"}
        value = f"Which option is {k}?\n" + "\n".join(f"{OPTIONS[j]}. {c}" for j, c in enumerate(choices))
        entry = {"id": pid, "conversations": [{"from": "human", "value": value},
                                              {"from": "gpt", "value": OPTIONS[k % n]}]}
        if k % 2 == 0:
            entry["image"] = f"{pid}/image.png"
            entry["conversations"][0]["value"] = "<image>\nContext: Look at the picture.\n" + value
            _image(base / "test" / pid / "image.png", k, (60, 36))
        entries.append(entry)
        test.append(pid)
    problems["99"] = {"question": "Train?", "choices": ["a", "b"], "answer": 0, "split": "train"}
    base.mkdir(parents=True, exist_ok=True)
    (base / "llava_test_CQM-A.json").write_text(json.dumps(entries))
    (base / "pid_splits.json").write_text(json.dumps({"train": ["99"], "test": test}))
    (base / "problems.json").write_text(json.dumps(problems))


def test_pope_reader_pairs_questions_and_labels_as_eval_pope_does(tmp_path):
    make_pope(tmp_path)
    task = VLM_DATASETS.get("pope").value.read("pope", tmp_path)
    assert len(task.ids) == 12 and task.settings["splits"] == ["random", "popular", "adversarial"]
    assert task.items["10000002"].label == "no" and task.items["10000002"].split == "random"
    # LLaVA's prompt is the question file's text exactly
    file_text = {str(q["question_id"]): q["text"] for q in _read_lines(tmp_path / "pope" / "llava_pope_test.jsonl")}
    assert task.prompts(task.ids, LLAVA_PROMPTS) == [file_text[i] for i in task.ids]
    assert task.images["1"] == tmp_path / "coco" / "val2014" / "COCO_val2014_000000000001.jpg"
    assert task.attack_targets(["1", "2"]) == [["Yes"], ["No"]] and task.push_targets(["1", "2"]) == [["No"], ["Yes"]]
    one = VLM_DATASETS.get("pope-popular").value.read("pope-popular", tmp_path)
    assert sorted(one.ids) == [str(20_000_000 + k) for k in range(1, 5)] and task.max_new_tokens(LLAVA_PROMPTS) == 128


def test_scienceqa_reader_keeps_the_questions_with_an_image_with_llava_s_prompt(tmp_path):
    make_scienceqa(tmp_path)
    task = VLM_DATASETS.get("scienceqa").value.read("scienceqa", tmp_path)
    assert task.ids == ["10", "12", "14"] and task.max_new_tokens(LLAVA_PROMPTS) == 1024
    entries = {e["id"]: e for e in json.loads((tmp_path / "scienceqa" / "llava_test_CQM-A.json").read_text())}
    # model_vqa_science.py: the human turn without '<image>', stripped; no answer instruction added
    human = entries["12"]["conversations"][0]["value"]
    assert task.prompts(["12"], LLAVA_PROMPTS) == [human.replace("<image>", "").strip()]
    assert task.prompts(["12"], LLAVA_PROMPTS)[0].startswith("Context: Look at the picture.\nWhich option is 2?\nA. ")
    assert task.items["14"].choices == ("option 0", "option 1", "option 2") and task.items["14"].answer == 1
    assert task.attack_targets(["12", "14"]) == [["C"], ["B"]]
    assert task.push_targets(["12", "14"]) == [["A", "B", "D"], ["A", "C"]]  # every wrong letter of its own choices
    assert task.images["12"] == tmp_path / "scienceqa" / "test" / "12" / "image.png"


# ------------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    """The paper suite's layout, a random tiny open_clip checkpoint and a random llava-hf model for it."""
    root = tmp_path_factory.mktemp("paper")
    make_pope(root / "data")
    make_scienceqa(root / "data")
    checkpoint = fx.save_full_safetensors(fx.random_model(seed=0), root / "encoder.safetensors")
    return {"data": root / "data", "encoder": checkpoint, "llava": make_llava(root / "llava")}


def _paper_run(paper: dict, out: Path, task: str, *extra: str) -> list[str]:
    return ["run", "--suite", "paper", "--data-root", str(paper["data"]), "--encoder", str(paper["encoder"]),
            "--vlm", f"llava:{paper['llava']}", "--task", task, "--out", str(out), "--steps", "2", *extra]


def _runs(out: Path, pattern: str) -> dict[str, tuple[dict, list[dict]]]:
    """attack -> (config, records) of the runs of a task."""
    found = {}
    for folder in sorted(out.glob(pattern)):
        config = json.loads((folder / "config.json").read_text())
        found[config["attack"]] = (config, _read_lines(folder / "records.jsonl"))
    return found


def _reference_pope(data: Path, records: list[dict], output: str, tmp_path: Path) -> tuple[float, dict]:
    """eval_pope.py on the outputs of a run that saw every question, in the question file's order."""
    order = [q["question_id"] for q in _read_lines(data / "pope" / "llava_pope_test.jsonl")]
    by_id = {int(r["id"]): r[output] for r in records}
    result = tmp_path / f"{output}.jsonl"
    _lines(result, [{"question_id": q, "text": by_id[q]} for q in order])
    return reference_pope_main(data / "pope" / "coco", data / "pope" / "llava_pope_test.jsonl", result)


@pytest.mark.long
def test_pope_runs_clean_and_under_aa_and_its_cell_is_eval_pope_s_mean_f1(paper, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(_paper_run(paper, out, "pope", "--attack", "aa", "--eps", "0,2/255", "--n-samples", "12")) == 0
    summary = capsys.readouterr().out
    runs = _runs(out, "*__pope__*")
    assert set(runs) == {"none", "aa"}
    config, clean = runs["none"]
    assert config["task_settings"]["cell"] == "pope-mean-f1" and config["load_options"]["pad_colour"] == [122, 116, 104]
    assert {r["split"] for r in clean} == {"random", "popular", "adversarial"}
    assert all(r["clean_answer"] == pope_answer(r["clean_output"]) for r in clean)
    reference_clean, per_split = _reference_pope(paper["data"], clean, "clean_output", tmp_path)
    _, attacked = runs["aa"]
    reference_robust, _ = _reference_pope(paper["data"], attacked, "adv_output", tmp_path)
    ours = split_metrics(clean)
    results = json.loads((next(out.glob("*__pope__none__*")) / "results.json").read_text())["metrics"]
    for split, metrics in per_split.items():
        assert (ours[split].tp, ours[split].fp, ours[split].tn, ours[split].fn) == (
            metrics["TP"], metrics["FP"], metrics["TN"], metrics["FN"])
        recorded = results["splits"][split]["clean"]  # the run's results.json: eval_pope.py's numbers per split
        assert [recorded[k] for k in ("accuracy", "precision", "recall", "f1", "yes_ratio")] == [
            metrics[k] for k in ("acc", "precision", "recall", "f1", "yes_ratio")]
    assert results["clean_F1"] == pytest.approx(100 * reference_clean)
    # the run summary, every leaderboard format and the aggregate JSON show eval_pope.py's average F1 x100
    rows = {line.split()[-1].split("__")[2]: line.split() for line in summary.splitlines() if "__pope__" in line}
    assert rows["none"][-4:-1] == ["F1", f"{100 * reference_clean:.1f}", f"{100 * reference_clean:.1f}"]
    assert rows["aa"][-4:-1] == ["F1", f"{100 * reference_clean:.1f}", f"{100 * reference_robust:.1f}"]
    assert main(["leaderboard", str(out), "--format", "json", "--out", str(tmp_path / "agg.json")]) == 0
    cells = next(iter(json.loads((tmp_path / "agg.json").read_text())["results"].values()))
    vlm = f"llava:{paper['llava']}"
    assert cells[f"{vlm}:pope F1 clean"] == pytest.approx(100 * reference_clean, abs=0.051)
    robust_column = next(c for c in cells if c.startswith(f"{vlm}:pope F1 Linf 2/255"))
    assert cells[robust_column] == pytest.approx(100 * reference_robust, abs=0.051)
    for fmt in ("md", "csv", "latex", "html"):
        capsys.readouterr()
        assert main(["leaderboard", str(out), "--format", fmt, "--ci"]) == 0
        text = capsys.readouterr().out
        assert f"{vlm}:pope F1 clean" in text and f"{100 * reference_clean:.1f}" in text
    from bench.report.intervals import CellIntervals
    from bench.report.leaderboard import ACCURACY, cell_samples, load_samples

    samples = load_samples(out)
    cells_of, _ = cell_samples(samples)
    intervals = CellIntervals(samples, cells_of, samples.groupby("task")["metric"].first().to_dict(), ACCURACY)
    cell = next(c for c in cells_of if c[0] == "clean")
    low, high = intervals.cell(cell)
    assert low <= 100 * reference_clean <= high
    # bench compare: a copy of the runs under another encoder's name differs by 0, swap p = 1
    twin = tmp_path / "twin"
    for folder in out.iterdir():
        if folder.is_dir():
            copy = twin / f"b-{folder.name}"
            copy.mkdir(parents=True)
            run_config = json.loads((folder / "config.json").read_text())
            (copy / "config.json").write_text(json.dumps({**run_config, "encoder": "b"}))
            (copy / "records.jsonl").write_text((folder / "records.jsonl").read_text())
    capsys.readouterr()
    assert main(["compare", str(out), str(twin), "--encoders", f"{config['encoder']},b", "--eps", "clean"]) == 0
    line = capsys.readouterr().out.strip()
    assert "(F1, n = 12)" in line and "difference +0.0" in line and "swap p = 1" in line


@pytest.mark.parametrize("attack", ["apgd", "pgd"])
def test_pope_runs_under_apgd_and_pgd(paper, tmp_path, attack):
    out = tmp_path / "runs"
    assert main(_paper_run(paper, out, "pope-random", "--attack", attack, "--eps", "2/255", "--n-samples", "4",
                           "--protocol", "strict")) == 0
    (_, records), = _runs(out, "*__pope-random__*").values()
    assert len(records) == 4 and all(r["split"] == "random" and r["adv_score"] <= r["clean_score"] for r in records)


@pytest.mark.long
def test_scienceqa_runs_clean_with_llava_s_protocol_and_scores_as_eval_science_qa(paper, tmp_path):
    out = tmp_path / "runs"
    assert main(_paper_run(paper, out, "scienceqa", "--eps", "0", "--n-samples", "3")) == 0
    (config, records), = _runs(out, "*__scienceqa__*").values()
    assert config["load_options"] == {}  # model_vqa_science.py crops: no padding to a square
    assert config["task_settings"] == {"answer_tokens": 1024, "letters": "as written"}
    # eval_science_qa.py on the run's outputs (the test split's questions without an image count as FAILED
    # and outside the IMG accuracy)
    prompts = {r["id"]: "<image>\n" for r in records}
    result = tmp_path / "answers.jsonl"
    _lines(result, [{"question_id": r["id"], "text": r["clean_output"], "prompt": prompts[r["id"]]} for r in records])
    reference = reference_img_accuracy(paper["data"] / "scienceqa", result)
    assert np.mean([r["clean_score"] for r in records]) == pytest.approx(reference)


# ------------------------------------------------------------------------------ tiny suite

@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    """The tiny world's POPE and ScienceQA parts only, with a manifest of their files (what
    `--data-root` verifies), so the tests need not generate the whole world."""
    root = tmp_path_factory.mktemp("tiny-world")
    for part in (pope_scienceqa.write_pope, pope_scienceqa.write_scienceqa):
        for _ in part(root, 0):
            pass
    world._write_json(root / "manifest.json", {"version": world.VERSION, "seed": 0, "files": world.file_hashes(root)})
    return root


def test_tiny_pope_is_balanced_its_negatives_follow_the_splits_and_the_readers_read_it(tiny_world):
    from bench.suites import get_suite, load_task

    tiny = load_task(get_suite("tiny"), "tiny-pope", str(tiny_world))
    labels = [it.label for it in tiny.items.values()]
    assert labels.count("yes") == labels.count("no") and 150 <= len(labels) / 3 <= 220
    by_split = {s: [it for it in tiny.items.values() if it.split == s] for s in ("random", "popular", "adversarial")}
    yes = {s: [(it.image, it.question) for it in items if it.label == "yes"] for s, items in by_split.items()}
    assert yes["random"] == yes["popular"] == yes["adversarial"]  # the same yes questions, other negatives
    absent = {s: [it.question.split()[3] for it in items if it.label == "no"] for s, items in by_split.items()}
    assert absent["popular"].count("circle") > absent["random"].count("circle")  # the most frequent shape
    assert absent["random"] != absent["adversarial"]
    train = _read_lines(tiny_world / "pope" / "train" / "llava_pope_train.jsonl")
    assert 900 <= len(train) / 3 <= 1200


def test_tiny_scienceqa_is_llava_s_format_with_two_to_four_options(tiny_world):
    from bench.suites import get_suite, load_task

    task = load_task(get_suite("tiny"), "tiny-scienceqa", str(tiny_world))
    assert len(task.ids) == 180 and {len(it.choices) for it in task.items.values()} == {2, 3, 4}
    assert task.settings["letters"] == "any case"
    entries = json.loads((tiny_world / "scienceqa" / "llava_train_CQM-A.json").read_text())
    assert len(entries) == 1000 and all(e["conversations"][0]["value"].startswith("<image>\n") for e in entries)


def test_every_word_of_the_tiny_files_is_known_or_in_new_words(tiny_world):
    known = set(vocabulary()) | set(EXTRA_WORDS)
    assert not set(pope_scienceqa.NEW_WORDS) & known
    texts = []
    scienceqa = [*(tiny_world / "scienceqa").glob("llava_*.json"), tiny_world / "scienceqa" / "problems.json"]
    for path in itertools.chain((tiny_world / "pope").rglob("*.json*"), scienceqa):  # (pid_splits.json: ids)
        text = path.read_text()
        for line in text.splitlines() if path.suffix == ".jsonl" or "coco_pope" in path.name else [text]:
            texts += [v for v in _strings(json.loads(line)) if not v.endswith((".jpg", ".png"))]
    words = {w for t in texts for w in WordCodec.words(t)}
    assert words - known == set(pope_scienceqa.NEW_WORDS)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in ("id", "split", "category", "from", "task", "grade", "subject", "topic", "skill"):
                yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@pytest.mark.parametrize("attack", ["aa", "apgd", "pgd"])
def test_tiny_pope_runs_with_tiny_llava_clean_and_under_attack(tiny_world, tmp_path, attack):
    out = tmp_path / "runs"
    assert main(["run", "--suite", "tiny", "--data-root", str(tiny_world), "--task", "tiny-pope", "--encoder", "clip",
                 "--attack", attack, "--eps", "0,4/255", "--n-samples", "6", "--steps", "2", "--out", str(out)]) == 0
    runs = _runs(out, "*__tiny-pope__*")
    assert set(runs) == {"none", attack}
    config, records = runs[attack]
    assert config["metric"] == "F1" and all(r["adv_score"] <= r["clean_score"] for r in records)
    assert all(r["adv_answer"] == pope_answer(r["adv_output"]) and r["pope_label"] in ("yes", "no") for r in records)


def test_targeted_members_push_each_sample_towards_its_own_wrong_answers():
    from attacks.table import TABLE
    from tasks.vlm_attack import _passes

    member = next(m for m in TABLE["aa"].members if m.targeted)
    pushes = [["No"], ["A", "C"], []]
    passes = _passes(member, [["Yes"], ["B"], ["D"]], ("maybe",), 3, None, "strict", pushes)
    assert [(label, strings, has) for label, strings, has, towards in passes] == [
        (f"{member.name}:towards-0", ["No", "A", ""], [True, True, False]),
        (f"{member.name}:towards-1", ["", "C", ""], [False, True, False])]
    assert all(towards for *_, towards in passes)
    # tasks without their own pushes keep the shared targets (RobustVLM's VQA "maybe", "Word")
    assert [p[0] for p in _passes(member, [["x"]], ("maybe", "Word"), 1, None, "strict")] == [
        f"{member.name}:towards:maybe", f"{member.name}:towards:Word"]


@pytest.mark.parametrize("attack", ["aa", "apgd", "pgd"])
def test_tiny_scienceqa_runs_with_the_llava_fixture_clean_and_under_attack(paper, tiny_world, tmp_path, attack):
    """tiny-scienceqa's words are not all tiny-llava's yet: the random llava-hf model answers it."""
    out = tmp_path / "runs"
    assert main(["run", "--suite", "tiny", "--data-root", str(tiny_world), "--task", "tiny-scienceqa", "--encoder",
                 str(paper["encoder"]), "--vlm", f"llava:{paper['llava']}", "--attack", attack, "--eps", "0,2/255",
                 "--n-samples", "3", "--steps", "2", "--out", str(out)]) == 0
    runs = _runs(out, "*__tiny-scienceqa__*")
    config, records = runs[attack]
    assert set(runs) == {"none", attack} and config["metric"] == "IMG acc" and len(records) == 3
    assert all(r["adv_parsed"] == parse_answer(r["adv_output"], letters_any_case=True)
               and r["adv_score"] <= r["clean_score"] for r in records)


@pytest.mark.long
def test_scienceqa_runs_under_apgd(paper, tmp_path):
    out = tmp_path / "runs"
    assert main(_paper_run(paper, out, "scienceqa", "--attack", "apgd", "--eps", "2/255", "--n-samples", "1",
                           "--steps", "1", "--protocol", "strict")) == 0
    (config, records), = _runs(out, "*__scienceqa__*").values()
    assert config["attack"] == "apgd" and records[0]["answer"] in ("A", "B", "C")


# ------------------------------------------------------------------------------- bad input

def _cut_line(path: Path, k: int) -> None:
    """Line k (0-based) loses its closing brace."""
    lines = path.read_text().splitlines()
    lines[k] = lines[k][:-1]
    path.write_text("\n".join(lines) + "\n")


def _bad_cases(root: Path) -> list[tuple[str, str, str]]:
    """(name, task, message): one reference-layout folder per broken thing, built by editing a good one."""
    cases = []

    def variant(name: str, task: str, message: str, edit) -> None:
        data = root / name
        make_pope(data, images=1)
        make_scienceqa(data, with_image=1)
        edit(data)
        cases.append((name, task, message))

    pope, sqa = Path("pope"), Path("scienceqa")
    variant("no-questions", "pope", r"POPE question file .*llava_pope_test.jsonl does not exist",
            lambda d: (d / pope / "llava_pope_test.jsonl").unlink())
    variant("no-split-file", "pope-popular", r"POPE popular annotation file .* does not exist",
            lambda d: (d / pope / "coco" / "coco_pope_popular.json").unlink())
    variant("torn-line", "pope", r"llava_pope_test.jsonl line 2 is not valid JSON",
            lambda d: _cut_line(d / pope / "llava_pope_test.jsonl", 1))
    variant("no-label", "pope-random", r"coco_pope_random.json: line 1 has no 'label'",
            lambda d: _lines(d / pope / "coco" / "coco_pope_random.json",
                             [{k: v for k, v in q.items() if k != "label"} for q in
                              _read_lines(d / pope / "coco" / "coco_pope_random.json")]))
    variant("odd-label", "pope", r"has label 'maybe'; POPE labels are 'yes' or 'no'",
            lambda d: (d / pope / "coco" / "coco_pope_adversarial.json").write_text(
                (d / pope / "coco" / "coco_pope_adversarial.json").read_text().replace('"no"', '"maybe"')))
    variant("fewer-labels", "pope-adversarial", r"2 questions of category 'adversarial' but .* labels 1",
            lambda d: (d / pope / "coco" / "coco_pope_adversarial.json").write_text(
                (d / pope / "coco" / "coco_pope_adversarial.json").read_text().splitlines()[0] + "\n"))
    variant("misordered", "pope", r"is not the question on line",
            lambda d: (d / pope / "coco" / "coco_pope_random.json").write_text(
                "\n".join(reversed((d / pope / "coco" / "coco_pope_random.json").read_text().splitlines())) + "\n"))
    variant("no-problems", "scienceqa", r"ScienceQA problem file .*problems.json does not exist",
            lambda d: (d / sqa / "problems.json").unlink())
    variant("no-answer", "scienceqa", r"problems.json: problem 10 has no 'answer'",
            lambda d: (d / sqa / "problems.json").write_text(json.dumps(
                {k: {f: v for f, v in p.items() if f != "answer"} for k, p in
                 json.loads((d / sqa / "problems.json").read_text()).items()})))
    variant("answer-out-of-range", "scienceqa", r"problem 10 has answer 7, not the index of one of its 2 choices",
            lambda d: (d / sqa / "problems.json").write_text(
                (d / sqa / "problems.json").read_text().replace('"answer": 0', '"answer": 7', 1)))
    variant("not-a-list", "scienceqa", r"llava_test_CQM-A.json is not a JSON list",
            lambda d: (d / sqa / "llava_test_CQM-A.json").write_text("{}"))
    variant("missing-image", "scienceqa", r"cannot read image .*image.png",
            lambda d: (d / sqa / "test" / "10" / "image.png").unlink())
    return cases


def test_bad_pope_and_scienceqa_files_are_one_line_exit_2_nothing_written(tmp_path, capsys):
    checkpoint = fx.save_full_safetensors(fx.random_model(seed=0), tmp_path / "encoder.safetensors")
    for name, task, message in _bad_cases(tmp_path / "data"):
        out = tmp_path / "out"
        argv = ["run", "--suite", "paper", "--data-root", str(tmp_path / "data" / name), "--encoder", str(checkpoint),
                "--vlm", "llava:/nowhere", "--task", task, "--n-samples", "1", "--out", str(out)]
        assert_one_line_exit_2(argv, message, lambda a: a, capsys)
        assert not out.exists(), name
    out = tmp_path / "out"
    argv = ["run", "--suite", "paper", "--data-root", str(tmp_path / "data" / "no-answer"), "--encoder",
            str(checkpoint), "--vlm", "llava:/nowhere", "--task", "pope-randm", "--out", str(out)]
    assert_one_line_exit_2(argv, r"unknown task 'pope-randm'; did you mean 'pope-random'\?", lambda a: a, capsys)
    assert not out.exists()

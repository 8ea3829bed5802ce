"""OpenFlamingo's zero-shot prompts: two text-only demonstrations from the training split,
built as RobustVLM builds them (a throwaway copy of its prompt functions is the reference)."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from bench.suites import get_suite, load_task
from bench.tiny.suite import world_root
from bench.vlm.flamingo import FLAMINGO_PROMPTS
from bench.vlm.tiny_llava import PROMPTS as TINY_PROMPTS
from benchutil.errors import BenchError
from tasks.demonstrations import query_set
from tasks.vlm_datasets import vqa_reader


# --- RobustVLM's code, transcribed for comparison (of_eval_model_adv.py, run_evaluation.py) ---
def get_caption_prompt(caption=None):
    if caption and ":" in caption:
        caption = caption.replace(":", "")
    return f"<image>Output:{caption if caption is not None else ''}{'<|endofchunk|>' if caption is not None else ''}"


def get_vqa_prompt(question, answer=None):
    if answer and ":" in answer:
        answer = answer.replace(":", "")
    return (f"<image>Question:{question} Short answer:{answer if answer is not None else ''}"
            f"{'<|endofchunk|>' if answer is not None else ''}")


def get_query_set(train, query_set_size, seed):
    np.random.seed(seed)
    chosen = np.random.choice(len(train), query_set_size, replace=False)
    return [train[i] for i in chosen]
# ---


def _ours(sample_id, pool):  # the one deliberate difference: a per-sample seeded draw (docs/protocol.md)
    return random.Random(f"demonstrations:{sample_id}").sample(pool, 2)


def test_the_query_set_is_robustvlms():
    train = [f"caption {i}" for i in range(5000)]
    assert query_set(train) == get_query_set(train, 2048, 42)
    assert query_set(train[:100]) == train[:100]  # smaller than 2048: all of it


def test_caption_prompts_carry_two_text_only_demonstrations_as_robustvlm_builds_them():
    task = load_task(get_suite("tiny"), "tiny-captions", None)
    images = json.loads((world_root() / "captions" / "dataset_tiny.json").read_text())["images"]
    train = [{"caption": im["sentences"][0]["raw"]} for im in images if im["split"] == "train"]
    pool = get_query_set(train, 2048, 42)
    ids = task.sample_ids(4, 0)
    for sample_id, prompt in zip(ids, task.prompts(ids, FLAMINGO_PROMPTS)):
        demos = _ours(sample_id, pool)
        context = "".join(get_caption_prompt(caption=x["caption"].strip()) for x in demos).replace("<image>", "")
        assert prompt == context + get_caption_prompt()
        assert prompt.count("<|endofchunk|>") == 2 and prompt.count("<image>") == 1
    assert any(":" in x["caption"] for x in train)  # the colon removal is exercised
    assert task.prompts(ids, TINY_PROMPTS) == [TINY_PROMPTS.caption] * 4  # VLMs without demonstrations


def test_vqa_prompts_carry_two_text_only_demonstrations_as_robustvlm_builds_them():
    task = load_task(get_suite("tiny"), "tiny-vqa", None)
    root = world_root() / "vqa"
    questions = json.loads((root / "questions_train.json").read_text())["questions"]
    answers = {a["question_id"]: a for a in json.loads((root / "annotations_train.json").read_text())["annotations"]}
    train = [{"question": q["question"], "answers": [a["answer"] for a in answers[q["question_id"]]["answers"]]}
             for q in questions]
    pool = get_query_set(train, 2048, 42)
    ids = task.sample_ids(4, 0)
    for sample_id, prompt in zip(ids, task.prompts(ids, FLAMINGO_PROMPTS)):
        demos = _ours(sample_id, pool)
        context = "".join(get_vqa_prompt(question=x["question"], answer=x["answers"][0]) for x in demos)
        expected = context.replace("<image>", "") + get_vqa_prompt(question=task.items[sample_id].question)
        assert prompt == expected


def test_a_missing_training_split_is_one_line_naming_its_files():
    read = vqa_reader("vqa", "questions_val.json", "annotations_val.json",
                      lambda b, i: b / "images" / f"COCO_val2014_{int(i):012d}.jpg",
                      ("no_train_questions.json", "no_train_annotations.json"))
    task = read("tiny-vqa", world_root())
    ids = task.sample_ids(2, 0)
    assert len(task.prompts(ids, TINY_PROMPTS)) == 2  # no demonstrations asked: the split is not read
    with pytest.raises(BenchError, match="no_train_questions.json, .*no_train_annotations.json missing"):
        task.prompts(ids, FLAMINGO_PROMPTS)

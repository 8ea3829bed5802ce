"""POPE (object hallucination): "Is there a <object> in the image?", answered yes or no, in three
splits whose negatives are random, popular or adversarial objects (tasks/pope_files.py).

As RobustVLM evaluates LLaVA (bash/eval_pope.sh -> llava/eval/model_vqa_loader.py): the question
in the VLM's short-answer prompt (for LLaVA this is the question file's text exactly:
"<question>\\nAnswer the question using a single word or phrase.", in the vicuna_v1
conversation), the image padded to a square (process_images), greedy decoding of at most 128
new tokens; the output is mapped to yes / no by eval_pope.py (tasks/pope_metrics.py). A
sample scores 100 when its mapped answer is its label, else 0; the task's cell is the mean F1
over its splits, x100 (the FARE paper's POPE table; tasks/cell_aggregates.py).

Under attack (our extension: the paper reports clean POPE only), the untargeted passes lower
the likelihood of the true answer as LLaVA writes it ("Yes" / "No"), and targeted members push
each sample towards the other one; a sample's worst case is its wrong answer where any pass
reached it.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks.base import AttackSettings, Record
from tasks.pope_files import QUESTION_FILE, SPLITS, PopeItem, read_pope
from tasks.pope_metrics import NO, POPE_KIND, YES, pope_answer
from tasks.vlm_task import Scorer, ShortAnswerTask

POPE_ANSWER_TOKENS = 128  # model_vqa_loader.py's max_new_tokens
POPE_CELL = "pope-mean-f1"  # tasks/cell_aggregates.py


def other_answer(label: str) -> str:
    return NO if label == YES else YES


def as_written(answer: str) -> str:
    """An answer as LLaVA-1.5 writes it on POPE ("Yes", "No"): the string the attacks use."""
    return answer.capitalize()


class PopeTask(ShortAnswerTask):
    kind = POPE_KIND
    metric = "F1"

    def __init__(self, name: str, items: list[PopeItem], image_folder: Path, answer_tokens: int | None = None) -> None:
        self.items = {str(it.question_id): it for it in items}
        super().__init__(name, {k: image_folder / it.image for k, it in self.items.items()})
        self.answer_tokens = answer_tokens  # None: the VLM's own answer length (tiny suite)
        splits = list(dict.fromkeys(it.split for it in items))
        self.settings = {"cell": POPE_CELL, "splits": splits, "answer_tokens": answer_tokens}

    def attack_targets(self, ids: list[str]) -> list[list[str]]:
        return [[as_written(self.items[i].label)] for i in ids]

    def push_targets(self, ids: list[str]) -> list[list[str]]:
        return [[as_written(other_answer(self.items[i].label))] for i in ids]

    def scorer(self, ids: list[str]) -> Scorer:
        def score(outputs: dict[str, str]) -> dict[str, float]:
            return {i: 100.0 * (pope_answer(text) == self.items[i].label) for i, text in outputs.items()}

        return score

    def sample_facts(self, sample_id: str) -> dict[str, Any]:
        item = self.items[sample_id]
        return {"split": item.split, "pope_label": item.label}

    def attack(self, victim: Any, ids: list[str], batch: Any, settings: AttackSettings) -> list[Record]:
        """The records, each with its split and label (what F1 is computed from) and both mapped answers."""
        records = super().attack(victim, ids, batch, settings)
        for record in records:
            record |= {**self.sample_facts(record["id"]),
                       "clean_answer": pope_answer(record["clean_output"]),
                       "adv_answer": pope_answer(record["adv_output"])}
        return records


def pope_reader(folder: str, image_folder: str, splits: tuple[str, ...] = SPLITS,
                answer_tokens: int | None = None, questions: str = QUESTION_FILE) -> Callable[[str, Path], PopeTask]:
    """(name, data root) -> the task: root/folder/<questions> (LLaVA's llava_pope_test.jsonl) +
    root/folder/coco/coco_pope_<split>.json, images in root/image_folder (tasks/pope_files.py)."""
    def read(name: str, root: Path) -> PopeTask:
        base = root / folder
        return PopeTask(name, read_pope(base / questions, base / "coco", splits), root / image_folder,
                        answer_tokens)

    return read

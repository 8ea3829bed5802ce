"""VQAv2-style question/annotation pairs (VQAv2, TextVQA, the tiny world).

OpenFlamingo's TextVQA and VizWiz annotation files (`*_annotations_vqa_format.json`, the ones
RobustVLM's bash/llava_eval.sh passes) have no `answer_type`; OpenFlamingo's evaluator
(open_flamingo/eval/vqa_metric.py, VQAEval.evaluate) reads a missing one as "other", and so
does the reader.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchutil.errors import BenchError
from tasks.jsonfiles import field, read_json

DEFAULT_ANSWER_TYPE = "other"  # VQAEval.evaluate's answer type where an annotation gives none


@dataclass(frozen=True)
class VQAItem:
    question_id: int
    image_id: int | str
    question: str
    answers: list[str]  # the 10 human answers
    question_type: str
    answer_type: str


def answer_type(annotation: dict, path: Path, where: str) -> str:
    """The annotation's `answer_type`, DEFAULT_ANSWER_TYPE where it has none."""
    if "answer_type" not in annotation:
        return DEFAULT_ANSWER_TYPE
    return field(annotation, "answer_type", str, path, where)


def read_vqa(questions_path: Path, annotations_path: Path) -> list[VQAItem]:
    questions = field(read_json(questions_path, "questions"), "questions", list, questions_path, "the file")
    annotations = field(read_json(annotations_path, "annotations"), "annotations", list, annotations_path, "the file")
    by_id = {}
    for i, a in enumerate(annotations):
        where = f"annotations[{i}]"
        answers = field(a, "answers", list, annotations_path, where)
        if len(answers) != 10:
            raise BenchError(f"{annotations_path}: {where} has {len(answers)} answers; VQA needs 10")
        by_id[field(a, "question_id", int, annotations_path, where)] = (
            [field(x, "answer", str, annotations_path, f"{where}.answers[{k}]") for k, x in enumerate(answers)],
            field(a, "question_type", str, annotations_path, where),
            answer_type(a, annotations_path, where),
        )
    items = []
    for i, q in enumerate(questions):
        where = f"questions[{i}]"
        qid = field(q, "question_id", int, questions_path, where)
        if qid not in by_id:
            raise BenchError(f"{questions_path}: {where} (question_id {qid}) has no annotation in {annotations_path}")
        answers, qtype, atype = by_id[qid]
        items.append(VQAItem(qid, field(q, "image_id", (int, str), questions_path, where),
                             field(q, "question", str, questions_path, where), answers, qtype, atype))
    return items

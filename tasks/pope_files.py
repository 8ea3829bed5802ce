"""POPE's files as RobustVLM ships and reads them (pope_eval/ beside bash/eval_pope.sh):

    llava_pope_test.jsonl          one JSON object a line: question_id, image, text (the question,
                                   then LLaVA's short-answer instruction), category (the split)
    coco/coco_pope_<split>.json    one JSON object a line: question_id, image, text (the question), label
                                   (yes / no), for split random, popular and adversarial
    <image folder>/<image>         COCO val2014 images (eval_pope.sh --image-folder)

llava/eval/eval_pope.py never joins the two files by id: it takes the answers of one category
in the question file's order and pairs the k-th with the k-th line of that split's annotation
file. We pair them the same way and refuse files where the pairs disagree (another image or
question), or where a split has more questions than labels or fewer: the reference would pair
them silently and score the wrong labels.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchutil.errors import BenchError
from benchutil.schema import parse_json
from tasks.jsonfiles import field
from tasks.pope_metrics import ANSWERS

SPLITS = ("random", "popular", "adversarial")  # POPE's negative sampling strategies
QUESTION_FILE = "llava_pope_test.jsonl"


def annotation_file(folder: Path, split: str) -> Path:
    return folder / f"coco_pope_{split}.json"


@dataclass(frozen=True)
class PopeItem:
    question_id: int  # the question file's (unique over the splits)
    image: str  # file name in the image folder
    question: str  # "Is there a snowboard in the image?" (the annotation's text)
    label: str  # "yes" | "no"
    split: str  # random | popular | adversarial


def read_json_lines(path: Path, what: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of a file with one JSON object a line; blank lines carry nothing."""
    if not path.is_file():
        raise BenchError(f"{what} file {path} does not exist; check --data-root")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise BenchError(f"cannot read {what} file {path}: {err.strerror}") from None
    out = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if line.strip():
            value = parse_json(line, f"{path} line {number}")
            if not isinstance(value, dict):
                raise BenchError(f"{path} line {number} is not a JSON object; each line holds one question")
            out.append((number, value))
    return out


def read_pope(questions: Path, annotations: Path, splits: Sequence[str]) -> list[PopeItem]:
    """The questions of `splits` (in that order, each in the question file's order) with their labels."""
    asked: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    seen: set[int] = set()
    for number, q in read_json_lines(questions, "POPE question"):
        where = f"line {number}"
        qid = field(q, "question_id", int, questions, where)
        if qid in seen:
            raise BenchError(f"{questions}: {where} repeats question_id {qid}; each question needs its own id")
        seen.add(qid)
        for key in ("image", "text"):
            field(q, key, str, questions, where)
        asked.setdefault(field(q, "category", str, questions, where), []).append((number, q))
    items = []
    for split in splits:
        path = annotation_file(annotations, split)
        labelled = read_json_lines(path, f"POPE {split} annotation")
        mine = asked.get(split, [])
        if len(mine) != len(labelled):
            raise BenchError(f"{questions} has {len(mine)} questions of category {split!r} but {path} labels "
                             f"{len(labelled)}; eval_pope.py pairs them line by line, so give matching files")
        for (q_line, q), (a_line, a) in zip(mine, labelled):
            where = f"line {a_line}"
            label = field(a, "label", str, path, where)
            if label not in ANSWERS:
                raise BenchError(f"{path}: {where} has label {label!r}; POPE labels are 'yes' or 'no'")
            question, asked_there = field(a, "text", str, path, where), q["text"].split("\n")[0]
            if field(a, "image", str, path, where) != q["image"] or asked_there != question:
                raise BenchError(f"{path}: {where} ({a['image']}: {question!r}) is not the question on line {q_line} "
                                 f"of {questions} ({q['image']}: {asked_there!r}), its pair in eval_pope.py's order; "
                                 "give the files of one POPE release")
            items.append(PopeItem(q["question_id"], q["image"], question, label, split))
    return items

"""tiny-vizwiz: questions a scene may not answer, in OpenFlamingo's VizWiz files.

    vizwiz/{train,val}_questions_vqa_format.json + vizwiz/{train,val}_annotations_vqa_format.json
    vizwiz/{train,val}/VizWiz_{train,val}_<n:08d>.jpg   (the questions' image_id is this file name)

One question per image: the colour of a shape, the shape of a colour, what the sign says. In
about 40% of them the scene lacks what is asked about (no such shape, no such colour, no sign),
and most of the ten people answer "unanswerable", the rest guess. As in OpenFlamingo's VizWiz
files, an answer record is {"answer", "answer_confidence"} with no answer_id, and annotations have
no answer_type; question_type is "unanswerable" for those questions.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.tiny import language, world
from bench.tiny.scenes import COLOURS, SHAPES, WORDS, Scene, render, sample_scene

SPLITS = {"train": 1000, "val": 200}  # one question per image
FOLDER = "vizwiz"
UNANSWERABLE = "unanswerable"
UNANSWERABLE_SHARE = 0.4
# Words of these questions and answers that tiny-llava's vocabulary (bench/tiny/tokenizer.py
# vocabulary() + bench/vlm/tiny_llava.py EXTRA_WORDS) does not hold yet.
NEW_WORDS = [UNANSWERABLE]
CONFIDENCES = (("yes", 0.7), ("maybe", 0.2), ("no", 0.1))  # VizWiz's answer_confidence values


@dataclass(frozen=True)
class Asked:
    question: str
    answer: str | None  # None: the scene cannot answer it
    guesses: tuple[str, ...]  # what people guess when it cannot


def _ask_about(scene: Scene, rng: np.random.Generator, answerable: bool, known: str, asked: str,
               template: str, values: tuple[str, ...]) -> Asked:
    """"What <asked> is the <known>?": about an object alone in its `known` attribute when
    answerable (and one exists), else about a `known` value absent from the scene."""
    present = [getattr(o, known) for o in scene.objects]
    if answerable:
        unique = [o for o in scene.objects if present.count(getattr(o, known)) == 1]
        if unique:
            obj = unique[int(rng.integers(0, len(unique)))]
            return Asked(template.format(getattr(obj, known)), getattr(obj, asked), ())
    absent = [v for v in values if v not in present]
    return Asked(template.format(absent[int(rng.integers(0, len(absent)))]), None,
                 tuple(COLOURS) if asked == "colour" else SHAPES)


def _colour_of_shape(scene: Scene, rng: np.random.Generator, answerable: bool) -> Asked:
    return _ask_about(scene, rng, answerable, "shape", "colour", "what color is the {}?", SHAPES)


def _shape_of_colour(scene: Scene, rng: np.random.Generator, answerable: bool) -> Asked:
    return _ask_about(scene, rng, answerable, "colour", "shape", "what shape is the {} object?", tuple(COLOURS))


def _asked(rng: np.random.Generator) -> tuple[Scene, Asked]:
    answerable = rng.random() >= UNANSWERABLE_SHARE
    kind = int(rng.integers(0, 3))
    if kind == 0:  # the sign: there is one only when it can be read
        scene = sample_scene(rng, with_word=answerable)
        return scene, Asked("what does the sign say?", scene.word, WORDS)
    scene = sample_scene(rng, with_word=False)
    ask = _colour_of_shape if kind == 1 else _shape_of_colour
    return scene, ask(scene, rng, answerable)  # answerable unless no object is alone in its shape / colour


def _confidence(rng: np.random.Generator) -> str:
    u, total = rng.random(), 0.0
    for value, share in CONFIDENCES:
        total += share
        if u < total:
            return value
    return CONFIDENCES[-1][0]


def ten_answers(asked: Asked, rng: np.random.Generator) -> list[str]:
    if asked.answer is not None:
        return language.ten_answers(asked.answer, "other", rng)
    return [UNANSWERABLE if rng.random() < 0.8 else asked.guesses[int(rng.integers(0, len(asked.guesses)))]
            for _ in range(10)]


def _files(out: Path, split: str, questions: list[dict], annotations: list[dict]) -> None:
    head = {"info": {"description": "tiny-world VizWiz in OpenFlamingo's VQA format", "version": "1"},
            "task_type": "Open-Ended", "license": {}, "data_subtype": f"VizWiz-{split}"}
    world._write_json(out / f"{split}_questions_vqa_format.json",
                      {**head, "data_type": "VizWiz", "questions": questions})
    world._write_json(out / f"{split}_annotations_vqa_format.json", {**head, "annotations": annotations})


def write_split(out: Path, seed: int, split: str, n: int) -> Iterator[None]:
    """n questions of one split under out/vizwiz (the first n of the world's); yields once per image."""
    questions, annotations = [], []
    for i in range(n):
        rng = world._rng(seed, "vizwiz", split, i)
        scene, asked = _asked(rng)
        image_id = f"VizWiz_{split}_{i:08d}.jpg"
        world._save(render(scene, rng), out / FOLDER / split / image_id)
        answers = ten_answers(asked, rng)
        questions.append({"image_id": image_id, "question": asked.question, "question_id": i})
        annotations.append({
            "question_id": i, "image_id": image_id,
            "question_type": UNANSWERABLE if asked.answer is None else "other",
            "answers": [{"answer": a, "answer_confidence": _confidence(rng)} for a in answers],
            "multiple_choice_answer": Counter(answers).most_common(1)[0][0],
        })
        yield
    _files(out / FOLDER, split, questions, annotations)


def write(out: Path, seed: int) -> Iterator[None]:
    """The part's files under out/vizwiz; yields once per image."""
    for split, n in SPLITS.items():
        yield from write_split(out, seed, split, n)


"""The tiny world's POPE and ScienceQA, in the files and formats RobustVLM reads (tasks/pope_files.py,
tasks/scienceqa_files.py), a train split beside each test split:

    pope/llava_pope_test.jsonl + pope/coco/coco_pope_{random,popular,adversarial}.json
        + pope/val2014/COCO_val2014_<id:012d>.jpg
    pope/train/llava_pope_train.jsonl + pope/train/coco/coco_pope_<split>.json
        + pope/train2014/COCO_train2014_<id:012d>.jpg
    scienceqa/llava_{test,train}_CQM-A.json + pid_splits.json + problems.json
        + scienceqa/{test,train}/<id>/image.png

POPE (Li et al. 2023, "Evaluating Object Hallucination in Large Vision-Language Models"):
per image, "is there a <shape> in the image?" for shapes it shows (yes) and as many it does
not show (no), so yes and no are balanced. The three splits ask the same yes questions of
the same images and differ in the absent shapes: random (uniform), popular (the shapes most
frequent over the split's images) and adversarial (the shapes that co-occur most with the
image's own). Shapes here are drawn with unequal frequencies and partners (a circle often
comes with a square, a triangle with a star), so popular and adversarial negatives differ
from random ones as COCO's do.

ScienceQA: one multiple-choice question per image about its scene (colour of a shape, shape
of a colour, number of shapes, which shape is shown), 2 to 4 options, sometimes with a
context line, in LLaVA's CQM-A format ("<image>\\nContext: ...\\n<question>\\nA. ...\\nB. ...",
answered with the letter).

The shipped tiny-llava knows the tiny world's words only (bench/tiny/tokenizer.py vocabulary()
and EXTRA_WORDS in bench/vlm/tiny_llava.py); NEW_WORDS lists every other word these files
write, for the vocabulary of the next tiny-llava.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.tiny import world
from bench.tiny.language import BACKGROUND_WORDS
from bench.tiny.scenes import COLOURS, SHAPES, Scene, render, sample_scene

# Words of these files outside the tiny vocabulary: the options' letters (A is the article "a"),
# ScienceQA's "Context:" and "which" questions, and LLaVA's short-answer instruction that POPE's
# question file carries (the tiny prompts ask the bare question: tasks/pope.py).
NEW_WORDS = ("b", "c", "d", "context", "which", "answer", "question", "using", "single", "or", "phrase")

POPE_IMAGES = {"train": 310, "test": 56}  # ~1000 / ~180 questions per split
POPE_SPLITS = ("adversarial", "random", "popular")  # the reference question file's order of categories
POPE_QUESTION_IDS = {"adversarial": 0, "random": 10_000_000, "popular": 20_000_000}  # as the reference numbers them
LLAVA_SHORT_ANSWER = "\nAnswer the question using a single word or phrase."
# Unequal shape frequencies and partners: what makes popular and adversarial negatives differ.
SHAPE_WEIGHTS = {"circle": 0.34, "square": 0.24, "triangle": 0.18, "star": 0.14, "cross": 0.10}
PARTNERS = {"circle": "square", "square": "circle", "triangle": "star", "star": "triangle", "cross": "circle"}
PARTNER_CHANCE = 0.6
YES_PER_IMAGE = 2  # at most; POPE asks 3 of COCO's larger scenes

SCIENCEQA_IMAGES = {"train": 1000, "test": 180}  # one question each
CONTEXT_CHANCE = 0.4
LETTERS = ("A", "B", "C", "D")
COUNT_OPTIONS = ("1", "2", "3", "4")


def _weighted_shape(rng: np.random.Generator) -> str:
    return str(rng.choice(list(SHAPE_WEIGHTS), p=list(SHAPE_WEIGHTS.values())))


def pope_scene(rng: np.random.Generator) -> Scene:
    """A scene without a sign whose shapes follow SHAPE_WEIGHTS and PARTNERS."""
    scene = sample_scene(rng, with_word=False)
    shapes: list[str] = []
    for _ in scene.objects:
        partner = shapes and rng.random() < PARTNER_CHANCE
        shapes.append(PARTNERS[shapes[int(rng.integers(0, len(shapes)))]] if partner else _weighted_shape(rng))
    return replace(scene, objects=tuple(replace(o, shape=s) for o, s in zip(scene.objects, shapes)))


def present_shapes(scene: Scene) -> list[str]:
    return list(dict.fromkeys(o.shape for o in scene.objects))


def negatives(split: str, present: list[str], k: int, frequency: Counter, cooccurrence: dict[str, Counter],
              rng: np.random.Generator) -> list[str]:
    """k shapes the image does not show, chosen as POPE's split chooses its absent objects."""
    absent = [s for s in SHAPES if s not in present]
    if split == "random":
        return [absent[int(j)] for j in rng.permutation(len(absent))[:k]]
    if split == "popular":  # the most frequent shapes first
        return sorted(absent, key=lambda s: (-frequency[s], SHAPES.index(s)))[:k]
    # adversarial: the shapes seen most often with the image's own first, then the most frequent
    return sorted(absent, key=lambda s: (-sum(cooccurrence[p][s] for p in present), -frequency[s],
                                         SHAPES.index(s)))[:k]


def pope_question(shape: str) -> str:
    return f"is there a {shape} in the image?"


def _pope_split(out: Path, seed: int, split: str) -> Iterator[None]:
    test = split == "test"
    folder, prefix = (out / "pope", "val2014") if test else (out / "pope" / "train", "train2014")
    scenes = []
    for i in range(POPE_IMAGES[split]):
        rng = world._rng(seed, "pope", split, i)
        scene = pope_scene(rng)
        image = f"COCO_{prefix}_{i + 1:012d}.jpg"
        world._save(render(scene, rng), out / "pope" / prefix / image)
        scenes.append((image, scene))
        yield
    frequency: Counter = Counter(s for _, scene in scenes for s in present_shapes(scene))
    cooccurrence = {s: Counter() for s in SHAPES}
    for _, scene in scenes:
        shown = present_shapes(scene)
        for a in shown:
            cooccurrence[a].update(b for b in shown if b != a)
    questions: list[dict[str, Any]] = []
    for category in POPE_SPLITS:
        labelled = []
        for i, (image, scene) in enumerate(scenes):
            rng = world._rng(seed, "pope-questions", split, category, i)
            shown = present_shapes(scene)
            k = min(len(shown), len(SHAPES) - len(shown), YES_PER_IMAGE)
            # the same yes questions in every split (drawn from a stream without the category)
            asked = [shown[int(j)] for j in world._rng(seed, "pope-yes", split, i).permutation(len(shown))[:k]]
            for yes, no in zip(asked, negatives(category, shown, k, frequency, cooccurrence, rng)):
                for shape, label in ((yes, "yes"), (no, "no")):
                    labelled.append({"question_id": len(labelled) + 1, "image": image,
                                     "text": pope_question(shape), "label": label})
        _write_lines(folder / "coco" / f"coco_pope_{category}.json", labelled)
        questions += [{"question_id": POPE_QUESTION_IDS[category] + q["question_id"], "image": q["image"],
                       "text": q["text"] + LLAVA_SHORT_ANSWER, "category": category} for q in labelled]
    _write_lines(folder / f"llava_pope_{split}.jsonl", questions)


def _write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    """One JSON object a line, as POPE's files are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_pope(out: Path, seed: int) -> Iterator[None]:
    for split in POPE_IMAGES:
        yield from _pope_split(out, seed, split)


def multiple_choice(scene: Scene, rng: np.random.Generator) -> tuple[str, list[str], int]:
    """(question, choices, index of the right one): 2 to 4 choices, the right one at a random place."""
    shapes = [o.shape for o in scene.objects]
    colours = [o.colour for o in scene.objects]
    kinds = ["count", "which shape"]
    kinds += ["colour"] if any(shapes.count(s) == 1 for s in shapes) else []
    kinds += ["shape"] if any(colours.count(c) == 1 for c in colours) else []
    kind = kinds[int(rng.integers(0, len(kinds)))]
    if kind == "count":
        question, right, pool = "how many shapes are there?", str(len(scene.objects)), list(COUNT_OPTIONS)
    elif kind == "which shape":
        right = shapes[int(rng.integers(0, len(shapes)))]
        question, pool = "which shape is in the image?", [s for s in SHAPES if s not in shapes] + [right]
    elif kind == "colour":  # of a shape the scene shows once
        unique = [o for o in scene.objects if shapes.count(o.shape) == 1]
        obj = unique[int(rng.integers(0, len(unique)))]
        question, right, pool = f"what color is the {obj.shape}?", obj.colour, list(COLOURS)
    else:  # the shape of a colour the scene shows once
        unique = [o for o in scene.objects if colours.count(o.colour) == 1]
        obj = unique[int(rng.integers(0, len(unique)))]
        question, right, pool = f"what shape is the {obj.colour} object?", obj.shape, list(SHAPES)
    wrong = [c for c in pool if c != right]
    n = min(int(rng.integers(2, len(LETTERS) + 1)), len(wrong) + 1)
    choices = [wrong[int(j)] for j in rng.permutation(len(wrong))[: n - 1]]
    at = int(rng.integers(0, n))
    return question, choices[:at] + [right] + choices[at:], at


def scienceqa_prompt(question: str, choices: list[str], context: str) -> str:
    """LLaVA's CQM-A human turn for a question with an image."""
    options = "\n".join(f"{LETTERS[k]}. {c}" for k, c in enumerate(choices))
    return "<image>\n" + (f"Context: {context}\n" if context else "") + f"{question}\n{options}"


def write_scienceqa(out: Path, seed: int) -> Iterator[None]:
    root = out / "scienceqa"
    problems: dict[str, dict[str, Any]] = {}
    pid_splits: dict[str, list[str]] = {}
    pid = 0
    for split, n in SCIENCEQA_IMAGES.items():
        entries = []
        for i in range(n):
            pid += 1
            rng = world._rng(seed, "scienceqa", split, i)
            scene = sample_scene(rng, with_word=False)
            world._save(render(scene, rng), root / split / str(pid) / "image.png")
            question, choices, answer = multiple_choice(scene, rng)
            context = (f"a picture of shapes on a {BACKGROUND_WORDS[scene.background]} background."
                       if rng.random() < CONTEXT_CHANCE else "")
            problems[str(pid)] = {"question": question, "choices": choices, "answer": answer, "hint": context,
                                  "image": "image.png", "task": "closed choice", "grade": "grade1",
                                  "subject": "tiny world", "topic": "shapes", "category": "scene", "skill": "scene",
                                  "lecture": "", "solution": "", "split": split}
            entries.append({"id": str(pid), "image": f"{pid}/image.png", "conversations": [
                {"from": "human", "value": scienceqa_prompt(question, choices, context)},
                {"from": "gpt", "value": LETTERS[answer]}]})
            pid_splits.setdefault(split, []).append(str(pid))
            yield
        world._write_json(root / f"llava_{split}_CQM-A.json", entries)
    world._write_json(root / "pid_splits.json", pid_splits)
    world._write_json(root / "problems.json", problems)

"""Captions and questions about a tiny scene, varied in wording, seeded."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.tiny.scenes import COLOURS, COUNT_WORDS, SHAPES, Scene

BACKGROUND_WORDS = {"noise": "noisy", "gradient": "smooth", "clutter": "cluttered"}


def _choice(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(0, len(options)))]


def _phrase(obj, rng: np.random.Generator, with_size: bool) -> str:
    size = f"{obj.size} " if with_size else ""
    return f"a {size}{obj.colour} {obj.shape}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def captions(scene: Scene, rng: np.random.Generator, n: int = 5) -> list[str]:
    """n different references: every one names each object's colour and shape."""
    count = COUNT_WORDS[len(scene.objects) - 1]
    noun = "shape" if len(scene.objects) == 1 else "shapes"
    bg = BACKGROUND_WORDS[scene.background]
    order = list(scene.objects)
    sign = f" next to a sign that says {scene.word}" if scene.word else ""
    forms = [
        lambda: f"{_join([_phrase(o, rng, False) for o in order])}{sign}.",
        lambda: f"{count} {noun} on a {bg} background: {_join([_phrase(o, rng, True) for o in order])}.",
        lambda: f"a picture of {_join([_phrase(o, rng, False) for o in reversed(order)])}{sign}.",
        lambda: (f"there {'is' if len(order) == 1 else 'are'} {count} {noun}, "
                 f"{_join([_phrase(o, rng, True) for o in order])}."),
        lambda: f"{_join([_phrase(o, rng, False) for o in order])} on a {bg} background{sign}.",
        lambda: f"an image with {_join([_phrase(o, rng, True) for o in reversed(order)])}.",
    ]
    # One reference names only the shapes and one only the colours: without them, colour
    # alone tells most captions apart and a contrastive model barely learns shape.
    shapes_only = f"{count} {noun}: {_join([f'a {o.shape}' for o in order])}{sign}."
    colours_only = f"{_join([f'a {o.colour} shape' for o in order])} on a {bg} background."
    picked = rng.permutation(len(forms))[: n - 2]
    return [shapes_only, colours_only, *(forms[int(i)]() for i in picked)]


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    question_type: str  # VQAv2's question_type: the question's first words
    answer_type: str  # yes/no | number | other


def questions(scene: Scene, rng: np.random.Generator) -> list[Question]:
    out = [Question("how many shapes are there?", str(len(scene.objects)), "how many", "number")]
    shapes = [o.shape for o in scene.objects]
    colours = [o.colour for o in scene.objects]
    obj = scene.objects[int(rng.integers(0, len(scene.objects)))]
    if shapes.count(obj.shape) == 1:
        out.append(Question(f"what color is the {obj.shape}?", obj.colour, "what color is the", "other"))
    if colours.count(obj.colour) == 1:
        out.append(Question(f"what shape is the {obj.colour} object?", obj.shape, "what shape is the", "other"))
    present = rng.random() < 0.5
    probe = obj if present else None
    if probe is None:  # ask about something absent
        for _ in range(20):
            colour, shape = _choice(rng, list(COLOURS)), _choice(rng, list(SHAPES))
            if (colour, shape) not in {(o.colour, o.shape) for o in scene.objects}:
                break
        out.append(Question(f"is there a {colour} {shape}?", "no", "is there a", "yes/no"))
    else:
        out.append(Question(f"is there a {probe.colour} {probe.shape}?", "yes", "is there a", "yes/no"))
    return out


def reading_question(scene: Scene) -> Question:
    assert scene.word is not None
    return Question("what does the sign say?", scene.word, "what does the", "other")


NUMBER_WORDS = {"1": "one", "2": "two", "3": "three"}


def ten_answers(answer: str, answer_type: str, rng: np.random.Generator) -> list[str]:
    """Ten human-like answers: mostly the answer, some in other surface forms the VQA
    evaluator normalises ('two' -> '2', 'a red' -> 'red', capitals), rarely a wrong one."""
    out = []
    for _ in range(10):
        u = rng.random()
        if u < 0.75:
            out.append(answer)
        elif u < 0.9:
            if answer_type == "number":
                out.append(NUMBER_WORDS.get(answer, answer))
            elif answer_type == "other":
                out.append(_choice(rng, [answer.upper(), f"a {answer}", f"{answer}."]))
            else:
                out.append(answer.capitalize())
        else:
            out.append(_choice(rng, ["not sure", "maybe", "yes" if answer == "no" else "no"]))
    return out

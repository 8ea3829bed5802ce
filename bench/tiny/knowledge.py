"""tiny-okvqa: questions whose answer is a fact about an object of the scene, in OK-VQA's files.

    okvqa/OpenEnded_mscoco_{train,val}2014_questions.json + okvqa/mscoco_{train,val}2014_annotations.json
    okvqa/{train,val}2014/COCO_{train,val}2014_<image_id:012d>.jpg

One question per image, about the one object of its shape: what it is used for ("rolling"),
which fruit has its colour ("apples"), how many corners (points, arms) it has. The answer
needs the scene and a fact of the tables below. The ten human answers are surface forms of
the fact, as people write them ("rolling", "roll", "apples", "4 corners"), stored as OK-VQA
stores them: `raw_answer` the words, `answer` their OK-VQA stem. A VLM's answer is stemmed
the same way before it is scored (tasks/okvqa.py), so "apples" and "rolling" earn credit
against stems "apple" and "roll". The stems are written here, not computed: generating the
world needs no nltk; tests/test_vizwiz_okvqa.py checks each against tasks.okvqa.stem_answer.
The stemmer's nltk data for the tiny world is the world's own (bench/tiny/nltk_data.py), made
from LEXICON and VERB_LEMMAS below: the part of speech of every tiny word, the WordNet lemma of
every tiny "-ing" word.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.tiny import world
from bench.tiny.scenes import Obj, Scene, render, sample_scene

SPLITS = {"train": 1000, "val": 200}  # one question per image
FIRST_IMAGE_ID = {"train": 1, "val": 500001}  # COCO ids differ between train2014 and val2014
FOLDER = "okvqa"
# Words of these questions and answers that tiny-llava's vocabulary (bench/tiny/tokenizer.py
# vocabulary() + bench/vlm/tiny_llava.py EXTRA_WORDS) does not hold yet.
NEW_WORDS = """used for which fruit has corners corner points arms have rolling roll building buildings build
warning warn wishing wish marking markings mark apple apples lime limes blueberry blueberries banana bananas grape
grapes oranges zero none four five point arm""".split()


@dataclass(frozen=True)
class Fact:
    question: str  # with {shape}
    question_type: str  # OK-VQA's knowledge category ("three": objects, "five": food, "nine": science)
    forms: tuple[tuple[str, str], ...]  # (raw answer, its OK-VQA stem); the first is the usual one


def _uses() -> dict[str, Fact]:
    """What each shape is used for: an "-ing" word (WordNet's verb lemma) or a word of the manual table."""
    forms = {"circle": (("rolling", "roll"), ("roll", "roll")),
             "square": (("building", "build"), ("buildings", "build"), ("build", "build")),
             "triangle": (("warning", "warn"), ("warn", "warn")),
             "star": (("wishing", "wish"), ("wish", "wish")),
             "cross": (("marking", "mark"), ("markings", "mark"), ("mark", "mark"))}
    return {shape: Fact("what is the {shape} used for?", "three", f) for shape, f in forms.items()}


def _fruits() -> dict[str, Fact]:
    """The fruit of each colour; people name it in the plural too (a plural noun: singularised)."""
    fruit = {"red": "apple", "green": "lime", "blue": "blueberry", "yellow": "banana", "purple": "grape",
             "orange": "orange"}
    plural = {"blueberry": "blueberries"}
    article = {"apple": "an", "orange": "an"}
    return {colour: Fact("which fruit has the color of the {shape}?", "five",
                         ((plural.get(name, name + "s"), name), (name, name),
                          (f"{article.get(name, 'a')} {name}", f"{article.get(name, 'a')} {name}")))
            for colour, name in fruit.items()}


def _counts() -> dict[str, Fact]:
    """Corners, points or arms of each shape: digits, number words, "<n> corners"."""
    counts = {"circle": ("corners", "0", "zero"), "square": ("corners", "4", "four"),
              "triangle": ("corners", "3", "three"), "star": ("points", "5", "five"), "cross": ("arms", "4", "four")}
    facts = {}
    for shape, (part, digit, word) in counts.items():
        forms = [(digit, digit), (word, word), (f"{digit} {part}", f"{digit} {part[:-1]}")]
        if digit == "0":
            forms.append(("none", "none"))
        facts[shape] = Fact(f"how many {part} does the {{shape}} have?", "nine", tuple(forms))
    return facts


USES, FRUITS, COUNTS = _uses(), _fruits(), _counts()

# The part of speech (Penn Treebank tag, what nltk.pos_tag gives) of every word the tiny world
# writes or tiny-llava can say: its vocabulary (bench/tiny/tokenizer.py vocabulary(),
# bench/vlm/tiny_llava.py EXTRA_WORDS) and the NEW_WORDS of this module, bench/tiny/unanswerable.py
# and bench/tiny/pope_scienceqa.py; plus the world's punctuation. The world generated these words,
# so it knows their parts of speech: OK-VQA's stemmer tags them from this table (the world's
# nltk_data, bench/tiny/nltk_data.py), not with nltk's trained tagger. Only NNS / NNPS change a stem
# (singularised); a word with two parts of speech gets the one it has in the world ("orange" is a
# colour, "roll" and "mark" what a shape is used for, "open" and "stop" words on a sign).
_TAGGED = {
    "CC": "and or",
    "CD": "0 1 2 3 4 5 6 7 8 9 one two three four five zero",
    "DT": "a an the this no",
    "EX": "there",
    "IN": "for in of on with within",
    "JJ": """blue cluttered green large many new next noisy open orange purple red single small smooth sure
             unanswerable yellow""",
    "MD": "will",
    "NN": """answer apple arm b background banana bank benefit blueberry building bus c cafe circle color colour
             context corner cross cryptocurrency d drawing exit fruit grape hotel image lime marking month none
             object park password photo phrase picture point question shape shop sign square star stop taxi
             triangle warning word""",
    "NNS": """apples arms bananas blueberries buildings circles corners crosss grapes limes markings objects oranges
              points shapes squares stars triangles""",
    "PRP": "it",
    "PRP$": "your",
    "RB": "maybe not",
    "TO": "to",
    "UH": "please yes",
    "VB": "build describe guarantee have mark reset roll say warn wish",
    "VBG": "investing rolling using wishing",
    "VBN": "used",
    "VBP": "are",
    "VBZ": "does has is says",
    "WDT": "that which",
    "WP": "what",
    "WRB": "how",
    ".": ". ?",
    ",": ",",
    ":": ":",
}
LEXICON: dict[str, str] = {word: tag for tag, words in _TAGGED.items() for word in words.split()}
# WordNet 3.0's verb lemma of each "-ing" word of the lexicon (OK-VQA lemmatises them): for each,
# the one verb of WordNet's index.verb among the forms nltk's morphy tries (the word, the word
# without "ing", with "e"), and none is in WordNet's verb.exc. The world's WordNet holds these verbs.
VERB_LEMMAS = {"building": "build", "drawing": "draw", "investing": "invest", "marking": "mark", "rolling": "roll",
               "using": "use", "warning": "warn", "wishing": "wish"}


def stems() -> dict[str, str]:
    """Every raw answer the generator writes, with the stem it writes for it."""
    return {raw: stem for table in (USES, FRUITS, COUNTS) for fact in table.values() for raw, stem in fact.forms}


def _scene_with_unique_shape(rng: np.random.Generator) -> tuple[Scene, Obj]:
    """A scene and an object that is the only one of its shape (a lone object always is)."""
    while True:
        scene = sample_scene(rng, with_word=False)
        shapes = [o.shape for o in scene.objects]
        unique = [o for o in scene.objects if shapes.count(o.shape) == 1]
        if unique:
            return scene, unique[int(rng.integers(0, len(unique)))]


def _fact(rng: np.random.Generator, obj: Obj) -> tuple[Fact, dict[str, Fact]]:
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return USES[obj.shape], USES
    if kind == 1:
        return FRUITS[obj.colour], FRUITS
    return COUNTS[obj.shape], COUNTS


def ten_answers(fact: Fact, table: dict[str, Fact], rng: np.random.Generator) -> list[dict[str, object]]:
    """OK-VQA answer records: mostly the usual form, often another form of the fact, sometimes
    another fact of the same table (people disagree)."""
    others = [f for f in table.values() if f.forms[0] != fact.forms[0]]
    records = []
    for k in range(10):
        u = rng.random()
        if u < 0.5:
            raw, stem = fact.forms[0]
        elif u < 0.85:
            raw, stem = fact.forms[int(rng.integers(1, len(fact.forms)))]
        else:
            raw, stem = others[int(rng.integers(0, len(others)))].forms[0]
        confidence = "yes" if rng.random() < 0.85 else "no"
        records.append({"answer": stem, "raw_answer": raw, "answer_confidence": confidence, "answer_id": k + 1})
    return records


def _files(out: Path, split: str, questions: list[dict], annotations: list[dict]) -> None:
    info = {"description": "tiny-world OK-VQA", "version": "1"}
    world._write_json(out / f"OpenEnded_mscoco_{split}2014_questions.json",
                      {"info": info, "task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": f"{split}2014",
                       "license": {}, "questions": questions})
    world._write_json(out / f"mscoco_{split}2014_annotations.json",
                      {"info": info, "data_type": "mscoco", "data_subtype": f"{split}2014", "license": {},
                       "annotations": annotations})


def write_split(out: Path, seed: int, split: str, n: int) -> Iterator[None]:
    """n questions of one split under out/okvqa (the first n of the world's); yields once per image."""
    questions, annotations = [], []
    for i in range(n):
        rng = world._rng(seed, "okvqa", split, i)
        scene, obj = _scene_with_unique_shape(rng)
        image_id = FIRST_IMAGE_ID[split] + i
        world._save(render(scene, rng), out / FOLDER / f"{split}2014" / f"COCO_{split}2014_{image_id:012d}.jpg")
        fact, table = _fact(rng, obj)
        question_id = image_id * 10  # OK-VQA's ids: the image's id and a digit
        questions.append({"image_id": image_id, "question": fact.question.format(shape=obj.shape),
                          "question_id": question_id})
        annotations.append({"image_id": image_id, "question_id": question_id, "question_type": fact.question_type,
                            "answer_type": "other", "answers": ten_answers(fact, table, rng)})
        yield
    _files(out / FOLDER, split, questions, annotations)


def write(out: Path, seed: int) -> Iterator[None]:
    """The part's files under out/okvqa; yields once per image."""
    for split, n in SPLITS.items():
        yield from write_split(out, seed, split, n)


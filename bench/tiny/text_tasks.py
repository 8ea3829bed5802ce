"""The tiny world's text tasks, read from files the world already holds (no new world part).

* tiny-text-topics / tiny-text-topics-captions / tiny-text-shapes: the captions of the caption
  test split (captions/dataset_tiny.json) that name exactly one colour (one shape), labelled by
  it, classified against one embedding per class of tiny-colour (tiny-shape): its first test
  image (LEAF's one picture per class), or its first prompt template filled with the class
  name (LEAF's one caption per class). Sentence ids are "<image id>/<caption index>".
* tiny-text-retrieval: the same split's captions as queries over its 200 clean images;
  tiny-text-retrieval-leaf (and "-leaf-<objective>-target<i>"): the same, attacked with LEAF's
  objective against a target sentence (tasks/retrieval_objectives.py).

The sentences and images are the world's, so they follow its seed like every tiny task.
"""
from __future__ import annotations

import re
from pathlib import Path

from bench.tiny import world
from benchutil.registry import Registry
from tasks.captions import read_karpathy
from tasks.retrieval_data import read_karpathy_retrieval
from tasks.retrieval_objectives import (
    MARGIN_OBJECTIVE,
    RetrievalObjective,
    leaf_variants,
)
from tasks.text_classification import (
    CAPTIONS,
    IMAGES,
    TextClassificationData,
    TextClassificationTask,
)
from tasks.text_datasets import TextTaskSpec
from tasks.text_retrieval import QUERY_SEPARATOR, TextRetrievalTask

KARPATHY = Path("captions") / "dataset_tiny.json"
CLASS_IMAGE = "0000.png"  # the first test image of each class: the class's picture
SOURCE = "tiny captions test split, sentences naming exactly one class"


def read_topics(name: str, root: Path, dataset: str, labels_from: str) -> TextClassificationTask:
    """Sentences naming exactly one class of a tiny classification dataset, labelled by it."""
    classes = world.CLASSIFICATION[dataset]
    folders = sorted(classes)  # the image task's label order (classnames.txt)
    classnames = [classes[f] for f in folders]
    ids, sentences, labels = [], [], []
    for item in read_karpathy(root / KARPATHY, root / "captions", "test"):
        for k, sentence in enumerate(item.references):
            named = set(re.findall(r"[a-z]+", sentence.lower())) & set(classnames)
            if len(named) == 1:
                ids.append(f"{item.id}{QUERY_SEPARATOR}{k}")
                sentences.append(sentence)
                labels.append(classnames.index(named.pop()))
    test = root / "classification" / dataset / "test"
    template = world.TEMPLATES[dataset][0]
    data = TextClassificationData(name, ids, sentences, labels, classnames, labels_from,
                                  [test / f / CLASS_IMAGE for f in folders] if labels_from == IMAGES else [],
                                  [template.format(c) for c in classnames] if labels_from == CAPTIONS else [],
                                  SOURCE)
    return TextClassificationTask(data)


def read_text_retrieval(name: str, root: Path, objective: RetrievalObjective = MARGIN_OBJECTIVE) -> TextRetrievalTask:
    return TextRetrievalTask(read_karpathy_retrieval(name, root / KARPATHY, root / "captions"), objective)


def tiny_text_datasets() -> Registry[TextTaskSpec]:
    datasets: Registry[TextTaskSpec] = Registry("task")
    test = world.CAPTION_SPLITS["test"]
    datasets.add("tiny-text-topics", TextTaskSpec(lambda n, r: read_topics(n, r, "tiny-colour", IMAGES)),
                 f"tiny world zero-shot TEXT classification: captions naming one colour, classed against one "
                 f"image per colour (LEAF's image labels); attacked with character edits (--attack charmer "
                 f"--norm levenshtein); {test} test images' captions")
    datasets.add("tiny-text-topics-captions", TextTaskSpec(lambda n, r: read_topics(n, r, "tiny-colour", CAPTIONS)),
                 "as tiny-text-topics, classed against one caption per colour ('a red shape.', LEAF's text labels)")
    datasets.add("tiny-text-shapes", TextTaskSpec(lambda n, r: read_topics(n, r, "tiny-shape", IMAGES)),
                 "tiny world zero-shot TEXT classification: captions naming one shape, classed against one image "
                 "per shape")
    datasets.add("tiny-text-retrieval", TextTaskSpec(read_text_retrieval),
                 f"tiny world text-to-image retrieval, each caption query attacked with character edits: "
                 f"{test} test images x 5 captions; text-to-image R@1; the attack maximises the retrieval margin")
    for suffix, objective, what in leaf_variants():  # LEAF's own objective against a target sentence
        datasets.add(f"tiny-text-retrieval{suffix}",
                     TextTaskSpec(lambda n, r, o=objective: read_text_retrieval(n, r, o)),
                     f"as tiny-text-retrieval, the attack maximising {what} for all k rounds")
    return datasets

"""Text tasks a suite can name: how each reads its data into a task (tasks/text_classification.py,
tasks/text_retrieval.py).

The paper suite's text-to-image retrieval reads COCO's Karpathy test split as coco-retrieval does
(tasks/retrieval_data.py): LEAF's eval_retrieval.py attacks the captions of that split's images.
coco-text-retrieval attacks the retrieval margin; coco-text-retrieval-leaf and its
"-leaf-<objective>-target<i>" siblings attack LEAF's objective (tasks/retrieval_objectives.py).
LEAF's AG-News classification (eval_zero_shot_text.py: the first 1000 sentences of the Hugging
Face test split, classified against four class pictures, or four captions) reads the dataset's hub
clone plus LEAF's pictures, copied from its repository (tasks/text_agnews.py); the attack writes
the characters of the train split, as LEAF's does.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchutil.registry import Registry
from tasks.retrieval_data import read_coco_retrieval
from tasks.retrieval_objectives import (
    MARGIN_OBJECTIVE,
    RetrievalObjective,
    leaf_variants,
)
from tasks.text_agnews import read_ag_news
from tasks.text_classification import CAPTIONS, IMAGES, TextClassificationTask
from tasks.text_retrieval import TextRetrievalTask

TextTask = TextClassificationTask | TextRetrievalTask


@dataclass(frozen=True)
class TextTaskSpec:
    read: Callable[[str, Path], TextTask]  # (name, data root) -> the task


def coco_text_retrieval(name: str, root: Path, objective: RetrievalObjective = MARGIN_OBJECTIVE) -> TextRetrievalTask:
    return TextRetrievalTask(read_coco_retrieval(name, root), objective)


TEXT_DATASETS: Registry[TextTaskSpec] = Registry("task")
TEXT_DATASETS.add("coco-text-retrieval", TextTaskSpec(coco_text_retrieval),
                  "COCO Karpathy test split's captions as queries over its 5000 clean images, each query attacked "
                  "with k character edits (LEAF); text-to-image R@1; the attack maximises the retrieval margin")
for _suffix, _objective, _what in leaf_variants():  # LEAF's own objective against a target sentence
    TEXT_DATASETS.add(f"coco-text-retrieval{_suffix}",
                      TextTaskSpec(lambda name, root, o=_objective: coco_text_retrieval(name, root, o)),
                      f"as coco-text-retrieval, the attack maximising {_what} for all k rounds")
TEXT_DATASETS.add("ag-news", TextTaskSpec(lambda name, root: read_ag_news(name, root, IMAGES)),
                  "AG-News test sentences (the first n in file order; 1000 as LEAF) classified against LEAF's four "
                  "class pictures, each attacked with k character edits from the train split's characters (LEAF's "
                  "eval_zero_shot_text.py default); text accuracy")
TEXT_DATASETS.add("ag-news-captions", TextTaskSpec(lambda name, root: read_ag_news(name, root, CAPTIONS)),
                  "as ag-news, classified against LEAF's four captions ('World News', ...; its --label_encoder "
                  "text)")

"""Text-only demonstrations for zero-shot prompts, as RobustVLM / OpenFlamingo's eval build them.

OpenFlamingo is evaluated "zero-shot" with two text-only demonstrations before the query
(vlm_eval/run_evaluation.py `compute_effective_num_shots`: 2 when 0 shots are asked, for
open_flamingo only; the demonstrations' `<image>` tags are removed). The demonstrations come
from a query set of 2048 training samples chosen with `np.random.seed(seed)` then
`np.random.choice(len(train), 2048, replace=False)` (`get_query_set`, seed 42), two per
sample (`sample_batch_demos_from_query_set`, `random.sample`). A training caption is its
first sentence (`eval_datasets.py CaptionDataset`, `which_gt` None -> sentence 0) and a
training answer the first of its 10 (`answers[0]`).

RobustVLM draws each sample's two demonstrations anew for every attack pass from Python's
unseeded `random`, which no one can replay. We draw them once per sample, seeded by its id,
so runs are reproducible and every pass attacks the prompt its output is scored with
(docs/protocol.md).
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from benchutil.errors import BenchError
from tasks.jsonfiles import field, read_json

QUERY_SET_SIZE = 2048
QUERY_SET_SEED = 42
T = TypeVar("T")


def query_set(train: Sequence[T], size: int = QUERY_SET_SIZE, seed: int = QUERY_SET_SEED) -> list[T]:
    """RobustVLM's get_query_set (all of `train` when it is smaller than `size`)."""
    if len(train) <= size:
        return list(train)
    chosen = np.random.RandomState(seed).choice(len(train), size, replace=False)
    return [train[int(k)] for k in chosen]


def for_sample(pool: Sequence[T], k: int, sample_id: str) -> list[T]:
    """The k demonstrations of one sample: the same whatever batch, pass or run it is in."""
    if k > len(pool):
        raise BenchError(f"{k} demonstrations asked for but the training split has {len(pool)} samples")
    return random.Random(f"demonstrations:{sample_id}").sample(list(pool), k)


def without_colons(text: str) -> str:
    """RobustVLM's prompt builders remove ':' from demonstration captions and answers
    (of_eval_model_adv.py get_caption_prompt / get_vqa_prompt): ':' ends the prompt."""
    return text.replace(":", "")


def karpathy_train_captions(path: Path) -> list[str]:
    """First sentence of each image of split "train" (not "restval"), in file order."""
    data = read_json(path, "captions")
    images = field(data, "images", list, path, "the file")
    captions = []
    for i, im in enumerate(images):
        where = f"images[{i}]"
        if field(im, "split", str, path, where) != "train":
            continue
        sentences = field(im, "sentences", list, path, where)
        if not sentences:
            raise BenchError(f"{path}: {where} has no sentences")
        captions.append(field(sentences[0], "raw", str, path, f"{where}.sentences[0]"))
    if not captions:
        raise BenchError(f"{path} has no images in split 'train'; demonstrations are drawn from it")
    return captions


def vqa_train_pairs(questions: Path, annotations: Path) -> list[tuple[str, str]]:
    """(question, first answer) per training question, in the questions file's order."""
    from tasks.vqa import read_vqa

    return [(it.question, it.answers[0]) for it in read_vqa(questions, annotations)]


Pool = Callable[[], Sequence[object]]  # reads the training split on first use (VQAv2's is large)


def lazy_pool(read: Callable[[], Sequence[T]], missing: Sequence[Path], fetch: str) -> Callable[[], list[T]]:
    """The query set, read on first use; a one-line error naming missing files and how to get them."""
    cache: list[list[T]] = []

    def pool() -> list[T]:
        if not cache:
            absent = [str(p) for p in missing if not p.is_file()]
            if absent:
                raise BenchError(f"{', '.join(absent)} missing: OpenFlamingo's zero-shot prompts carry two "
                                 f"demonstrations from the training split; {fetch}")
            cache.append(query_set(read()))
        return cache[0]

    return pool

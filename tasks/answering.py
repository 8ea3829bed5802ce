"""Visual question answering (VQAv2, TextVQA, the tiny world): VQA accuracy under attack.

Untargeted passes follow RobustVLM: push away from each distinct human answer (most
frequent first, at most `max_answers`), then towards "maybe" and "Word".
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks.vlm_task import Scorer, ShortAnswerTask
from tasks.vqa import VQAItem, read_vqa


class VQATask(ShortAnswerTask):
    kind = "vqa"
    metric = "VQA acc"
    extra_targets = ("maybe", "Word")

    def __init__(self, name: str, items: list[VQAItem], image_path: Callable[[VQAItem], Path],
                 max_answers: int = 3, vqa_metric: str = "official", answer_tokens: int | None = None) -> None:
        self.items = {str(it.question_id): it for it in items}
        super().__init__(name, {k: image_path(it) for k, it in self.items.items()})
        self.max_answers = max_answers  # RobustVLM attacks the 5 most common; the tiny suite 3
        self.vqa_metric = vqa_metric  # tasks.metrics.VQA_METRICS
        self.answer_tokens = answer_tokens  # the dataset's generation length (VQAv2 5, TextVQA 10), else the VLM's
        self.settings = {"vqa_metric": vqa_metric, "max_answers": max_answers, "answer_tokens": answer_tokens}

    def postprocess(self, text: str) -> str:
        """OpenFlamingo's postprocess_vqa_generation (RobustVLM applies it to every VLM): cut at
        'Question', 'Answer' or 'Short' and at the first ', '."""
        return re.split(", ", re.split("Question|Answer|Short", text, maxsplit=1)[0], maxsplit=1)[0]

    def attack_targets(self, ids: list[str]) -> list[list[str]]:
        return [[a for a, _ in Counter(self.items[i].answers).most_common(self.max_answers)] for i in ids]

    def scorer(self, ids: list[str]) -> Scorer:
        def score(outputs: dict[str, str]) -> dict[str, float]:
            from tasks.metrics import vqa_accuracy  # pycocoevalcap loads on first use

            return {i: 100 * vqa_accuracy(text, self.items[i].answers, self.vqa_metric) for i, text in outputs.items()}

        return score


def read_vqa_task(name: str, questions: Path, annotations: Path, image_path: Callable[[VQAItem], Path],
                  **options: Any) -> VQATask:
    return VQATask(name, read_vqa(questions, annotations), image_path, **options)

"""POPE's scoring as LLaVA's evaluator does it (RobustVLM's llava/eval/eval_pope.py, `eval_pope`):
an output maps to "no" or "yes", and each split gets accuracy, precision, recall, F1 and the
share of "yes" answers. The FARE paper's POPE table reports F1 per split and their mean (what
eval_pope.py prints as "Average F1-score"): that mean, in %, is the `pope` leaderboard cell.

One deliberate difference: where a split has no true positive, eval_pope.py divides by zero
(precision or recall undefined); we give precision, recall and F1 the value 0 there, so an
attack that makes a VLM answer "no" to everything scores F1 0 instead of stopping the report.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

YES, NO = "yes", "no"
ANSWERS = (YES, NO)
POPE_KIND = "object hallucination"  # PopeTask.kind, as run configs record it


def pope_answer(text: str) -> str:
    """eval_pope.py's mapping of a VLM output to "yes" / "no": only the text before the first '.'
    counts, commas are removed, and the output is "no" exactly when one of its space-separated
    words is "No", "no" or "not" (case-sensitive, split on single spaces as the reference does);
    anything else, an empty output included, is "yes"."""
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return NO if "No" in words or "not" in words or "no" in words else YES


@dataclass(frozen=True)
class PopeMetrics:
    """One split's numbers as eval_pope.py logs them (fractions in [0, 1])."""

    tp: int
    fp: int
    tn: int
    fn: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    yes_ratio: float

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0  # eval_pope.py: ZeroDivisionError


def pope_metrics(predictions: Sequence[str], labels: Sequence[str]) -> PopeMetrics:
    """eval_pope.py's counts and ratios for mapped predictions and labels ("yes" / "no"),
    paired in order. As there, "yes" is the positive class and only "no" counts as negative."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    if not labels:
        raise ValueError("POPE metrics need at least one answer")
    pred = [0 if p == NO else 1 for p in predictions]
    gold = [0 if g == NO else 1 for g in labels]
    tp = sum(p == 1 and g == 1 for p, g in zip(pred, gold))
    fp = sum(p == 1 and g == 0 for p, g in zip(pred, gold))
    tn = sum(p == 0 and g == 0 for p, g in zip(pred, gold))
    fn = sum(p == 0 and g == 1 for p, g in zip(pred, gold))
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return PopeMetrics(tp, fp, tn, fn, (tp + tn) / (tp + tn + fp + fn), precision, recall, f1,
                       pred.count(1) / len(pred))


def answer_of_score(score: float, label: str) -> str:
    """The mapped answer behind a per-sample score (100: the label, 0: the other answer)."""
    return label if score > 0 else (NO if label == YES else YES)


def split_metrics(records: Sequence[dict], score: str = "clean_score") -> dict[str, PopeMetrics]:
    """Per split, the POPE numbers of a run's records: clean ("clean_score") or under attack
    ("adv_score", each sample's worst case), splits sorted by name."""
    by_split: dict[str, tuple[list[str], list[str]]] = {}
    for record in records:
        predictions, labels = by_split.setdefault(record["split"], ([], []))
        predictions.append(answer_of_score(record[score], record["pope_label"]))
        labels.append(record["pope_label"])
    return {split: pope_metrics(*by_split[split]) for split in sorted(by_split)}


def split_results(records: Sequence[dict]) -> dict[str, dict[str, Any]]:
    """Per split, eval_pope.py's numbers clean and under the run's attack (each sample's worst
    case): what a POPE run's results.json holds beside the mean F1."""
    clean, attacked = split_metrics(records, "clean_score"), split_metrics(records, "adv_score")
    return {split: {"clean": asdict(clean[split]), "adv": asdict(attacked[split])} for split in clean}


def mean_f1_values(scores: np.ndarray, facts: dict[str, np.ndarray], counts: np.ndarray) -> np.ndarray:
    """The mean over splits of each split's F1 (x100), for each row of `counts` (how often each
    sample counts: a bootstrap resample, or ones); `scores` per sample (n,) or per row (B, n).

    A sample's mapped answer is its label where its score is above 0 and the other answer
    where it is 0, so the per-sample scores and labels hold everything F1 needs."""
    label_yes = np.asarray(facts["pope_label"]) == YES
    splits = np.asarray(facts["split"])
    predicted_yes = np.where(np.asarray(scores) > 0, label_yes, ~label_yes)
    predicted_yes = np.broadcast_to(predicted_yes, np.broadcast_shapes(predicted_yes.shape, counts.shape))
    f1s = []
    for split in sorted(set(splits.tolist())):
        mine = splits == split
        weight, yes, gold = counts[:, mine], predicted_yes[:, mine], label_yes[mine]
        tp, fp, fn = ((weight * (yes & gold)).sum(1), (weight * (yes & ~gold)).sum(1),
                      (weight * (~yes & gold)).sum(1))
        precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
        recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
        f1s.append(np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp),
                             where=(precision + recall) > 0))
    return 100.0 * np.mean(f1s, axis=0)

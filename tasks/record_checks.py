"""What every record must satisfy to mean what it says; the one writer of records checks it.

A record that breaks one of these is a bug in the project (an attack's bookkeeping and the
recorded prediction disagreeing, a point outside the ball), never a user error: the store
refuses to write it, so no table can be built on it.

* every kind: scores are finite numbers; the recorded point lies in the run's ball; a point
  at distance 0 is the clean image, so it scores what the clean image scores; outside targeted
  runs and Sim-CLIP's single-pass protocol (which scores the adversarial output as it is) the
  worst case never scores above the clean output.
* classification: clean_correct == (clean_pred == label), robust == (adv_pred == label),
  robust implies clean_correct, the scores are 100 * those, the winner is None exactly for
  robust samples and "clean" exactly for samples misclassified without an attack, and a
  point at distance 0 keeps the clean prediction.
* captioning / VQA: the winner "clean" means the clean output stands (distance 0, same text).
* text tasks (a record with clean_text): tasks/text_records.py's invariants instead of the
  pixel ones (Levenshtein distance within k, adv_text == clean_text at distance 0), and the
  classification ones where the record has a label.
"""
from __future__ import annotations

import math
from typing import Any

from tasks.protocols import SINGLE_PASS_PROTOCOLS
from tasks.text_records import text_violations

CLEAN = "clean"  # attacks.ensemble.CLEAN and the VLM protocol's first candidate
SLACK = 1e-6  # the validity guard's tolerance on the ball (attacks.guard)


class RecordInvariantError(AssertionError):
    """A record that contradicts itself: a bug, reported with its traceback."""


def violations(record: dict[str, Any], eps: float, norm: str, protocol: str | None = None) -> list[str]:
    """Every invariant the record breaks (empty when it is sound); `protocol` is the run's."""
    out: list[str] = []
    clean, adv = record.get("clean_score"), record.get("adv_score")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (clean, adv)):
        return [f"scores are not finite numbers ({clean!r}, {adv!r})"]
    distance = record.get("linf" if norm == "linf" else "l2", 0.0)
    if "clean_text" not in record and distance > eps + SLACK:
        out.append(f"{norm} distance {distance} is outside the ball of radius {eps}")
    if record.get("linf") == 0 and adv != clean:
        out.append(f"the recorded point is the clean image, yet it scores {adv} against {clean}")
    if "target_hit" not in record and protocol not in SINGLE_PASS_PROTOCOLS and adv > clean:
        out.append(f"the worst case scores {adv}, above the clean {clean}")
    if "clean_text" in record:  # a text task's record: its sentence, not an image (tasks/text_records.py)
        return out + text_violations(record, eps, norm) + (_classification(record) if "label" in record else [])
    if "label" in record:
        out.extend(_classification(record))
    elif record.get("winner") == CLEAN and (record.get("linf") != 0 or
                                            record.get("adv_output") != record.get("clean_output")):
        out.append("winner 'clean' but the recorded output or point is not the clean one")
    return out


def _classification(r: dict[str, Any]) -> list[str]:
    out = []
    if r["clean_correct"] != (r["clean_pred"] == r["label"]):
        out.append("clean_correct disagrees with clean_pred == label")
    if r["robust"] != (r["adv_pred"] == r["label"]):
        out.append("robust disagrees with adv_pred == label")
    if r["robust"] and not r["clean_correct"]:
        out.append("robust but not clean_correct")
    if (r["clean_score"], r["adv_score"]) != (100.0 * r["clean_correct"], 100.0 * r["robust"]):
        out.append("scores are not 100 * (clean_correct, robust)")
    if (r["winner"] is None) != r["robust"]:
        out.append(f"winner {r['winner']!r} for a sample with robust = {r['robust']}")
    if (r["winner"] == CLEAN) != (not r["clean_correct"]):
        out.append(f"winner {r['winner']!r} for a sample with clean_correct = {r['clean_correct']}")
    if r.get("linf") == 0 and r["adv_pred"] != r["clean_pred"]:
        out.append("the recorded point is the clean image, yet its prediction differs")
    return out


def check_records(records: list[dict[str, Any]], eps: float, norm: str, protocol: str | None = None) -> None:
    """Raise RecordInvariantError on the first record that contradicts itself."""
    for record in records:
        broken = violations(record, eps, norm, protocol)
        if broken:
            raise RecordInvariantError(f"record {record.get('id')!r} contradicts itself: {'; '.join(broken)} "
                                       f"({record}); this is a bug, please report it")

"""The record core of text tasks, and what every text record must satisfy.

Pixel records carry the perturbation's L-inf / L2 norms (tasks.base.core_records); a text
record carries the sentence instead: clean_text, adv_text (the sentence the adversarial score
was judged on) and distance, the Levenshtein distance between them. Leaderboards read the same
core fields (id, clean_score, adv_score, winner) from both.

Invariants (tasks.record_checks applies them to every record with a clean_text):

* the run is under --norm levenshtein, and distance is a whole number in [0, k];
* distance is the true edit distance between clean_text and adv_text (so adv_text ==
  clean_text exactly when distance is 0, in particular in every clean run), and a sentence
  left unchanged scores what the clean sentence scores;
* the winner "clean" (no attack needed) keeps the clean sentence;
* retrieval records: each score is 100 exactly when its rank is 1.
"""
from __future__ import annotations

from typing import Any

from tasks.text_threat import LEVENSHTEIN

Record = dict[str, Any]
CLEAN = "clean"  # the winner of a sample wrong before any attack (attacks.ensemble.CLEAN)


def text_core_records(ids: list[str], clean_texts: list[str], adv_texts: list[str], distances: list[int],
                      clean: list[float], adv: list[float], winners: list[str | None],
                      extras: list[Record]) -> list[Record]:
    """The records of a batch of sentences: the core fields, the sentences and their distance."""
    return [{"id": i, "clean_score": clean[j], "adv_score": adv[j], "winner": winners[j],
             "clean_text": clean_texts[j], "adv_text": adv_texts[j], "distance": int(distances[j]), **extras[j]}
            for j, i in enumerate(ids)]


def text_violations(record: Record, eps: float, norm: str) -> list[str]:
    """Every text invariant the record breaks (empty when it is sound)."""
    if norm != LEVENSHTEIN:
        return [f"a text record in a run under norm {norm!r} (text runs are under {LEVENSHTEIN})"]
    clean_text, adv_text, distance = record.get("clean_text"), record.get("adv_text"), record.get("distance")
    if not isinstance(clean_text, str) or not isinstance(adv_text, str):
        return ["clean_text and adv_text must both be strings"]
    if not isinstance(distance, int) or isinstance(distance, bool) or distance < 0:
        return [f"distance {distance!r} is not a whole number of edits"]
    # imported here: every record check imports this module, text runs or not
    from attacks.charmer import levenshtein

    out = []
    if distance > eps:
        out.append(f"Levenshtein distance {distance} is outside the budget k = {eps:g}")
    true_distance = levenshtein(clean_text, adv_text)
    if distance != true_distance:
        out.append(f"recorded distance {distance}, but the sentences are {true_distance} edits apart")
    if adv_text == clean_text and record["adv_score"] != record["clean_score"]:
        out.append(f"the sentence is unchanged, yet it scores {record['adv_score']} against {record['clean_score']}")
    if record.get("winner") == CLEAN and adv_text != clean_text:
        out.append("winner 'clean' but the recorded sentence is not the clean one")
    for phase in ("clean", "adv"):
        rank = record.get(f"{phase}_rank")
        if rank is not None and record[f"{phase}_score"] != 100.0 * (rank == 1):
            out.append(f"{phase}_score {record[f'{phase}_score']} disagrees with {phase}_rank {rank}")
    if "clean_rank" in record:
        winner, found, found_clean = record.get("winner"), record["adv_rank"] == 1, record["clean_rank"] == 1
        if (winner is None) != found:
            out.append(f"winner {winner!r} for a query whose image is at rank {record['adv_rank']}")
        if (winner == CLEAN) != (not found_clean):
            out.append(f"winner {winner!r} for a query whose clean rank is {record['clean_rank']}")
    return out

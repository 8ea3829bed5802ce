"""What the text retrieval attack maximises: the retrieval margin (ours), or LEAF's objective
against a fixed target sentence.

* margin (the default): the best other image's similarity minus the own image's; the query is
  broken, and the attack stops, once another image outranks its own.
* LEAF's eval_retrieval.py (LIONS-EPFL/LEAF, its `--obj`, `--target`): utils_attacks.py
  `attack_text_charmer_inference` scores each candidate caption by its text embedding against
  the embedding of one of three fixed sentences (`retrievalTargets`), never looks at the
  gallery, and makes all k rounds (no early stop):
  - dissim: minus the cosine similarity to the target (both embeddings normalised; the default);
  - sim: the cosine similarity;
  - l2: the squared L2 distance between the unnormalised embeddings;
  - negl2: minus that distance.
  Retrieval is re-scored on the captions it leaves (LEAF's ImagePrec@1 = text-to-image R@1).

The search itself is charmer's (attacks/charmer.py): a LEAF objective only gives it another loss
and an is_broken that never fires, so it runs all k rounds and keeps the best-scoring candidate
of each, as attack_text_charmer_inference does.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from tasks.text_attack import embed_texts

MARGIN = "margin"
# LEAF's objectives; "sim"/"dissim" compare normalised embeddings, "l2"/"negl2" raw ones.
LEAF_OBJECTIVES: tuple[str, ...] = ("dissim", "sim", "l2", "negl2")
NORMALISED = frozenset({"dissim", "sim"})

# LEAF's eval_retrieval.py `retrievalTargets`, verbatim (the doubled "a a" is theirs): `--target`
# picks one by index, 0 by default.
LEAF_TARGETS: tuple[str, ...] = (
    "A man aggressively kicks a stray dog on the street.",
    "This is an image of a a pyramid",
    "A group of teenagers vandalizes a public statue.",
)
LEAF_DEFAULT = ("dissim", 0)  # eval_retrieval.py's --obj and --target defaults
# attack_text_charmer_inference's batch_size (20*128). Under charmer's leaf_quirks the position
# step keeps min(n, the last batch's size) positions (LEAF's classification attack), where this
# function keeps min(n, all it scored): with this batch size the two agree for every caption
# under 1280 characters (one batch holds all 2L+1 sentences).
LEAF_BATCH_SIZE = 20 * 128


@dataclass(frozen=True)
class RetrievalObjective:
    """The attack's loss on a query: MARGIN, or one of LEAF_OBJECTIVES against LEAF_TARGETS[target]."""

    name: str = MARGIN
    target: int | None = None  # the index into LEAF_TARGETS (LEAF objectives only)

    def __post_init__(self) -> None:
        if self.name == MARGIN:
            if self.target is not None:
                raise ValueError("the margin objective has no target sentence")
        elif self.name not in LEAF_OBJECTIVES:
            raise ValueError(f"unknown retrieval objective {self.name!r} (margin, {', '.join(LEAF_OBJECTIVES)})")
        elif self.target not in range(len(LEAF_TARGETS)):
            raise ValueError(f"LEAF's target index is 0..{len(LEAF_TARGETS) - 1}, got {self.target!r}")

    @property
    def is_leaf(self) -> bool:
        return self.name != MARGIN

    def settings(self) -> dict[str, Any]:
        """What a run records in its task settings (the margin's entry is today's, unchanged)."""
        if not self.is_leaf:
            return {"loss": MARGIN}
        assert self.target is not None
        return {"loss": self.name, "target_index": self.target, "target_sentence": LEAF_TARGETS[self.target],
                "early_stop": False, "charmer_batch_size": LEAF_BATCH_SIZE,  # unless --attack-args set it
                "reference": "LEAF eval_retrieval.py, attack_text_charmer_inference"}


MARGIN_OBJECTIVE = RetrievalObjective()  # the tasks' default


def leaf_loss(encoder: Any, objective: RetrievalObjective, device: torch.device) -> Callable[[list[str]], Tensor]:
    """[N] LEAF's objective of each candidate sentence (higher = more adversarial)."""
    assert objective.is_leaf and objective.target is not None
    normalise = objective.name in NORMALISED
    anchor = embed_texts(encoder, [LEAF_TARGETS[objective.target]], device, normalize=normalise)[0]

    def loss(candidates: list[str]) -> Tensor:
        features = embed_texts(encoder, candidates, device, normalize=normalise)
        if normalise:
            similarity = features @ anchor
            return -similarity if objective.name == "dissim" else similarity
        squared = ((features - anchor) ** 2).sum(dim=1)
        return squared if objective.name == "l2" else -squared

    return loss


def leaf_variants() -> list[tuple[str, RetrievalObjective, str]]:
    """(name suffix, objective, what it is) for every LEAF objective x target; LEAF's defaults
    get the bare "-leaf" so that one name is one cell on every leaderboard."""
    out = []
    for name in LEAF_OBJECTIVES:
        for target in range(len(LEAF_TARGETS)):
            suffix = "-leaf" if (name, target) == LEAF_DEFAULT else f"-leaf-{name}-target{target}"
            out.append((suffix, RetrievalObjective(name, target),
                        f"LEAF's --obj {name} --target {target} ({LEAF_TARGETS[target]!r})"))
    return out

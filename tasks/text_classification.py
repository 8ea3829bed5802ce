"""Zero-shot text classification under character edits (LEAF's eval_zero_shot_text.py).

A sentence is classified by the cosine similarity of its text embedding to one embedding per
class, encoded either from one image per class (LEAF's default `--label_encoder image`: AG-News
classified against a politics / sports / business / technology picture) or from one caption per
class (`--label_encoder text`: "World News", ...). The sentence is embedded as it is, without a
template. The attack (Charmer, `--norm levenshtein`, eps = k) edits at most k characters of the
sentence to maximise the margin of the similarity logits; the class embeddings stay clean.

A sample scores 100 when classified correctly (the run's mean is its accuracy %), and its
adversarial score is 100 when the recorded adversarial sentence is still classified correctly.
A sentence misclassified clean is not attacked (its winner is "clean", its sentence unchanged).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from benchutil.errors import BenchError
from tasks.base import (
    AttackSettings,
    Models,
    Record,
    Victim,
    refuse_target,
    seeded_subset,
)
from tasks.imagefolder import check_images, load_image
from tasks.text_attack import (
    SentenceScorer,
    TaskAlphabet,
    attack_sentence,
    attacking,
    embed_texts,
    margin,
)
from tasks.text_records import CLEAN, text_core_records
from tasks.text_threat import TEXT

LOGIT_SCALE = 100.0  # as the image zero-shot head; only the margin's scale sees it
IMAGES, CAPTIONS = "images", "captions"  # where the class embeddings come from (LEAF's --label_encoder)


@dataclass(frozen=True)
class TextClassificationData:
    """Sentences with a class each, and what encodes the classes (one image or one caption per class)."""

    name: str
    ids: list[str]
    sentences: list[str]
    labels: list[int]
    classnames: list[str]
    labels_from: str  # IMAGES | CAPTIONS
    class_images: list[Path]  # one per class, in class order (labels_from == IMAGES)
    class_captions: list[str]  # one per class, in class order (labels_from == CAPTIONS)
    source: str  # how the sentences were chosen (recorded in every run's task settings)
    alphabet: TaskAlphabet | None = None  # the attack's characters (None: charmer's own default)

    def __post_init__(self) -> None:
        if self.labels_from not in (IMAGES, CAPTIONS):
            raise BenchError(f"{self.name}: class labels come from {IMAGES} or {CAPTIONS}, not {self.labels_from!r}")
        per_class = self.class_images if self.labels_from == IMAGES else self.class_captions
        if len(per_class) != len(self.classnames):
            raise BenchError(f"{self.name}: {len(self.classnames)} classes but {len(per_class)} class "
                             f"{self.labels_from}; give one per class")
        if not self.ids:
            raise BenchError(f"{self.name}: no sentences; check its data files")


@torch.no_grad()
def class_embeddings(encoder: Any, data: TextClassificationData, device: torch.device) -> Tensor:
    """[classes, D]: each class image's (or caption's) normalised embedding, as LEAF encodes its labels."""
    if data.labels_from == CAPTIONS:
        return embed_texts(encoder, data.class_captions, device)
    images = torch.stack([load_image(p, encoder.image_size) for p in data.class_images]).to(device)
    return encoder.encode_image(images, normalize=True).float()


class TextClassificationTask:
    """One set of sentences classified zero-shot; sample ids name the sentences."""

    kind = "zero-shot text classification"
    metric = "text accuracy %"  # not "accuracy %": a text column never joins the pixel tasks' average
    domain = TEXT
    robustvlm_early_stop = None

    def __init__(self, data: TextClassificationData) -> None:
        self.data, self.name = data, data.name
        self._index = {i: j for j, i in enumerate(data.ids)}
        label_source = ([p.name for p in data.class_images] if data.labels_from == IMAGES else data.class_captions)
        self.settings: dict[str, Any] = {"labels_from": data.labels_from, "classes": data.classnames,
                                         "class_labels": label_source, "sentences": data.source,
                                         "loss": "margin", "template": None}
        if data.alphabet is not None:
            self.settings["alphabet"] = data.alphabet.setting()

    def sample_ids(self, n: int | None, seed: int) -> list[str]:
        return seeded_subset(self.data.ids, n, seed)

    def check_data(self, ids: list[str]) -> None:
        if self.data.labels_from == IMAGES:
            check_images(self.data.class_images)

    def check_attack(self, settings: AttackSettings) -> None:
        refuse_target(settings, self.name)

    def victim(self, models: Models, cache_dir: Path | None) -> Victim:
        encoder = models.encoder
        device = next(encoder.parameters()).device
        victim = SentenceScorer(encoder, class_embeddings(encoder, self.data, device), LOGIT_SCALE).eval()
        return Victim(victim, encoder.provenance.name, encoder.provenance.sha256, encoder.image_size)

    def load(self, ids: list[str], size: int) -> list[tuple[str, int]]:
        return [(self.data.sentences[self._index[i]], self.data.labels[self._index[i]]) for i in ids]

    @torch.no_grad()
    def attack(self, victim: SentenceScorer, ids: list[str], batch: list[tuple[str, int]],
               settings: AttackSettings) -> list[Record]:
        sentences, labels = [s for s, _ in batch], [y for _, y in batch]
        clean_pred = victim.scores(sentences).argmax(dim=1).tolist()
        adv_texts, distances, adv_pred = list(sentences), [0] * len(ids), list(clean_pred)
        for j, (sentence, label) in enumerate(batch):
            if not attacking(settings) or clean_pred[j] != label:
                continue

            def loss(candidates: list[str], label: int = label) -> Tensor:
                return margin(victim.scores(candidates), label)

            def is_broken(candidates: list[str], label: int = label) -> Tensor:
                return victim.scores(candidates).argmax(dim=1) != label

            adv_texts[j], distances[j] = attack_sentence(sentence, loss, is_broken, settings, self.data.alphabet)
            if adv_texts[j] != sentence:  # judged here, on the sentence alone, not by the attack's bookkeeping
                adv_pred[j] = int(victim.scores([adv_texts[j]]).argmax(dim=1)[0])
        correct = [p == y for p, y in zip(clean_pred, labels)]
        robust = [p == y for p, y in zip(adv_pred, labels)]
        winners = [None if r else (settings.entry.name if c else CLEAN) for c, r in zip(correct, robust)]
        extras = [{"label": labels[j], "clean_pred": clean_pred[j], "adv_pred": adv_pred[j],
                   "clean_correct": correct[j], "robust": robust[j]} for j in range(len(ids))]
        return text_core_records(ids, sentences, adv_texts, distances, [100.0 * c for c in correct],
                                 [100.0 * r for r in robust], winners, extras)

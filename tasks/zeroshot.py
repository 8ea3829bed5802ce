"""Zero-shot classification: the CLIP head, the victim, and a seeded sample of the data.

Head (docs/protocol.md; CLIP_benchmark's zero_shot_classifier): class weight = mean over
templates of the normalised text embedding, normalised again; logits = 100 * cos(image
embedding, class weight).
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from attacks import WorstCaseResult, worst_case
from attacks.ensemble import CLEAN, predictions
from attacks.precision import LOW_PRECISIONS, AttackPrecision, tf32
from benchutil.fileio import atomic_write
from tasks.base import (
    AttackSettings,
    Models,
    Record,
    Victim,
    core_records,
    refuse_target,
    seeded_subset,
)
from tasks.classifier import LabelledClassifier
from tasks.clip_benchmark import TorchvisionSelection, WebDatasetSelection
from tasks.imagefolder import ClassificationData, check_images, load_batch
from tasks.robustbench_imagenet import RobustBenchImageNet

LOGIT_SCALE = 100.0
# Datasets that make their own samples on first use; each names itself in `kind`, a run's
# task_settings["selection"].
SELECTIONS = (WebDatasetSelection, TorchvisionSelection, RobustBenchImageNet)


class TextImageEncoder(Protocol):
    tokenizer: object
    image_size: int
    provenance: object

    def encode_image(self, x: Tensor, normalize: bool = True) -> Tensor: ...
    def encode_text(self, tokens: Tensor, normalize: bool = True) -> Tensor: ...


class ZeroShotClassifier(nn.Module):
    """Pixels in [0,1] -> logits = scale * cos(image embedding, class weights): the victim."""

    def __init__(self, encoder: nn.Module, class_weights: Tensor, logit_scale: float = LOGIT_SCALE) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.logit_scale = logit_scale

    def forward(self, x: Tensor) -> Tensor:
        size = self.encoder.image_size
        if x.shape[-2:] != (size, size):
            # An image at its dataset's resolution (CIFAR's 32 px): resized here, inside the model, as
            # CLIP_benchmark's cli.py does (bicubic, no antialias), so eps stays in the dataset's pixels.
            x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
        return self.logit_scale * self.encoder.encode_image(x) @ self.class_weights.T


@torch.no_grad()
def class_weights(encoder: TextImageEncoder, classnames: list[str], templates: list[str]) -> Tensor:
    device = next(encoder.parameters()).device  # type: ignore[attr-defined]
    weights = []
    for name in classnames:
        tokens = encoder.tokenizer([t.format(name) for t in templates]).to(device)  # type: ignore[operator]
        emb = encoder.encode_text(tokens, normalize=True).mean(dim=0)
        weights.append(emb / emb.norm())
    return torch.stack(weights).float()


class ZeroShotTask:
    """One dataset evaluated zero-shot; sample ids are image paths relative to its root.

    A sample scores 100 when classified correctly (so a run's mean score is its accuracy %);
    its adversarial score is 100 only if it is correct and survives every member of the
    attack (AutoAttack's worst case, attacks.worst_case).
    """

    kind = "zero-shot classification"
    metric = "accuracy %"
    robustvlm_early_stop = None  # AutoAttack drops broken samples by itself

    def __init__(self, data: ClassificationData | WebDatasetSelection | TorchvisionSelection | RobustBenchImageNet,
                 member_args: dict[str, dict[str, Any]] | None = None, native_resolution: bool = False) -> None:
        # Defaults for single attack members, e.g. {"apgd-ce": {"restarts": 5}}: the protocol of
        # a suite, recorded with every run (the user's --attack-args still win).
        self.member_args = member_args or {}
        self.native_resolution = native_resolution  # attacked at the images' own size (CIFAR, STL-10)
        self.settings: dict[str, Any] = {"member_args": self.member_args} if self.member_args else {}
        if native_resolution:
            self.settings["native_resolution"] = True
        self.name = data.name
        # A CLIP_benchmark webdataset, torchvision's layout or RobustBench's ImageNet list selects its
        # own samples (the reference's where there is one), on first use.
        self.selection = data if isinstance(data, SELECTIONS) else None
        if self.selection is not None:
            self.settings["selection"] = self.selection.kind
        else:
            self._use(data)  # type: ignore[arg-type]

    def _use(self, data: ClassificationData) -> None:
        self.data = data
        self._label = dict(zip(data.ids, data.labels))

    def sample_ids(self, n: int | None, seed: int) -> list[str]:
        """A fixed, seeded subset (the same for clean and every attack), in a stable order; for
        a CLIP_benchmark webdataset, the reference's first n samples, whatever --seed says
        (selected samples are stored as files on first use)."""
        if self.selection is not None:
            self._use(self.selection.data(sys.maxsize if n is None else n, seed))
            return list(self.data.ids)
        return seeded_subset(self.data.ids, n, seed)

    def load(self, ids: list[str], size: int) -> tuple[Tensor, Tensor]:
        images = load_batch(self.data.root, ids, None if self.native_resolution else size)
        return images, torch.tensor([self._label[i] for i in ids])

    def check_data(self, ids: list[str]) -> None:
        check_images([self.data.root / i for i in ids])

    def check_attack(self, settings: AttackSettings) -> None:
        refuse_target(settings, self.name)

    def victim(self, models: Models, cache_dir: Path | None) -> Victim:
        model = models.encoder
        # a plain classifier brings its own head; an encoder gets the zero-shot one
        head = (model.for_classes(self.data.classnames, self.name) if isinstance(model, LabelledClassifier)
                else self.classifier(model, cache_dir))
        return Victim(head, model.provenance.name, model.provenance.sha256, model.image_size)

    def attack(self, victim: nn.Module, ids: list[str], batch: tuple[Tensor, Tensor],
               settings: AttackSettings) -> list[Record]:
        device = next(victim.buffers()).device  # the head's buffer: class weights, or a classifier's class order
        x, y = batch[0].to(device), batch[1].to(device)
        entry = settings.entry
        if settings.attacking and entry.external is not None:
            x_adv = entry.external(victim, x, y, settings.eps, settings.norm, settings.steps, settings.seed,
                                   settings.args)
            result = _score_points(victim, x, y, x_adv, entry.name)
        elif settings.attacking:
            with tf32(settings.precision == "tf32"):
                result = worst_case(victim, x, y, attacks=entry.members, eps=settings.eps, norm=settings.norm,
                                    steps=settings.steps, seed=settings.attack_seed, args=settings.args,
                                    member_args=self.member_args,
                                    attack_model=AttackPrecision(victim, settings.precision),
                                    final_stage=settings.precision in LOW_PRECISIONS)
        else:
            result = _score_points(victim, x, y, x, entry.name)
        # The recorded predictions are those of the passes that decided the verdicts, so that
        # robust == (adv_pred == label) holds in every record.
        clean_pred, adv_pred = result.clean_pred, result.adv_pred
        correct, robust = result.clean_correct.tolist(), result.robust.tolist()
        extras = [{"label": int(y[j]), "clean_pred": int(clean_pred[j]), "adv_pred": int(adv_pred[j]),
                   "clean_correct": correct[j], "robust": robust[j]} for j in range(len(ids))]
        return core_records(ids, x, result.x_adv, settings, [100.0 * c for c in correct],
                            [100.0 * r for r in robust], result.winner, extras)

    def head_key(self, encoder: TextImageEncoder) -> str:
        payload = json.dumps({"encoder": getattr(encoder.provenance, "sha256", ""),
                              "architecture": getattr(encoder.provenance, "architecture", ""),
                              "classnames": self.data.classnames, "templates": self.data.templates})
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def classifier(self, encoder: TextImageEncoder, cache_dir: Path | None) -> ZeroShotClassifier:
        """The classifier for this dataset; the text head is cached by checkpoint hash."""
        cacheable = cache_dir is not None and getattr(encoder.provenance, "sha256", "random") != "random"
        path = cache_dir / "heads" / f"{self.head_key(encoder)}.safetensors" if cacheable else None
        if path is not None and path.is_file():
            weights = load_file(str(path))["class_weights"]
        else:
            weights = class_weights(encoder, self.data.classnames, self.data.templates)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tensors = {"class_weights": weights.cpu().contiguous()}
                atomic_write(path, lambda p: save_file(tensors, str(p)), "free space in $BENCH_HOME")
        device = next(encoder.parameters()).device  # type: ignore[attr-defined]
        return ZeroShotClassifier(encoder, weights.to(device)).eval()  # type: ignore[arg-type]


def _score_points(model: nn.Module, x: Tensor, y: Tensor, x_adv: Tensor, name: str) -> WorstCaseResult:
    """Score given points (an external attack's, or x itself): robust = right on x and on x_adv."""
    with torch.no_grad():
        clean_pred = model(x).argmax(dim=1)
    clean_ok = clean_pred == y
    x_adv = torch.where(clean_ok.view(-1, *[1] * (x.dim() - 1)), x_adv, x)  # x where x was wrong
    adv_pred = predictions(model, x, x_adv, clean_pred)
    robust = clean_ok & (adv_pred == y)
    winner = [None if r else (name if c else CLEAN) for r, c in zip(robust.tolist(), clean_ok.tolist())]
    return WorstCaseResult(robust=robust, x_adv=x_adv, winner=winner, clean_correct=clean_ok, clean_pred=clean_pred,
                           adv_pred=adv_pred)

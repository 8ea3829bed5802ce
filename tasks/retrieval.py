"""Zero-shot image-text retrieval under attack on the images (COCO, Flickr30k, the tiny world).

Clean, this is CLIP_benchmark's zeroshot_retrieval (clip_benchmark/metrics/zeroshot_retrieval.py
`evaluate`): every image of the split and every caption are embedded (normalised), scored by
cosine, and recall@1/5/10 counted both ways (tasks/retrieval_recall.py). The gallery is always
the whole split; `--n-samples` picks which images are queries (and whose captions are).

The attack is our extension (docs/protocol.md, "Zero-shot retrieval"):

* Threat model: each image is perturbed on its own, within the eps ball, while every other
  image of the gallery stays clean. Image-to-text recall then depends on that image only (the
  captions are fixed). Text-to-image recall of the image's own captions is counted against the
  other images' clean embeddings plus its adversarial one: the question is whether an attacker
  who perturbs this image can stop its captions from finding it. It is decomposable per image,
  so records, resumes, shards and subsets all give exact run-level numbers.
* Victim: a classifier over the gallery's images, image logit = logsumexp over that image's
  captions of 100 * cos(image, caption). Its cross-entropy with the image's own index as label
  is the cross-entropy of the image's logits over *all* captions with its true captions as the
  targets (-log of the softmax mass on them), so `apgd` / `pgd` / `aa` push every true caption
  down at once; DLR, APGD-T (AutoAttack's top-9 other images as targets) and CW apply to these
  logits as they do to class logits, and the reference attacks (autoattack, torchattacks:...)
  see an ordinary classifier.
* Success (a sample leaves the attack): every recall hit of the image is 0, image-to-text and
  text-to-image at k = 1, 5 and 10: nothing is left to lower. Until then an attack runs all its
  steps and returns its highest-loss point (APGD) or last iterate (PGD).
* Worst case: the clean image is the first candidate; a pass's point replaces the recorded one
  where it is lower on (image-to-text hit @1, @5, @10, own captions retrieving the image @1,
  @5, @10), compared in that order. So the record's score (image-to-text R@1 x 100) never
  exceeds the clean one, and all six numbers of an image come from one adversarial image.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from attacks.checks import check_images
from attacks.classify import top_targets
from attacks.core import attack_mode
from attacks.core_registry import core
from attacks.ensemble import FP32_STAGE
from attacks.losses import LOSSES
from attacks.objectives import Evaluation
from attacks.precision import LOW_PRECISIONS, autocast, tf32
from attacks.randomness import SampleSeeds
from attacks.table import Member
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
from tasks.imagefolder import check_images as check_image_files
from tasks.imagefolder import load_image
from tasks.retrieval_data import RetrievalData
from tasks.retrieval_recall import (
    CAPTIONS,
    I2T_HITS,
    RECALL_KS,
    RETRIEVAL_KIND,
    T2I_HITS,
    image_to_text_hits,
    text_to_image_hits,
)

LOGIT_SCALE = 100.0  # CLIP's learned scale, as the zero-shot head's logits (only the attack loss sees it)
EMBED_BATCH = 64  # images / 4 captions per forward when the gallery is embedded
N_TARGETS = 9  # AutoAttack's APGD-T: the top-9 other images
# Arguments of the classic L2 CW (tanh space, Adam, search over c): here cw is APGD on the margin.
CLASSIC_CW_ONLY = ("c", "binary_search_steps", "lr", "abort_early")


class RetrievalVictim(nn.Module):
    """Pixels in [0,1] -> logits over the gallery's images (logsumexp of 100 * cos over each image's
    captions), with the clean gallery and the outcome of a point (its recall hits) beside them."""

    def __init__(self, encoder: nn.Module, text: Tensor, caption_image: Tensor, gallery: Tensor) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("text", text, persistent=False)  # [captions, D], normalised
        self.register_buffer("caption_image", caption_image, persistent=False)  # [captions]: image index
        self.register_buffer("gallery", gallery, persistent=False)  # [images, D]: clean, normalised
        counts = torch.bincount(caption_image, minlength=gallery.shape[0])
        table = torch.full((gallery.shape[0], int(counts.max())), -1, dtype=torch.long, device=text.device)
        order = torch.argsort(caption_image, stable=True)  # captions grouped by image, in caption order
        slot = torch.arange(len(order), device=text.device) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts)
        table[caption_image[order], slot] = order
        self.register_buffer("captions_of", table, persistent=False)  # [images, max captions], -1: none

    def embed(self, x: Tensor) -> Tensor:
        return self.encoder.encode_image(x, normalize=True).float()

    def image_logits(self, emb: Tensor) -> Tensor:
        z = LOGIT_SCALE * emb @ self.text.T
        grouped = z[:, self.captions_of.clamp(min=0)].masked_fill(self.captions_of < 0, float("-inf"))
        return torch.logsumexp(grouped, dim=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.image_logits(self.embed(x))

    @torch.no_grad()
    def outcome(self, emb: Tensor, own: Tensor, clean: bool = False) -> Tensor:
        """[B, 6] ints per image embedding: image-to-text hits @1, @5, @10, then how many of the
        image's captions retrieve it @1, @5, @10 among the clean gallery with this embedding in
        its own place (clean=True: emb is the gallery's own row, which is then used as it is)."""
        emb = emb.float()
        positives = self.caption_image[None, :] == own[:, None]
        i2t = image_to_text_hits(emb @ self.text.T, positives)
        captions = self.captions_of[own]  # [B, M]
        texts = self.text[captions.clamp(min=0)]  # [B, M, D]
        rows = texts @ self.gallery.T  # [B, M, images]: the reference's score rows of these captions
        if not clean:
            own_column = own[:, None, None].expand(-1, captions.shape[1], 1)
            rows = rows.scatter(2, own_column, texts @ emb[:, :, None])
        t2i = text_to_image_hits(rows, own[:, None].expand_as(captions)) & (captions >= 0)[..., None]
        return torch.cat([i2t.long(), t2i.sum(dim=1)], dim=1)


class RetrievalObjective:
    """A loss on the victim's image logits (attacks.losses, the classifier's), maximised;
    success = nothing left to lower (every recall hit of the image at 0)."""

    def __init__(self, victim: RetrievalVictim, own: Tensor, loss: str, target: Tensor | None = None,
                 kappa: float = 0.0) -> None:
        self.victim, self.own, self.target, self.kappa = victim, own, target, kappa
        self.loss = LOSSES[loss].fn

    def __call__(self, x: Tensor, idx: Tensor) -> Evaluation:
        emb = self.victim.embed(x)
        own = self.own[idx]
        target = None if self.target is None else self.target[idx]
        loss = self.loss(self.victim.image_logits(emb).float(), own, target, self.kappa)
        with torch.autocast(x.device.type, enabled=False):  # judged in float32 whatever the attack computes in
            success = (self.victim.outcome(emb.detach().float(), own) == 0).all(dim=1)
        return Evaluation(loss=loss, success=success)


def lower(a: Tensor, b: Tensor) -> Tensor:
    """Per row, whether outcome a is lexicographically below outcome b."""
    diff = a - b
    differs = diff != 0
    first = differs.int().argmax(dim=1)
    return differs.any(dim=1) & (diff.gather(1, first[:, None])[:, 0] < 0)


class WorstCase:
    """Per image, the recorded point so far (the clean image first), its outcome and the pass that found it."""

    def __init__(self, victim: RetrievalVictim, x: Tensor, own: Tensor) -> None:
        self.victim, self.x, self.own = victim, x, own
        self.clean = victim.outcome(victim.gallery[own], own, clean=True)
        self.outcome, self.x_adv = self.clean.clone(), x.clone()
        self.winner: list[str | None] = [None] * x.shape[0]

    def open(self) -> Tensor:
        """[B] bool: images with a recall hit left to lower."""
        return (self.outcome != 0).any(dim=1)

    @torch.no_grad()
    def consider(self, candidate: Tensor, rows: Tensor, label: str) -> None:
        """Score the candidates of `rows` in float32 and keep those below the recorded outcome. A
        candidate equal to its clean image scores what the clean image scores."""
        idx = rows.nonzero()[:, 0]
        if idx.numel() == 0:
            return
        points = candidate[idx]
        outcome = self.victim.outcome(self.victim.embed(points), self.own[idx])
        unchanged = (points == self.x[idx]).flatten(1).all(dim=1)
        outcome[unchanged] = self.clean[idx][unchanged]
        better = lower(outcome, self.outcome[idx])
        keep = idx[better]
        self.outcome[keep], self.x_adv[keep] = outcome[better], points[better]
        for i in keep.tolist():
            self.winner[i] = label


class RetrievalTask:
    """One retrieval split; sample ids are its image ids, a sample's score is its image-to-text R@1 x 100."""

    kind = RETRIEVAL_KIND
    metric = "image-to-text R@1 %"
    robustvlm_early_stop = None

    def __init__(self, data: RetrievalData) -> None:
        self.data, self.name = data, data.name
        self.index = {image_id: k for k, image_id in enumerate(data.ids)}
        self.settings: dict[str, Any] = {"captions": data.caption_source, "recall_at": list(RECALL_KS),
                                         "text_to_image": "per-image", "gallery_images": len(data.ids),
                                         "gallery_captions": sum(map(len, data.captions))}

    def sample_ids(self, n: int | None, seed: int) -> list[str]:
        """A seeded subset of the images as queries (the gallery stays the whole split)."""
        return seeded_subset(self.data.ids, n, seed)

    def check_data(self, ids: list[str]) -> None:
        check_image_files(self.data.images)  # every image: the gallery holds them all

    def check_attack(self, settings: AttackSettings) -> None:
        refuse_target(settings, self.name)
        classic = [k for k in CLASSIC_CW_ONLY if k in settings.args]
        if classic:
            raise ValueError(f"--attack-args {classic[0]!r} belongs to the classic L2 CW on classifiers; on retrieval, "
                             "cw runs APGD on the margin (it takes kappa)")

    def load(self, ids: list[str], size: int) -> Tensor:
        return torch.stack([load_image(self.data.images[self.index[i]], size) for i in ids])

    def victim(self, models: Models, cache_dir: Path | None) -> Victim:
        encoder = models.encoder
        text, gallery = self.embeddings(encoder, cache_dir)
        caption_image = torch.tensor([k for k, caps in enumerate(self.data.captions) for _ in caps], device=text.device)
        return Victim(RetrievalVictim(encoder, text, caption_image, gallery).eval(), encoder.provenance.name,
                      encoder.provenance.sha256, encoder.image_size)

    def embeddings_key(self, encoder: Any) -> str:
        payload = json.dumps({"encoder": getattr(encoder.provenance, "sha256", ""),
                              "architecture": getattr(encoder.provenance, "architecture", ""),
                              "size": encoder.image_size, "images": [str(p) for p in self.data.images],
                              "captions": self.data.captions})
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def embeddings(self, encoder: Any, cache_dir: Path | None) -> tuple[Tensor, Tensor]:
        """(caption embeddings, clean image embeddings) of the whole split, normalised, float32;
        cached by checkpoint hash, images and captions."""
        device = next(encoder.parameters()).device
        cacheable = cache_dir is not None and getattr(encoder.provenance, "sha256", "random") != "random"
        path = cache_dir / "retrieval" / f"{self.embeddings_key(encoder)}.safetensors" if cacheable else None
        if path is not None and path.is_file():
            stored = load_file(str(path))
            return stored["text"].to(device), stored["gallery"].to(device)
        texts = [c for caps in self.data.captions for c in caps]
        with torch.no_grad():
            text = torch.cat([encoder.encode_text(encoder.tokenizer(texts[i : i + 4 * EMBED_BATCH]).to(device),
                                                  normalize=True).float()
                              for i in range(0, len(texts), 4 * EMBED_BATCH)])
            gallery = torch.cat([encoder.encode_image(self.load(self.data.ids[i : i + EMBED_BATCH],
                                                                encoder.image_size).to(device), normalize=True).float()
                                 for i in range(0, len(self.data.ids), EMBED_BATCH)])
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tensors = {"text": text.cpu().contiguous(), "gallery": gallery.cpu().contiguous()}
            atomic_write(path, lambda p: save_file(tensors, str(p)), "free space in $BENCH_HOME")
        return text, gallery

    def attack(self, victim: RetrievalVictim, ids: list[str], batch: Tensor, settings: AttackSettings) -> list[Record]:
        device = victim.text.device
        x = batch.to(device)
        check_images(x)
        own = torch.tensor([self.index[i] for i in ids], device=device)
        with attack_mode(victim):
            worst = WorstCase(victim, x, own)
            if settings.attacking:
                _attack(victim, x, own, worst, settings)
        extras: list[Record] = []
        for j, image_id in enumerate(ids):
            extra: Record = {CAPTIONS: len(self.data.captions[self.index[image_id]])}
            for phase, outcome in (("clean", worst.clean[j].tolist()), ("adv", worst.outcome[j].tolist())):
                extra[f"{phase}_{I2T_HITS}"] = [bool(h) for h in outcome[:3]]  # per k of RECALL_KS
                extra[f"{phase}_{T2I_HITS}"] = outcome[3:]  # own captions retrieving the image, per k
            extras.append(extra)
        return core_records(ids, x, worst.x_adv, settings, [100.0 * c for c in worst.clean[:, 0].tolist()],
                            [100.0 * a for a in worst.outcome[:, 0].tolist()], worst.winner, extras)


def _attack(victim: RetrievalVictim, x: Tensor, own: Tensor, worst: WorstCase, s: AttackSettings) -> None:
    """Every pass of the attack, each on the images with something left to lower."""
    entry = s.entry
    if entry.external is not None:  # a reference implementation on the victim as a classifier
        worst.consider(entry.external(victim, x, own, s.eps, s.norm, s.steps, s.seed, s.args), worst.open(),
                       entry.name)
        return
    n_images = victim.gallery.shape[0]
    with torch.no_grad():
        clean_logits = victim.image_logits(victim.gallery[own])
    for member in entry.members:
        for k, (loss, target) in enumerate(_passes(member, clean_logits, own, n_images, s.args)):
            rows = worst.open()
            if not bool(rows.any()):
                return
            worst.consider(_run(victim, member.core, loss, x, own, target, rows, s, _salted(s, k)), rows, member.name)
    rows = worst.open()
    if s.precision in LOW_PRECISIONS and bool(rows.any()):
        # A low-precision attack ends in float32, from each image's recorded point (attacks.precision).
        worst.consider(_run(victim, "apgd", "ce", x, own, None, rows, s, s.attack_seed, x_init=worst.x_adv.clone(),
                            float32=True), rows, FP32_STAGE)


def _passes(member: Member, logits: Tensor, own: Tensor, n_images: int,
            args: dict[str, Any]) -> list[tuple[str, Tensor | None]]:
    """(loss, target per image) of each pass of a table member, as on a classifier: untargeted
    once; APGD-T once per each of AutoAttack's top other images (targeted DLR, targeted CE
    below 4 images, skipped with 2); any other targeted member towards the top other image."""
    passes: list[tuple[str, Tensor | None]]
    if not member.targeted:
        passes = [(member.loss, None)]
    elif member.core == "apgd" and member.loss == "dlr":
        if n_images < 3:  # the only other image: the untargeted attack again
            return []
        n = min(int(args.get("n_targets", N_TARGETS)), n_images - 1)
        targets = top_targets(logits, own, n)
        passes = [("dlr-targeted" if n_images >= 4 else "ce-targeted", targets[:, t]) for t in range(n)]
    else:
        passes = [({"ce": "ce-targeted", "dlr": "dlr-targeted", "cw": "cw-targeted"}[member.loss],
                   top_targets(logits, own, 1)[:, 0])]
    return [(loss, target) for loss, target in passes if n_images >= LOSSES[loss].min_classes]


def _salted(s: AttackSettings, k: int) -> int | SampleSeeds:
    """Each target pass its own random starts (APGD-T's packed runs salt the seeds by target)."""
    seed = s.attack_seed
    if k == 0 or not isinstance(seed, SampleSeeds):
        return seed
    return seed.salted(torch.full((len(seed),), k))


def _run(victim: RetrievalVictim, core_name: str, loss: str, x: Tensor, own: Tensor, target: Tensor | None,
         rows: Tensor, s: AttackSettings, seed: int | SampleSeeds, x_init: Tensor | None = None,
         float32: bool = False) -> Tensor:
    args = {k: v for k, v in s.args.items() if k != "n_targets"}
    kappa = float(args.pop("kappa", 0.0))
    if x_init is not None:
        args = {"x_init": x_init}  # the float32 stage: APGD-CE as the zero-shot one, from the recorded point
    objective = RetrievalObjective(victim, own, loss, target, kappa)
    precision = "fp32" if float32 else s.precision
    with autocast(precision, x.device), tf32(precision == "tf32"):
        return core(core_name).run(objective, x, eps=s.eps, norm=s.norm, steps=s.steps, seed=seed,
                                   stop_on_success=True, active=rows, name=core_name, **args).x_adv

"""Small real victims for attack tests and benchmarks, built in seconds on a CPU.

* a CNN trained on scikit-learn's 8x8 digits, upsampled to 32x32 (accurate, not robust);
* a tiny open_clip ViT used as a zero-shot classifier: random weights, random class
  prototypes, CLIP normalisation inside, logits = scale * cosine (CLIP's head).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DIGITS_SIZE = 32
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@functools.lru_cache(maxsize=1)
def digits_data() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(x_train, y_train, x_test, y_test); images [N, 1, 32, 32] in [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    x = F.interpolate(x, size=DIGITS_SIZE, mode="bilinear", align_corners=False).clamp(0, 1)
    y = torch.tensor(digits.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return x[:1400], y[:1400], x[1400:], y[1400:]


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@functools.lru_cache(maxsize=1)
def digits_cnn() -> DigitsCNN:
    """Train for 6 epochs (a few seconds): ~97% test accuracy, and no robustness at all."""
    torch.manual_seed(0)
    x, y, _, _ = digits_data()
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(6):
        perm = torch.randperm(len(y))
        for i in range(0, len(y), 64):
            batch = perm[i : i + 64]
            loss = F.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


class ZeroShotViT(nn.Module):
    """A CLIP-style zero-shot head on an open_clip vision tower: pixels in [0,1] -> logits."""

    def __init__(self, visual: nn.Module, prototypes: Tensor, scale: float) -> None:
        super().__init__()
        self.visual = visual
        self.register_buffer("prototypes", F.normalize(prototypes, dim=-1))
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1))
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        emb = F.normalize(self.visual((x - self.mean) / self.std), dim=-1)
        return self.scale * emb @ self.prototypes.T


def tiny_vit_classifier(
    image_size: int = 32, n_classes: int = 10, scale: float = 100.0, seed: int = 0,
    width: int = 64, layers: int = 2, patch_size: int = 8,
) -> ZeroShotViT:
    from open_clip.model import CLIPVisionCfg, _build_vision_tower

    torch.manual_seed(seed)
    cfg = CLIPVisionCfg(layers=layers, width=width, head_width=32, mlp_ratio=2.0,
                        patch_size=patch_size, image_size=image_size)
    visual = _build_vision_tower(embed_dim=64, vision_cfg=cfg)
    return ZeroShotViT(visual, _exemplar_prototypes(visual, n_classes, image_size, seed), scale).eval()


def _exemplar_prototypes(visual: nn.Module, n_classes: int, image_size: int, seed: int) -> Tensor:
    """Class prototypes = embeddings of one random exemplar image per class.

    Random prototypes would put nearly every image in one class (a random tower maps all
    inputs to similar directions); exemplars spread the predictions over the classes, as
    text prototypes of a trained CLIP do.
    """
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        emb = visual((natural_images(n_classes, image_size, seed=seed + 1000) - mean) / std)
    return emb


def vit_b32_classifier(n_classes: int = 10, seed: int = 0) -> ZeroShotViT:
    """open_clip ViT-B-32 at 224 px with random weights (the benchmark's large victim)."""
    import open_clip

    torch.manual_seed(seed)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    prototypes = _exemplar_prototypes(model.visual, n_classes, 224, seed)
    return ZeroShotViT(model.visual, prototypes, 100.0).eval()


def natural_images(n: int, size: int, seed: int = 0) -> Tensor:
    """Smooth random RGB images in [0,1] (low-frequency noise, like blurry photos)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, max(size // 8, 2), max(size // 8, 2), generator=g)
    return F.interpolate(coarse, size=size, mode="bicubic", align_corners=False).clamp(0, 1)

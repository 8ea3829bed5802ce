"""The tiny world: small RGB scenes of coloured shapes on varied backgrounds, some with a sign.

Everything is drawn from a numpy Generator, so a seed fixes every pixel. Backgrounds
(noise, gradients, clutter) vary so that a model must look at the objects, not at the
canvas, to tell scenes apart.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = 64
SHAPES = ("circle", "square", "triangle", "star", "cross")
COLOURS = {
    "red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 60, 220),
    "yellow": (235, 215, 30), "purple": (150, 40, 190), "orange": (245, 130, 20),
}
COUNT_WORDS = ("one", "two", "three")
BACKGROUNDS = ("noise", "gradient", "clutter")
WORDS = ("stop", "open", "exit", "cafe", "bank", "taxi", "shop", "park", "hotel", "bus")
SIZES = ("small", "large")


@dataclass(frozen=True)
class Obj:
    shape: str
    colour: str
    size: str  # small | large
    x: int  # centre
    y: int


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]
    background: str
    word: str | None  # text on a sign, if any


def _place(rng: np.random.Generator, n: int, sizes: list[str]) -> list[tuple[int, int]]:
    """Centres for n objects that do not overlap (rejection sampling on a fixed budget)."""
    for _ in range(200):
        pts = [(int(rng.integers(13, SIZE - 13)), int(rng.integers(13, SIZE - 13))) for _ in range(n)]
        radius = [10 if s == "small" else 14 for s in sizes]
        ok = all(
            (pts[i][0] - pts[j][0]) ** 2 + (pts[i][1] - pts[j][1]) ** 2 >= (radius[i] + radius[j]) ** 2
            for i in range(n) for j in range(i)
        )
        if ok:
            return pts
    return [(16 + 16 * i, 16 + 16 * i) for i in range(n)]


def sample_scene(rng: np.random.Generator, n_objects: int | None = None, shape: str | None = None,
                 colour: str | None = None, with_word: bool | None = None) -> Scene:
    n = n_objects if n_objects is not None else int(rng.integers(1, 4))
    sizes = [SIZES[int(rng.integers(0, 2))] for _ in range(n)]
    wants_word = with_word if with_word is not None else rng.random() < 0.3
    word = WORDS[int(rng.integers(0, len(WORDS)))] if wants_word else None
    if word is not None:
        n = min(n, 2)  # leave room for the sign
        sizes = sizes[:n]
    pts = _place(rng, n, sizes) if word is None else [(15, 16 + 31 * i) for i in range(n)]
    objects = tuple(
        Obj(shape or SHAPES[int(rng.integers(0, len(SHAPES)))],
            colour or list(COLOURS)[int(rng.integers(0, len(COLOURS)))], sizes[i], *pts[i])
        for i in range(n)
    )
    return Scene(objects, BACKGROUNDS[int(rng.integers(0, len(BACKGROUNDS)))], word)


def _background(kind: str, rng: np.random.Generator) -> Image.Image:
    base = rng.integers(60, 200, size=3)
    if kind == "noise":
        arr = base + rng.normal(0, 25, size=(SIZE, SIZE, 3))
    elif kind == "gradient":
        other = rng.integers(40, 220, size=3)
        t = np.linspace(0, 1, SIZE)[:, None, None] if rng.random() < 0.5 else np.linspace(0, 1, SIZE)[None, :, None]
        arr = base * (1 - t) + other * t + np.zeros((SIZE, SIZE, 3))
    else:  # clutter: faint random lines and dots
        arr = np.zeros((SIZE, SIZE, 3)) + base
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(12):
            pts = [int(v) for v in rng.integers(0, SIZE, size=4)]
            tone = tuple(int(v) for v in np.clip(base + rng.integers(-50, 50, size=3), 0, 255))
            draw.line(pts, fill=tone, width=1)
        return img
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _draw_object(draw: ImageDraw.ImageDraw, obj: Obj) -> None:
    r = 8 if obj.size == "small" else 12
    x, y, fill = obj.x, obj.y, COLOURS[obj.colour]
    if obj.shape == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
    elif obj.shape == "square":
        draw.rectangle([x - r, y - r, x + r, y + r], fill=fill)
    elif obj.shape == "triangle":
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)
    elif obj.shape == "star":
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.45
            ang = np.pi / 2 + k * np.pi / 5
            pts.append((x + rad * np.cos(ang), y - rad * np.sin(ang)))
        draw.polygon(pts, fill=fill)
    else:  # cross
        w = max(r // 3, 2)
        draw.rectangle([x - r, y - w, x + r, y + w], fill=fill)
        draw.rectangle([x - w, y - r, x + w, y + r], fill=fill)


def render(scene: Scene, rng: np.random.Generator) -> Image.Image:
    img = _background(scene.background, rng)
    draw = ImageDraw.Draw(img)
    for obj in scene.objects:
        _draw_object(draw, obj)
    if scene.word is not None:
        draw.rectangle([30, 22, 62, 42], fill=(245, 245, 245), outline=(20, 20, 20))
        font = ImageFont.load_default(size=11)  # ships with Pillow: no download
        draw.text((46, 32), scene.word.upper(), fill=(10, 10, 10), font=font, anchor="mm")
    return img

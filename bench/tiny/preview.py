"""A PNG grid of tiny scenes with one caption and one question each, to see the world at a glance."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from benchutil.fileio import atomic_write


def preview(world: Path, out: Path, n: int = 8) -> Path:
    caps = json.loads((world / "captions" / "dataset_tiny.json").read_text())["images"][:n]
    vqa_q = json.loads((world / "vqa" / "questions_val.json").read_text())["questions"]
    annotations = json.loads((world / "vqa" / "annotations_val.json").read_text())["annotations"]
    vqa_a = {a["question_id"]: a for a in annotations}
    by_image: dict[int, list[dict]] = {}
    for q in vqa_q:
        by_image.setdefault(q["image_id"], []).append(q)
    vqa_images = list(by_image)[:n]
    tile_w, scale = 300, 2
    canvas = Image.new("RGB", (tile_w * 2, (64 * scale + 8) * n), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=11)
    for row in range(n):
        y = row * (64 * scale + 8) + 4
        with Image.open(world / "captions" / "images" / caps[row]["filename"]) as im:
            canvas.paste(im.convert("RGB").resize((64 * scale, 64 * scale), Image.NEAREST), (4, y))
        sentences = caps[row]["sentences"]
        text = sentences[row % len(sentences)]["raw"]  # show the variety of the references
        draw.multiline_text((64 * scale + 10, y + 4), _wrap(text, 24), fill="black", font=font)
        asked = by_image[vqa_images[row]]
        q = asked[row % len(asked)]
        with Image.open(world / "vqa" / "images" / f"COCO_val2014_{q['image_id']:012d}.jpg") as im:
            canvas.paste(im.convert("RGB").resize((64 * scale, 64 * scale), Image.NEAREST), (tile_w + 4, y))
        qa = f"Q: {q['question']}\nA: {vqa_a[q['question_id']]['multiple_choice_answer']}"
        draw.multiline_text((tile_w + 64 * scale + 10, y + 4), _wrap(qa, 24), fill="black", font=font)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: canvas.save(tmp, format="PNG"))
    return out


def _wrap(text: str, width: int) -> str:
    lines, line = [], ""
    for word in text.split():
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])

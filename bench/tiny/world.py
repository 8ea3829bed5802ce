"""Write the tiny world in the real file formats, with a manifest of hashes.

    classification/<dataset>/{train,test}/<class>/<n>.png   + classnames.txt, templates.txt
    captions/dataset_tiny.json + captions/images/<n>.jpg      Karpathy-style (5 refs/image)
    vqa/{questions,annotations}_{train,val}.json + vqa/images/COCO_val2014_<id:012d>.jpg
    textvqa/{questions,annotations}_{train,val}.json + textvqa/train_images/<id>.jpg
    the datasets of _extra_parts() (each module's docstring gives its layout)
    manifest.json: seed, generator version and the sha256 of every file

Same seed, same Pillow: the same bytes, file for file.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from bench.tiny import language
from bench.tiny.scenes import COLOURS, COUNT_WORDS, SHAPES, render, sample_scene
from benchutil.errors import BenchError
from benchutil.fileio import OUT_HINT, disk_errors

VERSION = 2  # 2: VizWiz, OK-VQA, POPE, ScienceQA and held-out classification parts
# dataset -> {class folder: class name}, and its prompt templates
CLASSIFICATION: dict[str, dict[str, str]] = {
    "tiny-shape": {s: s for s in SHAPES},
    "tiny-colour": {c: c for c in COLOURS},
    "tiny-count": {"one": "one shape", "two": "two shapes", "three": "three shapes"},
}
TEMPLATES = {
    "tiny-shape": ["a {}.", "a picture of a {}.", "an image with a {}.", "a {} on a background."],
    "tiny-colour": ["a {} shape.", "a picture of a {} shape.", "an image with a {} shape.", "a {} object."],
    "tiny-count": ["{}.", "a picture of {}.", "there are {}.", "an image with {}."],
}
PER_CLASS = {"train": 60, "test": 40}
# Held-out zero-shot classification: a test split only, so no tiny model trains on its labels
# (the robust fine-tunes train on CLASSIFICATION's train splits); the papers' claim that
# supervised adversarial fine-tuning (TeCoA) loses more clean accuracy on datasets it never
# saw than FARE / Sim-CLIP is checked on it. Backgrounds are named in the clean CLIP's captions.
HELD_OUT: dict[str, dict[str, str]] = {"tiny-background": {"clutter": "cluttered", "gradient": "smooth",
                                                          "noise": "noisy"}}
HELD_OUT_TEMPLATES = {"tiny-background": ["a shape on a {} background.", "a picture of a {} background.",
                                          "an image with a {} background.", "shapes on a {} background."]}
CAPTION_SPLITS = {"train": 8000, "val": 200, "test": 200}
VQA_SPLITS = {"train": 2000, "val": 200}
TEXTVQA_SPLITS = {"train": 500, "val": 100}
JPEG_QUALITY = 95


def _rng(seed: int, *key: object) -> np.random.Generator:
    """An independent stream per (part, split, index): parts can change without moving others."""
    digest = hashlib.sha256(repr((seed, *key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _save(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jpg":
        img.save(path, quality=JPEG_QUALITY, optimize=False)
    else:
        img.save(path, optimize=False)


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")


@dataclass(frozen=True)
class Part:
    """A dataset of the world written by another module: write(out, seed) yields once per image.

    Each part draws from its own streams (_rng with its own key), so adding one leaves every
    other file byte-identical."""

    name: str
    write: Callable[[Path, int], Iterator[None]]
    n_images: int


def _extra_parts() -> list[Part]:
    """The parts beyond classification, captions, VQA and reading (imported here: they use this module)."""
    from bench.tiny import knowledge, nltk_data, pope_scienceqa, unanswerable

    return [
        Part("held-out classification", _held_out, sum(len(c) for c in HELD_OUT.values()) * PER_CLASS["test"]),
        Part("pope", pope_scienceqa.write_pope, sum(pope_scienceqa.POPE_IMAGES.values())),
        Part("scienceqa", pope_scienceqa.write_scienceqa, sum(pope_scienceqa.SCIENCEQA_IMAGES.values())),
        Part("vizwiz", unanswerable.write, sum(unanswerable.SPLITS.values())),
        Part("okvqa", knowledge.write, sum(knowledge.SPLITS.values())),
        Part("okvqa stemming data", nltk_data.write, 0),
    ]


def _classification(out: Path, seed: int) -> Iterator[None]:
    for name, classes in CLASSIFICATION.items():
        for split, per_class in PER_CLASS.items():
            root = out / "classification" / name / split
            for c, folder in enumerate(classes):
                for i in range(per_class):
                    rng = _rng(seed, name, split, c, i)
                    if name == "tiny-shape":
                        scene = sample_scene(rng, n_objects=1, shape=folder, with_word=False)
                    elif name == "tiny-colour":
                        scene = sample_scene(rng, n_objects=1, colour=folder, with_word=False)
                    else:
                        scene = sample_scene(rng, n_objects=COUNT_WORDS.index(folder) + 1, with_word=False)
                    _save(render(scene, rng), root / folder / f"{i:04d}.png")
                    yield
            # classnames.txt follows the sorted order of the class folders (the reader's label order)
            (root / "classnames.txt").write_text("\n".join(classes[f] for f in sorted(classes)) + "\n")
            (root / "templates.txt").write_text("\n".join(TEMPLATES[name]) + "\n")


def _held_out(out: Path, seed: int) -> Iterator[None]:
    for name, classes in HELD_OUT.items():
        root = out / "classification" / name / "test"
        for c, folder in enumerate(classes):
            for i in range(PER_CLASS["test"]):
                rng = _rng(seed, "held-out", name, c, i)
                scene = replace(sample_scene(rng, with_word=False), background=folder)
                _save(render(scene, rng), root / folder / f"{i:04d}.png")
                yield
        (root / "classnames.txt").write_text("\n".join(classes[f] for f in sorted(classes)) + "\n")
        (root / "templates.txt").write_text("\n".join(HELD_OUT_TEMPLATES[name]) + "\n")


def _captions(out: Path, seed: int) -> Iterator[None]:
    images, sent_id, img_id = [], 0, 0
    for split, n in CAPTION_SPLITS.items():
        for i in range(n):
            rng = _rng(seed, "captions", split, i)
            scene = sample_scene(rng)
            filename = f"{img_id:06d}.jpg"
            _save(render(scene, rng), out / "captions" / "images" / filename)
            refs = language.captions(scene, rng)
            sentences = [{"raw": r, "tokens": r.rstrip(".").replace(",", "").replace(":", "").split(),
                          "imgid": img_id, "sentid": sent_id + k} for k, r in enumerate(refs)]
            images.append({"filepath": "images", "filename": filename, "imgid": img_id, "cocoid": img_id,
                           "split": split, "sentids": [s["sentid"] for s in sentences], "sentences": sentences})
            sent_id += len(refs)
            img_id += 1
            yield
    _write_json(out / "captions" / "dataset_tiny.json", {"dataset": "tiny", "images": images})


def _vqa_files(out: Path, split: str, questions: list[dict], annotations: list[dict], task: str) -> None:
    # "1": these files' own version (the world's is in manifest.json), so that adding a part to the
    # world leaves them byte-identical (manifest_as_of)
    info = {"description": f"tiny-world {task}", "version": "1"}
    _write_json(out / f"questions_{split}.json", {"info": info, "task_type": "Open-Ended", "data_type": task,
                                                 "data_subtype": split, "questions": questions})
    _write_json(out / f"annotations_{split}.json", {"info": info, "data_type": task, "data_subtype": split,
                                                   "annotations": annotations})


def _vqa(out: Path, seed: int, reading: bool) -> Iterator[None]:
    task = "textvqa" if reading else "vqa"
    splits = TEXTVQA_SPLITS if reading else VQA_SPLITS
    image_id, question_id = 1, 1
    for split, n in splits.items():
        questions, annotations = [], []
        for i in range(n):
            rng = _rng(seed, task, split, i)
            scene = sample_scene(rng, with_word=True if reading else None)
            img = render(scene, rng)
            if reading:
                path = out / task / "train_images" / f"{image_id:08x}.jpg"
                image_ref: int | str = f"{image_id:08x}"
            else:
                path = out / task / "images" / f"COCO_val2014_{image_id:012d}.jpg"
                image_ref = image_id
            _save(img, path)
            asked = [language.reading_question(scene)] if reading else language.questions(scene, rng)
            for q in asked:
                answers = language.ten_answers(q.answer, q.answer_type, rng)
                questions.append({"image_id": image_ref, "question": q.question, "question_id": question_id})
                annotations.append({
                    "image_id": image_ref, "question_id": question_id, "question_type": q.question_type,
                    "answer_type": q.answer_type, "multiple_choice_answer": q.answer,
                    "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1}
                                for k, a in enumerate(answers)],
                })
                question_id += 1
            image_id += 1
            yield
        _vqa_files(out / task, split, questions, annotations, task)


def n_items() -> int:
    per = sum(PER_CLASS.values())
    return (sum(len(c) for c in CLASSIFICATION.values()) * per + sum(CAPTION_SPLITS.values())
            + sum(VQA_SPLITS.values()) + sum(TEXTVQA_SPLITS.values()) + sum(p.n_images for p in _extra_parts()))


def file_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "manifest.json"}


def _generate(out: Path, seed: int, progress: bool) -> dict[str, Any]:
    parts: list[Callable[[Path, int], Iterator[None]]] = [
        _classification, _captions, lambda o, s: _vqa(o, s, reading=False), lambda o, s: _vqa(o, s, reading=True),
        *(p.write for p in _extra_parts())]
    with tqdm(total=n_items(), desc="tiny world", unit="img", disable=not progress) as bar:
        for part in parts:
            for _ in part(out, seed):
                bar.update()
    manifest = {"version": VERSION, "seed": seed, "files": file_hashes(out)}
    _write_json(out / "manifest.json", manifest)
    return manifest


def is_replaceable(root: Path) -> bool:
    """True when root is absent, empty, or a tiny world holding nothing but its manifest's files.

    Only such a folder may be replaced: anything else holds files this project did not
    write (`--out .` must never wipe a working folder).
    """
    if not root.exists():
        return True
    if not root.is_dir():
        return False
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}
    if not present:
        return True
    try:
        listed = set(json.loads((root / "manifest.json").read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return present <= listed | {"manifest.json"}


_TEMP_PREFIX = ".tiny-world-"  # + the writing process's id


def _remove_abandoned(folder: Path) -> None:
    """Delete the temporary folders of generations whose process is gone (killed): ours only,
    recognised by name, and never one a living process is still writing."""
    for tmp in folder.glob(f"{_TEMP_PREFIX}*-*"):
        try:
            pid = int(tmp.name[len(_TEMP_PREFIX):].split("-", 1)[0])
            os.kill(pid, 0)  # raises when no such process exists
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, PermissionError):
            continue  # not named by us, or another user's living process


def write_world(out: Path, seed: int = 0, progress: bool = True, hint: str = OUT_HINT) -> dict[str, Any]:
    """Generate everything into out; returns the manifest.

    The world is written next to out and renamed into place, so a killed generation (or a
    full disk: one line naming out, with `hint` saying how to make room) never looks complete.
    An existing out is replaced only when `is_replaceable` says so.
    """
    if not is_replaceable(out):
        raise BenchError(f"{out} exists and is not a tiny world (it holds files this project did not write); "
                         "refusing to replace it: give an empty or new folder")
    out = out.resolve()  # `--out .`: the temporary folder must be a sibling, not a child
    with disk_errors(out, hint):
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(out.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-", dir=out.parent))
        try:
            manifest = _generate(tmp / "world", seed, progress)
            if out.exists():
                out.rename(tmp / "old")
            (tmp / "world").rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def manifest_digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


# What each earlier version wrote (folders under the world root). A later version only adds parts,
# each drawing its own streams, so these files stay byte-identical and an earlier version's
# manifest is today's restricted to them: a model card's data_manifest_sha256 (the world it
# trained on) still checks against a newer world.
VERSION_FOLDERS = {1: ("classification/tiny-shape/", "classification/tiny-colour/", "classification/tiny-count/",
                       "captions/", "vqa/", "textvqa/")}


def manifest_as_of(manifest: dict[str, Any], version: int) -> dict[str, Any]:
    """The manifest the world of `version` had, from a newer world's manifest."""
    if version == manifest["version"]:
        return manifest
    folders = VERSION_FOLDERS[version]
    return {"version": version, "seed": manifest["seed"],
            "files": {path: digest for path, digest in manifest["files"].items() if path.startswith(folders)}}


def verify(root: Path) -> bool:
    """True when root holds a complete world whose files match its manifest (a manifest that
    is not a JSON object of this version, e.g. truncated or edited, is no world)."""
    path = root / "manifest.json"
    if not path.is_file():
        return False
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return (isinstance(manifest, dict) and manifest.get("version") == VERSION
            and manifest.get("files") == file_hashes(root))

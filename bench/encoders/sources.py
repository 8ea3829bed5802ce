"""What an encoder source string names, checked by its shape before anything is fetched or read.

The forms are listed in bench/encoders/load.py's docstring; this module only parses them (the hub
ids, shipped names and open_clip tags they carry) and tells a source from a zoo name.
"""
from __future__ import annotations

import re
from pathlib import Path

from bench.encoders.download import URL_PREFIX, url_of
from bench.encoders.hf_clip import HF_CLIP_PREFIX, is_hf_clip_folder
from bench.encoders.weights import split_key
from benchutil.errors import BenchError

# A Hugging Face repository id's parts (huggingface_hub's validate_repo_id): letters, digits
# and '-_.', not starting or ending with '-' or '.', at most 96 characters, no '--' or '..'.
_HUB_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?")


def _hub_part(part: str) -> bool:
    return bool(_HUB_PART.fullmatch(part)) and "--" not in part and ".." not in part


def _malformed(source: str, form: str, example: str) -> BenchError:
    return BenchError(f"malformed encoder {source!r}: write {form}, e.g. {example}")


def _repo(source: str, prefix: str, example: str) -> str:
    """'PREFIX:ORG/NAME' -> 'ORG/NAME', checked before any hub call (a bad id is a traceback there)."""
    parts = source.removeprefix(prefix).split("/")
    if len(parts) != 2 or not all(_hub_part(p) for p in parts):
        raise _malformed(source, f"{prefix}ORG/NAME", example)
    return "/".join(parts)


def hf_hub_repo(source: str) -> str:
    """'hf-hub:ORG/NAME' (an open_clip model on the hub) -> 'ORG/NAME'."""
    return _repo(source, "hf-hub:", "hf-hub:chs20/fare4-clip")


def hf_file_parts(source: str) -> tuple[str, str]:
    """'hf-file:ORG/NAME/FILE' (FILE may be in sub-folders) -> ('ORG/NAME', 'FILE')."""
    parts = source.removeprefix("hf-file:").split("/")
    inside = parts[2:]
    if len(parts) < 3 or not all(_hub_part(p) for p in parts[:2]) or not all(
            p and p not in (".", "..") and "\\" not in p for p in inside):
        raise _malformed(source, "hf-file:ORG/NAME/FILE", "hf-file:hossainzarif19/SimCLIP/simclip4.pt")
    return "/".join(parts[:2]), "/".join(inside)


def tiny_name(source: str) -> str:
    """'tiny:NAME' -> NAME: a file name in bench/tiny/weights, never a path out of it."""
    name = source.removeprefix("tiny:")
    if not _hub_part(name):
        raise _malformed(source, "tiny:NAME", "tiny:clip (bench list encoders)")
    return name


def hf_clip_repo(source: str) -> str:
    """'hf-clip:ORG/NAME' (a transformers CLIPModel on the hub) -> 'ORG/NAME'."""
    return _repo(source, HF_CLIP_PREFIX, "hf-clip:LEAF-CLIP/CLIP-ViT-L-FARE2")


def check_source_form(source: str) -> None:
    """Refuse a prefixed source whose shape is wrong, before anything is fetched or read."""
    if source.startswith((HF_CLIP_PREFIX, "hf-hub:", "open_clip:")) and "#" in source:
        raise BenchError(f"{source!r}: #KEY names an entry of one weight file (hf-file:, url:, a path); "
                         "a whole model has none")
    source = split_key(source)[0]
    checks = {"hf-hub:": hf_hub_repo, "hf-file:": hf_file_parts, "tiny:": tiny_name, "open_clip:": open_clip_parts,
              HF_CLIP_PREFIX: hf_clip_repo, URL_PREFIX: url_of}
    for prefix, check in checks.items():
        if source.startswith(prefix):
            check(source)


def open_clip_parts(source: str) -> tuple[str, str]:
    """'open_clip:ARCH/TAG' -> (ARCH, TAG), the shape only (load.py checks open_clip knows them)."""
    arch, _, tag = source.removeprefix("open_clip:").partition("/")
    if not arch or not tag or "/" in tag:
        raise _malformed(source, "open_clip:ARCH/TAG", "open_clip:ViT-B-32/laion2b_s34b_b79k")
    return arch, tag


SOURCE_PREFIXES = ("open_clip:", "hf-hub:", "hf-file:", "tiny:", HF_CLIP_PREFIX, URL_PREFIX)
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def is_source(name: str) -> bool:
    """A name that denotes weights directly (not a zoo entry): a prefixed source or a path."""
    return name.startswith(SOURCE_PREFIXES) or any(sep in name for sep in ("/", "\\")) or name.endswith(
        CHECKPOINT_SUFFIXES) or split_key(name)[0].endswith(CHECKPOINT_SUFFIXES) or is_hf_clip_folder(Path(name))

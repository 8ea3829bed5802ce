"""Fetching and reading weight files: hub downloads that fail fast, hashes, safe unpickling."""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import Tensor

from benchutil.errors import BenchError

OFFLINE_HINT = "run offline with --suite tiny, or put the file in the Hugging Face cache"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# torch dtype -> safetensors' name, so one state dict hashes the same in either file format
_DTYPE_NAMES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
                torch.bool: "BOOL"}


def weights_sha256(path: Path) -> str:
    """The identity of a checkpoint's weights: sha256 over its sorted metadata and, per tensor in
    name order, its name, dtype, shape and bytes. Unlike the file's sha256 it does not depend
    on how the writer ordered the header (safetensors writes metadata in a random order), so
    bit-identical weights always get one identity (runs, head cache, cards)."""
    digest = hashlib.sha256()
    if path.suffix == ".safetensors":
        with open(path, "rb") as f:  # streamed tensor by tensor: a 7B shard is never held in memory
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
            digest.update(json.dumps(sorted(header.pop("__metadata__", {}).items())).encode())
            for name in sorted(header):
                entry = header[name]
                begin, end = entry["data_offsets"]
                digest.update(json.dumps([name, entry["dtype"], entry["shape"]]).encode())
                f.seek(8 + size + begin)
                for offset in range(begin, end, 1 << 24):
                    digest.update(f.read(min(1 << 24, end - offset)))
        return digest.hexdigest()
    return state_sha256(read_state_dict(path))


def state_sha256(state: Mapping[str, Tensor]) -> str:
    """weights_sha256 of a state dict in memory (a pickle carries no metadata): a module's weights
    get the identity they would have saved to a file."""
    digest = hashlib.sha256()
    digest.update(json.dumps([]).encode())
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(json.dumps([name, _DTYPE_NAMES.get(tensor.dtype, str(tensor.dtype)),
                                  list(tensor.shape)]).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save_safetensors(tensors: dict[str, Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """safetensors' save_file, then its JSON header rewritten with sorted keys (same length, same
    format): the same weights give the same file, byte for byte."""
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=metadata)
    with open(path, "r+b") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
        ordered = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        if len(ordered) <= size:  # the same keys and values: never longer; pad as safetensors does
            f.seek(8)
            f.write(ordered + b" " * (size - len(ordered)))


def hub_file(repo: str, filename: str) -> Path:
    """A file from the Hugging Face hub (cache first); one clear line instead of retries."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo, filename)
    if isinstance(cached, str):
        return Path(cached)
    # No cache hit: one short attempt. HF_HUB_OFFLINE=1 makes this fail immediately.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    try:
        return Path(hf_hub_download(repo, filename))
    except Exception as err:  # network, offline mode, missing repo: all mean "not available here"
        reason = type(err).__name__
        raise BenchError(
            f"weights {repo}/{filename} are not available ({reason}); they come from "
            f"https://huggingface.co/{repo}; {OFFLINE_HINT}"
        ) from None


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """A state dict from .safetensors or a pickle (.pt/.pth/.bin), never running code; its keys
    are strings and its floating tensors finite (checked once per file and process)."""
    if not path.is_file():
        raise BenchError(f"checkpoint {path} does not exist; check the path")
    state = _unwrap(_load(path, mmap=False), path)
    _check_contents(path, state.items())
    return state


def check_readable(path: Path) -> None:
    """Read every tensor of a checkpoint, one at a time (safetensors) or memory-mapped (pickle),
    and check it as loading will: a broken file, or broken weights (NaN), are named before any
    run starts. The pages read stay in the OS cache, so the later load costs little more."""
    if not path.is_file():
        raise BenchError(f"checkpoint {path} does not exist; check the path")
    if _fingerprint(path) in _CHECKED:
        return
    if path.suffix == ".safetensors":
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                _check_contents(path, ((k, f.get_tensor(k)) for k in f.keys()))
        except BenchError:
            raise
        except Exception as err:
            raise _unreadable(path, err) from None
    else:  # torch.load maps only zip-format pickles (torch >= 1.6); older ones are read whole
        _check_contents(path, _unwrap(_load(path, mmap=zipfile.is_zipfile(path)), path).items())


def _load(path: Path, mmap: bool) -> object:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:
        raise _unreadable(path, err) from None


def _unreadable(path: Path, err: Exception) -> BenchError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if "weights_only" in str(err) or "Unsupported global" in str(err):
        first = "it contains pickled code or objects that are not plain tensors (refused for safety)"
    return BenchError(f"cannot read checkpoint {path}: {first[:200]}; re-save it as .safetensors")


def _unwrap(state: object, path: Path) -> dict[str, Tensor]:
    """The tensors of a training checkpoint ({"state_dict": ...}) or of a bare state dict."""
    for key in ("state_dict", "model", "vision_encoder"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise BenchError(f"checkpoint {path} is not a state dict of tensors; save model.state_dict()")
    return state


# (path, size, mtime) of the files whose contents passed _check_contents in this process
_CHECKED: set[tuple[str, int, int]] = set()


def _fingerprint(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def _check_contents(path: Path, items: Iterable[tuple[object, Tensor]]) -> None:
    """String keys and finite floating tensors, or one line naming the first bad entry.

    A NaN weight makes every embedding NaN: every prediction is then the same class and an
    attack 'succeeds' or 'fails' for no reason, so such numbers must never be recorded. One
    isfinite pass per tensor, once per file (a file already checked is skipped)."""
    fingerprint = _fingerprint(path)
    if fingerprint in _CHECKED:
        return
    count = 0
    for key, tensor in items:
        count += 1
        if not isinstance(key, str):
            raise BenchError(f"checkpoint {path} has a key that is not a string ({key!r}); a state dict maps "
                             "parameter names to tensors: save model.state_dict()")
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(torch.isfinite(tensor).all()):
            raise BenchError(f"checkpoint {path} holds NaN or infinite values (first in tensor {key!r}); the "
                             "weights are broken: re-export them, or use an earlier checkpoint")
    if count == 0:
        raise BenchError(f"checkpoint {path} holds no tensors; save model.state_dict()")
    _CHECKED.add(fingerprint)


def safetensors_metadata(path: Path) -> dict[str, str]:
    if path.suffix != ".safetensors" or not path.is_file():
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:
        return {}

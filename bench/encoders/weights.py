"""Fetching and reading weight files: hub downloads that fail fast, hashes, safe unpickling.

A weight file may be a training dict whose state dict sits under one key (QT-AFT / TeCoA save
{'vision_encoder_state_dict': ..., 'optimizer': ...}): callers name it FILE#KEY (split_key)."""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Iterable, Mapping
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


def split_key(source: str) -> tuple[str, str | None]:
    """'FILE#KEY' -> ('FILE', 'KEY'); anything else -> (source, None). A local file whose own
    name holds a '#' stays that file; KEY is one entry name (no '/')."""
    head, sep, key = source.rpartition("#")
    if not sep or not head or "/" in key or "\\" in key or _is_existing_file(source):
        return source, None
    if not key:
        raise BenchError(f"nothing after '#' in {source!r}: write SOURCE#KEY, e.g. x.pt#vision_encoder_state_dict")
    return head, key


def _is_existing_file(text: str) -> bool:
    try:
        return Path(text).expanduser().is_file()
    except (RuntimeError, OSError):  # '~nosuchuser', a name too long: not a local file
        return False


def weights_sha256(path: Path, key: str | None = None) -> str:
    """The identity of a checkpoint's weights: sha256 over its sorted metadata and, per tensor in
    name order, its name, dtype, shape and bytes. Unlike the file's sha256 it does not depend
    on how the writer ordered the header (safetensors writes metadata in a random order), so
    bit-identical weights always get one identity (runs, head cache, cards). With `key`, the
    identity of the state dict under that key of a training dict."""
    if key is not None:
        return state_sha256(read_state_dict(path, key))
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


def hub_folder(repo: str, patterns: list[str], complete: Callable[[Path], bool]) -> Path:
    """The files of a hub repository that match `patterns`, as one local snapshot folder: the
    cached snapshot when `complete` accepts it, else one short download (one clear line on failure)."""
    from huggingface_hub import snapshot_download

    try:
        cached = Path(snapshot_download(repo, allow_patterns=patterns, local_files_only=True))
        if complete(cached):
            return cached
    except Exception:  # not cached (or partly): download below
        pass
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    try:
        folder = Path(snapshot_download(repo, allow_patterns=patterns))
    except Exception as err:  # network, offline mode, missing repo: all mean "not available here"
        raise BenchError(f"model {repo} is not available ({type(err).__name__}); it comes from "
                         f"https://huggingface.co/{repo}; {OFFLINE_HINT}") from None
    if not complete(folder):
        raise BenchError(f"model {repo} on the hub lacks the files expected ({', '.join(patterns)}); check the name "
                         f"at https://huggingface.co/{repo}")
    return folder


def read_state_dict(path: Path, key: str | None = None) -> dict[str, Tensor]:
    """A state dict from .safetensors or a pickle (.pt/.pth/.bin), never running code; its keys
    are strings and its floating tensors finite (checked once per file, key and process).
    key: the entry of a training dict that holds the state dict (FILE#KEY)."""
    if not path.is_file():
        raise BenchError(f"checkpoint {path} does not exist; check the path")
    loaded = _load(path, mmap=False)
    state = _unwrap(loaded if key is None else _entry(loaded, key, path), path)
    _check_contents(path, state.items(), key)
    return state


def _entry(loaded: object, key: str, path: Path) -> object:
    """loaded[key] of a training dict, or one line naming the keys it has."""
    if not isinstance(loaded, dict):
        raise BenchError(f"checkpoint {path} is not a dict of entries, so it has no {key!r}; drop '#{key}'")
    if key not in loaded:
        present = ", ".join(sorted(map(str, loaded))[:20]) or "none"
        raise BenchError(f"checkpoint {path} has no entry {key!r}; its entries: {present}; write {path}#ONE_OF_THEM")
    return loaded[key]


# Transformers model folders (save_pretrained): one file, or shards listed by an index.json.
TRANSFORMERS_WEIGHTS = ("model.safetensors", "model-*-of-*.safetensors", "pytorch_model.bin",
                        "pytorch_model-*-of-*.bin")


def transformers_weight_files(folder: Path) -> list[Path]:
    """The weight files of a save_pretrained folder, safetensors preferred (as transformers loads)."""
    for patterns in (TRANSFORMERS_WEIGHTS[:2], TRANSFORMERS_WEIGHTS[2:]):
        files = sorted({f for pattern in patterns for f in folder.glob(pattern) if f.is_file()})
        if files:
            return files
    return []


def check_readable(path: Path) -> None:
    """Read every tensor of a checkpoint, one at a time (safetensors) or memory-mapped (pickle),
    and check it as loading will: a broken file, or broken weights (NaN), are named before any
    run starts. The pages read stay in the OS cache, so the later load costs little more.
    path may be FILE#KEY (a training dict's entry) or a transformers model folder."""
    if path.is_dir():
        files = transformers_weight_files(path)
        if not files:
            raise BenchError(f"folder {path} holds no model weights (model.safetensors or pytorch_model.bin); "
                             "give a save_pretrained folder or a weight file")
        for file in files:
            check_readable(file)
        return
    name, key = split_key(str(path))
    path = Path(name)
    if not path.is_file():
        raise BenchError(f"checkpoint {path} does not exist; check the path")
    if key is not None:
        read_state_dict(path, key)  # a training dict is read whole: its entries are not mapped one by one
        return
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


# (path, size, mtime, key) of the files (or a training dict's entries) whose contents passed
# _check_contents in this process
_CHECKED: set[tuple[str, int, int, str | None]] = set()


def _fingerprint(path: Path, key: str | None = None) -> tuple[str, int, int, str | None]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns, key


def _check_contents(path: Path, items: Iterable[tuple[object, Tensor]], entry: str | None = None) -> None:
    """String keys and finite floating tensors, or one line naming the first bad entry.

    A NaN weight makes every embedding NaN: every prediction is then the same class and an
    attack 'succeeds' or 'fails' for no reason, so such numbers must never be recorded. One
    isfinite pass per tensor, once per file (a file already checked is skipped)."""
    fingerprint = _fingerprint(path, entry)
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

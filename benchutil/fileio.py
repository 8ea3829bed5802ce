"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never half.

Every write of the project goes through here, so a full disk is one line naming the folder
(`disk_errors`), not an OSError traceback, and never leaves a truncated or empty file behind.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchutil.errors import BenchError

OUT_HINT = "free space or choose another --out"
# The write errors a user fixes by making room, not by fixing a path (those carry a filename
# and the CLI names them already).
_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


def is_disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in _FULL


@contextmanager
def disk_errors(folder: Path, hint: str = OUT_HINT) -> Iterator[None]:
    """A full disk or quota while writing under `folder` becomes one line naming it.

    The OSError of a failed write() has no filename, so without this the user would see
    neither what was being written nor where.
    """
    try:
        yield
    except OSError as err:
        if err.errno not in _FULL:
            raise
        raise BenchError(f"{_FULL[err.errno]} writing {folder}; {hint}") from None


def atomic_write(path: Path, write: Callable[[Path], None], hint: str = OUT_HINT) -> None:
    """write(tmp) then fsync and rename over path; files are world-readable (0644).

    The temporary file's name is unique, so processes writing one path at once (shards
    filling a cache) never write into each other's file; the last rename wins. On any
    failure the temporary file is removed and path keeps its old content (or stays absent).
    """
    with disk_errors(path.parent, hint):
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        try:
            write(tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp and safetensors create files private to the user
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def atomic_write_text(path: Path, text: str, hint: str = OUT_HINT) -> None:
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"), hint)


def atomic_write_bytes(path: Path, data: bytes, hint: str = OUT_HINT) -> None:
    atomic_write(path, lambda p: p.write_bytes(data), hint)


def write_json_atomic(path: Path, payload: Any, hint: str = OUT_HINT) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n", hint)


def append_synced(path: Path, text: str, hint: str = OUT_HINT) -> None:
    """Append text and fsync it; when the write fails (a full disk) the file is cut back to
    where it was, so no partial line is left for the next reader to trip over.

    Unbuffered (os.write): a buffered file would try to flush the failed bytes again on
    truncate and on close."""
    with disk_errors(path.parent, hint):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                rest = memoryview(text.encode("utf-8"))
                while rest:
                    rest = rest[os.write(fd, rest):]
                os.fsync(fd)
            except BaseException:
                os.ftruncate(fd, start)  # shrinking needs no space
                raise
        finally:
            os.close(fd)

"""A run directory: config.json + records.jsonl, append-only, resumable, single-writer.

Records are appended with flush + fsync after each batch, so a killed run loses at most
the batch in flight; a torn last line (killed mid-write) is cut off on the next open.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from benchutil.errors import BenchError
from benchutil.fileio import write_json_atomic

CONFIG, RECORDS, LOCK = "config.json", "records.jsonl", ".lock"


def read_records(path: Path) -> list[dict[str, Any]]:
    """Complete records of a records.jsonl (a torn last line is ignored)."""
    if not path.is_file():
        return []
    out = []
    with open(path) as f:
        for line in f:
            if not line.endswith("\n"):
                break
            out.append(json.loads(line))
    return out


class RunDir:
    """Open with the run's identity; holds an exclusive lock until closed."""

    def __init__(self, path: Path, config: dict[str, Any], identity_keys: tuple[str, ...]) -> None:
        self.path = path
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._lock = open(path / LOCK, "w")
        except OSError as err:
            raise BenchError(f"cannot write to {path}: {err.strerror}; choose a writable --out") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BenchError(f"run {path} is being written by another bench process; wait for it or use "
                             "another --out") from None
        existing = path / CONFIG
        if existing.is_file():
            old = json.loads(existing.read_text())
            changed = [k for k in identity_keys if old.get(k) != config.get(k)]
            if changed:
                raise BenchError(f"{path} holds a run with different {changed[0]}; use another --out")
        else:
            write_json_atomic(existing, config)
        self._repair()

    def _repair(self) -> None:
        """Cut a torn last line left by a kill during a write."""
        records = self.path / RECORDS
        if not records.is_file():
            return
        data = records.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with open(records, "r+b") as f:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())

    def finished(self) -> set[str]:
        return {r["id"] for r in read_records(self.path / RECORDS)}

    def append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        with open(self.path / RECORDS, "a") as f:
            f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()

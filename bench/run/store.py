"""A run directory: config.json + records files, append-only, resumable, one writer per shard.

Records are appended with flush + fsync after each batch, so a killed run loses at most
the batch in flight; a torn last line (killed mid-write) is cut off on the next open. A run
evaluated in shards (bench.run.sharding) has one records file per shard,
records.shard-I-of-N.jsonl; readers take the union of every records file of the folder.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from bench.run.sharding import Shard
from benchutil.errors import BenchError
from benchutil.fileio import append_synced, write_json_atomic
from benchutil.schema import Number, Schema, parse_json, read_json
from tasks.record_checks import check_records, violations

CONFIG, RECORDS, LOCK = "config.json", "records.jsonl", ".lock"
RECORD_FILES = "records*.jsonl"


def records_file(shard: Shard) -> str:
    return RECORDS if shard.alone else f"records.shard-{shard.index}-of-{shard.count}.jsonl"


# What every reader of a run relies on; the run's writer always writes these.
RUN_CONFIG = Schema(
    "run config", "delete its run folder to re-run it",
    required={"encoder": str, "task": str, "attack": str, "eps": Number, "eps_label": str, "metric": str,
              "norm": str},
    optional={"vlm": str, "target": str, "protocol": str, "precision": str, "task_settings": dict,
              "sample_ids": list, "steps": int, "seed": int, "attack_args": dict, "sha256": str,
              "provenance": dict, "task_kind": str, "attack_members": list, "git_commit": str, "early_stop": Number})
RECORD = Schema(
    "records line", "delete that line (its sample is then re-run on the next bench run)",
    required={"id": str, "clean_score": Number, "adv_score": Number},
    optional={"winner": str, "linf": Number, "l2": Number, "clean_output": str, "adv_output": str,
              "target_hit": bool, "label": int, "clean_pred": int, "adv_pred": int, "clean_correct": bool,
              "robust": bool,
              # text tasks (tasks/text_records.py): the sentence attacked and its Levenshtein distance;
              # text-to-image retrieval adds the query's image and its rank among the gallery's
              "clean_text": str, "adv_text": str, "distance": int, "image": str, "clean_rank": int,
              "adv_rank": int})


def read_records(path: Path) -> list[dict[str, Any]]:
    """Complete records of one records file (a torn last line is ignored); any other line that is
    not a record is one line naming the file and the line."""
    if not path.is_file():
        return []
    out = []
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                break
            out.append(parse_json(line, f"{path} line {number}", RECORD))
    return out


def read_config(path: Path) -> dict[str, Any]:
    return read_json(path, RUN_CONFIG)


def read_run_records(run: Path) -> list[dict[str, Any]]:
    """Every sample's record in a run folder, over all its shards' files (first one wins)."""
    seen: dict[str, dict[str, Any]] = {}
    for path in sorted(run.glob(RECORD_FILES)):
        for record in read_records(path):
            seen.setdefault(record["id"], record)
    return list(seen.values())


def finished_runs(folders: list[Path]) -> list[tuple[Path, dict[str, Any], list[dict[str, Any]]]]:
    """(run folder, config, records) of every run with records under the results folders, in path order.

    A record that contradicts itself (tasks.record_checks: written by a version of the project
    before the check, or edited by hand) is refused, so no report is built on it."""
    runs = []
    for folder in folders:
        if not folder.is_dir():
            raise BenchError(f"results directory {folder} does not exist; run bench run --out {folder} first")
        for config_path in sorted(folder.rglob(CONFIG)):
            config = read_config(config_path)
            records = read_run_records(config_path.parent)
            for record in records:
                broken = violations(record, float(config["eps"]), config["norm"], config.get("protocol"))
                if broken:
                    raise BenchError(f"{config_path.parent}: record {record['id']!r} contradicts itself "
                                     f"({broken[0]}); delete its run folder and re-run it")
            if records:
                runs.append((config_path.parent, config, records))
    return runs


def no_finished_runs(folders: list[Path]) -> BenchError:
    return BenchError(f"no finished runs under {' '.join(map(str, folders))}; run bench run --out {folders[0]} first")


class RunDir:
    """Open with the run's identity; holds this shard's exclusive lock until closed."""

    def __init__(self, path: Path, config: dict[str, Any], identity_keys: tuple[str, ...],
                 shard: Shard = Shard(0, 1)) -> None:
        self.path, self.records = path, path / records_file(shard)
        self.eps, self.norm, self.protocol = float(config["eps"]), str(config["norm"]), config.get("protocol")
        lock = LOCK if shard.alone else f"{LOCK}.shard-{shard.index}-of-{shard.count}"
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._lock = open(path / lock, "w")
        except OSError as err:
            raise BenchError(f"cannot write to {path}: {err.strerror}; choose a writable --out") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BenchError(f"run {path} (shard {shard}) is being written by another bench process; wait for it "
                             "or use another --out") from None
        existing = path / CONFIG
        if existing.is_file():
            old = read_config(existing)
            changed = [k for k in identity_keys if old.get(k) != config.get(k)]
            if changed:
                raise BenchError(f"{path} holds a run with different {changed[0]}; use another --out")
        else:  # shards may race here: each writes the same identity, atomically
            write_json_atomic(existing, config)
        self._repair()

    def _repair(self) -> None:
        """Cut a torn last line left by a kill during a write."""
        if not self.records.is_file():
            return
        data = self.records.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with open(self.records, "r+b") as f:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())

    def finished(self) -> set[str]:
        """Samples done by any shard (or by an unsharded run of the same identity)."""
        return {r["id"] for r in read_run_records(self.path)}

    def append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        check_records(records, self.eps, self.norm, self.protocol)  # a record that contradicts itself is never written
        # one write, fsynced; a full disk cuts the file back to whole lines and is one line
        append_synced(self.records, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))

    def close(self) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()

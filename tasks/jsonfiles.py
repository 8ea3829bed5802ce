"""Reading the JSON files of the captioning and VQA formats with errors that name file and record."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchutil import schema
from benchutil.errors import BenchError


def read_json(path: Path, what: str) -> Any:
    """A data file of the captioning / VQA formats: missing, not UTF-8 or not JSON is one line
    (benchutil.schema's reader, with the data root named)."""
    if not path.is_file():
        raise BenchError(f"{what} file {path} does not exist; check --data-root")
    return schema.read_json(path, what=f"{what} file")


def field(record: dict, key: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    if not isinstance(record, dict) or key not in record:
        raise BenchError(f"{path}: {where} has no '{key}'")
    value = record[key]
    if not isinstance(value, kind):
        raise BenchError(f"{path}: {where} has '{key}' of type {type(value).__name__}")
    return value

"""Reading the JSON files of the captioning and VQA formats with errors that name file and record."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchutil.errors import BenchError


def read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise BenchError(f"{what} file {path} does not exist; check --data-root")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BenchError(f"{what} file {path} is not valid JSON ({err}); re-download or regenerate it") from None


def field(record: dict, key: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    if not isinstance(record, dict) or key not in record:
        raise BenchError(f"{path}: {where} has no '{key}'")
    value = record[key]
    if not isinstance(value, kind):
        raise BenchError(f"{path}: {where} has '{key}' of type {type(value).__name__}")
    return value

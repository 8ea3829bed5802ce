"""Writing suite files: the TOML subset they use (strings, integers, floats, lists of them, one
array of tables), read back by the standard library's tomllib."""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # a JSON string is a TOML basic string (the same escapes)
        return json.dumps(value)
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"a suite file holds strings, numbers and lists, not {value!r}")


def suite_toml(comment: str, top: Mapping[str, Any], runs: list[Mapping[str, Any]]) -> str:
    """`# comment` lines, the top-level keys, then one [[run]] table per run."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines += [f"{key} = {toml_value(value)}" for key, value in top.items()]
    for run in runs:
        lines += ["", "[[run]]", *(f"{key} = {toml_value(value)}" for key, value in run.items())]
    return "\n".join(lines)

"""Reading the project's JSON files with a schema: the wrong shape is one line, never a traceback.

Each file kind (a run's config, a records line, an aggregate, a card, a manifest) declares its
fields once as a `Schema`; `read_json` turns a missing file, bad or truncated UTF-8, invalid
JSON, a pathological nesting depth and a value of the wrong shape into a BenchError that
names the file (and line), the field, and what to do.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchutil.errors import BenchError


class Number:
    """A finite int or float (JSON has no NaN; Python's json reads one, and a bool is not a number)."""


@dataclass(frozen=True)
class Schema:
    what: str  # "run config", "records line": how the error names the file kind
    fix: str  # what the user can do about a malformed file of this kind
    required: Mapping[str, Any] = field(default_factory=dict)  # field -> type or tuple of types
    optional: Mapping[str, Any] = field(default_factory=dict)  # checked where present (None allowed)
    every: Any = None  # where set: the type(s) of every field's value (an object with any keys)

    def check(self, value: Any, where: str) -> dict[str, Any]:
        """`value` itself when it has this schema's shape; a BenchError naming `where` otherwise."""
        if not isinstance(value, dict):
            raise self.error(where, f"is {_kind(value)}, not a JSON object")
        for name, types in self.required.items():
            if name not in value:
                raise self.error(where, f"has no '{name}'")
            _check_field(self, value[name], name, types, where)
        for name, types in self.optional.items():
            if value.get(name) is not None:
                _check_field(self, value[name], name, types, where)
        if self.every is not None:
            for name, item in value.items():
                _check_field(self, item, name, self.every, where)
        return value

    def error(self, where: str, problem: str) -> BenchError:
        return BenchError(f"{where} {problem} (a malformed {self.what}); {self.fix}")


def _check_field(schema: Schema, value: Any, name: str, types: Any, where: str) -> None:
    allowed = types if isinstance(types, tuple) else (types,)
    if not any(_is(value, t) for t in allowed):
        wanted = " or ".join(_NAMES.get(t, t.__name__) for t in allowed)
        raise schema.error(where, f"has '{name}' = {_short(value)}, which is not {wanted}")


_NAMES = {Number: "a finite number", type(None): "null", dict: "a JSON object", list: "a list", str: "a string",
          int: "an integer", bool: "true or false"}


def _is(value: Any, kind: Any) -> bool:
    if kind is Number:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", type(None): "null", bool: "a boolean"}.get(type(value), "a number")


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_json(text: str | bytes, where: str, schema: Schema | None = None) -> Any:
    """JSON text -> value (checked against `schema`); `where` names the file (and line) in errors."""
    problem = None
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            problem = f"is not UTF-8 text (byte {err.start})"
    if problem is None:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            problem = f"is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
        except RecursionError:  # thousands of nested brackets: no file of ours looks like that
            problem = "nests too deep to be JSON"
    if problem is not None:
        if schema is not None:
            raise schema.error(where, problem)
        raise BenchError(f"{where} {problem}; re-create or restore the file")
    return value if schema is None else schema.check(value, where)


def read_json(path: Path, schema: Schema | None = None, what: str | None = None) -> Any:
    """A JSON file, checked against `schema`; a missing or unreadable file is one line too."""
    kind = what or (schema.what if schema is not None else "JSON file")
    if not path.is_file():
        raise BenchError(f"{kind} {path} does not exist" + (f"; {schema.fix}" if schema is not None else ""))
    try:
        data = path.read_bytes()
    except OSError as err:
        raise BenchError(f"cannot read {kind} {path}: {err.strerror}") from None
    return parse_json(data, str(path), schema)


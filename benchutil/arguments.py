"""Argument parsing shared by every subcommand: one-line usage errors, checked numbers, JSON args."""
from __future__ import annotations

import argparse
import json
import math
import os
from typing import NoReturn, TypeVar

from benchutil.errors import BenchError

Number = TypeVar("Number", int, float)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        self.exit(2, f"error: {message} ({self.prog} --help)\n")  # prog: "bench", or "bench run"


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def finite_float(text: str) -> float:
    """A number that is neither NaN nor infinite (NaN != NaN would defeat every later check)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _bounded(value: Number, text: str, ok: bool, rule: str) -> Number:
    if not ok:
        raise argparse.ArgumentTypeError(f"{text!r} must be {rule}")
    return value


def positive_int(text: str) -> int:
    value = _integer(text)
    return _bounded(value, text, value >= 1, "a positive integer")


def non_negative_int(text: str) -> int:
    value = _integer(text)
    return _bounded(value, text, value >= 0, ">= 0")


def worker_count(text: str) -> int:
    """Processes decoding ahead: >= 0 and at most 4 per CPU (more never help, and thousands of
    forked loaders would exhaust the machine before the first batch)."""
    value = _integer(text)
    most = 4 * (os.cpu_count() or 1)
    return _bounded(value, text, 0 <= value <= most, f"in 0..{most} (4 per CPU)")


def positive_float(text: str) -> float:
    value = finite_float(text)
    return _bounded(value, text, value > 0, "> 0")


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    return _bounded(value, text, value >= 0, ">= 0")


def float_pair(text: str) -> tuple[float, float]:
    """'0.9,0.999' -> (0.9, 0.999): two finite numbers."""
    try:
        first, second = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not two numbers like 0.9,0.999") from None
    if not all(math.isfinite(v) for v in (first, second)):
        raise argparse.ArgumentTypeError(f"{text!r} must be finite numbers")
    return first, second


MAX_JSON_DEPTH = 8  # attack arguments are flat numbers (a list at most); deeper is a mistake or an attack


def parse_attack_args(text: str) -> dict:
    """--attack-args: one JSON object, each key once, nested at most MAX_JSON_DEPTH levels."""
    example = "write e.g. '{\"restarts\": 5}'"
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as err:
        raise BenchError(f"--attack-args is not valid JSON ({err.msg}); {example}") from None
    except RecursionError:  # the json decoder recurses once per [ or {
        raise BenchError(f"--attack-args is nested too deeply (at most {MAX_JSON_DEPTH} levels); {example}") from None
    except ValueError as err:  # not a JSONDecodeError: an integer of over 4300 digits
        raise BenchError(f"--attack-args holds an unreadable value ({str(err)[:60]}); {example}") from None
    if not isinstance(value, dict):
        raise BenchError(f"--attack-args must be a JSON object; {example}")
    if _depth(value) > MAX_JSON_DEPTH:
        raise BenchError(f"--attack-args is nested too deeply (at most {MAX_JSON_DEPTH} levels); {example}")
    return value


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """JSON keeps the last of repeated keys silently: {"restarts": 1, "restarts": 5} is refused."""
    value: dict = {}
    for key, item in pairs:
        if key in value:
            raise BenchError(f"--attack-args gives {key!r} twice; give each argument once")
        value[key] = item
    return value


def _depth(value: object) -> int:
    """Nesting depth of a parsed JSON value, without recursion (a deep value must not crash here)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = list(item.values()) if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            stack += [(child, level + 1) for child in children]
    return deepest

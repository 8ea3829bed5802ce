"""Argument parsing shared by every subcommand: one-line usage errors, checked numbers, JSON args."""
from __future__ import annotations

import argparse
import json
import math
from typing import NoReturn, TypeVar

from benchutil.errors import BenchError

Number = TypeVar("Number", int, float)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        self.exit(2, f"error: {message} (bench {self.prog.split()[-1]} --help)\n")


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


def parse_attack_args(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise BenchError(f"--attack-args is not valid JSON ({err.msg}); write e.g. '{{\"restarts\": 5}}'") from None
    if not isinstance(value, dict):
        raise BenchError("--attack-args must be a JSON object, e.g. '{\"restarts\": 5}'")
    return value

"""Argument parsing shared by every subcommand: one-line usage errors, checked numbers, JSON args."""
from __future__ import annotations

import argparse
import json
from typing import NoReturn

from benchutil.errors import BenchError


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        self.exit(2, f"error: {message} (bench {self.prog.split()[-1]} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return value


def parse_attack_args(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise BenchError(f"--attack-args is not valid JSON ({err.msg}); write e.g. '{{\"restarts\": 5}}'") from None
    if not isinstance(value, dict):
        raise BenchError("--attack-args must be a JSON object, e.g. '{\"restarts\": 5}'")
    return value

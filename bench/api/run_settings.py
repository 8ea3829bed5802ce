"""Run settings given as data (a suite file's table, bench.benchmark's keywords) -> the parsed
`bench run` flags: the same parser, types and checks as the command line, so the three doors lead
to identical runs.

A key is a flag's name with underscores (`n_samples` for `--n-samples`); an unknown key is refused
with the closest name. Values are what the flag takes, or their natural Python / TOML form: a list
for a comma list (`eps = ["0", "4/255"]`), a table / dict for `attack_args`, numbers as numbers.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.api.run_arguments import settings_parser
from benchutil.errors import BenchError, unknown

JSON_KEYS = ("attack_args",)  # flags that take a JSON object


def setting_keys() -> list[str]:
    """Every key a run setting may have: the dest of each `bench run` flag."""
    return [a.dest for a in settings_parser()._actions if a.option_strings]


def _flag_value(key: str, value: Any, where: str) -> str:
    if key in JSON_KEYS and isinstance(value, Mapping):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        if not value or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            raise BenchError(f"{where}: {key} must be a non-empty list of names or numbers; write e.g. "
                             f"{key} = [\"a\", \"b\"]")
        return ",".join(str(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Path)):
        raise BenchError(f"{where}: {key} = {value!r} is not a value `bench run --{key.replace('_', '-')}` takes; "
                         "give a string, a number or a list")
    return str(value)


def settings_argv(settings: Mapping[str, Any], where: str) -> list[str]:
    """The `bench run` arguments for these settings (None values are left to the flag's default)."""
    keys = setting_keys()
    argv: list[str] = []
    for key, value in settings.items():
        if key not in keys:
            raise unknown(f"run setting in {where}:", key, keys, " (the names of bench run's flags, with _ for -)")
        if value is not None:
            # --flag=value: a value that starts with '-' (a --target text) stays a value
            argv.append(f"--{key.replace('_', '-')}={_flag_value(key, value, where)}")
    return argv


def parse_settings(argv: list[str], where: str) -> argparse.Namespace:
    """Parse run arguments with `bench run`'s own flags; a bad value is one line naming it."""
    try:
        args, extra = settings_parser().parse_known_args(argv)
    except argparse.ArgumentError as err:
        raise BenchError(f"{where}: {err}") from None
    if extra:
        raise BenchError(f"{where}: unrecognised {' '.join(extra)}")
    return args

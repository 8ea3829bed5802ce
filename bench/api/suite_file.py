"""Suite files: a whole evaluation (encoders x tasks x attacks x eps, samples, seeds, VLM, protocol)
as one reviewable TOML file, run by `bench run --config FILE` and re-run by `bench reproduce`.

    about = "what this suite is for"      # optional
    suite = "tiny"                        # top-level settings apply to every [[run]]
    seed = 0

    [[run]]                               # one `bench run` each, its keys override the top level
    encoder = ["clip", "fare-4"]
    task = ["tiny-shape", "tiny-colour"]
    eps = ["0", "4/255"]

Keys are the `bench run` flags with underscores (bench.api.run_settings); a file without [[run]]
tables is one run of its top-level settings. Relative paths (out, data_root, checkpoint paths) are
read from the working directory, as on the command line, so a file and the equivalent command make
the same run folders.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import tomllib

from bench.api.run_settings import setting_keys
from benchutil.errors import BenchError, unknown

RUNS = "run"  # the array of tables, one per `bench run`
ABOUT = "about"  # a description for the reader; not a setting


def read_suite_file(path: Path) -> list[dict[str, Any]]:
    """The settings of each run the file lists, top-level settings merged in."""
    if not path.is_file():
        raise BenchError(f"suite file {path} does not exist; check the path (an example: results/tiny/suite.toml)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise BenchError(f"suite file {path} is not valid TOML ({err}); fix that line") from None
    keys = setting_keys()
    shared = {k: v for k, v in data.items() if k not in (RUNS, ABOUT)}
    for key in shared:
        if key not in keys:
            raise unknown(f"key in {path}:", key, [*keys, RUNS, ABOUT], " (bench run's flags, with _ for -)")
    if ABOUT in data and not isinstance(data[ABOUT], str):
        raise BenchError(f"{path}: {ABOUT} must be a string describing the suite")
    runs = data.get(RUNS, [{}])
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) for r in runs):
        raise BenchError(f"{path}: {RUNS} must be one or more [[{RUNS}]] tables")
    groups = []
    for number, run in enumerate(runs, 1):
        for key in run:
            if key not in keys:
                raise unknown(f"key in {path} [[{RUNS}]] {number}:", key, keys, " (bench run's flags, with _ for -)")
        groups.append({**shared, **run})
    return groups

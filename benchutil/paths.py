"""Where the project keeps what it generates (tiny world, text heads, selected samples)."""
from __future__ import annotations

import os
from pathlib import Path

from benchutil.errors import BenchError


def bench_home() -> Path:
    """$BENCH_HOME, else $XDG_CACHE_HOME/robust-vlm-bench (~/.cache/robust-vlm-bench)."""
    if os.environ.get("BENCH_HOME"):
        return Path(os.environ["BENCH_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "robust-vlm-bench"


def user_path(text: str, what: str) -> Path:
    """A path the user wrote, '~' expanded; '~name' of no such user is one line, not a RuntimeError."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        raise BenchError(f"{what} {text}: cannot expand '~' (no such user or no home folder); write the full path"
                         ) from None

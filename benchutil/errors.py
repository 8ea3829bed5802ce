"""User-facing errors: one line that names the problem and the fix; the CLI exits with 2."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class BenchError(Exception):
    """A problem with the user's input or environment (not a bug): shown as one line."""


def unknown(kind: str, name: str, known: Iterable[str], hint: str = "") -> BenchError:
    """'unknown encoder 'sim-clp'; did you mean 'sim-clip'? (bench list encoders)'."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    suggestion = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known[:12])}"
    return BenchError(f"unknown {kind} {name!r}{suggestion}{hint}")


def require_known(kind: str, names: Iterable[str], known: Iterable[str], hint: str = "") -> None:
    """Refuse the first of `names` not in `known`, with unknown()'s suggestion."""
    known = list(known)
    for name in names:
        if name not in known:
            raise unknown(kind, name, known, hint)

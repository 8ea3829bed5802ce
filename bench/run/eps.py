"""Parsing eps from the command line: '4/255' and '0.0157' are fine, '4' is ambiguous for pixels;
under --norm levenshtein eps is k, a whole number of character edits ('0,1,2')."""
from __future__ import annotations

import math
from fractions import Fraction

from benchutil.errors import BenchError
from tasks.text_threat import LEVENSHTEIN


def parse_eps(text: str, norm: str | None = None) -> float:
    """One eps value in pixel units; 0 means 'clean' (no attack). Given the run's pixel norm, a
    bare whole number >= 1 is refused: it reads as k character edits (--norm levenshtein)."""
    raw = text.strip()
    if norm is not None and raw.isdigit() and 1 <= int(raw) <= 255:  # '1' too: a whole number reads as k edits
        raise BenchError(f"eps {text!r} is ambiguous: pixels are in [0, 1]; did you mean {int(raw)}/255?")
    try:
        if "/" in raw:
            num, den = raw.split("/")
            value = float(Fraction(int(num), int(den)))
        else:
            value = float(raw)
    except (ValueError, ZeroDivisionError):
        raise BenchError(f"malformed eps {text!r}: write a fraction like 4/255 or a decimal like 0.0157") from None
    if not math.isfinite(value) or value < 0:
        raise BenchError(f"eps {text!r} is negative, infinite or NaN; eps must lie in (0, 1] (or 0 for clean)")
    if value > 1:
        if "/" not in raw and value == int(value) and value <= 255:
            raise BenchError(f"eps {text!r} is ambiguous: pixels are in [0, 1]; did you mean {int(value)}/255?")
        raise BenchError(f"eps {text!r} is outside (0, 1]; pixels are in [0, 1] (e.g. 4/255)")
    return value


def parse_edit_budget(text: str) -> float:
    """One eps under --norm levenshtein: k, a whole number of character edits; 0 means clean."""
    raw = text.strip()
    if not raw.isdigit():
        raise BenchError(f"eps {text!r} under --norm {LEVENSHTEIN} must be a whole number of character edits "
                         "(k), e.g. --eps 0,1,2; pixel budgets like 4/255 go with --norm linf or l2")
    return float(int(raw))


def parse_eps_list(text: str, norm: str = "linf") -> list[tuple[str, float]]:
    """'0,2/255,4/255' -> [('clean', 0.0), ('2/255', ...), ('4/255', ...)], labels as typed; under
    --norm levenshtein, '0,1,2' -> [('clean', 0.0), ('1', 1.0), ('2', 2.0)] (k character edits)."""
    out = []
    for part in text.split(","):
        value = parse_edit_budget(part) if norm == LEVENSHTEIN else parse_eps(part, norm)
        out.append(("clean" if value == 0 else part.strip(), value))
    if not out:
        raise BenchError("--eps is empty; give e.g. --eps 0,2/255,4/255")
    return out


def eps_label(value: float) -> str:
    """A stable label for an eps value: n/255 when it is one, else the decimal."""
    if value == 0:
        return "clean"
    n = value * 255
    return f"{round(n)}/255" if abs(n - round(n)) < 1e-6 else f"{value:g}"


# How tables and cards name a norm (RobustBench's threat models; Lev: k character edits, LEAF's)
NORM_LABELS = {"linf": "Linf", "l2": "L2", LEVENSHTEIN: "Lev"}

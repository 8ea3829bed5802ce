"""Parsing eps from the command line: '4/255' and '0.0157' are fine, '4' is ambiguous."""
from __future__ import annotations

import math
from fractions import Fraction

from benchutil.errors import BenchError


def parse_eps(text: str) -> float:
    """One eps value in pixel units; 0 means 'clean' (no attack)."""
    raw = text.strip()
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


def parse_eps_list(text: str) -> list[tuple[str, float]]:
    """'0,2/255,4/255' -> [('clean', 0.0), ('2/255', ...), ('4/255', ...)], labels as typed."""
    out = []
    for part in text.split(","):
        value = parse_eps(part)
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


NORM_LABELS = {"linf": "Linf", "l2": "L2"}  # how tables and cards name a norm (RobustBench's threat models)

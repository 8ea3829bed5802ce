"""Progress of long work: a bar on a terminal, and dated one-line reports in logs (Slurm, CI).

Without a terminal tqdm shows nothing; a job log then gets a line at most every
`every_s` seconds and one at the end: samples done, rate and time left.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(self, desc: str, total: int, initial: int = 0, unit: str = "sample", every_s: float = 30.0,
                 stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.desc, self.total, self.done, self.unit, self.every_s = desc, total, initial, unit, every_s
        self.started = self.last = time.monotonic()
        self.fresh = 0  # done in this session (the rate counts only these)
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream, leave=False,
                        disable=None)
        self.lines = self.bar.disable  # no terminal: report in lines

    def update(self, n: int) -> None:
        self.done += n
        self.fresh += n
        self.bar.update(n)
        now = time.monotonic()
        if self.lines and now - self.last >= self.every_s:
            self._line(now)

    def _line(self, now: float) -> None:
        self.last = now
        rate = self.fresh / max(now - self.started, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = _clock(left) if left != float("inf") else "?"
        print(f"{time.strftime('%H:%M:%S')} {self.desc}: {self.done}/{self.total} {self.unit}s, "
              f"{rate:.2f} {self.unit}s/s, ETA {eta}", file=self.stream, flush=True)

    def close(self) -> None:
        self.bar.close()
        if self.lines and self.fresh:
            self._line(time.monotonic())

"""The `bench audit` reports `bench site --audit` flags encoders with (RobustBench marks entries
whose evaluation it doubts the same way).

`bench audit --out report.md` writes report.md and report.json beside it: a list of checks, each
{encoder, task, check, verdict, value} (bench.report.audit.Check). Either file may be given; the
JSON is what is read. An encoder is flagged where any check warned; skipped checks flag nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchutil.errors import BenchError
from benchutil.schema import Schema, read_json

CHECK = Schema("audit report entry", "give the .json `bench audit --out` wrote beside its report, or run it again",
               required={"encoder": str, "task": str, "check": str, "verdict": str, "value": str})


@dataclass(frozen=True)
class AuditWarning:
    report: str  # the file it came from, as given
    task: str
    check: str  # "eps", "iterations", "black-box", "transfer", "gradients", "predictions"
    value: str  # the number behind the verdict

    @property
    def line(self) -> str:
        return f"{self.check} on {self.task}: {self.value}"


@dataclass(frozen=True)
class Audits:
    reports: list[str]  # the files read, as given
    checks: int  # how many checks they hold
    audited: frozenset[str]  # the encoders they checked
    warnings: dict[str, list[AuditWarning]]  # per flagged encoder


def read_audits(paths: list[Path]) -> Audits:
    """The warnings of every report (an encoder audited twice keeps the warnings of both)."""
    warnings: dict[str, list[AuditWarning]] = {}
    audited: set[str] = set()
    count = 0
    for path in paths:
        json_path = path.with_suffix(".json") if path.suffix == ".md" else path
        if not json_path.is_file():
            raise BenchError(f"--audit {path}: no audit report at {json_path}; give the report `bench audit --out` "
                             "wrote (its .md, with the .json beside it, or the .json)")
        data = read_json(json_path, what="audit report")
        if not isinstance(data, list):
            raise BenchError(f"audit report {json_path} is not a list of checks; give the .json `bench audit --out` "
                             "wrote beside its report")
        for i, item in enumerate(data):
            check = CHECK.check(item, f"audit report {json_path}, entry {i}")
            audited.add(check["encoder"])
            count += 1
            if check["verdict"] == "warn":
                warnings.setdefault(check["encoder"], []).append(
                    AuditWarning(str(path), check["task"], check["check"], check["value"]))
    return Audits([str(p) for p in paths], count, frozenset(audited), warnings)

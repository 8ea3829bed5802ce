"""Class names for a zero-shot run's per-sample table: its records hold label, clean_pred and
adv_pred as class indices; the names come from the task, resolved by its name through the suites
(bench/suites.py) where its data is here (the tiny world always is, generated on first use). A task
whose data is missing, a folder task (its runs record the folder's name, not its path) or a dataset
that merely shares a suite task's name (its sample ids are not the task's) keeps the indices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.report.leaderboard import ACCURACY
from benchutil.errors import BenchError

CLASS_FIELDS = ("label", "clean_pred", "adv_pred")


@dataclass(frozen=True)
class ClassNames:
    task: str
    suite: str
    names: list[str]

    def for_page(self) -> dict[str, Any]:
        """What the run page's script reads: which fields hold a class index, and the names."""
        return {"fields": list(CLASS_FIELDS), "names": self.names}


class ClassNameResolver:
    """One task read per name, whatever the number of runs on it."""

    def __init__(self, data_root: str | None) -> None:
        self.data_root = data_root  # the paper suite's (bench site --data-root); the tiny world finds itself
        self._tasks: dict[str, tuple[str, list[str], frozenset[str]] | None] = {}

    def of_run(self, config: dict[str, Any], records: list[dict[str, Any]]) -> ClassNames | None:
        if config.get("metric") != ACCURACY or config.get("vlm") or not isinstance(config.get("task"), str):
            return None
        found = self._task(config["task"])
        if found is None:
            return None
        suite, names, ids = found
        indices = [r.get(f) for r in records for f in CLASS_FIELDS if r.get(f) is not None]
        if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(names) for i in indices):
            return None
        if not {str(r.get("id")) for r in records} <= ids:
            return None
        return ClassNames(config["task"], suite, names)

    def _task(self, name: str) -> tuple[str, list[str], frozenset[str]] | None:
        if name not in self._tasks:
            self._tasks[name] = self._read(name)
        return self._tasks[name]

    def _read(self, name: str) -> tuple[str, list[str], frozenset[str]] | None:
        from bench.suites import load_task, suite_of_task

        try:
            suite = suite_of_task(name)
            if name not in suite.datasets:  # captioning, VQA, retrieval: no classes
                return None
            task = load_task(suite, name, None if suite.name == "tiny" else self.data_root)
        except (BenchError, OSError):  # no data root, or its data is not here: the indices stay
            return None
        data = getattr(task, "data", None)  # a webdataset selection reads its samples on first use: not here
        if data is None:
            return None
        return suite.name, [str(n) for n in data.classnames], frozenset(str(i) for i in data.ids)

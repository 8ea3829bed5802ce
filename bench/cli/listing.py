"""The body of `bench list`: every name a flag accepts, where it comes from, and what it is.

The origin column says "built in" or the installed package (distribution and version) that added
the entry through an entry point (benchutil.plugins), so a plugin's names are never mistaken for
the benchmark's own.
"""
from __future__ import annotations

import re

from bench.run.attack_names import listing
from bench.suites import SUITES, get_suite
from benchutil.registry import BUILT_IN, Registry

# LEAF's retrieval objectives other than its default: "<task>-leaf-<objective>-target<i>", eleven per task.
LEAF_SIBLING = re.compile(r"-leaf-[a-z0-9]+-target[0-9]+$")
# Names that are patterns, not registry entries: (what, name, description).
PATTERNS = {
    "tasks": [("folder:PATH", "any image folder PATH/<class>/<image> (+ classnames.txt, templates.txt)"),
              ("all", ("every task above (classification, captioning, VQA and retrieval) but the text tasks, "
                       "which take --attack charmer: name those one by one"))],
    "vlms": [("llava:PATH[@BASE]", "any LLaVA-1.5 checkpoint, llava-hf or LLaVA's original format, merged or "
                                   "LoRA over BASE (folder or hub id)")],
}


def list_command(what: str, suite_name: str | None) -> None:
    print("\n".join(_table(rows(what, suite_name))))


def rows(what: str, suite_name: str | None) -> list[tuple[str, str, str]]:
    """(name, origin, description) of everything `bench list WHAT` shows."""
    if what == "attacks":
        return [(name, origin, about) for name, about, origin in listing()]
    suite = get_suite(suite_name)
    registries: list[Registry] = {"encoders": [suite.encoders],
                                  "tasks": [suite.datasets, suite.vlm_datasets, suite.retrieval_datasets,
                                            suite.text_datasets],
                                  "suites": [SUITES], "vlms": [suite.vlms()]}[what]
    out = []
    for registry in registries:
        for entry in registry:
            if LEAF_SIBLING.search(entry.name):  # one pattern line for the eleven, below
                continue
            aliases = registry.aliases_of(entry.name)
            alias_text = f" (alias: {', '.join(aliases)})" if aliases else ""
            out.append((entry.name, entry.origin, f"{entry.provenance}{alias_text}"))
    if what == "tasks":
        out += [(f"{base}-leaf-OBJECTIVE-targetI", BUILT_IN,
                 f"as {base}-leaf with LEAF's other --obj (dissim, sim, l2, negl2) and --target (0, 1, 2), "
                 f"e.g. {base}-leaf-l2-target1") for base in _leaf_bases(registries)]
        # a group names a paper's list of tasks (bench run --task GROUP)
        out += [(group, BUILT_IN, f"group of {len(tasks)} tasks: {', '.join(tasks)}")
                for group, tasks in suite.task_groups.items()]
    return out + [(name, BUILT_IN, about) for name, about in PATTERNS.get(what, [])]


def _leaf_bases(registries: list[Registry]) -> list[str]:
    """The text retrieval tasks with LEAF's objective siblings (tasks/retrieval_objectives.py)."""
    names = [entry.name for registry in registries for entry in registry]
    return list(dict.fromkeys(LEAF_SIBLING.sub("", name) for name in names if LEAF_SIBLING.search(name)))


def _table(table: list[tuple[str, str, str]]) -> list[str]:
    name_width = max(len(name) for name, _, _ in table)
    origin_width = max(len(origin) for _, origin, _ in table)
    return [f"{name.ljust(name_width)}  {origin.ljust(origin_width)}  {about}" for name, origin, about in table]

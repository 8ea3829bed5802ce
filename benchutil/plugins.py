"""Plugins: installed packages add attacks, encoders, tasks and VLMs through entry points.

A package declares entry points in one group per kind (GROUPS); `pip install` is all it takes,
as with pytest's plugins. Each registry site attaches its group with `load_on_first_use`, which
imports the plugins once, the first time that registry is read, into the same registry as the
built-in entries, recording each entry's origin (distribution and version). What an entry point
names is the site's choice (docs/extending.md, "From your own package"): an attacks.table
AttackEntry for attacks, a function `register(suite)` for encoders, tasks and VLMs.

A plugin that fails to import, names the wrong kind of object, raises while registering or takes a
name already registered is one line (BenchError) naming its distribution and the fix. With no plugin
installed a group is empty and nothing happens.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from benchutil.errors import BenchError
from benchutil.registry import NameTaken, Registry

GROUPS = {kind: f"robust_vlm_bench.{kind}" for kind in ("attacks", "encoders", "tasks", "vlms")}


@dataclass(frozen=True)
class Plugin:
    """One entry point of an installed distribution."""
    distribution: str  # the name pip knows it by: `pip uninstall <distribution>`
    version: str
    group: str
    entry_point: str  # NAME = "module:object"

    @property
    def origin(self) -> str:
        return f"{self.distribution} {self.version}"

    def error(self, problem: str, fix: str) -> BenchError:
        return BenchError(f"plugin {self.origin} ({self.group}: {self.entry_point}) {problem}; {fix}, or "
                          f"uninstall it: pip uninstall {self.distribution}")


def plugins(kind: str) -> list[tuple[Plugin, EntryPoint]]:
    """The installed entry points of a kind's group, in a stable order."""
    found = sorted(entry_points(group=GROUPS[kind]), key=lambda ep: (ep.dist.name if ep.dist else "", ep.name))
    return [(Plugin(ep.dist.name if ep.dist else "unknown distribution", ep.dist.version if ep.dist else "?",
                    GROUPS[kind], f"{ep.name} = {ep.value}"), ep) for ep in found]


def load_on_first_use(kind: str, registries: Sequence[Registry[Any]], install: Callable[[Any, Plugin], None],
                      scope: str = "") -> None:
    """Attach the kind's plugins to `registries` (one name space: a name may be in only one of them);
    the first read of any of them imports every plugin of the group and calls `install(object,
    plugin)` with the entry point's object, entries added meanwhile recording the plugin's origin.
    `scope` (a suite) keeps one attachment per registry and scope."""
    done = False
    failure: BenchError | None = None

    def load() -> None:
        nonlocal done, failure
        if failure is not None:  # a broken plugin keeps failing the same way: never a half-loaded registry
            raise failure
        if done:  # the same loader is attached to every registry of the name space
            return
        done = True
        try:
            for plugin, entry_point in plugins(kind):
                _install(plugin, _imported(plugin, entry_point), registries, install)
        except BenchError as err:
            failure = err
            raise

    for registry in registries:
        registry.on_first_use(f"{GROUPS[kind]}:{scope}", load)


def _imported(plugin: Plugin, entry_point: EntryPoint) -> Any:
    try:
        return entry_point.load()
    except Exception as err:  # anything its import raises: the plugin's problem, told in one line
        raise plugin.error(f"failed to import ({_one_line(err)})",
                           "fix or reinstall the package") from None


def _install(plugin: Plugin, value: Any, registries: Sequence[Registry[Any]],
             install: Callable[[Any, Plugin], None]) -> None:
    with ExitStack() as stack:
        for registry in registries:
            stack.enter_context(registry.adding_from(plugin.origin))
        try:
            install(value, plugin)
        except BenchError:
            raise
        except NameTaken as err:
            raise _taken(plugin, err.kind, err.name, err.holder) from None
        except Exception as err:
            raise plugin.error(f"failed while registering ({_one_line(err)})", "fix the package") from None
    for registry in registries:  # one name space: the same name in two of them is taken too
        for entry in registry:
            others = [r for r in registries if r is not registry and entry.name in r]
            if entry.origin == plugin.origin and others:
                raise _taken(plugin, registry.kind, entry.name, others[0].get(entry.name).origin)


def _taken(plugin: Plugin, kind: str, name: str, holder: str) -> BenchError:
    return plugin.error(f"registers {kind} {name!r}, a name already taken ({holder})",
                        f"rename it in {plugin.distribution}")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__

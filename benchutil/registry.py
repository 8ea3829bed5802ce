"""timm-style registries: entries are added by a decorator, looked up by name with suggestions.

Every entry records its origin: built in, or the installed package (distribution and version)
that added it through an entry point (benchutil.plugins). Plugins join a registry lazily: the
loaders attached with `on_first_use` run once, before the first lookup, listing or membership
test, so a command that never touches a registry never imports its plugins.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from benchutil.errors import unknown

T = TypeVar("T")

BUILT_IN = "built in"


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    value: T
    provenance: str  # one line: where it comes from (paper, checkpoint, implementation)
    origin: str = BUILT_IN  # or the plugin's "distribution version", e.g. "my-attack 0.1"


class NameTaken(ValueError):
    """A name (or alias) registered twice; `holder` is the origin of the entry that has it."""

    def __init__(self, kind: str, name: str, holder: str) -> None:
        super().__init__(f"{kind} {name!r} is registered twice (first by: {holder})")
        self.kind, self.name, self.holder = kind, name, holder


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}
        self._origin = BUILT_IN  # what `add` records; a plugin loader sets it while the plugin adds
        self._pending: dict[str, Callable[[], None]] = {}  # loaders not run yet, by key
        self._attached: set[str] = set()

    def register(self, name: str, provenance: str, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        def add(value: T) -> T:
            self.add(name, value, provenance, aliases)
            return value

        return add

    def add(self, name: str, value: T, provenance: str, aliases: tuple[str, ...] = ()) -> None:
        for taken in (name, *aliases):
            if taken in self._entries or taken in self._aliases:
                raise NameTaken(self.kind, taken, self._entries[self._aliases.get(taken, taken)].origin)
        self._entries[name] = Entry(name, value, provenance, self._origin)
        for alias in aliases:
            self._aliases[alias] = name

    def on_first_use(self, key: str, load: Callable[[], None]) -> None:
        """Run `load` once, before the registry is first read; a key already attached is ignored,
        so callers may attach on every access."""
        if key not in self._attached:
            self._attached.add(key)
            self._pending[key] = load

    @contextmanager
    def adding_from(self, origin: str) -> Iterator[None]:
        """Entries added inside the block record `origin` (a plugin's distribution and version)."""
        previous, self._origin = self._origin, origin
        try:
            yield
        finally:
            self._origin = previous

    def _ready(self) -> None:
        # Popped before it runs: a loader that reads this registry does not run itself again. One
        # that fails stays pending, so every later read fails the same way (no half-loaded registry).
        while self._pending:
            key = next(iter(self._pending))
            load = self._pending.pop(key)
            try:
                load()
            except BaseException:
                self._pending[key] = load
                raise

    def resolve(self, name: str) -> str:
        self._ready()
        return self._aliases.get(name, name)

    def __contains__(self, name: str) -> bool:
        return self.resolve(name) in self._entries

    def get(self, name: str) -> Entry[T]:
        canonical = self.resolve(name)
        if canonical not in self._entries:
            raise unknown(self.kind, name, self.names(), f" (bench list {self.kind}s)")
        return self._entries[canonical]

    def names(self) -> list[str]:
        self._ready()
        return [*self._entries, *self._aliases]

    def __iter__(self) -> Iterator[Entry[T]]:
        self._ready()
        return iter(list(self._entries.values()))

    def aliases_of(self, name: str) -> list[str]:
        self._ready()
        return [a for a, target in self._aliases.items() if target == name]

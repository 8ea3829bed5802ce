"""timm-style registries: entries are added by a decorator, looked up by name with suggestions."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from benchutil.errors import unknown

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    value: T
    provenance: str  # one line: where it comes from (paper, checkpoint, implementation)


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, provenance: str, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        def add(value: T) -> T:
            self.add(name, value, provenance, aliases)
            return value

        return add

    def add(self, name: str, value: T, provenance: str, aliases: tuple[str, ...] = ()) -> None:
        if name in self._entries or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, value, provenance)
        for alias in aliases:
            self._aliases[alias] = name

    def resolve(self, name: str) -> str:
        return self._aliases.get(name, name)

    def __contains__(self, name: str) -> bool:
        return self.resolve(name) in self._entries

    def get(self, name: str) -> Entry[T]:
        canonical = self.resolve(name)
        if canonical not in self._entries:
            raise unknown(self.kind, name, self.names(), f" (bench list {self.kind}s)")
        return self._entries[canonical]

    def names(self) -> list[str]:
        return [*self._entries, *self._aliases]

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def aliases_of(self, name: str) -> list[str]:
        return [a for a, target in self._aliases.items() if target == name]

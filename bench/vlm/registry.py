"""Which VLMs each suite offers: every VLM file registers its loader here, timm-style.

Adding a VLM = one file in bench/vlm/ with a loader decorated by `register_vlm`; the
package's modules are imported on first lookup, so nothing else is edited. Loaders keep
their heavy imports (transformers, open_flamingo) inside the function.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from benchutil.registry import Registry

SUITES = ("tiny", "paper")


@dataclass(frozen=True)
class VLMSpec:
    load: Callable[[nn.Module, str, str], Any]  # (encoder, device, name) -> a VLM (tasks.contracts.VLM)


_REGISTRIES: dict[str, Registry[VLMSpec]] = {suite: Registry("vlm") for suite in SUITES}
_discovered = False


def register_vlm(name: str, suite: str, about: str,
                 aliases: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a loader `(encoder, device, name) -> VLM` to offer it as --vlm NAME on a suite."""
    def add(load: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRIES[suite].add(name, VLMSpec(load), about, aliases)
        return load

    return add


def suite_vlms(suite: str) -> Registry[VLMSpec]:
    """The VLMs registered for a suite (imports every module of bench.vlm once)."""
    global _discovered
    if not _discovered:
        import bench.vlm as package

        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
        _discovered = True
    return _REGISTRIES[suite]

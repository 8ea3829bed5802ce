"""robust-vlm-bench: adversarial robustness of CLIP encoders and the VLMs built on them.

The public Python API, and nothing else: `load_encoder` and `resolve_encoder` (bench.suites). The
code lives in layered subpackages (docs/extending.md): bench.cli above bench.report and bench.train,
above bench.run, above bench.suites, above bench.vlm, bench.tiny and bench.encoders.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.suites import load_encoder, resolve_encoder

__all__ = ["load_encoder", "resolve_encoder"]


def __getattr__(name: str) -> Any:
    """The API's functions load on first use: `import bench` (and the CLI's start) stays light."""
    if name in __all__:
        from bench import suites

        return getattr(suites, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")

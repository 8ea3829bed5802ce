"""robust-vlm-bench: adversarial robustness of CLIP encoders and the VLMs built on them.

The public Python API, and nothing else: `benchmark` (bench.api.benchmark), `load_encoder` and
`resolve_encoder` (bench.suites), and `__version__`. The code lives in layered subpackages
(docs/extending.md): bench.cli above bench.api, above bench.report and bench.train, above bench.run,
above bench.suites, above bench.vlm, bench.tiny and bench.encoders.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.api.benchmark import benchmark
    from bench.suites import load_encoder, resolve_encoder

# The one place the version is written: pyproject reads it (dynamic version) and `bench --version`
# prints it. A plain literal, so reading it imports nothing heavy.
__version__ = "0.1.0"

__all__ = ["benchmark", "load_encoder", "resolve_encoder"]


def __getattr__(name: str) -> Any:
    """The API's functions load on first use: `import bench` (and the CLI's start) stays light."""
    if name == "benchmark":
        from bench.api.benchmark import benchmark

        return benchmark
    if name in __all__:
        from bench import suites

        return getattr(suites, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")

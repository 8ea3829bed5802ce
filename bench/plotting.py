"""What every robust-accuracy-against-eps figure shares (bench plot's PNG, the website's SVGs)."""
from __future__ import annotations

from typing import Any

import pandas as pd


def eps_figure(size: tuple[float, float]) -> tuple[Any, Any]:
    """A figure and its axes on the non-interactive backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)


def eps_in_255(samples: pd.DataFrame) -> dict[str, float]:
    """Each eps label's radius in 1/255 units ('clean' is 0)."""
    radius = {label: float(eps) * 255 for label, eps in zip(samples["eps_label"], samples["eps"])}
    return {**radius, "clean": 0.0}


def label_eps_axes(ax: Any, ylabel: str) -> None:
    ax.set_xlabel("eps (x/255, L-inf)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)

"""What every robust-accuracy-against-eps figure shares (bench plot's PNG, the website's SVGs)."""
from __future__ import annotations

from functools import cache
from typing import Any

import pandas as pd


def eps_figure(size: tuple[float, float]) -> tuple[Any, Any]:
    """A figure and its axes on the non-interactive backend (no display needed).

    The axes draw every label, title and legend entry as literal text: encoder, task and
    class names are the user's, and a name with two '$' (a folder `mathtext$\\frac$`) would
    otherwise go to matplotlib's mathtext parser and crash the plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size, subplot_kw={"axes_class": _literal_axes_class()})


@cache  # one class: matplotlib is imported lazily, so it is made on first use
def _literal_axes_class() -> type:
    """Axes that switch mathtext off for their texts wherever matplotlib lays them out:
    drawing, tight_layout and bbox_inches='tight' all go through draw / get_tightbbox."""
    from matplotlib.axes import Axes

    class LiteralAxes(Axes):
        def _literal_texts(self) -> None:
            from matplotlib.text import Text

            ticks = {*self.xaxis.get_ticklabels(which="both"), *self.yaxis.get_ticklabels(which="both")}
            for text in self.findobj(Text):
                if text not in ticks:  # tick labels are numbers from the axis' formatter, math by design
                    text.set_parse_math(False)

        def draw(self, renderer: Any) -> None:
            self._literal_texts()
            super().draw(renderer)

        def get_tightbbox(self, *args: Any, **kwargs: Any) -> Any:
            self._literal_texts()
            return super().get_tightbbox(*args, **kwargs)

    return LiteralAxes


def on_eps_axis(threat: str) -> bool:
    """Whether a leaderboard threat belongs on the L-inf eps axis: clean, or plain "Linf <eps>" (an L2
    radius or a bf16 attack is another attacker, not another point on this curve)."""
    return threat == "clean" or (threat.startswith("Linf ") and threat.count(" ") == 1)


def eps_in_255(samples: pd.DataFrame) -> dict[str, float]:
    """Each threat's radius in 1/255 units ('clean' is 0)."""
    radius = {label: float(eps) * 255 for label, eps in zip(samples["threat"], samples["eps"])}
    return {**radius, "clean": 0.0}


def label_eps_axes(ax: Any, ylabel: str) -> None:
    ax.set_xlabel("eps (x/255, L-inf)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)

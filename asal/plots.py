"""Figures from the aggregated CSVs. Each function takes data and an output path and returns the figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .data.store import atomic_path  # noqa: E402


def plot_accuracy(summary: pd.DataFrame, out: str | Path, *, title: str = "") -> plt.Figure:
    """Test accuracy against labelled samples: mean line and min-max band over seeds, as the paper's Fig. 3-4."""
    strategies = sorted(summary["strategy"].unique())
    colours = dict(zip(strategies, sns.color_palette("colorblind", len(strategies))))
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
        for name in strategies:
            part = summary[summary["strategy"] == name].sort_values("n_labelled")
            seeds = int(part["n_seeds"].max())
            ax.plot(part["n_labelled"], 100 * part["accuracy_mean"], color=colours[name], lw=1.8,
                    label=f"{name} ({seeds} seed{'s' * (seeds != 1)})")
            ax.fill_between(part["n_labelled"], 100 * part["accuracy_min"], 100 * part["accuracy_max"],
                            color=colours[name], alpha=0.2, lw=0)
        ax.set_xlabel("labelled samples")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{title + ': ' if title else ''}mean over seeds, band = min to max", fontsize=10)
        ax.legend(loc="lower right", frameon=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=Path(out).suffix.lstrip(".") or "pdf")
    plt.close(fig)
    return fig

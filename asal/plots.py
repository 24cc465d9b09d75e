"""Figures from the aggregated CSVs. Each function takes data and an output path and returns the figure.

Within an experiment every figure gives each strategy the same colour (assigned in the order of
:data:`asal.strategies.STRATEGIES` over the strategies that select; the fully supervised bound is black).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .files import atomic_path  # noqa: E402
from .strategies import STRATEGIES, is_bound, trains_image_classifier  # noqa: E402


def _colours(names) -> dict:
    selecting = [name for name in _ordered(names) if not is_bound(name)]
    n = len(selecting)
    palette = sns.color_palette("colorblind" if n <= 10 else "tab20" if n <= 20 else "husl", n)
    return {**dict(zip(selecting, palette)), **{name: (0.0, 0.0, 0.0) for name in names if is_bound(name)}}


def _ordered(names) -> list[str]:
    rank = {name: i for i, name in enumerate(STRATEGIES)}
    return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))


def _save(fig: plt.Figure, out: str | Path | list[str | Path]) -> plt.Figure:
    """Save to one path or several (a PDF for papers, a PNG for the HTML report); format from the suffix."""
    for path in [out] if isinstance(out, (str, Path)) else out:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "pdf", dpi=150)
    plt.close(fig)
    return fig


def _legend(ax: plt.Axes, **kwargs) -> None:
    """Inside the axes while it is short; beside them once it would hide the curves (every strategy of
    ``config/all-strategies.yaml`` is 21 entries)."""
    if len(ax.get_legend_handles_labels()[0]) > 8:
        kwargs = {**kwargs, "loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8}
    ax.legend(frameon=True, **kwargs)


def _far_below(summary: pd.DataFrame, points: float = 2.0) -> list[str]:
    """Strategies whose final mean accuracy is more than ``points`` percentage points below the median
    strategy's: they would squash every other curve into a line."""
    last = summary.sort_values("n_labelled").groupby("strategy")["accuracy_mean"].last() * 100
    return sorted(last.index[last < last.median() - points])


def plot_accuracy(summary: pd.DataFrame, out: str | Path | list[str | Path], *, title: str = "",
                  bound: str = "") -> plt.Figure:
    """Test accuracy against labelled samples: mean line and min-max band over seeds, as the paper's Fig. 3-4;
    the fully supervised bound (``full``, trained on the whole pool) as a horizontal line and band. When some
    strategy ends far below the rest (ADBA on MNIST 5 vs 7), a second panel zooms on the others."""
    strategies = _ordered(summary["strategy"].unique())
    colours = _colours(strategies)
    outliers = _far_below(summary)
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, 1 + bool(outliers), figsize=(6.4 * (1 + bool(outliers)), 4.2),
                                 layout="constrained", squeeze=False)
        for ax, shown in zip(axes[0], (strategies, [name for name in strategies if name not in outliers])):
            for name in shown:
                part = summary[summary["strategy"] == name].sort_values("n_labelled")
                seeds = int(part["n_seeds"].max())
                if is_bound(name):
                    ax.axhline(100 * part["accuracy_mean"].iloc[0], color=colours[name], lw=1.2, ls="--",
                               label=f"{name}: all {int(part['n_labelled'].iloc[0]):,} labels{', ' + bound if bound else ''} "
                                     f"({seeds} seed{'s' * (seeds != 1)})")
                    ax.axhspan(100 * part["accuracy_min"].iloc[0], 100 * part["accuracy_max"].iloc[0],
                               color=colours[name], alpha=0.08, lw=0)
                    continue
                ax.plot(part["n_labelled"], 100 * part["accuracy_mean"], color=colours[name], lw=1.8,
                        label=f"{name} ({seeds} seed{'s' * (seeds != 1)})")
                ax.fill_between(part["n_labelled"], 100 * part["accuracy_min"], 100 * part["accuracy_max"],
                                color=colours[name], alpha=0.2, lw=0)
            ax.set_xlabel("labelled samples")
            ax.set_ylabel("test accuracy (%)")
        axes[0, 0].set_title(f"{title + ': ' if title else ''}mean over seeds, band = min to max", fontsize=10)
        _legend(axes[0, 0], loc="lower right", fontsize=8)
        if outliers:
            axes[0, 1].set_title(f"without {', '.join(outliers)} (far below)", fontsize=10)
    return _save(fig, out)


def plot_entropy(summary: pd.DataFrame, out: str | Path | list[str | Path], *, title: str = "") -> plt.Figure:
    """Left: mean entropy of the selected samples per cycle (the paper's Fig. 3b). Right, for ASAL: the
    synthetic samples' entropy before and after the ascent against their matched real samples' (section 5.4),
    all under the classifier that selected them (so not ADBA, whose classifier lives in latent space)."""
    # ADBA's entropy is its latent-space classifier's, not the image classifier's: not on this scale.
    summary = summary.dropna(subset=["entropy_mean"])[lambda frame: frame.strategy.map(trains_image_classifier)]
    strategies = _ordered(summary["strategy"].unique())
    generative = [s for s in strategies if summary.loc[summary.strategy == s, "synthetic_entropy_mean"].notna().any()]
    colours = _colours(strategies)
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, 1 + bool(generative), figsize=(6.4 * (1 + bool(generative)), 4.2),
                                 layout="constrained", squeeze=False, sharey=True)
        ax = axes[0, 0]
        for name in strategies:
            part = summary[summary.strategy == name].sort_values("n_labelled")
            ax.plot(part["n_labelled"], part["entropy_mean"], color=colours[name], lw=1.8, marker=".", label=name)
        ax.set_xlabel("labelled samples (before the selection)")
        ax.set_ylabel("mean entropy (nats)")
        ax.set_title(f"{title + ': ' if title else ''}selected samples, mean over seeds", fontsize=10)
        _legend(ax)
        if generative:
            ax = axes[0, 1]
            for name in generative:
                part = summary[summary.strategy == name].sort_values("n_labelled")
                ax.plot(part["n_labelled"], part["synthetic_entropy_mean"], color=colours[name], lw=1.8, ls="--")
                ax.plot(part["n_labelled"], part["synthetic_entropy_start_mean"], color=colours[name], lw=1, ls=":")
                ax.plot(part["n_labelled"], part["entropy_mean"], color=colours[name], lw=1.8, label=name)
            ax.plot([], [], color="grey", ls=":", label="synthetic, before ascent")
            ax.plot([], [], color="grey", ls="--", label="synthetic, after ascent")
            ax.plot([], [], color="grey", label="labelled (ASAL: the matched real samples)")
            ax.set_xlabel("labelled samples (before the selection)")
            ax.set_title("generative strategies: what the labelled samples keep of the ascent", fontsize=10)
            _legend(ax, fontsize=8)
    return _save(fig, out)


def plot_timings(summary: pd.DataFrame, out: str | Path | list[str | Path], *, title: str = "") -> plt.Figure:
    """Left: selection seconds per cycle per strategy (log scale). Right: how each strategy's mean selection
    splits into generation (the ascent), features with projection, search with matching and the rest (a pool
    scan, bookkeeping), as shares of its own time, its seconds written beside it: at 16M images max-entropy
    takes 300 times ASAL's time, which on one shared axis would leave ASAL's split invisible."""
    summary = summary.dropna(subset=["select_seconds_mean"])
    strategies = _ordered(summary["strategy"].unique())
    colours = _colours(strategies)
    means = summary.groupby("strategy")[["select_seconds_mean", "generate_seconds_mean", "features_seconds_mean",
                                          "search_seconds_mean"]].mean().reindex(strategies)
    with sns.axes_style("whitegrid"):
        fig, (ax, bars) = plt.subplots(1, 2, figsize=(12.8, 4.2), layout="constrained")
        for name in strategies:
            part = summary[summary.strategy == name].sort_values("n_labelled")
            ax.plot(part["n_labelled"], part["select_seconds_mean"].clip(lower=1e-4), color=colours[name], lw=1.8,
                    marker=".", label=name)
        ax.set_yscale("log")
        ax.set_xlabel("labelled samples (before the selection)")
        ax.set_ylabel("selection seconds (mean over seeds)")
        ax.set_title(f"{title + ': ' if title else ''}selection time per cycle", fontsize=10)
        _legend(ax)
        parts = {"generation": "generate_seconds_mean", "features + PCA": "features_seconds_mean",
                 "search + matching": "search_seconds_mean"}
        totals = means["select_seconds_mean"].to_numpy()
        share = 100 / np.where(totals > 0, totals, 1)
        # Horizontal bars: their names stay readable for any number of strategies.
        left = np.zeros(len(strategies))
        for (label, column), colour in zip(parts.items(), sns.color_palette("pastel", 3)):
            values = np.minimum(means[column].fillna(0).to_numpy() * share, 100 - left)
            bars.barh(strategies, values, left=left, color=colour, label=label)
            left += values
        bars.barh(strategies, 100 - left, left=left, color="0.6", label="other (pool scan, bookkeeping)")
        for row, total in enumerate(totals):
            bars.text(101, row, f"{total:.3g} s", va="center", fontsize=8)
        bars.set_xlim(0, 100)
        bars.invert_yaxis()
        bars.set_xlabel("share of the strategy's selection time (%); its mean seconds at the right")
        bars.set_title("where the selection time goes", fontsize=10)
        bars.legend(frameon=True, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4)
    return _save(fig, out)


def plot_samples(rows: list[dict], out: str | Path, *, title: str = "") -> plt.Figure:
    """The paper's Fig. 2: per strategy, a row of synthetic samples and under it their matched pool samples.

    ``rows``: one dict per strategy with ``strategy``, ``synthetic`` (n, C, H, W) float in [0, 1],
    ``matched`` (n, C, H, W) uint8, ``pool_idx`` (n,), ``labels`` (n,) class names, ``entropy`` (n,) of
    the synthetic and ``matched_entropy`` (n,) of the matched samples; ``replay_matches`` False labels a
    replay that picked other samples than its run.
    """
    n = max(len(row["pool_idx"]) for row in rows)
    fig, axes = plt.subplots(2 * len(rows), n, figsize=(1.1 * n, 2.6 * len(rows)), squeeze=False,
                             layout="constrained")
    for r, row in enumerate(rows):
        for j in range(n):
            top, bottom = axes[2 * r, j], axes[2 * r + 1, j]
            for ax in (top, bottom):
                ax.set_xticks([])
                ax.set_yticks([])
            if j >= len(row["pool_idx"]):
                top.axis("off")
                bottom.axis("off")
                continue
            synthetic = np.asarray(row["synthetic"][j]).transpose(1, 2, 0).squeeze()
            matched = np.asarray(row["matched"][j]).transpose(1, 2, 0).squeeze() / 255.0
            cmap = "gray" if synthetic.ndim == 2 else None
            top.imshow(synthetic, cmap=cmap, vmin=0, vmax=1)
            bottom.imshow(matched, cmap=cmap, vmin=0, vmax=1)
            top.set_title(f"H={row['entropy'][j]:.2f}", fontsize=7)
            bottom.set_title(f"{row['labels'][j]} #{row['pool_idx'][j]}\nH={row['matched_entropy'][j]:.2f}",
                             fontsize=7)
        differs = "" if row.get("replay_matches", True) else "\n(replay differs\nfrom the run)"
        axes[2 * r, 0].set_ylabel(f"{row['strategy']}\nsynthetic{differs}", fontsize=8)
        axes[2 * r + 1, 0].set_ylabel("matched", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, out)

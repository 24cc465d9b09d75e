"""Aggregate per-run CSVs over seeds: one row per (strategy, n_labelled), and one per strategy."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BadData
from .runfiles import DIAGNOSTICS, IO_COLUMNS, ROW_COLUMNS
from .strategies import is_bound


def read_runs(paths: list[str | Path]) -> pd.DataFrame:
    frames = []
    for path in paths:
        try:
            frame = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise BadData(f"{path}: not a readable run CSV ({exc})") from None
        missing = set(ROW_COLUMNS) - set(frame.columns) - set(DIAGNOSTICS) - set(IO_COLUMNS)
        if missing:
            raise BadData(f"{path}: missing column(s) {sorted(missing)}")
        # Diagnostics and I/O columns a run predates are NaN. A cycle whose queries were all skipped leaves a
        # row with the labelled count of the one before: the later model, trained on the same labels, stands for it.
        frames.append(frame.reindex(columns=ROW_COLUMNS).drop_duplicates(["strategy", "seed", "n_labelled"], keep="last"))
    if not frames:
        raise BadData("no run CSVs given")
    return pd.concat(frames, ignore_index=True)


MEAN_COLUMNS = {  # summary column -> run column, averaged over seeds (NaN where a strategy has no such figure)
    "entropy_mean": "selected_entropy",
    "synthetic_entropy_mean": "synthetic_entropy",
    "synthetic_entropy_start_mean": "synthetic_entropy_start",
    "match_distance_mean": "match_distance",
    "select_seconds_mean": "select_seconds",
    "generate_seconds_mean": "generate_seconds",
    "features_seconds_mean": "features_seconds",
    "search_seconds_mean": "search_seconds",
    "train_seconds_mean": "train_seconds",
    "oracle_confidence_mean": "oracle_confidence",
    "coreset_radius_mean": "coreset_radius",
}


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (strategy, n_labelled): accuracy_mean/min/max over seeds, the means of
    :data:`MEAN_COLUMNS` and n_seeds. Accuracy in [0, 1]; entropy in nats; the other figures belong to the
    selection made at that labelled-set size (NaN in the last cycle, which selects nothing)."""
    grouped = runs.groupby(["strategy", "n_labelled"], sort=True)
    return grouped.agg(
        accuracy_mean=("test_accuracy", "mean"),
        accuracy_min=("test_accuracy", "min"),
        accuracy_max=("test_accuracy", "max"),
        **{name: (column, "mean") for name, column in MEAN_COLUMNS.items()},
        n_seeds=("seed", "nunique"),
    ).reset_index()


def compare_strategies(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per strategy: accuracy averaged over cycles (the normalised area under the learning curve),
    the final accuracy, mean selected (and, for ASAL, synthetic) entropy, matching distance and selection
    time, all as means over seeds and cycles. Matching distances live in each strategy's own feature space:
    compare them within a strategy, not across."""
    last = runs.loc[runs.groupby(["strategy", "seed"])["cycle"].idxmax()]
    table = runs.groupby("strategy").agg(
        mean_accuracy_over_cycles=("test_accuracy", "mean"),
        mean_selected_entropy=("selected_entropy", "mean"),
        mean_synthetic_entropy=("synthetic_entropy", "mean"),
        mean_match_distance=("match_distance", "mean"),
        mean_select_seconds=("select_seconds", "mean"),
        n_seeds=("seed", "nunique"),
    )
    table["final_accuracy"] = last.groupby("strategy")["test_accuracy"].mean()
    table["final_n_labelled"] = last.groupby("strategy")["n_labelled"].max()
    return table.reset_index()


def accuracy_table(summary: pd.DataFrame, at: list[int]) -> pd.DataFrame:
    """Test accuracy in %, "mean [min, max]" over seeds, one row per strategy and one column per labelled-set
    size in ``at`` (empty where a strategy has no cycle of that size); ``full``, which has one size (the
    pool), appears in every column. Rows in the summary's strategy order."""
    cells = {}
    for strategy, part in summary.groupby("strategy", sort=False):
        part = part.set_index("n_labelled")
        row = {}
        for n in at:
            key = part.index[0] if is_bound(strategy) else n
            if key in part.index:
                r = part.loc[key]
                row[n] = f"{100 * r.accuracy_mean:.2f} [{100 * r.accuracy_min:.2f}, {100 * r.accuracy_max:.2f}]"
            else:
                row[n] = ""
        cells[strategy] = row
    return pd.DataFrame.from_dict(cells, orient="index", columns=at).rename_axis("strategy")


#: The per-strategy columns that tables show, in this order.
STRATEGY_COLUMNS = ["strategy", "final_n_labelled", "final_accuracy", "mean_accuracy_over_cycles",
                    "mean_selected_entropy", "mean_select_seconds"]


def checkpoints(summary: pd.DataFrame, most: int = 6) -> list[int]:
    """Up to ``most`` labelled-set sizes spread evenly over the runs' sizes, first and last included
    (``full``'s single size, the whole pool, aside)."""
    sizes = sorted(int(n) for n in summary.loc[~summary.strategy.map(is_bound), "n_labelled"].unique())
    if len(sizes) <= most:
        return sizes
    return [sizes[i] for i in sorted(set(np.linspace(0, len(sizes) - 1, most).round().astype(int)))]


def html_tables(summary: pd.DataFrame, strategies: pd.DataFrame, title: str = "", gan_failures: list[str] = ()) -> str:
    """A small self-contained HTML page: :func:`accuracy_table` at :func:`checkpoints` and the per-strategy
    table, for the Snakemake report (which shows HTML but only offers CSV files for download). ``gan_failures``
    (the GAN's failed quality gate, :func:`asal.quality.judge`) open the page as a warning."""
    per_strategy = strategies[STRATEGY_COLUMNS].set_index("strategy")
    for column in ("final_accuracy", "mean_accuracy_over_cycles"):
        per_strategy[column] *= 100
    per_strategy = per_strategy.rename(columns={
        "final_n_labelled": "labels at the end", "final_accuracy": "accuracy at the end (%)",
        "mean_accuracy_over_cycles": "mean accuracy over cycles (%)",
        "mean_selected_entropy": "entropy of the selected (nats)", "mean_select_seconds": "selection s/cycle"})
    style = ("body{font-family:sans-serif;margin:1em;color:#222} table{border-collapse:collapse;font-size:13px;"
             "margin-bottom:1.5em} th,td{padding:3px 9px;border-bottom:1px solid #ddd;text-align:right}"
             " th:first-child,td:first-child{text-align:left} h3{font-size:15px}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>"
            f"{gan_warning(gan_failures)}"
            f"<h3>{html.escape(title)}: test accuracy (%), mean [min, max] over seeds, by labelled samples</h3>"
            f"{accuracy_table(summary, checkpoints(summary)).to_html(index_names=False, border=0)}"
            "<h3>Per strategy, means over seeds</h3>"
            f"{per_strategy.to_html(float_format=lambda v: format(v, '.4g'), na_rep='', index_names=False, border=0)}"
            "</body></html>\n")


def gan_warning(failures: list[str]) -> str:
    """The warning box of a failed GAN quality gate, naming each failing figure; empty if none failed."""
    if not failures:
        return ""
    items = "".join(f"<li>{html.escape(f)}</li>" for f in failures)
    return ("<div class='gan-failed' style='border:2px solid #b00;background:#fee;padding:6px 12px;margin-bottom:1em'>"
            "<b>The GAN failed its quality gate (gan_quality)</b>: what ASAL, GAAL and ADBA generate from it is "
            f"suspect, and so are their rows below.<ul>{items}</ul></div>")


def markdown(frame: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A pipe table for README files (pandas' own needs the tabulate package)."""
    frame = frame.reset_index()
    fmt = lambda v: format(v, floatfmt) if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)

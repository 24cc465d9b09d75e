"""Each strategy against random, seed by seed: the accuracy difference at every labelled-set size.

Every strategy of a seed starts from the same initial set as random's run of that seed, so the difference
of two runs of one seed is the strategy's effect with the start held fixed. For each strategy and size:
the mean difference in points over the seeds, its min and max, and how many seeds the strategy was ahead,
level and behind; and over all sizes after the first selection, the mean difference (the area between the
curves). Written as a CSV and a Markdown table.

    python benchmarks/paired_vs_random.py --runs 'results/mnist10/runs/*/seed*.csv' \\
        --out docs/strategies/comparisons_paired.csv
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import pandas as pd

from asal.aggregate import markdown, read_runs


def paired(runs: pd.DataFrame, baseline: str = "random") -> pd.DataFrame:
    """One row per (strategy, n_labelled): ``mean_diff``, ``min_diff``, ``max_diff`` (points), ``ahead``,
    ``level``, ``behind`` (seeds), ``n_seeds``; seeds and sizes that both runs have only."""
    acc = runs.pivot_table(index=["seed", "n_labelled"], columns="strategy", values="test_accuracy")
    rows = []
    for strategy in acc.columns.drop(baseline):
        diff = (100 * (acc[strategy] - acc[baseline])).dropna()
        for n, part in diff.groupby(level="n_labelled"):
            rows.append({"strategy": strategy, "n_labelled": n, "mean_diff": part.mean(), "min_diff": part.min(),
                         "max_diff": part.max(), "ahead": int((part > 0).sum()), "level": int((part == 0).sum()),
                         "behind": int((part < 0).sum()), "n_seeds": len(part)})
    return pd.DataFrame(rows)


def table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Strategies as rows, sizes as columns: "mean [min, max] ahead/n"; and the mean over sizes after the first."""
    first = pairs.n_labelled.min()
    cells = pairs.assign(cell=lambda f: [f"{r.mean_diff:+.2f} [{r.min_diff:+.2f}, {r.max_diff:+.2f}] {r.ahead}/{r.n_seeds}"
                                         for r in f.itertuples()])
    out = cells.pivot(index="strategy", columns="n_labelled", values="cell").drop(columns=first)
    out["mean after the start"] = pairs[pairs.n_labelled > first].groupby("strategy")["mean_diff"].mean().map("{:+.2f}".format)
    return out.sort_values("mean after the start", key=lambda s: s.astype(float), ascending=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, help="a glob of run CSVs (quote it)")
    parser.add_argument("--baseline", default="random")
    parser.add_argument("--out", required=True, help="the CSV; the Markdown table goes beside it (.md)")
    args = parser.parse_args()
    runs = read_runs(sorted(p for p in glob.glob(args.runs) if not p.endswith("_indices.csv")))
    pairs = paired(runs, args.baseline)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pairs.to_csv(out, index=False, float_format="%.4f")
    text = markdown(table(pairs))
    out.with_suffix(".md").write_text(f"Accuracy minus {args.baseline}'s, same seed, in points: mean [min, max] over "
                                      f"seeds, and the seeds ahead of {args.baseline}.\n\n{text}\n")
    print(text)


if __name__ == "__main__":
    main()

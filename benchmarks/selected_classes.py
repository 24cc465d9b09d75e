"""Which classes each strategy labelled after its initial set: per strategy, the share of each class among the
pool samples it selected (all seeds together), and the normalised entropy of that distribution (100 %: every
class equally often, as random's picks are in expectation on a balanced pool). A strategy that keeps picking one
class shows here first.

    python benchmarks/selected_classes.py --indices 'results/mnist10/runs/*/seed*_indices.csv' \\
        --out docs/strategies/comparisons_classes.csv
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import numpy as np
import pandas as pd

from asal.aggregate import markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--indices", required=True, help="a glob of runs' indices CSVs (quote it)")
    parser.add_argument("--out", required=True, help="the CSV; a Markdown table goes beside it (.md)")
    args = parser.parse_args()
    rows = {}
    for path in sorted(glob.glob(args.indices)):
        strategy = Path(path).parent.name
        taken = pd.read_csv(path)
        picked = taken.loc[(taken.cycle > 0) & (taken.label >= 0), "label"].to_numpy()
        rows.setdefault(strategy, []).append(picked)
    table = {}
    for strategy, parts in rows.items():
        labels = np.concatenate(parts)
        counts = np.bincount(labels, minlength=int(labels.max()) + 1)
        share = counts / counts.sum()
        nonzero = share[share > 0]
        table[strategy] = {**{str(k): round(100 * v, 1) for k, v in enumerate(share)},
                           "evenness %": round(float(-100 * (nonzero * np.log(nonzero)).sum() / np.log(len(share))), 1),
                           "selected": int(counts.sum())}
    frame = pd.DataFrame.from_dict(table, orient="index").rename_axis("strategy").sort_values("evenness %")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out)
    text = markdown(frame, floatfmt=".1f")
    out.with_suffix(".md").write_text("Share of each class (%) among the selected samples, all seeds; evenness: the "
                                      "distribution's entropy over log(classes), in %.\n\n" + text + "\n")
    print(text)


if __name__ == "__main__":
    main()

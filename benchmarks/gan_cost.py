"""WGAN-GP against its cheaper variants at equal wall time, on one experiment's pool (issue 19).

Every variant (a set of overrides of the experiment's ``gan`` section) trains in the same process, in turns
of ``--slice`` seconds each, round robin, so all of them see the same machine: this VM's speed drifts by up to
2x between days and by tens of percent within an hour. After each ``--every`` seconds of a variant's own
training, the oracle labels 10,000 of its samples (:func:`asal.quality.sample_figures`; the moving average
where the variant keeps one) and the experiment's quality gate judges them (:func:`asal.quality.judge`; by
default every class within 0.5x to 1.5x of its share of the pool, over half labelled with confidence > 0.9).

Writes ``<out>/gan_cost.csv`` (one row per evaluation: variant, training seconds, iterations, it/s, class
fractions' min and max against the pool's shares, confident fraction, whether the bar is passed),
``<out>/gan_cost.md`` (per variant: iterations/s and the training seconds to the first pass) and a figure.

    python benchmarks/gan_cost.py --experiment mnist10 --minutes 6 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asal import paths
from asal.aggregate import markdown
from asal.config import experiment, load_config
from asal.data import read_split
from asal.device import set_threads
from asal.quality import judge, load_oracle, sample_figures
from asal.settings import GanConfig, GanQualityConfig
from asal.wgan import GanTrainer

#: name -> overrides of the experiment's gan section
VARIANTS = {
    "wgan-gp (paper)": {},
    "wgan-gp, ema": {"ema": 0.999},
    "wgan-gp, lazy 4": {"penalty_every": 4},
    "wgan-gp, 1 critic step, ttur": {"critic_iters": 1, "lr_critic": 4e-4},
    "r1, 1 critic step": {"penalty": "r1", "critic_iters": 1, "lr": 2e-4},
    "r1, 1 critic step, lazy 4, ema": {"penalty": "r1", "critic_iters": 1, "lr": 2e-4, "penalty_every": 4,
                                       "ema": 0.999},
}


def run(args) -> pd.DataFrame:
    exp = experiment(load_config(args.config), args.experiment)
    pool = read_split(paths.path("pool", args.experiment))
    device = torch.device("cpu")
    oracle = load_oracle(paths.path("oracle", args.experiment), device)
    shares = np.bincount(pool.labels, minlength=pool.n_classes) / len(pool)
    bar = GanQualityConfig.from_validated(exp["gan_quality"])  # the experiment's quality gate
    trainers = {name: GanTrainer(GanConfig.of(**{**exp["gan"], **overrides, "iterations": 10**9}), pool, device)
                for name, overrides in VARIANTS.items() if name in args.variants}
    trained = dict.fromkeys(trainers, 0.0)  # each variant's own training seconds
    next_eval = dict.fromkeys(trainers, args.every)
    rows, budget = [], args.minutes * 60
    while min(trained.values()) < budget:
        for name, trainer in trainers.items():
            if trained[name] >= budget:
                continue
            start = time.perf_counter()
            while time.perf_counter() - start < args.slice:
                trainer.step()
            trained[name] += time.perf_counter() - start
            if trained[name] >= next_eval[name] or trained[name] >= budget:
                next_eval[name] += args.every
                figures = sample_figures(trainer.sampler.eval(), oracle, list(range(pool.n_classes)),
                                         n_samples=10_000, seed=0, device=device)
                ratio = np.array(list(figures["class_fractions"].values())) / shares
                rows.append({"variant": name, "seconds": trained[name], "iterations": trainer.iteration,
                             "iterations_per_s": trainer.iteration / trained[name],
                             "min_share_ratio": ratio.min(), "max_share_ratio": ratio.max(),
                             "confident_fraction": figures["confident_fraction"],
                             "passes": not judge(figures, dict(zip(figures["class_fractions"], shares)), bar)})
                print(json.dumps(rows[-1]), flush=True)
    return pd.DataFrame(rows)


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per variant: iterations/s, and the training seconds and iterations at the first evaluation that passed."""
    out = {}
    for name, part in rows.groupby("variant", sort=False):
        passed = part[part.passes]
        out[name] = {"iterations_per_s": part.iterations_per_s.iloc[-1],
                     "first_pass_seconds": passed.seconds.iloc[0] if len(passed) else np.nan,
                     "first_pass_iterations": passed.iterations.iloc[0] if len(passed) else np.nan,
                     "last_confident_fraction": part.confident_fraction.iloc[-1],
                     "last_min_share_ratio": part.min_share_ratio.iloc[-1],
                     "last_max_share_ratio": part.max_share_ratio.iloc[-1]}
    return pd.DataFrame.from_dict(out, orient="index").rename_axis("variant")


def plot(rows: pd.DataFrame, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
    for name, part in rows.groupby("variant", sort=False):
        left.plot(part.seconds / 60, part.confident_fraction, marker="o", ms=3, label=name)
        right.plot(part.seconds / 60, part.min_share_ratio, marker="o", ms=3, label=name)
    left.axhline(0.5, color="grey", lw=0.8, ls="--")
    right.axhline(0.5, color="grey", lw=0.8, ls="--")
    left.set(xlabel="training minutes (own)", ylabel="confident fraction", title="samples the oracle is sure of")
    right.set(xlabel="training minutes (own)", ylabel="rarest class / its pool share", title="mode coverage")
    left.legend(fontsize=7)
    fig.savefig(out_png, dpi=130)
    plt.close(fig)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--experiment", default="mnist10")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--minutes", type=float, default=6.0, help="training minutes per variant")
    parser.add_argument("--slice", type=float, default=10.0, help="seconds per turn")
    parser.add_argument("--every", type=float, default=60.0, help="training seconds between quality checks")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv)
    set_threads(args.threads)
    rows = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(args.out / "gan_cost.csv", index=False, float_format="%.4g")
    table = summary(rows)
    (args.out / "gan_cost.md").write_text(markdown(table, ".3g") + "\n")
    plot(rows, args.out / "gan_cost.png")
    print(table.to_string())
    return table


if __name__ == "__main__":
    main()

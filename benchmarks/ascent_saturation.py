"""Does ASAL's ascent saturate before its last step? The codes' score, step by step, on a real experiment.

For an experiment whose pool and GAN the workflow has made, trains the experiment's classifier on
``--labels`` random pool samples (seeded), then runs the ascent of its ``asal`` section twice from the same
codes: every one of its ``steps`` (tolerance 0, the paper's), and with the early stop (the section's
``tolerance`` and ``patience``). Writes the first run's mean entropy per step (CSV and figure) and, per
(labels, seed), the steps the early stop took, both runs' seconds, and the mean entropy at the end of each:

    python benchmarks/ascent_saturation.py --experiment mnist10 --labels 100 500 1000 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asal.aggregate import markdown
from asal.config import experiment, load_config
from asal.data import read_split
from asal.device import set_threads
from asal.models.classifiers import train_classifier
from asal.paths import path
from asal.settings import AsalConfig, TrainConfig
from asal.strategies.adversarial import uncertainty_ascent
from asal.wgan import load_gan

CPU = torch.device("cpu")


def timed_ascent(generator, model, cfg: AsalConfig, n_codes: int, seed: int):
    """(the ascent of ``cfg``, its seconds): ``n_codes`` codes from ``seed``."""
    started = time.perf_counter()
    ascent = uncertainty_ascent(generator, model, n_codes, steps=cfg.steps, lr=cfg.lr, seed=seed, device=CPU,
                                tolerance=cfg.tolerance, patience=cfg.patience)
    return ascent, time.perf_counter() - started


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--labels", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1, help="one thread, as an AL job has")
    parser.add_argument("--out", type=Path, help="default: results/bench/ascent_<experiment>")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    exp = experiment(load_config(args.config), args.experiment)
    out = args.out or Path("results/bench") / f"ascent_{args.experiment}"
    out.mkdir(parents=True, exist_ok=True)
    pool = read_split(path("pool", args.experiment))
    generator, _, _ = load_gan(path("gan", args.experiment), CPU)
    train = TrainConfig.of(**exp["classifier"])
    stop = AsalConfig.of(**exp["asal"])
    full = dataclasses.replace(stop, tolerance=0.0)
    n_codes = stop.batch_size or exp["al"]["new"]
    curves, rows = [], []
    for labels in args.labels:
        for seed in args.seeds:
            idx = np.random.default_rng(seed).choice(len(pool), labels, replace=False)
            model = train_classifier(train, pool.images[idx], pool.labels[idx], pool.n_classes, seed=seed, device=CPU)
            whole, whole_s = timed_ascent(generator, model, full, n_codes, seed)
            early, early_s = timed_ascent(generator, model, stop, n_codes, seed)
            curves += [{"labels": labels, "seed": seed, "step": s, "mean_entropy": h}
                       for s, h in enumerate(whole.history)]
            rows.append({"labels": labels, "seed": seed, "steps": early.steps, "seconds": early_s,
                         "entropy": float(early.entropy_end.mean()), "seconds_all_steps": whole_s,
                         "entropy_all_steps": float(whole.entropy_end.mean()),
                         "min_entropy_all_steps": float(whole.entropy_end.min())})
            print(rows[-1], flush=True)
    curve, table = pd.DataFrame(curves), pd.DataFrame(rows)
    curve.to_csv(out / "curves.csv", index=False, float_format="%.5f")
    table.to_csv(out / "early_stop.csv", index=False, float_format="%.4f")
    (out / "early_stop.md").write_text(
        f"{args.experiment}: {n_codes} codes, at most {stop.steps} steps, lr {stop.lr}, tolerance {stop.tolerance}, "
        f"patience {stop.patience}; log K = {np.log(pool.n_classes):.4f}\n\n" + markdown(table, ".4f") + "\n")
    plot(curve, out / "curves.png", f"{args.experiment}: ASAL's ascent, {n_codes} codes", np.log(pool.n_classes))
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return table


def plot(curve: pd.DataFrame, out_png: Path, title: str, top: float) -> None:
    """Mean entropy of the codes per step, one line per (labels, seed), coloured by labels; the ceiling log K."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(6.4, 4), layout="constrained")
    sns.lineplot(curve, x="step", y="mean_entropy", hue="labels", units="seed", estimator=None, lw=1,
                 palette="viridis", ax=ax)
    ax.axhline(top, color="grey", ls="--", lw=0.8, label="log K (the maximum)")
    ax.set(xlabel="Adam step", ylabel="mean entropy of the codes (nats)", title=title)
    ax.legend(title="labelled samples", fontsize=8)
    fig.savefig(out_png, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    main()

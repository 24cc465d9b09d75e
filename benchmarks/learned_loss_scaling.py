"""Selection seconds against pool size for Learning Loss and ASAL for it (the paper's Table 2 question, issue 22).

On the large-pool preset's own files (``make scale``: the 16M-image pool grown from MNIST, its GAN, its
raw-pixel PCA and IVF index), with a CNN and its loss-prediction module trained on 1,000 seeded pool
samples (300 steps, the mnist10 classifier):

- ``asal-ll-raw`` selects ``--new`` samples from the whole 16M pool through the strategy the runs use (the
  ascent on the predicted loss, the synthetic images' projection, the index search and matching), on the
  pool read from disk; ``--repeats`` selections, each its own cycle's seed; the median and its parts.
- ``learning-loss`` scores the first N unlabelled rows of the same pool with the module, for each N of
  ``--scan-sizes`` (the scan is its selection; the top-n after it takes milliseconds), timed once each. Beyond
  the largest N the seconds are a linear fit through the measured points, and those rows say
  ``extrapolated``: a scan of all 16M would take a quarter of an hour here, and its cost per image is flat.

One thread by default (``--threads``), as a workflow job on this machine runs. Written to ``--out``.

    python benchmarks/learned_loss_scaling.py --root /work/scale --out docs/strategies/learned_loss_scaling.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asal.data import read_split
from asal.device import set_threads
from asal.models.classifiers import train_classifier
from asal.settings import LearningLossConfig, RunSettings, TrainConfig
from asal.strategies.base import SelectionContext, load_strategy
from asal.strategies.learning_loss import predicted_losses

CPU = torch.device("cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=".", help="the checkout whose data/, models/, features/ hold the preset's files")
    parser.add_argument("--exp", default="mnist16m")
    parser.add_argument("--index", default="auto", help="the index's kind in its file name")
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scan-sizes", type=int, nargs="+", default=[50_000, 200_000, 1_000_000])
    parser.add_argument("--extrapolate-to", type=int, nargs="+", default=[4_000_000, 16_000_000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="docs/strategies/learned_loss_scaling.csv")
    args = parser.parse_args()
    set_threads(args.threads)
    root = Path(args.root)
    pool = read_split(root / f"data/{args.exp}/pool.h5", in_memory=False)
    n_pool = len(pool)
    rng = np.random.default_rng(0)
    labelled = np.sort(rng.choice(n_pool, 1000, replace=False))
    started = time.perf_counter()
    model = train_classifier(TrainConfig.of(model="cnn", steps=300), pool.images[labelled],
                             np.asarray(pool.labels[labelled]), pool.n_classes, seed=0, device=CPU,
                             loss_prediction=LearningLossConfig.of())
    print(f"trained the CNN and its loss module on 1,000 samples in {time.perf_counter() - started:.1f} s", flush=True)
    rows = []

    settings = RunSettings.of({"classifier": {"model": "cnn"}}, strategy="asal-ll-raw")
    files = {"gan": str(root / f"models/{args.exp}/gan.pt"), "pca": str(root / f"features/{args.exp}/raw_pca.h5"),
             "index": str(root / f"features/{args.exp}/raw_{args.index}.index")}
    strategy = load_strategy("asal-ll-raw", settings=settings, device=CPU, files=files)
    for repeat in range(args.repeats):
        ctx = SelectionContext(pool, labelled, model, CPU, np.random.default_rng(repeat), cycle=repeat)
        t0 = time.perf_counter()
        selection = strategy.select(ctx, args.new)
        seconds = time.perf_counter() - t0
        rows.append({"strategy": "asal-ll-raw", "pool_size": n_pool, "repeat": repeat, "seconds": seconds,
                     **{k: selection.stats[k] for k in ("generate_seconds", "features_seconds", "search_seconds",
                                                         "ascent_steps")}, "extrapolated": False})
        print(f"asal-ll-raw at {n_pool:,}: {seconds:.2f} s ({selection.stats['generate_seconds']:.2f} s ascent)", flush=True)

    ctx = SelectionContext(pool, labelled, model, CPU, np.random.default_rng(0))
    unlabelled = np.setdiff1d(np.arange(max(args.scan_sizes) + len(labelled)), labelled)
    for size in args.scan_sizes:
        t0 = time.perf_counter()
        scores = predicted_losses(ctx, unlabelled[:size])
        np.argsort(-scores, kind="stable")[: args.new]
        seconds = time.perf_counter() - t0
        rows.append({"strategy": "learning-loss", "pool_size": size, "repeat": 0, "seconds": seconds,
                     "extrapolated": False})
        print(f"learning-loss scan of {size:,}: {seconds:.1f} s ({size / seconds:,.0f} images/s)", flush=True)
    measured = pd.DataFrame([r for r in rows if r["strategy"] == "learning-loss"])
    slope, intercept = np.polyfit(measured["pool_size"], measured["seconds"], 1)
    for size in args.extrapolate_to:
        rows.append({"strategy": "learning-loss", "pool_size": size, "repeat": 0, "seconds": slope * size + intercept,
                     "extrapolated": True})
    frame = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False, float_format="%.4f")
    print(frame.groupby(["strategy", "pool_size", "extrapolated"])["seconds"].median().to_string())


if __name__ == "__main__":
    main()

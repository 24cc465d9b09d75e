"""Does training with Learning Loss's module change the classifier? The same random labelled sets, the same
seeds, the CNN trained with and without the module; test accuracy of each (issue 22's diagnosis).

With ``--sizes`` labelled samples drawn at random from the pool (seeded per seed), the mnist10 classifier is
trained once alone and once with the module (the ``learning_loss`` defaults, or ``--detach-after``), and
both are scored on the test set. The difference is what the module's gradient does to the classifier, apart
from anything a selection does. For the module, also how well it ranks the 10,000 test images by their true
loss (Spearman's rank correlation of predicted and true cross-entropy), and by the classifier's entropy.

    python benchmarks/learning_loss_training.py --out docs/strategies/learning_loss_training.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from asal.config import experiment, load_config
from asal.data import read_split
from asal.device import set_threads
from asal.images import to_float
from asal.models.classifiers import predict_proba, train_classifier
from asal.scores import entropy
from asal.settings import LearningLossConfig, TrainConfig

CPU = torch.device("cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--experiment", default="mnist10")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--detach-after", type=float, nargs="+", default=[0.6])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="docs/strategies/learning_loss_training.csv")
    args = parser.parse_args()
    set_threads(args.threads)
    exp = experiment(load_config(args.config), args.experiment)
    cfg = TrainConfig.from_validated(exp["classifier"])
    pool, test = read_split(f"data/{args.experiment}/pool.h5"), read_split(f"data/{args.experiment}/test.h5")
    rows = []
    for size in args.sizes:
        for seed in args.seeds:
            idx = np.sort(np.random.default_rng(seed).choice(len(pool), size, replace=False))
            x, y = pool.images[idx], np.asarray(pool.labels[idx])
            variants = {"classifier alone": None, **{f"with the module, cut at {d:g}": LearningLossConfig.of(
                detach_after=d) for d in args.detach_after}}
            for name, ll in variants.items():
                model = train_classifier(cfg, x, y, pool.n_classes, seed=seed, device=CPU, loss_prediction=ll)
                probs = predict_proba(model, test.images, device=CPU)
                accuracy = float((probs.argmax(1) == test.labels).mean())
                row = {"n_labelled": size, "seed": seed, "training": name, "test_accuracy": accuracy}
                if ll is not None:  # does the module rank the test images by their loss?
                    with torch.inference_mode():
                        predicted = np.concatenate([model.predict_loss(to_float(test.images[i : i + 1000], CPU)).numpy()
                                                    for i in range(0, len(test), 1000)])
                    true_loss = -np.log(np.clip(probs[np.arange(len(test)), test.labels], 1e-12, 1.0))
                    row["spearman_test"] = float(spearmanr(predicted, true_loss).statistic)
                    row["spearman_entropy"] = float(spearmanr(predicted, entropy(probs)).statistic)
                rows.append(row)
                print(f"{size} labelled, seed {seed}, {name}: {100 * accuracy:.2f} %", flush=True)
    frame = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False, float_format="%.4f")
    print(frame.pivot_table(index="n_labelled", columns="training", values="test_accuracy", aggfunc="mean").mul(100)
          .round(2).to_string())
    print(frame.dropna(subset=["spearman_test"]).pivot_table(index="n_labelled", columns="training",
                                                             values=["spearman_test", "spearman_entropy"]).round(3).to_string())


if __name__ == "__main__":
    main()

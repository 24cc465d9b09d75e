"""Replay one cycle of a finished run to show what a generative strategy selected (the paper's Fig. 2).

A run's CSVs keep indices, not images. Since every cycle is a pure function of (seed, cycle, labelled set),
the cycle's classifier is retrained from the run's indices file and the strategy asked again with the same
seeds; on the run's kind of device it picks exactly what the run picked (checked: a replay that differs,
say on another device, is logged and labelled in the figure), and this time its synthetic images are kept.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .annotators import SKIP
from .data import ImageStore
from .errors import BadData
from .files import atomic_path
from .loop import cycle_context
from .models.classifiers import predict_proba
from .runfiles import INDEX_COLUMNS
from .scores import entropy, from_logits
from .seeds import sub_seed
from .settings import INFERENCE_BATCH, RunSettings
from .strategies.base import Strategy

log = logging.getLogger(__name__)


def replay_selection(pool: ImageStore, strategy: Strategy, indices_csv: str | Path, *, settings: RunSettings, seed: int,
                     cycle: int, device: torch.device, n_show: int = 10, batch_size: int = INFERENCE_BATCH) -> dict[str, np.ndarray]:
    """Re-run ``cycle``'s selection of the run behind ``indices_csv``; return its first ``n_show`` picks.

    Returns arrays: ``synthetic`` (n, C, H, W) float32, ``matched`` (n, C, H, W) uint8, ``pool_idx`` (n,),
    ``labels`` (n,) class names, ``entropy`` and ``matched_entropy`` (n,) under the cycle's classifier, and
    ``strategy``, ``seed``, ``cycle``, ``replay_matches`` (whether the replay picked what the run picked).
    """
    indices = pd.read_csv(indices_csv)
    if not set(INDEX_COLUMNS) <= set(indices.columns):
        raise BadData(f"{indices_csv}: not an indices CSV written by run-al")
    before = indices[indices.cycle <= cycle]
    answered = before[before.label != SKIP]
    recorded = indices.loc[indices.cycle == cycle + 1, "pool_idx"].to_numpy(np.int64)
    if len(recorded) == 0:
        raise BadData(f"{indices_csv}: cycle {cycle} selected nothing (the run has cycles 0-{indices.cycle.max() - 1})")
    learner = strategy.learner(settings, pool, None, device)  # trained, not evaluated: no test set
    model = learner.fit(answered.pool_idx.to_numpy(np.int64), answered.label.to_numpy(np.int64), {},
                        seed=sub_seed(seed, cycle, 0))
    ctx = cycle_context(pool, before.pool_idx.to_numpy(np.int64), model, seed=seed, cycle=cycle, device=device,
                        batch_size=batch_size)
    selection = strategy.select(ctx, len(recorded))
    if selection.generated is None:
        raise BadData(f"strategy {strategy.name!r} makes no synthetic samples to show")
    same = bool(np.array_equal(selection.pool_idx, recorded))
    if not same:
        log.warning("%s: the replay of cycle %d picked other samples than the run (another device or library "
                    "version?); showing the replay's", indices_csv, cycle)
    idx, synthetic = selection.pool_idx[:n_show], selection.generated[:n_show]
    with torch.no_grad():
        synthetic_entropy = from_logits("entropy", model(synthetic.to(device))).cpu().numpy()
    return {
        "strategy": np.array(strategy.name), "seed": np.array(seed), "cycle": np.array(cycle),
        "replay_matches": np.array(same),
        "synthetic": synthetic.numpy().astype(np.float32), "matched": pool.images[idx], "pool_idx": idx,
        "labels": np.array([str(pool.class_names[c]) for c in pool.labels[idx]]),
        "entropy": synthetic_entropy, "matched_entropy": entropy(predict_proba(model, pool.images[idx], device=device)),
    }


def save_examples(examples: dict[str, np.ndarray], out: str | Path) -> None:
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **examples)


def load_examples(path: str | Path) -> dict:
    """Read :func:`save_examples` output (no pickles: every array is numeric or fixed-width text)."""
    with np.load(path, allow_pickle=False) as data:
        row = {key: data[key] for key in data.files}
    row["strategy"], row["replay_matches"] = str(row["strategy"]), bool(row["replay_matches"])
    return row

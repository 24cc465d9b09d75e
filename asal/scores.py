"""Uncertainty scores of a classifier's prediction, higher = more uncertain: one definition of each, shared by
the pool scans, ASAL's ascent, the run files' entropy columns and the figures.

Each maps probabilities (B, K) to scores (B,) and is differentiable in torch, so ASAL's ascent on the latent
codes maximises exactly the score a pool strategy ranks by (``margin`` and ``least-confidence`` are the
paper's future work for ASAL). :func:`from_logits` scores logits, as the ascent needs; :func:`entropy` is the
numpy form for probabilities already on the host.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

Score = Callable[[torch.Tensor], torch.Tensor]  # probabilities (B, K) -> (B,)


def entropy_score(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats, 0 log 0 = 0: maximal (log K) for the uniform prediction."""
    return -(probs * probs.clamp_min(1e-12).log()).sum(1)


def margin_score(probs: torch.Tensor) -> torch.Tensor:
    """Minus the gap between the two most probable classes: maximal (0) when they tie."""
    top2 = probs.topk(2, dim=1).values
    return top2[:, 1] - top2[:, 0]


def least_confidence_score(probs: torch.Tensor) -> torch.Tensor:
    """One minus the top probability: maximal (1 - 1/K) for the uniform prediction."""
    return 1.0 - probs.max(1).values


#: Name -> score; the names are the registry's ASAL variants (:data:`asal.strategies.SCORE_NAMES`).
SCORES: dict[str, Score] = {
    "entropy": entropy_score,
    "margin": margin_score,
    "least-confidence": least_confidence_score,
}


def ceiling(name: str, n_classes: int) -> float:
    """The largest value score ``name`` takes for ``n_classes`` classes (at the uniform prediction, or a tie)."""
    return {"entropy": math.log(n_classes), "margin": 0.0, "least-confidence": 1.0 - 1.0 / n_classes}[name]


def from_logits(name: str, logits: torch.Tensor) -> torch.Tensor:
    """Score ``name`` of softmax(logits): (B, K) -> (B,), differentiable. The entropy is computed from
    log_softmax, whose gradient stays exact for confident predictions (the probability form clamps p at 1e-12
    and would cut the gradient there, which is what ASAL's ascent starts from)."""
    if name == "entropy":
        log_p = F.log_softmax(logits, dim=1)
        return -(log_p.exp() * log_p).sum(1)
    return SCORES[name](F.softmax(logits, dim=1))


def score_numpy(score: Score, probs: np.ndarray) -> np.ndarray:
    """The score of probabilities held in numpy: (B, K) float32 -> (B,) float32, in memory numpy owns.

    Not a view of torch's result: a pool scan keeps one per batch, and 62,500 small torch allocations kept
    between the batches' large transient ones fragmented the heap until a scan of 16M images held 21 GB
    (measured: 2.8 KB per image scanned as views, nothing as copies)."""
    return score(torch.from_numpy(np.ascontiguousarray(probs, dtype=np.float32))).numpy().copy()


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats per row of ``probs`` (N, K) held in numpy -> (N,) float32; 0 log 0 = 0.

    Numpy's own arithmetic, not :func:`entropy_score` through torch: the runs' ``selected_entropy`` columns
    were recorded with it, and torch rounds the last bit differently."""
    p = np.clip(probs, 1e-12, 1.0)
    return -(probs * np.log(p)).sum(axis=1).astype(np.float32)

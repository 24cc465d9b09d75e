"""The strategy interface: what every selection method gets, and the work they all share.

A strategy turns the current state of an AL run into ``n`` distinct unlabelled pool indices. The base class
owns the without-replacement bookkeeping and the batching over the pool; a subclass implements one method.
Indices named ``pool_idx`` are rows of the pool store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ..data import ImageStore
from ..errors import PoolExhausted
from ..models.classifiers import predict_proba


@dataclass
class SelectionContext:
    """Everything a strategy may use in one cycle.

    ``labelled``: (N_pool,) bool mask over ``pool_idx``. ``model``: the classifier trained this cycle.
    ``rng``: the only source of randomness a strategy may use (seeded per run and cycle).
    """

    pool: ImageStore
    labelled: np.ndarray
    model: nn.Module
    device: torch.device
    rng: np.random.Generator
    batch_size: int = 1024

    def unlabelled_idx(self) -> np.ndarray:
        """Sorted ``pool_idx`` (M,) int64 of the samples not labelled yet."""
        return np.flatnonzero(~self.labelled)

    def iter_proba(self, pool_idx: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(pool_idx (B,), probabilities (B, K))`` batch by batch, never the whole pool at once."""
        for start in range(0, len(pool_idx), self.batch_size):
            idx = pool_idx[start : start + self.batch_size]
            yield idx, predict_proba(self.model, self.pool.images[idx], device=self.device, batch_size=self.batch_size)


class Strategy(ABC):
    """Base class: validates the request, delegates the choice, checks the answer."""

    name: str = ""

    def select(self, ctx: SelectionContext, n: int) -> np.ndarray:
        """Return ``n`` distinct unlabelled ``pool_idx`` (n,) int64, in the order the strategy ranks them."""
        candidates = ctx.unlabelled_idx()
        if n > len(candidates):
            raise PoolExhausted(
                f"strategy {self.name!r} was asked for {n} samples but only {len(candidates)} of the "
                f"{len(ctx.labelled)} pool samples in {ctx.pool.path} are unlabelled"
            )
        chosen = np.asarray(self.choose(ctx, candidates, n), dtype=np.int64)
        if len(chosen) != n or len(np.unique(chosen)) != n or ctx.labelled[chosen].any():
            raise RuntimeError(f"strategy {self.name!r} broke its contract: {n} distinct unlabelled indices expected")
        return chosen

    @abstractmethod
    def choose(self, ctx: SelectionContext, candidates: np.ndarray, n: int) -> np.ndarray:
        """Pick ``n`` of ``candidates`` (sorted unlabelled ``pool_idx``); ``n <= len(candidates)``."""


class ScoreStrategy(Strategy):
    """Score every candidate from the classifier's probabilities and take the ``n`` highest scores.

    This is the linear-cost pool scan that ASAL avoids. Ties go to the lower ``pool_idx``.
    """

    @abstractmethod
    def score(self, probs: np.ndarray) -> np.ndarray:
        """(B, K) probabilities -> (B,) scores, higher = more informative."""

    def choose(self, ctx: SelectionContext, candidates: np.ndarray, n: int) -> np.ndarray:
        scores = np.concatenate([self.score(p) for _, p in ctx.iter_proba(candidates)])  # (M,) float32
        best = np.argsort(-scores, kind="stable")[:n]
        return candidates[best]

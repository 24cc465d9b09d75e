"""The strategy interface: what every selection method gets, and the work they all share.

A strategy turns the current state of an AL run into ``n`` distinct unlabelled pool indices. The base class
owns the request and answer checks and the batching over the pool; a subclass implements one method.
Indices named ``pool_idx`` are rows of the pool store.

Nothing here costs time or memory in proportion to the pool unless a strategy asks for it: the labelled
set travels as its (L,) indices, and only :meth:`SelectionContext.unlabelled_idx` (the pool scan of
max-entropy and friends) builds an array over the whole pool. ASAL never calls it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ..data import ImageStore
from ..errors import PoolExhausted
from ..models.classifiers import predict_proba, to_float


@dataclass
class SelectionContext:
    """Everything a strategy may use in one cycle.

    ``labelled_idx``: (L,) int64 ``pool_idx`` labelled so far. ``model``: the classifier trained this cycle.
    ``rng``: the only source of randomness a strategy may use (seeded per run and cycle).
    """

    pool: ImageStore
    labelled_idx: np.ndarray
    model: nn.Module
    device: torch.device
    rng: np.random.Generator
    batch_size: int = 1024

    def __post_init__(self):
        self.labelled_idx = np.asarray(self.labelled_idx, dtype=np.int64)

    @property
    def n_unlabelled(self) -> int:
        return len(self.pool) - len(self.labelled_idx)

    def labelled_set(self) -> set[int]:
        """The labelled ``pool_idx`` as a set: O(L) to build, O(1) per membership test."""
        return set(self.labelled_idx.tolist())

    def unlabelled_idx(self) -> np.ndarray:
        """Sorted ``pool_idx`` (N - L,) int64 of the samples not labelled yet: a scan of the whole pool."""
        mask = np.ones(len(self.pool), dtype=bool)
        mask[self.labelled_idx] = False
        return np.flatnonzero(mask)

    def iter_features(self, pool_idx: np.ndarray | None = None) -> Iterator[tuple[np.ndarray | slice, torch.Tensor]]:
        """Yield ``(rows, penultimate features (B, d) on the device)``, ``batch_size`` pool images per pass.

        ``pool_idx``: sorted (M,) ``pool_idx`` to embed, or None for the whole pool (read by slices, which an
        HDF5 dataset reads fastest). ``rows`` indexes the pool for the batch. Computed without autograd.
        """
        n = len(self.pool) if pool_idx is None else len(pool_idx)
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            rows = slice(start, stop) if pool_idx is None else pool_idx[start:stop]
            with torch.no_grad():
                feats = self.model.features(to_float(self.pool.images[rows], self.device))
            yield rows, feats

    def iter_proba(self, pool_idx: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(pool_idx (B,), probabilities (B, K))`` batch by batch, never the whole pool at once."""
        for start in range(0, len(pool_idx), self.batch_size):
            idx = pool_idx[start : start + self.batch_size]
            yield idx, predict_proba(self.model, self.pool.images[idx], device=self.device, batch_size=self.batch_size)


@dataclass
class Selection:
    """A strategy's answer: ``pool_idx`` (n,) int64 in the strategy's rank order, per-cycle diagnostics
    (column name -> float) for the run's CSV, e.g. ASAL's synthetic entropy and timing split, and for
    generative strategies the synthetic images (n, C, H, W) in [0, 1] behind each ``pool_idx``.

    A strategy that annotates synthetic images instead of pool samples (GAAL) returns no ``pool_idx`` but
    ``new_images`` (n, C, H, W) uint8 with their annotations ``new_labels`` (n,) int64: they join the
    training set as they are.
    """

    pool_idx: np.ndarray
    stats: dict[str, float] = field(default_factory=dict)
    synthetic: torch.Tensor | None = None
    new_images: np.ndarray | None = None
    new_labels: np.ndarray | None = None

    @property
    def n_annotated(self) -> int:
        return len(self.pool_idx) + (0 if self.new_labels is None else len(self.new_labels))


class Strategy(ABC):
    """Base class: validates the request, delegates the choice, checks the answer.

    ``identity()`` names what besides the config decides the strategy's choices (model files and their
    provenance); a run's checkpoint is only resumed under the same identity. ``labels_pool`` is False for a
    strategy that annotates synthetic images (it needs no unlabelled pool samples); ``whole_pool`` is True for
    the fully supervised bound, which the loop trains once on every pool label and never asks to select.
    """

    name: str = ""
    labels_pool: bool = True
    whole_pool: bool = False

    @classmethod
    def load(cls, *, settings: dict, device: torch.device) -> Strategy:
        """Build the strategy for a run from its config slice; pool strategies need no files."""
        return cls()

    def identity(self) -> dict:
        return {}

    def select(self, ctx: SelectionContext, n: int) -> Selection:
        """Return ``n`` distinct unlabelled ``pool_idx`` (or ``n`` annotated synthetic images) and diagnostics."""
        if self.labels_pool and n > ctx.n_unlabelled:
            raise PoolExhausted(
                f"strategy {self.name!r} was asked for {n} samples but only {ctx.n_unlabelled} of the "
                f"{len(ctx.pool)} pool samples in {ctx.pool.path} are unlabelled"
            )
        selection = self.choose(ctx, n)
        if not isinstance(selection, Selection):
            selection = Selection(selection)
        chosen = selection.pool_idx = np.asarray(selection.pool_idx, dtype=np.int64)
        if (selection.n_annotated != n or len(np.unique(chosen)) != len(chosen)
                or np.isin(chosen, ctx.labelled_idx).any()):
            raise RuntimeError(f"strategy {self.name!r} broke its contract: {n} distinct unlabelled indices "
                               "or annotated synthetic images expected")
        return selection

    @abstractmethod
    def choose(self, ctx: SelectionContext, n: int) -> np.ndarray | Selection:
        """Pick ``n`` unlabelled ``pool_idx`` (``n`` never exceeds the unlabelled count)."""


class ScoreStrategy(Strategy):
    """Score every unlabelled sample from the classifier's probabilities and take the ``n`` highest scores.

    This is the linear-cost pool scan that ASAL avoids. Ties go to the lower ``pool_idx``.
    """

    @abstractmethod
    def score(self, probs: np.ndarray) -> np.ndarray:
        """(B, K) probabilities -> (B,) scores, higher = more informative."""

    def choose(self, ctx: SelectionContext, n: int) -> np.ndarray:
        candidates = ctx.unlabelled_idx()
        scores = np.concatenate([self.score(p) for _, p in ctx.iter_proba(candidates)])  # (M,) float32
        best = np.argsort(-scores, kind="stable")[:n]
        return candidates[best]

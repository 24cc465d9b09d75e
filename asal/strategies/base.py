"""The strategy interface: what every selection method gets, and the work they all share.

A strategy turns the current state of an AL run into ``n`` queries for the annotator: unlabelled pool rows,
or synthetic items (GAAL's images, ADBA's lines). The base class owns the request and answer checks and the
batching over the pool; a subclass implements ``choose`` and, where it differs from the classifier and the
run's own annotator, says what the loop trains (``learner``) and who answers its synthetic items
(``annotator``). Indices named ``pool_idx`` are rows of the pool store.

Nothing here costs time or memory in proportion to the pool unless a strategy asks for it: the labelled
set travels as its (L,) indices, and only :meth:`SelectionContext.unlabelled_idx` (the pool scan of
max-entropy and friends) builds an array over the whole pool. ASAL never calls it.
"""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ..annotators import Annotator
from ..data import ImageStore
from ..errors import BadConfig, PoolExhausted
from ..images import to_float
from ..learners import ClassifierLearner, Learner
from ..models.classifiers import predict_proba
from ..paths import flag
from ..progress import Progress
from ..config import check_sections
from ..settings import INFERENCE_BATCH, RunSettings
from . import spec as registry_entry

log = logging.getLogger(__name__)


@dataclass
class SelectionContext:
    """Everything a strategy may use in one cycle.

    ``labelled_idx``: (L,) int64 ``pool_idx`` taken so far (labelled, skipped by the annotator, or a line's
    centre): never offered again. ``model``: what the learner trained this cycle (the classifier, or ADBA's
    latent classifier). ``rng``: the only source of randomness a strategy may use (seeded per run and cycle).
    """

    pool: ImageStore
    labelled_idx: np.ndarray
    model: nn.Module
    device: torch.device
    rng: np.random.Generator
    batch_size: int = INFERENCE_BATCH
    cycle: int = 0

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

    def score_rows(self, pool_idx: np.ndarray, score, what: str = "scored") -> np.ndarray:
        """``score`` (float images (B, C, H, W) on the device -> (B,) tensor) of pool rows ``pool_idx`` (M,),
        ``batch_size`` rows read per pass, without autograd: (M,) float32. A pool scan's loop, with progress."""
        progress = Progress(log, f"cycle {self.cycle}: {what}", len(pool_idx))
        out = np.empty(len(pool_idx), np.float32)
        with torch.inference_mode():
            for start in range(0, len(pool_idx), self.batch_size):
                idx = pool_idx[start : start + self.batch_size]
                out[start : start + len(idx)] = score(to_float(self.pool.images[idx], self.device)).float().cpu().numpy()
                progress.step(len(idx))
        return out

    def iter_proba(self, pool_idx: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(pool_idx (B,), probabilities (B, K))`` batch by batch, never the whole pool at once; a long
        scan logs its progress."""
        progress = Progress(log, f"cycle {self.cycle}: scored", len(pool_idx))
        for start in range(0, len(pool_idx), self.batch_size):
            idx = pool_idx[start : start + self.batch_size]
            yield idx, predict_proba(self.model, self.pool.images[idx], device=self.device, batch_size=self.batch_size)
            progress.step(len(idx))


@dataclass
class Selection:
    """A strategy's answer, what the annotator is asked next.

    ``pool_idx`` (n,) int64: pool rows to annotate, in the strategy's rank order. ``stats``: per-cycle
    diagnostics (column name -> float) for the run's CSV. ``generated``: the synthetic images (n, C, H, W)
    float in [0, 1] a generative strategy made, for figures (ASAL's: the one behind each ``pool_idx``). ``queries``: synthetic items to annotate
    instead of pool rows (GAAL's images, ADBA's lines), arrays with one row per item. ``anchors``: pool rows the
    queries were built around (ADBA's line centres): taken, never offered again, but not annotated.
    """

    pool_idx: np.ndarray
    stats: dict[str, float] = field(default_factory=dict)
    generated: torch.Tensor | None = None
    queries: dict[str, np.ndarray] | None = None
    anchors: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def n_queries(self) -> int:
        return 0 if not self.queries else len(next(iter(self.queries.values())))

    @property
    def n_annotated(self) -> int:
        return len(self.pool_idx) + self.n_queries

    def taken(self) -> np.ndarray:
        """Every pool row this selection uses up: (n + anchors,) int64."""
        return np.concatenate([np.asarray(self.pool_idx, np.int64), np.asarray(self.anchors, np.int64)])


class Strategy(ABC):
    """Base class: validates the request, delegates the choice, checks the answer.

    ``load`` builds a strategy from its registry entry (``spec``: :class:`asal.strategies.StrategySpec`), the
    run's :class:`~asal.settings.RunSettings` and the files the entry declares. ``identity()`` names what
    besides the config decides the strategy's choices (model files and their provenance); a run's checkpoint
    is only resumed under the same identity. ``labels_pool`` is False for a strategy whose queries are
    synthetic (it needs no unlabelled pool rows to annotate); ``whole_pool`` (the registry entry's) is True for
    the fully supervised bound, which the loop trains once on every pool label and never asks to select.
    """

    name: str = ""
    spec = None  # its registry entry, set by load_strategy (or named)
    labels_pool: bool = True

    @property
    def whole_pool(self) -> bool:
        return self.spec.whole_pool

    @classmethod
    def load(cls, spec, settings: RunSettings, device: torch.device, files: dict[str, str]) -> Strategy:
        """Build the strategy for a run; pool strategies need no settings and no files."""
        return cls()

    def identity(self) -> dict:
        return {}

    def learner(self, settings: RunSettings, pool: ImageStore, test: ImageStore, device: torch.device) -> Learner:
        """What the loop trains every cycle: the classifier of the ``classifier`` section."""
        return ClassifierLearner(settings.classifier, pool, test, device)

    def annotator(self, pool_annotator: Annotator) -> Annotator:
        """Who answers this strategy's queries: the run's own annotator of pool rows (the dataset's labels in
        simulation, a person in the labelling page); a strategy with synthetic queries adds its own."""
        return pool_annotator

    def named(self, name: str) -> Strategy:
        """This strategy as the registered strategy ``name`` (its registry entry says what it needs)."""
        self.name, self.spec = name, registry_entry(name)
        return self

    def output_extras(self, pool: ImageStore, settings: RunSettings) -> dict[str, np.ndarray]:
        """Arrays its extra outputs hold besides the annotated synthetic items (e.g. ADBA's line offsets)."""
        return {}

    def select(self, ctx: SelectionContext, n: int) -> Selection:
        """Return ``n`` queries (distinct unlabelled ``pool_idx``, or synthetic items) and diagnostics."""
        if self.labels_pool and n > ctx.n_unlabelled:
            raise PoolExhausted(
                f"strategy {self.name!r} was asked for {n} samples but only {ctx.n_unlabelled} of the "
                f"{len(ctx.pool)} pool samples in {ctx.pool.path} are unlabelled"
            )
        selection = self.choose(ctx, n)
        if not isinstance(selection, Selection):
            selection = Selection(selection)
        selection.pool_idx = np.asarray(selection.pool_idx, dtype=np.int64)
        taken = selection.taken()
        if (selection.n_annotated != n or len(np.unique(taken)) != len(taken)
                or np.isin(taken, ctx.labelled_idx).any()):
            raise RuntimeError(f"strategy {self.name!r} broke its contract: {n} distinct unlabelled indices "
                               "or synthetic queries expected")
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


def load_strategy(name: str, *, settings: RunSettings | None = None, device: torch.device | None = None,
                  files: dict[str, str | None] | None = None) -> Strategy:
    """The registered strategy ``name``, built from ``settings`` and the ``files`` (kind -> path) its
    registry entry declares: a declared file missing, or a file given that it does not read, is an error."""
    entry = registry_entry(name)
    given = {kind: path for kind, path in (files or {}).items() if path is not None}
    missing = [kind for kind in entry.required_files() if kind not in given]
    unused = sorted(set(given) - set(entry.files))
    if missing:
        raise BadConfig(f"strategy {name!r} needs {file_flags(missing)}")
    if unused:
        raise BadConfig(f"strategy {name!r} does not read {file_flags(unused)}")
    settings = settings or RunSettings.of(strategy=name)
    check_sections(dataclasses.asdict(settings), [name], f"strategy {name!r}")  # e.g. bald without dropout
    return entry.implementation().load(entry, settings, device or torch.device("cpu"), given).named(name)


def file_flags(kinds) -> str:
    """File kinds as the ``asal`` command's flags: ``--gan, --features-model``."""
    return ", ".join(flag(kind) for kind in kinds)

"""Random sampling (the lower bound) and the uncertainty scans of the pool: max-entropy (what ASAL
approximates), margin and least-confidence, each scoring every unlabelled pool sample every cycle."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..data import ImageStore
from ..learners import ClassifierLearner, Learner
from ..scores import SCORES, score_numpy
from ..settings import RunSettings
from .base import ScoreStrategy, SelectionContext, Strategy


class RandomSampling(Strategy):
    """Uniform without replacement; costs nothing and ignores the classifier."""


    def choose(self, ctx: SelectionContext, n: int) -> np.ndarray:
        return ctx.rng.choice(ctx.unlabelled_idx(), size=n, replace=False)


class UncertaintySampling(ScoreStrategy):
    """The ``n`` pool samples with the highest uncertainty score (:data:`asal.scores.SCORES`)."""

    score_name = "entropy"

    def score(self, probs: np.ndarray) -> np.ndarray:
        return score_numpy(SCORES[self.score_name], probs)


class MaxEntropySampling(UncertaintySampling):
    """The samples whose predicted class distribution has the highest Shannon entropy."""

    score_name = "entropy"


class MarginSampling(UncertaintySampling):
    """The samples with the smallest gap between their two most probable classes (Scheffer et al. 2001)."""

    score_name = "margin"


class LeastConfidenceSampling(UncertaintySampling):
    """The samples whose most probable class has the lowest probability (Lewis & Gale 1994)."""

    score_name = "least-confidence"


class FullySupervised(Strategy):
    """The fully supervised upper bound: the loop trains once on every pool label (``full.epochs`` passes, or
    ``full.steps`` steps) and evaluates; there is nothing to select."""

    def learner(self, settings: RunSettings, pool: ImageStore, test: ImageStore, device: torch.device) -> Learner:
        """The classifier, trained for :meth:`asal.settings.FullConfig.train_steps` on the whole pool."""
        steps = settings.full.train_steps(settings.classifier, len(pool))
        return ClassifierLearner(dataclasses.replace(settings.classifier, steps=steps), pool, test, device)

    def choose(self, ctx: SelectionContext, n: int) -> np.ndarray:
        raise RuntimeError("'full' labels the whole pool at once; the loop never asks it to select")

"""The two reference strategies: random sampling (lower bound) and max-entropy sampling (what ASAL approximates)."""

from __future__ import annotations

import numpy as np

from ..models.classifiers import entropy
from .base import ScoreStrategy, SelectionContext, Strategy


class RandomSampling(Strategy):
    """Uniform without replacement; costs nothing and ignores the classifier."""

    name = "random"

    def choose(self, ctx: SelectionContext, n: int) -> np.ndarray:
        return ctx.rng.choice(ctx.unlabelled_idx(), size=n, replace=False)


class MaxEntropySampling(ScoreStrategy):
    """The ``n`` pool samples whose predicted class distribution has the highest Shannon entropy."""

    name = "max-entropy"

    def score(self, probs: np.ndarray) -> np.ndarray:
        return entropy(probs)

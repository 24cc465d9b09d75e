"""Learning Loss (Yoo & Kweon, CVPR 2019): the unlabelled pool samples whose loss a learned module predicts
highest.

The classifier trains with a small module on its block feature maps (:class:`asal.models.classifiers.
LossPredictingCNN`) that learns to rank the samples of each mini-batch by their loss; each cycle the module
scores every unlabelled pool sample, a pool scan as costly as max-entropy's (one forward pass through the CNN's
blocks per sample). The paper's Table 2 times it beside ASAL; ``asal-ll-<space>`` is ASAL that maximises the
same predicted loss (:mod:`asal.strategies.adversarial`), at a cost that does not grow with the pool.
"""

from __future__ import annotations

import numpy as np

from ..learners import ClassifierLearner
from ..settings import LearningLossConfig
from .base import SelectionContext, Strategy


def predicted_losses(ctx: SelectionContext, pool_idx: np.ndarray) -> np.ndarray:
    """The cycle's model's predicted loss (M,) float32 of pool rows ``pool_idx`` (M,), batch by batch."""
    return ctx.score_rows(pool_idx, ctx.model.predict_loss, "predicted the loss of")


class LearningLossSampling(Strategy):
    """The ``n`` unlabelled samples of highest predicted loss; ties to the lower ``pool_idx``."""

    def __init__(self, cfg: LearningLossConfig):
        self.cfg = cfg

    @classmethod
    def load(cls, spec, settings, device, files) -> LearningLossSampling:
        return cls(settings.learning_loss)

    def learner(self, settings, pool, test, device) -> ClassifierLearner:
        """The classifier with its loss-prediction module (``learning_loss`` section)."""
        return ClassifierLearner(settings.classifier, pool, test, device, loss_prediction=self.cfg)

    def choose(self, ctx: SelectionContext, n: int) -> np.ndarray:
        candidates = ctx.unlabelled_idx()
        best = np.argsort(-predicted_losses(ctx, candidates), kind="stable")[:n]
        return candidates[best]

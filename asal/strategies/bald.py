"""BALD with Monte Carlo dropout (Gal, Islam & Ghahramani, ICML 2017): the samples whose prediction the
model's weights disagree on most.

The score is the mutual information between the prediction and the weights, estimated from T stochastic
forward passes with dropout on: H[mean_t p_t] - mean_t H[p_t]. It is high where the dropout masks give
confident but different predictions, and zero where every mask gives the same prediction, however uncertain
(which is what sets it apart from max-entropy). The classifiers' only dropout sits before the output layer,
so each batch's penultimate features are computed once and only the output layer is sampled T times.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..scores import entropy_score
from ..settings import RunSettings
from .base import SelectionContext, Strategy


@contextmanager
def seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global generator of the CPU (and of ``device`` when it is a GPU) for the block, then
    restore the caller's state: dropout draws its masks there and takes no generator of its own."""
    gpus = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus):
        torch.default_generator.manual_seed(seed)
        for gpu in gpus:
            with torch.cuda.device(gpu):
                torch.cuda.manual_seed(seed)
        yield


@contextmanager
def mc_dropout(dropout: nn.Module) -> Iterator[None]:
    """Dropout ``dropout`` (and nothing else of the model) in train mode for the block, restored after."""
    was_training = dropout.training
    dropout.train()
    try:
        yield
    finally:
        dropout.train(was_training)


def mutual_information(probs: torch.Tensor) -> torch.Tensor:
    """BALD's score from T sampled predictions (T, B, K): entropy of the mean minus mean entropy, (B,) nats."""
    t, b, k = probs.shape
    return entropy_score(probs.mean(0)) - entropy_score(probs.reshape(t * b, k)).view(t, b).mean(0)


#: Candidates whose dropout masks are drawn in one pass: fixed, so the choice does not depend on the batch
#: size the features are computed in.
MASK_BLOCK = 1024


class BaldSampling(Strategy):
    """The ``n`` unlabelled samples of highest BALD score, over ``samples`` dropout masks per sample.

    Needs a classifier trained with dropout (``classifier.dropout`` above 0). The masks come from a seed drawn
    from ``ctx.rng``, so the same rng gives the same choice, and the caller's torch RNG state is left as it
    was. Ties go to the lower ``pool_idx``.
    """

    @classmethod
    def load(cls, spec, settings: RunSettings, device: torch.device, files: dict[str, str]) -> BaldSampling:
        return cls(settings.bald.samples)

    def __init__(self, samples: int):
        self.samples = samples

    def choose(self, ctx: SelectionContext, n: int) -> np.ndarray:
        dropout = ctx.model.dropout
        candidates = ctx.unlabelled_idx()
        scores = []
        with seeded_global_rng(int(ctx.rng.integers(2**63)), ctx.device):
            for start in range(0, len(candidates), MASK_BLOCK):
                block = candidates[start : start + MASK_BLOCK]
                feats = torch.cat([f for _, f in ctx.iter_features(block)])  # (B, d), dropout off
                with torch.no_grad(), mc_dropout(dropout):
                    logits = ctx.model.classify(feats.repeat(self.samples, 1))  # (T*B, K), a mask per row
                probs = F.softmax(logits, dim=1).view(self.samples, len(feats), -1)
                scores.append(mutual_information(probs).cpu().numpy())
        best = np.argsort(-np.concatenate(scores), kind="stable")[:n]
        return candidates[best]

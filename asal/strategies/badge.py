"""BADGE (Ash et al., ICLR 2020): uncertain and diverse samples, by k-means++ seeding on gradient embeddings.

A sample's gradient embedding is the gradient of the cross-entropy loss at the label the model predicts,
with respect to the output layer's weight (K, d): (p - onehot(argmax p)) f^T, with p the predicted
probabilities (K,) and f the penultimate features (d,). Its norm grows with the model's uncertainty and its
direction follows the sample's features, so k-means++ seeding (D^2 sampling) on it picks samples that are
both uncertain and unlike each other.

The embedding is kept in this factored form, residual (K,) and features (d,), never as the (K*d,) outer
product: the Frobenius inner product of two outer products is (g_i . g_j)(f_i . f_j), so every distance
k-means++ needs costs K + d instead of K*d per sample. That matters for the linear classifier, whose
features are the raw pixels (d = C*H*W).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .base import SelectionContext, Strategy


def loss_gradient_logits(model: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """d cross-entropy / d logits at the predicted label, p - onehot(argmax p): features (B, d) -> (B, K).

    Its outer product with ``features`` is the gradient w.r.t. the output layer's weight (K, d), row-major
    as ``weight.grad``. The model is used as given (eval mode: no dropout).
    """
    probs = F.softmax(model.classify(features), dim=1)
    return probs - F.one_hot(probs.argmax(1), probs.shape[1]).to(probs.dtype)


def kmeans_pp_seeding(residuals: np.ndarray, features: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding on the embeddings e_i = residuals[i] outer features[i]: ``n`` distinct rows in pick order.

    ``residuals`` (M, K), ``features`` (M, d). The first pick is the embedding of largest norm (as in the
    paper's code; ties to the lower row); each next one is drawn with ``rng`` with probability proportional
    to its squared distance to the nearest pick (D^2 sampling); when every row left coincides with a pick,
    uniformly among them. Holds (M,) arrays besides the inputs, and costs one (M, K + d) pass per pick.
    """
    residuals = np.asarray(residuals, dtype=np.float32)
    features = np.asarray(features, dtype=np.float32)
    sq_norms = np.einsum("ij,ij->i", residuals, residuals, dtype=np.float64) * np.einsum(
        "ij,ij->i", features, features, dtype=np.float64)  # ||e_i||^2 = ||g_i||^2 ||f_i||^2, (M,)
    taken = np.zeros(len(residuals), dtype=bool)
    nearest = np.full(len(residuals), np.inf)  # squared distance to the nearest pick, (M,)
    picks = []
    for _ in range(n):
        if not picks:
            pick = int(np.argmax(sq_norms))
        elif (total := nearest.sum()) > 0:
            pick = int(rng.choice(len(nearest), p=nearest / total))
        else:
            pick = int(rng.choice(np.flatnonzero(~taken)))
        picks.append(pick)
        taken[pick] = True
        inner = (residuals @ residuals[pick]).astype(np.float64) * (features @ features[pick])  # <e_i, e_pick>
        nearest = np.minimum(nearest, np.maximum(sq_norms - 2.0 * inner + sq_norms[pick], 0.0))
        nearest[taken] = 0.0  # a pick is at distance 0 from itself, whatever rounding says
    return np.array(picks, dtype=np.int64)


class BadgeSampling(Strategy):
    """BADGE over the unlabelled pool with the current classifier; no settings.

    Costs one forward pass over the unlabelled pool, (M, K + d) floats of memory, and one pass over them per
    pick.
    """

    def choose(self, ctx: SelectionContext, n: int) -> np.ndarray:
        candidates = ctx.unlabelled_idx()
        residuals, features = [], []
        for _, feats in ctx.iter_features(candidates):
            with torch.no_grad():
                residuals.append(loss_gradient_logits(ctx.model, feats).cpu().numpy())
            features.append(feats.cpu().numpy())
        return candidates[kmeans_pp_seeding(np.concatenate(residuals), np.concatenate(features), n, ctx.rng)]

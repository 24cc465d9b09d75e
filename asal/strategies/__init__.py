"""Selection strategies behind one interface; ``STRATEGIES`` lists the names a config may use.

:func:`load_strategy` builds any of them from the run's settings and the files it needs (none for the pool
baselines; the GAN, feature model, PCA and index for ASAL), so the AL loop never asks which kind it runs.
"""

from __future__ import annotations

import torch

from ..errors import BadConfig
from .adversarial import DIAGNOSTICS, SPACE_OF, AdversarialSampling, load_asal
from .base import ScoreStrategy, Selection, SelectionContext, Strategy
from .baselines import MaxEntropySampling, RandomSampling

POOL_STRATEGIES = {cls.name: cls for cls in (RandomSampling, MaxEntropySampling)}
STRATEGIES = (*POOL_STRATEGIES, *SPACE_OF)


def load_strategy(name: str, *, settings: dict | None = None, device: torch.device | None = None,
                  **files: str | None) -> Strategy:
    """The strategy ``name``; ``files`` (gan, features_model, pca, index) are paths for those that need them."""
    if name in POOL_STRATEGIES:
        return POOL_STRATEGIES[name]()
    if name in SPACE_OF:
        return load_asal(name, settings=settings or {}, device=device or torch.device("cpu"), **files)
    raise BadConfig(f"strategy {name!r} is not registered (known: {', '.join(STRATEGIES)})")


__all__ = ["STRATEGIES", "DIAGNOSTICS", "load_strategy", "Strategy", "ScoreStrategy", "Selection",
           "SelectionContext", "AdversarialSampling"]

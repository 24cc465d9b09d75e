"""Selection strategies behind one interface, and the registry that names them.

:data:`REGISTRY` maps every strategy name a config may use to a loader ``(settings=, device=, **files)`` that
builds it from the run's config slice and the files it needs (none for the pool strategies; the GAN,
feature model, PCA and index for ASAL; the GAN and oracle for GAAL). :func:`load_strategy` calls it, so the AL
loop never asks which kind it runs. Adding a strategy: one module with a :class:`Strategy` subclass, one entry
here (and its name in the schema's list); the contract tests in ``tests/test_strategies.py`` cover every
registered name. ``adba`` is the one method outside the registry: it trains its classifier in the GAN's
latent space, so it has its own loop (:mod:`asal.adba`).
"""

from __future__ import annotations

import inspect
from functools import partial
from typing import Callable

import torch

from ..errors import BadConfig
from .adversarial import ASAL_STRATEGIES, DIAGNOSTICS as ASAL_DIAGNOSTICS, AdversarialSampling, load_asal
from .badge import BadgeSampling
from .bald import BaldSampling
from .base import ScoreStrategy, Selection, SelectionContext, Strategy
from .baselines import FullySupervised, LeastConfidenceSampling, MarginSampling, MaxEntropySampling, RandomSampling
from .coreset import CoreSetSampling
from .gaal import load_gaal

POOL_STRATEGIES = (RandomSampling, MaxEntropySampling, MarginSampling, LeastConfidenceSampling, BaldSampling,
                   BadgeSampling, CoreSetSampling, FullySupervised)


def _asal_loader(name: str) -> Callable[..., AdversarialSampling]:
    space, score = ASAL_STRATEGIES[name]
    loader = partial(load_asal, name)
    loader.__doc__ = f"ASAL: maximise the {score} of h(G(z)); label the nearest pool sample in {space} features."
    return loader


REGISTRY: dict[str, Callable[..., Strategy]] = {
    **{cls.name: cls.load for cls in POOL_STRATEGIES},
    **{name: _asal_loader(name) for name in ASAL_STRATEGIES},
    "gaal": load_gaal,
}
STRATEGIES = tuple(REGISTRY)

# Per-cycle diagnostics a strategy may report, as columns of the run's CSV (NaN for the others).
DIAGNOSTICS = (*ASAL_DIAGNOSTICS, "oracle_confidence", "coreset_radius")


def load_strategy(name: str, *, settings: dict | None = None, device: torch.device | None = None,
                  **files: str | None) -> Strategy:
    """The strategy ``name``; ``files`` (gan, features_model, pca, index, oracle, oracle_metrics) are paths
    for those that need them. A file given to a strategy that does not read it is an error, not ignored."""
    try:
        loader = REGISTRY[name]
    except KeyError:
        raise BadConfig(f"strategy {name!r} is not registered (known: {', '.join(STRATEGIES)})") from None
    given = {key: value for key, value in files.items() if value is not None}
    accepted = inspect.signature(loader).parameters
    unused = sorted(set(given) - set(accepted))
    if unused:
        raise BadConfig(f"strategy {name!r} does not read {', '.join('--' + u.replace('_', '-') for u in unused)}")
    return loader(settings=settings or {}, device=device or torch.device("cpu"), **given)


def describe(name: str) -> str:
    """The first line of what a registered strategy does (its class's or loader's docstring)."""
    loader = REGISTRY[name]
    doc = (getattr(loader, "__self__", None) or loader).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


__all__ = ["STRATEGIES", "REGISTRY", "describe", "DIAGNOSTICS", "load_strategy", "Strategy", "ScoreStrategy",
           "Selection", "SelectionContext", "AdversarialSampling"]

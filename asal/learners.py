"""What the AL loop trains each cycle and how it is measured: a learner fits a model on the annotated data,
reports its test accuracy, and the mean entropy of what a selection asks about.

Every strategy but ADBA trains the experiment's classifier on images (:class:`ClassifierLearner`); ADBA
trains a logistic regression on latent codes (:class:`asal.strategies.adba.LatentLearner`). The loop calls
only this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np
import torch

from .data import ImageStore
from .models.classifiers import predict_proba, train_classifier
from .scores import entropy
from .settings import LearningLossConfig, TrainConfig

if TYPE_CHECKING:
    from .strategies.base import Selection


class Learner(ABC):
    """Trains a fresh model per cycle on the annotated pool rows and synthetic items."""

    @abstractmethod
    def fit(self, pool_idx: np.ndarray, labels: np.ndarray, synthetic: dict[str, np.ndarray], *, seed: int):
        """A model trained from scratch on pool rows ``pool_idx`` (L,) with ``labels`` (L,), in labelling order,
        then the annotated ``synthetic`` items (arrays with a row each; empty before any)."""

    @abstractmethod
    def accuracy(self, model) -> float:
        """Test accuracy of ``model``."""

    @abstractmethod
    def selected_entropy(self, model, selection: Selection) -> float:
        """Mean entropy of ``model``'s prediction on what ``selection`` asks about."""

    def identity(self) -> dict:
        return {}

    def predict_proba(self, model, pool_idx: np.ndarray) -> np.ndarray | None:
        """Class probabilities (n, K) of ``model`` for pool rows ``pool_idx`` (n,), the suggestions a person is
        shown; None where the model does not classify pool images (ADBA's latent classifier)."""
        return None


class ClassifierLearner(Learner):
    """The experiment's classifier (``classifier`` section) on images: pool rows, then annotated synthetic
    images (``synthetic["images"]`` (S, C, H, W) uint8 with ``synthetic["labels"]`` (S,), GAAL's). With
    ``loss_prediction`` (Learning Loss and ASAL for it) the CNN trains with its loss-prediction module."""

    def __init__(self, cfg: TrainConfig, pool: ImageStore, test: ImageStore, device: torch.device,
                 loss_prediction: LearningLossConfig | None = None):
        self.cfg, self.pool, self.test, self.device = cfg, pool, test, device
        self.loss_prediction = loss_prediction

    def fit(self, pool_idx: np.ndarray, labels: np.ndarray, synthetic: dict[str, np.ndarray], *, seed: int):
        images = self.pool.images[pool_idx]
        if synthetic and len(synthetic["labels"]):
            images, labels = np.concatenate([images, synthetic["images"]]), np.concatenate([labels, synthetic["labels"]])
        return train_classifier(self.cfg, images, labels, self.pool.n_classes, seed=seed, device=self.device,
                                loss_prediction=self.loss_prediction)

    def accuracy(self, model) -> float:
        """NaN without a test set (an unlabelled source labelled by a person, with no test set given)."""
        if len(self.test) == 0:
            return float("nan")
        return float((predict_proba(model, self.test.images, device=self.device).argmax(1) == self.test.labels).mean())

    def predict_proba(self, model, pool_idx: np.ndarray) -> np.ndarray:
        return predict_proba(model, self.pool.images[np.asarray(pool_idx)], device=self.device)

    def selected_entropy(self, model, selection: Selection) -> float:
        shown = self.pool.images[selection.pool_idx]
        if selection.queries and "images" in selection.queries:
            shown = np.concatenate([shown, selection.queries["images"]])
        return float(entropy(predict_proba(model, shown, device=self.device)).mean())

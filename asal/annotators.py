"""Who answers a query: the annotators of an AL run, behind one interface that the loop does not look inside.

The loop hands every :class:`~asal.strategies.base.Selection` to one :class:`Annotator` and records its
:class:`Answer`. In simulation the dataset's own labels answer for a person (:class:`DatasetLabels`);
strategies whose queries are synthetic add their own annotator for those (:class:`OracleLabels` for GAAL's
images, ADBA's line annotator), joined to the run's by :class:`Panel`. A person in the labelling page is one
more annotator of pool rows (:class:`asal.labelling.Person`). An annotator may answer :data:`SKIP` for a pool row (a person cannot tell):
the loop records it, never offers it again and does not count it against the budget.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .data import ImageStore
from .errors import BadData
from .models.classifiers import predict_proba

if TYPE_CHECKING:
    from .learners import Learner
    from .strategies.base import Selection

#: The label of a pool row its annotator did not answer.
SKIP = -1


@dataclass
class Answer:
    """An annotator's answer to one selection.

    ``labels``: (len(selection.pool_idx),) int64, the class id of each asked pool row, or :data:`SKIP`.
    ``synthetic``: the annotated synthetic items to keep and train on (the queries with their labels), arrays
    with one row per item, or None. ``stats``: per-cycle diagnostics for the run's CSV, e.g. the oracle's
    confidence.
    """

    labels: np.ndarray
    synthetic: dict[str, np.ndarray] | None = None
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def n_annotated(self) -> int:
        """Answered pool rows plus annotated synthetic items: what counts against the budget."""
        n_synthetic = 0 if not self.synthetic else len(next(iter(self.synthetic.values())))
        return int((np.asarray(self.labels) != SKIP).sum()) + n_synthetic


class Annotator(ABC):
    """Answers a selection. ``identity()`` names what decides its answers, for the run's checkpoint."""

    @abstractmethod
    def annotate(self, selection: Selection) -> Answer:
        """Label ``selection.pool_idx`` (and its synthetic ``queries``, where this annotator takes them)."""

    def identity(self) -> dict:
        return {}

    def trained(self, model, learner: Learner, row: dict) -> None:
        """What the annotator may know before the cycle's selection reaches it: the model the cycle trained and
        its row (the labelled count; the loop fills in the test accuracy while the annotator answers). A
        person's page shows the model's suggestions; a simulation ignores it."""


class DatasetLabels(Annotator):
    """Simulation: the pool store's own labels answer every pool row; synthetic queries are not its to answer."""

    def __init__(self, pool: ImageStore):
        self.pool = pool

    def annotate(self, selection: Selection) -> Answer:
        if selection.queries:
            raise BadData("the dataset's labels cannot annotate synthetic queries: the strategy needs an annotator")
        labels = self.pool.labels[selection.pool_idx].astype(np.int64)
        if (labels < 0).any():
            raise BadData(f"{self.pool.path} has no labels for the rows asked (an unlabelled pool): a simulation "
                          "cannot answer them; label them in the browser with `asal label`")
        return Answer(labels)


class Panel(Annotator):
    """Two annotators as one: ``pool`` answers the pool rows of a selection, ``synthetic`` its queries."""

    def __init__(self, pool: Annotator, synthetic: Annotator):
        self.pool, self.synthetic = pool, synthetic

    def annotate(self, selection: Selection) -> Answer:
        from .strategies.base import Selection

        rows = self.pool.annotate(Selection(selection.pool_idx))
        if not selection.queries:
            return rows
        made = self.synthetic.annotate(Selection(np.zeros(0, np.int64), queries=selection.queries))
        return Answer(rows.labels, made.synthetic, {**rows.stats, **made.stats})

    def identity(self) -> dict:
        return {"pool": self.pool.identity(), "synthetic": self.synthetic.identity()}

    def trained(self, model, learner: Learner, row: dict) -> None:
        self.pool.trained(model, learner, row)


class OracleLabels(Annotator):
    """The oracle classifier labels synthetic images (``queries["images"]``, (S, C, H, W) uint8) with its most
    probable class. Reports ``oracle_confidence``, its mean top probability: how ambiguous the images are to it.

    The oracle never tires or hesitates: its labels of ambiguous images are confident guesses, not a person's
    judgement; its test accuracy (in ``provenance``) bounds how far they can be trusted.
    """

    def __init__(self, oracle: nn.Module, device: torch.device, provenance: dict):
        self.oracle, self.device, self.provenance = oracle, device, provenance

    def annotate(self, selection: Selection) -> Answer:
        probs = predict_proba(self.oracle, selection.queries["images"], device=self.device)
        return Answer(np.zeros(0, np.int64), {**selection.queries, "labels": probs.argmax(1).astype(np.int64)},
                      {"oracle_confidence": float(probs.max(1).mean())})

    def identity(self) -> dict:
        return self.provenance

"""A strategy added from outside the package, as a contributor would add one: this module and one registry
entry (here the entry point ``toy-nearest = toy_nearest:SPEC`` of the group ``asal.strategies``).

``toy-nearest`` labels the unlabelled pool samples nearest the labelled set's centroid in the raw space's
PCA projection, found with that space's prebuilt index: it declares the PCA and the index of ``raw``.
"""

from __future__ import annotations

import numpy as np

from asal.matching import load_index, read_projected
from asal.strategies import StrategySpec
from asal.strategies.base import SelectionContext, Strategy


class NearestToLabelled(Strategy):
    def __init__(self, points: np.ndarray, index):
        self.points, self.index = points, index  # (N, d) projected pool, its index

    @classmethod
    def load(cls, spec, settings, device, files):
        return cls(read_projected(files["pca"]), load_index(files["index"]))

    def choose(self, ctx: SelectionContext, n: int) -> np.ndarray:
        centre = self.points[ctx.labelled_idx].mean(0, keepdims=True).astype(np.float32)  # (1, d)
        _, idx = self.index.search(centre, min(len(ctx.labelled_idx) + n, len(self.index)))
        taken = ctx.labelled_set()
        return np.array([i for i in idx[0].tolist() if i >= 0 and i not in taken][:n], np.int64)


SPEC = StrategySpec("toy-nearest", "The unlabelled pool samples nearest the labelled set's centroid (a toy).",
                    "toy_nearest:NearestToLabelled", files=("pca", "index"), space="raw")

"""GAAL (Zhu & Bento 2017): generate uncertain images and have them annotated; they join the training set.

The synthesis is ASAL's ascent (the same generator, the same maximised score); the difference is that GAAL
asks for labels of the synthetic images themselves instead of matching them to pool samples. The paper's
annotators were people; here the annotator is the experiment's oracle (:class:`asal.annotators.OracleLabels`),
a classifier trained on every pool label, whose test accuracy bounds how far its labels of synthetic images
can be trusted. The images are quantised to uint8 before they are shown, which is what a person would see and
what the classifier trains on.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..annotators import Annotator, OracleLabels, Panel
from ..errors import BadData
from ..images import quantise
from ..models import module_digest
from ..settings import AsalConfig, RunSettings
from .adversarial import load_generator, uncertainty_ascent
from .base import Selection, SelectionContext, Strategy


class GenerativeAnnotation(Strategy):
    """GAAL: ``n`` synthetic images per cycle, maximising the classifier's entropy, to be annotated.

    Diagnostics: the synthetic entropy before and after the ascent (as ASAL's) and the time of the ascent; the
    oracle adds its mean top probability on the images (``oracle_confidence``).
    """

    labels_pool = False

    def __init__(self, generator: nn.Module, oracle: OracleLabels, cfg: AsalConfig, provenance: dict):
        self.generator, self.oracle, self.cfg, self.provenance = generator, oracle, cfg, provenance
        self.generator.requires_grad_(False)

    @classmethod
    def load(cls, spec, settings: RunSettings, device: torch.device, files: dict[str, str]) -> GenerativeAnnotation:
        """From its files: the GAN, the oracle and the oracle's metrics (its test accuracy is recorded)."""
        from ..quality import load_oracle

        generator, provenance = load_generator(files, device)
        try:
            accuracy = float(json.loads(Path(files["oracle_metrics"]).read_text())["test_accuracy"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BadData(f"{files['oracle_metrics']}: not an oracle metrics file with a test_accuracy ({exc!r})") from None
        oracle = load_oracle(files["oracle"], device)
        oracle_provenance = {"oracle": files["oracle"], "oracle_weights": module_digest(oracle),
                             "oracle_test_accuracy": accuracy}
        return cls(generator, OracleLabels(oracle, device, oracle_provenance), settings.asal, provenance)

    def identity(self) -> dict:
        return self.provenance

    def annotator(self, pool_annotator: Annotator) -> Annotator:
        return Panel(pool_annotator, self.oracle)

    def choose(self, ctx: SelectionContext, n: int) -> Selection:
        t0 = time.perf_counter()
        ascent = uncertainty_ascent(self.generator, ctx.model, n, steps=self.cfg.steps, lr=self.cfg.lr,
                                    seed=int(ctx.rng.integers(2**63)), device=ctx.device,
                                    tolerance=self.cfg.tolerance, patience=self.cfg.patience)
        queries = {"images": quantise(ascent.images), "cycle": np.full(n, ctx.cycle + 1, np.int64)}
        return Selection(np.zeros(0, np.int64), generated=ascent.images, queries=queries, stats={
            "synthetic_entropy_start": float(ascent.entropy_start.mean()),
            "synthetic_entropy": float(ascent.entropy_end.mean()), "ascent_steps": float(ascent.steps),
            "generate_seconds": time.perf_counter() - t0,
        })

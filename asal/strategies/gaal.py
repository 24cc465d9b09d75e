"""GAAL (Zhu & Bento 2017): generate uncertain images and have them annotated; they join the training set.

The synthesis is ASAL's ascent (the same generator, the same maximised score); the difference is that GAAL
labels the synthetic images themselves instead of matching them to pool samples. The paper's annotators were
people; here the annotator is the experiment's oracle, a classifier trained on every pool label, whose test
accuracy bounds how far its labels of synthetic images can be trusted. The images are quantised to uint8
before the oracle sees them, which is what a person would be shown and what the classifier trains on.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import BadConfig, BadData
from ..models import module_digest
from ..models.classifiers import predict_proba
from .adversarial import AsalConfig, uncertainty_ascent
from .base import Selection, SelectionContext, Strategy


def quantise(images: torch.Tensor) -> np.ndarray:
    """Float images (B, C, H, W) in [0, 1] -> uint8, as the pool stores them."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


class GenerativeAnnotation(Strategy):
    """GAAL: ``n`` synthetic images per cycle, maximising the classifier's entropy, labelled by the oracle.

    Diagnostics: the synthetic entropy before and after the ascent (as ASAL's), the oracle's mean top
    probability on the annotated images (``oracle_confidence``: how ambiguous they are to the annotator) and
    the time of the ascent (the oracle's is the rest of the selection time).
    """

    name = "gaal"
    labels_pool = False

    def __init__(self, generator: nn.Module, oracle: nn.Module, cfg: AsalConfig, provenance: dict):
        self.generator, self.oracle, self.cfg, self.provenance = generator, oracle, cfg, provenance
        self.generator.requires_grad_(False)

    def identity(self) -> dict:
        return self.provenance

    def choose(self, ctx: SelectionContext, n: int) -> Selection:
        t0 = time.perf_counter()
        ascent = uncertainty_ascent(self.generator, ctx.model, n, steps=self.cfg.steps, lr=self.cfg.lr,
                                    seed=int(ctx.rng.integers(2**63)), device=ctx.device)
        generated = time.perf_counter()
        images = quantise(ascent.images)
        probs = predict_proba(self.oracle, images, device=ctx.device)
        return Selection(np.zeros(0, np.int64), synthetic=ascent.images, new_images=images,
                         new_labels=probs.argmax(1).astype(np.int64), stats={
                             "synthetic_entropy_start": float(ascent.entropy_start.mean()),
                             "synthetic_entropy": float(ascent.entropy_end.mean()),
                             "oracle_confidence": float(probs.max(1).mean()),
                             "generate_seconds": generated - t0,
                         })


def load_gaal(*, settings: dict, device: torch.device, gan: str | None = None, oracle: str | None = None,
              oracle_metrics: str | None = None) -> GenerativeAnnotation:
    """GAAL: the ascent's synthetic images themselves, labelled by the oracle, join the training set.

    Built from its files: the GAN, the oracle and the oracle's metrics (its test accuracy is recorded).
    """
    from ..files import config_hash
    from ..quality import load_oracle
    from ..wgan import load_gan

    missing = [flag for flag, value in (("--gan", gan), ("--oracle", oracle), ("--oracle-metrics", oracle_metrics))
               if value is None]
    if missing:
        raise BadConfig(f"strategy 'gaal' needs {', '.join(missing)}")
    generator, _, saved = load_gan(gan, device)
    try:
        accuracy = float(json.loads(Path(oracle_metrics).read_text())["test_accuracy"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadData(f"{oracle_metrics}: not an oracle metrics file with a test_accuracy ({exc!r})") from None
    annotator = load_oracle(oracle, device)
    provenance = {"gan": str(gan), "gan_config_hash": config_hash(saved["config"]), "gan_iterations": saved["iterations"],
                  "oracle": str(oracle), "oracle_weights": module_digest(annotator), "oracle_test_accuracy": accuracy}
    return GenerativeAnnotation(generator, annotator, AsalConfig(**settings.get("asal", {})), provenance)

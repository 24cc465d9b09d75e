"""Is the generator useful? An oracle classifier trained on the whole labelled pool labels generated samples.

The oracle is the experiment's judge of generated images (and, later, GAAL's annotator): a CNN trained on
every pool label. Its test accuracy says how far to trust its verdicts.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from .data import ImageStore
from .files import atomic_path
from .models.classifiers import build_classifier, predict_proba, train_classifier
from .settings import TrainConfig
from .wgan import load_gan, sample

log = logging.getLogger(__name__)
CONFIDENT = 0.9


def train_oracle(cfg: TrainConfig, pool: ImageStore, test: ImageStore, out: str | Path, metrics_json: str | Path,
                 *, device: torch.device, seed: int = 0) -> dict:
    model = train_classifier(cfg, pool.images, pool.labels, pool.n_classes, seed=seed, device=device)
    accuracy = float((predict_proba(model, test.images, device=device).argmax(1) == test.labels).mean())
    with atomic_path(out) as tmp:
        torch.save({"config": cfg.__dict__, "image_shape": list(pool.image_shape), "n_classes": pool.n_classes,
                    "model": model.state_dict()}, tmp)
    metrics = {"test_accuracy": accuracy, "trained_on": len(pool)}
    with atomic_path(metrics_json) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    log.info("oracle test accuracy %.4f", accuracy)
    return metrics


def load_oracle(path: str | Path, device: torch.device) -> torch.nn.Module:
    saved = torch.load(path, map_location=device, weights_only=True)
    model = build_classifier(TrainConfig(**saved["config"]), saved["image_shape"], saved["n_classes"])
    model.load_state_dict(saved["model"])
    return model.to(device).eval()


def gan_quality(gan_path: str | Path, oracle_path: str | Path, oracle_metrics: str | Path, out: str | Path, *,
                class_names: list, device: torch.device, n_samples: int = 10_000, seed: int = 0) -> dict:
    """Label ``n_samples`` generated images with the oracle; write class fractions and confidence."""
    generator, _, saved = load_gan(gan_path, device)
    oracle = load_oracle(oracle_path, device)
    images = (sample(generator, n_samples, seed=seed) * 255).round().to(torch.uint8).cpu().numpy()
    probs = predict_proba(oracle, images, device=device)
    fractions = np.bincount(probs.argmax(1), minlength=len(class_names)) / n_samples
    metrics = {
        "n_samples": n_samples,
        "class_fractions": {str(name): float(f) for name, f in zip(class_names, fractions)},
        "min_class_fraction": float(fractions.min()),
        "max_class_fraction": float(fractions.max()),
        "confident_fraction": float((probs.max(1) > CONFIDENT).mean()),
        "confidence_threshold": CONFIDENT,
        "oracle_test_accuracy": json.loads(Path(oracle_metrics).read_text())["test_accuracy"],
        "gan_iterations": saved["iterations"],
    }
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    log.info("GAN quality: %s", metrics)
    return metrics

"""Is the generator useful? An oracle classifier trained on the whole labelled pool labels generated samples.

The oracle is the experiment's judge of generated images (and, later, GAAL's annotator): a CNN trained on
every pool label. Its test accuracy says how far to trust its verdicts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch

from .data import ImageStore, training_sample
from .files import atomic_path
from .images import quantise
from .models.classifiers import build_classifier, predict_proba, train_classifier
from .settings import GanQualityConfig, TrainConfig
from .wgan import load_gan, sample

log = logging.getLogger(__name__)
CONFIDENT = 0.9


def train_oracle(cfg: TrainConfig, pool: ImageStore, test: ImageStore, out: str | Path, metrics_json: str | Path,
                 *, device: torch.device, seed: int = 0) -> dict:
    """Train the oracle on the pool's labels (a seeded sample of a pool too large for memory,
    :func:`asal.data.training_sample`); write it and its test accuracy."""
    pool = training_sample(pool, seed)
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


def sample_figures(generator: torch.nn.Module, oracle: torch.nn.Module, class_names: list, *, n_samples: int,
                   seed: int, device: torch.device) -> dict:
    """The oracle's view of ``n_samples`` generated images (quantised as the pool stores images): the share of
    each class among its labels and the share it labels with confidence above :data:`CONFIDENT`."""
    images = quantise(sample(generator, n_samples, seed=seed))
    probs = predict_proba(oracle, images, device=device)
    fractions = np.bincount(probs.argmax(1), minlength=len(class_names)) / n_samples
    return {
        "n_samples": n_samples,
        "class_fractions": {str(name): float(f) for name, f in zip(class_names, fractions)},
        "min_class_fraction": float(fractions.min()),
        "max_class_fraction": float(fractions.max()),
        "confident_fraction": float((probs.max(1) > CONFIDENT).mean()),
        "confidence_threshold": CONFIDENT,
    }


def judge(figures: dict, pool_shares: dict[str, float], cfg: GanQualityConfig) -> list[str]:
    """What fails the quality gate ``cfg``: one line per figure out of bounds, naming it; empty if it passes.

    ``figures``: :func:`sample_figures`'s; ``pool_shares``: each class's share of the pool, by the same names.
    """
    failures = []
    for name, share in figures["class_fractions"].items():
        ratio = share / pool_shares[name] if pool_shares[name] else float("inf")
        if not cfg.class_share_min <= ratio <= cfg.class_share_max:
            failures.append(f"class {name}: {100 * share:.1f} % of the samples against {100 * pool_shares[name]:.1f} % "
                            f"of the pool ({ratio:.2f}x, allowed {cfg.class_share_min}x to {cfg.class_share_max}x)")
    if figures["confident_fraction"] <= cfg.confident_min:
        failures.append(f"only {100 * figures['confident_fraction']:.1f} % of the samples labelled with confidence "
                        f"above {figures['confidence_threshold']} (more than {100 * cfg.confident_min:.0f} % needed)")
    return failures


def gan_quality(gan_path: str | Path, oracle_path: str | Path, oracle_metrics: str | Path, out: str | Path, *,
                pool: ImageStore, cfg: GanQualityConfig, device: torch.device, seed: int = 0) -> dict:
    """Label ``cfg.samples`` generated images with the oracle; write class fractions, confidence and the
    verdict of the quality gate (``passed``, ``failures``), which runs that use the GAN warn with."""
    generator, _, saved = load_gan(gan_path, device)
    figures = sample_figures(generator, load_oracle(oracle_path, device), pool.class_names, n_samples=cfg.samples,
                             seed=seed, device=device)
    counts = np.bincount(pool.labels, minlength=pool.n_classes)
    shares = {str(name): float(c / len(pool)) for name, c in zip(pool.class_names, counts)}
    failures = judge(figures, shares, cfg)
    metrics = {
        **figures, "pool_class_shares": shares, "passed": not failures, "failures": failures,
        "thresholds": dataclasses.asdict(cfg),
        "oracle_test_accuracy": json.loads(Path(oracle_metrics).read_text())["test_accuracy"],
        "gan_iterations": saved["iterations"],
    }
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    log.info("GAN quality: %s", metrics)
    if failures:
        log.warning("THE GAN FAILS ITS QUALITY GATE (gan_quality): %s", "; ".join(failures))
    return metrics


def warn_if_failed(gan_metrics: str | Path | None) -> list[str]:
    """Warn, loudly, when the GAN behind a run failed its quality gate; return the failures (empty if it
    passed or there is no verdict). Read for the warning only: nothing a run computes depends on it."""
    if gan_metrics is None or not Path(gan_metrics).exists():
        return []
    failures = json.loads(Path(gan_metrics).read_text()).get("failures", [])
    if failures:
        log.warning("THE GAN FAILED ITS QUALITY GATE (%s), so what this run generates is suspect: %s",
                    gan_metrics, "; ".join(failures))
    return failures

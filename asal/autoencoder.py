"""Training the feature autoencoder on the pool, and its test-set reconstruction error.

A pool no one has labelled may come without a test set (source ``unlabelled``; its test store has 0 rows):
the error is then measured on a seeded sample of the pool held out of the training, and the metrics say so.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torchvision.utils import save_image

from .data import ImageStore, training_sample
from .errors import BadData
from .files import atomic_path
from .images import to_float
from .models.autoencoder import ConvAutoencoder
from .seeds import sub_seed
from .settings import AutoencoderConfig

log = logging.getLogger(__name__)

#: Without a test set, this share of the (training sample of the) pool is held out to measure the autoencoder,
#: at most :data:`HELDOUT_MAX` images, at least one: enough for a stable mean, little taken from training.
HELDOUT_FRACTION = 0.1
HELDOUT_MAX = 1000
#: The key, after the autoencoder's seed, of the held-out sample's seed (:func:`asal.seeds.sub_seed`).
HELDOUT_SEED_KEY = 2


def train_autoencoder(
    cfg: AutoencoderConfig, pool: ImageStore, test: ImageStore, out: str | Path, *, device: torch.device,
    recon_png: str | Path, metrics_json: str | Path, log_every_seconds: float = 30.0,
) -> dict:
    """Minimise the pixel MSE on the pool (a seeded sample of a pool too large for memory,
    :func:`asal.data.training_sample`); write the model, a reconstruction grid and the test MSE.

    An empty ``test`` (0 rows) is replaced by a seeded held-out part of the pool (:func:`split_heldout`),
    which the training does not see: the grid shows it, and the metrics name it ``heldout_mse``,
    ``evaluated_on: pool_heldout``, not ``test_mse``."""
    pool = training_sample(pool, cfg.seed)
    heldout = len(test) == 0
    if heldout:
        empty_test, (pool, test) = test.path, split_heldout(pool, cfg.seed)
        log.info("%s has no images: measuring on %d pool images held out of the training (seeded)", empty_test,
                 len(test))
    torch.manual_seed(cfg.seed)
    model = ConvAutoencoder(pool.image_shape, cfg.code_dim).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    started = last_log = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(len(pool), (cfg.batch_size,), generator=gen).sort().values.numpy()
        x = to_float(pool.images[idx], device)
        loss = F.mse_loss(model(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        now = time.perf_counter()
        if now - last_log >= log_every_seconds or step == cfg.steps:
            rate = step / (now - started)
            log.info("step %d/%d  MSE %.5f  %.1f steps/s  ETA %.0fs", step, cfg.steps, loss.item(), rate, (cfg.steps - step) / rate)
            last_log = now
    model.eval()
    mse = reconstruction_mse(model, test, device)
    if heldout:
        metrics = {"heldout_mse": mse, "evaluated_on": "pool_heldout", "heldout_images": len(test),
                   "steps": cfg.steps, "seconds": time.perf_counter() - started}
    else:
        metrics = {"test_mse": mse, "steps": cfg.steps, "seconds": time.perf_counter() - started}
    with atomic_path(out) as tmp:
        torch.save({"config": asdict(cfg), "image_shape": list(pool.image_shape), "model": model.state_dict(),
                    "pool_hash": pool.config_hash}, tmp)
    with atomic_path(metrics_json) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    with torch.no_grad():
        originals = to_float(test.images[:32], device)
        halves = [half for half in (originals[:16], originals[16:]) if len(half)]  # the model takes no empty batch
        grid = torch.cat([row for half in halves for row in (half, model(half))]).cpu()
    with atomic_path(recon_png) as tmp:
        save_image(grid, tmp, format="png", nrow=16, padding=2, pad_value=1.0)  # rows: test, recon, test, recon
    log.info("autoencoder %s MSE %.5f", "held-out pool" if heldout else "test", mse)
    return metrics


def split_heldout(pool: ImageStore, seed: int) -> tuple[ImageStore, ImageStore]:
    """``(training rows, held-out rows)`` of an in-memory ``pool``: a seeded draw of :data:`HELDOUT_FRACTION` of
    it (at most :data:`HELDOUT_MAX`, at least 1) held out, both in the pool's order."""
    if len(pool) < 2:
        raise BadData(f"{pool.path}: {len(pool)} image(s): the autoencoder needs at least 2 without a test set "
                      "(one to train on, one held out to measure it)")
    n = min(HELDOUT_MAX, max(1, int(HELDOUT_FRACTION * len(pool))))
    held = np.zeros(len(pool), bool)
    held[np.random.default_rng(sub_seed(seed, HELDOUT_SEED_KEY)).choice(len(pool), n, replace=False)] = True
    return tuple(ImageStore(pool.path, pool.images[rows], pool.labels[rows], pool.class_names, pool.config_hash)
                 for rows in (~held, held))


@torch.no_grad()
def reconstruction_mse(model: ConvAutoencoder, store: ImageStore, device: torch.device, batch_size: int = 1000) -> float:
    """Mean squared error per pixel, images in [0, 1], over the whole store."""
    total = 0.0
    for i in range(0, len(store), batch_size):
        x = to_float(store.images[i : i + batch_size], device)
        total += F.mse_loss(model(x), x, reduction="sum").item()
    return total / (len(store) * store.images[0].size)


def load_autoencoder(path: str | Path, device: torch.device) -> tuple[ConvAutoencoder, dict]:
    """The trained model in eval mode, and what was saved with it (config, image shape)."""
    saved = torch.load(path, map_location=device, weights_only=True)
    model = ConvAutoencoder(saved["image_shape"], saved["config"]["code_dim"])
    model.load_state_dict(saved["model"])
    return model.to(device).eval(), saved

"""Training the feature autoencoder on the pool, and its test-set reconstruction error."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch.nn import functional as F
from torchvision.utils import save_image

from .data import ImageStore, training_sample
from .files import atomic_path
from .images import to_float
from .models.autoencoder import ConvAutoencoder
from .settings import AutoencoderConfig

log = logging.getLogger(__name__)


def train_autoencoder(
    cfg: AutoencoderConfig, pool: ImageStore, test: ImageStore, out: str | Path, *, device: torch.device,
    recon_png: str | Path, metrics_json: str | Path, log_every_seconds: float = 30.0,
) -> dict:
    """Minimise the pixel MSE on the pool (a seeded sample of a pool too large for memory,
    :func:`asal.data.training_sample`); write the model, a reconstruction grid and the test MSE."""
    pool = training_sample(pool, cfg.seed)
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
    metrics = {"test_mse": reconstruction_mse(model, test, device), "steps": cfg.steps, "seconds": time.perf_counter() - started}
    with atomic_path(out) as tmp:
        torch.save({"config": asdict(cfg), "image_shape": list(pool.image_shape), "model": model.state_dict(),
                    "pool_hash": pool.config_hash}, tmp)
    with atomic_path(metrics_json) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    with torch.no_grad():
        originals = to_float(test.images[:32], device)
        grid = torch.cat([originals[:16], model(originals[:16]), originals[16:], model(originals[16:])]).cpu()
    with atomic_path(recon_png) as tmp:
        save_image(grid, tmp, format="png", nrow=16, padding=2, pad_value=1.0)  # rows: test, recon, test, recon
    log.info("autoencoder test MSE %.5f", metrics["test_mse"])
    return metrics


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

"""ASAL's fixed feature spaces (paper section 3.2): raw pixels, the autoencoder's code, the critic's features.

A :class:`FeatureExtractor` maps float images (B, C, H, W) in [0, 1] to (B, d) float32 features. It is the one
code path for pool images (here, streamed to HDF5) and for synthetic images (in ASAL's selection), so both
land in exactly the same space.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch

from . import __version__
from .autoencoder import load_autoencoder
from .errors import BadConfig, BadData
from .files import atomic_path, config_hash
from .paths import FEATURE_MODELS, SPACES
from .wgan import load_gan

log = logging.getLogger(__name__)



class FeatureExtractor:
    """``space`` and a function float (B, C, H, W) in [0, 1] -> (B, d), on ``device``.

    ``provenance``: what made the features (model file, its config hash and training length), stored with them.
    """

    def __init__(self, space: str, fn: Callable[[torch.Tensor], torch.Tensor], device: torch.device,
                 provenance: dict | None = None):
        self.space, self.fn, self.device, self.provenance = space, fn, device, provenance or {}

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.fn(images.to(self.device)).flatten(1).float()


def load_extractor(space: str, model_path: str | Path | None, device: torch.device) -> FeatureExtractor:
    if space not in SPACES:
        raise BadConfig(f"feature space {space!r} is unknown (known: {', '.join(SPACES)})")
    if (FEATURE_MODELS[space] is None) != (model_path is None):
        need = f"the {FEATURE_MODELS[space]} model" if FEATURE_MODELS[space] else "no model"
        raise BadConfig(f"feature space {space!r} needs {need} (--model {model_path!r})")
    if space == "raw":
        return FeatureExtractor(space, lambda x: x, device)
    if space == "auto":
        model, saved = load_autoencoder(model_path, device)
        provenance = {"model": str(model_path), "model_config_hash": config_hash(saved["config"]),
                      "model_steps": saved["config"]["steps"]}
        return FeatureExtractor(space, model.encode, device, provenance)
    _, critic, saved = load_gan(model_path, device)
    provenance = {"model": str(model_path), "model_config_hash": config_hash(saved["config"]),
                  "model_steps": saved["iterations"]}
    return FeatureExtractor(space, critic.features, device, provenance)


def extract_pool_features(
    extractor: FeatureExtractor, pool_path: str | Path, out: str | Path, *, batch_size: int = 1000,
    log_every_seconds: float = 30.0,
) -> tuple[int, int]:
    """Stream the pool through ``extractor`` into ``out`` (HDF5 ``features`` (N, d) float32); return (N, d).

    Memory is bounded by the batch: images are read and features written one batch at a time.
    """
    pool_path = Path(pool_path)
    if not pool_path.exists():
        raise BadData(f"{pool_path}: no such file (run `asal prepare-data` first)")
    with h5py.File(pool_path, "r") as src, atomic_path(out) as tmp, h5py.File(tmp, "w") as dst:
        images = src["images"]
        n = len(images)
        started = last_log = time.perf_counter()
        feats = None
        for start in range(0, n, batch_size):
            batch = torch.from_numpy(images[start : start + batch_size]).float().div_(255.0)
            f = extractor(batch).cpu().numpy().astype(np.float32)  # (B, d)
            if feats is None:
                feats = dst.create_dataset("features", shape=(n, f.shape[1]), dtype=np.float32,
                                           chunks=(min(n, 1024), f.shape[1]))
            feats[start : start + len(f)] = f
            now = time.perf_counter()
            if now - last_log >= log_every_seconds:
                rate = (start + len(f)) / (now - started)
                log.info("%s features: %d/%d images, %.0f images/s, ETA %.0fs", extractor.space, start + len(f), n,
                         rate, (n - start - len(f)) / rate)
                last_log = now
        dst.attrs.update(space=extractor.space, pool=str(pool_path), pool_config_hash=src.attrs["config_hash"],
                         asal_version=__version__, **extractor.provenance)
        dims = feats.shape
    log.info("wrote %s: %s features of %d images in %.1fs", out, dims[1], dims[0], time.perf_counter() - started)
    return dims

"""ASAL's fixed feature spaces (paper section 3.2): raw pixels, the autoencoder's code, the critic's features,
each reduced by PCA.

A :class:`FeatureExtractor` maps float images (B, C, H, W) in [0, 1] to (B, d) float32 features. It is the one
code path for pool images (here, streamed through the PCA into the matching space) and for synthetic images
(in ASAL's selection), so both land in exactly the same space. Full-width pool features are never written:
nothing but the PCA reads them, and recomputing them costs less than storing them at the sizes where they
would fit (docs/scale).
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
from .data.rows import StoredRows
from .files import atomic_path, config_hash
from .images import to_float
from .matching import PCAProjection, fit_pca, pca_fit_rows
from .paths import FEATURE_MODELS, SPACES
from .progress import Progress
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


def project_pool(
    extractor: FeatureExtractor, pool_path: str | Path, out: str | Path, *, dims: int, seed: int = 0,
    max_fit_samples: int = 100_000, batch_size: int = 1000, log_every_seconds: float = 30.0,
) -> PCAProjection:
    """The pool in ASAL's matching space: fit PCA on the features of a seeded sample of the pool (all of it up
    to ``max_fit_samples``), then stream the pool through the extractor and the projection.

    Writes ``out`` (HDF5): the PCA's arrays (:meth:`PCAProjection.save_arrays`) and ``projected`` (N, dims)
    float32, row i the pool's ``pool_idx`` i. Memory holds the fit sample's features (m, d), never the pool's:
    at 16M MNIST images, 784 raw features each would be 50 GB. When the sample is the whole pool its features
    are projected as they are; else the pool is read twice (the sample, then every row in order).
    """
    pool_path = Path(pool_path)
    if not pool_path.exists():
        raise BadData(f"{pool_path}: no such file (run `asal prepare-data` first)")
    started = time.perf_counter()
    with h5py.File(pool_path, "r") as src:
        images = StoredRows(src["images"])
        n = len(images)
        fit_rows = pca_fit_rows(n, max_fit_samples, seed)
        progress = Progress(log, f"{extractor.space} features of the PCA's sample", len(fit_rows), log_every_seconds)
        fit_features = []
        for i in range(0, len(fit_rows), batch_size):
            fit_features.append(extract(extractor, images[fit_rows[i : i + batch_size]]))
            progress.step(len(fit_features[-1]))
        fit_features = np.concatenate(fit_features)  # (m, d)
        projection = fit_pca(fit_features, dims, seed=seed, where=str(pool_path))
        with atomic_path(out) as tmp, h5py.File(tmp, "w") as dst:
            projection.save_arrays(dst)
            projected = dst.create_dataset("projected", shape=(n, dims), dtype=np.float32, chunks=(min(n, 4096), dims))
            if len(fit_rows) == n:
                for i in range(0, n, PROJECT_BATCH):
                    projected[i : i + PROJECT_BATCH] = projection.transform(fit_features[i : i + PROJECT_BATCH])
            else:
                progress = Progress(log, f"{extractor.space} pool projected", n, log_every_seconds)
                for i in range(0, n, batch_size):
                    projected[i : i + batch_size] = projection.transform(extract(extractor, images[i : i + batch_size]))
                    progress.step(min(batch_size, n - i))
            dst.attrs.update(space=extractor.space, pool=str(pool_path), pool_config_hash=src.attrs["config_hash"],
                             dims=dims, features=fit_features.shape[1], fit_samples=len(fit_rows),
                             asal_version=__version__, **extractor.provenance)
    log.info("wrote %s: %s features of %d images projected to %d dims (PCA on %d, explained variance %.3f) in %.1fs",
             out, fit_features.shape[1], n, dims, len(fit_rows), projection.explained_variance_ratio_.sum(),
             time.perf_counter() - started)
    return projection


#: Rows projected at once from features already in memory.
PROJECT_BATCH = 10_000


def extract(extractor: FeatureExtractor, images: np.ndarray) -> np.ndarray:
    """uint8 images (B, C, H, W) -> features (B, d) float32 on the host."""
    return extractor(to_float(images, extractor.device)).cpu().numpy()

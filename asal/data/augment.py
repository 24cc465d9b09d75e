"""Pools larger than their source, as the paper made its 16M-image pools: seeded augmentations of the pool.

``data.grow_to: N`` keeps the experiment's pool rows and appends ``N - len(pool)`` new ones, each a copy of a
pool row drawn at random, shifted by up to ``data.augment.shift`` pixels (zeros enter at the border),
mirrored left-right with probability one half where ``data.augment.flip`` allows it (not for digits), and
with uniform noise of up to ``data.augment.noise`` grey levels. A new row keeps its source row's label and
``orig_index``. The rows are made and written in chunks, so a 16M-image pool (12.5 GB at 28x28) is never in
memory. Chunk i of the new rows draws from its own seed, ``sub_seed(data.seed, i)``.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import BadConfig
from ..progress import Progress
from ..seeds import sub_seed
from .store import StoreWriter

log = logging.getLogger(__name__)

#: Rows made and written at once: 64 MB of 28x28 images.
GROW_CHUNK = 1 << 16


def augment(images: np.ndarray, rng: np.random.Generator, *, shift: int, flip: bool, noise: int) -> np.ndarray:
    """Augmented copies of ``images`` (n, C, H, W) uint8, one per row, drawn from ``rng``: (n, C, H, W) uint8."""
    n, _, h, w = images.shape
    out = images.copy()
    if shift:
        padded = np.pad(images, ((0, 0), (0, 0), (shift, shift), (shift, shift)))
        offsets = rng.integers(0, 2 * shift + 1, (n, 2))  # (dy, dx) into the padded image
        for dy, dx in np.unique(offsets, axis=0):  # at most (2 shift + 1)^2 vectorised copies
            rows = np.flatnonzero((offsets[:, 0] == dy) & (offsets[:, 1] == dx))
            out[rows] = padded[rows, :, dy : dy + h, dx : dx + w]
    if flip:
        mirrored = rng.random(n) < 0.5
        out[mirrored] = out[mirrored, :, :, ::-1]
    if noise:
        out = np.clip(out.astype(np.int16) + rng.integers(-noise, noise + 1, out.shape, dtype=np.int16), 0, 255)
    return out.astype(np.uint8, copy=False)


def grown_rows(images: np.ndarray, labels: np.ndarray, orig_index: np.ndarray, n_new: int, *, seed: int,
               shift: int, flip: bool, noise: int, chunk: int = GROW_CHUNK):
    """Yield ``(images (B, C, H, W) uint8, labels (B,), orig_index (B,))`` chunks of ``n_new`` augmented rows of
    the pool ``images``/``labels``/``orig_index``, logging the rate and the time left."""
    progress = Progress(log, "grown pool: new rows", n_new)
    for i, start in enumerate(range(0, n_new, chunk)):
        rng = np.random.default_rng(sub_seed(seed, i))
        source = np.sort(rng.integers(0, len(labels), min(chunk, n_new - start)))
        yield augment(images[source], rng, shift=shift, flip=flip, noise=noise), labels[source], orig_index[source]
        progress.step(len(source))


def write_grown_pool(path, images: np.ndarray, labels: np.ndarray, orig_index: np.ndarray, *, grow_to: int,
                     augment_cfg: dict, seed: int, **store_attrs) -> None:
    """Write the pool ``images`` (M, C, H, W), ``labels`` and ``orig_index`` (M,) to ``path`` (a temporary file
    the caller renames), then ``grow_to - M`` augmented rows after them, chunk by chunk. ``store_attrs``: the
    :class:`StoreWriter` attributes (class_names, source, split, config)."""
    if grow_to < len(labels):
        raise BadConfig(f"data.grow_to = {grow_to} is smaller than the pool ({len(labels)} images): it only grows")
    with StoreWriter(path, images.shape[1:], compress=False, **store_attrs) as writer:
        writer.append(images, labels, orig_index)
        for chunk in grown_rows(images, labels, orig_index, grow_to - len(labels), seed=seed, **augment_cfg):
            writer.append(*chunk)

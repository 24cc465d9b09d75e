"""CIFAR-10 as its "python version" ships: ``cifar-10-batches-py/data_batch_1..5`` and ``test_batch``.

Each batch is a Python-2 pickle of a dict: ``data`` uint8 (10000, 3072), rows of R, G and B planes of 32x32;
``labels`` a list of ints 0..9 (0 airplane, 1 automobile, ..., 7 horse, ...; ``batches.meta`` names them).
They are read with the restricted unpickler of MNIST, which admits numpy's array types and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BadData
from .safe_pickle import safe_load

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
SIDE = 32
N_CLASSES = 10


def fetch_cifar10(root: str | Path) -> Path:
    """Download CIFAR-10 with torchvision (which checks its md5) into ``root``; return the batches folder.

    Needs internet; the tests never call it with the real download.
    """
    from torchvision.datasets import CIFAR10

    for train in (True, False):
        CIFAR10(str(root), train=train, download=True)
    return Path(root) / "cifar-10-batches-py"


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: images (N, 3, 32, 32) uint8 and labels (N,) int64."""
    if not path.is_file():
        raise BadData(f"{path}: no such file (CIFAR-10's python version has data_batch_1..5 and test_batch)")
    with open(path, "rb") as fh:
        batch = safe_load(fh, source=str(path))
    if not isinstance(batch, dict):
        raise BadData(f"{path}: expected a dict with 'data' and 'labels', got {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    missing = {"data", "labels"} - set(batch)
    if missing:
        raise BadData(f"{path}: missing key(s) {sorted(missing)}; the batch has {sorted(batch)}")
    data, labels = batch["data"], np.asarray(batch["labels"])
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3 * SIDE * SIDE):
        raise BadData(f"{path}: 'data' is {getattr(data, 'dtype', '?')} {getattr(data, 'shape', '?')}, "
                      f"expected uint8 (N, {3 * SIDE * SIDE})")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise BadData(f"{path}: 'labels' must be {len(data)} integers, got {labels.dtype} {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise BadData(f"{path}: labels out of range 0..{N_CLASSES - 1} (min {labels.min()}, max {labels.max()})")
    return data.reshape(-1, 3, SIDE, SIDE), labels.astype(np.int64)


def load_cifar10(root: str | Path):
    """``(train, test)`` from the batches folder: 50,000 and 10,000 images (N, 3, 32, 32) uint8, labels 0..9."""
    root = Path(root)
    if not root.is_dir():
        raise BadData(f"{root}: no such folder (unpack cifar-10-python.tar.gz there, or run `asal fetch-data "
                      "cifar10`, which downloads it with torchvision)")
    train = [read_batch(root / name) for name in TRAIN_BATCHES]
    test = read_batch(root / TEST_BATCH)
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])), test

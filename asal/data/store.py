"""The HDF5 image store every stage reads: ``data/{exp}/pool.h5`` and ``data/{exp}/test.h5``.

Layout: ``images`` uint8 (N, C, H, W), chunked by rows; ``labels`` int64 (N,) with class ids 0..K-1;
``orig_index`` int64 (N,), the row in the source split. Attributes: ``class_names`` (JSON list, the source's
label of each class id), ``source``, ``split``, ``config`` (JSON of the data slice), ``config_hash`` and
``asal_version``. Files are written under a temporary name and renamed, so a killed job leaves nothing that
looks complete; readers open read-only, so many AL jobs can share one file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..errors import BadConfig, BadData
from ..files import canonical_json, config_hash

ROWS_PER_CHUNK = 1024
CHUNK_BYTES = 1 << 20


def subsample(n_available: int, size: int | None, rng: np.random.Generator, key: str, where: str) -> np.ndarray:
    """Sorted positions of a seeded draw of ``size`` of ``n_available`` (all when size is None)."""
    if size is None:
        return np.arange(n_available)
    if size > n_available:
        raise BadConfig(f"data.{key} = {size} is larger than the {n_available} images available in {where}")
    return np.sort(rng.choice(n_available, size=size, replace=False))


class StoreWriter:
    """Append-only writer of one split (for sources too large to hold in memory, such as LSUN).

    ``images`` grows by rows, chunked at most :data:`ROWS_PER_CHUNK` rows or about :data:`CHUNK_BYTES`;
    ``close`` (on leaving a ``with`` block without error) writes labels, source rows and the attributes.
    Write to a temporary path (:func:`atomic_path`) and rename it after ``close``.
    """

    def __init__(self, path: Path, image_shape: tuple[int, int, int], *, class_names: list, source: str,
                 split: str, config: dict, chunk_rows: int = ROWS_PER_CHUNK):
        self.attrs = dict(class_names=json.dumps(class_names), source=source, split=split,
                          config=canonical_json(config), config_hash=config_hash(config), asal_version=__version__)
        self.labels: list[np.ndarray] = []
        self.orig_index: list[np.ndarray] = []
        # At most ~1 MiB per chunk (h5py's default chunk cache): 1,024 MNIST rows, 341 at 32x32x3, 85 at 64x64x3.
        rows = max(1, min(chunk_rows, CHUNK_BYTES // int(np.prod(image_shape))))
        self.fh = h5py.File(path, "w")
        try:
            self.images = self.fh.create_dataset(
                "images", shape=(0, *image_shape), maxshape=(None, *image_shape), dtype=np.uint8,
                chunks=(rows, *image_shape), compression="gzip", compression_opts=1, shuffle=True,
            )
        except Exception:
            self.fh.close()
            raise

    def append(self, images: np.ndarray, labels: np.ndarray, orig_index: np.ndarray) -> None:
        """Add rows: ``images`` (B, C, H, W) uint8, ``labels`` and ``orig_index`` (B,) integers."""
        assert images.dtype == np.uint8 and images.shape[1:] == self.images.shape[1:], (images.dtype, images.shape)
        n = self.images.shape[0]
        self.images.resize(n + len(images), axis=0)
        self.images[n:] = images
        self.labels.append(np.asarray(labels, dtype=np.int64))
        self.orig_index.append(np.asarray(orig_index, dtype=np.int64))

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # the caller's atomic_path removes the half-written file
            self.fh.close()

    def close(self) -> None:
        empty = np.zeros(0, np.int64)
        try:
            self.fh.create_dataset("labels", data=np.concatenate([empty, *self.labels]))
            self.fh.create_dataset("orig_index", data=np.concatenate([empty, *self.orig_index]))
            self.fh.attrs.update(self.attrs)
        finally:
            self.fh.close()


def write_split(
    path: Path, images: np.ndarray, labels: np.ndarray, orig_index: np.ndarray, *, class_names: list,
    source: str, split: str, config: dict,
) -> None:
    """Write one split to ``path`` (a temporary file that the caller renames). ``images`` (N, C, H, W) uint8."""
    assert images.dtype == np.uint8 and images.ndim == 4, (images.dtype, images.shape)
    with StoreWriter(path, images.shape[1:], class_names=class_names, source=source, split=split,
                     config=config, chunk_rows=min(len(images), ROWS_PER_CHUNK)) as writer:
        writer.append(images, labels, orig_index)


@dataclass
class ImageStore:
    """A split loaded for training and scoring: images stay uint8 until a batch is converted.

    ``images`` (N, C, H, W) uint8, ``labels`` (N,) int64; row i is ``pool_idx`` i for the pool.
    """

    path: str
    images: np.ndarray
    labels: np.ndarray
    class_names: list
    config_hash: str

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.labels)


def read_class_names(path: str | Path) -> list:
    """The class names of a store, without reading its images."""
    try:
        with h5py.File(path, "r") as fh:
            return json.loads(fh.attrs["class_names"])
    except (OSError, KeyError) as exc:
        raise BadData(f"{path}: not an asal image store ({exc})") from None


def read_split(path: str | Path) -> ImageStore:
    """Load a split written by :func:`write_split` into memory (MNIST-sized pools; see DESIGN.md)."""
    path = Path(path)
    if not path.exists():
        raise BadData(f"{path}: no such file (run `asal prepare-data` first)")
    try:
        with h5py.File(path, "r") as fh:
            return ImageStore(
                path=str(path), images=fh["images"][()], labels=fh["labels"][()],
                class_names=json.loads(fh.attrs["class_names"]), config_hash=str(fh.attrs["config_hash"]),
            )
    except (OSError, KeyError) as exc:
        raise BadData(f"{path}: not an asal image store ({exc})") from None

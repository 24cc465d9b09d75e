"""The HDF5 image store every stage reads: ``data/{exp}/pool.h5`` and ``data/{exp}/test.h5``.

Layout: ``images`` uint8 (N, C, H, W), chunked by rows; ``labels`` int64 (N,) with class ids 0..K-1, or
:data:`UNLABELLED` (-1) in every row of a pool no one has labelled (source ``unlabelled``); ``orig_index`` int64
(N,), the row in the source split; ``sources`` (N,) variable-length UTF-8 strings, only where the rows come
from image files (``imagefolder``, ``unlabelled``; not a grown pool): each row's file, relative to
``data.path`` (``data.test_path`` for an explicit test split), so a person can be shown which file to label
(:func:`read_sources`; stores without it, older ones included, give None). Attributes: ``class_names`` (JSON
list, the source's label of each class id; for ``unlabelled``, ``data.classes``, the names a person chooses
from), ``source``, ``split``, ``config`` (JSON of the data slice), ``config_hash`` and ``asal_version``.
A test store may have no rows (``unlabelled`` without ``data.test_source``): images (0, C, H, W). Files are
written under a temporary name and renamed, so a killed job leaves nothing that looks complete; readers open
read-only, so many AL jobs can share one file.

A store of at most :data:`IN_MEMORY_MAX_BYTES` of images is read into memory; a larger one stays on disk and
is read by rows (:class:`~asal.data.rows.StoredRows`), so a run's memory does not grow with its pool. Small
stores are gzip-compressed; grown pools (:mod:`asal.data.augment`) and LSUN's are not, so a scattered row
costs a copy, not the decompression of its chunk.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..errors import BadConfig, BadData
from ..files import canonical_json, config_hash
from .rows import CHUNK_BYTES, StoredRows

log = logging.getLogger(__name__)

ROWS_PER_CHUNK = 1024
#: The ``sources`` dataset's type: variable-length UTF-8 strings.
SOURCES_DTYPE = h5py.string_dtype("utf-8")
#: A store's images up to this size are read into memory; larger ones are read from disk by rows. Either way a
#: run gives the same results (tests/test_pool_on_disk.py); this only trades memory for speed. Memory is
#: faster for a compressed store scanned every cycle; a large store is uncompressed, and the page cache
#: serves its repeated reads.
IN_MEMORY_MAX_BYTES = 256 << 20
#: The GAN, the autoencoder and the oracle train on a seeded sample of the pool of at most this many bytes of
#: images, held in memory (they draw random mini-batches, a read per row from disk). Every pool up to this
#: size is its own sample: 2.7M MNIST images, 170k at 64x64x3. It decides results, so it is fixed here, not
#: by the machine.
TRAINING_SAMPLE_BYTES = 2 << 30
#: The label of a pool row that no one has labelled (every row of source ``unlabelled``). It is the value the AL
#: loop's annotators give for "no answer" (:data:`asal.annotators.SKIP`), defined here so the data stage does
#: not import the loop's modules; a stage that trains on labels must refuse a pool holding it.
UNLABELLED = -1


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
    ``close`` (on leaving a ``with`` block without error) writes labels, source rows, the source files (if
    every ``append`` gave them) and the attributes.
    Write to a temporary path (:func:`atomic_path`) and rename it after ``close``. ``compress``: gzip the
    images (about 2x smaller for MNIST, and 30x slower to read a scattered row).
    """

    def __init__(self, path: Path, image_shape: tuple[int, int, int], *, class_names: list, source: str,
                 split: str, config: dict, chunk_rows: int = ROWS_PER_CHUNK, compress: bool = True):
        self.attrs = dict(class_names=json.dumps(class_names), source=source, split=split,
                          config=canonical_json(config), config_hash=config_hash(config), asal_version=__version__)
        self.labels: list[np.ndarray] = []
        self.orig_index: list[np.ndarray] = []
        self.sources: list[str] | None = None  # each row's file, where the appends give them
        # At most ~1 MiB per chunk (h5py's default chunk cache): 1,024 MNIST rows, 341 at 32x32x3, 85 at 64x64x3.
        rows = max(1, min(chunk_rows, CHUNK_BYTES // int(np.prod(image_shape))))
        self.fh = h5py.File(path, "w")
        try:
            self.images = self.fh.create_dataset(
                "images", shape=(0, *image_shape), maxshape=(None, *image_shape), dtype=np.uint8,
                chunks=(rows, *image_shape), **(dict(compression="gzip", compression_opts=1, shuffle=True)
                                                if compress else {}),
            )
        except Exception:
            self.fh.close()
            raise

    def append(self, images: np.ndarray, labels: np.ndarray, orig_index: np.ndarray,
               sources: list[str] | None = None) -> None:
        """Add rows: ``images`` (B, C, H, W) uint8, ``labels`` and ``orig_index`` (B,) integers, and optionally
        ``sources`` (B,), each row's file; given to one append, it must be given to every append."""
        assert images.dtype == np.uint8 and images.shape[1:] == self.images.shape[1:], (images.dtype, images.shape)
        assert not self.labels or (sources is None) == (self.sources is None), "sources given to some appends only"
        if sources is not None:
            assert len(sources) == len(images), (len(sources), len(images))
            self.sources = [*(self.sources or []), *map(str, sources)]
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
            if self.sources is not None:
                self.fh.create_dataset("sources", data=self.sources, dtype=SOURCES_DTYPE)
            self.fh.attrs.update(self.attrs)
        finally:
            self.fh.close()


def write_split(
    path: Path, images: np.ndarray, labels: np.ndarray, orig_index: np.ndarray, *, class_names: list,
    source: str, split: str, config: dict, sources: list[str] | None = None,
) -> None:
    """Write one split to ``path`` (a temporary file that the caller renames). ``images`` (N, C, H, W) uint8,
    N may be 0; ``sources``: each row's file, relative to the data's root, where the rows come from files."""
    assert images.dtype == np.uint8 and images.ndim == 4, (images.dtype, images.shape)
    with StoreWriter(path, images.shape[1:], class_names=class_names, source=source, split=split,
                     config=config, chunk_rows=min(len(images), ROWS_PER_CHUNK)) as writer:
        writer.append(images, labels, orig_index, sources)


def read_sources(path: str | Path) -> list[str] | None:
    """Each row's file, relative to the data's root (``sources``), of a store whose rows come from image files;
    None for a store without them (other sources, grown pools, stores written before the dataset existed)."""
    try:
        with h5py.File(path, "r") as fh:
            if "sources" not in fh:
                return None
            return fh["sources"].asstr()[()].tolist()
    except OSError as exc:
        raise BadData(f"{path}: not an asal image store ({exc})") from None


@dataclass
class ImageStore:
    """A split for training and scoring: images stay uint8 until a batch is converted.

    ``images`` (N, C, H, W) uint8 and ``labels`` (N,) int64, in memory (numpy) or on disk
    (:class:`~asal.data.rows.StoredRows`, indexed the same way); row i is ``pool_idx`` i for the pool.
    """

    path: str
    images: np.ndarray | StoredRows
    labels: np.ndarray | StoredRows
    class_names: list
    config_hash: str

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    @property
    def on_disk(self) -> bool:
        return isinstance(self.images, StoredRows)

    def __len__(self) -> int:
        return len(self.labels)


def read_class_names(path: str | Path) -> list:
    """The class names of a store, without reading its images."""
    try:
        with h5py.File(path, "r") as fh:
            return json.loads(fh.attrs["class_names"])
    except (OSError, KeyError) as exc:
        raise BadData(f"{path}: not an asal image store ({exc})") from None


def read_split(path: str | Path, *, in_memory: bool | None = None) -> ImageStore:
    """Open a split written by :func:`write_split`: into memory when its images take at most
    :data:`IN_MEMORY_MAX_BYTES` (or ``in_memory`` says so), else on disk, read by rows as they are asked for
    (the file stays open read-only for the store's life). The choice is logged."""
    path = Path(path)
    if not path.exists():
        raise BadData(f"{path}: no such file (run `asal prepare-data` first)")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise BadData(f"{path}: not an asal image store ({exc})") from None
    try:
        images, labels = fh["images"], fh["labels"]
        attrs = dict(path=str(path), class_names=json.loads(fh.attrs["class_names"]),
                     config_hash=str(fh.attrs["config_hash"]))
    except KeyError as exc:
        fh.close()
        raise BadData(f"{path}: not an asal image store ({exc})") from None
    nbytes = images.size * images.dtype.itemsize
    if in_memory is None:
        in_memory = nbytes <= IN_MEMORY_MAX_BYTES
    log.info("%s: %d images, %.2f GB, %s", path, len(labels), nbytes / 1e9,
             "read into memory" if in_memory else f"read from disk by rows (over {IN_MEMORY_MAX_BYTES >> 20} MiB)")
    if in_memory:
        with fh:
            return ImageStore(images=images[()], labels=labels[()], **attrs)
    return ImageStore(images=StoredRows(images), labels=StoredRows(labels), **attrs)


def training_sample(store: ImageStore, seed: int, *, max_bytes: int = TRAINING_SAMPLE_BYTES) -> ImageStore:
    """``store`` in memory for a training stage: the whole store if its images take at most ``max_bytes``, else
    a seeded sample of as many rows as fit (sorted, logged), read in one pass over the file."""
    row_bytes = int(np.prod(store.image_shape))
    n = min(len(store), max(1, max_bytes // row_bytes))
    rows = slice(None) if n == len(store) else np.sort(np.random.default_rng(seed).choice(len(store), n, replace=False))
    if n < len(store):
        log.info("training on a seeded sample of %d of the %d images of %s (%.2f GB)", n, len(store), store.path,
                 n * row_bytes / 1e9)
    if not store.on_disk and n == len(store):
        return store
    return ImageStore(store.path, store.images[rows], store.labels[rows], store.class_names, store.config_hash)

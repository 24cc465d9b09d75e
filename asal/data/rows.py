"""Rows of a store read from disk on demand, for pools larger than memory (the paper's 16M images are 198 GB).

:class:`StoredRows` wraps one HDF5 dataset and is indexed as the array it stands for: ``rows[i]``,
``rows[a:b]`` and ``rows[pool_idx]`` return numpy arrays, in the order asked. An index array is read as few
times as the chunks it touches: sorted, duplicates read once, and one contiguous span per chunk, so a batch of
scattered rows costs a read per chunk and a scan by slices reads each chunk once. Every read is counted
(rows and seconds), which is how a run reports its I/O per cycle.
"""

from __future__ import annotations

import time

import h5py
import numpy as np


#: About the bytes of one chunk of a store's images (:class:`asal.data.store.StoreWriter`), and the span a
#: contiguous (unchunked) dataset such as the labels is read in, as if chunked.
CHUNK_BYTES = 1 << 20


class StoredRows:
    """The rows of ``dataset`` (N, ...) on disk: ``shape``, ``dtype``, ``len`` and indexing as a numpy array.

    ``rows_read`` and ``read_seconds`` add up every read since the file was opened.
    """

    def __init__(self, dataset: h5py.Dataset):
        self.dataset = dataset
        self.shape, self.dtype, self.ndim = dataset.shape, dataset.dtype, dataset.ndim
        row_bytes = max(1, int(np.prod(self.shape[1:])) * self.dtype.itemsize)
        self.chunk_rows = dataset.chunks[0] if dataset.chunks else max(1, CHUNK_BYTES // row_bytes)
        self.rows_read, self.read_seconds = 0, 0.0

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __array__(self, dtype=None, copy=None):
        """The whole dataset in memory (what ``np.asarray`` asks for)."""
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key) -> np.ndarray:
        t0 = time.perf_counter()
        if isinstance(key, slice):
            step_back = key.step is not None and key.step < 0  # h5py reads forward slices only
            out = self.take(np.arange(len(self))[key]) if step_back else self.dataset[key]
        elif np.ndim(key) == 0:
            out = self.dataset[int(key)]
        else:
            out = self.take(np.asarray(key))
        self.rows_read += int(np.prod(out.shape[: out.ndim - self.ndim + 1]))
        self.read_seconds += time.perf_counter() - t0
        return out

    def take(self, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` (any shape) of ints in any order, with repeats, or a boolean mask: (*idx.shape, ...).
        Each chunk touched is read once, as the span from its first to its last wanted row."""
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        if idx.dtype.kind not in "iu":
            raise IndexError(f"rows are indexed by integers or a boolean mask, not {idx.dtype}")
        shape, idx = idx.shape, idx.astype(np.int64, copy=False).reshape(-1)
        n = len(self)
        if len(idx) and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"row index out of range for {n} rows")
        idx = np.where(idx < 0, idx + n, idx)
        increasing = len(idx) < 2 or bool((idx[1:] > idx[:-1]).all())
        wanted, inverse = (idx, None) if increasing else np.unique(idx, return_inverse=True)  # sorted, each once
        out = np.empty((len(wanted), *self.shape[1:]), self.dtype)
        chunk_of = wanted // self.chunk_rows
        starts = np.flatnonzero(np.diff(chunk_of, prepend=-1))  # the first wanted row of each chunk
        for a, b in zip(starts, np.r_[starts[1:], len(wanted)]):
            lo, hi = int(wanted[a]), int(wanted[b - 1]) + 1
            out[a:b] = self.dataset[lo:hi][wanted[a:b] - lo]
        return (out if inverse is None else out[inverse]).reshape(*shape, *self.shape[1:])

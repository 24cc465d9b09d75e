"""Sample matching (paper section 3.2): PCA to a few dimensions, then nearest-neighbour search in the pool.

PCA is fitted with scikit-learn and stored as plain arrays in HDF5 (no pickle). Indexes share one API in the
style of faiss and scikit-learn: ``build(x)`` returns self, ``search(x, k)`` returns ``(distances, pool_idx)``
as (n, k) float32 Euclidean distances and (n, k) int64 rows of the pool, ``save(path)`` and ``load(path)``.
FAISS indexes are saved in FAISS's own format. scikit-learn's k-d tree has no format but pickle, so its file
holds the points and the leaf size, and loading rebuilds the tree (exact, deterministic, and O(n log n):
0.4 s for 50k points of 50 dimensions here). In 50 dimensions a k-d tree prunes little: on MNIST's 50k pool
it answered 2,000 queries in 9 s, slower than brute force in numpy (4 s) and FAISS flat (0.5 s).
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import h5py
import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import KDTree

from .errors import BadConfig, BadData
from .files import atomic_path
from .paths import INDEX_KINDS

log = logging.getLogger(__name__)


# --- PCA -------------------------------------------------------------------------------------------------

class PCAProjection:
    """F_PCA(x) = (x - mean) @ components.T: (n, d) float32 -> (n, dims) float32."""

    def __init__(self, mean: np.ndarray, components: np.ndarray, explained_variance_ratio: np.ndarray,
                 explained_variance: np.ndarray | None = None):
        self.mean_, self.components_ = mean.astype(np.float32), components.astype(np.float32)
        self.explained_variance_ratio_ = explained_variance_ratio
        self.explained_variance_ = explained_variance

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float32) - self.mean_) @ self.components_.T

    def fingerprint(self) -> str:
        """A digest of the projection itself, so a refitted PCA at the same path is told apart."""
        return hashlib.sha256(self.mean_.tobytes() + self.components_.tobytes()).hexdigest()[:16]

    def save_arrays(self, fh: h5py.File) -> None:
        """Write ``mean`` (d,), ``components`` (dims, d), ``explained_variance`` and ``explained_variance_ratio``
        (dims,) into an open HDF5 file."""
        fh["mean"], fh["components"] = self.mean_, self.components_
        fh["explained_variance"] = np.asarray(self.explained_variance_, np.float32)
        fh["explained_variance_ratio"] = np.asarray(self.explained_variance_ratio_, np.float32)

    @classmethod
    def load(cls, path: str | Path) -> "PCAProjection":
        with h5py.File(path, "r") as fh:
            return cls(fh["mean"][()], fh["components"][()], fh["explained_variance_ratio"][()])


def pca_fit_rows(n: int, max_fit_samples: int, seed: int) -> np.ndarray:
    """The sorted rows (m,) of ``n`` that PCA is fitted on: all, or a seeded sample of ``max_fit_samples``."""
    if n <= max_fit_samples:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_fit_samples, replace=False))


def fit_pca(features: np.ndarray, dims: int, *, seed: int = 0, where: str = "the pool") -> PCAProjection:
    """PCA of ``features`` (m, d) to ``dims`` dimensions (scikit-learn: exact up to 1,000 features, randomised
    above, seeded)."""
    m, d = features.shape
    if dims > min(m, d):
        raise BadConfig(f"matching.pca_dims = {dims} exceeds the {d} features x {m} samples of {where}")
    pca = PCA(n_components=dims, svd_solver="full" if d <= 1000 else "randomized", random_state=seed).fit(features)
    return PCAProjection(pca.mean_, pca.components_, pca.explained_variance_ratio_, pca.explained_variance_)


def read_projected(path: str | Path) -> np.ndarray:
    with h5py.File(path, "r") as fh:
        return fh["projected"][()]


# --- nearest-neighbour indexes ---------------------------------------------------------------------------

def auto_nlist(n: int) -> int:
    """IVF lists for ``n`` points when the config leaves ``ivf_nlist`` null: 2 sqrt(n) rounded to a power of
    two (128 at 4k, 512 at 65k, 2,048 at 1M, 8,192 at 16M). 4 sqrt(n) lists searched as fast at 1M, but their
    k-means, which grows with lists x training points, would take most of the 5 minutes a 16M build may."""
    return int(2 ** round(np.log2(2 * np.sqrt(max(n, 1)))))


def _as_queries(x: np.ndarray, dim: int) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"queries must be (n, {dim}), got {x.shape}")
    return x


class KDTreeIndex:
    """The paper's exact k-d tree (scikit-learn)."""

    kind = "kdtree"

    def __init__(self, *, leaf_size: int = 40):
        self.leaf_size = leaf_size

    def build(self, x: np.ndarray) -> "KDTreeIndex":
        self.points_ = np.ascontiguousarray(x, dtype=np.float32)
        self.tree_ = KDTree(self.points_, leaf_size=self.leaf_size)
        return self

    def __len__(self) -> int:
        return len(self.points_)

    def search(self, x: np.ndarray, k: int, *, allow_missing: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(distances, pool_idx), both (n, k); exact, so never missing (``allow_missing`` is for the API)."""
        dist, idx = self.tree_.query(_as_queries(x, self.points_.shape[1]), k=k)
        return dist.astype(np.float32), idx.astype(np.int64)

    def save(self, path: Path) -> None:
        with h5py.File(path, "w") as fh:
            fh["points"] = self.points_
            fh.attrs.update(kind=self.kind, leaf_size=self.leaf_size)

    @classmethod
    def load(cls, path: str | Path) -> "KDTreeIndex":
        with h5py.File(path, "r") as fh:
            if fh.attrs.get("kind") != cls.kind:
                raise BadData(f"{path}: not a k-d tree index file")
            return cls(leaf_size=int(fh.attrs["leaf_size"])).build(fh["points"][()])


class FaissIndex:
    """FAISS exact (``flat``) or approximate (``ivf``, ``hnsw``) L2 search; distances returned unsquared."""

    #: IVF's coarse k-means trains on at most this many pool samples per list (a seeded FAISS subsample):
    #: FAISS's own cap is 256, which at 16M points and 16,384 lists is 4M points and most of the build time.
    IVF_TRAIN_PER_LIST = 64

    def __init__(self, kind: str, *, ivf_nlist: int | None = None, ivf_nprobe: int = 8, ivf_quantizer: str = "flat",
                 hnsw_m: int = 32, hnsw_ef_search: int = 64, seed: int = 0):
        self.kind, self.ivf_nlist, self.ivf_nprobe, self.ivf_quantizer = kind, ivf_nlist, ivf_nprobe, ivf_quantizer
        self.hnsw_m, self.hnsw_ef_search, self.seed = hnsw_m, hnsw_ef_search, seed

    def build(self, x: np.ndarray) -> "FaissIndex":
        import faiss

        x = np.ascontiguousarray(x, dtype=np.float32)
        n, d = x.shape
        if self.kind == "flat":
            index = faiss.IndexFlatL2(d)
        elif self.kind == "ivf":
            nlist = max(1, min(self.ivf_nlist or auto_nlist(n), n // 39))  # FAISS wants >= 39 points per list
            if self.ivf_quantizer not in ("flat", "hnsw"):
                raise BadConfig(f"matching.ivf_quantizer = {self.ivf_quantizer!r}: choose flat or hnsw")
            # the quantizer assigns each pool sample to its list: exact (flat) or through an HNSW graph of the
            # centroids, much faster to fill with many lists
            quantizer = faiss.IndexFlatL2(d) if self.ivf_quantizer == "flat" else faiss.IndexHNSWFlat(d, 32)
            index = faiss.IndexIVFFlat(quantizer, d, nlist)
            index.cp.seed = self.seed
            index.cp.max_points_per_centroid = self.IVF_TRAIN_PER_LIST
            index.train(x)
            index.nprobe = min(self.ivf_nprobe, nlist)
        elif self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.hnsw_m)
            index.hnsw.efSearch = self.hnsw_ef_search
        else:
            raise BadConfig(f"matching.index = {self.kind!r}: choose one of {', '.join(INDEX_KINDS)}")
        index.add(x)
        self.index_ = index
        return self

    def __len__(self) -> int:
        return self.index_.ntotal

    def search(self, x: np.ndarray, k: int, *, allow_missing: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(distances, pool_idx), both (n, k). An approximate index may find fewer than ``k`` (IVF probes only
        some lists): that raises, or with ``allow_missing`` comes back as pool_idx -1 at distance inf."""
        dist2, idx = self.index_.search(_as_queries(x, self.index_.d), k)
        missing = idx < 0  # FAISS pads with -1, which numpy would read as the last pool row
        if missing.any() and not allow_missing:
            raise ValueError(f"{self.kind} index found fewer than k = {k} neighbours; raise ivf_nprobe or lower k")
        dist = np.sqrt(np.maximum(dist2, 0)).astype(np.float32)
        dist[missing] = np.inf
        return dist, idx.astype(np.int64)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index_, str(path))

    @classmethod
    def load(cls, path: str | Path, kind: str | None = None) -> "FaissIndex":
        """Read a FAISS index file; ``kind`` (if given) must match what the file holds."""
        import faiss

        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise BadData(f"{path}: not a FAISS index ({exc})") from None
        kinds = {"flat": faiss.IndexFlat, "ivf": faiss.IndexIVF, "hnsw": faiss.IndexHNSW}
        found = next((name for name, cls_ in kinds.items() if isinstance(faiss.downcast_index(index), cls_)), None)
        if found is None or (kind is not None and found != kind):
            raise BadData(f"{path}: holds a {type(faiss.downcast_index(index)).__name__}, not a {kind or 'known'} index")
        self = cls(found)
        self.index_ = index
        return self


#: ``matching.index: auto`` searches exactly up to this many pool samples and with IVF beyond. Measured on 2
#: cores (``benchmarks/selection_scaling.py``, 10 queries): FAISS flat takes 11 ms at 100k and 143 ms at 1M;
#: IVF with the HNSW quantizer 1.2 ms at 1M and 3.7 ms at 16M, recall@1 of at least 0.99 from 1M on.
AUTO_EXACT_MAX = 100_000


def resolve_kind(kind: str, n: int, params: dict) -> tuple[str, dict]:
    """``(kind, params)`` to build for ``n`` pool samples: ``auto`` becomes ``flat`` up to
    :data:`AUTO_EXACT_MAX` samples and ``ivf`` with the ``hnsw`` quantizer beyond; other kinds pass through."""
    if kind != "auto":
        return kind, params
    return ("flat", params) if n <= AUTO_EXACT_MAX else ("ivf", {**params, "ivf_quantizer": "hnsw"})


def make_index(kind: str, **params) -> KDTreeIndex | FaissIndex:
    """An unbuilt index of ``kind`` with the ``matching`` config's parameters for it."""
    if kind == "kdtree":
        return KDTreeIndex(leaf_size=params.get("kdtree_leaf_size", 40))
    if kind not in INDEX_KINDS:
        raise BadConfig(f"matching.index = {kind!r}: choose one of {', '.join(INDEX_KINDS)}")
    keys = ("ivf_nlist", "ivf_nprobe", "ivf_quantizer", "hnsw_m", "hnsw_ef_search", "seed")
    return FaissIndex(kind, **{k: params[k] for k in keys if k in params})


def build_index(kind: str, pca_path: str | Path, out: str | Path, **params) -> KDTreeIndex | FaissIndex:
    """Build an index on the PCA-projected pool of ``pca_path`` and save it to ``out``; ``kind`` may be
    ``auto`` (:func:`resolve_kind`)."""
    points = read_projected(pca_path)
    t0 = time.perf_counter()
    kind, params = resolve_kind(kind, len(points), params)
    index = make_index(kind, **params).build(points)
    with atomic_path(out) as tmp:
        index.save(tmp)
    log.info("%s index on %s points of %d dims built in %.2fs", kind, len(points), points.shape[1], time.perf_counter() - t0)
    return index


def load_index(path: str | Path, kind: str | None = None) -> KDTreeIndex | FaissIndex:
    """Load an index saved by :func:`build_index`; without ``kind``, the file's format says which it is."""
    if not Path(path).exists():
        raise BadData(f"{path}: no such index (run `asal build-index` first)")
    if kind == "kdtree" or (kind is None and h5py.is_hdf5(path)):
        return KDTreeIndex.load(path)
    return FaissIndex.load(path, kind)


def match_without_replacement(
    index: KDTreeIndex | FaissIndex, queries: np.ndarray, n: int, blocked: set[int], *, k: int = 10,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the queries in priority order, each one's nearest indexed sample not ``blocked`` nor taken before.

    ``queries`` (B, d) with B >= n; stops once ``n`` are matched. All queries are searched at once for their
    ``k`` nearest; a query whose ``k`` are all blocked or taken is searched again on its own with twice the
    ``k`` (up to the index size) before the next query picks. Returns ``pool_idx`` (n,) int64, their
    distances (n,) float32 and the query rows (n,) they answer. Work is O(B * k) plus the index's search as
    long as k stays small against the pool, the normal case: only when nearly every neighbour of a query is
    labelled does k grow toward the pool size (an approximate index that finds no free neighbour even then
    raises, naming ivf_nprobe).
    """
    if n > len(queries):
        raise ValueError(f"{n} matches need at least {n} queries, got {len(queries)}")
    size, k = len(index), min(k, len(index))
    dist, idx = index.search(queries, k, allow_missing=True)
    taken: dict[int, tuple[float, int]] = {}  # pool_idx -> (distance, query row), in matching order
    for row in range(len(queries)):
        if len(taken) == n:
            break
        d_row, i_row, k_row = dist[row], idx[row], k
        while True:
            free = next((j for j, i in enumerate(i_row.tolist()) if i >= 0 and i not in blocked and i not in taken),
                        None)
            if free is not None:
                taken[int(i_row[free])] = (float(d_row[free]), row)
                break
            if k_row == size:
                raise RuntimeError(f"fewer than {n} unblocked samples found in an index of {size} "
                                   "(an approximate index: raise matching.ivf_nprobe)")
            k_row = min(2 * k_row, size)
            d_row, i_row = (a[0] for a in index.search(queries[row : row + 1], k_row, allow_missing=True))
    values = list(taken.values())
    return (np.fromiter(taken, dtype=np.int64, count=len(taken)), np.array([d for d, _ in values], np.float32),
            np.array([r for _, r in values], np.int64))

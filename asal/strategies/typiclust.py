"""TypiClust (Hacohen, Dekel & Weinshall, ICML 2022, "Active Learning on a Budget"): typical samples of uncovered
clusters, for budgets too small for uncertainty to help.

The paper's TPC-RP variant in the project's fixed feature space: the autoencoder's features PCA'd to 50 dims
(``features/<exp>/auto_pca.h5``'s ``projected``, the rows ASAL matches in) instead of SimCLR's. Each cycle:

1. k-means clusters the whole pool into K = min(L + n, ``max_clusters``) clusters (L labelled, n to pick);
2. n times: among the clusters of at least ``min_cluster_size`` samples, the one with the fewest labelled
   samples (ties: the largest, then the lowest cluster id) gives its unlabelled sample of highest
   :func:`typicality`, which then counts as labelled. With K = L + n every cluster can hold one sample, so
   the picks cover the largest clusters that hold none yet; above ``max_clusters`` the least covered give
   more than one each.

It needs no classifier: the choice depends on the features, the labelled set and the cycle's ``rng`` only.
When no cluster of ``min_cluster_size`` has an unlabelled sample left, every cluster that has one competes by
the same rule. Where the authors' code differs, this follows the paper: the Euclidean distance (their FAISS
search gives squared ones), the typicality among all of a cluster's samples (theirs drops the labelled ones;
a density does not change when a sample is labelled), k = min(``neighbours``, cluster size - 1) (theirs size /
2), clusters of at least (theirs: more than) ``min_cluster_size``, and the cluster order updated after each
pick (theirs cycles through one order made before the first).

Cost per cycle: the k-means touches every pool row every cycle, like a pool scan: a fit of O(iterations x m x
K x d) on m = min(N, max(100,000, 256 K)) rows, then one assignment pass of O(N x K x d) in batches; then, once
per cluster drawn from, a brute-force kNN within the cluster, O(c^2 d) for c = min(cluster size, 10,000).
Measured on this project's 2 CPU cores (shared with other jobs): 50,000 x 50 random float32 features, 100
labelled, n = 100 (K = 200): 6.8 s, 6.1 s of it k-means; clustering 400,000 such rows into K = 500 (fit on
128,000): 43 s. Memory: the projected pool (N x 50 float32: 3.2 GB at 16M rows, read once when the strategy
loads), the (N,) cluster labels, an (N,) mask and a block of distances of at most 64 MB.
"""

from __future__ import annotations

import logging
import time

import h5py
import numpy as np
from sklearn.cluster import KMeans

from ..errors import BadData
from ..matching import PCAProjection, read_projected
from ..settings import RunSettings, TypiclustConfig
from .base import Selection, SelectionContext, Strategy

log = logging.getLogger(__name__)

#: The k-means is fitted on at most max(KMEANS_FIT_ROWS, KMEANS_ROWS_PER_CLUSTER x K) pool rows, drawn with the
#: cycle's rng (all of them below that): 256 a centroid is what FAISS finds enough to place centroids, and at
#: K = 500 (128,000 rows) it keeps the fit under a minute here, where one on all of a 16M pool would cost 125
#: times as much per iteration. Every row is then assigned.
KMEANS_FIT_ROWS = 100_000
KMEANS_ROWS_PER_CLUSTER = 256
#: Lloyd iterations at most: random 50-dimensional data of 50k rows converges in about 90.
KMEANS_MAX_ITER = 100
#: Rows assigned to their nearest centroid per batch when the pool is larger than the fit.
ASSIGN_BATCH = 1_000_000
#: A cluster larger than this has its typicality computed within a seeded sample of this many of its rows
#: (and its pick made among them): its exact kNN costs O(c^2 d), 4e14 operations for a cluster of 2M rows (the
#: 16M pool's first cycles, where K is small).
TYPICALITY_ROWS = 10_000
#: Entries of one block of the kNN's distance matrix (float64): 64 MB.
DISTANCE_BLOCK = 8_000_000


def typicality(features: np.ndarray, k: int) -> np.ndarray:
    """The paper's typicality of each row of ``features`` (M, d): 1 / the mean Euclidean distance to its ``k``
    nearest other rows, (M,) float64. High where the rows are dense, which is what TypiClust labels first.

    Exact brute force in float64, by blocks of rows (at most :data:`DISTANCE_BLOCK` distances held): O(M^2 d).
    A row is never its own neighbour, but its duplicates are: a row with ``k`` duplicates has mean distance 0
    and typicality ``inf``. ``k`` must be in [1, M - 1]. (The authors' code divides by the mean *squared*
    distance + 1e-5, which FAISS returns; the paper's formula, followed here, by the mean distance.)
    """
    x = np.asarray(features, dtype=np.float64)
    m = len(x)
    if not 1 <= k < m:
        raise ValueError(f"typicality needs 1 <= k < {m} rows, got k = {k}")
    sq_norms = np.einsum("ij,ij->i", x, x)  # (M,)
    mean_distance = np.empty(m)
    block = max(1, DISTANCE_BLOCK // m)
    for start in range(0, m, block):
        stop = min(start + block, m)
        d2 = sq_norms[start:stop, None] - 2.0 * (x[start:stop] @ x.T) + sq_norms[None, :]  # (B, M)
        np.maximum(d2, 0.0, out=d2)
        d2[np.arange(stop - start), np.arange(start, stop)] = np.inf  # not its own neighbour
        nearest = np.partition(d2, k - 1, axis=1)[:, :k]  # (B, k) squared distances, unordered
        mean_distance[start:stop] = np.sqrt(nearest).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 1.0 / mean_distance


def cluster_pool(features: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means labels (N,) int64 in [0, k) of every row of ``features`` (N, d), seeded from ``rng`` only.

    scikit-learn's ``KMeans`` (k-means++ seeding, one initialisation, Lloyd): the paper's authors use it, it is
    deterministic given its seed on a machine, and it is exact Lloyd where MiniBatchKMeans trades the clusters'
    quality for speed that a 50k pool does not need (4 to 6 s at K = 200). A pool larger than the fit sample
    (:data:`KMEANS_FIT_ROWS`) is fitted on a sample drawn with ``rng`` and assigned in batches of
    :data:`ASSIGN_BATCH` rows, so memory beyond the features stays O(N). Some clusters may stay empty (a pool
    with fewer distinct rows than ``k``); they are simply never drawn from.
    """
    n = len(features)
    k = min(k, n)
    fit_rows = max(KMEANS_FIT_ROWS, KMEANS_ROWS_PER_CLUSTER * k)
    sample = None if n <= fit_rows else np.sort(rng.choice(n, fit_rows, replace=False))
    seed = int(rng.integers(2**31 - 1))
    km = KMeans(n_clusters=k, init="k-means++", n_init=1, max_iter=KMEANS_MAX_ITER, random_state=seed)
    if sample is None:
        return km.fit(features).labels_.astype(np.int64)
    km.fit(features[sample])
    labels = np.empty(n, dtype=np.int64)
    for start in range(0, n, ASSIGN_BATCH):
        labels[start : start + ASSIGN_BATCH] = km.predict(features[start : start + ASSIGN_BATCH])
    return labels


class _Cluster:
    """One cluster's unlabelled rows in the order TypiClust takes them: typicality descending (ties to the lower
    ``pool_idx``), computed once per cycle, the first time the cluster is drawn from."""

    def __init__(self, members: np.ndarray):
        self.members = members  # (c,) sorted pool_idx
        self.order: np.ndarray | None = None
        self.next = 0

    def rank(self, features: np.ndarray, taken: np.ndarray, neighbours: int, rng: np.random.Generator) -> None:
        """Rank the cluster's rows by typicality among all its rows, labelled ones included (the density of the
        data does not change when a sample is labelled). A cluster of more than :data:`TYPICALITY_ROWS` rows is
        ranked within a sample of that many drawn with ``rng``; when all its sampled rows are taken, it is
        ranked again within a sample of its rows not taken yet."""
        rows = self.members if self.order is None else self.members[~taken[self.members]]
        if len(rows) > TYPICALITY_ROWS:
            rows = np.sort(rng.choice(rows, TYPICALITY_ROWS, replace=False))
        if len(rows) == 1:
            self.order = rows
        else:
            scores = typicality(features[rows], min(neighbours, len(rows) - 1))
            self.order = rows[np.argsort(-scores, kind="stable")]
        self.next = 0

    def pick(self, features: np.ndarray, taken: np.ndarray, neighbours: int, rng: np.random.Generator) -> int:
        """The most typical row not taken yet; the caller knows the cluster has one."""
        if self.order is None:
            self.rank(features, taken, neighbours, rng)
        while True:
            while self.next < len(self.order) and taken[self.order[self.next]]:
                self.next += 1
            if self.next < len(self.order):
                return int(self.order[self.next])
            self.rank(features, taken, neighbours, rng)  # a sampled cluster whose sample is used up


def typiclust_select(features: np.ndarray, labelled_idx: np.ndarray, n: int, cfg: TypiclustConfig,
                     rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """TPC-RP's ``n`` picks (n,) int64 rows of ``features`` (N, d), in pick order, never one of ``labelled_idx``
    (L,) distinct rows, never one twice; and a few diagnostics for the log.

    Clusters of fewer than ``cfg.min_cluster_size`` rows are skipped (the paper: too small to estimate a
    density, and likely outliers); when no cluster that large has an unlabelled row left, every cluster with
    one competes by the same rule (fewest labelled, then largest), so the selection still returns ``n`` rows.
    """
    n_rows = len(features)
    labelled_idx = np.asarray(labelled_idx, dtype=np.int64)
    if n > n_rows - len(labelled_idx):
        raise ValueError(f"{n} picks asked of {n_rows - len(labelled_idx)} unlabelled rows")
    k = min(len(labelled_idx) + n, cfg.max_clusters, n_rows)
    t0 = time.perf_counter()
    labels = cluster_pool(features, k, rng)  # (N,)
    t1 = time.perf_counter()
    sizes = np.bincount(labels, minlength=k)  # (K,)
    counts = np.bincount(labels[labelled_idx], minlength=k)  # (K,) labelled (or picked) per cluster
    remaining = sizes - counts  # (K,) rows not taken
    by_cluster = np.argsort(labels, kind="stable")  # pool rows grouped by cluster, ascending within each
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    clusters = [_Cluster(by_cluster[bounds[c] : bounds[c + 1]]) for c in range(k)]
    taken = np.zeros(n_rows, dtype=bool)
    taken[labelled_idx] = True
    large = sizes >= cfg.min_cluster_size
    picks, fallbacks = np.empty(n, dtype=np.int64), 0
    for i in range(n):
        open_ = remaining > 0
        eligible = np.flatnonzero(open_ & large)
        if len(eligible) == 0:
            eligible, fallbacks = np.flatnonzero(open_), fallbacks + 1
        c = eligible[np.lexsort((eligible, -sizes[eligible], counts[eligible]))[0]]
        pick = clusters[c].pick(features, taken, cfg.neighbours, rng)
        picks[i], taken[pick] = pick, True
        counts[c] += 1
        remaining[c] -= 1
    stats = {"clusters": float(k), "nonempty_clusters": float((sizes > 0).sum()),
             "uncovered_after": float(((counts == 0) & large).sum()), "fallback_picks": float(fallbacks),
             "kmeans_seconds": t1 - t0, "typicality_seconds": time.perf_counter() - t1}
    return picks, stats


class TypiClustSampling(Strategy):
    """TypiClust (TPC-RP) in the auto space's PCA features of the pool.

    ``features``: (N, d) float32, row i the pool's ``pool_idx`` i (the ``projected`` array of the space's
    ``pca`` file, :func:`asal.features.project_pool`). ``cfg``: the ``typiclust`` section. Randomness comes
    from the cycle's ``ctx.rng`` only, so a run's seed and cycle fix its choice. Reports no per-cycle column
    (the run files have none of its own); its clusters and timings go to the log.
    """

    def __init__(self, features: np.ndarray, cfg: TypiclustConfig, provenance: dict | None = None):
        features = np.asarray(features)
        if features.ndim != 2:
            raise BadData(f"TypiClust needs (N, d) pool features, got shape {features.shape}")
        self.features = np.ascontiguousarray(features, dtype=np.float32)
        self.cfg, self.provenance = cfg, provenance or {}

    @classmethod
    def load(cls, spec, settings: RunSettings, device, files: dict[str, str]) -> TypiClustSampling:
        """From the space's ``pca`` file: its ``projected`` pool; the file and its projection's fingerprint are
        the strategy's identity (a refitted PCA changes the choices)."""
        path = files["pca"]
        try:
            features = read_projected(path)
            with h5py.File(path, "r") as fh:
                attrs = {key: fh.attrs[key] for key in ("space", "pool_config_hash") if key in fh.attrs}
        except (OSError, KeyError) as exc:
            raise BadData(f"{path}: no projected pool to cluster ({exc}); run the features stage first") from exc
        provenance = {"pca": str(path), "pca_fingerprint": PCAProjection.load(path).fingerprint(),
                      **{key: str(value) for key, value in attrs.items()}}
        return cls(features, settings.typiclust, provenance)

    def identity(self) -> dict:
        return self.provenance

    def choose(self, ctx: SelectionContext, n: int) -> Selection:
        if len(self.features) != len(ctx.pool):
            raise BadData(f"TypiClust's features hold {len(self.features)} rows but the pool {ctx.pool.path} has "
                          f"{len(ctx.pool)}: the pca file belongs to another pool")
        picks, stats = typiclust_select(self.features, ctx.labelled_idx, n, self.cfg, ctx.rng)
        log.info("cycle %d: TypiClust picked %d of %d clusters (%d non-empty, %d of size >= %d left uncovered, "
                 "%d picks outside them) in %.1fs of k-means and %.1fs of typicality", ctx.cycle, n,
                 stats["clusters"], stats["nonempty_clusters"], stats["uncovered_after"], self.cfg.min_cluster_size,
                 stats["fallback_picks"], stats["kmeans_seconds"], stats["typicality_seconds"])
        return Selection(picks)

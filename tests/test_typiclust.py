"""TypiClust: its typicality worked out by hand, and its selection on pools of known clusters (no files, no model)."""

from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch

from asal.data import ImageStore
from asal.errors import BadData
from asal.matching import PCAProjection
from asal.settings import TypiclustConfig
from asal.strategies import typiclust as tc
from asal.strategies.base import SelectionContext
from asal.strategies.typiclust import TypiClustSampling, typiclust_select, typicality

CPU = torch.device("cpu")


# --- typicality ------------------------------------------------------------------------------------------

LINE = np.array([[0.0], [1.0], [3.0], [6.0]])  # four points on a line


def test_typicality_k1_by_hand():
    # nearest other point: 0 -> 1 (distance 1), 1 -> 0 (1), 3 -> 1 (2), 6 -> 3 (3); typicality = 1 / distance
    assert typicality(LINE, 1) == pytest.approx([1.0, 1.0, 1 / 2, 1 / 3])


def test_typicality_k2_by_hand():
    # two nearest: 0 -> {1, 3}: mean 2; 1 -> {1, 2}: mean 1.5; 3 -> {2, 3}: mean 2.5 (0 and 6 both at 3);
    # 6 -> {3, 5}: mean 4
    assert typicality(LINE, 2) == pytest.approx([1 / 2, 2 / 3, 1 / 2.5, 1 / 4])


def test_typicality_k3_is_the_mean_to_all_others():
    # 0 -> (1 + 3 + 6) / 3; 1 -> (1 + 2 + 5) / 3; 3 -> (3 + 2 + 3) / 3; 6 -> (6 + 5 + 3) / 3
    assert typicality(LINE, 3) == pytest.approx([3 / 10, 3 / 8, 3 / 8, 3 / 14])


def test_typicality_is_euclidean_in_several_dimensions():
    # a 3-4-5 triangle: (0,0) -> {3, 4}: mean 3.5; (3,0) -> {3, 5}: mean 4; (0,4) -> {4, 5}: mean 4.5
    points = np.array([[0, 0], [3, 0], [0, 4]], np.float32)
    assert typicality(points, 2) == pytest.approx([1 / 3.5, 1 / 4, 1 / 4.5])


def test_typicality_duplicates_and_bounds():
    # a point is not its own neighbour, but its duplicate is: distance 0, typicality inf
    points = np.array([[0.0], [0.0], [2.0]])
    assert typicality(points, 1).tolist() == [np.inf, np.inf, 0.5]
    for k in (0, 3):
        with pytest.raises(ValueError):
            typicality(points, k)


def test_typicality_by_blocks_is_the_same(monkeypatch):
    x = np.random.default_rng(0).normal(size=(37, 4))
    whole = typicality(x, 5)
    monkeypatch.setattr(tc, "DISTANCE_BLOCK", 37 * 3)  # 3 rows a block, the last one short
    assert typicality(x, 5) == pytest.approx(whole)


# --- selection on blobs ------------------------------------------------------------------------------------

def ring_blob(centre, size: int) -> np.ndarray:
    """(size, 2): the centre, then size - 1 points evenly on the unit circle around it. With k = size - 1 (every
    other point; the tests' neighbours are at least that) the centre is the most typical: its mean distance is 1,
    a ring point's is the mean of 1 and its chords, more than 1 (for 8 ring points: 11.05 / 8 = 1.38). With fewer
    neighbours a ring point may win: its nearest chords are shorter than 1 (0.77 for 8)."""
    angles = 2 * np.pi * np.arange(size - 1) / (size - 1)
    return np.vstack([[0.0, 0.0], np.c_[np.cos(angles), np.sin(angles)]]) + np.asarray(centre, float)


#: Four blobs 100 apart: sizes 9, 7, 5 and 2 (A, B, C, D).
BLOBS = {"A": ((0, 0), 9), "B": ((100, 0), 7), "C": ((0, 100), 5), "D": ((100, 100), 2)}


def blob_pool(seed: int = 0):
    """(features (23, 2) float32 in a shuffled order, blob name of each row, the row of each blob's centre)."""
    feats = np.vstack([ring_blob(c, s) for c, s in BLOBS.values()])
    names = np.concatenate([[name] * s for name, (_, s) in BLOBS.items()])
    is_centre = np.concatenate([[True] + [False] * (s - 1) for _, s in BLOBS.values()])
    order = np.random.default_rng(seed).permutation(len(feats))
    feats, names, is_centre = feats[order], names[order], is_centre[order]
    centres = {name: int(np.flatnonzero((names == name) & is_centre)[0]) for name in BLOBS}
    return feats.astype(np.float32), names, centres


def pool_of(features: np.ndarray) -> ImageStore:
    n = len(features)
    return ImageStore("mem.h5", np.zeros((n, 1, 2, 2), np.uint8), np.zeros(n, np.int64), [0, 1], "x")


def select(features, labelled, n, seed=0, **cfg):
    strategy = TypiClustSampling(features, TypiclustConfig.of(**cfg))
    ctx = SelectionContext(pool_of(features), np.asarray(labelled, np.int64), None, CPU, np.random.default_rng(seed))
    return strategy.select(ctx, n).pool_idx


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_uncovered_blobs_largest_first_each_its_centre(seed):
    feats, names, centres = blob_pool(seed)
    a_ring = int(np.flatnonzero((names == "A") & (np.arange(len(names)) != centres["A"]))[0])
    # one labelled ring point of A, 3 picks: K = 4 clusters, the four blobs. A is covered, so B (7) and C (5)
    # come first; D (2 < min_cluster_size 5) never; then every large blob has one labelled, and the largest, A,
    # gives its centre
    picks = select(feats, [a_ring], 3, seed=seed)
    assert names[picks].tolist() == ["B", "C", "A"]
    assert picks.tolist() == [centres["B"], centres["C"], centres["A"]]


def test_min_cluster_size_decides_whether_small_blobs_count():
    feats, names, centres = blob_pool()
    a_ring = int(np.flatnonzero((names == "A") & (np.arange(len(names)) != centres["A"]))[0])
    # with clusters of one allowed, D (2 samples, uncovered) comes before the covered A; its two points tie in
    # typicality, so the lower row is taken
    picks = select(feats, [a_ring], 3, min_cluster_size=1)
    assert names[picks].tolist() == ["B", "C", "D"]
    assert picks[2] == np.flatnonzero(names == "D").min()
    # with 6, C (5) is skipped too: B, then the covered large blobs by size, A before B
    picks = select(feats, [a_ring], 3, min_cluster_size=6)
    assert names[picks].tolist() == ["B", "A", "B"]
    assert picks[:2].tolist() == [centres["B"], centres["A"]]


def test_covered_clusters_give_again_only_when_all_are_covered():
    feats, names, centres = blob_pool()
    labelled = [centres["A"], centres["B"]]
    # K = 2 + 2 = 4: C is the only uncovered large blob; then A (9) with one labelled beats B (7)
    picks = select(feats, labelled, 2)
    assert names[picks].tolist() == ["C", "A"]
    assert picks[0] == centres["C"]


def test_above_max_clusters_the_least_covered_give_in_turn():
    feats = np.vstack([ring_blob((0, 0), 9), ring_blob((50, 0), 7)]).astype(np.float32)
    # K = min(0 + 4, 2) = 2: A (rows 0-8), B (rows 9-15). Picks alternate, largest first, each cluster's rows by
    # typicality: the centres first, then ring points
    picks = select(feats, [], 4, max_clusters=2)
    assert picks[0] == 0 and picks[1] == 9
    assert 1 <= picks[2] <= 8 and 10 <= picks[3] <= 15


def test_fallback_when_no_cluster_is_large_enough():
    feats, names, centres = blob_pool()
    # no blob has 20 samples: every cluster competes, uncovered and largest first
    picks = select(feats, [], 4, min_cluster_size=20)
    assert names[picks].tolist() == ["A", "B", "C", "D"]
    assert picks[:3].tolist() == [centres["A"], centres["B"], centres["C"]]


def test_deterministic_given_the_seed():
    feats = np.random.default_rng(5).normal(size=(400, 6)).astype(np.float32)
    labelled = np.arange(0, 400, 37)
    first = select(feats, labelled, 15, seed=3)
    assert select(feats, labelled, 15, seed=3).tolist() == first.tolist()
    # the k-means seed comes from the rng: another seed may cluster (and so pick) otherwise, but as validly
    other = select(feats, labelled, 15, seed=4)
    assert len(set(other.tolist())) == 15


@pytest.mark.parametrize("max_clusters", [2, 500])
def test_never_a_labelled_row_nor_one_twice(max_clusters):
    feats = np.random.default_rng(6).normal(size=(120, 3)).astype(np.float32)
    labelled = np.random.default_rng(7).choice(120, 50, replace=False)
    for n in (10, 70):  # 70: every unlabelled row
        picks = select(feats, labelled, n, max_clusters=max_clusters)
        assert len(picks) == n and len(np.unique(picks)) == n
        assert not np.isin(picks, labelled).any()


def test_large_clusters_are_ranked_in_samples(monkeypatch):
    # one cluster of 30 rows ranked within samples of 8: when a sample's unlabelled rows are used up, the
    # cluster is ranked again among the rows not taken, until every row is picked
    monkeypatch.setattr(tc, "TYPICALITY_ROWS", 8)
    feats = np.random.default_rng(8).normal(size=(30, 2)).astype(np.float32)
    picks, _ = typiclust_select(feats, np.array([3, 4]), 28, TypiclustConfig.of(max_clusters=2),
                                np.random.default_rng(0))
    assert sorted(picks.tolist()) == sorted(set(range(30)) - {3, 4})
    again, _ = typiclust_select(feats, np.array([3, 4]), 28, TypiclustConfig.of(max_clusters=2),
                                np.random.default_rng(0))
    assert again.tolist() == picks.tolist()


def test_a_pool_larger_than_the_fit_is_fitted_on_a_sample_and_assigned_in_batches(monkeypatch):
    monkeypatch.setattr(tc, "KMEANS_FIT_ROWS", 12)
    monkeypatch.setattr(tc, "KMEANS_ROWS_PER_CLUSTER", 3)
    monkeypatch.setattr(tc, "ASSIGN_BATCH", 5)
    feats, names, centres = blob_pool()
    labels = tc.cluster_pool(feats, 4, np.random.default_rng(0))
    # every row assigned, each blob one cluster (a blob missing from the 12-row sample could share one; the
    # seed's sample holds all four)
    assert len(labels) == len(feats)
    assert {name: len(set(labels[names == name])) for name in BLOBS} == {name: 1 for name in BLOBS}
    assert len(set(labels.tolist())) == 4


def test_features_of_another_pool_are_refused():
    feats, _, _ = blob_pool()
    strategy = TypiClustSampling(feats, TypiclustConfig.of())
    ctx = SelectionContext(pool_of(feats[:-1]), np.zeros(0, np.int64), None, CPU, np.random.default_rng(0))
    with pytest.raises(BadData, match="22"):
        strategy.select(ctx, 2)


def test_load_reads_the_projected_pool(tmp_path):
    feats, names, centres = blob_pool()
    path = tmp_path / "pca.h5"
    with h5py.File(path, "w") as fh:
        PCAProjection(np.zeros(2), np.eye(2), np.array([0.6, 0.4]), np.array([1.0, 1.0])).save_arrays(fh)
        fh["projected"] = feats
        fh.attrs.update(space="auto", pool_config_hash="abc")
    settings = SimpleNamespace(typiclust=TypiclustConfig.of(neighbours=8))
    strategy = TypiClustSampling.load(None, settings, CPU, {"pca": str(path)})
    assert strategy.features.shape == (23, 2) and strategy.features.dtype == np.float32
    assert strategy.cfg.neighbours == 8
    assert strategy.identity()["pca"] == str(path) and strategy.identity()["pool_config_hash"] == "abc"
    assert len(strategy.identity()["pca_fingerprint"]) == 16
    ctx = SelectionContext(pool_of(feats), np.zeros(0, np.int64), None, CPU, np.random.default_rng(0))
    # 4 picks: K = 4 clusters, the four blobs (with 3, D would join another blob's cluster)
    picks = strategy.select(ctx, 4).pool_idx
    assert picks[:3].tolist() == [centres["A"], centres["B"], centres["C"]] and names[picks[3]] == "A"

"""Core-set, BALD and BADGE: their algorithms against known answers, and their contract on tiny pools."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from asal.data import ImageStore
from asal.errors import BadConfig
from asal.models.classifiers import LinearClassifier, build_classifier
from asal.strategies.badge import BadgeSampling, kmeans_pp_seeding, loss_gradient_logits
from asal.strategies.bald import BaldSampling
from asal.strategies.base import SelectionContext
from asal.strategies.coreset import CoreSetSampling, k_center_greedy
from asal.images import to_float
from asal.settings import RunSettings, TrainConfig

CPU = torch.device("cpu")


def store(images: np.ndarray) -> ImageStore:
    return ImageStore("mem.h5", images, np.zeros(len(images), np.int64), [0, 1, 2], "x")


def context(pool, labelled_idx, model, *, seed=0, batch_size=1024) -> SelectionContext:
    return SelectionContext(pool, np.asarray(labelled_idx, np.int64), model, CPU, np.random.default_rng(seed),
                            batch_size)


def covering_radius(points: np.ndarray, centres) -> float:
    """Brute force: the largest distance of any point to its nearest centre."""
    dist = np.linalg.norm(points[:, None] - points[list(centres)][None], axis=2)
    return float(dist.min(1).max())


def cluster_images(sizes, noise: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """1x4x4 images: cluster c lights row c of the image at 100 + 40c (so clusters differ in norm), plus
    uniform noise in [0, noise] on every pixel. Returns (images (N, 1, 4, 4) uint8, cluster of each (N,))."""
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(len(sizes)), sizes)
    images = rng.integers(0, noise + 1, size=(len(cluster), 1, 4, 4))
    images[np.arange(len(cluster)), 0, cluster] += 100 + 40 * cluster[:, None]
    return images.astype(np.uint8), cluster


# --- core-set -------------------------------------------------------------------------------------------


def test_k_center_greedy_hand_worked():
    points = np.array([[0, 0], [1, 0], [10, 0], [10, 3], [0, 7], [5, 5]], np.float32)
    # Labelled centre 0. Distances to the nearest centre, for points 1..5:
    #   start:      1, 10, 10.44, 7, 7.07  -> pick 3 (10, 3)
    #   after 3:    1, 3, -, 7, 5.39       -> pick 4 (0, 7)   (farthest-from-the-labelled-only would pick 2)
    #   after 4:    1, 3, -, -, 5.39       -> pick 5 (5, 5)
    #   after 5:    1, 3, -, -, -          -> pick 2 (10, 0), leaving radius 1 (point 1)
    picks, radius = k_center_greedy(points, np.array([0]), 4, np.random.default_rng(0))
    assert picks.tolist() == [3, 4, 5, 2] and picks.dtype == np.int64
    assert radius == pytest.approx(1.0)
    picks, radius = k_center_greedy(points, np.array([0]), 3, np.random.default_rng(0))
    assert picks.tolist() == [3, 4, 5] and radius == pytest.approx(3.0)


@pytest.mark.parametrize("labelled", [(), (0, 1)])
def test_k_center_greedy_within_twice_the_optimal_radius(labelled):
    k = 3
    for seed in range(10):
        points = np.random.default_rng(seed).normal(size=(12, 2)).astype(np.float32)
        picks, radius = k_center_greedy(points, np.array(labelled, np.int64), k, np.random.default_rng(seed))
        assert len(set(picks.tolist())) == k and not set(picks.tolist()) & set(labelled)
        assert radius == pytest.approx(covering_radius(points, [*labelled, *picks]), rel=1e-5)
        rest = sorted(set(range(12)) - set(labelled))
        optimal = min(covering_radius(points, [*labelled, *s]) for s in itertools.combinations(rest, k))
        assert radius <= 2 * optimal + 1e-6


def test_k_center_greedy_without_centres_starts_from_the_rng():
    points = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    runs = [k_center_greedy(points, np.array([], np.int64), 5, np.random.default_rng(s))[0] for s in (1, 1, 2, 3)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert len({int(r[0]) for r in runs}) > 1


def test_coreset_chunked_features_pick_what_the_whole_pool_picks():
    images, _ = cluster_images([30, 30, 30], noise=60)
    pool, model = store(images), LinearClassifier((1, 4, 4), 3).eval()
    selection = CoreSetSampling().select(context(pool, [0, 40], model, batch_size=7), 12)
    features = to_float(images, CPU).flatten(1).numpy()  # the linear model's features are its pixels
    picks, radius = k_center_greedy(features, np.array([0, 40]), 12, np.random.default_rng(0))
    np.testing.assert_array_equal(selection.pool_idx, picks)
    assert selection.stats == {"coreset_radius": pytest.approx(radius)}


# --- all three: the contract on pools full of exact duplicates ---------------------------------------------


@pytest.mark.parametrize("strategy", [CoreSetSampling(), BaldSampling(samples=20), BadgeSampling()],
                         ids=["coreset", "bald", "badge"])
def test_never_labelled_nor_twice_even_among_duplicates(strategy):
    images, _ = cluster_images([10, 10, 10, 10], noise=0)  # 4 distinct images, 10 copies each
    pool = store(images)
    torch.manual_seed(0)
    model = LinearClassifier((1, 4, 4), 3, dropout=0.5).eval()
    labelled = [0, 1, 10, 25]
    for n, batch_size in [(5, 1024), (36, 7)]:
        chosen = strategy.select(context(pool, labelled, model, batch_size=batch_size), n).pool_idx
        assert chosen.dtype == np.int64 and len(set(chosen.tolist())) == n
        assert not set(chosen.tolist()) & set(labelled)
    assert set(chosen.tolist()) == set(range(40)) - set(labelled)
    assert not model.dropout.training


# --- BALD --------------------------------------------------------------------------------------------------


def voting_model() -> LinearClassifier:
    """2 classes on 1x2x2 images: pixel 0 votes for class 0, pixel 1 for class 1, dropout 0.5 on the pixels.

    For an image with both pixels on, the masks disagree (mutual information about 0.35 nats); with pixel 0
    on, they give class 0 or a coin flip (about 0.22); with no pixel on, always a coin flip: the highest
    entropy of the three and no disagreement (0).
    """
    model = LinearClassifier((1, 2, 2), 2, dropout=0.5)
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[10.0, 0, 0, 0], [0, 10.0, 0, 0]]))
        model.fc.bias.zero_()
    return model.eval()


def test_bald_ranks_by_disagreement_not_entropy():
    both, first, neither = [255, 255, 0, 0], [255, 0, 0, 0], [0, 0, 0, 0]
    images = np.array([neither] * 20 + [first] * 20 + [both] * 20, np.uint8).reshape(60, 1, 2, 2)
    pool, model = store(images), voting_model()
    chosen = BaldSampling(samples=200).select(context(pool, [], model, batch_size=16), 20).pool_idx
    assert sorted(chosen.tolist()) == list(range(40, 60))
    chosen = BaldSampling(samples=200).select(context(pool, [], model), 40).pool_idx
    assert sorted(chosen.tolist()) == list(range(20, 60))


def test_bald_is_reproducible_and_leaves_torch_rng_alone():
    rng = np.random.default_rng(0)
    pool = store(rng.integers(0, 256, size=(200, 1, 8, 8), dtype=np.uint8))
    torch.manual_seed(0)
    model = LinearClassifier((1, 8, 8), 3, dropout=0.5).eval()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = BaldSampling(samples=20).select(context(pool, [1, 2], model, seed=5), 10).pool_idx
    assert torch.equal(torch.get_rng_state(), state)
    b = BaldSampling(samples=20).select(context(pool, [1, 2], model, seed=5), 10).pool_idx
    c = BaldSampling(samples=20).select(context(pool, [1, 2], model, seed=6), 10).pool_idx
    np.testing.assert_array_equal(a, b)
    assert a.tolist() != c.tolist()  # the masks come from ctx.rng
    assert torch.equal(torch.get_rng_state(), state) and not model.dropout.training


def test_bald_restores_eval_mode_on_error():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model = voting_model()
    model.fc = Broken()
    with pytest.raises(RuntimeError, match="boom"):
        BaldSampling(samples=20).select(context(store(np.zeros((4, 1, 2, 2), np.uint8)), [], model), 2)
    assert not model.dropout.training


def test_bald_without_dropout_names_the_config_key():
    """Checked once, where a run's settings are validated, before any training."""
    with pytest.raises(BadConfig, match=r"'bald' samples the classifier's dropout, but classifier\.dropout = 0"):
        RunSettings.of({"classifier": {"model": "linear", "dropout": 0.0}}, strategy="bald")
    RunSettings.of({"classifier": {"model": "cnn", "dropout": 0.25}}, strategy="bald")


# --- BADGE -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, output_layer", [("linear", "fc"), ("cnn", "head")])
def test_badge_embedding_is_the_output_layer_gradient(kind, output_layer):
    torch.manual_seed(0)
    model = build_classifier(TrainConfig.of(model=kind, dropout=0.0), (1, 8, 8), 3).eval()
    x = torch.rand(6, 1, 8, 8)
    with torch.no_grad():
        features = model.features(x)
        residuals = loss_gradient_logits(model, features)  # (6, 3)
    weight = getattr(model, output_layer).weight  # (3, d)
    for i in range(len(x)):
        logits = model(x[i : i + 1])
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, logits.argmax(1)), weight)
        torch.testing.assert_close(torch.outer(residuals[i], features[i]), grad)


def test_badge_first_pick_is_the_largest_embedding():
    rng = np.random.default_rng(0)
    residuals, features = rng.normal(size=(50, 3)), rng.normal(size=(50, 7))
    norms = np.linalg.norm(residuals[:, :, None] * features[:, None, :], axis=(1, 2))
    for seed in range(3):
        assert kmeans_pp_seeding(residuals, features, 4, np.random.default_rng(seed))[0] == norms.argmax()


def test_badge_picks_one_sample_per_cluster():
    images, cluster = cluster_images([25, 25, 25, 25], noise=3)
    pool = store(images)
    model = LinearClassifier((1, 4, 4), 3)
    with torch.no_grad():  # a uniform prediction: every residual is (-2/3, 1/3, 1/3), the pixels decide
        model.fc.weight.zero_()
        model.fc.bias.zero_()
    for seed in range(5):
        chosen = BadgeSampling().select(context(pool, [], model.eval(), seed=seed, batch_size=16), 4).pool_idx
        assert sorted(cluster[chosen].tolist()) == [0, 1, 2, 3]
        assert cluster[chosen[0]] == 3  # the brightest cluster holds the largest embeddings

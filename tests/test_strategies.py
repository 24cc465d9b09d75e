"""The contract every registered strategy passes, and max-entropy against a known answer."""

import numpy as np
import pytest
import torch
from torch import nn

from asal.data import ImageStore
from asal.errors import BadConfig, PoolExhausted
from asal.models.classifiers import LinearClassifier
from asal.models.gan import ARCHS, Generator
from asal.strategies import STRATEGIES
from asal.strategies.gaal import GenerativeAnnotation

from asal_fixtures import CPU, asal_strategy
from asal.settings import AsalConfig
from asal.strategies.base import SelectionContext, load_strategy


class TableModel(nn.Module):
    """A 'classifier' whose logits for image i are row i of a fixed table (the image's first pixel is i)."""

    def __init__(self, logits: np.ndarray):
        super().__init__()
        self.logits = torch.as_tensor(logits, dtype=torch.float32)

    def forward(self, x):
        return self.logits[(x[:, 0, 0, 0] * 255).round().long()]


def table_pool(n: int, n_classes: int = 3) -> ImageStore:
    images = np.zeros((n, 1, 2, 2), np.uint8)
    images[:, 0, 0, 0] = np.arange(n)
    return ImageStore("mem.h5", images, np.arange(n) % n_classes, list(range(n_classes)), "x")


def context(pool, labelled_idx, model, batch_size=1024, seed=0):
    return SelectionContext(pool, np.asarray(labelled_idx, np.int64), model, CPU, np.random.default_rng(seed),
                            batch_size)


def build(name, pool):
    """Any registered strategy; ASAL and GAAL with small untrained networks (GAAL's oracle a random linear
    model), ASAL's indexes built on ``pool``."""
    if name.startswith("asal-"):
        return asal_strategy(name, pool)
    if name == "gaal":
        torch.manual_seed(2)
        oracle = LinearClassifier(pool.image_shape, pool.n_classes).eval()
        return GenerativeAnnotation(Generator(pool.image_shape, 8, ARCHS["small"]), oracle, AsalConfig.of(steps=5), {})
    return load_strategy(name, settings={"classifier": {"dropout": 0.25}})  # as the image_pool model


@pytest.fixture
def random_table():
    rng = np.random.default_rng(0)
    return table_pool(200), TableModel(rng.normal(0, 3, size=(200, 3)))


@pytest.fixture
def image_pool():
    """200 random 8x8 images, 3 classes, and a random linear classifier that gives them distinct scores
    (with a dropout layer for BALD to sample; in eval mode it changes nothing for the others)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(200, 1, 8, 8), dtype=np.uint8)
    torch.manual_seed(0)
    model = LinearClassifier((1, 8, 8), 3, dropout=0.25).eval()
    return ImageStore("mem.h5", images, np.arange(200) % 3, [0, 1, 2], "x"), model


@pytest.mark.parametrize("name", STRATEGIES)
def test_contract(name, image_pool):
    pool, model = image_pool
    labelled = np.arange(0, 200, 3)
    strategy = build(name, pool)
    if strategy.whole_pool:  # the fully supervised bound is trained on everything and never selects
        with pytest.raises(RuntimeError, match="never asks it to select"):
            strategy.select(context(pool, labelled, model), 25)
        return
    if not strategy.labels_pool:  # GAAL: annotated synthetic images, however few pool samples are unlabelled
        selection = strategy.select(context(pool, np.arange(199), model), 25)
        assert len(selection.pool_idx) == 0 and selection.new_images.shape == (25, *pool.image_shape)
        assert selection.new_images.dtype == np.uint8 and selection.new_labels.dtype == np.int64
        expected = strategy.oracle(torch.from_numpy(selection.new_images).float() / 255).argmax(1).numpy()
        np.testing.assert_array_equal(selection.new_labels, expected)  # the labels are the oracle's
        return
    chosen = strategy.select(context(pool, labelled, model), 25).pool_idx
    assert chosen.dtype == np.int64 and len(chosen) == 25 and len(set(chosen.tolist())) == 25
    assert not set(chosen.tolist()) & set(labelled.tolist())
    assert ((0 <= chosen) & (chosen < 200)).all()
    unlabelled = 200 - len(labelled)
    everything = strategy.select(context(pool, labelled, model), unlabelled).pool_idx
    assert sorted(everything.tolist()) == sorted(set(range(200)) - set(labelled.tolist()))
    with pytest.raises(PoolExhausted, match=f"asked for {unlabelled + 1} samples but only {unlabelled}"):
        strategy.select(context(pool, labelled, model), unlabelled + 1)


@pytest.mark.parametrize("name", STRATEGIES)
def test_same_rng_same_choice(name, image_pool):
    pool, model = image_pool
    if build(name, pool).whole_pool:
        pytest.skip("the fully supervised bound makes no choice")
    a = build(name, pool).select(context(pool, [1, 2], model, seed=5), 10)
    b = build(name, pool).select(context(pool, [1, 2], model, seed=5), 10)
    np.testing.assert_array_equal(a.pool_idx, b.pool_idx)
    untimed = lambda stats: {k: v for k, v in stats.items() if not k.endswith("_seconds")}  # noqa: E731
    assert untimed(a.stats) == untimed(b.stats)
    assert (a.synthetic is None and b.synthetic is None) or torch.equal(a.synthetic, b.synthetic)
    assert (a.new_labels is None and b.new_labels is None) or np.array_equal(a.new_labels, b.new_labels)


def test_max_entropy_picks_the_known_rows():
    n = 50
    logits = np.zeros((n, 3))
    logits[:, 0] = 10.0  # confident everywhere ...
    uncertain = {7: 0.0, 21: 0.5, 33: 1.0, 40: 2.0}  # ... except these, most uncertain first
    for row, peak in uncertain.items():
        logits[row] = [peak, 0, 0]
    pool, model = table_pool(n), TableModel(logits)
    chosen = load_strategy("max-entropy").select(context(pool, [], model), 3).pool_idx
    assert chosen.tolist() == [7, 21, 33]
    chosen = load_strategy("max-entropy").select(context(pool, [7], model), 3).pool_idx
    assert chosen.tolist() == [21, 33, 40]


def test_max_entropy_chunked_equals_whole(random_table):
    pool, model = random_table
    whole = load_strategy("max-entropy").select(context(pool, [3, 4], model, batch_size=10_000), 30).pool_idx
    chunked = load_strategy("max-entropy").select(context(pool, [3, 4], model, batch_size=7), 30).pool_idx
    np.testing.assert_array_equal(whole, chunked)


def test_random_is_uniform_over_unlabelled(random_table):
    pool, model = random_table
    counts = np.zeros(200)
    for seed in range(300):
        counts[load_strategy("random").select(context(pool, [0, 1], model, seed=seed), 10).pool_idx] += 1
    assert counts[:2].sum() == 0
    assert counts[2:].min() > 0 and counts[2:].std() / counts[2:].mean() < 0.4


def test_bald_refuses_a_classifier_without_dropout_before_any_training():
    with pytest.raises(BadConfig, match="'bald' needs classifier.dropout above 0"):
        load_strategy("bald", settings={"classifier": {"dropout": 0.0}})


def test_unknown_strategy():
    with pytest.raises(BadConfig, match="'nope' is not registered"):
        load_strategy("nope")

"""The contract every registered strategy passes, and max-entropy against a known answer."""

import numpy as np
import pytest
import torch
from torch import nn

from asal.annotators import DatasetLabels
from asal.data import ImageStore
from asal.errors import BadConfig, PoolExhausted
from asal.strategies import STRATEGIES
from asal.strategies.base import SelectionContext, load_strategy

from asal_fixtures import CPU, StrategyWorld


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


@pytest.fixture
def random_table():
    rng = np.random.default_rng(0)
    return table_pool(200), TableModel(rng.normal(0, 3, size=(200, 3)))


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """Every file any registered strategy may declare, made by the package's stages on tiny data."""
    return StrategyWorld(tmp_path_factory.mktemp("world"))


@pytest.mark.parametrize("name", STRATEGIES)
def test_contract(name, world):
    """Every registered strategy, built from nothing but its registry entry's declared files: ``n`` distinct
    queries that the run's annotator answers, never a taken pool sample, and a clear error past the pool."""
    labelled = np.arange(0, 120, 3)
    strategy, ctx = world.context(name, labelled)
    pool = ctx.pool
    if strategy.whole_pool:  # the fully supervised bound is trained on everything and never selects
        with pytest.raises(RuntimeError, match="never asks it to select"):
            strategy.select(ctx, 25)
        return
    selection = strategy.select(ctx, 25)
    answer = strategy.annotator(DatasetLabels(pool)).annotate(selection)
    assert answer.n_annotated == 25 == selection.n_annotated
    taken = selection.taken()
    assert taken.dtype == np.int64 and len(set(taken.tolist())) == len(taken)
    assert not set(taken.tolist()) & set(labelled.tolist()) and ((0 <= taken) & (taken < len(pool))).all()
    if not strategy.labels_pool:  # synthetic queries (GAAL's images, ADBA's lines), answered by its annotator
        assert len(selection.pool_idx) == 0 and selection.n_queries == 25
        assert all(len(rows) == 25 for rows in answer.synthetic.values())
        return
    np.testing.assert_array_equal(answer.labels, pool.labels[selection.pool_idx])
    unlabelled = len(pool) - len(labelled)
    everything = strategy.select(ctx, unlabelled).pool_idx
    assert sorted(everything.tolist()) == sorted(set(range(len(pool))) - set(labelled.tolist()))
    with pytest.raises(PoolExhausted, match=f"asked for {unlabelled + 1} samples but only {unlabelled}"):
        strategy.select(ctx, unlabelled + 1)


@pytest.mark.parametrize("name", STRATEGIES)
def test_same_rng_same_choice(name, world):
    strategy, ctx = world.context(name, [1, 2, 3, 4, 5, 6], seed=5)
    if strategy.whole_pool:
        pytest.skip("the fully supervised bound makes no choice")
    a = strategy.select(ctx, 10)
    b = world.context(name, [1, 2, 3, 4, 5, 6], seed=5)[0].select(world.context(name, [1, 2, 3, 4, 5, 6], seed=5)[1], 10)
    np.testing.assert_array_equal(a.taken(), b.taken())
    untimed = lambda stats: {k: v for k, v in stats.items() if not k.endswith("_seconds")}  # noqa: E731
    assert untimed(a.stats) == untimed(b.stats)
    assert (a.generated is None and b.generated is None) or torch.equal(a.generated, b.generated)
    assert (a.queries is None and b.queries is None) or all(np.array_equal(a.queries[k], b.queries[k]) for k in a.queries)


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


def test_unknown_strategy():
    with pytest.raises(BadConfig, match="'nope' is not registered"):
        load_strategy("nope")

"""ASAL's parts: the entropy ascent, matching without replacement, a cost independent of the pool size, and
loading from the workflow's files."""

import tracemalloc

import numpy as np
import pytest
import torch

from asal.config import validate_config, validate_slice
from asal.data import ImageStore
from asal.errors import BadConfig
from asal.features import load_extractor, project_pool
from asal.matching import PCAProjection, build_index, load_index, make_index, match_without_replacement
from asal.models.classifiers import LinearClassifier, train_classifier
from asal.models.gan import ARCHS, Generator
from asal.strategies.adversarial import (FixedSpace, frozen_for_ascent, mean_cosine_similarity, rerank_matches,
                                         uncertainty_ascent)

from asal_fixtures import CPU, asal_strategy
from asal.images import to_float
from asal.scores import from_logits
from asal.settings import TrainConfig
from asal.strategies.base import SelectionContext, load_strategy


class PrototypeMixer(torch.nn.Module):
    """A stand-in for a trained generator: z (B, 8) -> a softmax(4 z[:, :K]) mixture of the K class-mean images,
    so a random z mostly gives one clear class and the ascent must find mixtures."""

    latent_dim = 8

    def __init__(self, pool):
        super().__init__()
        means = [pool.images[pool.labels == c].mean(0) / 255.0 for c in range(pool.n_classes)]
        self.prototypes = torch.nn.Parameter(torch.as_tensor(np.stack(means), dtype=torch.float32))

    def forward(self, z):
        weights = torch.softmax(4 * z[:, : len(self.prototypes)], dim=1)
        return torch.einsum("bk,kchw->bchw", weights, self.prototypes)


def test_uncertainty_ascent_raises_entropy_and_touches_no_weights(tiny_stores):
    pool, _ = tiny_stores
    model = train_classifier(TrainConfig.of(model="linear", optimizer="lbfgs", lr=1.0, steps=50, weight_decay=0.01),
                             pool.images, pool.labels, pool.n_classes, seed=0, device=CPU)
    model.zero_grad(set_to_none=True)  # training left gradients; the ascent must add none
    generator = PrototypeMixer(pool)
    before = [p.clone() for p in (*model.parameters(), *generator.parameters())]
    ascent = uncertainty_ascent(generator, model, 16, steps=40, lr=0.05, seed=0, device=CPU)
    assert ascent.images.shape == (16, *pool.image_shape) and ascent.z.shape == (16, 8)
    assert len(ascent.history) == 41 and ascent.history[0] == pytest.approx(ascent.entropy_start.mean(), rel=1e-5)
    assert ascent.history[-1] > ascent.history[0] + 0.2  # nats; the maximum for 3 classes is 1.10
    assert (ascent.entropy_end > ascent.entropy_start).mean() >= 0.9
    assert all(torch.equal(a, b) for a, b in zip(before, (*model.parameters(), *generator.parameters())))
    assert all(p.grad is None for p in (*model.parameters(), *generator.parameters()))
    again = uncertainty_ascent(generator, model, 16, steps=40, lr=0.05, seed=0, device=CPU)
    assert torch.equal(ascent.images, again.images)


def test_latent_constraints_do_what_they_say(tiny_stores):
    pool, _ = tiny_stores
    torch.manual_seed(0)
    model = LinearClassifier(pool.image_shape, pool.n_classes).eval()
    generator = Generator(pool.image_shape, 8, ARCHS["small"])
    run = lambda **kw: uncertainty_ascent(generator, model, 12, steps=30, lr=0.1, seed=0, device=CPU, **kw)  # noqa: E731
    plain, sphere = run(), run(sphere=True)
    np.testing.assert_allclose(sphere.z.norm(dim=1).numpy(), np.sqrt(8), rtol=1e-5)  # on the typical set
    assert run(prior_weight=1.0).z.norm(dim=1).mean() < plain.z.norm(dim=1).mean()  # pulled toward the mode
    with torch.no_grad():
        similarity = lambda a: float(mean_cosine_similarity(model.features(a.images)))  # noqa: E731
    assert similarity(run(diversity=5.0)) < similarity(plain)  # a more varied batch
    assert float(mean_cosine_similarity(torch.ones(1, 4))) == 0.0


def test_rerank_takes_each_querys_most_uncertain_free_candidate():
    points = np.arange(20, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)  # a line: row i at (i, i)
    index = make_index("flat").build(points)
    uncertainty = np.where(np.arange(20) % 5 == 2, 1.0, 0.1)  # rows 2, 7, 12, 17 are the uncertain ones
    asked = []

    def score(idx):
        asked.append(idx)
        return uncertainty[idx]

    queries = points[[0, 1, 15]]
    idx, dist, rows, scored = rerank_matches(index, queries, 3, {2}, candidates=5, score=score)
    # query 0 sees rows 0-4 (2 is labelled), query 1 rows 0-4 too: both fall back to the nearer of equals
    assert idx.tolist() == [0, 1, 17] and rows.tolist() == [0, 1, 2]
    np.testing.assert_allclose(dist, [0, 0, np.sqrt(8)], atol=1e-5)
    assert len(asked) == 1 and asked[0].tolist() == sorted(set(range(5)) - {2} | set(range(13, 18)))
    assert scored == len(asked[0])
    # every candidate of the second query taken or labelled: it is matched as plain ASAL matches
    idx, _, rows, _ = rerank_matches(index, points[[0, 0]], 2, {1, 2, 3}, candidates=2, score=score)
    assert idx.tolist() == [0, 4] and sorted(rows.tolist()) == [0, 1]


def test_ascent_copy_folds_batch_norm_and_leaves_the_callers_generator_alone():
    torch.manual_seed(0)
    generator = Generator((3, 16, 16), 8, ARCHS["dcgan"])
    with torch.no_grad():  # batch-norm statistics far from their initial identity, so a wrong fold shows
        for bn in (m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.uniform_(0.5, 2)
    generator.train()
    copy = frozen_for_ascent(generator)
    kinds = [type(m).__name__ for m in copy.net]
    assert kinds.count("BatchNorm2d") == 1 and kinds.count("Identity") == 2  # the one after the linear layer stays
    assert not copy.training and not any(p.requires_grad for p in copy.parameters())
    assert copy.net[2].weight.is_contiguous(memory_format=torch.channels_last)
    assert generator.training and all(p.requires_grad for p in generator.parameters())
    assert generator.net[2].weight.is_contiguous()  # the caller's layout is untouched
    z = torch.randn(5, 8)
    with torch.no_grad():
        torch.testing.assert_close(copy(z), generator.eval()(z), rtol=1e-5, atol=1e-5)


def test_matching_widens_k_and_never_returns_blocked_or_duplicates():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(300, 4)).astype(np.float32)
    index = make_index("flat").build(points)
    query = np.zeros((1, 4), np.float32)
    order = np.argsort(np.linalg.norm(points, axis=1), kind="stable")
    blocked = set(order[:25].tolist())  # the 25 nearest to the query are labelled
    # 12 identical queries with k = 2: every one after the first must widen past blocked and taken samples
    idx, dist, rows = match_without_replacement(index, np.repeat(query, 12, axis=0), 10, blocked, k=2)
    assert idx.tolist() == order[25:35].tolist()
    np.testing.assert_allclose(dist, np.linalg.norm(points[idx], axis=1), rtol=1e-5)
    assert len(set(rows.tolist())) == 10 and rows.max() < 12


def test_matching_takes_each_query_nearest_free_sample_in_query_order():
    points = np.arange(10, dtype=np.float32)[:, None]  # 1-D points 0..9
    index = make_index("kdtree").build(points)
    queries = np.array([[2.1], [2.2], [7.0]], np.float32)
    idx, _, rows = match_without_replacement(index, queries, 3, {2}, k=1)
    # 2 is labelled; 2.1 widens to its next nearest, 3, before 2.2 picks, which then gets 1
    assert idx.tolist() == [3, 1, 7] and rows.tolist() == [0, 1, 2]


def test_matching_fails_clearly_when_everything_is_blocked():
    index = make_index("flat").build(np.eye(3, dtype=np.float32))
    with pytest.raises(RuntimeError, match="fewer than 2 unblocked"):
        match_without_replacement(index, np.eye(3, dtype=np.float32), 2, {0, 1}, k=1)


class CountingImages:
    """Pool images that count the rows anyone reads."""

    def __init__(self, images: np.ndarray):
        self.array, self.rows_read = images, 0
        self.shape, self.dtype = images.shape, images.dtype

    def __len__(self):
        return len(self.array)

    def __getitem__(self, item):
        out = self.array[item]
        self.rows_read += len(out) if out.ndim == self.array.ndim else 1
        return out


def selection_footprint(name: str, n_pool: int) -> tuple[int, int]:
    """(peak bytes numpy and Python allocated, pool rows read: images and labels) for one selection of 10 from
    a pool of n_pool. tracemalloc sees numpy's allocations, not torch's; torch here only runs the fixed-size
    ascent and the synthetic batch's features."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n_pool, 1, 8, 8), dtype=np.uint8)
    pool = ImageStore("mem.h5", images, rng.integers(0, 3, n_pool), [0, 1, 2], "x")
    strategy = asal_strategy(name, pool, index="kdtree") if name.startswith("asal-") else load_strategy(name)
    pool.images, pool.labels = CountingImages(images), CountingImages(pool.labels)
    torch.manual_seed(0)
    model = LinearClassifier((1, 8, 8), 3).eval()
    labelled = np.arange(0, 1000, 20)
    select = lambda: strategy.select(SelectionContext(pool, labelled, model, CPU, np.random.default_rng(0)), 10)  # noqa: E731
    select()  # warm up caches and lazy imports
    pool.images.rows_read = pool.labels.rows_read = 0
    tracemalloc.start()
    select()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, pool.images.rows_read + pool.labels.rows_read


def test_reranking_reads_a_bounded_number_of_pool_samples_whatever_the_pool():
    """asal-plus scores at most 10 x rerank candidates, the same few kB for 1,000 or 100,000 samples."""
    small_peak, small_rows = selection_footprint("asal-plus-raw", 1_000)
    large_peak, large_rows = selection_footprint("asal-plus-raw", 100_000)
    rerank = validate_slice({}, "asal_plus")["rerank"]
    assert 0 < small_rows <= 2 * 10 * rerank and 0 < large_rows <= 2 * 10 * rerank  # images and labels
    assert abs(large_peak - small_peak) < 100_000, (small_peak, large_peak)


@pytest.mark.parametrize("name", ["asal-raw", "asal-disc"])
def test_selection_cost_does_not_grow_with_the_pool(name):
    """ASAL reads no pool image and allocates nothing pool-sized: 1,000 and 100,000 samples cost the same
    (an int64 array over the larger pool alone would be 800 kB). Max-entropy, the positive control, does both."""
    small_peak, small_rows = selection_footprint(name, 1_000)
    large_peak, large_rows = selection_footprint(name, 100_000)
    assert small_rows == large_rows == 0
    assert abs(large_peak - small_peak) < 50_000, (small_peak, large_peak)
    control_small, _ = selection_footprint("max-entropy", 1_000)
    control_large, control_rows = selection_footprint("max-entropy", 100_000)
    assert control_rows == 100_000 - 50 and control_large - control_small > 800_000


def test_asal_from_files_names_what_is_missing():
    with pytest.raises(BadConfig, match="'asal-auto' needs --features-model, --pca, --index"):
        load_strategy("asal-auto", files={"gan": "models/x/gan.pt"})


def test_config_rejects_asal_without_its_feature_space():
    config = {"experiments": {"e": {"data": {"source": "npz", "path": "x.npz"}, "strategies": ["asal-auto"],
                                    "matching": {"spaces": ["raw"]}}}}
    with pytest.raises(BadConfig, match=r"experiments\.e\.strategies: 'asal-auto' needs 'auto' in matching\.spaces"):
        validate_config(config)
    config["experiments"]["e"]["strategies"] = ["asal-cls", "asal-raw"]
    config["experiments"]["e"]["asal"] = {"batch_size": 5}
    with pytest.raises(BadConfig, match=r"experiments\.e: asal\.batch_size = 5 is smaller than al\.new = 100"):
        validate_config(config)
    del config["experiments"]["e"]["asal"]
    assert validate_config(config)["experiments"]["e"]["asal"] == {"steps": 100, "lr": 0.02, "batch_size": None, "k": 10,
                                                               "tolerance": 0.001, "patience": 10}


def test_more_codes_than_samples_match_the_most_uncertain(tiny_stores):
    pool, _ = tiny_stores
    model = LinearClassifier(pool.image_shape, pool.n_classes).eval()
    ctx = lambda: SelectionContext(pool, np.arange(10), model, CPU, np.random.default_rng(3))  # noqa: E731
    wide = asal_strategy("asal-raw", pool, batch_size=32).select(ctx(), 8)
    ascent = uncertainty_ascent(asal_strategy("asal-raw", pool).generator, model, 32, steps=5, lr=0.02,
                            seed=int(np.random.default_rng(3).integers(2**63)), device=CPU)
    top8 = np.sort(ascent.entropy_end)[::-1][:8]
    assert wide.stats["synthetic_entropy"] == pytest.approx(top8.mean(), rel=1e-5)
    assert wide.generated.shape == (8, *pool.image_shape)
    with torch.no_grad():
        shown = from_logits("entropy", model(wide.generated)).numpy()
    np.testing.assert_allclose(np.sort(shown)[::-1], top8, rtol=1e-5)  # the synthetic images behind the picks


def test_synthetic_features_take_the_pool_code_path(tiny_stores, tmp_path):
    """A pool image fed back as a 'synthetic' sample lands on its own row of the stored pool features, at
    distance 0: extraction, PCA and index files are the ones the workflow writes."""
    pool, _ = tiny_stores
    project_pool(load_extractor("raw", None, CPU), pool.path, tmp_path / "pca.h5", dims=5)
    build_index("flat", tmp_path / "pca.h5", tmp_path / "flat.index")
    space = FixedSpace(load_extractor("raw", None, CPU), PCAProjection.load(tmp_path / "pca.h5"),
                       load_index(tmp_path / "flat.index"))
    rows = np.array([0, 17, 200])
    dist, idx = space.index.search(space.embed(to_float(pool.images[rows], CPU)), 1)
    assert idx[:, 0].tolist() == rows.tolist() and np.allclose(dist, 0, atol=1e-3)


def test_matching_on_an_approximate_index_widens_past_unprobed_lists():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(2000, 8)).astype(np.float32)
    index = make_index("ivf", ivf_nlist=50, ivf_nprobe=1).build(points)
    blocked = set(range(2000)) - set(range(0, 2000, 7))  # every seventh sample is free
    idx, dist, _ = match_without_replacement(index, points[:5], 5, blocked, k=4)
    assert len(set(idx.tolist())) == 5 and all(i % 7 == 0 for i in idx) and np.isfinite(dist).all()


def test_the_ascent_stops_early_on_a_saturated_problem_and_runs_to_the_cap_on_one_that_climbs():
    """A classifier that is uncertain everywhere (constant logits: every code at the entropy's ceiling) stops
    at once; one whose entropy keeps climbing runs every step; tolerance 0 always runs every step."""
    torch.manual_seed(0)
    generator = Generator((1, 8, 8), 8, ARCHS["small"]).eval()

    class Flat(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(len(x), 3) + 0 * x.flatten(1).sum(1, keepdim=True)

    flat = uncertainty_ascent(generator, Flat(), 6, steps=50, lr=0.05, seed=1, device=CPU, tolerance=1e-3)
    assert flat.steps == 0 and len(flat.history) == 1 and flat.entropy_end == pytest.approx(np.log(3), abs=1e-6)
    torch.manual_seed(1)
    climbing = LinearClassifier((1, 8, 8), 3).eval()
    with torch.no_grad():
        climbing.fc.weight.mul_(200)  # confident everywhere: the entropy climbs slowly from near 0
    ascent = uncertainty_ascent(generator, climbing, 6, steps=20, lr=0.01, seed=1, device=CPU, tolerance=1e-6,
                                patience=5)
    assert ascent.steps == 20 and len(ascent.history) == 21 and np.all(np.diff(ascent.history[-6:]) > 0)
    fixed = uncertainty_ascent(generator, Flat(), 6, steps=7, lr=0.05, seed=1, device=CPU)
    assert fixed.steps == 7

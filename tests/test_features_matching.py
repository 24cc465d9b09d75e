"""Feature extraction and projection (one code path for pool and synthetic images), PCA, and every index
against brute force."""

import h5py
import numpy as np
import pytest
import torch

from asal.autoencoder import load_autoencoder, train_autoencoder
from asal.errors import BadConfig
from asal.features import load_extractor, project_pool
from asal.matching import PCAProjection, build_index, fit_pca, load_index, make_index, pca_fit_rows
from asal.wgan import load_gan, sample, train_gan
from asal.settings import AutoencoderConfig, GanConfig, GanQualityConfig

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def models(tmp_path_factory, request):
    """A tiny GAN and autoencoder trained on the tiny pool."""
    from asal.config import validate_slice
    from asal.data import prepare_data, read_split

    from conftest import make_images

    tmp = tmp_path_factory.mktemp("models")
    x, y = make_images(360, n_classes=3, side=12)
    np.savez(tmp / "tiny.npz", x=x, y=y)
    prepare_data(validate_slice({"source": "npz", "path": str(tmp / "tiny.npz")}, "data"), tmp / "pool.h5", tmp / "test.h5")
    pool, test = read_split(tmp / "pool.h5"), read_split(tmp / "test.h5")
    train_gan(GanConfig.of(iterations=3, batch_size=16, critic_iters=1, latent_dim=8), pool, tmp / "gan.pt", device=CPU,
              samples_png=tmp / "g.png", losses_csv=tmp / "g.csv")
    metrics = train_autoencoder(AutoencoderConfig.of(steps=30, batch_size=32), pool, test, tmp / "ae.pt", device=CPU,
                                recon_png=tmp / "ae.png", metrics_json=tmp / "ae.json")
    return tmp, pool, metrics


def test_autoencoder_outputs(models):
    tmp, _, metrics = models
    assert 0 < metrics["test_mse"] < 0.2
    assert (tmp / "ae.png").read_bytes()[:4] == b"\x89PNG"
    model, saved = load_autoencoder(tmp / "ae.pt", CPU)
    assert model.encode(torch.rand(2, 1, 12, 12)).shape == (2, 64) and saved["config"]["steps"] == 30


@pytest.mark.parametrize("space, model, dim", [("raw", None, 144), ("auto", "ae.pt", 64), ("disc", "gan.pt", 64 * 3 * 3)])
@pytest.mark.parametrize("fit_samples", [100, 10_000])  # a sample of the pool (two passes), or all of it (one)
def test_streamed_projection_equals_project_after_extract(models, tmp_path, space, model, dim, fit_samples):
    """project-features never holds the pool's features, yet writes what extracting them all, fitting the PCA
    on the same rows and projecting would; a synthetic image takes the same path (the extractor, the PCA)."""
    tmp, pool, _ = models
    extractor = load_extractor(space, tmp / model if model else None, CPU)
    projection = project_pool(extractor, tmp / "pool.h5", tmp_path / "p.h5", dims=6, seed=3,
                              max_fit_samples=fit_samples, batch_size=7)
    feats = extractor(torch.from_numpy(pool.images[()]).float() / 255).numpy()  # (N, d), one batch
    assert feats.shape == (len(pool), dim)
    reference = fit_pca(feats[pca_fit_rows(len(pool), fit_samples, 3)], 6, seed=3)
    with h5py.File(tmp_path / "p.h5") as fh:
        np.testing.assert_allclose(fh["projected"][()], reference.transform(feats), atol=2e-4)
        np.testing.assert_allclose(fh["components"][()], reference.components_, atol=1e-4)
        assert fh.attrs["space"] == space and fh["projected"].dtype == np.float32 and fh.attrs["features"] == dim
        assert fh.attrs["pool_config_hash"] == pool.config_hash and fh.attrs["fit_samples"] == min(fit_samples, len(pool))
        if model:
            assert fh.attrs["model"].endswith(model) and len(fh.attrs["model_config_hash"]) == 16
        stored = fh["projected"][:5]
    assert PCAProjection.load(tmp_path / "p.h5").fingerprint() == projection.fingerprint()
    direct = projection.transform(extractor(torch.from_numpy(pool.images[:5]).float() / 255).numpy())
    np.testing.assert_allclose(stored, direct, atol=1e-4)
    generator, _, _ = load_gan(tmp / "gan.pt", CPU)
    assert extractor(sample(generator, 4, seed=0)).shape == (4, dim)


def test_space_and_model_must_agree(models):
    tmp, _, _ = models
    with pytest.raises(BadConfig, match="needs the gan model"):
        load_extractor("disc", None, CPU)
    with pytest.raises(BadConfig, match="needs no model"):
        load_extractor("raw", tmp / "gan.pt", CPU)


def test_pca_matches_sklearn(tmp_path):
    rng = np.random.default_rng(0)
    feats = (rng.normal(size=(500, 30)) @ rng.normal(size=(30, 30))).astype(np.float32)
    projection = fit_pca(feats, 5)
    from sklearn.decomposition import PCA

    reference = PCA(5, svd_solver="full").fit(feats)
    np.testing.assert_allclose(np.abs(projection.components_), np.abs(reference.components_), atol=1e-4)
    np.testing.assert_allclose(projection.explained_variance_, reference.explained_variance_, rtol=1e-4)
    with pytest.raises(BadConfig, match="pca_dims = 40 exceeds the 30 features"):
        fit_pca(feats, 40)
    rows = pca_fit_rows(500, 200, seed=1)
    assert len(rows) == 200 and np.all(np.diff(rows) > 0) and rows.tolist() == pca_fit_rows(500, 200, seed=1).tolist()
    assert pca_fit_rows(150, 200, seed=1).tolist() == list(range(150))


def brute_force(points, queries, k):
    d2 = ((queries[:, None, :].astype(np.float64) - points[None].astype(np.float64)) ** 2).sum(-1)
    idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return np.sqrt(np.take_along_axis(d2, idx, 1)), idx


@pytest.fixture(scope="module")
def pca_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("idx")
    points = np.random.default_rng(1).normal(size=(3000, 8)).astype(np.float32)
    with h5py.File(tmp / "pca.h5", "w") as fh:
        fh["projected"] = points
    return tmp / "pca.h5", points


@pytest.mark.parametrize("kind", ["kdtree", "flat"])
def test_exact_indexes_equal_brute_force(pca_file, tmp_path, kind):
    path, points = pca_file
    queries = np.random.default_rng(2).normal(size=(200, 8)).astype(np.float32)
    build_index(kind, path, tmp_path / "i.index")
    dist, idx = load_index(tmp_path / "i.index", kind).search(queries, 10)
    ref_dist, ref_idx = brute_force(points, queries, 10)
    assert dist.dtype == np.float32 and idx.dtype == np.int64 and idx.shape == (200, 10)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4)


@pytest.mark.parametrize("kind, params", [("ivf", {"ivf_nlist": 16, "ivf_nprobe": 16}),
                                          ("ivf", {"ivf_quantizer": "hnsw", "ivf_nlist": 16, "ivf_nprobe": 16}),
                                          ("hnsw", {"hnsw_ef_search": 200})])
def test_approximate_indexes_recall(pca_file, tmp_path, kind, params):
    """At full probing the approximate indexes are (nearly) exact: a check that they index the right points."""
    path, points = pca_file
    queries = np.random.default_rng(3).normal(size=(200, 8)).astype(np.float32)
    build_index(kind, path, tmp_path / "i.index", **params)
    _, idx = load_index(tmp_path / "i.index", kind).search(queries, 10)
    _, ref = brute_force(points, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, ref)])
    assert recall > 0.95, recall


def test_ivf_lists_by_pool_size_and_a_bounded_training_sample():
    import faiss

    from asal.matching import FaissIndex, auto_nlist

    assert [auto_nlist(n) for n in (4_000, 65_536, 1_000_000, 16_000_000)] == [128, 512, 2048, 8192]
    points = np.random.default_rng(4).normal(size=(3_000, 8)).astype(np.float32)
    index = make_index("ivf", ivf_quantizer="hnsw").build(points)
    assert index.index_.nlist == min(auto_nlist(3_000), 3_000 // 39) == 76  # 128 lists capped at 39 points each
    assert isinstance(faiss.downcast_index(index.index_.quantizer), faiss.IndexHNSWFlat)
    assert index.index_.cp.max_points_per_centroid == FaissIndex.IVF_TRAIN_PER_LIST
    with pytest.raises(BadConfig, match="ivf_quantizer = 'pq'"):
        make_index("ivf", ivf_quantizer="pq").build(points)


def test_auto_index_is_exact_for_small_pools_and_ivf_beyond(pca_file, tmp_path, monkeypatch):
    import faiss

    from asal import matching

    path, points = pca_file
    build_index("auto", path, tmp_path / "small.index")
    assert load_index(tmp_path / "small.index").kind == "flat"
    monkeypatch.setattr(matching, "AUTO_EXACT_MAX", len(points) - 1)
    build_index("auto", path, tmp_path / "large.index", ivf_nprobe=4)
    large = load_index(tmp_path / "large.index")
    assert large.kind == "ivf" and large.index_.nprobe == 4
    assert isinstance(faiss.downcast_index(large.index_.quantizer), faiss.IndexHNSWFlat)


def test_index_input_validation(pca_file):
    _, points = pca_file
    index = make_index("flat").build(points)
    with pytest.raises(ValueError, match=r"queries must be \(n, 8\)"):
        index.search(np.zeros((2, 3)), 1)
    with pytest.raises(BadConfig, match="matching.index = 'annoy'"):
        make_index("annoy")


def test_gan_quality_report(models, tmp_path):
    import json

    from asal.data import read_split
    from asal.quality import gan_quality, train_oracle
    from asal.settings import TrainConfig

    tmp, pool, _ = models
    test = read_split(tmp / "test.h5")
    oracle = train_oracle(TrainConfig.of(model="cnn", steps=60, batch_size=32), pool, test, tmp_path / "o.pt",
                          tmp_path / "o.json", device=CPU)
    assert oracle["test_accuracy"] > 0.8 and oracle["trained_on"] == len(pool)
    metrics = gan_quality(tmp / "gan.pt", tmp_path / "o.pt", tmp_path / "o.json", tmp_path / "m.json",
                          pool=pool, cfg=GanQualityConfig.of(samples=300), device=CPU)
    assert json.loads((tmp_path / "m.json").read_text()) == metrics
    assert set(metrics["class_fractions"]) == {"0", "1", "2"}
    assert sum(metrics["class_fractions"].values()) == pytest.approx(1)
    assert 0 <= metrics["confident_fraction"] <= 1 and metrics["oracle_test_accuracy"] == oracle["test_accuracy"]
    assert metrics["passed"] == (not metrics["failures"]) and sum(metrics["pool_class_shares"].values()) == pytest.approx(1)


def test_the_quality_gate_names_each_failing_figure():
    from asal.quality import judge

    shares = {"a": 0.5, "b": 0.25, "c": 0.25}
    cfg = GanQualityConfig.of()  # the defaults: 0.5x to 1.5x of each class's pool share, over half confident
    good = {"class_fractions": {"a": 0.45, "b": 0.3, "c": 0.25}, "confident_fraction": 0.8, "confidence_threshold": 0.9}
    assert judge(good, shares, cfg) == []
    bad = {"class_fractions": {"a": 0.9, "b": 0.1, "c": 0.0}, "confident_fraction": 0.3, "confidence_threshold": 0.9}
    failures = judge(bad, shares, cfg)
    assert len(failures) == 4  # a too common, b and c too rare, too few confident
    assert failures[0].startswith("class a: 90.0 % of the samples against 50.0 % of the pool (1.80x")
    assert "class c: 0.0 %" in failures[2] and "only 30.0 % of the samples" in failures[3]


def test_a_run_warns_when_its_gan_failed_the_gate_and_stays_quiet_when_it_passed(tmp_path, caplog):
    import json

    from asal.quality import warn_if_failed

    passed, failed = tmp_path / "passed.json", tmp_path / "failed.json"
    passed.write_text(json.dumps({"passed": True, "failures": []}))
    failed.write_text(json.dumps({"passed": False, "failures": ["class 7: 0.0 % of the samples"]}))
    with caplog.at_level("WARNING"):
        assert warn_if_failed(passed) == [] and warn_if_failed(None) == []
        assert not caplog.records
        assert warn_if_failed(failed) == ["class 7: 0.0 % of the samples"]
    assert "THE GAN FAILED ITS QUALITY GATE" in caplog.text and "class 7: 0.0 %" in caplog.text

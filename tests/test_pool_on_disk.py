"""Pools larger than memory (issue 20): rows read from disk on demand, runs that give the results of a pool held
in memory, and reads per ASAL cycle that do not grow with the pool."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from asal.config import validate_slice
from asal.data import prepare_data, read_split, training_sample
from asal.data.rows import StoredRows
from asal.features import load_extractor, project_pool
from asal.loop import run_active_learning
from asal.matching import build_index
from asal.runfiles import IO_COLUMNS
from asal.settings import GanConfig, RunSettings
from asal.strategies.base import load_strategy
from asal.wgan import train_gan
from asal_fixtures import StrategyWorld

from conftest import make_images

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return StrategyWorld(tmp_path_factory.mktemp("world"))


def test_stored_rows_index_as_the_array(tmp_path):
    """Any order, repeats, negative rows, slices and single rows: what numpy gives; each call counted."""
    import h5py

    x = np.arange(1000 * 6, dtype=np.uint8).reshape(1000, 2, 3)
    with h5py.File(tmp_path / "x.h5", "w") as fh:
        fh.create_dataset("x", data=x, chunks=(64, 2, 3))
    with h5py.File(tmp_path / "x.h5") as fh:
        rows = StoredRows(fh["x"])
        assert len(rows) == 1000 and rows.shape == x.shape and rows.nbytes == x.nbytes
        idx = np.array([999, 3, 3, 64, 63, 500, 0, -1])
        np.testing.assert_array_equal(rows[idx], x[idx])
        np.testing.assert_array_equal(rows[10:300], x[10:300])
        np.testing.assert_array_equal(rows[7], x[7])
        np.testing.assert_array_equal(rows[np.zeros(0, np.int64)], x[:0])
        np.testing.assert_array_equal(np.asarray(rows), x)
        assert rows.rows_read == 8 + 290 + 1 + 0 + 1000 and rows.read_seconds > 0
        for key in (np.array([[1, 2], [999, -1]]), slice(None, None, -3), np.array(7), x[:, 0, 0] % 3 == 0,
                    slice(5, 200, 7), np.arange(0, 1000, 9)):
            np.testing.assert_array_equal(rows[key], x[key])
        with pytest.raises(IndexError):
            rows[np.array([1000])]
        with pytest.raises(IndexError, match="integers"):
            rows[np.array([1.5])]


def test_read_split_chooses_memory_by_size_and_logs_it(world, caplog, monkeypatch):
    import asal.data.store as store

    path = world.root / "data/multi/pool.h5"
    with caplog.at_level("INFO"):
        small = read_split(path)
    assert not small.on_disk and isinstance(small.images, np.ndarray) and "read into memory" in caplog.text
    monkeypatch.setattr(store, "IN_MEMORY_MAX_BYTES", 100)
    with caplog.at_level("INFO"):
        large = read_split(path)
    assert large.on_disk and "read from disk by rows" in caplog.text
    np.testing.assert_array_equal(large.images[[5, 1]], small.images[[5, 1]])
    np.testing.assert_array_equal(large.labels[[5, 1]], small.labels[[5, 1]])


def test_training_sample_is_the_pool_up_to_its_limit_then_a_seeded_sample(world):
    pool = read_split(world.root / "data/multi/pool.h5", in_memory=False)
    whole = training_sample(pool, seed=0)
    assert not whole.on_disk and len(whole) == len(pool)
    np.testing.assert_array_equal(whole.images, np.asarray(pool.images))
    row = int(np.prod(pool.image_shape))
    part = training_sample(pool, seed=0, max_bytes=50 * row)
    assert len(part) == 50 and not part.on_disk
    rows = np.sort(np.random.default_rng(0).choice(len(pool), 50, replace=False))  # the documented draw
    np.testing.assert_array_equal(part.images, np.asarray(pool.images)[rows])
    np.testing.assert_array_equal(part.labels, np.asarray(pool.labels)[rows])


def run(world, name, pool, tmp_path, label, settings=None):
    strategy, _, test, default = world.build(name)
    settings = settings or RunSettings.of({"classifier": dataclasses.asdict(default.classifier),
                                            "al": {"initial": 20, "new": 10, "budget": 50}})
    rows = run_active_learning(pool, test, strategy=strategy, seed=1, settings=settings, device=CPU,
                               out_csv=tmp_path / f"{label}.csv", out_indices=tmp_path / f"{label}_idx.csv")
    return rows, pd.read_csv(tmp_path / f"{label}_idx.csv")


@pytest.mark.parametrize("name", ["random", "max-entropy", "coreset", "asal-raw", "asal-plus-disc"])
def test_a_run_gives_the_same_results_from_disk_as_from_memory(world, tmp_path, name):
    path = world.root / "data/multi/pool.h5"
    in_memory, on_disk = read_split(path, in_memory=True), read_split(path, in_memory=False)
    rows_m, idx_m = run(world, name, in_memory, tmp_path, "memory")
    rows_d, idx_d = run(world, name, on_disk, tmp_path, "disk")
    pd.testing.assert_frame_equal(idx_m, idx_d)
    timing = [c for c in rows_m.columns if c.endswith("_seconds") or c in IO_COLUMNS]
    pd.testing.assert_frame_equal(rows_m.drop(columns=timing), rows_d.drop(columns=timing))
    assert rows_m.pool_rows_read.isna().all() and (rows_d.pool_rows_read > 0).all()


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """Pools of 1,000 and 100,000 8x8 images (the second grown from the first's source), each with its GAN,
    raw-pixel PCA and exact index, on disk."""
    root = tmp_path_factory.mktemp("grown")
    x, y = make_images(1500, n_classes=3, side=8, seed=5)
    np.savez(root / "src.npz", x=x, y=y)
    out = {}
    for n in (1000, 100_000):
        d = root / str(n)
        data = {"source": "npz", "path": str(root / "src.npz"), "pool_size": 1000}  # of 1,200; the test set 300
        if n > 1000:
            data["grow_to"] = n
        prepare_data(validate_slice(data, "data"), d / "pool.h5", d / "test.h5")
        pool = read_split(d / "pool.h5", in_memory=False)
        train_gan(GanConfig.of(iterations=2, batch_size=16, critic_iters=1, latent_dim=8), pool, d / "gan.pt",
                  device=CPU, samples_png=d / "g.png", losses_csv=d / "g.csv")
        project_pool(load_extractor("raw", None, CPU), d / "pool.h5", d / "pca.h5", dims=5)
        build_index("flat", d / "pca.h5", d / "flat.index")
        out[n] = d
    return out


def test_an_asal_cycle_reads_as_many_pool_rows_from_1k_as_from_100k(grown, tmp_path):
    """ASAL reads what it trains on and what it selects: the same count of rows whatever the pool's size,
    where max-entropy reads them all."""
    settings = RunSettings.of({"classifier": {"model": "linear", "optimizer": "lbfgs", "steps": 10},
                               "al": {"initial": 20, "new": 10, "budget": 40}, "asal": {"steps": 3}})
    reads = {}
    for n, d in grown.items():
        pool, test = read_split(d / "pool.h5", in_memory=False), read_split(d / "test.h5")
        assert len(pool) == n and pool.on_disk
        for name in ("asal-raw", "max-entropy"):
            files = {kind: str(d / f) for kind, f in (("gan", "gan.pt"), ("pca", "pca.h5"), ("index", "flat.index"))}
            files = files if name == "asal-raw" else {}
            strategy = load_strategy(name, settings=settings, device=CPU, files=files)
            rows = run_active_learning(pool, test, strategy=strategy, seed=0, settings=settings, device=CPU,
                                       out_csv=tmp_path / f"{name}{n}.csv", out_indices=tmp_path / f"{name}{n}_i.csv")
            reads[name, n] = rows.pool_rows_read.tolist()
    # per cycle: the labelled rows to train on, then (but for the last cycle) the 10 selected ones
    assert reads["asal-raw", 1000] == reads["asal-raw", 100_000] == [20 + 10, 30 + 10, 40]
    assert reads["max-entropy", 100_000][0] == 20 + (100_000 - 20) + 10  # the scan reads every unlabelled row


@pytest.mark.parametrize("name", ["random", "max-entropy", "asal-raw"])
def test_a_run_on_a_pool_of_many_chunks_gives_the_same_results_from_disk(grown, tmp_path, name):
    """The 100k pool spans 98 chunks, so the disk reads go through the grouping by chunk."""
    d = grown[100_000]
    settings = RunSettings.of({"classifier": {"model": "linear", "optimizer": "lbfgs", "steps": 10},
                               "al": {"initial": 20, "new": 10, "budget": 40}, "asal": {"steps": 3}})
    files = {kind: str(d / f) for kind, f in (("gan", "gan.pt"), ("pca", "pca.h5"), ("index", "flat.index"))}
    test = read_split(d / "test.h5")
    out = {}
    for in_memory in (True, False):
        strategy = load_strategy(name, settings=settings, device=CPU, files=files if name == "asal-raw" else {})
        rows = run_active_learning(read_split(d / "pool.h5", in_memory=in_memory), test, strategy=strategy, seed=2,
                                   settings=settings, device=CPU, out_csv=tmp_path / f"{in_memory}.csv",
                                   out_indices=tmp_path / f"{in_memory}_i.csv")
        timing = [c for c in rows.columns if c.endswith("_seconds") or c in IO_COLUMNS]
        out[in_memory] = rows.drop(columns=timing), pd.read_csv(tmp_path / f"{in_memory}_i.csv")
    pd.testing.assert_frame_equal(out[True][0], out[False][0])
    pd.testing.assert_frame_equal(out[True][1], out[False][1])
    assert out[True][1].pool_idx.max() > 2048  # rows beyond the first chunks were taken


def test_pool_memory_benchmark_on_prefixes_of_a_grown_pool(grown, tmp_path, monkeypatch):
    """benchmarks/pool_memory.py: a prefix of the pool is a store of its own; each size gets a row with the
    run's peak memory, its files' sizes and what a selection read."""
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "benchmarks"))
    import pool_memory

    d = grown[100_000]
    out = tmp_path / "mem.csv"
    monkeypatch.setattr(pool_memory, "CLASSIFIER", {"model": "linear", "optimizer": "lbfgs", "steps": 10})
    monkeypatch.setattr(sys, "argv", [
        "pool_memory.py", "--pool", str(d / "pool.h5"), "--test", str(d / "test.h5"), "--gan", str(d / "gan.pt"),
        "--pca", str(d / "pca.h5"), "--index", str(d / "flat.index"), "--sizes", "2000", "100000", "--cycles", "2",
        "--work", str(tmp_path / "work"), "--keep", "--out", str(out)])
    pool_memory.main()
    table = pd.read_csv(out)
    assert table.pool_size.tolist() == [2000, 100_000] and (table.max_rss_gb > 0.1).all()
    # cycles that select read the labelled rows and the 100 selected: 100 + 100, then 200 + 100; median 250
    assert table.pool_rows_read.tolist() == [250.0, 250.0]
    prefix = read_split(tmp_path / "work/2000/pool.h5", in_memory=False)
    full = read_split(d / "pool.h5", in_memory=False)
    assert len(prefix) == 2000 and prefix.config_hash != full.config_hash
    np.testing.assert_array_equal(prefix.images[[0, 1999]], full.images[[0, 1999]])
    assert out.with_suffix(".md").exists() and out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_the_scores_a_pool_scan_keeps_own_their_memory():
    """A view of torch's result per batch fragmented the heap: a 16M-image scan grew to 21 GB."""
    from asal.scores import SCORES, score_numpy

    probs = np.full((4, 3), 1 / 3, np.float32)
    for score in SCORES.values():
        assert score_numpy(score, probs).flags.owndata

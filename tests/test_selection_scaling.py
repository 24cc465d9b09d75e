"""benchmarks/selection_scaling.py on a tiny pool: every part, index and size has its rows, the recalls are
recalls, extrapolations are labelled, and the figures are written."""

import json
import sys

import numpy as np
import pandas as pd

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import selection_scaling  # noqa: E402


def test_augment_keeps_shape_and_changes_pixels():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 12, 12), dtype=np.uint8)
    out = selection_scaling.augment(images, 50, rng)
    assert out.shape == (50, 12, 12) and out.dtype == np.uint8
    assert not any((out[i] == images).all(axis=(1, 2)).any() for i in range(50))  # noise at least


def test_recall():
    exact = np.array([[1, 2, 3], [4, 5, 6]])
    assert selection_scaling.recall(exact, exact, 3) == 1.0
    assert selection_scaling.recall(np.array([[1, 9, 8], [7, 5, 6]]), exact, 1) == 0.5


def test_tiny_run_writes_every_row_and_figure(tiny_stores, tmp_path):
    pool, _ = tiny_stores
    out = tmp_path / "bench" / "scaling.csv"
    frame = selection_scaling.main([
        "--pool", str(pool.path), "--sizes", "500", "2000", "--threads", "1", "--repeats", "1", "--nprobe", "1", "4",
        "--max-kdtree", "500", "--max-hnsw", "2000", "--max-ivf-flat", "500", "--max-scan", "600", "64", "--networks", "small-28x28",
        "--out", str(out)])
    assert (pd.read_csv(out).columns.tolist() == selection_scaling.COLUMNS)
    for n in (500, 2000):
        at = frame[frame.pool_size == n]
        methods = set(at.method)
        assert {"asal-flat", "asal-ivf-hnsw-nprobe1", "asal-ivf-hnsw-nprobe4", "asal-hnsw", "max-entropy",
                "transition", "index-flat", "index-ivf-hnsw", "index-hnsw", "pool"} <= methods
        assert ("asal-kdtree" in methods) == ("asal-ivf-flat-nprobe4" in methods) == (n <= 500)
        flat = at[(at.method == "asal-flat") & (at.part == "total")].iloc[0]
        assert flat.recall_at_1 == 1.0 and flat.recall_at_10 == 1.0
        parts = at[at.method == "asal-flat"].set_index("part").seconds
        assert parts["total"] == parts["generation"] + parts["features"] + parts["matching"]
        assert (at[at.part == "build"].peak_mb >= 0).all()
    generation = frame[frame.part == "generation"].note.str.extract(r"([\d.]+) GFLOP at ([\d.]+) GFLOP/s").astype(float)
    assert len(generation) and (generation > 0).all().all()  # the ascent's arithmetic and its rate, per row
    recalls = frame.recall_at_1.dropna()
    assert recalls.between(0, 1).all()
    maxent = frame[(frame.method == "max-entropy") & (frame.part == "total")]
    assert maxent[maxent.pool_size == 2000].set_index("image_shape").extrapolated.to_dict() == {"12x12": True,
                                                                                                 "64x64x3": True}
    assert maxent[maxent.pool_size == 500].set_index("image_shape").extrapolated.to_dict() == {"12x12": False,
                                                                                                "64x64x3": True}
    table = out.with_suffix(".md").read_text().splitlines()
    assert len(table) == 4 and table[2].startswith("| 500 | ") and table[1].count("|---") == table[0].count(" | ") + 1
    assert (out.with_suffix(".png")).read_bytes()[:4] == b"\x89PNG"
    assert (out.with_name("selection_transition.png")).read_bytes()[:4] == b"\x89PNG"
    machine = json.loads(out.with_name("scaling_machine.json").read_text())
    assert machine["cpu"] and machine["matmul_gflops_fp32"] > 0

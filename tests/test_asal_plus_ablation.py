"""benchmarks/asal_plus_ablation.py: the commands it runs and the table it draws from run CSVs."""

import json
import sys

import h5py
import numpy as np
import pandas as pd
import pytest

from asal.config import validate_config

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import asal_plus_ablation as ablation  # noqa: E402


def test_a_variants_overrides_reach_the_right_sections_and_files():
    exp = validate_config({"experiments": {"e": {"data": {"source": "npz", "path": "x.npz"},
                                                 "matching": {"spaces": ["raw", "auto"], "index": "flat"}}}})["experiments"]["e"]
    cmd = ablation.run_command("e", exp, "asal-raw no ascent", 3, ablation.Path("out/seed3.csv"))
    settings = json.loads(cmd[cmd.index("--params") + 1])
    assert settings["asal"]["steps"] == 0 and settings["asal_plus"] == exp["asal_plus"]
    assert cmd[cmd.index("--index") + 1] == "features/e/raw_flat.index" and "--features-model" not in cmd
    cmd = ablation.run_command("e", exp, "raw rerank 10", 0, ablation.Path("out/seed0.csv"))
    settings = json.loads(cmd[cmd.index("--params") + 1])
    assert settings["asal_plus"]["rerank"] == 10 and cmd[cmd.index("--strategy") + 1] == "asal-plus-raw"
    cmd = ablation.run_command("e", exp, "asal-plus-auto", 0, ablation.Path("out/seed0.csv"))
    assert cmd[cmd.index("--features-model") + 1] == "models/e/autoencoder.pt"
    assert "--gan" not in ablation.run_command("e", exp, "random", 0, ablation.Path("out/seed0.csv"))
    cls = ablation.run_command("e", exp, "asal-cls", 0, ablation.Path("out/seed0.csv"))
    assert cls[cls.index("--gan") + 1] == "models/e/gan.pt" and "--pca" not in cls  # its own features


def test_table_measures_the_gap_closed_against_random_and_max_entropy(tmp_path):
    rows = []
    for strategy, gain in (("random", 0.0), ("max-entropy", 0.10), ("asal-raw", 0.05)):
        for seed in (0, 1):
            for cycle in range(3):  # cycle 0 is the shared start: left out of the mean
                rows.append({"strategy": strategy, "seed": seed, "cycle": cycle, "n_labelled": 10 * (cycle + 1),
                             "test_accuracy": 0.5 + (gain + 0.01 * seed) * (cycle > 0), "selected_entropy": gain,
                             "synthetic_entropy": np.nan, "match_distance": 2.0 if strategy == "asal-raw" else np.nan,
                             "select_seconds": 1.0})
    points = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    with h5py.File(tmp_path / "raw_pca.h5", "w") as fh:
        fh["projected"] = points
    out = ablation.table(pd.DataFrame(rows), tmp_path)
    ablation.plot(pd.DataFrame(rows), tmp_path / "ablation.png", "tiny")
    assert (tmp_path / "ablation.png").read_bytes()[:4] == b"\x89PNG"
    assert out.loc["asal-raw", "gap_closed"] == pytest.approx(0.5)
    assert out.loc["max-entropy", "gap_closed"] == pytest.approx(1.0) and out.loc["random", "gap_closed"] == 0
    assert out.loc["asal-raw", "above_random_seeds"] == 2 and out.loc["random", "above_random_seeds"] == 0
    assert out.loc["asal-raw", "acc@20"] == pytest.approx(0.555)  # mean over the two seeds
    nearest = np.sort(np.linalg.norm(points[:, None] - points[None], axis=2), axis=1)[:, 1]
    assert out.loc["asal-raw", "pool_nn_distance"] == pytest.approx(np.median(nearest), rel=1e-4)
    assert np.isnan(out.loc["random", "pool_nn_distance"])
    assert out.index[0] == "max-entropy"  # best first


def test_paired_sets_each_variant_against_its_fixed_step_twin_seed_by_seed(tmp_path):
    rows = []
    for strategy, gain, steps in (("asal-raw", 0.02, 30.0), ("asal-raw 100 steps", 0.0, 100.0), ("random", 0.0, np.nan)):
        for seed in (0, 1):
            for cycle in range(3):
                rows.append({"strategy": strategy, "seed": seed, "cycle": cycle, "n_labelled": 10 * (cycle + 1),
                             "test_accuracy": 0.5 + 0.1 * cycle + (gain * seed) * (cycle > 0),
                             "ascent_steps": steps, "select_seconds": steps / 100})
    pairs = ablation.paired(pd.DataFrame(rows)).set_index("seed")
    png = tmp_path / "pairs.png"  # without random there is no "against random" panel: half the width
    ablation.plot(pd.DataFrame(rows).query("strategy != 'random'"), png, "tiny")
    assert int.from_bytes(png.read_bytes()[16:20], "big") == 6 * 130
    assert list(pairs.variant) == ["asal-raw", "asal-raw"]
    assert pairs.at[0, "final_diff"] == 0 and pairs.at[1, "final_diff"] == pytest.approx(2.0)  # points
    assert pairs.at[1, "mean_diff"] == pytest.approx(2.0)
    assert list(pairs.steps) == [30, 30] and list(pairs.steps_twin) == [100, 100]
    assert list(pairs.select_s_twin) == pytest.approx([1, 1])
    cmd = ablation.run_command("e", validate_config({"experiments": {"e": {"data": {"source": "npz", "path": "x.npz"}}}})[
        "experiments"]["e"], "asal-raw 100 steps", 0, ablation.Path("out/seed0.csv"))
    assert json.loads(cmd[cmd.index("--params") + 1])["asal"]["tolerance"] == 0

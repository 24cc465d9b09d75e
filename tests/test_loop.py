"""The AL loop: rows and indices, and resuming after a kill to exactly the uninterrupted result."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

import asal.learners as learners
from asal.annotators import SKIP, DatasetLabels, OracleLabels
from asal.errors import BadConfig, PoolExhausted
from asal.loop import checkpoint_path, run_active_learning
from asal.models.gan import ARCHS, Generator
from asal.runfiles import DIAGNOSTICS, ROW_COLUMNS
from asal.settings import AsalConfig, RunSettings
from asal.strategies.base import load_strategy
from asal.strategies.gaal import GenerativeAnnotation
from asal_fixtures import asal_strategy

CPU = torch.device("cpu")
SETTINGS = {"classifier": {"model": "cnn", "steps": 15, "batch_size": 16}, "al": {"initial": 12, "new": 8, "budget": 60}}
ASAL_DIAGNOSTICS = ["synthetic_entropy_start", "synthetic_entropy", "match_distance", "generate_seconds",
                    "features_seconds", "search_seconds", "rerank_scored"]
TIMES = ["select_seconds", "train_seconds"]


def run(tiny_stores, tmp_path, strategy="max-entropy", seed=0, settings=SETTINGS, name="run", synthetic=None,
        annotator=None):
    pool, test = tiny_stores
    rows = run_active_learning(
        pool, test, strategy=load_strategy(strategy) if isinstance(strategy, str) else strategy, seed=seed,
        settings=RunSettings.of(settings), out_csv=tmp_path / f"{name}.csv", out_indices=tmp_path / f"{name}_idx.csv",
        device=CPU, outputs={"synthetic": synthetic} if synthetic else None, annotator=annotator,
    )
    return rows, pd.read_csv(tmp_path / f"{name}_idx.csv")


def gaal(pool):
    """GAAL with a small untrained generator; the oracle labels an image by its mean brightness (3 bands)."""

    class BrightnessOracle(torch.nn.Module):
        def forward(self, x):
            mean = x.mean((1, 2, 3))
            return torch.stack([-(mean - c).abs() * 50 for c in (0.25, 0.5, 0.75)], 1)

    torch.manual_seed(0)
    oracle = OracleLabels(BrightnessOracle(), CPU, {"oracle_test_accuracy": 0.5})
    return GenerativeAnnotation(Generator(pool.image_shape, 8, ARCHS["small"]), oracle, AsalConfig.of(steps=3),
                                {}).named("gaal")


def test_gaal_trains_on_its_annotated_synthetic_images(tiny_stores, tmp_path, monkeypatch):
    pool, _ = tiny_stores
    seen = []
    real_train = learners.train_classifier
    monkeypatch.setattr(learners, "train_classifier", lambda cfg, x, y, *a, **k: seen.append(len(y)) or real_train(cfg, x, y, *a, **k))
    rows, indices = run(tiny_stores, tmp_path, strategy=gaal(pool), synthetic=tmp_path / "synthetic.npz")
    assert rows["n_labelled"].tolist() == [12, 20, 28, 36, 44, 52, 60] == seen  # annotations, real and synthetic
    assert len(indices) == 12 and (indices.cycle == 0).all()  # no pool sample was labelled after the start
    assert rows["oracle_confidence"].iloc[:-1].between(1 / 3, 1).all()
    with np.load(tmp_path / "synthetic.npz", allow_pickle=False) as saved:
        assert saved["images"].shape == (48, *pool.image_shape) and saved["images"].dtype == np.uint8
        assert saved["cycle"].tolist() == [c for c in range(1, 7) for _ in range(8)]
        expected = np.abs(saved["images"].mean((1, 2, 3)) / 255.0 - np.array([[0.25], [0.5], [0.75]])).argmin(0)
        np.testing.assert_array_equal(saved["labels"], expected)  # the oracle's labels, as stored
        assert json.loads(str(saved["identity"]))["annotator"]["synthetic"]["oracle_test_accuracy"] == 0.5


def test_gaal_resumes_with_its_synthetic_images(tiny_stores, tmp_path, monkeypatch):
    pool, _ = tiny_stores
    reference, _ = run(tiny_stores, tmp_path, strategy=gaal(pool), name="ref", synthetic=tmp_path / "ref.npz")
    real_train, calls = learners.train_classifier, []

    def dying_train(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(learners, "train_classifier", dying_train)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_stores, tmp_path, strategy=gaal(pool), name="cut", synthetic=tmp_path / "cut.npz")
    monkeypatch.setattr(learners, "train_classifier", real_train)
    rows, _ = run(tiny_stores, tmp_path, strategy=gaal(pool), name="cut", synthetic=tmp_path / "cut.npz")
    pd.testing.assert_frame_equal(rows.drop(columns=TIMES + ["generate_seconds"]),
                                  reference.drop(columns=TIMES + ["generate_seconds"]))
    with np.load(tmp_path / "ref.npz") as a, np.load(tmp_path / "cut.npz") as b:
        np.testing.assert_array_equal(a["images"], b["images"])
        np.testing.assert_array_equal(a["labels"], b["labels"])
    # a checkpoint whose synthetic images are lost is not resumed half-blind: the run starts afresh
    with pytest.raises(KeyboardInterrupt):
        calls.clear()
        monkeypatch.setattr(learners, "train_classifier", dying_train)
        run(tiny_stores, tmp_path, strategy=gaal(pool), name="lost", synthetic=tmp_path / "lost.npz")
    (tmp_path / "lost.checkpoint.npz").unlink()
    monkeypatch.setattr(learners, "train_classifier", real_train)
    rows, _ = run(tiny_stores, tmp_path, strategy=gaal(pool), name="lost", synthetic=tmp_path / "lost.npz")
    pd.testing.assert_frame_equal(rows.drop(columns=TIMES + ["generate_seconds"]),
                                  reference.drop(columns=TIMES + ["generate_seconds"]))


def test_gaal_needs_a_synthetic_file(tiny_stores, tmp_path):
    with pytest.raises(BadConfig, match="--synthetic"):
        run(tiny_stores, tmp_path, strategy=gaal(tiny_stores[0]))


def test_full_trains_once_on_the_whole_pool_for_full_steps(tiny_stores, tmp_path, monkeypatch):
    pool, _ = tiny_stores
    seen = []
    real_train = learners.train_classifier
    monkeypatch.setattr(learners, "train_classifier", lambda cfg, x, y, *a, **k: seen.append((cfg.steps, len(y))) or real_train(cfg, x, y, *a, **k))
    settings = {"classifier": SETTINGS["classifier"], "full": {"steps": 40}}  # al: the defaults, a budget above the pool
    rows, indices = run(tiny_stores, tmp_path, strategy="full", settings=settings)
    assert seen == [(40, len(pool))]
    assert rows["n_labelled"].tolist() == [len(pool)] and rows["n_selected"].tolist() == [0]
    assert sorted(indices.pool_idx) == list(range(len(pool)))


def test_rows_and_indices(tiny_stores, tmp_path):
    rows, indices = run(tiny_stores, tmp_path)
    assert list(rows.columns) == ROW_COLUMNS
    assert rows["n_labelled"].tolist() == [12, 20, 28, 36, 44, 52, 60]
    assert rows["n_selected"].tolist() == [8] * 6 + [0]
    assert rows["selected_entropy"].iloc[:-1].between(0, np.log(3) + 1e-6).all()
    assert np.isnan(rows["selected_entropy"].iloc[-1])
    assert len(indices) == 60 and indices["pool_idx"].is_unique
    assert indices["cycle"].value_counts().sort_index().tolist() == [12] + [8] * 6
    pool, _ = tiny_stores
    np.testing.assert_array_equal(indices["label"], pool.labels[indices["pool_idx"]])
    assert not checkpoint_path(tmp_path / "run.csv").exists()
    on_disk = pd.read_csv(tmp_path / "run.csv")
    pd.testing.assert_frame_equal(on_disk.drop(columns=TIMES), rows.drop(columns=TIMES), check_dtype=False)


def test_asal_run_reports_its_diagnostics(tiny_stores, tmp_path):
    rows, indices = run(tiny_stores, tmp_path, strategy=asal_strategy("asal-raw", tiny_stores[0]))
    assert set(ASAL_DIAGNOSTICS) <= set(DIAGNOSTICS)
    selecting, last = rows.iloc[:-1], rows.iloc[-1]
    assert selecting[list(ASAL_DIAGNOSTICS)].notna().all().all() and last[list(ASAL_DIAGNOSTICS)].isna().all()
    parts = selecting.generate_seconds + selecting.features_seconds + selecting.search_seconds
    assert (parts <= selecting.select_seconds).all() and (selecting.match_distance > 0).all()
    assert indices.pool_idx.is_unique and len(indices) == 60
    random_rows, _ = run(tiny_stores, tmp_path, strategy="random", name="random")
    assert random_rows[list(DIAGNOSTICS)].isna().all().all()


def test_initial_set_is_shared_across_strategies(tiny_stores, tmp_path):
    _, a = run(tiny_stores, tmp_path, "random", name="a")
    _, b = run(tiny_stores, tmp_path, "max-entropy", name="b")
    assert set(a[a.cycle == 0].pool_idx) == set(b[b.cycle == 0].pool_idx)
    assert set(a.pool_idx) != set(b.pool_idx)


def test_budget_not_a_multiple_of_new(tiny_stores, tmp_path):
    settings = dict(SETTINGS, al={"initial": 10, "new": 8, "budget": 30})
    rows, indices = run(tiny_stores, tmp_path, settings=settings)
    assert rows["n_labelled"].tolist() == [10, 18, 26, 30] and len(indices) == 30


def test_scan_max_cycles_stops_a_pool_scan_after_its_selections_and_only_a_pool_scan(tiny_stores, tmp_path, caplog):
    settings = dict(SETTINGS, scan={"max_cycles": 2})
    full, _ = run(tiny_stores, tmp_path, name="full")
    with caplog.at_level("INFO"):
        rows, indices = run(tiny_stores, tmp_path, settings=settings, name="capped")
    assert rows.n_labelled.tolist() == [12, 20, 28] and len(indices) == 28  # 2 selections, then the last training
    assert rows.select_seconds.isna().tolist() == [False, False, True]
    # the same run up to where it stops
    pd.testing.assert_frame_equal(rows.drop(columns=TIMES).iloc[:2], full.drop(columns=TIMES).iloc[:2])
    assert "scan.max_cycles" in caplog.text and "every pool sample is labelled" not in caplog.text
    random_rows, _ = run(tiny_stores, tmp_path, strategy="random", settings=settings, name="random")
    assert random_rows.n_labelled.iloc[-1] == 60  # random does not scan: the key is not its


def test_resume_after_interruption_in_process(tiny_stores, tmp_path, monkeypatch):
    reference_rows, reference_idx = run(tiny_stores, tmp_path, name="ref")
    real_train, calls = learners.train_classifier, []

    def dying_train(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # the job is killed during cycle 3's training
        return real_train(*args, **kwargs)

    monkeypatch.setattr(learners, "train_classifier", dying_train)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_stores, tmp_path, name="cut")
    state = json.loads(checkpoint_path(tmp_path / "cut.csv").read_text())
    assert len(state["rows"]) == 3 and not (tmp_path / "cut.csv").exists()
    resumed_calls = []

    def counting_train(*args, **kwargs):
        resumed_calls.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(learners, "train_classifier", counting_train)
    rows, idx = run(tiny_stores, tmp_path, name="cut")
    assert len(resumed_calls) == len(reference_rows) - 3  # it resumed: the 3 finished cycles were not redone
    pd.testing.assert_frame_equal(rows.drop(columns=TIMES), reference_rows.drop(columns=TIMES))
    pd.testing.assert_frame_equal(idx, reference_idx)


def test_checkpoint_of_another_config_is_ignored(tiny_stores, tmp_path):
    ckpt = checkpoint_path(tmp_path / "run.csv")
    ckpt.write_text(json.dumps({"identity": {"strategy": "other"}, "rows": [{}] * 99, "taken": [], "n_synthetic": 0}))
    rows, _ = run(tiny_stores, tmp_path)
    assert len(rows) == 7


def test_resume_after_sigkill(tiny_stores, tmp_path):
    """A real `kill -9` of `asal run-al` part-way, then a restart: identical rows (times aside) and indices."""
    pool, test = tiny_stores
    settings = {
        "classifier": {"model": "cnn", "steps": 40, "batch_size": 16},
        "al": {"initial": 10, "new": 4, "budget": 90},
    }

    def command(name):
        return [
            sys.executable, "-m", "asal.cli", "run-al", "--params", json.dumps(settings), "--pool", pool.path,
            "--test", test.path, "--strategy", "max-entropy", "--seed", "3", "--device", "cpu", "--threads", "1",
            "--out", str(tmp_path / f"{name}.csv"), "--indices", str(tmp_path / f"{name}_idx.csv"),
        ]

    subprocess.run(command("ref"), check=True, capture_output=True)
    proc = subprocess.Popen(command("cut"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt, deadline = checkpoint_path(tmp_path / "cut.csv"), time.time() + 120
    while time.time() < deadline:
        if ckpt.exists() and len(json.loads(ckpt.read_text())["rows"]) >= 5:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_done = len(json.loads(ckpt.read_text())["rows"])
    assert 5 <= n_done < 21, "the run was not killed part-way; make it longer"
    assert not (tmp_path / "cut.csv").exists()
    resumed = subprocess.run(command("cut"), check=True, capture_output=True, text=True)
    assert f"from cycle {n_done}" in resumed.stderr
    ref, cut = pd.read_csv(tmp_path / "ref.csv"), pd.read_csv(tmp_path / "cut.csv")
    pd.testing.assert_frame_equal(cut.drop(columns=TIMES), ref.drop(columns=TIMES))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cut_idx.csv"), pd.read_csv(tmp_path / "ref_idx.csv"))


class SkippingAnnotator(DatasetLabels):
    """Answers as the dataset does, but skips (a person cannot tell) every pool row whose index ends in 0 or 5."""

    def annotate(self, selection):
        answer = super().annotate(selection)
        answer.labels = np.where(selection.pool_idx % 5 == 0, SKIP, answer.labels)
        return answer


def test_a_skipped_sample_is_recorded_never_offered_again_and_not_counted(tiny_stores, tmp_path):
    pool, _ = tiny_stores
    rows, indices = run(tiny_stores, tmp_path, annotator=SkippingAnnotator(pool))
    skipped, answered = indices[indices.label == SKIP], indices[indices.label != SKIP]
    assert len(skipped) > 0 and (skipped.pool_idx % 5 == 0).all()
    assert indices.pool_idx.is_unique  # a skipped sample is never offered again
    assert len(answered) == 60 == rows.n_labelled.iloc[-1]  # the budget counts answers, not questions
    assert (np.diff(rows.n_labelled) == rows.n_selected.iloc[:-1]).all()
    assert len(rows) > 7  # the skips cost cycles, not budget
    np.testing.assert_array_equal(answered.label, pool.labels[answered.pool_idx])


class SkipAll(DatasetLabels):
    """Answers the initial set, then skips everything: a person who cannot tell any of the selected samples."""

    def annotate(self, selection):
        answer = super().annotate(selection)
        if len(selection.pool_idx) != 12:
            answer.labels[:] = SKIP
        return answer


def test_skipping_everything_ends_the_run_when_the_pool_runs_out(tiny_stores, tmp_path):
    pool, _ = tiny_stores
    rows, indices = run(tiny_stores, tmp_path, "random", annotator=SkipAll(pool))
    assert len(indices) == len(pool) and indices.pool_idx.is_unique  # every sample offered once
    assert (indices.label[indices.cycle > 0] == SKIP).all()
    assert rows.n_labelled.unique().tolist() == [12] and np.isnan(rows.select_seconds.iloc[-1])


def test_a_first_cycle_with_nothing_answered_is_a_clear_error(tiny_stores, tmp_path):
    class SkipEverything(DatasetLabels):
        def annotate(self, selection):
            answer = super().annotate(selection)
            answer.labels[:] = SKIP
            return answer

    with pytest.raises(PoolExhausted, match="nothing to train on"):
        run(tiny_stores, tmp_path, annotator=SkipEverything(tiny_stores[0]))


def test_the_bound_trains_for_passes_over_the_pool_unless_told_its_steps():
    from asal.settings import FullConfig, TrainConfig

    adam, lbfgs = TrainConfig.of(batch_size=64, steps=300), TrainConfig.of(optimizer="lbfgs", steps=30)
    assert FullConfig.of(epochs=5).train_steps(adam, 20_000) == 1563  # ceil(5 * 20,000 / 64)
    assert FullConfig.of(epochs=5).describe(adam) == "5 passes over the pool"
    assert FullConfig.of(steps=3000).train_steps(adam, 20_000) == 3000
    assert FullConfig.of().train_steps(lbfgs, 20_000) == 30 and "lbfgs" in FullConfig.of().describe(lbfgs)

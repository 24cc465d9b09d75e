"""End to end: Snakemake on a tiny generated data set in a temporary folder, and what a config edit reruns."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import json
import numpy as np
import pandas as pd
import pytest
import yaml

from asal.config import load_config, validate_config
from conftest import REPO, TINY, make_images, snakemake, write_config

pytestmark = pytest.mark.e2e

def planned_outputs(workdir: Path) -> set[str]:
    """The output files a dry run of the default target would (re)make."""
    out = snakemake(workdir, "-n").stdout
    return {path.strip() for line in re.findall(r"^\s+output: (.+)$", out, re.M) for path in line.split(",")}


def planned_jobs(workdir: Path) -> dict[str, int]:
    """Rule -> job count that a dry run of the default target (everything) would execute, `all` aside."""
    out = snakemake(workdir, "-n").stdout
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:")[1].split("total")[0]
    jobs = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
    jobs.pop("all", None)
    return jobs


def test_outputs(workflow_run):
    wd = workflow_run
    assert (wd / "results/tiny/accuracy.pdf").read_bytes()[:5] == b"%PDF-"
    summary = pd.read_csv(wd / "results/tiny/summary.csv")
    for column in ("strategy", "n_labelled", "accuracy_mean", "accuracy_min", "accuracy_max", "entropy_mean",
                   "select_seconds_mean", "n_seeds"):
        assert column in summary.columns
    strategies = TINY["experiments"]["tiny"]["strategies"]
    assert sorted(summary.strategy.unique()) == sorted(strategies)
    assert summary.n_labelled.unique().tolist() == [10, 20, 30, 40] and (summary.n_seeds == 2).all()
    assert summary.accuracy_mean.between(0.5, 1).all()
    for strategy in strategies:
        for seed in (0, 1):
            run = pd.read_csv(wd / f"results/tiny/runs/{strategy}/seed{seed}.csv")
            assert run.n_labelled.tolist() == [10, 20, 30, 40]
            asal_columns = run[["synthetic_entropy", "match_distance", "generate_seconds", "search_seconds"]]
            assert asal_columns[:-1].notna().all().all() == strategy.startswith("asal-")
            assert len(pd.read_csv(wd / f"results/tiny/runs/{strategy}/seed{seed}_indices.csv")) == 40
            assert "accuracy" in (wd / f"logs/run_al/tiny/{strategy}/seed{seed}.log").read_text()
            assert (wd / f"benchmarks/run_al/tiny/{strategy}/seed{seed}.tsv").exists()
    assert set(pd.read_csv(wd / "results/tiny/strategies.csv").strategy) == set(strategies)
    for name in ("accuracy", "entropy", "timings"):  # a PDF for papers, a PNG for the report
        assert (wd / f"results/tiny/{name}.pdf").read_bytes()[:5] == b"%PDF-"
        assert (wd / f"results/tiny/{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert (wd / "results/tiny/samples.png").read_bytes()[:4] == b"\x89PNG"
    assert (wd / "results/tiny/tables.html").read_text().count("<table") == 2
    # the tiny GAN (4 iterations) fails its quality gate: the tables open with it, ASAL's runs warn, random's not
    verdict = json.loads((wd / "models/tiny/gan_metrics.json").read_text())
    assert not verdict["passed"] and verdict["failures"]
    assert "The GAN failed its quality gate" in (wd / "results/tiny/tables.html").read_text()
    assert verdict["failures"][0] in (wd / "logs/run_al/tiny/asal-raw/seed0.log").read_text()
    assert "QUALITY GATE" not in (wd / "logs/run_al/tiny/random/seed0.log").read_text()
    assert load_config(wd / "results/tiny/config.yaml") == validate_config(TINY)  # a config file, defaults filled
    for strategy in ("asal-raw", "asal-disc", "asal-cls"):
        with np.load(wd / f"results/tiny/samples/{strategy}.npz") as examples:
            assert bool(examples["replay_matches"]), f"{strategy}: the replay did not pick what the run picked"
            indices = pd.read_csv(wd / f"results/tiny/runs/{strategy}/seed0_indices.csv")
            assert examples["pool_idx"].tolist() == indices.pool_idx[indices.cycle == 1].tolist()
            assert examples["synthetic"].shape == (10, 1, 10, 10)


def report_script(html: str, name: str):
    """The JSON a Snakemake report embeds as ``var <name> = {...};`` (results, categories)."""
    return json.loads(re.search(rf"var {name} = (\{{.*?\}});\n", html, re.S).group(1))


def test_report_holds_every_figure_table_and_config_with_captions(workflow_run, tmp_path):
    out = tmp_path / "report.html"
    snakemake(workflow_run, "--report", str(out))
    html = out.read_text()
    categories = {sub: sorted(files) for sub, files in report_script(html, "categories")["tiny"].items()}
    assert categories == {
        "Figures": [f"results/tiny/{name}.png" for name in ("accuracy", "entropy", "samples", "timings")],
        "Tables": ["results/tiny/summary.csv", "results/tiny/tables.html"],
        "Pre-processing": ["models/tiny/autoencoder_reconstructions.png", "models/tiny/gan_samples.png"],
        "Configuration": ["results/tiny/config.yaml"],
    }
    results = report_script(html, "results")
    assert len(results) == sum(map(len, categories.values()))
    for entry in results.values():
        assert "tiny" in entry["caption"] and len(entry["caption"]) > 200, entry["name"]  # the wildcard filled in
        assert entry["data_uri"].startswith(f"data:{entry['mime_type']}")
    assert "tiny" in html and "Mayer" in html  # the front page: the workflow description and the experiment


def test_preprocessing_outputs(workflow_run):
    wd = workflow_run
    metrics = json.loads((wd / "models/tiny/gan_metrics.json").read_text())
    assert set(metrics["class_fractions"]) == {"0", "1", "2"} and "confident_fraction" in metrics
    assert json.loads((wd / "models/tiny/autoencoder_metrics.json").read_text())["test_mse"] > 0
    for png in ("gan_samples.png", "autoencoder_reconstructions.png"):
        assert (wd / "models/tiny" / png).read_bytes()[:4] == b"\x89PNG"
    for space, dim in (("raw", 100), ("auto", 16), ("disc", 64 * 2 * 2)):  # 10x10 -> 5x5 -> 2x2
        assert not (wd / f"features/tiny/{space}.h5").exists()  # full-width features are never written
        with h5py.File(wd / f"features/tiny/{space}_pca.h5") as fh:
            assert fh["projected"].shape == (300, 5) and fh.attrs["features"] == dim
        assert (wd / f"features/tiny/{space}_kdtree.index").exists()


def test_config_edits_rerun_exactly_what_they_touch(workflow_run, tmp_path):
    wd = tmp_path / "copy"
    shutil.copytree(workflow_run, wd)
    assert planned_jobs(wd) == {}

    def edit(**changes):
        config = yaml.safe_load(yaml.safe_dump(TINY))
        for key, value in changes.items():
            section, name = key.split("__")
            config["experiments"]["tiny"].setdefault(section, {})[name] = value
        write_config(wd, config)
        return planned_jobs(wd)

    config_file = {"write_config": 1}  # results/<exp>/config.yaml follows every edit of the experiment
    figures = {"summarize_runs": 1, "tabulate": 1, "plot_accuracy": 1, "plot_entropy": 1, "plot_timings": 1,
               **config_file}
    samples = {"replay_selection": 3, "plot_samples": 1}  # asal-raw, asal-disc, asal-cls
    downstream = {"run_al": 10, **figures, **samples}
    assert edit(al__budget=50) == downstream
    assert edit(classifier__weight_decay=0.1) == downstream
    assert edit(asal__steps=5) == {"run_al": 6, **figures, **samples}  # ASAL's runs only
    assert edit(scan__max_cycles=1) == {"run_al": 2, **figures}  # max-entropy's, the pool scan's, only
    # the GAN: its features and every ASAL run (all search its generator), not random's or max-entropy's runs
    assert edit(gan__lr=0.0002) == {"train_gan": 1, "evaluate_gan": 1, "project_features": 1, "build_index": 1,
                                    "run_al": 6, **figures, **samples}
    assert {"features/tiny/disc_pca.h5", "features/tiny/disc_kdtree.index"} <= planned_outputs(wd)
    # no run uses the autoencoder's space here, so its chain stops at the index
    assert edit(autoencoder__steps=12) == {"train_autoencoder": 1, "project_features": 1, "build_index": 1,
                                           **config_file}
    assert {"features/tiny/auto_pca.h5", "features/tiny/auto_kdtree.index"} <= planned_outputs(wd)
    # the oracle judges the GAN: its verdict opens the tables, but the ASAL runs read it for a warning only
    assert edit(oracle__steps=25) == {"train_oracle": 1, "evaluate_gan": 1, "tabulate": 1, **config_file}
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["experiments"]["tiny"]["gan_quality"] = {"confident_min": 0.6}
    write_config(wd, config)
    assert planned_jobs(wd) == {"evaluate_gan": 1, "tabulate": 1, **config_file}
    matched_runs = {"run_al": 4, **figures, "replay_selection": 2, "plot_samples": 1}  # asal-raw, asal-disc
    assert edit(matching__pca_dims=4) == {"project_features": 3, "build_index": 3, **matched_runs}
    assert edit(matching__kdtree_leaf_size=20) == {"build_index": 3, **matched_runs}
    everything = {"prepare_data": 1, "train_gan": 1, "evaluate_gan": 1, "train_oracle": 1, "train_autoencoder": 1,
                  "project_features": 3, "build_index": 3, **downstream}
    assert edit(data__seed=1) == everything
    # a person's labelling session, once finished (asal label writes its CSV last), joins the summaries
    write_config(wd, TINY)
    assert planned_jobs(wd) == {}
    session = wd / "results/tiny/labelling/asal-raw"
    session.mkdir(parents=True)
    (session / "seed0_journal.jsonl").write_text("")
    assert planned_jobs(wd) == {}  # a session still labelling has no CSV yet
    for name in ("seed0.csv", "seed0_indices.csv"):
        shutil.copy(wd / "results/tiny/runs/asal-raw" / name, session / name)
    assert planned_jobs(wd) == {name: 1 for name in ("summarize_runs", "tabulate", "plot_accuracy", "plot_entropy",
                                                      "plot_timings")}
    shutil.rmtree(wd / "results/tiny/labelling")
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["experiments"]["tiny"]["seeds"] = [0, 1, 2]
    write_config(wd, config)
    assert planned_jobs(wd) == {"run_al": 5, **figures}  # Fig. 2 replays seed 0 and stays


def dry_run_outputs(workdir: Path, *targets: str) -> set[str]:
    """The output files a dry run of ``targets`` (the default target if none) would make."""
    out = snakemake(workdir, "-n", *targets).stdout
    return {path.strip() for line in re.findall(r"^\s+output: (.+)$", out, re.M) for path in line.split(",")}


def test_an_unlabelled_experiment_plans_its_models_and_features_but_no_oracle_and_no_run(tmp_path):
    """No labels, so no oracle to train and no AL run to simulate: the default target and preprocess_<exp> make
    the GAN, the autoencoder, the features and the indexes of an `unlabelled` experiment, and only those, while
    a labelled experiment beside it plans everything as before."""
    from PIL import Image

    x, _ = make_images(30, n_classes=2, side=10)
    for i, image in enumerate(x):
        (tmp_path / "raw" / "unl" / f"part{i % 3}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "raw" / "unl" / f"part{i % 3}" / f"{i:02d}.png")
    config = yaml.safe_load(yaml.safe_dump(TINY))
    unl = dict(config["experiments"]["tiny"], data={"source": "unlabelled", "path": "raw/unl", "classes": ["a", "b"],
                                                    "channels": 1}, strategies=["random", "asal-raw"])
    config["experiments"] = {"unl": unl}
    write_config(tmp_path, config)
    models_and_features = {
        "data/unl/pool.h5", "data/unl/test.h5", "models/unl/gan.pt", "models/unl/gan_samples.png",
        "models/unl/gan_losses.csv", "models/unl/autoencoder.pt", "models/unl/autoencoder_reconstructions.png",
        "models/unl/autoencoder_metrics.json",
        *(f"features/unl/{space}_{kind}" for space in ("raw", "auto", "disc") for kind in ("pca.h5", "kdtree.index")),
    }
    assert dry_run_outputs(tmp_path) == models_and_features
    assert dry_run_outputs(tmp_path, "preprocess_unl") == models_and_features
    assert planned_jobs(tmp_path) == {"prepare_data": 1, "train_gan": 1, "train_autoencoder": 1,
                                      "project_features": 3, "build_index": 3}

    x, y = make_images(400, n_classes=3, side=10)  # a labelled experiment beside it: everything, as before
    np.savez(tmp_path / "raw" / "tiny.npz", x=x, y=y)
    config["experiments"] = {"unl": unl, "tiny": TINY["experiments"]["tiny"]}
    write_config(tmp_path, config)
    planned = dry_run_outputs(tmp_path)
    assert {path for path in planned if "/unl/" in path} == models_and_features
    assert {"models/tiny/oracle.pt", "models/tiny/gan_metrics.json", "results/tiny/accuracy.pdf",
            "results/tiny/runs/random/seed0.csv"} <= planned

    config["experiments"] = {"unl": dict(unl, strategies=["random", "gaal"])}
    write_config(tmp_path, config)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "-n"],
                            capture_output=True, text=True, env=env)
    assert result.returncode != 0 and "['gaal'] cannot run without labels" in result.stdout + result.stderr


def test_invalid_config_fails_at_load_naming_the_key(workflow_run, tmp_path):
    wd = tmp_path / "bad"
    wd.mkdir()
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["experiments"]["tiny"]["al"]["budgett"] = 3
    write_config(wd, config)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(wd), "-n"],
                            capture_output=True, text=True, env=env)
    assert result.returncode != 0 and "budgett" in result.stdout + result.stderr


BINARY = {
    "experiments": {
        "tiny2": {
            "data": {"source": "npz", "path": "raw/tiny2.npz", "test_fraction": 0.25},
            "classifier": {"model": "linear", "optimizer": "lbfgs", "lr": 1.0, "steps": 30, "weight_decay": 0.01},
            "al": {"initial": 10, "new": 5, "budget": 25},
            "gan": {"iterations": 4, "batch_size": 16, "critic_iters": 1, "latent_dim": 8},
            "autoencoder": {"steps": 10, "batch_size": 32, "code_dim": 16},  # built for every experiment
            "oracle": {"model": "linear", "optimizer": "lbfgs", "lr": 1.0, "steps": 30},
            "matching": {"spaces": ["raw"], "pca_dims": 5},
            "asal": {"steps": 5, "lr": 0.05},
            "latent": {"steps": 5},
            "adba": {"points": 5},
            "full": {"steps": 40},
            "seeds": [0],
            "strategies": ["random", "coreset", "full", "gaal", "adba"],
        }
    }
}


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf2")
    (workdir / "raw").mkdir()
    x, y = make_images(300, n_classes=2, side=10, seed=3)
    np.savez(workdir / "raw" / "tiny2.npz", x=x, y=y)
    write_config(workdir, BINARY)
    snakemake(workdir)
    return workdir


def test_gaal_adba_and_full_through_the_workflow(binary_run, tmp_path):
    wd, runs = binary_run, binary_run / "results/tiny2/runs"
    for strategy in ("random", "coreset", "gaal", "adba"):
        assert pd.read_csv(runs / f"{strategy}/seed0.csv").n_labelled.tolist() == [10, 15, 20, 25], strategy
    full = pd.read_csv(runs / "full/seed0.csv")
    assert full.n_labelled.tolist() == [225] and full.n_selected.tolist() == [0]  # the whole pool, once
    with np.load(runs / "gaal/seed0_synthetic.npz") as synthetic:
        assert synthetic["images"].shape == (15, 1, 10, 10) and set(synthetic["labels"].tolist()) <= {0, 1}
    with np.load(runs / "adba/seed0_lines.npz") as lines:
        assert lines["images"].shape == (15, 5, 1, 10, 10) and lines["step"].shape == (15, 5)
    with h5py.File(wd / "features/tiny2/latent.h5") as fh:
        assert fh["pool"].shape == (225, 8) and fh["test"].shape == (75, 8)
    assert (wd / "results/tiny2/accuracy.pdf").read_bytes()[:5] == b"%PDF-"
    assert set(pd.read_csv(wd / "results/tiny2/summary.csv").strategy) == set(BINARY["experiments"]["tiny2"]["strategies"])

    copy = tmp_path / "copy"
    shutil.copytree(binary_run, copy)
    assert planned_jobs(copy) == {}

    def edit(section, key, value):
        config = yaml.safe_load(yaml.safe_dump(BINARY))
        config["experiments"]["tiny2"][section][key] = value
        write_config(copy, config)
        return planned_jobs(copy)

    config_file = {"write_config": 1}  # results/<exp>/config.yaml follows every edit of the experiment
    figures = {"summarize_runs": 1, "tabulate": 1, "plot_accuracy": 1, "plot_entropy": 1, "plot_timings": 1,
               **config_file}
    assert edit("adba", "points", 6) == {"run_al_lines": 1, **figures}
    assert edit("latent", "steps", 6) == {"invert_gan": 1, "run_al_lines": 1, **figures}
    assert edit("full", "steps", 50) == {"run_al": 1, **figures}  # the bound only
    assert edit("asal", "steps", 6) == {"run_al_synthetic": 1, **figures}  # GAAL's ascent; no ASAL run here
    assert edit("asal", "k", 5) == config_file  # ASAL's matching: GAAL does not read it, only the config file changes
    assert edit("oracle", "steps", 31) == {"train_oracle": 1, "evaluate_gan": 1, "run_al_synthetic": 1, "run_al_lines": 1, **figures}
    assert edit("classifier", "steps", 31) == {"run_al": 3, "run_al_synthetic": 1, **figures}  # not ADBA's latent model

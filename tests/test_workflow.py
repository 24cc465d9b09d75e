"""End to end: Snakemake on a tiny generated data set in a temporary folder, and what a config edit reruns."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, make_images

pytestmark = pytest.mark.e2e

TINY = {
    "experiments": {
        "tiny": {
            "data": {"source": "npz", "path": "raw/tiny.npz", "test_fraction": 0.25},
            "classifier": {"model": "linear", "optimizer": "lbfgs", "lr": 1.0, "steps": 30, "weight_decay": 0.01},
            "al": {"initial": 10, "new": 10, "budget": 40},
            "seeds": [0, 1],
            "strategies": ["random", "max-entropy"],
        }
    }
}


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def planned_jobs(workdir: Path) -> dict[str, int]:
    """Rule -> job count that a dry run would execute."""
    out = snakemake(workdir, "-n", "results/tiny/accuracy.pdf").stdout
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config").mkdir(exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf")
    (workdir / "raw").mkdir()
    x, y = make_images(400, n_classes=3, side=10)
    np.savez(workdir / "raw" / "tiny.npz", x=x, y=y)
    write_config(workdir, TINY)
    snakemake(workdir, "results/tiny/accuracy.pdf")
    return workdir


def test_outputs(workflow_run):
    wd = workflow_run
    assert (wd / "results/tiny/accuracy.pdf").read_bytes()[:5] == b"%PDF-"
    summary = pd.read_csv(wd / "results/tiny/summary.csv")
    for column in ("strategy", "n_labelled", "accuracy_mean", "accuracy_min", "accuracy_max", "entropy_mean",
                   "select_seconds_mean", "n_seeds"):
        assert column in summary.columns
    assert sorted(summary.strategy.unique()) == ["max-entropy", "random"]
    assert summary.n_labelled.unique().tolist() == [10, 20, 30, 40] and (summary.n_seeds == 2).all()
    assert summary.accuracy_mean.between(0.5, 1).all()
    for strategy in ("random", "max-entropy"):
        for seed in (0, 1):
            run = pd.read_csv(wd / f"results/tiny/runs/{strategy}/seed{seed}.csv")
            assert run.n_labelled.tolist() == [10, 20, 30, 40]
            assert len(pd.read_csv(wd / f"results/tiny/runs/{strategy}/seed{seed}_indices.csv")) == 40
            assert "accuracy" in (wd / f"logs/run_al/tiny/{strategy}/seed{seed}.log").read_text()
            assert (wd / f"benchmarks/run_al/tiny/{strategy}/seed{seed}.tsv").exists()
    assert set(pd.read_csv(wd / "results/tiny/strategies.csv").strategy) == {"random", "max-entropy"}


def test_config_edits_rerun_exactly_what_they_touch(workflow_run, tmp_path):
    wd = tmp_path / "copy"
    shutil.copytree(workflow_run, wd)
    assert planned_jobs(wd) == {}

    def edit(**changes):
        config = yaml.safe_load(yaml.safe_dump(TINY))
        for key, value in changes.items():
            section, name = key.split("__")
            config["experiments"]["tiny"][section][name] = value
        write_config(wd, config)
        return planned_jobs(wd)

    downstream = {"run_al": 4, "summarize_runs": 1, "plot_accuracy": 1}
    assert edit(al__budget=50) == downstream
    assert edit(classifier__weight_decay=0.1) == downstream
    assert edit(data__seed=1) == {"prepare_data": 1, **downstream}
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["experiments"]["tiny"]["seeds"] = [0, 1, 2]
    write_config(wd, config)
    assert planned_jobs(wd) == {"run_al": 2, "summarize_runs": 1, "plot_accuracy": 1}


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

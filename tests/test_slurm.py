"""The tiny workflow through a real single-node SLURM cluster with the project's own profiles/slurm: every
job goes through sbatch, and the results equal a local run's."""

import shutil
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, make_images
from slurm_cluster import single_node_slurm, why_not_possible
from test_workflow import TINY, snakemake, write_config

pytestmark = pytest.mark.e2e

#: The tiny workflow cut to one seed and three strategies (one ASAL): 23 jobs through sbatch, about 270 s here.
SLURM_TINY = {"experiments": {"tiny": {**TINY["experiments"]["tiny"], "seeds": [0],
                                       "strategies": ["random", "max-entropy", "asal-raw"]}}}


def tiny_workdir(path):
    (path / "raw").mkdir(parents=True)
    x, y = make_images(400, n_classes=3, side=10)
    np.savez(path / "raw" / "tiny.npz", x=x, y=y)
    write_config(path, SLURM_TINY)
    return path


def test_tiny_workflow_through_slurm_equals_a_local_run(tmp_path):
    reason = why_not_possible()
    if reason:
        pytest.skip(f"no SLURM test here: {reason}")
    local = tiny_workdir(tmp_path / "local")
    snakemake(local)
    cluster = tiny_workdir(tmp_path / "cluster")
    with single_node_slurm(tmp_path / "slurm"):
        start = time.perf_counter()
        result = snakemake(cluster, "--profile", str(REPO / "profiles" / "slurm"), "--jobs", "8")
        seconds = time.perf_counter() - start
        log = result.stdout + result.stderr
        submitted = len({line.split("SLURM jobid ")[1].split()[0] for line in log.splitlines() if "SLURM jobid " in line})
    print(f"SLURM run: {seconds:.0f} s, {submitted} jobs submitted with sbatch")
    assert submitted >= 10  # every job of the DAG but the local fetch rules
    for csv in sorted((local / "results" / "tiny" / "runs").glob("*/*_indices.csv")):
        other = cluster / csv.relative_to(local)
        pd.testing.assert_frame_equal(pd.read_csv(csv), pd.read_csv(other))
    keep = ["strategy", "n_labelled", "accuracy_mean", "entropy_mean"]
    pd.testing.assert_frame_equal(pd.read_csv(local / "results/tiny/summary.csv")[keep],
                                  pd.read_csv(cluster / "results/tiny/summary.csv")[keep])

"""The tiny workflow through a real single-node SLURM cluster with the project's own profiles/slurm: every
job goes through sbatch, and its runs equal the local run's (the session's `workflow_run`)."""

import time

import pandas as pd
import pytest

from conftest import MEASURED, REPO, TINY, snakemake, tiny_workdir
from slurm_cluster import single_node_slurm, why_not_possible

pytestmark = pytest.mark.e2e

#: The tiny workflow cut to one seed, three strategies (one ASAL) and the raw matching space only: 18 jobs
#: through sbatch. Its runs are the same runs as the local workflow's (same data, models and settings).
STRATEGIES = ["random", "max-entropy", "asal-raw"]
TINY_EXP = TINY["experiments"]["tiny"]
SLURM_TINY = {"experiments": {"tiny": {**TINY_EXP, "seeds": [0], "strategies": STRATEGIES,
                                       "matching": {**TINY_EXP["matching"], "spaces": ["raw"]}}}}
#: What a run must reproduce exactly; the seconds columns are timings and differ.
SAME = ["cycle", "n_labelled", "test_accuracy", "n_selected", "selected_entropy"]


def test_tiny_workflow_through_slurm_equals_a_local_run(workflow_run, tmp_path):
    reason = why_not_possible()
    if reason:
        pytest.skip(f"no SLURM test here: {reason}")
    cluster = tiny_workdir(tmp_path / "cluster", SLURM_TINY)
    begin = time.perf_counter()
    with single_node_slurm(tmp_path / "slurm"):
        start = time.perf_counter()
        result = snakemake(cluster, "--profile", str(REPO / "profiles" / "slurm"), "--jobs", "8")
        seconds = time.perf_counter() - start
    total = time.perf_counter() - begin
    log = result.stdout + result.stderr
    submitted = {line.split("SLURM jobid ")[1].split()[0] for line in log.splitlines() if "SLURM jobid " in line}
    MEASURED.append(f"SLURM: {len(submitted)} jobs submitted with sbatch; the workflow took {seconds:.0f} s, "
                    f"{total:.0f} s with installing (if needed), starting and stopping the cluster")
    planned = int(log.split("Job stats:")[1].split("total")[1].split()[0])
    assert len(submitted) == planned - 2  # every job but the local rules: `all` and write_config
    for strategy in STRATEGIES:
        for name, columns in ((f"{strategy}/seed0_indices.csv", None), (f"{strategy}/seed0.csv", SAME)):
            local, other = (pd.read_csv(wd / "results/tiny/runs" / name, usecols=columns)
                            for wd in (workflow_run, cluster))
            pd.testing.assert_frame_equal(local, other)
    assert (cluster / "results/tiny/accuracy.pdf").read_bytes()[:5] == b"%PDF-"

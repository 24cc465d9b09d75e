"""Adding a strategy is one module and one registry entry: a toy strategy that needs the index of a feature
space, registered from outside the package (an entry point), is admitted by the config schema, planned by
`snakemake -n` with the right inputs, and passes the contract tests, with nothing else edited."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


from conftest import REPO, TINY, tiny_workdir

PLUGIN = REPO / "tests" / "plugins"


def with_plugin(tmp_path: Path) -> dict:
    """An environment in which the toy strategy is installed: its module and a distribution whose entry point
    registers it (what `pip install` of a package declaring the entry point leaves behind)."""
    dist = tmp_path / "site" / "asal_toy-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: asal-toy\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[asal.strategies]\ntoy-nearest = toy_nearest:SPEC\n")
    path = os.pathsep.join([str(PLUGIN), str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def dry_run(workdir: Path, env: dict) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "1",
           "-n", "-p", "results/tiny/accuracy.pdf"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)  # not the checkout's asal/


def test_the_schema_and_the_workflow_plan_a_registered_strategy(tmp_path):
    config = {"experiments": {"tiny": {**TINY["experiments"]["tiny"], "strategies": ["random", "toy-nearest"]}}}
    workdir = tiny_workdir(tmp_path / "wf", config)
    refused = dry_run(workdir, dict(os.environ))  # not installed: the schema's list (the registry's) refuses it
    assert refused.returncode != 0 and "'toy-nearest' is not one of" in refused.stdout + refused.stderr
    plan = dry_run(workdir, with_plugin(tmp_path))
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    calls = [line for line in plan.stdout.splitlines() if "--strategy toy-nearest" in line]
    assert len(calls) == 2  # seeds 0 and 1
    for call in calls:
        assert "--pca features/tiny/raw_pca.h5 --index features/tiny/raw_kdtree.index" in call
        assert "--gan" not in call and "--features-model" not in call
    assert "features/tiny/raw_kdtree.index" in plan.stdout and "rule build_index" in plan.stdout


def test_the_contract_tests_run_on_a_registered_strategy(tmp_path):
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(REPO / "tests/test_strategies.py"),
           "-k", "toy-nearest", "--rootdir", str(REPO)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=with_plugin(tmp_path), cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 passed" in result.stdout  # the contract, and the same choice for the same rng


def test_without_the_package_the_workflow_says_how_to_install_it(tmp_path):
    """The Snakefile asks the package what each strategy needs: no package is an error, never a skipped check.
    The workflow is copied out of the checkout (Snakemake puts the Snakefile's folder on the import path, so a
    checkout finds its own asal/), and the package is shadowed by one that fails to import."""
    workflow = tmp_path / "workflow"
    shutil.copytree(REPO / "rules", workflow / "rules")
    shutil.copy(REPO / "Snakefile", workflow / "Snakefile")
    fake = tmp_path / "shadow" / "asal"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no module named asal (simulated)')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "shadow"))
    workdir = tiny_workdir(tmp_path / "wf", TINY)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(workflow / "Snakefile"), "-d", str(workdir), "-n"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    assert result.returncode != 0
    assert "needs the `asal` package where Snakemake runs" in result.stderr + result.stdout
    assert "pip install -e ." in result.stderr + result.stdout

"""The tiny workflow on a GPU, where the machine has one: every torch stage runs on CUDA from start to end
(ASAL_DEVICE=cuda turns a silent CPU fallback into an error) under profiles/gpu. Skipped, with the reason,
on machines without CUDA, such as CI."""

import time

import pandas as pd
import pytest
import torch

from conftest import MEASURED, REPO, TINY, snakemake, tiny_workdir
from test_profiles import rule_subcommands, torch_subcommands

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here: torch sees no CUDA device")]


def test_tiny_workflow_on_the_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("ASAL_DEVICE", "cuda")
    workdir = tiny_workdir(tmp_path / "gpu", TINY)
    start = time.perf_counter()
    snakemake(workdir, "--profile", str(REPO / "profiles/gpu"))
    MEASURED.append(f"GPU: the tiny workflow in {time.perf_counter() - start:.0f} s on {torch.cuda.get_device_name()}")
    torch_rules = {rule for rule, command in rule_subcommands().items() if command in torch_subcommands()}
    logs = [log for rule in torch_rules for log in (workdir / "logs" / rule).rglob("*.log")]
    assert len(logs) >= 10
    for log in logs:
        assert "device cuda" in log.read_text(), log
    summary = pd.read_csv(workdir / "results/tiny/summary.csv")
    assert sorted(summary.strategy.unique()) == sorted(TINY["experiments"]["tiny"]["strategies"])
    assert summary.accuracy_mean.between(0.5, 1).all()

"""Every Table 1 preset through Snakemake: one dry run of all of them on tiny stand-in data in the shipped
formats, checking each experiment's DAG, and a real run of a shrunken `cifar2` preset end to end."""

import re
import shutil

import pandas as pd
import pytest
import yaml
from snakemake.utils import update_config

from asal.config import validate_slice
from asal.data import prepare_data
from benchmark_formats import write_celeba, write_cifar10, write_lsun, write_svhn
from conftest import REPO, snakemake

pytestmark = pytest.mark.e2e

PRESETS = ["mnist2", "mnist10", "mnist10-cpu", "cifar2", "cifar10", "celeba-blond_hair", "celeba-wearing_hat",
           "celeba-bangs", "celeba-eyeglasses", "svhn", "lsun"]


def stand_in_data(workdir, cifar_per_batch=20):
    """The four datasets' shipped formats, tiny, where the presets look for them (data/raw/...)."""
    raw = workdir / "data" / "raw"
    write_cifar10(raw, per_batch=cifar_per_batch, n_test=100)
    write_svhn(raw / "svhn", n_train=60, n_extra=40, n_test=100)
    write_celeba(raw / "celeba", n=20)
    write_lsun(raw / "lsun", categories=yaml.safe_load((REPO / "config/paper/lsun.yaml").read_text())
               ["experiments"]["lsun"]["data"]["classes"], n_train=2, n_val=1)


def test_every_preset_plans_its_table_1_row(tmp_path, monkeypatch):
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    stand_in_data(tmp_path)
    files = [str(REPO / "config" / "paper" / f"{name}.yaml") for name in PRESETS]
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for path in files:
        update_config(config, yaml.safe_load(open(path)))  # as Snakemake merges --configfile files
    experiments = config["experiments"]
    names = [name for name in PRESETS if name != "mnist10-cpu"]
    targets = [f"results/{name}/accuracy.pdf" for name in names]
    out = snakemake(tmp_path, "-n", "-p", *targets, "--configfile", *files).stdout
    planned = {p.strip() for line in re.findall(r"^\s+output: (.+)$", out, re.M) for p in line.split(",")}
    for name in names:
        exp = experiments[name]
        runs = {p for p in planned if p.startswith(f"results/{name}/runs/") and p.endswith(".csv")
                and "_indices" not in p}
        expected = {f"results/{name}/runs/{s}/seed{seed}.csv" for s in exp["strategies"] for seed in exp["seeds"]}
        assert runs == expected, name
        assert {f"data/{name}/pool.h5", f"models/{name}/gan.pt", f"results/{name}/accuracy.pdf"} <= planned, name
        spaces = {s.split("-")[1] for s in exp["strategies"] if s.startswith("asal-")} - {"cls"}
        features = {p for p in planned if re.fullmatch(rf"features/{re.escape(name)}/(raw|auto|disc)_pca\.h5", p)}
        assert features == {f"features/{name}/{space}_pca.h5" for space in spaces}, name
    # mnist10-cpu stops the mnist10 preset at 2,000 labels: its runs' parameters say so.
    command = next(line for line in out.splitlines() if "--out results/mnist10/runs/random/seed0.csv" in line)
    assert '"budget": 2000' in command and '"new": 50' in command
    # The presets' data settings fit the loaders: each new preset's data stage runs on the stand-ins.
    monkeypatch.chdir(tmp_path)  # the presets' paths are relative to the workflow's directory
    for name in names:
        if experiments[name]["data"]["source"] != "mnist":
            data = validate_slice(experiments[name]["data"], "data")
            summary = prepare_data(data, tmp_path / name / "pool.h5", tmp_path / name / "test.h5")
            assert summary["pool"] > 0 and summary["test"] > 0, name


SHRUNKEN = {  # the cifar2 preset on 2 CPU cores in about a minute: everything small but the code path
    "experiments": {"cifar2": {
        "al": {"initial": 10, "new": 10, "budget": 30},
        "gan": {"arch": "small", "iterations": 4, "batch_size": 16, "critic_iters": 1, "latent_dim": 8},
        "autoencoder": {"steps": 10, "batch_size": 32, "code_dim": 16},
        "oracle": {"model": "cnn", "steps": 20, "batch_size": 32},
        "matching": {"pca_dims": 5},
        "asal": {"steps": 10},
        "full": {"steps": 20},
        "seeds": [0],
    }}
}


def test_shrunken_cifar2_preset_runs_end_to_end(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump({"experiments": {}}))
    (tmp_path / "shrink.yaml").write_text(yaml.safe_dump(SHRUNKEN))
    stand_in_data(tmp_path, cifar_per_batch=100)
    snakemake(tmp_path, "results/cifar2/accuracy.pdf", "results/cifar2/entropy.pdf", "--configfile",
              str(REPO / "config" / "paper" / "cifar2.yaml"), str(tmp_path / "shrink.yaml"))
    summary = pd.read_csv(tmp_path / "results" / "cifar2" / "summary.csv")
    preset = yaml.safe_load((REPO / "config" / "paper" / "cifar2.yaml").read_text())["experiments"]["cifar2"]
    assert set(summary["strategy"]) == set(preset["strategies"])
    al = summary[summary["strategy"] != "full"]
    assert sorted(al["n_labelled"].unique()) == [10, 20, 30]
    assert al["accuracy_mean"].between(0, 1).all() and (tmp_path / "results" / "cifar2" / "accuracy.pdf").stat().st_size

"""Tiny data the tests make themselves (a few hundred small images with a known, learnable class structure),
and the tiny end-to-end workflow run once per session."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

#: Figures a test measured (e.g. the SLURM run's time and job count), printed at the end of the session.
MEASURED: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if MEASURED:
        terminalreporter.section("measured")
        for line in MEASURED:
            terminalreporter.write_line(line)


def make_images(n: int, n_classes: int = 3, side: int = 12, channels: int = 1, seed: int = 0):
    """(images (n, side, side[, C]) uint8, labels (n,) int64): class prototypes plus noise, classes overlap a little."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(1234).uniform(0, 255, size=(n_classes, side, side, channels))
    labels = rng.integers(0, n_classes, size=n)
    mix = rng.uniform(0.45, 1.0, size=(n, 1, 1, 1))
    other = prototypes[rng.integers(0, n_classes, size=n)]
    x = mix * prototypes[labels] + (1 - mix) * other + rng.normal(0, 25, size=(n, side, side, channels))
    x = np.clip(np.round(x), 0, 255).astype(np.uint8)
    return (x[..., 0] if channels == 1 else x), labels.astype(np.int64)


class Py2StylePickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for numpy arrays: bytes as py2 ``str`` opcodes (which Python 3
    reads back with ``encoding="latin1"``) and ``numpy.core.multiarray._reconstruct`` by its old module name."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        if getattr(obj, "__name__", "") == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def py2_style_dumps(obj) -> bytes:
    buffer = io.BytesIO()
    Py2StylePickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def write_mnist_pickle(path: Path, n_train=300, n_valid=20, n_test=120) -> Path:
    """A file shaped like mnist.pkl.gz: ((x, y) train, valid, test), x float32 (N, 784) = k/256."""
    splits = []
    for i, n in enumerate((n_train, n_valid, n_test)):
        x, y = make_images(n, n_classes=10, side=28, seed=i)
        splits.append(((x.reshape(n, -1) / 256.0).astype(np.float32), y))
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(py2_style_dumps(tuple(splits)))
    return path


@pytest.fixture(scope="session")
def mnist_pickle(tmp_path_factory) -> Path:
    return write_mnist_pickle(tmp_path_factory.mktemp("mnist") / "mnist.pkl.gz")


@pytest.fixture
def npz_data(tmp_path) -> Path:
    x, y = make_images(360, n_classes=3, side=12)
    path = tmp_path / "tiny.npz"
    np.savez(path, x=x, y=y)
    return path


def data_slice(**overrides) -> dict:
    from asal.config import validate_slice

    return validate_slice(overrides, "data")


@pytest.fixture
def tiny_stores(tmp_path, npz_data):
    """(pool, test) ImageStores of 3 classes, 12x12 gray: 288 pool, 72 test images."""
    from asal.data import prepare_data, read_split

    prepare_data(data_slice(source="npz", path=str(npz_data)), tmp_path / "pool.h5", tmp_path / "test.h5")
    return read_split(tmp_path / "pool.h5"), read_split(tmp_path / "test.h5")


#: The tiny end-to-end experiment: 300 pool images of 10x10, every stage at a few steps, about 2 min here.
TINY = {
    "experiments": {
        "tiny": {
            "data": {"source": "npz", "path": "raw/tiny.npz", "test_fraction": 0.25},
            "classifier": {"model": "linear", "optimizer": "lbfgs", "lr": 1.0, "steps": 30, "weight_decay": 0.01},
            "al": {"initial": 10, "new": 10, "budget": 40},
            "gan": {"iterations": 4, "batch_size": 16, "critic_iters": 1, "latent_dim": 8},
            "autoencoder": {"steps": 10, "batch_size": 32, "code_dim": 16},
            "oracle": {"model": "cnn", "steps": 20, "batch_size": 32},
            "matching": {"pca_dims": 5},
            "asal": {"steps": 10, "lr": 0.05},
            "seeds": [0, 1],
            "strategies": ["random", "max-entropy", "asal-raw", "asal-disc", "asal-cls"],
        }
    }
}


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config").mkdir(exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))


def tiny_workdir(workdir: Path, config: dict = TINY) -> Path:
    """A folder ready for `snakemake -d`: raw/tiny.npz (400 images, 3 classes, 10x10) and config/config.yaml."""
    (workdir / "raw").mkdir(parents=True)
    x, y = make_images(400, n_classes=3, side=10)
    np.savez(workdir / "raw" / "tiny.npz", x=x, y=y)
    write_config(workdir, config)
    return workdir


@pytest.fixture(scope="session")
def workflow_run(tmp_path_factory) -> Path:
    """The tiny workflow run once locally (`snakemake --cores 2`): shared by the workflow and SLURM tests."""
    workdir = tiny_workdir(tmp_path_factory.mktemp("wf"))
    snakemake(workdir)
    return workdir



import gzip
import io
import os
import pickle

import numpy as np
import pytest

from asal.data.mnist import load_mnist
from asal.data.safe_pickle import safe_load
from asal.errors import BadData

from conftest import py2_style_dumps


class Hostile:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("dumps", [py2_style_dumps, lambda obj: pickle.dumps(obj, protocol=4)])
def test_arrays_round_trip(dumps):
    """Python 2 pickles (MNIST's) and Python 3 ones (protocol 4, no _codecs) both load."""
    data = (np.arange(600, dtype=np.float32).reshape(2, 300), np.array([1, 2], dtype=np.int64))
    out = safe_load(io.BytesIO(dumps(data)), source="mem")
    np.testing.assert_array_equal(out[0], data[0])
    assert out[1].dtype == np.int64


def test_refuses_hostile_pickle_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps((np.zeros(2), Hostile(marker)), protocol=4)
    with pytest.raises(BadData, match=r"asks for posix\.system|asks for os\.system|asks for nt\.system"):
        safe_load(io.BytesIO(payload), source="evil.pkl")
    assert not marker.exists()


@pytest.mark.parametrize("obj", [{"a": 1}.items, print, pickle.Unpickler])
def test_refuses_any_other_global(obj):
    with pytest.raises(BadData, match="not an array type"):
        safe_load(io.BytesIO(pickle.dumps(obj)), source="x.pkl")


def test_hostile_mnist_file_is_refused_by_the_loader(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as fh:
        pickle.dump(Hostile(marker), fh, protocol=2)
    with pytest.raises(BadData, match=str(path)):
        load_mnist(path)
    assert not marker.exists()

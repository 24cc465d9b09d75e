"""CIFAR-10, SVHN, CelebA and LSUN in the formats they ship in: what each loader reads, and one clear error
(and no output left behind) for each kind of bad input."""

import pickle

import h5py
import numpy as np
import pytest

from asal.data import prepare_data, read_split
from asal.data import lsun as lsun_module
from asal.data.cifar import load_cifar10
from asal.data.svhn import load_svhn
from asal.errors import BadConfig, BadData

from benchmark_formats import CELEBA_ATTRIBUTES, write_celeba, write_cifar10, write_lsun, write_svhn
from conftest import data_slice, make_images, py2_style_dumps


def prepare(tmp_path, **data):
    out = tmp_path / "out"
    summary = prepare_data(data_slice(**data), out / "pool.h5", out / "test.h5")
    return summary, read_split(out / "pool.h5"), read_split(out / "test.h5")


def fails(tmp_path, error, match, **data):
    with pytest.raises(error, match=match):
        prepare_data(data_slice(**data), tmp_path / "out" / "pool.h5", tmp_path / "out" / "test.h5")
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())  # nothing left behind


# --- CIFAR-10 -------------------------------------------------------------------------------------------


def test_cifar10_batches_planes_and_classes(tmp_path):
    folder = write_cifar10(tmp_path)
    (x, y), (xt, yt) = load_cifar10(folder)
    assert x.shape == (200, 3, 32, 32) and xt.shape == (60, 3, 32, 32) and x.dtype == np.uint8
    first, labels = make_images(40, n_classes=10, side=32, channels=3, seed=0)  # data_batch_1
    np.testing.assert_array_equal(x[:40], first.transpose(0, 3, 1, 2))  # R, G, B planes -> (C, H, W)
    np.testing.assert_array_equal(y[:40], labels)
    summary, pool, test = prepare(tmp_path, source="cifar10", path=str(folder), classes=[1, 7])
    assert pool.class_names == [1, 7] and pool.image_shape == (3, 32, 32)
    assert len(pool) == np.isin(y, [1, 7]).sum() and len(test) == np.isin(yt, [1, 7]).sum()


def test_cifar10_truncated_batch(tmp_path):
    folder = write_cifar10(tmp_path)
    raw = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    fails(tmp_path, BadData, "data_batch_3: not a readable pickle", source="cifar10", path=str(folder))


def test_cifar10_missing_batch_and_folder(tmp_path):
    folder = write_cifar10(tmp_path)
    (folder / "test_batch").unlink()
    fails(tmp_path, BadData, "test_batch: no such file", source="cifar10", path=str(folder))
    fails(tmp_path, BadData, "nowhere: no such folder.*fetch-data cifar10", source="cifar10",
          path=str(tmp_path / "nowhere"))


def test_cifar10_labels_out_of_range(tmp_path):
    folder = write_cifar10(tmp_path)
    x, _ = make_images(5, side=32, channels=3)
    batch = {b"data": x.transpose(0, 3, 1, 2).reshape(5, -1), b"labels": [0, 1, 2, 3, 10]}
    (folder / "data_batch_2").write_bytes(py2_style_dumps(batch))
    fails(tmp_path, BadData, r"data_batch_2: labels out of range 0\.\.9 \(min 0, max 10\)",
          source="cifar10", path=str(folder))


def test_cifar10_refuses_a_pickle_that_calls_code(tmp_path):
    folder = write_cifar10(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "data_batch_1").write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    fails(tmp_path, BadData, "print, which is not an array type", source="cifar10", path=str(folder))


# --- SVHN -----------------------------------------------------------------------------------------------


def test_svhn_pool_is_train_plus_extra_and_10_is_zero(tmp_path):
    root = write_svhn(tmp_path / "svhn")
    (x, y), (xt, yt) = load_svhn(root)
    assert x.shape == (140, 3, 32, 32) and xt.shape == (50, 3, 32, 32)
    images, digits = make_images(80, n_classes=10, side=32, channels=3, seed=10)  # train_32x32.mat
    np.testing.assert_array_equal(x[:80], images.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(y[:80], digits)  # stored as 10 for the digit 0, read back as 0
    assert set(np.unique(y)) <= set(range(10))
    _, pool, test = prepare(tmp_path, source="svhn", path=str(root), extra=False)
    assert len(pool) == 80 and len(test) == 50 and pool.class_names == list(range(10))


def test_svhn_truncated_file(tmp_path):
    root = write_svhn(tmp_path / "svhn")
    raw = (root / "extra_32x32.mat").read_bytes()
    (root / "extra_32x32.mat").write_bytes(raw[: len(raw) // 3])
    fails(tmp_path, BadData, "extra_32x32.mat: not a readable MATLAB file", source="svhn", path=str(root))


def test_svhn_labels_out_of_range(tmp_path):
    import scipy.io

    root = write_svhn(tmp_path / "svhn")
    x, _ = make_images(4, side=32, channels=3)
    scipy.io.savemat(root / "test_32x32.mat", {"X": x.transpose(1, 2, 3, 0), "y": np.array([[1], [2], [0], [3]])})
    fails(tmp_path, BadData, r"test_32x32.mat: labels out of range 1\.\.10 \(min 0", source="svhn", path=str(root))


def test_extra_is_for_svhn_only(tmp_path):
    fails(tmp_path, BadConfig, "data.extra = False has no meaning for source 'cifar10'", source="cifar10",
          path=str(tmp_path), extra=False)


# --- CelebA ---------------------------------------------------------------------------------------------


def test_celeba_attribute_partitions_and_crop(tmp_path):
    root = write_celeba(tmp_path / "celeba")
    summary, pool, test = prepare(tmp_path, source="celeba", path=str(root), attribute="Eyeglasses",
                                  image_size=[16, 16])
    # 90 images cycling partitions 0, 0, 0, 1, 2: 54 train, 18 valid (unused), 18 test
    assert len(pool) == 54 and len(test) == 18 and pool.image_shape == (3, 16, 16)
    assert pool.class_names == [0, 1]
    bright = pool.images.reshape(len(pool), -1).mean(1) > 128
    np.testing.assert_array_equal(pool.labels, bright.astype(int))  # Eyeglasses images are the bright ones
    _, default_size, _ = prepare(tmp_path, source="celeba", path=str(root), attribute="Bangs")
    assert default_size.image_shape == (3, 64, 64)


def test_celeba_attribute_that_does_not_exist(tmp_path):
    root = write_celeba(tmp_path / "celeba", n=10)
    fails(tmp_path, BadConfig, "data.attribute = 'Sunglasses' is not an attribute of .*list_attr_celeba.txt "
          r"\(it has: " + ", ".join(CELEBA_ATTRIBUTES), source="celeba", path=str(root), attribute="Sunglasses")


def test_celeba_attribute_is_required(tmp_path):
    with pytest.raises(BadConfig, match="'attribute' is a required property"):
        data_slice(source="celeba", path=str(tmp_path))


def test_celeba_missing_attribute_value(tmp_path):
    root = write_celeba(tmp_path / "celeba", n=10)
    path = root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[5] = lines[5].rsplit(" ", 1)[0]  # the image on line 6 lacks its last value
    path.write_text("\n".join(lines) + "\n")
    fails(tmp_path, BadData, "list_attr_celeba.txt: line 6 has 3 attribute values, expected 4",
          source="celeba", path=str(root), attribute="Eyeglasses")


def test_celeba_truncated_attribute_list_and_missing_image(tmp_path):
    root = write_celeba(tmp_path / "celeba", n=10)
    path = root / "list_attr_celeba.txt"
    full = path.read_text()
    path.write_text("\n".join(full.splitlines()[:-3]) + "\n")
    fails(tmp_path, BadData, "declares 10 images but lists 7", source="celeba", path=str(root),
          attribute="Eyeglasses")
    path.write_text(full)
    (root / "img_align_celeba" / "000005.jpg").unlink()
    fails(tmp_path, BadData, "000005.jpg: not a readable image", source="celeba", path=str(root),
          attribute="Eyeglasses")


def test_celeba_value_out_of_range(tmp_path):
    root = write_celeba(tmp_path / "celeba", n=10)
    path = root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    fields = lines[3].split()
    fields[1 + CELEBA_ATTRIBUTES.index("Eyeglasses")] = "2"
    lines[3] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    fails(tmp_path, BadData, "line 4: Eyeglasses = '2', expected 1 or -1", source="celeba", path=str(root),
          attribute="Eyeglasses")


# --- LSUN -----------------------------------------------------------------------------------------------


def test_lsun_streams_categories_in_chunks(tmp_path, monkeypatch):
    root = write_lsun(tmp_path / "lsun")  # bedroom then kitchen, 40 train and 12 val images each
    monkeypatch.setattr(lsun_module, "ROWS_PER_CHUNK", 7)  # several appends per category
    summary, pool, test = prepare(tmp_path, source="lsun", path=str(root), classes=["kitchen", "bedroom"],
                                  image_size=[16, 16], pool_size=50)
    assert len(pool) == 50 and len(test) == 24 and pool.image_shape == (3, 16, 16)
    assert pool.class_names == ["kitchen", "bedroom"] and summary["pool_class_counts"] == np.bincount(pool.labels).tolist()
    green = pool.images[:, 1, 0, 0]  # 180 for kitchen (written second), 60 for bedroom
    np.testing.assert_array_equal(green, np.where(pool.labels == 0, 180, 60))
    with h5py.File(tmp_path / "out" / "pool.h5") as fh:
        orig = fh["orig_index"][()]
        assert fh.attrs["source"] == "lsun" and np.all(np.diff(orig) > 0) and orig.max() < 80
    # orig_index is the row in the configured categories' concatenation (kitchen's 40, then bedroom's 40), and
    # red is each image's position in its own database: the two agree for every image.
    np.testing.assert_array_equal(pool.images[:, 0, 0, 0], orig - 40 * pool.labels)
    assert (pool.images == pool.images[:, :, :1, :1]).all()  # one colour each, whatever the resize
    _, again, _ = prepare(tmp_path, source="lsun", path=str(root), classes=["kitchen", "bedroom"],
                          image_size=[16, 16], pool_size=50)
    np.testing.assert_array_equal(again.images, pool.images)  # the seeded draw is reproducible


def test_lsun_needs_category_names(tmp_path):
    root = write_lsun(tmp_path / "lsun", n_train=2, n_val=1)
    with pytest.raises(BadConfig, match="key 'classes': None is not of type 'array'"):
        data_slice(source="lsun", path=str(root))
    with pytest.raises(BadConfig, match="is not of type 'string'"):
        data_slice(source="lsun", path=str(root), classes=[1, 2])


def test_lsun_missing_category_and_too_large_pool(tmp_path):
    root = write_lsun(tmp_path / "lsun", n_train=5, n_val=2)
    fails(tmp_path, BadData, "church_train_lmdb: no such LMDB folder", source="lsun", path=str(root),
          classes=["bedroom", "church"])
    fails(tmp_path, BadConfig, "data.pool_size = 11 is larger than the 10 images", source="lsun",
          path=str(root), classes=["bedroom", "kitchen"], pool_size=11)


def test_lsun_truncated_database(tmp_path):
    root = write_lsun(tmp_path / "lsun", n_train=30, n_val=2)
    mdb = root / "kitchen_train_lmdb" / "data.mdb"
    mdb.write_bytes(mdb.read_bytes()[:8192])
    fails(tmp_path, BadData, r"kitchen_train_lmdb: truncated LMDB database \(data.mdb has 8192 bytes", source="lsun",
          path=str(root), classes=["bedroom", "kitchen"])


def test_lsun_undecodable_image(tmp_path):
    import lmdb

    root = write_lsun(tmp_path / "lsun", n_train=5, n_val=2)
    env = lmdb.open(str(root / "bedroom_val_lmdb"))
    with env.begin(write=True) as txn:
        txn.put(b"bedroom-val-00001", b"not an image")
    env.close()
    fails(tmp_path, BadData, r"bedroom_val_lmdb key b'bedroom-val-00001': not a readable image", source="lsun",
          path=str(root), classes=["bedroom", "kitchen"])


def test_fetch_data_asks_torchvision_for_every_split(tmp_path, monkeypatch):
    """`asal fetch-data` downloads through torchvision (never in tests: its dataset classes are replaced)."""
    import torchvision.datasets

    from asal.cli import main

    calls = []
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", lambda root, train, download: calls.append((root, train, download)))
    monkeypatch.setattr(torchvision.datasets, "SVHN", lambda root, split, download: calls.append((root, split, download)))
    assert main(["fetch-data", "cifar10", "--root", str(tmp_path)]) in (0, None)
    assert main(["fetch-data", "svhn", "--root", str(tmp_path / "svhn")]) in (0, None)
    assert calls == [(str(tmp_path), True, True), (str(tmp_path), False, True),
                     *((str(tmp_path / "svhn"), split, True) for split in ("train", "extra", "test"))]

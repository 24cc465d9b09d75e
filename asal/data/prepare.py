"""The data stage: read a source, keep the configured classes, draw pool and test sets, write HDF5.

Source ``unlabelled`` (:func:`prepare_unlabelled`) has no classes to keep: its pool is every image under a
folder, labelled :data:`~asal.data.store.UNLABELLED`, and its test set, if any, is a labelled file whose
labels are names of ``data.classes``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..config import check_data, data_identity, has_labels
from ..errors import BadConfig, BadData
from ..files import atomic_path
from .augment import write_grown_pool
from .celeba import load_celeba
from .cifar import load_cifar10
from .lsun import prepare_lsun
from .mnist import DEFAULT_MNIST_PATH, load_mnist
from .store import UNLABELLED, subsample, write_split
from .svhn import load_svhn
from .user_formats import load_idx, load_imagefolder, load_npz, read_images, relative_paths, unlabelled_files

log = logging.getLogger(__name__)

Split = tuple[np.ndarray, np.ndarray]  # images (N, C, H, W) uint8, labels (N,) int64 or str


class Read(NamedTuple):
    """A source as it ships: ``train`` and ``test`` (None: none shipped) splits, the file or folder each comes
    from, and, for sources read from image files, each row's file relative to that folder (else None)."""

    train: Split
    test: Split | None
    train_file: str
    test_file: str
    train_sources: list[str] | None = None
    test_sources: list[str] | None = None


def read_source(data: dict) -> Read:
    """The labelled source of ``data`` as it ships (:class:`Read`)."""
    source = data["source"]
    check_keys_apply(data)
    if source == "mnist":
        path = str(data["path"] or DEFAULT_MNIST_PATH)
        train, test = load_mnist(path)
        return Read(train, test, path, path)
    benchmarks = {  # datasets that ship their own test split, read from the folder they ship in
        "cifar10": load_cifar10,
        "svhn": lambda p: load_svhn(p, extra=data.get("extra", True)),
        "celeba": lambda p: load_celeba(p, attribute=data.get("attribute"), image_size=data["image_size"]),
    }
    if source in benchmarks:
        train, test = benchmarks[source](data["path"])
        return Read(train, test, data["path"], data["path"])
    train, train_sources = read_labelled_file(data, source, data["path"], data["labels_path"])
    if data["test_path"] is None:
        return Read(train, None, data["path"], data["path"], train_sources)
    if source == "idx" and not data["test_labels_path"]:
        raise BadConfig("data.test_labels_path is required with data.test_path for source 'idx'")
    test, test_sources = read_labelled_file(data, source, data["test_path"], data["test_labels_path"])
    check_same_shape(test[0], data["test_path"], train[0], data["path"])
    return Read(train, test, data["path"], data["test_path"], train_sources, test_sources)


def read_labelled_file(data: dict, source: str, path: str, labels_path: str | None) -> tuple[Split, list[str] | None]:
    """One split of a user's labelled file source (``idx``, ``npz``, ``imagefolder``, the
    :data:`asal.config.TEST_SOURCES`), and its rows' files where it is a folder of images."""
    if source == "idx":
        return load_idx(path, labels_path), None
    if source == "npz":
        return load_npz(path), None
    images, labels, sources = load_imagefolder(path, channels=data["channels"], image_size=data["image_size"])
    return (images, labels), sources


def check_same_shape(images: np.ndarray, where: str, pool_images: np.ndarray, pool_where: str) -> None:
    if images.shape[1:] != pool_images.shape[1:]:
        raise BadData(f"{where}: image shape {images.shape[1:]} differs from {pool_images.shape[1:]} in {pool_where}")


#: Keys that only some sources read; set for another source, they would be silently ignored.
SOURCE_ONLY_KEYS = {
    "labels_path": {"idx"}, "test_labels_path": {"idx"}, "test_path": {"idx", "npz", "imagefolder"},
    "image_size": {"imagefolder", "celeba", "lsun", "unlabelled"}, "attribute": {"celeba"}, "extra": {"svhn"},
    "class_names": {"mnist", "idx", "npz", "cifar10", "svhn", "celeba"},  # the sources labelled by numbers
    "test_source": {"unlabelled"},
}
#: Keys about the test split: checked against the source that reads it, which for ``unlabelled`` is
#: ``data.test_source`` (``test_path`` then needs a test source, ``test_labels_path`` one that is ``idx``).
TEST_KEYS = ("test_path", "test_labels_path")


def check_keys_apply(data: dict) -> None:
    for key, sources in SOURCE_ONLY_KEYS.items():
        reader = data["source"]
        if key in TEST_KEYS and not has_labels(data):
            reader = data.get("test_source")
        if data.get(key) is not None and reader not in sources:
            what = (f"source {data['source']!r}" if reader == data["source"]
                    else f"source {data['source']!r} with test_source {reader!r}")
            raise BadConfig(
                f"data.{key} = {data[key]!r} has no meaning for {what} "
                f"(only for {', '.join(sorted(sources))}); remove it"
            )


def class_list(data: dict, labels: np.ndarray, where: str) -> list:
    """The kept classes in id order; each must occur in ``labels``."""
    present = np.unique(labels).tolist()
    if data["classes"] is None:
        return present
    classes = data["classes"]
    if labels.dtype.kind in "iu":
        bad = [c for c in classes if not isinstance(c, int)]
        if bad:
            raise BadConfig(f"data.classes = {classes}: {bad} are not integers, but {where} has integer labels")
    else:
        classes = [str(c) for c in classes]
    absent = [c for c in classes if c not in present]
    if absent:
        raise BadData(f"{where}: class(es) {absent} requested by data.classes are absent (present: {present})")
    return classes


def class_names(data: dict, classes: list) -> list:
    """The name of each class id: ``data.class_names`` where given (one per kept class), else the source's
    labels (ints stay ints)."""
    if data.get("class_names") is None:
        return [c if isinstance(c, str) else int(c) for c in classes]
    if len(data["class_names"]) != len(classes):
        raise BadConfig(f"data.class_names = {data['class_names']} names {len(data['class_names'])} classes, but "
                        f"{len(classes)} are kept ({classes}); give one name per class, in class-id order")
    return list(data["class_names"])


def keep_classes(split: Split, classes: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images, class ids 0..K-1, rows in the source)`` of the samples whose label is in ``classes``."""
    images, labels = split
    rows = np.flatnonzero(np.isin(labels, classes))
    lookup = {c: i for i, c in enumerate(classes)}
    ids = np.array([lookup[v] for v in labels[rows].tolist()], dtype=np.int64)
    return images[rows], ids, rows


def prepare_data(data: dict, pool_path: str | Path, test_path: str | Path) -> dict:
    """Write the pool and test stores for one experiment's ``data`` slice; return a short summary."""
    if data["source"] == "lsun":  # ~10M images: streamed, never held in memory
        check_keys_apply(data)
        if data["grow_to"] is not None:
            raise BadConfig("data.grow_to is not available for source 'lsun', whose pool is millions of images already")
        return prepare_lsun(data, pool_path, test_path)
    if not has_labels(data):
        return prepare_unlabelled(data, pool_path, test_path)
    read = read_source(data)
    train, test, train_file, test_file = read.train, read.test, read.train_file, read.test_file
    # the files whose rows orig_index counts: a test split drawn from the training file counts that file's rows
    file_sources = {"pool": read.train_sources, "test": read.train_sources if test is None else read.test_sources}
    classes = class_list(data, train[1], train_file)
    rng = np.random.default_rng(data["seed"])
    if test is None:  # a seeded split of the training file
        order = rng.permutation(len(train[1]))
        n_test = int(round(data["test_fraction"] * len(order)))
        test_rows, train_rows = np.sort(order[:n_test]), np.sort(order[n_test:])
        test = (train[0][test_rows], train[1][test_rows])
        train = (train[0][train_rows], train[1][train_rows])
    else:
        test_rows = train_rows = None
    test_classes = set(np.unique(test[1]).tolist())
    missing = sorted(set(classes) - test_classes, key=str)
    if missing:
        raise BadData(f"{test_file}: the test split has no sample of class(es) {missing}, which the pool has")
    extra = sorted(test_classes - set(classes), key=str)
    if extra and data["classes"] is None:
        raise BadData(f"{test_file}: the test split has class(es) {extra} that the training data lacks")

    splits = {}
    for name, split, rows_in_file, size_key, where in (
        ("pool", train, train_rows, "pool_size", train_file),
        ("test", test, test_rows, "test_size", test_file),
    ):
        images, ids, rows = keep_classes(split, classes)
        pick = subsample(len(ids), data[size_key], rng, size_key, f"{where} (classes {classes})")
        orig = rows[pick] if rows_in_file is None else rows_in_file[rows[pick]]
        splits[name] = (images[pick], ids[pick], orig, rows_sources(file_sources[name], orig))

    names = class_names(data, classes)
    write_stores(data, names, splits, pool_path, test_path)
    summary = {
        "classes": names, "image_shape": list(splits["pool"][0].shape[1:]),
        "pool": data["grow_to"] or len(splits["pool"][1]), "test": len(splits["test"][1]),
        "pool_class_counts": np.bincount(splits["pool"][1], minlength=len(names)).tolist(),  # before growing
    }
    if data["grow_to"] is not None:
        summary["grown_from"] = len(splits["pool"][1])
    log.info("wrote %s and %s: %s", pool_path, test_path, summary)
    return summary


def rows_sources(file_sources: list[str] | None, orig: np.ndarray) -> list[str] | None:
    """The files of the rows ``orig`` of a split read from image files (None for other sources)."""
    return None if file_sources is None else [file_sources[i] for i in orig.tolist()]


#: One split to write: ``(images (N, C, H, W) uint8, labels (N,) int64, orig_index (N,) int64, sources or None)``.
StoreRows = tuple[np.ndarray, np.ndarray, np.ndarray, "list[str] | None"]


def write_stores(data: dict, names: list, splits: dict[str, StoreRows], pool_path, test_path) -> None:
    """Write ``splits["pool"]`` and ``splits["test"]`` as stores, both or neither (each under a temporary name
    until both are written); the pool grown if ``data.grow_to`` says so (without ``sources``: its new rows are
    made, not read)."""
    with atomic_path(pool_path) as pool_tmp, atomic_path(test_path) as test_tmp:
        for name, tmp in (("pool", pool_tmp), ("test", test_tmp)):
            images, ids, orig, sources = splits[name]
            attrs = dict(class_names=names, source=data["source"], split=name, config=data_identity(data))
            if name == "pool" and data["grow_to"] is not None:
                write_grown_pool(tmp, images, ids, orig, grow_to=data["grow_to"], augment_cfg=data["augment"],
                                 seed=data["seed"], **attrs)
            else:
                write_split(tmp, images, ids, orig, sources=sources, **attrs)


def prepare_unlabelled(data: dict, pool_path: str | Path, test_path: str | Path) -> dict:
    """Source ``unlabelled``: every image under ``data.path`` (:func:`unlabelled_files`) is the pool (a seeded
    ``pool_size`` of them, if set, and only they are decoded), each labelled :data:`UNLABELLED`, its class
    names ``data.classes``, each row's file in ``sources``. The test store is the labelled ``data.test_source``
    file at ``data.test_path`` (``test_size`` of it, if set), its labels mapped by name onto ``data.classes``
    (:func:`labels_by_name`); without one, it is empty (0 rows, the pool's image shape), so no accuracy can be
    measured, and the stages that would measure on it use a held-out part of the pool."""
    check_data(data)
    check_keys_apply(data)
    classes = list(data["classes"])
    files = unlabelled_files(data["path"])
    rng = np.random.default_rng(data["seed"])
    pick = subsample(len(files), data["pool_size"], rng, "pool_size", data["path"])
    files = [files[i] for i in pick.tolist()]  # only these are decoded: a pool_size costs what the pool costs
    images = read_images(files, channels=data["channels"], image_size=data["image_size"])
    sources = relative_paths(files, Path(data["path"]))
    splits = {"pool": (images, np.full(len(pick), UNLABELLED, np.int64), pick, sources)}
    if data.get("test_source") is None:
        empty = np.zeros((0, *splits["pool"][0].shape[1:]), np.uint8)
        splits["test"] = (empty, np.zeros(0, np.int64), np.zeros(0, np.int64), None)
    else:
        (test_images, labels), test_files = read_labelled_file(data, data["test_source"], data["test_path"],
                                                               data["test_labels_path"])
        check_same_shape(test_images, data["test_path"], splits["pool"][0], data["path"])
        ids = labels_by_name(labels, classes, data["test_path"])
        rows = subsample(len(ids), data["test_size"], rng, "test_size", data["test_path"])
        splits["test"] = (test_images[rows], ids[rows], rows, rows_sources(test_files, rows))
        absent = [c for i, c in enumerate(classes) if not np.any(ids[rows] == i)]
        if absent:
            log.warning("%s: the test set has no image of class(es) %s: accuracy on them cannot be measured",
                        data["test_path"], absent)
    write_stores(data, classes, splits, pool_path, test_path)
    summary = {"classes": classes, "image_shape": list(splits["pool"][0].shape[1:]), "pool": len(pick),
               "pool_labelled": 0, "test": len(splits["test"][1])}
    if len(splits["test"][1]):
        summary["test_class_counts"] = np.bincount(splits["test"][1], minlength=len(classes)).tolist()
    log.info("wrote %s and %s: %s", pool_path, test_path, summary)
    return summary


def labels_by_name(labels: np.ndarray, classes: list[str], where: str) -> np.ndarray:
    """Class ids (N,) int64 of a test set's ``labels`` (folder names, or numbers read as their decimal
    strings): the position of each in ``classes``; labels that are none of them are an error naming them."""
    as_names = [str(v) for v in labels.tolist()]
    unknown = sorted(set(as_names) - set(classes))
    if unknown:
        raise BadData(f"{where}: test label(s) {unknown} are not in data.classes = {classes}; the test set's labels "
                      "must be class names (folder names for imagefolder, the label numbers as written for idx/npz)")
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup[v] for v in as_names], dtype=np.int64)

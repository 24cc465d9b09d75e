"""The data stage: read a source, keep the configured classes, draw pool and test sets, write HDF5."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..config import data_identity
from ..errors import BadConfig, BadData
from ..files import atomic_path
from .augment import write_grown_pool
from .celeba import load_celeba
from .cifar import load_cifar10
from .lsun import prepare_lsun
from .mnist import DEFAULT_MNIST_PATH, load_mnist
from .store import subsample, write_split
from .svhn import load_svhn
from .user_formats import load_idx, load_imagefolder, load_npz

log = logging.getLogger(__name__)

Split = tuple[np.ndarray, np.ndarray]  # images (N, C, H, W) uint8, labels (N,) int64 or str


def read_source(data: dict) -> tuple[Split, Split | None, str, str]:
    """Return ``(train, test or None, train file, test file)`` as the source ships them."""
    source = data["source"]
    check_keys_apply(data)
    if source == "mnist":
        path = str(data["path"] or DEFAULT_MNIST_PATH)
        train, test = load_mnist(path)
        return train, test, path, path
    benchmarks = {  # datasets that ship their own test split, read from the folder they ship in
        "cifar10": load_cifar10,
        "svhn": lambda p: load_svhn(p, extra=data.get("extra", True)),
        "celeba": lambda p: load_celeba(p, attribute=data.get("attribute"), image_size=data["image_size"]),
    }
    if source in benchmarks:
        train, test = benchmarks[source](data["path"])
        return train, test, data["path"], data["path"]
    readers = {
        "idx": lambda p, lp: load_idx(p, lp),
        "npz": lambda p, _: load_npz(p),
        "imagefolder": lambda p, _: load_imagefolder(p, channels=data["channels"], image_size=data["image_size"]),
    }
    read = readers[source]
    train = read(data["path"], data["labels_path"])
    if data["test_path"] is None:
        return train, None, data["path"], data["path"]
    if source == "idx" and not data["test_labels_path"]:
        raise BadConfig("data.test_labels_path is required with data.test_path for source 'idx'")
    test = read(data["test_path"], data["test_labels_path"])
    if test[0].shape[1:] != train[0].shape[1:]:
        raise BadData(
            f"{data['test_path']}: image shape {test[0].shape[1:]} differs from {train[0].shape[1:]} in {data['path']}"
        )
    return train, test, data["path"], data["test_path"]


#: Keys that only some sources read; set for another source, they would be silently ignored.
SOURCE_ONLY_KEYS = {
    "labels_path": {"idx"}, "test_labels_path": {"idx"}, "test_path": {"idx", "npz", "imagefolder"},
    "image_size": {"imagefolder", "celeba", "lsun"}, "attribute": {"celeba"}, "extra": {"svhn"},
    "class_names": {"mnist", "idx", "npz", "cifar10", "svhn", "celeba"},  # the sources labelled by numbers
}


def check_keys_apply(data: dict) -> None:
    for key, sources in SOURCE_ONLY_KEYS.items():
        if data.get(key) is not None and data["source"] not in sources:
            raise BadConfig(
                f"data.{key} = {data[key]!r} has no meaning for source {data['source']!r} "
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
    train, test, train_file, test_file = read_source(data)
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
        splits[name] = (images[pick], ids[pick], orig)

    names = class_names(data, classes)
    with atomic_path(pool_path) as pool_tmp, atomic_path(test_path) as test_tmp:
        for name, tmp in (("pool", pool_tmp), ("test", test_tmp)):
            images, ids, orig = splits[name]
            attrs = dict(class_names=names, source=data["source"], split=name, config=data_identity(data))
            if name == "pool" and data["grow_to"] is not None:
                write_grown_pool(tmp, images, ids, orig, grow_to=data["grow_to"], augment_cfg=data["augment"],
                                 seed=data["seed"], **attrs)
            else:
                write_split(tmp, images, ids, orig, **attrs)
    summary = {
        "classes": names, "image_shape": list(splits["pool"][0].shape[1:]),
        "pool": data["grow_to"] or len(splits["pool"][1]), "test": len(splits["test"][1]),
        "pool_class_counts": np.bincount(splits["pool"][1], minlength=len(names)).tolist(),  # before growing
    }
    if data["grow_to"] is not None:
        summary["grown_from"] = len(splits["pool"][1])
    log.info("wrote %s and %s: %s", pool_path, test_path, summary)
    return summary

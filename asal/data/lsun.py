"""LSUN scenes as they ship: one LMDB database per category and split, ``{category}_train_lmdb`` and
``{category}_val_lmdb``, whose values are encoded images (WebP or JPEG) under hash keys.

The ten-category training set has about 10M images (the paper's 9,604k), far more than memory holds, so this
source is never loaded whole: :func:`prepare_lsun` counts each database (LMDB keeps the count), draws the
configured subsample by position, then streams the cursor, decoding and writing only the drawn rows to the
HDF5 store in chunks, with a progress bar. Classes are the categories in the configured order (labels 0..K-1);
images are centre-cropped to a square and resized (64x64 default). The test set is the val databases.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import BadConfig, BadData
from ..files import atomic_path
from .images import decode_image, to_nchw
from .store import ROWS_PER_CHUNK, StoreWriter, subsample

log = logging.getLogger(__name__)

DEFAULT_SIZE = [64, 64]
SPLITS = {"pool": "train", "test": "val"}


def open_db(root: Path, category: str, split: str):
    """The read-only LMDB environment of one category's split; BadData naming it if absent or broken."""
    import lmdb

    path = root / f"{category}_{split}_lmdb"
    if not path.is_dir():
        raise BadData(f"{path}: no such LMDB folder (LSUN ships {{category}}_train_lmdb and _val_lmdb)")
    try:
        env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=1)
    except lmdb.Error as exc:
        raise BadData(f"{path}: not a readable LMDB database, or truncated ({exc})") from None
    # LMDB maps the file: reading a page past the end of a truncated file kills the process with SIGBUS
    # instead of raising, so compare the size the header promises with the file's before any read.
    try:
        needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
        actual = (path / "data.mdb").stat().st_size
    except (lmdb.Error, OSError) as exc:
        env.close()
        raise BadData(f"{path}: not a readable LMDB database ({exc})") from None
    if actual < needed:
        env.close()
        raise BadData(f"{path}: truncated LMDB database (data.mdb has {actual} bytes, its header needs {needed})")
    return env


def count(root: Path, categories: list[str], split: str) -> list[int]:
    counts = []
    for category in categories:
        env = open_db(root, category, split)
        counts.append(env.stat()["entries"])
        env.close()
    return counts


def stream_split(root: Path, categories: list[str], split: str, rows: np.ndarray, counts: list[int],
                 size: list[int], writer: StoreWriter) -> np.ndarray:
    """Decode and append the sorted global ``rows`` (positions in the categories' concatenation, whose sizes
    are ``counts``); return the labels written. Only the keys are walked; a value is read and decoded only
    for a drawn row."""
    import lmdb

    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    wanted = np.zeros(int(sum(counts)), dtype=bool)  # 1 byte per image: 10 MB for LSUN's 10M
    wanted[rows] = True
    batch: list[np.ndarray] = []
    labels: list[int] = []
    orig: list[int] = []
    written: list[np.ndarray] = []

    def flush():
        writer.append(to_nchw(batch), np.array(labels), np.array(orig))
        written.append(np.array(labels))
        bar.update(len(batch))
        batch.clear()
        labels.clear()
        orig.clear()

    with tqdm(total=len(rows), desc=f"LSUN {split}", unit="img", mininterval=10) as bar:
        for label, category in enumerate(categories):
            where = root / f"{category}_{split}_lmdb"
            env = open_db(root, category, split)
            try:
                with env.begin() as txn:
                    cursor = txn.cursor()
                    for position, key in enumerate(cursor.iternext(keys=True, values=False)):
                        if position == counts[label]:  # grown since it was counted: read what was counted
                            break
                        row = int(offsets[label]) + position
                        if not wanted[row]:
                            continue
                        batch.append(decode_image(bytes(cursor.value()), channels=3, size=size,
                                                  where=f"{where} key {bytes(key)!r}"))
                        labels.append(label)
                        orig.append(row)
                        if len(batch) == ROWS_PER_CHUNK:
                            flush()
            except lmdb.Error as exc:
                raise BadData(f"{where}: unreadable LMDB database, or truncated ({exc})") from None
            finally:
                env.close()
        if batch:
            flush()
    out = np.concatenate([np.zeros(0, np.int64), *written])
    if len(out) != len(rows):  # the databases changed between counting and reading
        raise BadData(f"{root}: {len(rows)} {split} images were drawn but {len(out)} were read")
    return out


def prepare_lsun(data: dict, pool_path: str | Path, test_path: str | Path) -> dict:
    """Write pool (from the train databases) and test (val) stores for ``data``; return a short summary."""
    root = Path(data["path"])
    categories = data["classes"]
    if not categories or not all(isinstance(c, str) for c in categories):
        raise BadConfig(f"data.classes = {categories!r}: source 'lsun' needs the category names, e.g. "
                        "[bedroom, kitchen]")
    if not root.is_dir():
        raise BadData(f"{root}: no such folder (it should hold the {{category}}_train_lmdb folders)")
    size = data["image_size"] or DEFAULT_SIZE
    rng = np.random.default_rng(data["seed"])
    summary = {"classes": categories, "image_shape": [3, *size]}
    with atomic_path(pool_path) as pool_tmp, atomic_path(test_path) as test_tmp:
        for name, tmp in (("pool", pool_tmp), ("test", test_tmp)):
            split, key = SPLITS[name], f"{name}_size"
            counts = count(root, categories, split)
            empty = [c for c, n in zip(categories, counts) if n == 0]
            if empty:
                raise BadData(f"{root}: the {split} database of {empty} is empty")
            rows = subsample(int(sum(counts)), data[key], rng, key, f"{root} ({split})")
            with StoreWriter(tmp, (3, *size), class_names=categories, source="lsun", split=name,
                             config=data, compress=name == "test") as writer:  # the pool is read by rows
                labels = stream_split(root, categories, split, rows, counts, size, writer)
            summary[name] = len(labels)
            summary[f"{name}_class_counts"] = np.bincount(labels, minlength=len(categories)).tolist()
    log.info("wrote %s and %s: %s", pool_path, test_path, summary)
    return summary

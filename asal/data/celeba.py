"""CelebA's aligned faces as they ship: ``img_align_celeba/*.jpg``, ``list_attr_celeba.txt`` and
``list_eval_partition.txt``; one binary target attribute per experiment (the paper's four: Blond_Hair,
Wearing_Hat, Bangs, Eyeglasses).

``list_attr_celeba.txt``: a count line, a line of the 40 attribute names, then one line per image, its file
name and 40 values of 1 (present) or -1 (absent). ``list_eval_partition.txt``: file name and 0 (train), 1
(validation) or 2 (test). The pool is the train partition (the paper's 160k), the test set the test partition.
Labels: 0 = attribute absent, 1 = present. Images are centre-cropped to a square and resized (64x64 default).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import BadConfig, BadData
from .images import decode_image, to_nchw

log = logging.getLogger(__name__)

IMAGES, ATTRIBUTES, PARTITION = "img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt"
TRAIN, TEST = 0, 2
DEFAULT_SIZE = [64, 64]


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of the file's non-blank lines."""
    if not path.is_file():
        raise BadData(f"{path}: no such file (CelebA ships {ATTRIBUTES} and {PARTITION} beside {IMAGES}/)")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadData(f"{path}: unreadable ({exc})") from None
    return [(number, line.split()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def read_attribute(root: Path, attribute: str) -> dict[str, int]:
    """``{file name: 0 or 1}`` for one attribute of ``list_attr_celeba.txt``."""
    path = root / ATTRIBUTES
    lines = _lines(path)
    if len(lines) < 2:
        raise BadData(f"{path}: truncated: no attribute-name line")
    names = lines[1][1]
    if attribute not in names:
        raise BadConfig(f"data.attribute = {attribute!r} is not an attribute of {path} (it has: {', '.join(names)})")
    column = names.index(attribute)
    labels = {}
    for number, fields in lines[2:]:
        if len(fields) != len(names) + 1:
            raise BadData(f"{path}: line {number} has {len(fields) - 1} attribute values, expected {len(names)}")
        value = fields[1 + column]
        if value not in ("1", "-1"):
            raise BadData(f"{path}: line {number}: {attribute} = {value!r}, expected 1 or -1")
        labels[fields[0]] = int(value == "1")
    declared = lines[0][1][0]
    if declared != str(len(labels)):
        raise BadData(f"{path}: declares {declared} images but lists {len(labels)} (truncated?)")
    return labels


def read_partition(root: Path) -> dict[str, int]:
    path = root / PARTITION
    out = {}
    for number, fields in _lines(path):
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise BadData(f"{path}: line {number} is {' '.join(fields)!r}, expected '<file> 0|1|2'")
        out[fields[0]] = int(fields[1])
    return out


def load_split(root: Path, files: list[str], labels: dict[str, int], size: list[int], what: str):
    images = []
    for name in tqdm(files, desc=f"CelebA {what}", unit="img", mininterval=10):
        images.append(decode_image(root / IMAGES / name, channels=3, size=size, where=str(root / IMAGES / name)))
    return to_nchw(images), np.array([labels[name] for name in files], dtype=np.int64)


def load_celeba(root: str | Path, *, attribute: str | None, image_size: list[int] | None = None):
    """``(train, test)``: images (N, 3, H, W) uint8 (64x64 unless ``image_size``), labels 0/1 for ``attribute``."""
    root = Path(root)
    if not attribute:
        raise BadConfig("data.attribute is required for source 'celeba' (e.g. Eyeglasses)")
    if not root.is_dir():
        raise BadData(f"{root}: no such folder (it should hold {IMAGES}/, {ATTRIBUTES} and {PARTITION})")
    labels = read_attribute(root, attribute)
    partition = read_partition(root)
    unlabelled = sorted(set(partition) - set(labels))
    if unlabelled:
        raise BadData(f"{root / ATTRIBUTES}: no {attribute} value for {len(unlabelled)} image(s) of "
                      f"{PARTITION}, e.g. {unlabelled[0]}")
    size = image_size or DEFAULT_SIZE
    splits = []
    for part, what in ((TRAIN, "train"), (TEST, "test")):
        files = sorted(name for name, p in partition.items() if p == part)
        if not files:
            raise BadData(f"{root / PARTITION}: no image in partition {part} ({what})")
        splits.append(load_split(root, files, labels, size, what))
    log.info("CelebA %s: %d train, %d test images", attribute, len(splits[0][1]), len(splits[1][1]))
    return splits[0], splits[1]

"""Readers for a user's own data: MNIST-style IDX files, NumPy ``.npz`` archives, image folders by class, and
folders of images without labels.

Each returns ``(images (N, C, H, W) uint8, labels (N,))``; labels are integers for idx/npz and folder names
for imagefolder, which also returns each image's path relative to its root. :func:`unlabelled_files` finds
the images of a folder no one has labelled, :func:`read_images` decodes them. Every failure is a
:class:`BadData` naming the file.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import BadData
from .images import decode_image, to_nchw

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise BadData(f"{path}: no such file or folder")
    return path


def read_idx(path: str | Path) -> np.ndarray:
    """One IDX file (gzipped or plain) as a numpy array of its declared dtype and shape."""
    path = _existing(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise BadData(f"{path}: unreadable or truncated gzip ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise BadData(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise BadData(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise BadData(f"{path}: IDX header declares shape {shape} ({expected} bytes) but the file has {len(raw)}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def load_idx(images_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise BadData(f"{images_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise BadData(f"{labels_path}: expected {len(images)} labels (N,), got shape {labels.shape}")
    return images[:, None].copy(), check_int_labels(labels, labels_path)


def load_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``x`` uint8 (N, H, W) or (N, H, W, C) with C in {1, 3}, and ``y`` integer (N,)."""
    path = _existing(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"x", "y"} - set(archive.files)
            if missing:
                raise BadData(f"{path}: missing array(s) {sorted(missing)}; the archive has {archive.files}")
            x, y = archive["x"], archive["y"]
    except BadData:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise BadData(f"{path}: not a readable .npz archive, or truncated ({type(exc).__name__}: {exc})") from None
    if x.dtype != np.uint8:
        raise BadData(f"{path}: key 'x' has dtype {x.dtype}; expected uint8 (scale to 0..255 first)")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3):
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    else:
        raise BadData(f"{path}: key 'x' has shape {x.shape}; expected (N, H, W) or (N, H, W, C) with C 1 or 3")
    if y.ndim != 1 or len(y) != len(x):
        raise BadData(f"{path}: key 'y' has shape {y.shape}; expected ({len(x)},)")
    return x, check_int_labels(y, f"{path}: key 'y'")


def check_int_labels(labels: np.ndarray, where) -> np.ndarray:
    if not np.issubdtype(labels.dtype, np.integer):
        raise BadData(f"{where}: labels have dtype {labels.dtype}; expected integers")
    if len(labels) and labels.min() < 0:
        raise BadData(f"{where}: labels out of range: minimum {labels.min()} is negative")
    return labels.astype(np.int64)


def load_imagefolder(
    root: str | Path, *, channels: int = 3, image_size: list[int] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``root/<class>/*.png|jpg``: images sorted by class then file name; labels are the folder names.

    Returns ``(images (N, C, H, W) uint8, labels (N,) str, sources)``, ``sources`` each image's path relative
    to ``root`` (``cat/001.png``), which the store keeps (its ``sources`` dataset)."""
    root = _existing(root)
    files = sorted(p for p in root.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise BadData(f"{root}: no PNG or JPEG files in any class sub-folder")
    images = read_images(files, channels=channels, image_size=image_size)
    return images, np.array([p.parent.name for p in files]), relative_paths(files, root)


def unlabelled_files(root: str | Path) -> list[Path]:
    """Every PNG or JPEG under ``root``, at any depth: a pool no one has labelled yet (decode the ones kept
    with :func:`read_images`; :func:`relative_paths` names them). Sorted by path relative to ``root``, folder
    by folder (as :func:`load_imagefolder` sorts). Names starting with ``.`` (``.ipynb_checkpoints/``, macOS's
    ``._x.png``) and what lies under them are skipped, as they are not the user's images."""
    root = _existing(root)
    if not root.is_dir():
        raise BadData(f"{root}: not a folder (source 'unlabelled' reads every PNG or JPEG under a folder)")
    files = sorted(
        p for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise BadData(f"{root}: no PNG or JPEG files in it or any sub-folder")
    return files


def read_images(files: list[Path], *, channels: int, image_size: list[int] | None) -> np.ndarray:
    """Decode ``files`` in order into (N, C, H, W) uint8; all must have one size, unless ``image_size``
    resizes them (:func:`~asal.data.images.decode_image`)."""
    images = []
    for file in files:
        arr = decode_image(file, channels=channels, size=image_size, where=str(file))
        if images and arr.shape != images[0].shape:
            raise BadData(
                f"{file}: size {arr.shape[:2]} differs from {images[0].shape[:2]} of {files[0]}; "
                "set data.image_size to resize"
            )
        images.append(arr)
    return to_nchw(images)


def relative_paths(files: list[Path], root: Path) -> list[str]:
    """Each file's path relative to ``root``, with ``/`` between folders whatever the system."""
    return [p.relative_to(root).as_posix() for p in files]

"""Writing files so that a kill never leaves half of one, and the digests that name what made a file.

Every output of the workflow is written under a temporary sibling name and renamed when complete
(:func:`atomic_path`); JSON and ``.npz`` files have one-call writers on top of it. :func:`config_hash` is the
short digest of a config slice that outputs and checkpoints record.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` only if the block succeeds.

    The name is fixed (``.<name>.part``), so a restart after a kill overwrites what the killed job left.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically: a kill leaves the old file or the new one, never half of one."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj))


def save_npz(path: str | Path, arrays: dict[str, np.ndarray], *, compressed: bool = False) -> None:
    """Write ``arrays`` as an ``.npz`` atomically (through a file object: ``np.savez`` would append ``.npz``
    to a temporary name)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        (np.savez_compressed if compressed else np.savez)(fh, **arrays)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def config_hash(obj: Any) -> str:
    """Short, stable digest of a slice; stored in output files and checkpoints."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]

"""A pickle loader that admits only the numpy globals that array pickles need.

Plain ``pickle.load`` runs whatever callable a file names, so a pickle from outside could run any code. MNIST's
``mnist.pkl.gz`` (and CIFAR-10's batches) need only numpy's array reconstruction: everything else is refused
with :class:`BadData` before it is imported.
"""

from __future__ import annotations

import importlib
import pickle
from typing import IO, Any

from ..errors import BadData

#: (module, name) pairs a pickle may refer to. numpy 2 moved ``numpy.core`` to ``numpy._core``; files
#: written by numpy 1 name the old module, so both map to whichever this numpy has.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


def _import_numpy_global(module: str, name: str) -> Any:
    if module.startswith("numpy.core"):
        try:
            return getattr(importlib.import_module("numpy._core" + module[len("numpy.core"):]), name)
        except ImportError:  # numpy 1
            pass
    return getattr(importlib.import_module(module), name)


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file: IO[bytes], *, source: str, encoding: str = "latin1"):
        super().__init__(file, encoding=encoding)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise BadData(
                f"{self.source}: the pickle asks for {module}.{name}, which is not an array type; "
                "refusing to load it (only numpy arrays are admitted)"
            )
        return _import_numpy_global(module, name)


def safe_load(file: IO[bytes], *, source: str, encoding: str = "latin1") -> Any:
    """Unpickle ``file`` admitting only numpy arrays; any other error becomes :class:`BadData`."""
    try:
        return RestrictedUnpickler(file, source=source, encoding=encoding).load()
    except BadData:
        raise
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError, AttributeError) as exc:
        raise BadData(f"{source}: not a readable pickle ({type(exc).__name__}: {exc})") from None

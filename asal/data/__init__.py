"""Data sources and the HDF5 image store that every later stage reads."""

from .prepare import prepare_data
from .store import ImageStore, read_split, training_sample

__all__ = ["prepare_data", "read_split", "training_sample", "ImageStore"]

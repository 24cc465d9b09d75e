"""Seed derivation: every random choice gets its own seed from a tuple of keys (run seed, cycle, purpose, ...),
so a step can be rerun alone, after a kill or in a replay, and draw exactly what it drew before."""

from __future__ import annotations

import numpy as np


def sub_seed(*keys: int) -> int:
    """An independent 63-bit seed per tuple of ``keys``."""
    return int(np.random.SeedSequence(list(keys)).generate_state(2, np.uint64)[0] >> np.uint64(1))

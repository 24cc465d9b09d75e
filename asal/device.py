"""Pick the torch device and thread count once, at a stage's entry point."""

from __future__ import annotations

import torch

from .errors import BadConfig


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; an explicit name must be usable.

    On CUDA, cuDNN is made deterministic so a resumed run retrains bit for bit what it would have.
    """
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BadConfig(f"--device {name!r}: CUDA was requested but torch sees no GPU")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return device


def set_threads(threads: int | None) -> None:
    """Match torch's, BLAS's and FAISS's threads to what the scheduler gave the job (Snakemake ``{threads}``)."""
    if threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(int(threads))
        threadpool_limits(int(threads))
        import faiss

        faiss.omp_set_num_threads(int(threads))

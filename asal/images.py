"""Images between their stored form (uint8, (B, C, H, W), as the pool store and an annotator see them) and
the float form in [0, 1] that the networks take."""

from __future__ import annotations

import numpy as np
import torch


def to_float(images: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 in [0, 1] on ``device``; float images (already in [0, 1]) pass through."""
    x = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    x = x.to(device)
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def quantise(images: torch.Tensor) -> np.ndarray:
    """Float images (B, C, H, W) in [0, 1] -> uint8 on the host, as the pool stores them."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()

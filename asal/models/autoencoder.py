"""A convolutional autoencoder whose encoder output is ASAL's F_auto feature space (paper section 3.2).

Sized from the image shape like the GAN: two strided convolutions down, a linear code, and the mirror image
up, centre-cropped to the input size. Images in and out are float in [0, 1].
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ConvAutoencoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], code_dim: int = 64, widths: tuple[int, int] = (32, 64)):
        super().__init__()
        c, h, w = image_shape
        self.image_shape = tuple(image_shape)
        self.side = math.ceil(max(h, w) / 4)
        self.encoder_conv = nn.Sequential(
            nn.Conv2d(c, widths[0], 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(widths[0], widths[1], 4, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.encoder_conv(torch.zeros(1, c, self.side * 4, self.side * 4)).shape[1]
        self.encoder_fc = nn.Linear(flat, code_dim)
        self.decoder_fc = nn.Sequential(nn.Linear(code_dim, widths[1] * self.side**2), nn.ReLU())
        self.decoder_conv = nn.Sequential(
            nn.ConvTranspose2d(widths[1], widths[0], 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(widths[0], c, 4, stride=2, padding=1), nn.Sigmoid(),
        )

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad (B, C, H, W) to the square side * 4 the strided layers need (28 stays 28)."""
        ph, pw = self.side * 4 - x.shape[2], self.side * 4 - x.shape[3]
        return nn.functional.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder_fc(self.encoder_conv(self._pad(x)))  # (B, code_dim): F_auto

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        x = self.decoder_conv(self.decoder_fc(code).view(len(code), -1, self.side, self.side))
        _, h, w = self.image_shape
        top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2
        return x[:, :, top : top + h, left : left + w]  # (B, C, H, W) in [0, 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

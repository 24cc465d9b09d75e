"""DCGAN-style generator and critic for WGAN-GP (Gulrajani et al. 2017) and WGAN-CT (Wei et al. 2018).

Both are sized from the image shape: the generator starts at ``ceil(side / 2**n)`` pixels, doubles ``n``
times with transposed convolutions and centre-crops to the image (for ``dcgan`` at 28x28: 4 -> 32, cropped),
the critic halves with strided convolutions. Images everywhere in this package are float in [0, 1]; the networks map to and from
[-1, 1] internally, so the generator's output goes straight into any feature extractor.

Two sizes: ``small`` (the CPU default: 2 up-sampling stages of 64 and 32 channels, no batch norm) and
``dcgan`` (the paper-size network of the WGAN-GP code: 3 stages of 256, 128, 64 channels with batch norm
in the generator). The critic never has batch norm: the gradient penalty is per sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class GanArch:
    widths: tuple[int, ...]  # generator channels from the first stage on; the critic uses them reversed
    batchnorm: bool


ARCHS = {
    "small": GanArch(widths=(64, 32), batchnorm=False),
    "dcgan": GanArch(widths=(256, 128, 64), batchnorm=True),
}


class Generator(nn.Module):
    """z (B, latent_dim) ~ N(0, I) -> images (B, C, H, W) in [0, 1]."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, arch: GanArch):
        super().__init__()
        c, h, w = image_shape
        self.image_shape, self.latent_dim = tuple(image_shape), latent_dim
        n_up = len(arch.widths)
        self.start = math.ceil(max(h, w) / 2**n_up)
        first = arch.widths[0]
        self.fc = nn.Linear(latent_dim, first * self.start**2)
        layers: list[nn.Module] = [nn.BatchNorm2d(first)] if arch.batchnorm else []
        layers.append(nn.ReLU())  # DCGAN order: linear -> batch norm -> ReLU
        for c_in, c_out in zip(arch.widths, arch.widths[1:]):
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if arch.batchnorm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU())
        layers += [nn.ConvTranspose2d(arch.widths[-1], c, 4, stride=2, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(len(z), -1, self.start, self.start)  # (B, widths[0], s, s)
        x = self.net(x)  # (B, C, s * 2**n, s * 2**n)
        _, h, w = self.image_shape
        top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2
        return (x[:, :, top : top + h, left : left + w] + 1) / 2  # (B, C, H, W) in [0, 1]


class Critic(nn.Module):
    """images (B, C, H, W) in [0, 1] -> (B,) Wasserstein scores; ``features`` is the layer before the output.

    ``dropout`` > 0 adds dropout after each block, which the consistency term (CT-GAN) perturbs.
    """

    def __init__(self, image_shape: tuple[int, int, int], arch: GanArch, dropout: float = 0.0):
        super().__init__()
        c, h, w = image_shape
        widths = arch.widths[::-1]
        layers: list[nn.Module] = []
        for c_in, c_out in zip((c, *widths), widths):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            if dropout:
                layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            self.feature_dim = self.net(torch.zeros(1, c, h, w)).shape[1]
        self.out = nn.Linear(self.feature_dim, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)  # (B, feature_dim): F_disc of the paper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x)).squeeze(1)  # (B,)

"""VAAL (Sinha, Ebrahimi & Darrell, ICCV 2019, "Variational Adversarial Active Learning"): the unlabelled
samples a discriminator finds least likely to be labelled, in a beta-VAE's latent space.

Every cycle a fresh beta-VAE and a fresh discriminator are trained from scratch, neither looks at labels or
at the classifier. The VAE (the project's conv autoencoder, :class:`~asal.models.autoencoder.ConvAutoencoder`,
with a second head for the log-variance) learns to reconstruct labelled and unlabelled images alike, and to
fool the discriminator: its adversarial loss asks the discriminator to call every latent mean, labelled or
not, labelled. The discriminator, an MLP on the latent mean (detached), learns to tell labelled (1) from
unlabelled (0). Selection takes the ``n`` unlabelled samples of lowest discriminator output: those least like
anything labelled so far, as the VAE sees them.

Each of ``vaal.steps`` training steps draws a mini-batch of ``vaal.batch_size`` labelled images (passes over
the labelled set, each in a fresh random order) and as many unlabelled images (uniform, with replacement),
updates the VAE once and then the discriminator once, on the latent means of that VAE pass. The loss terms
are each image's (reconstruction: squared error summed over its pixels; KL: summed over the latent
dimensions; binary cross-entropy), averaged over the batch, so ``beta`` = 1 is the VAE's own balance of
reconstruction and prior, whatever the image size or batch size. The authors' code instead adds a per-pixel
mean squared error to a KL summed over the whole batch, and its VAE step asks the discriminator to call the
unlabelled latents unlabelled; this follows the paper (everything looks labelled). The task learner is the
project's classifier, trained by the loop, and the VAE does not see its loss.

Cost: training is fixed per cycle by ``steps`` (``2 * steps * batch_size`` images through the VAE and the
discriminator, read as scattered rows), plus one pass over the pool: every unlabelled image is encoded and
scored once, in batches of the run's inference batch size, so a cycle's selection grows linearly with the pool,
like every pool scan. Memory holds the two small networks, one batch, and an index and a float per unlabelled
sample. Everything random (weights, batches, the reparameterisation noise) comes from a seed drawn from
``ctx.rng``, so the same seed and cycle choose the same samples on a CPU; the caller's torch RNG state is left
as it was.
"""

from __future__ import annotations

import logging
import time
from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..images import to_float
from ..models.autoencoder import ConvAutoencoder
from ..settings import RunSettings, VaalConfig
from .bald import seeded_global_rng
from .base import SelectionContext, Strategy

log = logging.getLogger(__name__)

#: Width of the discriminator's two hidden layers (the authors' MLP has four of 512; two suffice on a
#: 32-dimensional latent and halve its cost on a CPU).
DISCRIMINATOR_WIDTH = 512


class VariationalAutoencoder(nn.Module):
    """A beta-VAE on the project's conv autoencoder: its encoder's code is the latent mean, a second linear
    head on the same convolutional features gives the log-variance, and its decoder maps a latent sample back
    to an image (float in [0, 1], the input's shape). Sized from the image shape, any channels and side."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int):
        super().__init__()
        self.autoencoder = ConvAutoencoder(image_shape, code_dim=latent_dim)
        self.logvar_fc = nn.Linear(self.autoencoder.encoder_fc.in_features, latent_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, C, H, W) -> latent mean and log-variance, (B, latent_dim) each."""
        ae = self.autoencoder
        hidden = ae.encoder_conv(ae._pad(x))
        return ae.encoder_fc(hidden), self.logvar_fc(hidden)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(reconstruction (B, C, H, W), mu, logvar)``, decoded from one sample of the posterior (noise from
        torch's global generator)."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.autoencoder.decode(z), mu, logvar


def discriminator(latent_dim: int) -> nn.Module:
    """The MLP on the latent mean: (B, latent_dim) -> (B, 1) logit that the sample is labelled."""
    return nn.Sequential(
        nn.Linear(latent_dim, DISCRIMINATOR_WIDTH), nn.ReLU(),
        nn.Linear(DISCRIMINATOR_WIDTH, DISCRIMINATOR_WIDTH), nn.ReLU(),
        nn.Linear(DISCRIMINATOR_WIDTH, 1),
    )


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) of each row, (B, d) -> (B,) nats."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def vae_loss(x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float) -> torch.Tensor:
    """The beta-VAE loss of a batch: each image's squared reconstruction error (summed over its pixels) plus
    ``beta`` times its KL divergence from the prior, averaged over the batch; a scalar."""
    squared_error = (recon - x).pow(2).flatten(1).sum(1)
    return (squared_error + beta * kl_divergence(mu, logvar)).mean()


def discriminator_loss(labelled_logits: torch.Tensor, unlabelled_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss: labelled latents are labelled (1), unlabelled ones are not (0); mean binary
    cross-entropy of each side, summed."""
    return (F.binary_cross_entropy_with_logits(labelled_logits, torch.ones_like(labelled_logits))
            + F.binary_cross_entropy_with_logits(unlabelled_logits, torch.zeros_like(unlabelled_logits)))


def adversarial_loss(labelled_logits: torch.Tensor, unlabelled_logits: torch.Tensor) -> torch.Tensor:
    """The VAE's adversarial loss: the discriminator should call every latent labelled (1), both sides."""
    return (F.binary_cross_entropy_with_logits(labelled_logits, torch.ones_like(labelled_logits))
            + F.binary_cross_entropy_with_logits(unlabelled_logits, torch.ones_like(unlabelled_logits)))


def least_labelled(scores: np.ndarray, candidates: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` of ``candidates`` (M,) ``pool_idx`` whose ``scores`` (M,) (the discriminator's output, higher =
    more likely labelled) are lowest, lowest first; ties go to the lower ``pool_idx``. (n,) int64."""
    order = np.lexsort((candidates, scores))[:n]
    return np.asarray(candidates, np.int64)[order]


def reshuffled_batches(idx: np.ndarray, size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless sorted batches of ``size`` of ``idx`` (L,): passes over ``idx``, each in a fresh random order
    (a batch spanning two passes, or larger than ``idx``, may repeat a row)."""
    buffer = np.zeros(0, np.int64)
    while True:
        while len(buffer) < size:
            buffer = np.concatenate([buffer, rng.permutation(idx)])
        yield np.sort(buffer[:size])
        buffer = buffer[size:]


def uniform_batches(idx: np.ndarray, size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless sorted batches of ``size`` of ``idx`` (M,), drawn uniformly with replacement: O(size) a batch,
    however large the pool."""
    while True:
        yield np.sort(idx[rng.integers(len(idx), size=size)])


class VaalSampling(Strategy):
    """VAAL: train a beta-VAE and a discriminator on the labelled and unlabelled pool from scratch, then take
    the ``n`` unlabelled samples the discriminator scores least likely labelled (ties to the lower
    ``pool_idx``). Settings: the ``vaal`` section (:class:`~asal.settings.VaalConfig`)."""

    @classmethod
    def load(cls, spec, settings: RunSettings, device: torch.device, files: dict[str, str]) -> VaalSampling:
        return cls(settings.vaal)

    def __init__(self, cfg: VaalConfig):
        self.cfg = cfg  # a selection trains and scores on its context's device

    def choose(self, ctx: SelectionContext, n: int) -> np.ndarray:
        if n == 0:
            return np.zeros(0, np.int64)
        candidates = ctx.unlabelled_idx()
        seed = int(ctx.rng.integers(2**63))
        with seeded_global_rng(seed, ctx.device):
            vae, disc = self.train(ctx, candidates, np.random.default_rng(seed))
            scores = self.scores(ctx, vae, disc, candidates)
        return least_labelled(scores, candidates, n)

    def train(self, ctx: SelectionContext, candidates: np.ndarray,
              rng: np.random.Generator) -> tuple[VariationalAutoencoder, nn.Module]:
        """A fresh VAE and discriminator, trained ``cfg.steps`` steps on ``ctx``'s labelled rows and the
        unlabelled ``candidates`` (M,); weights and noise from torch's (seeded) global generator, batches from
        ``rng``."""
        cfg, device = self.cfg, ctx.device
        vae = VariationalAutoencoder(ctx.pool.image_shape, cfg.latent_dim).to(device).train()
        disc = discriminator(cfg.latent_dim).to(device).train()
        optim_vae = torch.optim.Adam(vae.parameters(), lr=cfg.lr)
        optim_disc = torch.optim.Adam(disc.parameters(), lr=cfg.lr)
        labelled = reshuffled_batches(ctx.labelled_idx, cfg.batch_size, rng)
        unlabelled = uniform_batches(candidates, cfg.batch_size, rng)
        t0 = time.perf_counter()
        for _ in range(cfg.steps):
            x_l = to_float(ctx.pool.images[next(labelled)], device)
            x_u = to_float(ctx.pool.images[next(unlabelled)], device)
            recon_l, mu_l, logvar_l = vae(x_l)
            recon_u, mu_u, logvar_u = vae(x_u)
            disc.requires_grad_(False)  # the VAE's step moves the VAE only
            loss = (vae_loss(x_l, recon_l, mu_l, logvar_l, cfg.beta) + vae_loss(x_u, recon_u, mu_u, logvar_u, cfg.beta)
                    + cfg.adversary_weight * adversarial_loss(disc(mu_l), disc(mu_u)))
            optim_vae.zero_grad(set_to_none=True)
            loss.backward()
            optim_vae.step()
            disc.requires_grad_(True)
            disc_loss = discriminator_loss(disc(mu_l.detach()), disc(mu_u.detach()))
            optim_disc.zero_grad(set_to_none=True)
            disc_loss.backward()
            optim_disc.step()
        log.info("cycle %d: VAAL trained %d steps in %.1f s (last VAE loss %.4g, discriminator loss %.4g)",
                 ctx.cycle, cfg.steps, time.perf_counter() - t0, loss.item(), disc_loss.item())
        return vae.eval(), disc.eval()

    @staticmethod
    def scores(ctx: SelectionContext, vae: VariationalAutoencoder, disc: nn.Module,
               candidates: np.ndarray) -> np.ndarray:
        """The discriminator's logit that each of ``candidates`` (M,) is labelled, from its latent mean: (M,)
        float32, ``ctx.batch_size`` pool rows read per pass."""
        return ctx.score_rows(candidates, lambda x: disc(vae.encode(x)[0])[:, 0])

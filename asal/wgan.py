"""WGAN-GP training (Gulrajani et al. 2017), with the optional consistency term of CT-GAN (Wei et al. 2018),
and the cheaper alternatives the ``gan`` section can switch on: R1 on real images with the logistic loss
(Mescheder et al. 2018), the penalty on every k-th critic step only (lazy regularisation, StyleGAN2), a
critic learning rate of its own (TTUR) and an exponential moving average of the generator's weights.

Trained on the experiment's pool images only. Every random draw (real batches, latent codes, the penalty's
interpolation weights, dropout) comes from RNGs whose state is checkpointed, so a job killed at any moment
resumes from its last checkpoint and ends with the same weights as an uninterrupted run on the same device.

The number of iterations is not part of a checkpoint's identity: a run of N iterations is, bit for bit, the
first N iterations of a longer run, so raising ``gan.iterations`` continues from the kept final checkpoint
instead of starting again.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.utils import save_image

from .data import ImageStore, training_sample
from .files import atomic_path, config_hash
from .models.gan import ARCHS, Critic, Generator
from .settings import GanConfig

log = logging.getLogger(__name__)

LOSS_COLUMNS = ["iteration", "critic_loss", "generator_loss", "wasserstein", "gradient_penalty", "consistency", "seconds"]
CT_DROPOUT, CT_SECOND_WEIGHT = 0.5, 0.1  # CT-GAN's published settings (M' = 0)


def build_gan(cfg: GanConfig, image_shape) -> tuple[Generator, Critic]:
    arch = ARCHS[cfg.arch]
    dropout = CT_DROPOUT if cfg.consistency > 0 else 0.0
    return Generator(image_shape, cfg.latent_dim, arch), Critic(image_shape, arch, dropout=dropout)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates x_hat of real and fake images (B, C, H, W)."""
    eps = torch.rand(len(real), 1, 1, 1, generator=gen).to(real.device)  # the RNG lives on the CPU
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def r1_penalty(critic: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """R1: E[||grad D(x)||^2] on real images x (B, C, H, W), zero-centred (Mescheder et al. 2018)."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(real).sum(), real, create_graph=True)
    return grad.flatten(1).square().sum(1).mean()


def consistency_term(critic: Critic, real: torch.Tensor) -> torch.Tensor:
    """CT-GAN: two dropout-perturbed passes over the same real batch should agree (Lipschitz near the data).

    As the authors' code: squared output difference plus 0.1 times the mean squared difference of the
    second-to-last layer, hinged at M' = 0.
    """
    h1, h2 = critic.features(real), critic.features(real)  # (B, F) each, different dropout masks
    d1, d2 = critic.out(h1).squeeze(1), critic.out(h2).squeeze(1)  # (B,)
    return torch.relu((d1 - d2) ** 2 + CT_SECOND_WEIGHT * ((h1 - h2) ** 2).mean(dim=1)).mean()


class GanTrainer:
    """Owns the networks, optimisers, RNGs and loss history of one training run."""

    def __init__(self, cfg: GanConfig, pool: ImageStore, device: torch.device):
        self.cfg, self.pool, self.device = cfg, pool, device
        same_run = {k: v for k, v in asdict(cfg).items() if k != "iterations"}  # see the module docstring
        self.identity = {"gan": config_hash(same_run), "pool": pool.config_hash, "device": device.type}
        torch.manual_seed(cfg.seed)  # initial weights
        self.generator, self.critic = (m.to(device) for m in build_gan(cfg, pool.image_shape))
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
        self.opt_d = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr_critic or cfg.lr, betas=tuple(cfg.betas))
        self.rng = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)  # batches, codes, penalty weights
        # The averaged generator: what is saved, sampled and searched when gan.ema > 0.
        self.average = copy.deepcopy(self.generator).eval().requires_grad_(False) if cfg.ema else None
        self.iteration, self.critic_steps, self.history = 0, 0, []

    # --- one generator iteration ---------------------------------------------------------------------------
    def real_batch(self) -> torch.Tensor:
        idx = torch.randint(len(self.pool), (self.cfg.batch_size,), generator=self.rng).numpy()
        batch = torch.from_numpy(self.pool.images[np.sort(idx)]).to(self.device)
        return batch.float().div_(255.0)  # (B, C, H, W) in [0, 1]

    def codes(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.latent_dim, generator=self.rng).to(self.device)

    def critic_step(self) -> dict:
        """One critic update; the penalty on every ``penalty_every``-th, its weight scaled by that interval."""
        cfg = self.cfg
        real = self.real_batch()
        with torch.no_grad():
            fake = self.generator(self.codes(cfg.batch_size))
        out_real, out_fake = self.critic(real), self.critic(fake)
        d_real, d_fake = out_real.mean(), out_fake.mean()
        if cfg.penalty == "gp":
            loss_d = d_fake - d_real
        else:  # the logistic loss: -log sigmoid(D(real)) - log(1 - sigmoid(D(fake)))
            loss_d = F.softplus(-out_real).mean() + F.softplus(out_fake).mean()
        penalty = torch.zeros((), device=self.device)
        if self.critic_steps % cfg.penalty_every == 0:
            if cfg.penalty == "gp":
                penalty = gradient_penalty(self.critic, real, fake, self.rng)
                loss_d = loss_d + cfg.penalty_every * cfg.gp_lambda * penalty
            else:
                penalty = r1_penalty(self.critic, real)
                loss_d = loss_d + cfg.penalty_every * cfg.gp_lambda / 2 * penalty
        ct = consistency_term(self.critic, real) if cfg.consistency > 0 else torch.zeros((), device=self.device)
        loss_d = loss_d + cfg.consistency * ct
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        self.critic_steps += 1
        return {"critic_loss": loss_d.item(), "wasserstein": (d_real - d_fake).item(),
                "gradient_penalty": penalty.item(), "consistency": ct.item()}

    def step(self) -> dict:
        """One generator iteration: ``critic_iters`` critic steps, then one generator step."""
        cfg = self.cfg
        self.generator.train()
        self.critic.train()
        for _ in range(cfg.critic_iters):
            row = self.critic_step()
        for p in self.critic.parameters():
            p.requires_grad_(False)
        out_fake = self.critic(self.generator(self.codes(cfg.batch_size)))
        loss_g = -out_fake.mean() if cfg.penalty == "gp" else F.softplus(-out_fake).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        for p in self.critic.parameters():
            p.requires_grad_(True)
        if self.average is not None:
            with torch.no_grad():
                for avg, new in zip(self.average.state_dict().values(), self.generator.state_dict().values()):
                    avg.copy_(avg * cfg.ema + new * (1 - cfg.ema) if avg.is_floating_point() else new)
        self.iteration += 1
        return {"iteration": self.iteration, **row, "generator_loss": loss_g.item()}

    @property
    def sampler(self) -> Generator:
        """The generator to save, sample and search: the moving average where there is one."""
        return self.average if self.average is not None else self.generator

    # --- checkpoints ---------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "identity": self.identity, "iteration": self.iteration, "history": self.history,
            "generator": self.generator.state_dict(), "critic": self.critic.state_dict(),
            "average": self.average.state_dict() if self.average is not None else {},
            "critic_steps": self.critic_steps,
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "rng": self.rng.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
        }

    def save_checkpoint(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)

    def try_resume(self, path: Path) -> bool:
        if not path.exists():
            return False
        # RNG states must stay CPU tensors; load_state_dict moves weights and optimiser state to the device.
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state["identity"] != self.identity:
            log.warning("ignoring checkpoint %s: it belongs to another GAN config, pool or device", path)
            return False
        if state["iteration"] > self.cfg.iterations:
            log.warning("ignoring checkpoint %s: at iteration %d it is past gan.iterations = %d; starting afresh",
                        path, state["iteration"], self.cfg.iterations)
            return False
        self.generator.load_state_dict(state["generator"])
        self.critic.load_state_dict(state["critic"])
        if self.average is not None:
            self.average.load_state_dict(state["average"])
        self.critic_steps = state["critic_steps"]
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.iteration, self.history = state["iteration"], state["history"]
        log.info("resuming %s at iteration %d", path, self.iteration)
        return True


def gan_checkpoint_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".checkpoint.pt")


def train_gan(
    cfg: GanConfig, pool: ImageStore, out: str | Path, *, device: torch.device, samples_png: str | Path,
    losses_csv: str | Path, checkpoint_every: int = 100, log_every_seconds: float = 30.0,
) -> GanTrainer:
    """Train (or resume, or extend) a WGAN on ``pool``; write the model, a sample grid and the loss history.

    The final state stays in the checkpoint beside ``out``, so a later, longer run continues from it. A pool
    larger than :data:`asal.data.store.TRAINING_SAMPLE_BYTES` is sampled (:func:`asal.data.training_sample`).
    """
    trainer = GanTrainer(cfg, training_sample(pool, cfg.seed), device)
    ckpt = gan_checkpoint_path(out)
    trainer.try_resume(ckpt)
    first, started, last_log = trainer.iteration, time.perf_counter(), time.perf_counter()
    while trainer.iteration < cfg.iterations:
        t0 = time.perf_counter()
        row = trainer.step()
        trainer.history.append([row[c] for c in LOSS_COLUMNS[:-1]] + [time.perf_counter() - t0])
        if trainer.iteration % checkpoint_every == 0 or trainer.iteration == cfg.iterations:
            trainer.save_checkpoint(ckpt)
        now = time.perf_counter()
        if now - last_log >= log_every_seconds or trainer.iteration == cfg.iterations:
            rate = (trainer.iteration - first) / (now - started)
            log.info(
                "iteration %d/%d  W-distance %.3f  GP %.3f  %.2f it/s  ETA %.0fs", trainer.iteration, cfg.iterations,
                row["wasserstein"], row["gradient_penalty"], rate, (cfg.iterations - trainer.iteration) / rate,
            )
            last_log = now
    save_gan(trainer, out)
    with atomic_path(losses_csv) as tmp:
        pd.DataFrame(trainer.history, columns=LOSS_COLUMNS).to_csv(tmp, index=False, float_format="%.6g")
    write_sample_grid(trainer.sampler, samples_png, seed=cfg.seed)
    return trainer


def save_gan(trainer: GanTrainer, out: str | Path) -> None:
    model = {
        "config": asdict(trainer.cfg), "image_shape": list(trainer.pool.image_shape), "iterations": trainer.iteration,
        "pool_hash": trainer.pool.config_hash, "generator": trainer.sampler.state_dict(),
        "critic": trainer.critic.state_dict(),
    }
    with atomic_path(out) as tmp:
        torch.save(model, tmp)


def load_gan(path: str | Path, device: torch.device) -> tuple[Generator, Critic, dict]:
    """The trained networks in eval mode and the saved metadata (config, image shape, iterations)."""
    model = torch.load(path, map_location=device, weights_only=True)
    cfg = GanConfig.from_validated(model["config"])
    generator, critic = build_gan(cfg, model["image_shape"])
    generator.load_state_dict(model["generator"])
    critic.load_state_dict(model["critic"])
    return generator.to(device).eval(), critic.to(device).eval(), model


@torch.no_grad()
def sample(generator: Generator, n: int, *, seed: int, batch_size: int = 500) -> torch.Tensor:
    """n generated images (n, C, H, W) in [0, 1] on the generator's device, from seeded codes."""
    gen = torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    out = [generator(torch.randn(min(batch_size, n - i), generator.latent_dim, generator=gen).to(device))
           for i in range(0, n, batch_size)]
    return torch.cat(out)


def write_sample_grid(generator: Generator, path: str | Path, *, seed: int, n: int = 64) -> None:
    generator.eval()
    images = sample(generator, n, seed=seed + 12345).cpu()
    with atomic_path(path) as tmp:
        save_image(images, tmp, format="png", nrow=8, padding=2, pad_value=1.0)

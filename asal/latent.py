"""Latent codes of real images: invert the frozen generator, z_hat = argmin_z ||G(z) - x||^2 + prior.

ADBA (Huijser & van Gemert, ICCV 2017) trains its classifier in the GAN's latent space, so it needs a latent
code for every pool and test image: a once-per-experiment pre-processing stage whose cost is linear in the
pool (the ASAL paper, Sec. 2: "computing the latent space representation for each sample using a GAN is very
costly"). Per image, Adam minimises

    mean((G(z) - x)^2) + prior_weight * mean(z^2)

over z from a seeded start z ~ N(0, I); the prior keeps the codes where the generator was trained, so lines
drawn through them generate plausible images. The loss is summed over the batch and Adam acts per coordinate,
so each image's code depends only on its own start code, not on the other images of its batch.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from .data import read_split
from .errors import BadData
from .files import atomic_path, config_hash
from .images import to_float
from .seeds import sub_seed
from .settings import LatentConfig
from .wgan import load_gan

log = logging.getLogger(__name__)

SPLITS = ("pool", "test")


def invert_batch(generator: nn.Module, x: torch.Tensor, *, steps: int, lr: float, seed: int,
                 prior_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes (B, d) and per-image MSE (B,) for float images ``x`` (B, C, H, W) in [0, 1] on the generator's device.

    Only ``z`` is optimised: the gradient comes from ``torch.autograd.grad`` with respect to ``z`` alone, and
    the generator's parameters are frozen (``requires_grad`` off) for the duration, so neither its weights nor
    their ``.grad`` change.
    """
    gen = torch.Generator().manual_seed(seed)  # start codes on the CPU: the same on every device
    z = torch.randn(len(x), generator.latent_dim, generator=gen).to(x.device).requires_grad_(True)  # (B, d)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        per_image = (generator(z) - x).pow(2).flatten(1).mean(1) + prior_weight * z.pow(2).mean(1)  # (B,)
        (grad,) = torch.autograd.grad(per_image.sum(), z)
        z.grad = grad
        opt.step()
    with torch.no_grad():
        mse = (generator(z) - x).pow(2).flatten(1).mean(1)
    return z.detach(), mse


def invert(generator: nn.Module, images, *, steps: int, lr: float, prior_weight: float, seed: int,
           device: torch.device, batch_size: int = 1024, log_every_seconds: float = 30.0,
           label: str = "images") -> tuple[np.ndarray, np.ndarray]:
    """Latent codes of ``images`` (N, C, H, W): uint8, or float in [0, 1].

    Returns ``(codes (N, d) float32, mse (N,) float32)``, the reconstruction MSE per image in [0, 1] pixel
    units at the final code. Batch ``b`` starts from codes drawn with the seed ``sub_seed(seed, b)``, so a
    run is reproducible on one device and for one ``batch_size``.
    """
    flags = [p.requires_grad for p in generator.parameters()]
    was_training = generator.training
    generator.eval()  # batch norm uses its running statistics, as when sampling
    for p in generator.parameters():
        p.requires_grad_(False)
    n, codes, mses = len(images), [], []
    started = last_log = time.perf_counter()
    try:
        for b, i in enumerate(range(0, n, batch_size)):
            x = to_float(images[i : i + batch_size], device)
            z, mse = invert_batch(generator, x, steps=steps, lr=lr, seed=sub_seed(seed, b), prior_weight=prior_weight)
            codes.append(z.cpu().numpy().astype(np.float32))
            mses.append(mse.cpu().numpy().astype(np.float32))
            done, now = i + len(x), time.perf_counter()
            if now - last_log >= log_every_seconds or done == n:
                rate = done / (now - started)
                log.info("inverted %d/%d %s (%d Adam steps): %.1f images/s, mean MSE so far %.5f, ETA %.0fs",
                         done, n, label, steps, rate, float(np.concatenate(mses).mean()), (n - done) / rate)
                last_log = now
    finally:
        for p, flag in zip(generator.parameters(), flags):
            p.requires_grad_(flag)
        generator.train(was_training)
    d = generator.latent_dim
    return (np.concatenate(codes) if codes else np.zeros((0, d), np.float32),
            np.concatenate(mses) if mses else np.zeros(0, np.float32))


def encode_splits(gan_path: str | Path, pool_path: str | Path, test_path: str | Path, out_h5: str | Path,
                  cfg: LatentConfig, *, device: torch.device) -> dict:
    """Invert every pool and test image with the ``latent`` section ``cfg``; write ``out_h5`` and return what
    :func:`read_codes` would.

    Datasets ``pool`` (N, d), ``test`` (M, d), ``pool_mse`` (N,), ``test_mse`` (M,), all float32, rows in
    the stores' order (row i of ``pool`` is ``pool_idx`` i). The pool's start codes come from
    ``sub_seed(cfg.seed, 0)``, the test's from ``sub_seed(cfg.seed, 1)``. Attributes record the GAN (path, config
    hash, iterations), the stores' config hashes and the inversion settings.
    """
    generator, _, saved = load_gan(gan_path, device)
    pool, test = read_split(pool_path), read_split(test_path)
    if tuple(pool.image_shape) != tuple(saved["image_shape"]):
        raise BadData(f"{pool_path}: images {pool.image_shape} but the GAN {gan_path} makes {saved['image_shape']}")
    arrays = {}
    for s, (name, store) in enumerate((("pool", pool), ("test", test))):
        arrays[name], arrays[f"{name}_mse"] = invert(
            generator, store.images, steps=cfg.steps, lr=cfg.lr, seed=sub_seed(cfg.seed, s), device=device,
            batch_size=cfg.batch_size, prior_weight=cfg.prior_weight, label=name)
    attrs = {
        "gan_path": str(gan_path), "gan_config_hash": config_hash(saved["config"]),
        "gan_iterations": int(saved["iterations"]), "latent_dim": int(generator.latent_dim),
        "pool_path": str(pool_path), "pool_config_hash": pool.config_hash,
        "test_path": str(test_path), "test_config_hash": test.config_hash,
        "steps": int(cfg.steps), "lr": float(cfg.lr), "seed": int(cfg.seed), "prior_weight": float(cfg.prior_weight),
        "batch_size": int(cfg.batch_size),
    }
    with atomic_path(out_h5) as tmp:
        with h5py.File(tmp, "w") as fh:
            for name, arr in arrays.items():
                fh.create_dataset(name, data=arr.astype(np.float32))
            fh.attrs.update(attrs)
    log.info("latent codes: pool MSE mean %.5f (median %.5f), test MSE mean %.5f, code RMS %.2f (1 under the "
             "prior) -> %s", arrays["pool_mse"].mean(), np.median(arrays["pool_mse"]), arrays["test_mse"].mean(),
             float(np.sqrt((arrays["pool"] ** 2).mean())), out_h5)
    return {**arrays, "attrs": attrs, "path": str(out_h5)}


def read_codes(path: str | Path) -> dict:
    """``{"pool", "test", "pool_mse", "test_mse"`` (float32 arrays), ``"attrs"`` (dict), ``"path"}``."""
    path = Path(path)
    if not path.exists():
        raise BadData(f"{path}: no such file (run `asal invert-gan` first)")
    try:
        with h5py.File(path, "r") as fh:
            out = {name: fh[name][()] for name in ("pool", "test", "pool_mse", "test_mse")}
            attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in fh.attrs.items()}
    except (OSError, KeyError) as exc:
        raise BadData(f"{path}: not a latent-code file ({exc})") from None
    return {**out, "attrs": attrs, "path": str(path)}


def check_codes(codes: dict, *, pool=None, test=None, gan: dict | None = None) -> None:
    """Raise :class:`BadData` if ``codes`` were not made from these stores (and this GAN, if given)."""
    attrs, where = codes["attrs"], codes.get("path", "latent codes")
    for name, store in (("pool", pool), ("test", test)):
        if store is None:
            continue
        if attrs.get(f"{name}_config_hash") != store.config_hash:
            raise BadData(f"{where}: made from another {name} store (config hash "
                          f"{attrs.get(f'{name}_config_hash')}, {store.path} has {store.config_hash}); rerun invert-gan")
        if len(codes[name]) != len(store):
            raise BadData(f"{where}: {len(codes[name])} {name} codes but {store.path} has {len(store)} images")
    if gan is not None:
        if attrs.get("gan_config_hash") != gan["gan_config_hash"] or attrs.get("gan_iterations") != gan["gan_iterations"]:
            raise BadData(f"{where}: made with another GAN (config hash {attrs.get('gan_config_hash')}, "
                          f"{attrs.get('gan_iterations')} iterations); rerun invert-gan")

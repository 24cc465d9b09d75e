"""WGAN-GP training on tiny images: outputs, the penalty, and resume to identical weights."""

import numpy as np
import pandas as pd
import pytest
import torch

import asal.wgan as wgan
from asal.models.gan import ARCHS, Critic, Generator
from asal.wgan import gan_checkpoint_path, gradient_penalty, load_gan, sample, train_gan
from asal.settings import GanConfig

CPU = torch.device("cpu")
TINY = GanConfig.of(iterations=6, batch_size=16, critic_iters=2, latent_dim=8)


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 12, 12)])
def test_shapes_and_range(arch, shape):
    g, d = Generator(shape, 8, ARCHS[arch]), Critic(shape, ARCHS[arch])
    x = g(torch.randn(3, 8))
    assert x.shape == (3, *shape) and x.min() >= 0 and x.max() <= 1
    assert d(x).shape == (3,) and d.features(x).shape == (3, d.feature_dim)


def test_paper_size_generator_for_mnist_has_1_2m_parameters():
    g = Generator((1, 28, 28), 128, ARCHS["dcgan"])
    assert 1.1e6 < sum(p.numel() for p in g.parameters()) < 1.3e6


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic():
    class UnitSlope(torch.nn.Module):
        def forward(self, x):  # gradient (1, 0, 0, ...) everywhere: norm 1
            return x.flatten(1)[:, 0]

    real, fake = torch.rand(4, 1, 3, 3), torch.rand(4, 1, 3, 3)
    assert gradient_penalty(UnitSlope(), real, fake, torch.Generator().manual_seed(0)).item() == pytest.approx(0)


def train(tiny_stores, tmp_path, cfg=TINY, name="gan", **kwargs):
    pool, _ = tiny_stores
    return train_gan(cfg, pool, tmp_path / f"{name}.pt", device=CPU, samples_png=tmp_path / f"{name}.png",
                     losses_csv=tmp_path / f"{name}.csv", **kwargs)


def test_outputs(tiny_stores, tmp_path):
    train(tiny_stores, tmp_path, checkpoint_every=2)
    losses = pd.read_csv(tmp_path / "gan.csv")
    assert losses.iteration.tolist() == list(range(1, 7)) and np.isfinite(losses.drop(columns="iteration")).all().all()
    assert (tmp_path / "gan.png").read_bytes()[:4] == b"\x89PNG"
    assert gan_checkpoint_path(tmp_path / "gan.pt").exists()  # kept, so a longer run can continue
    generator, critic, saved = load_gan(tmp_path / "gan.pt", CPU)
    assert saved["iterations"] == 6 and saved["image_shape"] == [1, 12, 12]
    assert sample(generator, 5, seed=1).shape == (5, 1, 12, 12)
    torch.testing.assert_close(sample(generator, 5, seed=1), sample(generator, 5, seed=1))


@pytest.mark.parametrize("arch, settings", [
    ("small", {}), ("small", {"consistency": 2.0}), ("dcgan", {}),
    ("small", {"penalty": "r1", "penalty_every": 4, "critic_iters": 1, "lr_critic": 4e-4, "ema": 0.9}),
    ("dcgan", {"penalty_every": 3, "ema": 0.5}),
])
def test_resume_gives_the_weights_of_an_uninterrupted_run(tiny_stores, tmp_path, monkeypatch, arch, settings):
    """Killed during iteration 6 with a checkpoint at 4: the restart runs only 5 and 6 and ends bit-identical
    (dropout RNG with the consistency term, batch-norm buffers with dcgan; the lazy penalty's step count and
    the moving average of the cheaper settings)."""
    cfg = GanConfig.of(**{**TINY.__dict__, **settings, "arch": arch})
    reference = train(tiny_stores, tmp_path, cfg, name="ref", checkpoint_every=2)
    real_step, calls = wgan.GanTrainer.step, []

    def dying_step(self):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt  # killed during iteration 6, after the checkpoint at 4
        return real_step(self)

    monkeypatch.setattr(wgan.GanTrainer, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_stores, tmp_path, cfg, name="cut", checkpoint_every=2)
    assert gan_checkpoint_path(tmp_path / "cut.pt").exists() and not (tmp_path / "cut.pt").exists()
    calls.clear()

    def counting_step(self):
        calls.append(1)
        return real_step(self)

    monkeypatch.setattr(wgan.GanTrainer, "step", counting_step)
    resumed = train(tiny_stores, tmp_path, cfg, name="cut", checkpoint_every=2)
    assert resumed.iteration == 6 and len(calls) == 2
    for net in ("generator", "critic", "sampler"):
        for a, b in zip(getattr(reference, net).state_dict().values(), getattr(resumed, net).state_dict().values()):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "ref.csv").drop(columns="seconds"), pd.read_csv(tmp_path / "cut.csv").drop(columns="seconds")
    )


def test_more_iterations_continue_the_run_bit_for_bit(tiny_stores, tmp_path, monkeypatch):
    longer = GanConfig.of(**{**TINY.__dict__, "iterations": 9})
    reference = train(tiny_stores, tmp_path, longer, name="long")
    train(tiny_stores, tmp_path, TINY, name="ext")  # 6 iterations, checkpoint kept
    real_step, calls = wgan.GanTrainer.step, []
    monkeypatch.setattr(wgan.GanTrainer, "step", lambda self: calls.append(1) or real_step(self))
    extended = train(tiny_stores, tmp_path, longer, name="ext")
    assert len(calls) == 3 and extended.iteration == 9
    for a, b in zip(reference.generator.state_dict().values(), extended.generator.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    calls.clear()
    train(tiny_stores, tmp_path, TINY, name="ext")  # fewer iterations than the checkpoint: start afresh
    assert len(calls) == 6


def test_checkpoint_of_another_config_is_ignored(tiny_stores, tmp_path):
    other = GanConfig.of(**{**TINY.__dict__, "lr": 3e-4})
    foreign = wgan.GanTrainer(other, tiny_stores[0], CPU)
    foreign.iteration = 4
    foreign.save_checkpoint(gan_checkpoint_path(tmp_path / "b.pt"))
    trainer = wgan.GanTrainer(TINY, tiny_stores[0], CPU)
    assert trainer.try_resume(gan_checkpoint_path(tmp_path / "b.pt")) is False and trainer.iteration == 0
    same = wgan.GanTrainer(TINY, tiny_stores[0], CPU)
    same.iteration = 4
    same.save_checkpoint(gan_checkpoint_path(tmp_path / "c.pt"))
    assert trainer.try_resume(gan_checkpoint_path(tmp_path / "c.pt")) is True and trainer.iteration == 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_trains_and_resumes_on_cuda(tiny_stores, tmp_path):
    pool, _ = tiny_stores
    cuda = torch.device("cuda")
    train_gan(TINY, pool, tmp_path / "g.pt", device=cuda, samples_png=tmp_path / "g.png", losses_csv=tmp_path / "g.csv",
              checkpoint_every=2)
    trainer = wgan.GanTrainer(TINY, pool, cuda)
    trainer.step()
    trainer.save_checkpoint(tmp_path / "ckpt.pt")
    assert wgan.GanTrainer(TINY, pool, cuda).try_resume(tmp_path / "ckpt.pt")


def test_the_moving_average_is_what_is_saved_and_lags_the_trained_generator(tiny_stores, tmp_path):
    cfg = GanConfig.of(**{**TINY.__dict__, "ema": 0.5, "penalty": "r1", "critic_iters": 1})
    trainer = train(tiny_stores, tmp_path, cfg, name="ema")
    saved = torch.load(tmp_path / "ema.pt", weights_only=True)["generator"]
    for key, value in trainer.average.state_dict().items():
        torch.testing.assert_close(saved[key], value, rtol=0, atol=0)
    differs = [not torch.equal(a, b) for a, b in zip(trainer.average.parameters(), trainer.generator.parameters())]
    assert any(differs)


def test_r1_is_zero_for_a_critic_flat_on_the_data_and_positive_otherwise():
    from asal.wgan import r1_penalty

    flat = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1))
    with torch.no_grad():
        flat[1].weight.zero_()
    x = torch.rand(5, 1, 2, 2)
    assert r1_penalty(flat, x).item() == 0.0
    with torch.no_grad():
        flat[1].weight.fill_(0.5)
    assert r1_penalty(flat, x).item() == pytest.approx(4 * 0.25)  # ||grad||^2 = 4 weights of 0.5 squared

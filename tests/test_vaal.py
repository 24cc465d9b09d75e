"""VAAL: its selection rule and loss terms by hand, and the whole strategy on tiny pools whose answer is known."""

import numpy as np
import pytest
import torch

from asal.data import ImageStore, read_split
from asal.data.store import write_split
from asal.settings import VaalConfig
from asal.strategies.base import SelectionContext
from asal.strategies.vaal import (VaalSampling, VariationalAutoencoder, adversarial_loss, discriminator_loss,
                                  kl_divergence, least_labelled, reshuffled_batches, vae_loss)

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: one thread is fastest, and spares the shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def store(images: np.ndarray) -> ImageStore:
    return ImageStore("mem.h5", images, np.zeros(len(images), np.int64), [0], "x")


def context(pool, labelled_idx, *, seed=0, batch_size=64) -> SelectionContext:
    return SelectionContext(pool, np.asarray(labelled_idx, np.int64), None, CPU, np.random.default_rng(seed),
                            batch_size)


def three_kinds(channels: int = 1, side: int = 8, seed: int = 0):
    """A pool of 100 shuffled images of three kinds by brightness: 40 dark (pixels 0..60), 40 bright
    (195..255), 20 grey (100..155). Returns (pool, labelled (half the dark and half the bright), grey (the
    20 grey rows)). Nothing labelled is grey, so the discriminator learns that grey means unlabelled; grey lies
    between the labelled kinds, so a discriminator that has not learnt (nearly linear in the pixels) does not
    single it out."""
    rng = np.random.default_rng(seed)
    images = np.concatenate([rng.integers(0, 61, size=(40, channels, side, side)),
                             rng.integers(195, 256, size=(40, channels, side, side)),
                             rng.integers(100, 156, size=(20, channels, side, side))]).astype(np.uint8)
    perm = rng.permutation(100)
    kind = np.where(perm >= 80, 2, perm // 40)  # 0 dark, 1 bright, 2 grey
    labelled = np.sort(np.concatenate([np.flatnonzero(kind == 0)[::2], np.flatnonzero(kind == 1)[::2]]))
    return store(images[perm]), labelled, np.flatnonzero(kind == 2)


def small(steps: int) -> VaalSampling:
    return VaalSampling(VaalConfig.of(steps=steps, batch_size=16))


def test_least_labelled_takes_the_lowest_scores_ties_to_the_lower_pool_idx():
    candidates = np.array([2, 5, 7, 9, 11, 20])
    scores = np.array([0.9, -1.0, 0.3, -1.0, 0.3, 4.0], np.float32)
    np.testing.assert_array_equal(least_labelled(scores, candidates, 4), [5, 9, 7, 11])
    assert least_labelled(scores, candidates, 0).dtype == np.int64 and len(least_labelled(scores, candidates, 0)) == 0
    # unsorted candidates: ties still go to the lower pool_idx
    np.testing.assert_array_equal(least_labelled(np.zeros(3), np.array([8, 3, 5]), 2), [3, 5])


def test_kl_divergence_and_vae_loss_by_hand():
    zeros = torch.zeros(2, 3)
    np.testing.assert_allclose(kl_divergence(zeros, zeros).numpy(), [0.0, 0.0])
    mu, logvar = torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [np.log(2.0), 0.0]])
    # KL per row: 0.5 * sum(mu^2 + var - 1 - logvar)
    np.testing.assert_allclose(kl_divergence(mu, logvar).numpy(), [0.5, 0.5 * (1 - np.log(2.0))], rtol=1e-6)
    x = torch.zeros(2, 1, 2, 2)
    recon = torch.full((2, 1, 2, 2), 0.5)  # squared error 0.25 per pixel, 1.0 per image
    assert vae_loss(x, recon, zeros, zeros, beta=3.0).item() == pytest.approx(1.0)
    expected = 1.0 + 2.0 * (0.5 + 0.5 * (1 - np.log(2.0))) / 2
    assert vae_loss(x, recon, mu, logvar, beta=2.0).item() == pytest.approx(expected, rel=1e-6)


def test_adversarial_losses_by_hand():
    ln2 = np.log(2.0)
    zero = torch.zeros(4, 1)  # the discriminator's logit 0: probability 1/2 either way
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * ln2)
    assert adversarial_loss(zero, zero).item() == pytest.approx(2 * ln2)
    sure = torch.full((4, 1), 30.0)  # 'labelled', surely
    assert discriminator_loss(sure, -sure).item() == pytest.approx(0.0, abs=1e-6)  # what the discriminator wants
    assert adversarial_loss(sure, sure).item() == pytest.approx(0.0, abs=1e-6)  # what the VAE wants
    assert adversarial_loss(sure, -sure).item() == pytest.approx(30.0, rel=1e-3)  # unlabelled caught


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 8, 8), (1, 28, 28), (3, 10, 13)])
def test_vae_shapes(shape):
    vae = VariationalAutoencoder(shape, latent_dim=5)
    x = torch.rand(4, *shape)
    recon, mu, logvar = vae(x)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (4, 5)
    assert 0 <= recon.min() and recon.max() <= 1


def test_reshuffled_batches_pass_over_every_row():
    batches = reshuffled_batches(np.arange(10, 16), 4, np.random.default_rng(0))
    first_three = np.concatenate([next(batches) for _ in range(3)])  # two whole passes
    np.testing.assert_array_equal(np.sort(first_three), np.repeat(np.arange(10, 16), 2))
    assert all((np.diff(next(batches)) >= 0).all() for _ in range(5))  # sorted, for an on-disk pool


@pytest.mark.parametrize("channels", [1, 3])
def test_selects_the_kind_nothing_labelled_looks_like(channels):
    """Labelled images are dark or bright, the unlabelled also grey: the discriminator learns that grey means
    unlabelled, so the grey ones are taken first; one training step does not find them (the test's control)."""
    pool, labelled, grey = three_kinds(channels)
    picks = small(steps=150).select(context(pool, labelled), 20).pool_idx
    np.testing.assert_array_equal(np.sort(picks), grey)
    untrained = small(steps=1).select(context(pool, labelled), 20).pool_idx
    assert len(set(untrained.tolist()) - set(grey.tolist())) >= 5


def test_deterministic_never_labelled_nor_twice_and_torch_rng_left_alone():
    pool, labelled, _ = three_kinds()
    strategy = small(steps=20)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = strategy.select(context(pool, labelled, seed=5), 30).pool_idx
    assert torch.equal(torch.get_rng_state(), before)
    np.testing.assert_array_equal(strategy.select(context(pool, labelled, seed=5), 30).pool_idx, first)
    assert len(set(first.tolist())) == 30 and not set(first.tolist()) & set(labelled.tolist())
    everything = strategy.select(context(pool, labelled, seed=5, batch_size=7), len(pool) - len(labelled)).pool_idx
    assert sorted(everything.tolist()) == sorted(set(range(len(pool))) - set(labelled.tolist()))
    assert len(strategy.select(context(pool, labelled), 0).pool_idx) == 0


def test_a_pool_on_disk_chooses_what_the_pool_in_memory_chooses(tmp_path):
    """The scattered batch reads and the scan by sorted rows give an HDF5-backed pool the same choice."""
    pool, labelled, _ = three_kinds(side=6)
    path = tmp_path / "pool.h5"
    write_split(path, pool.images, pool.labels, np.arange(len(pool)), class_names=[0], source="npz", split="pool",
                config={})
    on_disk = read_split(path, in_memory=False)
    assert on_disk.on_disk
    strategy = small(steps=15)
    np.testing.assert_array_equal(strategy.select(context(on_disk, labelled, batch_size=9), 25).pool_idx,
                                  strategy.select(context(pool, labelled, batch_size=9), 25).pool_idx)
    assert on_disk.images.rows_read > 0

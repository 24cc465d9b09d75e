"""Strategies for tests: small ASAL strategies built in memory (untrained networks, indexes on the given pool),
and every registered strategy built from the files its registry entry declares (:class:`StrategyWorld`)."""

from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA

from asal.features import FeatureExtractor
from asal.matching import PCAProjection, make_index
from asal.models.autoencoder import ConvAutoencoder
from asal.models.gan import ARCHS, Critic, Generator
from asal import paths
from asal.config import validate_slice
from asal.settings import (PAPER_ASAL, AsalConfig, AsalPlusConfig, AutoencoderConfig, GanConfig, GanQualityConfig,
                           LatentConfig, RunSettings, TrainConfig)
from asal.strategies import spec
from asal.strategies.base import SelectionContext, load_strategy
from asal.strategies.adversarial import AdversarialSampling, ClassifierSpace, FixedSpace
from asal.images import to_float

CPU = torch.device("cpu")


def space_extractor(space: str, image_shape) -> FeatureExtractor:
    torch.manual_seed(1)
    if space == "raw":
        return FeatureExtractor("raw", lambda x: x, CPU)
    if space == "auto":
        return FeatureExtractor("auto", ConvAutoencoder(image_shape, code_dim=16).eval().encode, CPU)
    return FeatureExtractor("disc", Critic(image_shape, ARCHS["small"]).eval().features, CPU)


def fixed_space(space: str, pool, *, index: str = "flat", dims: int = 5) -> FixedSpace:
    extractor = space_extractor(space, pool.image_shape)
    feats = np.concatenate([extractor(to_float(pool.images[i : i + 4096], CPU)).numpy()
                            for i in range(0, len(pool), 4096)])
    pca = PCA(n_components=dims, random_state=0).fit(feats)
    projection = PCAProjection(pca.mean_, pca.components_, pca.explained_variance_ratio_)
    return FixedSpace(extractor, projection, make_index(index).build(projection.transform(feats)))


def asal_strategy(name: str, pool, *, steps: int = 5, index: str = "flat", space=None, **cfg) -> AdversarialSampling:
    """``name`` with a small untrained generator: its space and score from its registry entry, ``asal`` settings
    of ``steps`` and ``cfg``'s asal keys, and for ``asal-plus-*`` the schema's ``asal_plus`` defaults under
    ``cfg``'s other keys (as `asal run-al` fills them)."""
    entry = spec(name)
    asal_keys = {key: cfg.pop(key) for key in ("lr", "batch_size", "k") if key in cfg}
    plus = AsalPlusConfig.of(**cfg) if "asal_plus" in entry.sections else PAPER_ASAL
    torch.manual_seed(0)
    generator = Generator(pool.image_shape, 8, ARCHS["small"])
    matcher = space or (ClassifierSpace() if entry.space is None else fixed_space(entry.space, pool, index=index))
    return AdversarialSampling(generator, matcher, AsalConfig.of(steps=steps, **asal_keys), {"test": True},
                               entry.score, plus).named(name)


class StrategyWorld:
    """Everything a registered strategy may read, made by the package's own stages on tiny data, laid out as
    the workflow lays it out (:mod:`asal.paths`): so any strategy, one added later included, is built from
    nothing but its registry entry. Two experiments: ``multi`` (3 classes) and ``binary`` (for strategies
    that declare ``binary_only``); 8x8 gray images, 180 pool and 60 test images each."""

    def __init__(self, root: Path):
        from conftest import make_images

        self.root, self.exp = root, {"matching": {"index": "flat"}}  # what paths.run_inputs reads
        x, y = make_images(240, n_classes=3, side=8, seed=3)
        self.stores = {"multi": self._stores("multi", x, y), "binary": self._stores("binary", x[y < 2], y[y < 2])}
        for name in self.stores:
            self._files(name)

    def _at(self, kind: str, exp: str, **where) -> Path:
        return self.root / paths.path(kind, exp, **where)

    def _stores(self, exp: str, x, y):
        from asal.data import prepare_data, read_split

        raw = self.root / f"raw/{exp}.npz"
        raw.parent.mkdir(parents=True, exist_ok=True)
        np.savez(raw, x=x, y=y)
        pool, test = self._at("pool", exp), self._at("test", exp)
        prepare_data(validate_slice({"source": "npz", "path": str(raw), "test_fraction": 0.25}, "data"), pool, test)
        return read_split(pool), read_split(test)

    def _files(self, exp: str) -> None:
        from asal.autoencoder import train_autoencoder
        from asal.features import load_extractor, project_pool
        from asal.latent import encode_splits
        from asal.matching import build_index
        from asal.quality import gan_quality, train_oracle
        from asal.wgan import train_gan

        pool, test = self.stores[exp]
        gan, models = self._at("gan", exp), self.root / "models" / exp
        train_gan(GanConfig.of(iterations=2, batch_size=16, critic_iters=1, latent_dim=8), pool, gan, device=CPU,
                  samples_png=models / "gan.png", losses_csv=models / "gan.csv")
        train_autoencoder(AutoencoderConfig.of(steps=2, batch_size=16, code_dim=8), pool, test,
                          self._at("autoencoder", exp), device=CPU, recon_png=models / "ae.png",
                          metrics_json=models / "ae.json")
        train_oracle(TrainConfig.of(model="linear", optimizer="lbfgs", lr=1.0, steps=20), pool, test,
                     self._at("oracle", exp), self._at("oracle_metrics", exp), device=CPU)
        gan_quality(gan, self._at("oracle", exp), self._at("oracle_metrics", exp), self._at("gan_metrics", exp),
                    pool=pool, cfg=GanQualityConfig.of(samples=200), device=CPU)
        encode_splits(gan, self._at("pool", exp), self._at("test", exp), self._at("codes", exp),
                      LatentConfig.of(steps=2), device=CPU)
        for space in paths.SPACES:
            model = paths.path("features_model", exp, space=space)
            pca = self._at("pca", exp, space=space)
            project_pool(load_extractor(space, model and self.root / model, CPU), self._at("pool", exp), pca, dims=4)
            build_index("flat", pca, self._at("index", exp, space=space, index="flat"))

    def settings(self, name: str) -> RunSettings:
        """A linear classifier (with dropout and adam where the strategy samples dropout; the CNN where it
        predicts the loss), al's defaults."""
        if "learning_loss" in spec(name).sections:  # the loss module reads the CNN's blocks, trained on mini-batches
            return RunSettings.of({"classifier": {"model": "cnn", "steps": 10, "batch_size": 16}})
        if "vaal" in spec(name).sections:  # its default 500 steps a selection are ~10 s even at 8x8
            return RunSettings.of({"classifier": {"model": "linear", "optimizer": "lbfgs", "lr": 1.0, "steps": 20},
                                   "vaal": {"steps": 10, "batch_size": 16}})
        if spec(name).needs_dropout:
            return RunSettings.of({"classifier": {"model": "linear", "dropout": 0.25, "steps": 30}})
        return RunSettings.of({"classifier": {"model": "linear", "optimizer": "lbfgs", "lr": 1.0, "steps": 20}})

    def build(self, name: str):
        """``(strategy, pool, test, settings)``: the strategy loaded from the files its entry declares."""
        exp = "binary" if spec(name).binary_only else "multi"
        files = {kind: str(self.root / where) for kind, where in paths.run_inputs(spec(name), exp, self.exp).items()
                 if kind in paths.STRATEGY_FILES}
        settings = self.settings(name)
        return load_strategy(name, settings=settings, device=CPU, files=files), *self.stores[exp], settings

    def context(self, name: str, labelled, *, seed: int = 0, batch_size: int = 1024):
        """The strategy, and a cycle's context: its learner trained on the dataset's labels of ``labelled``."""
        strategy, pool, test, settings = self.build(name)
        labelled = np.asarray(labelled, np.int64)
        model = strategy.learner(settings, pool, test, CPU).fit(labelled, pool.labels[labelled], {}, seed=seed)
        return strategy, SelectionContext(pool, labelled, model, CPU, np.random.default_rng(seed), batch_size)

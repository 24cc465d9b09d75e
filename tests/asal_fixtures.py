"""Small ASAL strategies built in memory (untrained networks, indexes on the given pool) for strategy tests."""

import numpy as np
import torch
from sklearn.decomposition import PCA

from asal.features import FeatureExtractor
from asal.matching import PCAProjection, make_index
from asal.models.autoencoder import ConvAutoencoder
from asal.models.gan import ARCHS, Critic, Generator
from asal.settings import PAPER_ASAL, AsalConfig, AsalPlusConfig
from asal.strategies import spec
from asal.strategies.adversarial import AdversarialSampling, ClassifierSpace, FixedSpace
from asal.images import to_float
from asal.settings import AsalConfig

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

"""ASAL (paper section 3, Algorithm 1): generate high-entropy images, label their nearest real pool samples.

Per cycle: draw latent codes z ~ N(0, I), maximise the entropy of the current classifier on G(z) with Adam
(the generator frozen; ``asal-<space>-margin`` and ``asal-<space>-least-confidence`` maximise another
uncertainty score, the paper's future work), map the synthetic images into a matching space, and take for each one its nearest
pool sample that is neither labelled nor taken. With a fixed feature space (raw pixels, the autoencoder's
code, the critic's features, each PCA-reduced before AL starts) nothing in a cycle touches an array over the
pool: the cost is the ascent, the features of the synthetic batch and the index's search. ASAL-CLS matches in
the current classifier's penultimate features instead, which must be recomputed for the pool every cycle
(linear cost; the paper uses it to tell matching failures from feature failures).

``asal-plus-<space>`` (beyond the paper, the ``asal_plus`` section) keeps more of the synthetic samples'
uncertainty: a diversity term in the ascent, and among each synthetic sample's nearest pool samples the most
uncertain one under the classifier (:func:`rerank_matches`), still at a cost independent of the pool.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..errors import BadConfig, BadData
from ..features import FeatureExtractor, load_extractor
from ..files import config_hash
from ..learners import ClassifierLearner
from ..matching import FaissIndex, PCAProjection, load_index, match_without_replacement
from ..scores import SCORES, ceiling, from_logits, score_numpy
from ..settings import PAPER_ASAL, AsalConfig, AsalPlusConfig, RunSettings
from ..quality import warn_if_failed
from ..wgan import load_gan
from . import LEARNED_LOSS
from .base import Selection, SelectionContext, Strategy

Embed = Callable[[torch.Tensor], np.ndarray]  # float images (B, C, H, W) in [0, 1] -> (B, d) float32


@dataclass
class Ascent:
    """The outcome of :func:`uncertainty_ascent`: ``images`` (B, C, H, W) float in [0, 1] on the CPU, ``z``
    (B, latent_dim), per-sample entropy before and after (B,) (the paper's diagnostic, whatever the score),
    the maximised score after (B,), the batch-mean score per step (steps + 1,) and the Adam steps taken."""

    images: torch.Tensor
    z: torch.Tensor
    entropy_start: np.ndarray
    entropy_end: np.ndarray
    score_end: np.ndarray
    history: np.ndarray
    steps: int


def frozen_for_ascent(module: nn.Module) -> nn.Module:
    """A frozen eval-mode copy of ``module`` laid out for the ascent's 100 forward and backward passes.

    Batch norm is folded into the (transposed) convolution before it (exact in eval mode, up to rounding), and
    4-d weights go channels_last, the layout oneDNN's CPU convolutions run fastest in. Together they cut the
    ascent's time by about a quarter on this project's 2-core CPU (7.6 s to 5.7 s for the paper-size
    generator at 64x64x3; the README's selection-time section). A copy, so the caller's networks keep their
    layout and state.
    """
    module = copy.deepcopy(module).eval().requires_grad_(False)
    for block in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        for i, (layer, after) in enumerate(zip(block, block[1:])):
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(after, nn.BatchNorm2d):
                block[i] = fuse_conv_bn_eval(layer, after, transpose=isinstance(layer, nn.ConvTranspose2d))
                block[i + 1] = nn.Identity()
    return module.to(memory_format=torch.channels_last)


def mean_cosine_similarity(features: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity over the distinct pairs of a batch: (B, d) -> scalar; 0 for one sample."""
    if len(features) < 2:
        return features.new_zeros(())
    unit = nn.functional.normalize(features.flatten(1), dim=1)
    gram = unit @ unit.T  # (B, B)
    return (gram.sum() - gram.diagonal().sum()) / (len(unit) * (len(unit) - 1))


def to_sphere(z: torch.Tensor) -> torch.Tensor:
    """Each code scaled to norm sqrt(latent_dim), where nearly all of N(0, I)'s mass lies: (B, d) -> (B, d)."""
    return z * (z.shape[1] ** 0.5 / z.norm(dim=1, keepdim=True).clamp_min(1e-12))


def saturated(u: torch.Tensor, history: list[torch.Tensor], *, ceiling: float, tolerance: float,
              patience: int) -> bool:
    """The ascent's early stop: every code's score ``u`` (B,) within ``tolerance`` of the score's ``ceiling``,
    or the batch mean (``history``, one per step so far) up by less than ``tolerance`` over ``patience`` steps.
    Reading the scores waits for the device: checked only when ``tolerance`` is above 0."""
    if u.min().item() >= ceiling - tolerance:
        return True
    return len(history) > patience and (history[-1] - history[-1 - patience]).item() < tolerance


def uncertainty_ascent(
    generator: nn.Module, model: nn.Module, n: int, *, steps: int, lr: float, seed: int, device: torch.device,
    score: str = "entropy", prior_weight: float = 0.0, sphere: bool = False, diversity: float = 0.0,
    tolerance: float = 0.0, patience: int = 10,
) -> Ascent:
    """Solve the paper's Eq. (1): max_z H(h(G(z))) for ``n`` codes at once with Adam, G and h fixed; with
    ``score`` another uncertainty score of :data:`asal.scores.SCORES` takes the entropy's place, or
    :data:`~asal.strategies.LEARNED_LOSS`, the loss that ``model`` (a
    :class:`~asal.models.classifiers.LossPredictingCNN`) predicts.

    Three constraints keep the synthetic samples where real samples are (all off by default, the paper's
    ascent): ``prior_weight`` subtracts ``prior_weight * |z|^2 / 2`` per code (the prior's negative log
    density), ``sphere`` projects every code back to norm sqrt(latent_dim) after each step, and ``diversity``
    subtracts ``diversity * n`` times the batch's mean pairwise cosine similarity of the classifier's
    features of G(z), so the codes do not all climb to one boundary region.

    With ``tolerance`` above 0 the ascent stops before ``steps`` once :func:`saturated` says the codes are at
    the score's ceiling or no longer climbing; ``Ascent.steps`` is the steps taken.

    Only z receives gradients (``torch.autograd.grad``); both networks run as :func:`frozen_for_ascent`
    copies, so neither the weights nor the layout of the caller's networks are touched.
    """
    if score not in (*SCORES, LEARNED_LOSS):
        raise BadConfig(f"unknown uncertainty score {score!r} (known: {', '.join(SCORES)}, {LEARNED_LOSS})")
    if score == LEARNED_LOSS and diversity:
        raise BadConfig("the diversity term needs the classifier's features, which the learned loss does not score")
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator.latent_dim, generator=gen).to(device)
    z = (to_sphere(z) if sphere else z).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    generator, model = frozen_for_ascent(generator), frozen_for_ascent(model)
    history = []  # per-step mean score, kept on the device: no host sync inside the loop unless it may stop early
    def scores(images: torch.Tensor) -> torch.Tensor:  # (n,) what the ascent maximises, differentiable
        return model.predict_loss(images) if score == LEARNED_LOSS else from_logits(score, model(images))

    with torch.no_grad():
        logits = model(generator(z))
        start = from_logits("entropy", logits)
        top = math.inf if score == LEARNED_LOSS else ceiling(score, logits.shape[1])  # a loss has no ceiling
    taken = 0
    while taken < steps:
        if diversity:
            features = model.features(generator(z))  # (n, d)
            u = from_logits(score, model.classify(features))
            objective = u.sum() - diversity * n * mean_cosine_similarity(features)
        else:
            u = scores(generator(z))
            objective = u.sum()
        if prior_weight:
            objective = objective - prior_weight * z.square().sum() / 2
        if tolerance and saturated(u.detach(), [*history, u.detach().mean()], ceiling=top, tolerance=tolerance,
                                   patience=patience):
            break
        history.append(u.detach().mean())
        (z.grad,) = torch.autograd.grad(-objective, [z])
        opt.step()
        taken += 1
        if sphere:
            with torch.no_grad():
                z.copy_(to_sphere(z))
    with torch.no_grad():
        images = generator(z)
        end, score_end = from_logits("entropy", model(images)), scores(images)
    history.append(score_end.mean())
    return Ascent(images.contiguous().cpu(), z.detach().cpu(), start.cpu().numpy(), end.cpu().numpy(),
                  score_end.cpu().numpy(), torch.stack(history).cpu().numpy(), taken)


class FixedSpace:
    """A matching space computed once for the pool: features -> PCA -> a prebuilt index on the projected pool."""

    def __init__(self, extractor: FeatureExtractor, pca: PCAProjection, index):
        self.extractor, self.pca, self.index = extractor, pca, index

    def embed(self, images: torch.Tensor) -> np.ndarray:
        return self.pca.transform(self.extractor(images).cpu().numpy())  # (B, pca_dims)

    def for_cycle(self, ctx: SelectionContext) -> tuple[Embed, object]:
        if len(self.index) != len(ctx.pool):
            raise BadData(f"the {self.extractor.space} index holds {len(self.index)} samples but the pool "
                          f"{ctx.pool.path} has {len(ctx.pool)}: it was built for another pool")
        return self.embed, self.index


class ClassifierSpace:
    """ASAL-CLS: the current classifier's penultimate features, for the whole pool, every cycle (O(N)).

    Matched by exact FAISS search on the features themselves (128 for the CNN, the pixels for the linear
    model); no PCA, since the space changes every cycle.
    """

    def for_cycle(self, ctx: SelectionContext) -> tuple[Embed, FaissIndex]:
        model, device = ctx.model, ctx.device

        @torch.no_grad()
        def embed(images: torch.Tensor) -> np.ndarray:
            return model.features(images.to(device)).cpu().numpy()

        feats = np.concatenate([f.cpu().numpy() for _, f in ctx.iter_features()])  # (N, d)
        return embed, FaissIndex("flat").build(feats)


def rerank_matches(
    index, queries: np.ndarray, n: int, blocked: set[int], *, candidates: int,
    score: Callable[[np.ndarray], np.ndarray], k: int = 10,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per synthetic sample, in query order, the most uncertain of its ``candidates`` nearest pool samples that
    is neither ``blocked`` nor taken; ``(pool_idx (n,), distance to its query (n,), query row (n,), scored)``.

    ``score`` maps sorted ``pool_idx`` (M,) to their uncertainty (M,) under the current classifier; it is
    called once, on at most ``len(queries) * candidates`` samples, so the cost is the index's and
    ``candidates`` classifier passes per query, whatever the pool's size. One pick per query keeps the batch
    as spread out as the synthetic batch. Queries whose candidates are all gone are matched as plain ASAL
    does (:func:`match_without_replacement`), after the others.
    """
    dist, idx = index.search(queries, candidates, allow_missing=True)  # (Q, c) each
    free = idx >= 0
    if blocked:
        free &= ~np.isin(idx, np.fromiter(blocked, np.int64, len(blocked)))
    scored = np.unique(idx[free])  # (M,) sorted
    uncertainty = dict(zip(scored.tolist(), score(scored).tolist())) if len(scored) else {}
    taken: dict[int, tuple[float, int]] = {}  # pool_idx -> (distance, query row)
    for row in range(len(queries)):
        if len(taken) == n:
            break
        options = [(uncertainty[i], -d, i) for i, d, ok in zip(idx[row].tolist(), dist[row].tolist(), free[row])
                   if ok and i not in taken]
        if options:
            _, neg_d, best = max(options)  # the most uncertain; a tie goes to the nearer
            taken[best] = (-neg_d, row)
    if len(taken) < n:
        rest = np.setdiff1d(np.arange(len(queries)), [row for _, row in taken.values()])
        more, more_dist, more_rows = match_without_replacement(index, queries[rest], n - len(taken),
                                                               blocked | set(taken), k=k)
        taken.update({i: (d, rest[r]) for i, d, r in zip(more.tolist(), more_dist.tolist(), more_rows.tolist())})
    pool_idx = np.fromiter(taken, np.int64, len(taken))
    distance = np.array([d for d, _ in taken.values()], np.float32)
    rows = np.array([r for _, r in taken.values()], np.int64)
    return pool_idx, distance, rows, len(scored)


class AdversarialSampling(Strategy):
    """ASAL with one matching space and one score: ``asal-<space>[-<score>]`` and ``asal-plus-<space>`` in the
    registry, whose entry names the space and the score.

    ``choose`` returns, besides the ``pool_idx``, the cycle's diagnostics (columns of
    :data:`asal.runfiles.DIAGNOSTICS`) and the synthetic images the matches answer, (n, C, H, W), for figures.
    ``plus`` holds the ``asal_plus`` switches (:data:`asal.settings.PAPER_ASAL`: all off, the paper's ASAL).
    """

    def __init__(self, generator: nn.Module, space: FixedSpace | ClassifierSpace, cfg: AsalConfig,
                 provenance: dict, score: str = "entropy", plus: AsalPlusConfig = PAPER_ASAL):
        self.generator, self.space, self.cfg, self.plus, self.provenance = generator, space, cfg, plus, provenance
        self.score = score
        self.generator.requires_grad_(False)

    @classmethod
    def load(cls, spec, settings: RunSettings, device: torch.device, files: dict[str, str]) -> AdversarialSampling:
        """From its files: the GAN, and for a fixed space its feature model, PCA and index."""
        generator, provenance = load_generator(files, device)
        if spec.space is None:
            matcher = ClassifierSpace()
        else:
            extractor = load_extractor(spec.space, files.get("features_model"), device)
            projection, nn_index = PCAProjection.load(files["pca"]), load_index(files["index"])
            matcher = FixedSpace(extractor, projection, nn_index)
            provenance.update(features=extractor.provenance, pca=files["pca"], pca_fingerprint=projection.fingerprint(),
                              index=files["index"], index_kind=nn_index.kind, index_size=len(nn_index))
        plus = settings.asal_plus if "asal_plus" in spec.sections else PAPER_ASAL
        return cls(generator, matcher, settings.asal, provenance, spec.score, plus)

    def identity(self) -> dict:
        return self.provenance

    def learner(self, settings: RunSettings, pool, test, device: torch.device) -> ClassifierLearner:
        """The classifier, with Learning Loss's module where the ascent maximises the predicted loss."""
        loss_prediction = settings.learning_loss if self.score == LEARNED_LOSS else None
        return ClassifierLearner(settings.classifier, pool, test, device, loss_prediction=loss_prediction)

    def choose(self, ctx: SelectionContext, n: int) -> Selection:
        n_codes = max(n, self.cfg.batch_size or n)
        t0 = time.perf_counter()
        cfg, plus = self.cfg, self.plus
        ascent = uncertainty_ascent(self.generator, ctx.model, n_codes, steps=cfg.steps, lr=cfg.lr,
                                    seed=int(ctx.rng.integers(2**63)), device=ctx.device, score=self.score,
                                    prior_weight=plus.prior_weight, sphere=plus.sphere, diversity=plus.diversity,
                                    tolerance=cfg.tolerance, patience=cfg.patience)
        order = np.argsort(-ascent.score_end, kind="stable")  # the most uncertain synthetic samples first
        t1 = time.perf_counter()
        embed, index = self.space.for_cycle(ctx)
        queries = embed(ascent.images[order])
        t2 = time.perf_counter()
        extra = {"rerank_scored": 0.0}  # pool samples the classifier scored for this selection
        if plus.rerank:
            score = SCORES[self.score]

            def uncertainty(pool_idx: np.ndarray) -> np.ndarray:  # only the candidates' images are read
                return np.concatenate([score_numpy(score, probs) for _, probs in ctx.iter_proba(pool_idx)])

            pool_idx, dist, rows, scored = rerank_matches(index, queries, n, ctx.labelled_set(),
                                                          candidates=plus.rerank, score=uncertainty, k=cfg.k)
            extra["rerank_scored"] = float(scored)
        else:
            pool_idx, dist, rows = match_without_replacement(index, queries, n, ctx.labelled_set(), k=cfg.k)
        t3 = time.perf_counter()
        used = order[rows]
        return Selection(pool_idx, generated=ascent.images[used], stats={
            "synthetic_entropy_start": float(ascent.entropy_start[used].mean()),
            "synthetic_entropy": float(ascent.entropy_end[used].mean()),
            "match_distance": float(dist.mean()), "ascent_steps": float(ascent.steps),
            "generate_seconds": t1 - t0, "features_seconds": t2 - t1, "search_seconds": t3 - t2, **extra,
        })


def load_generator(files: dict[str, str], device: torch.device) -> tuple[nn.Module, dict]:
    """The generator of ``files["gan"]`` (a train-gan output) and its provenance: path, config digest,
    iterations; with a warning in the log if ``files["gan_metrics"]`` says it failed its quality gate."""
    warn_if_failed(files.get("gan_metrics"))
    generator, _, saved = load_gan(files["gan"], device)
    return generator, {"gan": str(files["gan"]), "gan_config_hash": config_hash(saved["config"]),
                       "gan_iterations": saved["iterations"]}

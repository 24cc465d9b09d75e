"""ADBA: Active Decision Boundary Annotation (Huijser & van Gemert, ICCV 2017), as the ASAL paper reproduced it.

Binary experiments only. Every pool and test image has a latent code (:mod:`asal.latent`, inverting the same
WGAN that ASAL uses). Each cycle:

1. train a linear classifier (logistic regression) in latent space on the codes of the labelled real samples
   (the initial set, with their true labels) and every line point annotated so far (with its line label);
   its accuracy on the test codes is the cycle's test accuracy;
2. scan the pool's codes for the unlabelled samples closest to the decision boundary (smallest
   |w.z + b|; never a sample that already centred a line);
3. through each such code, draw a line along the boundary's normal w / ||w||: ``points`` codes at offsets
   ``linspace(-half_length, half_length, points)``, so the first point lies on class 0's side;
4. generate the line's images, quantised to uint8 as an annotator would see them; the oracle labels every
   image, and the annotator marks one transition: the step labelling (class a before position s, class b
   from s on) that disagrees least with the oracle labels every point of the line.

One line is one annotation (the ASAL paper, Sec. 5.3: "We count annotating one line as one annotation"), so
``n_labelled`` in the CSV is ``al.initial`` plus the lines so far: 500 annotations are 50 real labels and 450
lines of 11 synthetic points.

On the one AL loop (:func:`asal.loop.run_active_learning`) ADBA is three pieces: the strategy that draws the
lines (:class:`LineSampling`), the learner that trains in latent space (:class:`LatentLearner`) and the
annotator of lines (:class:`LineAnnotator`). The run is deterministic (logistic regression with L-BFGS, a
deterministic generator and oracle; ties go to the lower ``pool_idx``).
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from ..annotators import Annotator, Answer, Panel
from ..data import ImageStore
from ..errors import BadConfig, BadData, PoolExhausted
from ..images import quantise
from ..latent import check_codes, read_codes
from ..learners import Learner
from ..models import module_digest
from ..models.classifiers import predict_proba
from ..scores import entropy
from ..settings import AdbaConfig, RunSettings
from .adversarial import load_generator
from .base import Selection, SelectionContext, Strategy

# --- the pieces of one cycle, each testable alone ----------------------------------------------------------

def fit_latent_classifier(codes: np.ndarray, labels: np.ndarray, *, C: float, seed: int = 0) -> LogisticRegression:
    """Logistic regression on latent ``codes`` (n, d) with binary ``labels`` (n,); L-BFGS, so deterministic."""
    if len(np.unique(labels)) < 2:
        raise BadData(f"ADBA's latent classifier needs both classes, but its {len(labels)} training labels are "
                      f"all class {int(labels[0]) if len(labels) else None} (raise al.initial)")
    clf = LogisticRegression(C=C, max_iter=1000, random_state=seed % 2**32)
    return clf.fit(codes, labels)


def select_centres(distance: np.ndarray, available: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` available ``pool_idx`` of smallest ``distance`` (N,), nearest first; ties to the lower index.

    ``available`` (N,) bool marks the candidates (unlabelled, never a line centre).
    """
    candidates = np.flatnonzero(available)  # ascending pool_idx, so a stable sort breaks ties to the lower one
    if len(candidates) < n:
        raise PoolExhausted(f"ADBA needs {n} line centres but only {len(candidates)} pool samples are left")
    return candidates[np.argsort(distance[candidates], kind="stable")[:n]].astype(np.int64)


def line_offsets(points: int, half_length: float) -> np.ndarray:
    """(points,) float32 offsets along the normal, negative (class 0's side) first."""
    return np.linspace(-half_length, half_length, points).astype(np.float32)


def line_codes(centres: np.ndarray, normal: np.ndarray, *, points: int, half_length: float) -> np.ndarray:
    """Lines through ``centres`` (L, d) along ``normal`` (d,) (normalised here): (L, points, d) float32."""
    direction = (normal / np.linalg.norm(normal)).astype(np.float32)  # (d,)
    offsets = line_offsets(points, half_length)  # (P,)
    return (centres[:, None, :].astype(np.float32) + offsets[None, :, None] * direction[None, None, :]).astype(np.float32)


def fit_step(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """The annotator's one transition: ``(step labels (P,) int64, s)`` for oracle ``labels`` (P,) in {0, 1}.

    Among all labellings "class a before position s, class b = 1 - a from s on" (s in 0..P, both orientations;
    s = 0 or P labels the whole line one class), the one with the fewest disagreements with ``labels``; ties go
    to the transition nearest the line's centre (|s - P/2| smallest), then to the lower s, then to a = 0.
    """
    labels = np.asarray(labels, dtype=np.int64)
    p = len(labels)
    ones_before = np.concatenate([[0], np.cumsum(labels)])  # (P+1,): ones among positions < s
    s = np.arange(p + 1)
    zeros_before, ones_after = s - ones_before, ones_before[-1] - ones_before
    zeros_after = (p - s) - ones_after
    best = None
    for a in (0, 1):
        errors = (ones_before + zeros_after) if a == 0 else (zeros_before + ones_after)  # (P+1,)
        for si in range(p + 1):
            key = (int(errors[si]), abs(2 * si - p), si, a)
            best = key if best is None or key < best else best
    _, _, s_best, a_best = best
    step = np.where(np.arange(p) < s_best, a_best, 1 - a_best).astype(np.int64)
    return step, int(s_best)


@torch.no_grad()
def generate_uint8(generator: nn.Module, codes: np.ndarray, device: torch.device, batch_size: int = 1024) -> np.ndarray:
    """Images of ``codes`` (n, d) as an annotator sees them: (n, C, H, W) uint8."""
    return np.concatenate([quantise(generator(torch.from_numpy(np.ascontiguousarray(codes[i : i + batch_size])).to(device)))
                           for i in range(0, len(codes), batch_size)])


def oracle_labels(oracle: nn.Module, images: np.ndarray, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """The oracle's class (argmax) of uint8 ``images`` (n, C, H, W): (n,) int64, and its probability (n,)."""
    probs = predict_proba(oracle, images, device=device)
    if probs.shape[1] != 2:
        raise BadConfig(f"ADBA's oracle must be binary, but it has {probs.shape[1]} outputs")
    return probs.argmax(1).astype(np.int64), probs.max(1)


# --- on the loop: the strategy, its learner and its annotator ------------------------------------------

class LatentLearner(Learner):
    """A logistic regression on latent codes: those of the labelled pool rows (the initial set, their labels),
    then every annotated line point (``synthetic["codes"]`` (L, P, d) with ``synthetic["step"]`` (L, P))."""

    def __init__(self, codes: dict, pool: ImageStore, test: ImageStore, cfg: AdbaConfig):
        check_codes(codes, pool=pool, test=test)
        self.pool_codes, self.test_codes = codes["pool"].astype(np.float32), codes["test"].astype(np.float32)
        self.test_labels, self.cfg = test.labels, cfg

    def fit(self, pool_idx: np.ndarray, labels: np.ndarray, synthetic: dict[str, np.ndarray], *, seed: int):
        x, y = self.pool_codes[pool_idx], labels
        if synthetic:
            d = self.pool_codes.shape[1]
            x = np.concatenate([x, synthetic["codes"].reshape(-1, d)])
            y = np.concatenate([y, synthetic["step"].reshape(-1)])
        return fit_latent_classifier(x, y, C=self.cfg.C, seed=seed)

    def accuracy(self, model) -> float:
        return float((model.predict(self.test_codes) == self.test_labels).mean())

    def selected_entropy(self, model, selection: Selection) -> float:
        """At the line centres."""
        return float(entropy(model.predict_proba(self.pool_codes[selection.anchors])).mean())

    def identity(self) -> dict:
        return {"codes": hashlib.sha256(self.pool_codes.tobytes() + self.test_codes.tobytes()).hexdigest()[:16]}


class LineAnnotator(Annotator):
    """The oracle labels every image of a line; the annotation is the one transition that disagrees least
    with it (:func:`fit_step`). Reports the oracle's mean top probability (``oracle_confidence``)."""

    def __init__(self, oracle: nn.Module, device: torch.device):
        self.oracle, self.device = oracle, device

    def annotate(self, selection: Selection) -> Answer:
        lines = selection.queries
        n, points = lines["images"].shape[:2]
        said, confidence = oracle_labels(self.oracle, lines["images"].reshape(n * points, *lines["images"].shape[2:]),
                                         self.device)
        said = said.reshape(n, points)
        steps = [fit_step(o) for o in said]
        return Answer(np.zeros(0, np.int64), {**lines, "oracle": said, "step": np.stack([s for s, _ in steps]),
                                              "transition": np.array([t for _, t in steps], np.int64)},
                      {"oracle_confidence": float(confidence.mean())})

    def identity(self) -> dict:
        return {"oracle": module_digest(self.oracle)}


class LineSampling(Strategy):
    """ADBA's selection: ``n`` lines through the unlabelled pool codes nearest the latent classifier's boundary.

    Each line is a query (one annotation); its centre is taken (never a centre again) but not labelled.
    Diagnostics: ``search_seconds`` (the scan of the pool's codes) and ``generate_seconds`` (the lines' images).
    """

    labels_pool = False

    def __init__(self, generator: nn.Module, codes: dict, cfg: AdbaConfig, provenance: dict, oracle: nn.Module,
                 device: torch.device):
        if codes["pool"].shape[1] != generator.latent_dim:
            raise BadData(f"{codes.get('path')}: codes of dimension {codes['pool'].shape[1]}, but the generator "
                          f"takes {generator.latent_dim}")
        self.generator, self.codes, self.cfg, self.provenance = generator, codes, cfg, provenance
        self.line_annotator = LineAnnotator(oracle, device)

    @classmethod
    def load(cls, spec, settings: RunSettings, device: torch.device, files: dict[str, str]) -> LineSampling:
        """From its files: the GAN that draws the lines, the oracle that annotates them, the latent codes."""
        from ..quality import load_oracle

        generator, provenance = load_generator(files, device)
        codes = read_codes(files["codes"])
        check_codes(codes, gan=provenance)
        return cls(generator, codes, settings.adba, provenance, load_oracle(files["oracle"], device), device)

    def identity(self) -> dict:
        return self.provenance

    def learner(self, settings: RunSettings, pool: ImageStore, test: ImageStore, device: torch.device) -> Learner:
        return LatentLearner(self.codes, pool, test, settings.adba)

    def annotator(self, pool_annotator: Annotator) -> Annotator:
        return Panel(pool_annotator, self.line_annotator)

    def output_extras(self, pool: ImageStore, settings: RunSettings) -> dict[str, np.ndarray]:
        return {"offsets": line_offsets(self.cfg.points, self.cfg.half_length),
                "class_names": np.array([str(c) for c in pool.class_names])}

    def choose(self, ctx: SelectionContext, n: int) -> Selection:
        t0 = time.perf_counter()
        pool_codes, clf = self.codes["pool"].astype(np.float32), ctx.model
        available = np.ones(len(ctx.pool), dtype=bool)
        available[ctx.labelled_idx] = False
        chosen = select_centres(np.abs(clf.decision_function(pool_codes)), available, n)  # (n,) pool_idx
        t_scan = time.perf_counter()
        normal = clf.coef_[0]  # (d,): decision_function > 0 is class clf.classes_[1] = 1
        codes = line_codes(pool_codes[chosen], normal, points=self.cfg.points, half_length=self.cfg.half_length)
        images = generate_uint8(self.generator, codes.reshape(-1, codes.shape[-1]), ctx.device)  # (n * P, C, H, W)
        lines = {"codes": codes, "images": images.reshape(n, self.cfg.points, *ctx.pool.image_shape),
                 "centre": chosen, "cycle": np.full(n, ctx.cycle, np.int64),
                 "direction": np.repeat((normal / np.linalg.norm(normal)).astype(np.float32)[None], n, axis=0)}
        return Selection(np.zeros(0, np.int64), queries=lines, anchors=chosen, stats={
            "search_seconds": t_scan - t0, "generate_seconds": time.perf_counter() - t_scan})

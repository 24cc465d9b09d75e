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

The run is deterministic (logistic regression with L-BFGS, a deterministic generator and oracle; ties go to
the lower ``pool_idx``), and checkpointed after every cycle as :func:`asal.loop.run_active_learning` does, so
a run killed at any moment and restarted ends with exactly the rows (times aside), indices and lines of an
uninterrupted run on the same device.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from .files import config_hash
from .data import ImageStore
from .files import atomic_path
from .errors import BadConfig, BadData, PoolExhausted
from .latent import check_codes
from .loop import ROW_COLUMNS, checkpoint_path, cycle_seed, initial_labelled, load_checkpoint, write_json
from .models import module_digest
from .models.classifiers import entropy, predict_proba
from .strategies.gaal import quantise

log = logging.getLogger(__name__)

NAME = "adba"
LINE_KEYS = ("codes", "images", "oracle", "step", "transition", "centre", "cycle", "direction")


@dataclass(frozen=True)
class AdbaConfig:
    """The ``adba`` section of an experiment."""

    points: int = 11  # images per line
    half_length: float = 2.0  # a line spans [-half_length, half_length] latent units along the normal
    C: float = 1.0  # inverse L2 regularisation of the latent logistic regression


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


# --- checkpoints: the JSON of loop.py plus a side file with the lines -----------------------------------

def lines_path(out_csv: str | Path) -> Path:
    """The checkpoint's side file of line arrays, written before the JSON."""
    return checkpoint_path(out_csv).with_suffix(".npz")


def _empty_lines(points: int, d: int, image_shape) -> dict:
    return {
        "codes": np.zeros((0, points, d), np.float32), "images": np.zeros((0, points, *image_shape), np.uint8),
        "oracle": np.zeros((0, points), np.int64), "step": np.zeros((0, points), np.int64),
        "transition": np.zeros(0, np.int64), "centre": np.zeros(0, np.int64), "cycle": np.zeros(0, np.int64),
        "direction": np.zeros((0, d), np.float32),
    }


def _save_npz(path: Path, arrays: dict, *, compressed: bool = False) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a name
        (np.savez_compressed if compressed else np.savez)(fh, **arrays)


def _load_lines(path: Path, n_lines: int) -> dict | None:
    """The first ``n_lines`` lines of the side file (it may hold one cycle more: a kill before the JSON)."""
    try:
        with np.load(path, allow_pickle=False) as fh:
            lines = {key: fh[key] for key in LINE_KEYS}
    except (OSError, KeyError, ValueError) as exc:
        log.warning("ignoring unreadable checkpoint lines %s (%s); starting afresh", path, exc)
        return None
    if any(len(v) < n_lines for v in lines.values()):
        log.warning("checkpoint lines %s hold fewer than %d lines; starting afresh", path, n_lines)
        return None
    return {key: v[:n_lines] for key, v in lines.items()}


# --- the run ---------------------------------------------------------------------------------------------

def run_adba(
    pool: ImageStore, test: ImageStore, codes: dict, generator: nn.Module, oracle: nn.Module, *, seed: int,
    settings: dict, out_csv: str | Path, out_indices: str | Path, out_lines: str | Path, device: torch.device,
) -> pd.DataFrame:
    """Run ADBA; write the per-cycle CSV, the indices and the annotated lines; return the rows.

    ``codes`` comes from :func:`asal.latent.read_codes` for these stores and this ``generator``; ``oracle``
    labels the generated images (e.g. :func:`asal.quality.load_oracle`). ``settings`` is
    ``{"al": {"initial", "new", "budget"}, "adba": {"points", "half_length", "C"}}``.

    ``out_csv``: columns :data:`asal.loop.ROW_COLUMNS`, strategy ``adba``; ``n_labelled`` counts annotations
    (initial real labels plus lines); ``n_selected`` the lines of the cycle; ``selected_entropy`` the mean
    entropy of the latent classifier at the line centres; ``select_seconds`` the scan, generation and oracle,
    of which ``search_seconds`` is the scan and ``generate_seconds`` the generation; ``oracle_confidence``
    (where the loop has that column) the oracle's mean max-probability on the line images; the others NaN.

    ``out_indices``: ``pool_idx``, ``label``, ``cycle`` for the initial set and for every line centre (the
    cycle whose classifier first trains on its line). A centre's ``label`` is its true class, for reference
    only: ADBA never trains on it, it trains on the line's points with the labels of the line.

    ``out_lines`` (npz): ``codes`` (L, P, d) float32, ``images`` (L, P, C, H, W) uint8, ``oracle`` (L, P)
    (the oracle's label of each image), ``step`` (L, P) (the line labels trained on), ``transition`` (L,)
    (the step position s: points before it have ``step[:, 0]``), ``centre`` (L,) pool_idx, ``cycle`` (L,)
    (the cycle that selected the line), ``direction`` (L, d) (the unit normal), ``offsets`` (P,),
    ``class_names``.
    """
    al, cfg = settings["al"], AdbaConfig(**settings.get("adba", {}))
    if pool.n_classes != 2:
        raise BadConfig(f"strategy adba is for binary experiments only, but {pool.path} has {pool.n_classes} "
                        f"classes ({pool.class_names})")
    if pool.class_names != test.class_names:
        raise BadConfig(f"{pool.path} and {test.path} have different classes")
    if al["budget"] > len(pool):
        raise BadConfig(f"al.budget = {al['budget']} is larger than the pool ({len(pool)} samples in {pool.path})")
    if cfg.points < 2 or cfg.half_length <= 0:
        raise BadConfig(f"adba.points = {cfg.points} and adba.half_length = {cfg.half_length}: a line needs "
                        "at least 2 points and a positive half length")
    check_codes(codes, pool=pool, test=test)
    pool_codes, test_codes = codes["pool"].astype(np.float32), codes["test"].astype(np.float32)  # (N, d), (M, d)
    d = pool_codes.shape[1]
    if d != generator.latent_dim:
        raise BadData(f"{codes.get('path')}: codes of dimension {d}, but the generator takes {generator.latent_dim}")

    identity = {
        "strategy": NAME, "seed": seed, "settings": config_hash(settings), "pool": pool.config_hash,
        "test": test.config_hash, "codes": hashlib.sha256(pool_codes.tobytes() + test_codes.tobytes()).hexdigest()[:16],
        "generator": module_digest(generator), "oracle": module_digest(oracle), "device": device.type,
    }
    ckpt_path, side_path = checkpoint_path(out_csv), lines_path(out_csv)
    state = load_checkpoint(ckpt_path, identity)
    lines = _load_lines(side_path, state["n_lines"]) if state is not None else None
    if lines is None:
        start = initial_labelled(len(pool), al["initial"], seed)
        state = {"identity": identity, "rows": [], "labelled": [[int(i), 0] for i in start], "n_lines": 0}
        lines = _empty_lines(cfg.points, d, pool.image_shape)
    else:
        log.info("resuming %s from cycle %d", ckpt_path, len(state["rows"]))

    initial = np.array([i for i, c in state["labelled"] if c == 0], dtype=np.int64)
    n_cycles = 1 + -(-(al["budget"] - al["initial"]) // al["new"])
    first, started = len(state["rows"]), time.perf_counter()
    for cycle in range(first, n_cycles):
        labelled_idx = np.array([i for i, _ in state["labelled"]], dtype=np.int64)  # initial set and centres
        x = np.concatenate([pool_codes[initial], lines["codes"].reshape(-1, d)])  # (n_initial + L * P, d)
        y = np.concatenate([pool.labels[initial], lines["step"].reshape(-1)])
        t0 = time.perf_counter()
        clf = fit_latent_classifier(x, y, C=cfg.C, seed=cycle_seed(seed, cycle, 0))
        train_s = time.perf_counter() - t0
        accuracy = float((clf.predict(test_codes) == test.labels).mean())
        row = dict.fromkeys(ROW_COLUMNS, float("nan"))
        row.update(strategy=NAME, seed=seed, cycle=cycle, n_labelled=len(labelled_idx), test_accuracy=accuracy,
                   n_selected=0, train_seconds=train_s)
        n_new, noise = min(al["new"], al["budget"] - len(labelled_idx)), float("nan")
        if cycle < n_cycles - 1 and n_new > 0:
            t0 = time.perf_counter()
            available = np.ones(len(pool), dtype=bool)
            available[labelled_idx] = False
            chosen = select_centres(np.abs(clf.decision_function(pool_codes)), available, n_new)  # (n_new,) pool_idx
            t_scan = time.perf_counter()
            normal = clf.coef_[0]  # (d,): decision_function > 0 is class clf.classes_[1] = 1
            new_codes = line_codes(pool_codes[chosen], normal, points=cfg.points, half_length=cfg.half_length)
            images = generate_uint8(generator, new_codes.reshape(-1, d), device)  # (n_new * P, C, H, W)
            t_gen = time.perf_counter()
            said, confidence = oracle_labels(oracle, images, device)
            said = said.reshape(n_new, cfg.points)
            steps = [fit_step(o) for o in said]
            row.update(n_selected=n_new, select_seconds=time.perf_counter() - t0, search_seconds=t_scan - t0,
                       generate_seconds=t_gen - t_scan,
                       selected_entropy=float(entropy(clf.predict_proba(pool_codes[chosen])).mean()))
            new = {
                "codes": new_codes, "images": images.reshape(n_new, cfg.points, *pool.image_shape), "oracle": said,
                "step": np.stack([s for s, _ in steps]), "transition": np.array([t for _, t in steps], np.int64),
                "centre": chosen, "cycle": np.full(n_new, cycle, np.int64),
                "direction": np.repeat((normal / np.linalg.norm(normal)).astype(np.float32)[None], n_new, axis=0),
            }
            lines = {key: np.concatenate([lines[key], new[key]]) for key in LINE_KEYS}
            row["oracle_confidence"] = float(confidence.mean())  # how sure the annotator is of the images
            noise = float((new["step"] != said).mean())
            state["labelled"] += [[int(i), cycle + 1] for i in chosen]
            state["n_lines"] = len(lines["centre"])
        state["rows"].append(row)
        _save_npz(side_path, lines)  # before the JSON: a resume takes the JSON's first n_lines lines
        write_json(ckpt_path, state)
        per_cycle = (time.perf_counter() - started) / (cycle + 1 - first)
        log.info(
            "%s seed %d cycle %d/%d: %d annotations (%d lines), accuracy %.4f, train %.2fs, select %.2fs, "
            "oracle vs line labels %.3f; %.1fs/cycle, ETA %.0fs",
            NAME, seed, cycle + 1, n_cycles, len(labelled_idx), len(labelled_idx) - len(initial), accuracy, train_s,
            row["select_seconds"], noise, per_cycle, per_cycle * (n_cycles - cycle - 1),
        )

    rows = pd.DataFrame(state["rows"], columns=ROW_COLUMNS)
    labelled = np.array(state["labelled"], dtype=np.int64).reshape(-1, 2)
    indices = pd.DataFrame({"pool_idx": labelled[:, 0], "label": pool.labels[labelled[:, 0]], "cycle": labelled[:, 1]})
    for frame, path in ((rows, out_csv), (indices, out_indices)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    _save_npz(Path(out_lines), {**lines, "offsets": line_offsets(cfg.points, cfg.half_length),
                                "class_names": np.array([str(c) for c in pool.class_names])}, compressed=True)
    ckpt_path.unlink(missing_ok=True)
    side_path.unlink(missing_ok=True)
    return rows

"""The active-learning loop: train, evaluate, select, label; checkpointed after every cycle.

Every random choice of cycle k derives from ``(seed, k)`` alone (classifier initialisation and batch order,
a strategy's ``rng``), and the initial labelled set from ``seed`` alone, the same for every strategy. So a run
killed at any moment and restarted from its checkpoint ends with exactly the rows (times aside) and indices
of an uninterrupted run on the same device.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .files import config_hash
from .data import ImageStore
from .files import atomic_path
from .errors import BadConfig, PoolExhausted
from .models.classifiers import TrainConfig, entropy, predict_proba, train_classifier
from .strategies import DIAGNOSTICS, SelectionContext, Strategy

log = logging.getLogger(__name__)

ROW_COLUMNS = [
    "strategy", "seed", "cycle", "n_labelled", "test_accuracy", "n_selected", "selected_entropy",
    "select_seconds", "train_seconds", *DIAGNOSTICS,
]


def cycle_seed(seed: int, cycle: int, stream: int) -> int:
    """An independent 63-bit seed per (run seed, cycle, purpose)."""
    return int(np.random.SeedSequence([seed, cycle, stream]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def cycle_model(pool: ImageStore, labelled_idx: np.ndarray, train_cfg: TrainConfig, *, seed: int, cycle: int,
                device: torch.device, synthetic: tuple[np.ndarray, np.ndarray] | None = None):
    """The classifier of ``cycle``: trained from scratch on ``labelled_idx`` (in labelling order), followed
    by the annotated ``synthetic`` (images (S, C, H, W) uint8, labels (S,)) of a strategy such as GAAL."""
    images, labels = pool.images[labelled_idx], pool.labels[labelled_idx]
    if synthetic is not None and len(synthetic[1]):
        images, labels = np.concatenate([images, synthetic[0]]), np.concatenate([labels, synthetic[1]])
    return train_classifier(train_cfg, images, labels, pool.n_classes, seed=cycle_seed(seed, cycle, 0), device=device)


def cycle_context(pool: ImageStore, labelled_idx: np.ndarray, model, *, seed: int, cycle: int,
                  device: torch.device, batch_size: int = 1024) -> SelectionContext:
    """What the strategy sees in ``cycle``, its ``rng`` seeded from (seed, cycle) alone."""
    rng = np.random.default_rng(cycle_seed(seed, cycle, 1))
    return SelectionContext(pool, labelled_idx, model, device, rng, batch_size)


def initial_labelled(n_pool: int, n_initial: int, seed: int) -> np.ndarray:
    """The seeded random start set, (n_initial,) ``pool_idx``; the same for every strategy of a seed."""
    if n_initial > n_pool:
        raise PoolExhausted(f"al.initial = {n_initial} is larger than the pool ({n_pool} samples)")
    return np.random.default_rng(seed).choice(n_pool, size=n_initial, replace=False)


def checkpoint_path(out_csv: str | Path) -> Path:
    out_csv = Path(out_csv)
    return out_csv.with_name(out_csv.stem + ".checkpoint.json")


class SyntheticSet:
    """The annotated synthetic images of a run (GAAL): images (S, C, H, W) uint8, labels (S,) int64 and the
    cycle (S,) whose classifier first trains on each. Saved as an .npz (no pickles) beside the checkpoint,
    and at the end to the run's synthetic file, with the strategy's identity (e.g. the oracle's test accuracy)."""

    def __init__(self, image_shape: tuple[int, ...]):
        self.images = np.zeros((0, *image_shape), np.uint8)
        self.labels = np.zeros(0, np.int64)
        self.cycle = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def add(self, images: np.ndarray, labels: np.ndarray, cycle: int) -> None:
        self.images = np.concatenate([self.images, images.astype(np.uint8)])
        self.labels = np.concatenate([self.labels, labels.astype(np.int64)])
        self.cycle = np.concatenate([self.cycle, np.full(len(labels), cycle, np.int64)])

    def save(self, path: Path, identity: dict) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, images=self.images, labels=self.labels, cycle=self.cycle,
                     identity=np.array(json.dumps(identity)))

    def load(self, path: Path, n: int, identity: dict) -> bool:
        """Take the first ``n`` samples of a saved set (the checkpoint's count: later ones belong to a lost
        cycle); False, taking nothing, if the file is missing, unreadable, shorter or of another run."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if len(data["labels"]) < n or json.loads(str(data["identity"])) != identity:
                    return False
                self.images, self.labels, self.cycle = data["images"][:n], data["labels"][:n], data["cycle"][:n]
        except (OSError, KeyError, ValueError):
            return False
        return True


def synthetic_checkpoint_path(out_csv: str | Path) -> Path:
    out_csv = Path(out_csv)
    return out_csv.with_name(out_csv.stem + ".checkpoint_synthetic.npz")


def write_json(path: Path, obj: dict) -> None:
    """Write ``obj`` as JSON atomically: a kill leaves the old file or the new one, never half of one."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj))


def load_checkpoint(path: Path, identity: dict) -> dict | None:
    """The checkpoint's state if it exists, parses and was written for ``identity`` (config, strategy, seed,
    pool); else None, with a warning that says which, so the caller starts afresh."""
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("ignoring unreadable checkpoint %s (%s); starting afresh", path, exc)
        return None
    if state.get("identity") != identity:
        log.warning("checkpoint %s belongs to another config, strategy, seed or pool; starting afresh", path)
        return None
    return state


def run_active_learning(
    pool: ImageStore, test: ImageStore, *, strategy: Strategy, seed: int, settings: dict, out_csv: str | Path,
    out_indices: str | Path, device: torch.device, score_batch_size: int = 1024, out_synthetic: str | Path | None = None,
) -> pd.DataFrame:
    """Run one AL experiment and write its per-cycle CSV and its selected indices.

    ``settings`` is the run's config slice ``{"classifier": ..., "al": ...}`` (plus ``asal`` for ASAL);
    ``strategy`` comes from :func:`asal.strategies.load_strategy`. The CSV has the columns
    :data:`ROW_COLUMNS`; a strategy's diagnostics it does not report are NaN. ``out_indices`` gets one row
    per labelled sample: ``pool_idx``, ``label`` (the class id 0..K-1 of the pool store, not the source's
    label) and ``cycle`` (the first cycle whose classifier trains on it; 0 for the initial set).

    A strategy that annotates synthetic images (GAAL) needs ``out_synthetic``, an .npz of the images, their
    labels and cycles (:class:`SyntheticSet`); ``n_labelled`` then counts them beside the pool samples. The
    fully supervised bound (``strategy.whole_pool``) trains once on the whole pool for ``full.steps`` steps
    and writes one row.
    """
    al, train_cfg = settings["al"], TrainConfig(**settings["classifier"])
    if pool.class_names != test.class_names:
        raise BadConfig(f"{pool.path} and {test.path} have different classes")
    if strategy.whole_pool:  # the bound: no schedule, its own number of steps
        train_cfg = dataclasses.replace(train_cfg, steps=settings.get("full", {}).get("steps") or train_cfg.steps)
    elif al["budget"] > len(pool):
        raise BadConfig(f"al.budget = {al['budget']} is larger than the pool ({len(pool)} samples in {pool.path})")
    if strategy.labels_pool == (out_synthetic is not None):
        raise BadConfig(f"strategy {strategy.name!r} " + ("annotates synthetic images: give a file for them "
                        "(--synthetic)" if out_synthetic is None else "makes no synthetic images: drop --synthetic"))
    identity = {
        "strategy": strategy.name, "strategy_files": strategy.identity(), "seed": seed,
        "settings": config_hash(settings), "pool": pool.config_hash,
        "device": device.type,  # results are reproducible on one kind of device, not across kinds
    }
    ckpt_path, synth_ckpt = checkpoint_path(out_csv), synthetic_checkpoint_path(out_csv)
    state = load_checkpoint(ckpt_path, identity)
    synthetic = SyntheticSet(pool.image_shape)
    if state is not None and state.get("n_synthetic", 0) and not synthetic.load(synth_ckpt, state["n_synthetic"], identity):
        log.warning("the synthetic images %s of checkpoint %s are missing or of another run; starting afresh",
                    synth_ckpt, ckpt_path)
        state = None
    if state is None:
        start = np.arange(len(pool)) if strategy.whole_pool else initial_labelled(len(pool), al["initial"], seed)
        state = {"identity": identity, "rows": [], "labelled": [[int(i), 0] for i in start], "n_synthetic": 0}
    else:
        log.info("resuming %s from cycle %d", ckpt_path, len(state["rows"]))

    n_cycles = 1 if strategy.whole_pool else 1 + -(-(al["budget"] - al["initial"]) // al["new"])
    first, started = len(state["rows"]), time.perf_counter()
    for cycle in range(first, n_cycles):
        labelled_idx = np.array([i for i, _ in state["labelled"]], dtype=np.int64)
        n_labelled = len(labelled_idx) + len(synthetic)
        t0 = time.perf_counter()
        model = cycle_model(pool, labelled_idx, train_cfg, seed=seed, cycle=cycle, device=device,
                            synthetic=(synthetic.images, synthetic.labels))
        train_s = time.perf_counter() - t0
        accuracy = float((predict_proba(model, test.images, device=device).argmax(1) == test.labels).mean())
        row = dict.fromkeys(ROW_COLUMNS, float("nan"))
        row.update(strategy=strategy.name, seed=seed, cycle=cycle, n_labelled=n_labelled,
                   test_accuracy=accuracy, n_selected=0, train_seconds=train_s)
        n_new = min(al["new"], al["budget"] - n_labelled)
        if cycle < n_cycles - 1 and n_new > 0:
            ctx = cycle_context(pool, labelled_idx, model, seed=seed, cycle=cycle, device=device,
                                batch_size=score_batch_size)
            t0 = time.perf_counter()
            selection = strategy.select(ctx, n_new)
            row["select_seconds"] = time.perf_counter() - t0
            chosen = selection.pool_idx
            row.update(selection.stats, n_selected=selection.n_annotated)
            shown = pool.images[chosen]
            if selection.new_labels is not None:
                shown = np.concatenate([shown, selection.new_images])
                synthetic.add(selection.new_images, selection.new_labels, cycle + 1)
                synthetic.save(synth_ckpt, identity)  # before the JSON that counts them
            row["selected_entropy"] = float(entropy(predict_proba(model, shown, device=device)).mean())
            state["labelled"] += [[int(i), cycle + 1] for i in chosen]
        state["rows"].append(row)
        state["n_synthetic"] = len(synthetic)
        write_json(ckpt_path, state)
        per_cycle = (time.perf_counter() - started) / (cycle + 1 - first)
        log.info(
            "%s seed %d cycle %d/%d: %d labelled, accuracy %.4f, train %.1fs, select %.2fs; %.1fs/cycle, ETA %.0fs",
            strategy.name, seed, cycle + 1, n_cycles, n_labelled, accuracy, train_s, row["select_seconds"],
            per_cycle, per_cycle * (n_cycles - cycle - 1),
        )

    rows = pd.DataFrame(state["rows"], columns=ROW_COLUMNS)
    labelled = np.array(state["labelled"], dtype=np.int64).reshape(-1, 2)
    indices = pd.DataFrame({"pool_idx": labelled[:, 0], "label": pool.labels[labelled[:, 0]], "cycle": labelled[:, 1]})
    if out_synthetic is not None:
        synthetic.save(Path(out_synthetic), identity)
    for frame, path in ((rows, out_csv), (indices, out_indices)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    ckpt_path.unlink(missing_ok=True)
    synth_ckpt.unlink(missing_ok=True)
    return rows

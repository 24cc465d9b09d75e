"""The active-learning loop, one for every strategy: train, evaluate, select, annotate; checkpointed after
every cycle.

A cycle: the strategy's learner trains from scratch on the annotated pool rows and synthetic items and is
evaluated on the test set; the strategy selects ``al.new`` queries; the annotator answers them (the
dataset's labels in simulation, the oracle for synthetic images or lines, a person in the labelling page).
Cycles run until the annotations reach ``al.budget`` (a pool scan stops sooner if ``scan.max_cycles`` says
so); the last cycle trains and evaluates only. A query the
annotator skips is recorded, never offered again, and not counted against the budget.

Every random choice of cycle k derives from ``(seed, k)`` alone (the model's initialisation and batch order,
a strategy's ``rng``), and the initial labelled set from ``seed`` alone, the same for every strategy. So a run
killed at any moment and restarted from its checkpoint ends with exactly the rows (times aside), indices
and extra outputs of an uninterrupted run on the same device.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .annotators import SKIP, Annotator, Answer, DatasetLabels
from .data import ImageStore
from .errors import BadConfig, PoolExhausted
from .files import atomic_path, save_npz, write_json
from .learners import Learner
from .runfiles import INDEX_COLUMNS, ROW_COLUMNS
from .seeds import sub_seed
from .settings import INFERENCE_BATCH, RunSettings
from .strategies.base import Selection, SelectionContext, Strategy

log = logging.getLogger(__name__)


def initial_labelled(n_pool: int, n_initial: int, seed: int) -> np.ndarray:
    """The seeded random start set, (n_initial,) ``pool_idx``; the same for every strategy of a seed."""
    if n_initial > n_pool:
        raise PoolExhausted(f"al.initial = {n_initial} is larger than the pool ({n_pool} samples)")
    return np.random.default_rng(seed).choice(n_pool, size=n_initial, replace=False)


def cycle_context(pool: ImageStore, labelled_idx: np.ndarray, model, *, seed: int, cycle: int,
                  device: torch.device, batch_size: int = INFERENCE_BATCH) -> SelectionContext:
    """What the strategy sees in ``cycle``, its ``rng`` seeded from (seed, cycle) alone."""
    rng = np.random.default_rng(sub_seed(seed, cycle, 1))
    return SelectionContext(pool, labelled_idx, model, device, rng, batch_size, cycle)


def checkpoint_path(out_csv: str | Path) -> Path:
    out_csv = Path(out_csv)
    return out_csv.with_name(out_csv.stem + ".checkpoint.json")


class RunState:
    """What a run has so far: its rows, the pool rows it took ``[pool_idx, cycle, label]`` (label :data:`SKIP`
    where none was given) and its annotated synthetic items (arrays with a row each).

    Saved after every cycle: the synthetic items to an ``.npz`` beside the checkpoint first, then the JSON
    that counts them, so a kill between the two leaves a side file with one cycle too many, of which a resume
    takes the JSON's count.
    """

    def __init__(self, identity: dict, rows: list | None = None, taken: list | None = None,
                 synthetic: dict[str, np.ndarray] | None = None):
        self.identity, self.rows, self.taken, self.synthetic = identity, rows or [], taken or [], synthetic or {}

    @property
    def n_synthetic(self) -> int:
        return len(next(iter(self.synthetic.values()))) if self.synthetic else 0

    def taken_idx(self) -> np.ndarray:
        return np.array([i for i, _, _ in self.taken], dtype=np.int64)

    def labelled(self) -> tuple[np.ndarray, np.ndarray]:
        """The answered pool rows (L,) and their labels (L,), in labelling order."""
        answered = [(i, label) for i, _, label in self.taken if label != SKIP]
        return np.array([i for i, _ in answered], np.int64), np.array([label for _, label in answered], np.int64)

    @property
    def n_annotated(self) -> int:
        return sum(label != SKIP for _, _, label in self.taken) + self.n_synthetic

    @property
    def finished(self) -> bool:
        """The last cycle trains and evaluates, and selects nothing."""
        return bool(self.rows) and np.isnan(self.rows[-1]["select_seconds"])

    def record(self, selection: Selection, answer: Answer, cycle: int) -> None:
        self.taken += [[int(i), cycle, int(label)] for i, label in zip(selection.pool_idx, answer.labels)]
        self.taken += [[int(i), cycle, SKIP] for i in selection.anchors]
        if answer.synthetic:
            self.synthetic = {key: np.concatenate([self.synthetic[key], rows]) if self.synthetic else rows
                              for key, rows in answer.synthetic.items()}

    def save(self, out_csv: Path) -> None:
        ckpt = checkpoint_path(out_csv)
        if self.synthetic:
            save_npz(ckpt.with_suffix(".npz"), {**self.synthetic, "identity": np.array(json.dumps(self.identity))})
        write_json(ckpt, {"identity": self.identity, "rows": self.rows, "taken": self.taken,
                          "n_synthetic": self.n_synthetic})

    @classmethod
    def resume(cls, out_csv: Path, identity: dict) -> RunState | None:
        """The checkpoint of ``out_csv`` if it exists, parses and was written for ``identity``; else None,
        with a warning that says why, so the caller starts afresh."""
        ckpt = checkpoint_path(out_csv)
        if not ckpt.exists():
            return None
        try:
            state = json.loads(ckpt.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("ignoring unreadable checkpoint %s (%s); starting afresh", ckpt, exc)
            return None
        if state.get("identity") != identity:
            log.warning("checkpoint %s belongs to another config, strategy, seed or pool; starting afresh", ckpt)
            return None
        synthetic, n = {}, state["n_synthetic"]
        if n:
            try:
                with np.load(ckpt.with_suffix(".npz"), allow_pickle=False) as fh:
                    if json.loads(str(fh["identity"])) != identity:
                        raise ValueError("of another run")
                    synthetic = {key: fh[key][:n] for key in fh.files if key != "identity"}
                if any(len(rows) < n for rows in synthetic.values()):
                    raise ValueError(f"fewer than {n} items")
            except (OSError, KeyError, ValueError) as exc:
                log.warning("the synthetic items of checkpoint %s are unusable (%s); starting afresh", ckpt, exc)
                return None
        log.info("resuming %s from cycle %d", ckpt, len(state["rows"]))
        return cls(identity, state["rows"], state["taken"], synthetic)

    def finish(self, out_csv: Path, out_indices: Path, outputs: dict[str, Path], extras: dict) -> pd.DataFrame:
        """Write the rows, the indices and each extra output (the synthetic items with ``extras`` and the run's
        identity as JSON); remove the checkpoint."""
        rows = pd.DataFrame(self.rows, columns=ROW_COLUMNS)
        indices = pd.DataFrame(np.array(self.taken, dtype=np.int64).reshape(-1, 3)[:, [0, 2, 1]], columns=INDEX_COLUMNS)
        for path in outputs.values():
            save_npz(path, {**self.synthetic, **extras, "identity": np.array(json.dumps(self.identity))},
                     compressed=True)
        for frame, path in ((rows, out_csv), (indices, out_indices)):
            with atomic_path(path) as tmp:
                frame.to_csv(tmp, index=False)
        ckpt = checkpoint_path(out_csv)
        ckpt.unlink(missing_ok=True)
        ckpt.with_suffix(".npz").unlink(missing_ok=True)
        return rows


def check_run(pool: ImageStore, test: ImageStore, strategy: Strategy, settings: RunSettings,
              outputs: dict[str, Path]) -> None:
    """What the data and the outputs must be for this run (the config's own rules are checked before)."""
    if strategy.spec.binary_only and pool.n_classes != 2:
        raise BadConfig(f"strategy {strategy.name} is for binary experiments only, but {pool.path} has "
                        f"{pool.n_classes} classes ({pool.class_names})")
    if pool.class_names != test.class_names:
        raise BadConfig(f"{pool.path} and {test.path} have different classes")
    if strategy.labels_pool and not strategy.whole_pool and settings.al.budget > len(pool):
        raise BadConfig(f"al.budget = {settings.al.budget} is larger than the pool ({len(pool)} samples in {pool.path})")
    if set(outputs) != set(strategy.spec.outputs):
        raise BadConfig(f"strategy {strategy.name!r} writes " + (", ".join(f"--{kind}" for kind in strategy.spec.outputs)
                        or "no extra outputs") + f", but was given {', '.join(f'--{k}' for k in outputs) or 'none'}")


def run_active_learning(
    pool: ImageStore, test: ImageStore, *, strategy: Strategy, seed: int, settings: RunSettings,
    out_csv: str | Path, out_indices: str | Path, device: torch.device, outputs: dict[str, str | Path] | None = None,
    annotator: Annotator | None = None, score_batch_size: int = INFERENCE_BATCH, name: str | None = None,
) -> pd.DataFrame:
    """Run one AL experiment; write its per-cycle CSV, its indices and its extra outputs; return the rows.

    ``strategy`` comes from :func:`asal.strategies.base.load_strategy`; ``annotator`` answers pool rows
    (default: the pool store's labels, a simulation). The CSV has the columns :data:`asal.runfiles.ROW_COLUMNS`
    (a strategy's diagnostics it does not report are NaN); ``n_labelled`` counts annotations (answered pool
    rows plus annotated synthetic items). ``out_indices`` gets a row per pool sample taken
    (:data:`asal.runfiles.INDEX_COLUMNS`). ``outputs`` maps each extra output the strategy's registry entry
    declares (``synthetic``, ``lines``) to its path: an ``.npz`` of the annotated synthetic items. The fully
    supervised bound (``strategy.whole_pool``) annotates the whole pool at once and trains once. ``name``: the
    run's ``strategy`` in its rows (default the strategy's name; a labelling session's marks the person).
    """
    outputs = {kind: Path(path) for kind, path in (outputs or {}).items()}
    check_run(pool, test, strategy, settings, outputs)
    learner = strategy.learner(settings, pool, test, device)
    annotator = strategy.annotator(annotator or DatasetLabels(pool))
    identity = {
        "strategy": strategy.name, "strategy_files": strategy.identity(), "learner": learner.identity(),
        "annotator": annotator.identity(), "seed": seed, "settings": settings.digest(), "pool": pool.config_hash,
        "test": test.config_hash, "device": device.type,  # reproducible on one kind of device, not across kinds
        **({"name": name} if name else {}),
    }
    out_csv = Path(out_csv)
    state = RunState.resume(out_csv, identity)
    if state is None:
        state = RunState(identity)
        first = np.arange(len(pool)) if strategy.whole_pool else initial_labelled(len(pool), settings.al.initial, seed)
        start = Selection(first)
        state.record(start, annotator.annotate(start), 0)
    started, first_cycle = time.perf_counter(), len(state.rows)
    while not state.finished:
        row = run_cycle(state, strategy, learner, annotator, pool, settings, seed=seed, device=device,
                        batch_size=score_batch_size, name=name or strategy.name)
        state.save(out_csv)
        per_cycle = (time.perf_counter() - started) / (len(state.rows) - first_cycle)
        log.info("%s seed %d cycle %d: %d labelled, accuracy %.4f, train %.1fs, select %.2fs; %.1fs/cycle, ETA %.0fs",
                 strategy.name, seed, row["cycle"] + 1, row["n_labelled"], row["test_accuracy"], row["train_seconds"],
                 row["select_seconds"], per_cycle, per_cycle * cycles_left(state, strategy, settings))
    return state.finish(out_csv, Path(out_indices), outputs, strategy.output_extras(pool, settings))


def cycles_left(state: RunState, strategy: Strategy, settings: RunSettings) -> int:
    """The cycles still to run if the annotator answers every query: the selecting ones and the last."""
    if state.finished:
        return 0
    left = -(-(settings.al.budget - state.n_annotated) // settings.al.new)
    cap = max_selections(strategy, settings)
    return 1 + (left if cap is None else min(left, cap - len(state.rows)))


def max_selections(strategy: Strategy, settings: RunSettings) -> int | None:
    """How many cycles may select before the budget: ``scan.max_cycles`` for a strategy that declares the
    ``scan`` section (the pool scans), else no limit."""
    return settings.scan.max_cycles if "scan" in strategy.spec.sections else None


def run_cycle(state: RunState, strategy: Strategy, learner: Learner, annotator: Annotator, pool: ImageStore,
              settings: RunSettings, *, seed: int, device: torch.device, batch_size: int, name: str) -> dict:
    """One cycle: train, evaluate, and unless the budget (or ``scan.max_cycles``) is reached, select and annotate;
    its row (``strategy`` = ``name``) is appended."""
    cycle = len(state.rows)
    reads = (pool.images.rows_read, pool.images.read_seconds) if pool.on_disk else None
    labelled_idx, labels = state.labelled()
    if len(labelled_idx) + state.n_synthetic == 0:
        raise PoolExhausted(f"cycle {cycle} of {strategy.name} seed {seed} has nothing to train on: the annotator "
                            "skipped every sample so far (raise al.initial, or answer some)")
    t0 = time.perf_counter()
    model = learner.fit(labelled_idx, labels, state.synthetic, seed=sub_seed(seed, cycle, 0))
    row = dict.fromkeys(ROW_COLUMNS, float("nan"))
    row.update(strategy=name, seed=seed, cycle=cycle, n_labelled=state.n_annotated,
               train_seconds=time.perf_counter() - t0, n_selected=0)
    annotator.trained(model, learner, row)
    n_new = 0 if strategy.whole_pool else min(settings.al.new, settings.al.budget - state.n_annotated)
    cap = max_selections(strategy, settings)
    if cap is not None and cycle >= cap and n_new > 0:
        n_new = 0
        log.info("%s seed %d: stopping after %d selections (scan.max_cycles) at %d labelled", strategy.name, seed,
                 cap, state.n_annotated)
    elif strategy.labels_pool:  # skipped samples are never offered again, so the pool may run out first
        n_new = min(n_new, len(pool) - len(state.taken))
        if n_new == 0 and state.n_annotated < settings.al.budget:
            log.warning("%s seed %d: every pool sample is labelled or skipped before the budget of %d; stopping at %d",
                        strategy.name, seed, settings.al.budget, state.n_annotated)
    if n_new > 0:
        ctx = cycle_context(pool, state.taken_idx(), model, seed=seed, cycle=cycle, device=device, batch_size=batch_size)
        t0 = time.perf_counter()
        selection = strategy.select(ctx, n_new)
        row["select_seconds"] = time.perf_counter() - t0
        # The test set is scored while the annotator answers: a person takes minutes, and the batch is not
        # kept waiting for a figure only the run's rows need (it lands in the row as soon as it is known, for a
        # page to show). The same model, so the same accuracy.
        def score_test_set() -> None:
            row["test_accuracy"] = learner.accuracy(model)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="evaluate") as executor:
            scored = executor.submit(score_test_set)
            answer = annotator.annotate(selection)
            scored.result()
        unknown = (set(selection.stats) | set(answer.stats)) - set(ROW_COLUMNS)
        if unknown:
            log.warning("diagnostics %s are not columns of a run file (asal.runfiles.DIAGNOSTICS): not kept",
                        sorted(unknown))
        row.update(selection.stats, **answer.stats, n_selected=answer.n_annotated,
                   selected_entropy=learner.selected_entropy(model, selection))
        state.record(selection, answer, cycle + 1)
    else:
        row["test_accuracy"] = learner.accuracy(model)
    if reads is not None:
        row.update(pool_rows_read=pool.images.rows_read - reads[0], read_seconds=pool.images.read_seconds - reads[1])
    state.rows.append(row)
    return row

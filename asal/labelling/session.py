"""A labelling session: the one AL loop (:func:`asal.loop.run_active_learning`) with a person as the annotator.

The loop runs unchanged in a worker thread. When it asks :class:`Person` to annotate a batch, the batch is
published to the session and the worker waits; the web page (or a script through the JSON API) answers the
items one by one, each answer written to the :class:`~asal.labelling.journal.Journal` before the request
returns. When the last item is answered the worker wakes, and the loop records the batch, checkpoints, trains
the classifier and selects the next batch, which the page picks up without a reload.

Killed at any moment, a session restarts where it was: the loop resumes from its checkpoint (the last finished
cycle), trains and selects again (deterministic given the seed and the labels), and the batch's answers come
back from the journal. What the session writes at its end is what ``asal run-al`` writes: the run's CSV and
indices, so ``asal summarize`` and the figures show a person's session beside simulated strategies.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..annotators import SKIP, Annotator, Answer
from ..data import ImageStore, read_split
from ..data.store import read_sources
from ..errors import BadData
from ..images import quantise
from ..loop import checkpoint_path, run_active_learning
from ..settings import RunSettings

log = logging.getLogger(__name__)

#: What a session's rows call their strategy: the strategy's name, marked as a person's.
PERSON = "{strategy} (person)"


class LabelError(Exception):
    """A request the session refuses, with the HTTP status that says why (400 bad, 404 unknown, 409 conflict)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class SessionClosed(Exception):
    """The session was closed while the loop waited for answers: the worker thread ends, nothing is lost."""


@dataclass
class Batch:
    """The batch on the page. ``number``: 0 for the initial set, k for the one selected in cycle k-1 (the
    ``cycle`` of the run's indices). ``pool_idx`` (n,) int64 in the strategy's order; ``synthetic`` (n, C, H, W)
    uint8, the generated image behind each (ASAL's) or None; ``suggestions`` (n, K) class probabilities of
    the cycle's model, None for the initial set."""

    number: int
    pool_idx: np.ndarray
    synthetic: np.ndarray | None
    suggestions: np.ndarray | None


class Person(Annotator):
    """A person answers the pool rows of each selection in the labelling page: ``annotate`` blocks until the
    session has an answer (a class, or skipped) for every row."""

    def __init__(self, session: LabellingSession):
        self.session = session

    def annotate(self, selection) -> Answer:
        return self.session.ask(selection)

    def trained(self, model, learner, row: dict) -> None:
        self.session.trained(model, learner, row)

    def identity(self) -> dict:
        return {"annotator": "person"}


def png(image: np.ndarray) -> bytes:
    """PNG bytes of one (C, H, W) uint8 image (C = 1 or 3)."""
    pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


class LabellingSession:
    """One person's session of ``strategy`` and ``seed`` on ``pool``: its state, its batch and its answers.

    ``out_csv``/``out_indices``/``outputs``: what the loop writes at the end (as ``run-al``); ``journal``: the
    answers file. ``experiment``: shown in the header. ``gan_samples``: the GAN's sample grid, shown where it
    exists. Thread-safe: the web app's threads and the loop's worker share it under one condition variable.
    """

    def __init__(self, pool: ImageStore, test: ImageStore, *, strategy, settings: RunSettings, seed: int, device,
                 out_csv: str | Path, out_indices: str | Path, journal, outputs: dict | None = None,
                 experiment: str = "", gan_samples: str | Path | None = None, score_batch_size: int | None = None):
        self.pool, self.test, self.strategy, self.settings, self.seed, self.device = pool, test, strategy, settings, seed, device
        self.out_csv, self.out_indices, self.outputs = Path(out_csv), Path(out_indices), outputs or {}
        self.journal, self.experiment, self.score_batch_size = journal, experiment, score_batch_size
        self.gan_samples = Path(gan_samples) if gan_samples and Path(gan_samples).exists() else None
        self.name = PERSON.format(strategy=strategy.name)
        # The page reads images through its own handle, so its reads do not count as the run's pool I/O.
        self.view = read_split(pool.path, in_memory=False) if pool.on_disk else pool
        self.sources = read_sources(pool.path)
        self.classes = [str(name) for name in pool.class_names]  # the page and the API name classes by strings
        self.lock = threading.Condition()
        self.batch: Batch | None = None
        self.status, self.phase, self.since, self.error = "training", "starting", time.time(), None
        self.model = self.learner = None
        self.next_number = 0
        self.closed = False
        self.history = self._history()
        self.worker: threading.Thread | None = None

    def _history(self) -> list[dict]:
        """The rows so far: the finished run's, or its checkpoint's (a restart shows the last accuracy at once)."""
        if self.out_csv.exists():
            self.status, self.phase = "done", "done"
            return pd.read_csv(self.out_csv).to_dict("records")
        ckpt = checkpoint_path(self.out_csv)
        if ckpt.exists():
            try:
                return json.loads(ckpt.read_text())["rows"]
            except (OSError, json.JSONDecodeError, KeyError):
                return []  # the loop warns and starts afresh
        return []

    # The loop's side (the worker thread).

    def start(self) -> None:
        """Run the loop in a worker thread (unless the session has ended already)."""
        if self.status == "done":
            log.info("%s exists: the session has ended (delete it and %s to start again)", self.out_csv,
                     self.journal.path)
            return
        self.worker = threading.Thread(target=self._run, name="asal-loop", daemon=True)
        self.worker.start()

    def _run(self) -> None:
        try:
            run_active_learning(self.pool, self.test, strategy=self.strategy, seed=self.seed, settings=self.settings,
                                out_csv=self.out_csv, out_indices=self.out_indices, device=self.device,
                                outputs=self.outputs, annotator=Person(self), name=self.name,
                                **({"score_batch_size": self.score_batch_size} if self.score_batch_size else {}))
        except SessionClosed:
            return
        except Exception as exc:  # the page shows it; the log has the traceback
            log.exception("the labelling session failed")
            with self.lock:
                self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
                self.lock.notify_all()
            return
        with self.lock:
            self.status, self.phase, self.batch = "done", "done", None
            self.lock.notify_all()
        log.info("session ended: wrote %s and %s", self.out_csv, self.out_indices)

    def trained(self, model, learner, row: dict) -> None:
        with self.lock:
            self.model, self.learner = model, learner
            self.history.append(row)  # the loop's own row: its test accuracy comes while the batch is answered
            self.next_number = int(row["cycle"]) + 1
            self.phase, self.since = "selecting the next batch", time.time()

    def ask(self, selection) -> Answer:
        """Publish ``selection`` as the next batch and wait until every row has an answer in the journal."""
        pool_idx = np.asarray(selection.pool_idx, dtype=np.int64)
        if len(pool_idx) == 0:
            return Answer(np.zeros(0, np.int64))
        suggestions = None if self.model is None else self.learner.predict_proba(self.model, pool_idx)
        synthetic = None
        if selection.generated is not None and len(selection.generated) == len(pool_idx):
            synthetic = quantise(selection.generated.detach())
        with self.lock:
            number = self.next_number
            stray = set(self.journal.answers.get(number, {})) - set(pool_idx.tolist())
            if stray:
                raise BadData(f"{self.journal.path}: batch {number} has answers for pool rows {sorted(stray)[:5]} "
                              "that the strategy does not select now: the journal belongs to another config, "
                              "strategy or seed (move it away to start afresh)")
            self.batch = Batch(number, pool_idx, synthetic, suggestions)
            if not self._complete():
                self.status, self.phase, self.since = "labelling", "labelling", time.time()
                self.lock.notify_all()
            while not self._complete():
                if self.closed:
                    raise SessionClosed
                self.lock.wait()
            answers = self.journal.answers[number]
            self.status, self.phase, self.since = "training", "training the classifier", time.time()
        return Answer(np.array([SKIP if answers[i] is None else answers[i] for i in pool_idx.tolist()], np.int64))

    def _complete(self) -> bool:
        answers = self.journal.answers.get(self.batch.number, {})
        return all(i in answers for i in self.batch.pool_idx.tolist())

    def close(self, timeout: float = 10.0) -> None:
        """Stop waiting for answers and end the worker (a training in progress finishes first, up to
        ``timeout`` s); the journal has every answer already."""
        with self.lock:
            self.closed = True
            self.lock.notify_all()
        if self.worker is not None:
            self.worker.join(timeout)
        self.journal.close()

    # The page's side (the web app's threads).

    def state(self) -> dict:
        with self.lock:
            given = [label for batch in self.journal.answers.values() for label in batch.values()]
            counts = np.bincount([label for label in given if label is not None], minlength=len(self.classes))
            scored = [row for row in self.history if not math.isnan(row["test_accuracy"])]
            batch = self.batch
            return {
                "experiment": self.experiment, "strategy": self.strategy.name, "seed": self.seed,
                "status": self.status, "phase": self.phase, "seconds": round(time.time() - self.since, 1),
                "cycle": None if batch is None else batch.number, "n_labelled": int(counts.sum()),
                "n_skipped": sum(label is None for label in given), "budget": self.settings.al.budget,
                "classes": self.classes, "class_counts": dict(zip(self.classes, counts.tolist())),
                "accuracy": float(scored[-1]["test_accuracy"]) if scored else None,
                "accuracy_history": [[int(row["n_labelled"]), float(row["test_accuracy"])] for row in scored],
                "last_train_seconds": float(self.history[-1]["train_seconds"]) if self.history else None,
                "batch_size": 0 if batch is None else len(batch.pool_idx),
                "n_answered": 0 if batch is None else len(self.journal.answers.get(batch.number, {})),
                "has_test_set": len(self.test) > 0, "error": self.error, "gan_samples": self.gan_samples is not None,
                "outputs": {"runs": str(self.out_csv), "indices": str(self.out_indices)} if self.status == "done" else None,
            }

    def source(self, pool_index: int) -> str:
        """Where a pool row came from: its file under ``data.path``, or its row in the pool store."""
        return self.sources[pool_index] if self.sources is not None else f"{self.pool.path}#{pool_index}"

    def items(self, image_url=lambda i: f"/api/image/{i}", synthetic_url=lambda b, k: f"/api/synthetic/{b}/{k}") -> list:
        """The current batch's items, in the strategy's order (call under the lock)."""
        batch = self.batch
        answers = self.journal.answers.get(batch.number, {})
        items = []
        for k, i in enumerate(batch.pool_idx.tolist()):
            item = {"pool_index": i, "source": self.source(i), "image": image_url(i),
                    "synthetic": None if batch.synthetic is None else synthetic_url(batch.number, k),
                    "suggestion": None, "confidence": None, "answered": i in answers,
                    "label": None if answers.get(i) is None else self.classes[answers[i]]}
            if batch.suggestions is not None:
                top = int(batch.suggestions[k].argmax())
                item.update(suggestion=self.classes[top], confidence=round(float(batch.suggestions[k, top]), 4))
            items.append(item)
        return items

    def current_batch(self, **urls) -> dict:
        with self.lock:
            if self.batch is None:
                return {"cycle": None, "status": self.status, "items": []}
            return {"cycle": self.batch.number, "status": self.status, "items": self.items(**urls)}

    def _open_batch(self) -> Batch:
        if self.status != "labelling" or self.batch is None:
            raise LabelError(409, f"no batch is open for answers (status: {self.status}); wait for the next batch")
        return self.batch

    def _class_id(self, label) -> int | None:
        if label is None:
            return None
        if not isinstance(label, str) or label not in self.classes:
            raise LabelError(400, f"unknown class {label!r}: one of {self.classes}, or null to skip")
        return self.classes.index(label)

    def _check_item(self, batch: Batch, pool_index) -> int:
        if isinstance(pool_index, bool) or not isinstance(pool_index, int):
            raise LabelError(400, f"pool_index must be an integer, not {pool_index!r}")
        if pool_index not in batch.pool_idx.tolist():
            raise LabelError(400, f"pool_index {pool_index} is not in the current batch (batch {batch.number})")
        answered = self.journal.answers.get(batch.number, {})
        if pool_index in answered:
            given = answered[pool_index]
            raise LabelError(409, f"pool_index {pool_index} is answered already (as "
                                  f"{'skipped' if given is None else repr(self.classes[given])}); undo it first")
        return pool_index

    def label(self, pool_index, label) -> dict:
        """Answer one item of the open batch: ``label`` a class name, or None to skip it."""
        return self.label_many([(pool_index, label)])

    def label_many(self, answers: list[tuple]) -> dict:
        """Answer several items at once, all or nothing (a Label Studio import)."""
        with self.lock:
            batch = self._open_batch()
            events, seen = [], set()
            for pool_index, label in answers:
                index = self._check_item(batch, pool_index)
                if index in seen:
                    raise LabelError(400, f"pool_index {index} is answered twice in one request")
                seen.add(index)
                events.append({"op": "label", "batch": batch.number, "pool_index": index, "label": self._class_id(label)})
            self.journal.write(events)
            if self._complete():
                self.status, self.phase, self.since = "training", "training the classifier", time.time()
            self.lock.notify_all()
            return {"answered": len(events), "status": self.status}

    def undo(self) -> dict:
        """Take back the last answer of the open batch (a finished batch is the loop's already)."""
        with self.lock:
            batch = self._open_batch()
            answers = self.journal.answers.get(batch.number, {})
            if not answers:
                raise LabelError(409, f"nothing to undo in batch {batch.number}")
            last = next(reversed(answers))
            self.journal.write([{"op": "undo", "batch": batch.number, "pool_index": last}])
            return {"pool_index": last}

    def image(self, pool_index: int) -> bytes:
        if not 0 <= pool_index < len(self.pool):
            raise LabelError(404, f"no pool row {pool_index} (the pool has {len(self.pool)})")
        return png(self.view.images[pool_index])

    def synthetic_image(self, number: int, k: int) -> bytes:
        with self.lock:
            batch = self.batch
            if batch is None or batch.number != number or batch.synthetic is None or not 0 <= k < len(batch.synthetic):
                raise LabelError(404, f"no synthetic image {k} in batch {number}")
            return png(batch.synthetic[k])

    def export_csv(self) -> str:
        """Every answer so far: ``source, pool_index, label, cycle`` (label empty where skipped)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["source", "pool_index", "label", "cycle"])
        with self.lock:
            for number, answers in sorted(self.journal.answers.items()):
                for i, label in answers.items():
                    writer.writerow([self.source(i), i, "" if label is None else self.classes[label], number])
        return out.getvalue()

    def export_labelstudio(self, image_url) -> list[dict]:
        """The open batch as Label Studio tasks (``data.image``, ``data.pool_index``), with the model's
        suggestion as a prediction of a ``Choices`` control named ``label`` on an ``Image`` named ``image``."""
        with self.lock:
            batch = self._open_batch()
            tasks = []
            for item in self.items(image_url=image_url):
                task = {"data": {"image": item["image"], "pool_index": item["pool_index"], "source": item["source"],
                                 "batch": batch.number}}
                if item["suggestion"] is not None:
                    task["predictions"] = [{"model_version": f"{self.strategy.name} cycle {batch.number - 1}",
                                            "score": item["confidence"], "result": [choice(item["suggestion"])]}]
                tasks.append(task)
            return tasks

    def import_labelstudio(self, tasks) -> dict:
        """Answers from a Label Studio JSON export of the open batch: each task's latest annotation (a
        cancelled one skips the item); tasks without one are left for later. All or nothing."""
        if not isinstance(tasks, list):
            raise LabelError(400, "a Label Studio JSON export is a list of tasks")
        answers = []
        for n, task in enumerate(tasks):
            try:
                pool_index = task["data"]["pool_index"]
                annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
            except (KeyError, TypeError):
                raise LabelError(400, f"task {n} has no data.pool_index (export the tasks asal made)") from None
            if not annotations:
                continue
            latest = annotations[-1]
            if latest.get("was_cancelled"):
                answers.append((pool_index, None))
                continue
            chosen = [c for result in latest.get("result") or [] if isinstance(result, dict)
                      for c in (result.get("value") or {}).get("choices") or []]
            if len(chosen) != 1:
                raise LabelError(400, f"task {n} (pool_index {pool_index}): expected one chosen class, got {chosen}")
            answers.append((pool_index, chosen[0]))
        if not answers:
            raise LabelError(400, "no task of the export has an annotation")
        return self.label_many(answers)


def choice(label: str) -> dict:
    """A Label Studio ``Choices`` result of the control ``label`` on the image ``image``."""
    return {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}

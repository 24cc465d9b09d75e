"""The journal of a labelling session: every answer a person gives, appended to a JSON-lines file and flushed
to disk before the page hears that it was taken.

The journal, not the run's checkpoint, is where a person's work lives: the loop checkpoints after each
cycle, and a batch is answered over minutes. A restart replays the journal, and the loop, resumed from its
checkpoint, selects the same batch again (selection is deterministic given the seed and the labels); the
batch's answers come back from the journal. One line per event::

    {"op": "label", "batch": 3, "pool_index": 1234, "label": 7}     # a class id; null: skipped (unsure)
    {"op": "undo", "batch": 3, "pool_index": 1234}                   # takes that batch's answer back

A line cut short by a kill (the last, without its newline) is ignored on replay and overwritten.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..errors import BadData

log = logging.getLogger(__name__)


class Journal:
    """Append-only answers of one session, replayed into ``answers``: batch -> {pool_index: class id or None}
    in answering order (None: skipped)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.answers: dict[int, dict[int, int | None]] = {}
        if self.path.exists():
            self._replay()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")

    def _replay(self) -> None:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) < len(data):
            log.warning("%s: ignoring a last line cut short (%d bytes) by a kill", self.path, len(data) - len(complete))
            with open(self.path, "r+b") as fh:
                fh.truncate(len(complete))
        for number, line in enumerate(complete.decode("utf-8").splitlines(), 1):
            try:
                event = json.loads(line)
                self._apply(event["op"], int(event["batch"]), int(event["pool_index"]), event.get("label"))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise BadData(f"{self.path}, line {number}: not a journal event ({exc}): {line[:200]!r}") from None
        log.info("%s: replayed %d answers", self.path, sum(map(len, self.answers.values())))

    def _apply(self, op: str, batch: int, pool_index: int, label: int | None) -> None:
        answers = self.answers.setdefault(batch, {})
        if op == "label":
            answers[pool_index] = None if label is None else int(label)
        elif op == "undo":
            answers.pop(pool_index, None)
        else:
            raise ValueError(f"unknown op {op!r}")

    def write(self, events: list[dict]) -> None:
        """Append ``events`` (each ``op``, ``batch``, ``pool_index`` and for a label ``label``), flushed and
        synced to disk, then apply them."""
        self._fh.write("".join(json.dumps(event, separators=(",", ":")) + "\n" for event in events))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        for event in events:
            self._apply(event["op"], event["batch"], event["pool_index"], event.get("label"))

    def close(self) -> None:
        self._fh.close()

"""Progress of a long pass over the pool, in the log: done of total, the rate and the time left."""

from __future__ import annotations

import logging
import time


class Progress:
    """Logs ``what`` to ``log`` at most every ``every`` seconds, and when ``total`` is reached if the pass took
    that long (a short pass logs nothing).

    ``step(n)`` adds ``n`` done items.
    """

    def __init__(self, log: logging.Logger, what: str, total: int, every: float = 30.0):
        self.log, self.what, self.total, self.every, self.done = log, what, total, every, 0
        self.started = self.last = time.perf_counter()

    def step(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every or (self.done >= self.total and now - self.started >= self.every):
            rate = self.done / max(now - self.started, 1e-9)
            self.log.info("%s: %d / %d, %.0f/s, ETA %.0f s", self.what, self.done, self.total, rate,
                          (self.total - self.done) / rate)
            self.last = now

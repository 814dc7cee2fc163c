"""The training clock: one training run's operations run in ``seq_id`` order, on ticks.

The SDK numbers a training client's requests and may send them out of order (forward/backward
chunks go in parallel), so the service must not run them as they arrive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Sequencer:
    """Runs one training model's operations in ``seq_id`` order, optionally on a clock.

    A job waits until every lower ``seq_id`` has run. With ``cycle > 0`` the jobs that are
    ready wait for the next tick of a ``cycle``-second clock and then run together, which is
    how the real service's shared workers behave.
    """

    def __init__(self, name: str, cycle: float, epoch: float, stopping: threading.Event) -> None:
        self._cond = threading.Condition()
        self._pending: dict[int, Callable[[], None]] = {}
        self._next = 1  # seq 0 is the model's creation
        self._cycle = cycle
        self._epoch = epoch
        self._stopping = stopping
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"fake-tinker-{name}", daemon=True)
        self._thread.start()

    def submit(self, seq_id: int, job: Callable[[], None]) -> bool:
        """Queue a job; False if that ``seq_id`` already ran or is queued (a retried request)."""
        with self._cond:
            if seq_id < self._next or seq_id in self._pending:
                return False
            self._pending[seq_id] = job
            self._cond.notify()
            return True

    def close(self) -> None:
        """Stop the loop (queued jobs are dropped) and join its thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and self._next not in self._pending:
                    self._cond.wait()
                if self._closed:
                    return
            if self._cycle > 0:
                elapsed = time.monotonic() - self._epoch
                tick = (int(elapsed / self._cycle) + 1) * self._cycle
                if self._stopping.wait(tick - elapsed):
                    return
            batch: list[Callable[[], None]] = []
            with self._cond:
                while self._next in self._pending:
                    batch.append(self._pending.pop(self._next))
                    self._next += 1
            for job in batch:
                job()

"""Redact and hash report batches in a separate process, so a long report never holds the server's GIL.

Redacting 5 MiB of pathological text takes seconds of CPU; run on a thread of
the process that serves ``/healthz`` and acks Slack, twenty such reports at
once made every other thread wait for the GIL (``/healthz`` p99 1 to 1.8 s).
:class:`RedactionPool` runs :func:`~tools.reports.intake.prepared_rows` in one
``spawn``ed worker process (started on first use) and hands the rows back; the
caller's thread only waits. The database work stays in the caller, so the
exactly-once insert and the per-report rejections are unchanged.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any

from tools.reports.intake import IncomingReport, prepared_rows

DEFAULT_WORKERS = 1  # two cores per replica: one redacts, the other serves requests


class RedactionPool:
    """A lazily started pool of worker processes that prepare report rows; replaced if a worker dies."""

    def __init__(self, workers: int = DEFAULT_WORKERS) -> None:
        self._workers = workers
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None

    def prepared_rows(self, batch: list[IncomingReport], source: str, arrived: datetime) -> list[dict[str, Any]]:
        """What :func:`~tools.reports.intake.prepared_rows` returns, computed in a worker process.

        A worker that died (killed for memory) is replaced and the batch tried
        once more on the new one: nothing was stored, so trying again is safe.
        """
        executor = self._started()
        try:
            return executor.submit(prepared_rows, batch, source, arrived).result()
        except BrokenProcessPool:
            self._forget(executor)
            return self._started().submit(prepared_rows, batch, source, arrived).result()

    def shutdown(self) -> None:
        """Finish the batches already handed over, then stop the workers (a later batch starts new ones)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _started(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                context = multiprocessing.get_context("spawn")  # fork would copy the server's threads and locks
                self._executor = ProcessPoolExecutor(max_workers=self._workers, mp_context=context)
            return self._executor

    def _forget(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
        executor.shutdown(wait=False)

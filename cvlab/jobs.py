"""Background jobs of this process (trainings, exports), one registry per kind, over ``concurrent.futures``.

A job is keyed by the id of its Azure status row (an iteration, an export): the row stays the source of truth
for its state (``Training`` / ``Exporting`` -> ``Completed`` / ``Done`` / ``Failed``); the registry only knows
which of them this process is still running (what ``recover_interrupted`` must not mark as interrupted), holds
each job's cancel flag and lets a caller wait for it. A job may hold its row's lease (``Workspace.job_lease``),
released when it ends, however it ends: other processes (``cvlab doctor``) then tell a running row from a stuck
one. Jobs run in daemon threads, as before: a stopped process abandons them (the OS drops their leases) and the
next start-up marks their rows Failed.

>>> exports = Jobs("export")
>>> exports.submit("job-1", lambda: 42).result(timeout=5)
42
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, TimeoutError as FutureTimeout
from typing import Any, Callable


class Jobs:
    """The running jobs of one kind: ``submit`` (a background thread), ``run`` (in the caller), ``cancel``,
    ``wait``, ``running``."""

    def __init__(self, kind: str):
        self.kind = kind
        self._lock = threading.Lock()
        self._futures: dict[str, Future] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._leases: dict[str, Any] = {}

    def register(self, job_id: str, lease: Any = None) -> threading.Event:
        """Count ``job_id`` as running from now on (before its thread starts); returns its cancel flag. ``lease``
        (anything with ``release()``) is released when the job ends."""
        with self._lock:
            self._futures[job_id] = Future()
            if lease is not None:
                self._leases[job_id] = lease
            return self._cancel.setdefault(job_id, threading.Event())

    def _finish(self, job_id: str) -> None:
        with self._lock:
            self._futures.pop(job_id, None)
            self._cancel.pop(job_id, None)
            lease = self._leases.pop(job_id, None)
        if lease is not None:
            lease.release()

    def _call(self, job_id: str, future: Future, fn: Callable[[], Any]) -> None:
        if not future.set_running_or_notify_cancel():
            self._finish(job_id)
            return
        try:
            result = fn()
        except BaseException as exc:  # noqa: BLE001 - kept on the future; the job's row says why it failed
            self._finish(job_id)
            future.set_exception(exc)
        else:
            self._finish(job_id)
            future.set_result(result)

    def submit(self, job_id: str, fn: Callable[[], Any]) -> Future:
        """Run ``fn`` in a daemon thread; the future holds its result (or exception)."""
        if job_id not in self._futures:
            self.register(job_id)
        future = self._futures[job_id]
        threading.Thread(target=self._call, args=(job_id, future, fn), daemon=True,
                         name=f"cvlab-{self.kind}-{job_id[:8]}").start()
        return future

    def run(self, job_id: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` now, in the caller's thread, counted as running meanwhile."""
        if job_id not in self._futures:
            self.register(job_id)
        future = self._futures[job_id]
        self._call(job_id, future, fn)
        return future.result()

    def cancel(self, job_id: str) -> bool:
        """Ask a running job to stop (it polls its flag); False when this process does not run it."""
        with self._lock:
            event = self._cancel.get(job_id)
        if event is None:
            return False
        event.set()
        return True

    def wait(self, job_id: str, timeout: float | None = None) -> Any:
        """The job's result once it ends (None when it is not running here, still runs after ``timeout``, or
        failed: its status row says why)."""
        with self._lock:
            future = self._futures.get(job_id)
        if future is None:
            return None
        try:
            return future.result(timeout)
        except FutureTimeout:
            return None
        except Exception:  # noqa: BLE001 - the job wrote its failure to its row
            return None

    def running(self) -> list[str]:
        """Ids of the jobs this process is running now."""
        with self._lock:
            return [job_id for job_id, f in self._futures.items() if not f.done()]

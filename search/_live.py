"""The report kept current while a search runs.

``LiveReport`` wraps the run's progress sink: after every ``every_trials`` finished trials,
or ``every_seconds`` after the last refresh (checked at each trial's and epoch's end), it asks
a background thread to rewrite the report. The thread renders from the database
(``reports.write_report``, atomic: a reader never sees half a page) with ``live`` set, so
the page says the study is running and reloads itself; requests that arrive while it
renders are folded into one. The training runs in worker processes, so a refresh costs the
search only the parent's time to render. At the end of the run the thread is stopped and
the run writes the final report (no reload), as before.

A refresh that fails (a full disk, the file made read-only) leaves the previous page and is
said once on the progress display; the search goes on.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from search._progress import ProgressSink
from search._storage import redact

DEFAULT_EVERY_TRIALS = 10
DEFAULT_EVERY_SECONDS = 30.0


class LiveReport(ProgressSink):
    """A progress sink that forwards everything to ``inner`` and refreshes the report."""

    def __init__(
        self,
        inner: ProgressSink,
        *,
        url: str,
        study: str,
        path: Path,
        every_trials: int = DEFAULT_EVERY_TRIALS,
        every_seconds: float = DEFAULT_EVERY_SECONDS,
    ) -> None:
        self.inner = inner
        self.url = url
        self.study = study
        self.path = path
        self.every_trials = every_trials
        self.every_seconds = every_seconds
        self.refreshes = 0
        self._since = 0
        self._last = time.monotonic()
        self._wanted = False
        self._stopping = False
        self._failed = False
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None

    # -- the progress protocol: forward, and decide when to refresh ----------------------
    def search_started(
        self,
        study: str,
        target: int,
        done: int,
        best: float | None,
        objective: str,
        workers: int = 1,
    ) -> None:
        self.inner.search_started(study, target, done, best, objective, workers)
        self._last = time.monotonic()

    def trial_started(self, number: int, worker: int = 0) -> None:
        self.inner.trial_started(number, worker=worker)

    def epoch_ended(
        self, number: int, epoch: int, epochs: int, value: float | None, worker: int = 0
    ) -> None:
        self.inner.epoch_ended(number, epoch, epochs, value, worker=worker)
        if self._due(trial_ended=False):
            self.request()

    def trial_ended(
        self,
        number: int,
        state: str,
        value: float | None,
        done: int,
        best: float | None,
        reason: str,
        worker: int = 0,
    ) -> None:
        self.inner.trial_ended(number, state, value, done, best, reason, worker=worker)
        self._since += 1
        if self._due(trial_ended=True):
            self.request()

    def note(self, message: str, worker: int = 0) -> None:
        self.inner.note(message, worker=worker)

    def search_ended(self) -> None:
        self.stop()
        self.inner.search_ended()

    # -- refreshing ----------------------------------------------------------------------
    def _due(self, *, trial_ended: bool) -> bool:
        if trial_ended and self.every_trials and self._since >= self.every_trials:
            return True
        elapsed = time.monotonic() - self._last
        return bool(self.every_seconds) and elapsed >= self.every_seconds

    def request(self) -> None:
        """Ask for a refresh (folded into one already waiting)."""
        self._since = 0
        self._last = time.monotonic()
        with self._lock:
            if self._stopping:
                return
            self._wanted = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="hpsearch-live-report", daemon=True
                )
                self._thread.start()
            self._lock.notify()

    def stop(self, timeout: float = 60.0) -> None:
        """Let a refresh under way finish, and start no other."""
        with self._lock:
            self._stopping = True
            self._wanted = False
            self._lock.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._wanted and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                self._wanted = False
            self._refresh()

    def _refresh(self) -> None:
        from reports import write_report

        try:
            write_report(self.url, self.study, self.path, live=max(self.every_seconds, 5.0))
            self.refreshes += 1
        except Exception as exc:  # the search matters more than its live page
            if not self._failed:
                self._failed = True
                why = redact(str(exc), self.url)
                self.inner.note(f"the live report was not refreshed ({why}); the search goes on")

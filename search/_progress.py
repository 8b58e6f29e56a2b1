"""Progress of a search, on stderr: a live bar on a terminal, one line per trial otherwise.

Engines talk to a ProgressSink only; stdout is left for data. With several workers, each
worker process sends its calls to the pool (``search._worker.PipeProgress``), which passes
them on to one display with ``worker`` set to the worker's slot.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ProgressSink:
    """What an engine tells about a running search. This base says nothing (``--quiet``);
    displays override what they show. ``worker`` is the slot of the worker process that
    tells it (0 for the first or only one)."""

    def search_started(
        self,
        study: str,
        target: int,
        done: int,
        best: float | None,
        objective: str,
        workers: int = 1,
    ) -> None:
        pass

    def trial_started(self, number: int, worker: int = 0) -> None:
        pass

    def epoch_ended(
        self, number: int, epoch: int, epochs: int, value: float | None, worker: int = 0
    ) -> None:
        pass

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
        pass

    def note(self, message: str, worker: int = 0) -> None:
        """Something a person should know (a worker died, recycled, the worker count)."""

    def search_ended(self) -> None:
        pass


NullProgress = ProgressSink


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


class RichProgress(ProgressSink):
    """Trials done/target, each worker's current trial and epoch, the best value so far,
    elapsed, ETA; a line per finished trial."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(file=sys.stderr)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._workers: dict[int, TaskID] = {}
        self._rows = Progress()
        self._live: Live | None = None
        self._n_workers = 1
        self._objective = "val_loss"
        self._target = 0
        self._best: float | None = None
        self._started = time.monotonic()

    def search_started(
        self,
        study: str,
        target: int,
        done: int,
        best: float | None,
        objective: str,
        workers: int = 1,
    ) -> None:
        self._objective, self._target, self._best = objective, target, best
        self._n_workers = workers
        self._started = time.monotonic()
        on = f" on {workers} workers" if workers > 1 else ""
        self.console.print(
            f"study [bold]{study}[/]: {done}/{target} finished trials, best {objective} "
            f"{_fmt(best)}{on if done < target else ''}",
            markup=True,
            highlight=False,
            soft_wrap=True,  # one line per event in a log file, never cut at 80 columns
        )
        if not self.console.is_terminal or done >= target:
            return
        self._progress = Progress(
            TextColumn("trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[epoch]}"),
            TextColumn("{task.fields[best]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._task = self._progress.add_task(
            "trials", total=target, completed=done, epoch="", best=f"best {objective} {_fmt(best)}"
        )
        # One line per worker under the bar: its trial and epoch.
        self._rows = Progress(TextColumn("  {task.description}: {task.fields[epoch]}"))
        self._live = Live(Group(self._progress, self._rows), console=self.console, transient=True)
        self._live.start()

    def _worker_row(self, worker: int, text: str) -> None:
        if self._progress is None:
            return
        if self._n_workers == 1 and self._task is not None:
            self._progress.update(self._task, epoch=text)
            return
        if worker not in self._workers:
            self._workers[worker] = self._rows.add_task(f"worker {worker}", epoch="")
        self._rows.update(self._workers[worker], epoch=text or "-")

    def trial_started(self, number: int, worker: int = 0) -> None:
        self._worker_row(worker, f"trial {number} starting")

    def epoch_ended(
        self, number: int, epoch: int, epochs: int, value: float | None, worker: int = 0
    ) -> None:
        self._worker_row(worker, f"trial {number} epoch {epoch + 1}/{epochs} {_fmt(value)}")

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
        self._best = best
        elapsed = time.monotonic() - self._started
        detail = f"{self._objective} {_fmt(value)}" if state == "COMPLETE" else state.lower()
        if state == "FAIL" and reason:
            detail += f": {reason}"
        who = f"worker {worker} " if self._n_workers > 1 else ""
        self.console.print(
            f"{who}trial {number} {detail} | {done}/{self._target} done | best {_fmt(best)} | "
            f"{elapsed:.0f}s",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        self._worker_row(worker, "")
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task,
                completed=min(done, self._target),
                best=f"best {self._objective} {_fmt(best)}",
            )

    def note(self, message: str, worker: int = 0) -> None:
        self.console.print(message, markup=False, highlight=False, soft_wrap=True)

    def search_ended(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._progress = None

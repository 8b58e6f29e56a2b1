"""Progress of a search, on stderr: a live bar on a terminal, one line per trial otherwise.

Engines talk to a ProgressSink only; stdout is left for data.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
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
    displays override what they show."""

    def search_started(
        self, study: str, target: int, done: int, best: float | None, objective: str
    ) -> None:
        pass

    def trial_started(self, number: int) -> None:
        pass

    def epoch_ended(self, number: int, epoch: int, epochs: int, value: float | None) -> None:
        pass

    def trial_ended(
        self,
        number: int,
        state: str,
        value: float | None,
        done: int,
        best: float | None,
        reason: str,
    ) -> None:
        pass

    def search_ended(self) -> None:
        pass


NullProgress = ProgressSink


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


class RichProgress(ProgressSink):
    """Trials done/target, the current trial's epoch, the best value so far, elapsed, ETA."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(file=sys.stderr)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._objective = "val_loss"
        self._target = 0
        self._best: float | None = None
        self._started = time.monotonic()

    def search_started(
        self, study: str, target: int, done: int, best: float | None, objective: str
    ) -> None:
        self._objective, self._target, self._best = objective, target, best
        self._started = time.monotonic()
        self.console.print(
            f"study [bold]{study}[/]: {done}/{target} finished trials, best {objective} "
            f"{_fmt(best)}",
            markup=True,
            highlight=False,
        )
        if not self.console.is_terminal or done >= target:
            return
        self._progress = Progress(
            TextColumn("trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[epoch]}"),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._task = self._progress.add_task(
            "search", total=target, completed=done, epoch="", best=f"{objective} {_fmt(best)}"
        )
        self._progress.start()

    def trial_started(self, number: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, epoch=f"trial {number} starting")

    def epoch_ended(self, number: int, epoch: int, epochs: int, value: float | None) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, epoch=f"trial {number} epoch {epoch + 1}/{epochs} {_fmt(value)}"
            )

    def trial_ended(
        self,
        number: int,
        state: str,
        value: float | None,
        done: int,
        best: float | None,
        reason: str,
    ) -> None:
        self._best = best
        elapsed = time.monotonic() - self._started
        detail = f"{self._objective} {_fmt(value)}" if state == "COMPLETE" else state.lower()
        if state == "FAIL" and reason:
            detail += f": {reason}"
        self.console.print(
            f"trial {number} {detail} | {done}/{self._target} done | best {_fmt(best)} | "
            f"{elapsed:.0f}s",
            markup=False,
            highlight=False,
        )
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, completed=done, best=f"{self._objective} {_fmt(best)}", epoch=""
            )

    def search_ended(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

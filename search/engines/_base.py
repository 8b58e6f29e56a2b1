"""The Engine contract: what every search engine guarantees, in one worker process.

An engine drives the trials of one study that already exists in an Optuna RDB storage
(``search.run`` creates it and stores its StudySettings). Any number of worker processes,
on any number of machines, may run ``optimize`` on the same study at once. Whatever decides
the next point (Optuna's samplers today, KerasTuner's oracles later), every engine:

- claims each trial under the study's lock (``search._storage.exclusive``): counts the
  finished and running trials against the stored target and creates a trial only when the
  study still needs one, so the study ends with exactly its target however many workers;
- draws each new point from a stream seeded by the study's seed and the trial's number
  (distinct for concurrent workers, the same for a seeded single worker);
- records the trial's heartbeat while it trains;

- trains each trial with ``search._training.fit_trial``, so early stopping, NaN checks and
  the per-epoch history are the same for all engines;
- stores every trial in the study as the trial record of docs/architecture.md: params with
  their distributions, the objective as value, the objective per epoch as intermediate
  values, and the user attributes (history after every epoch, best epoch, epochs run,
  early-stopped/pruned, parameter count, duration, engine, worker, failure reason);
- treats the database as the only source of truth: it resumes from the stored trials, fails
  trials whose worker died (``search._storage.fail_dead_trials``) and retries them once,
  and never repeats a finished trial;
- returns when the study holds its target of finished (COMPLETE + PRUNED) trials
  ("target"), or when ``limits`` say so ("timeout", or "recycle" so that a fresh process
  continues); raises SearchAborted after ``max_failures`` of its trials failed in a row
  (a failed trial alone never stops the search), StorageError when the database stays
  lost, KeyboardInterrupt (after failing its trial as "interrupted") once
  ``stop_requested`` is set (Ctrl-C/SIGTERM) or on a KeyboardInterrupt;
- reports progress only through the ProgressSink it is given (nothing on stdout).
"""

from __future__ import annotations

import abc
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from optuna.storages import RDBStorage
    from optuna.trial import FrozenTrial

    from search._data import Dataset
    from search._progress import ProgressSink
    from search._settings import StudySettings


@dataclass(frozen=True)
class SearchResult:
    """How a call to ``optimize`` ended."""

    study: str
    target: int
    finished: int
    counts: dict[str, int]
    best_number: int | None
    best_value: float | None
    best_params: dict[str, Any] = field(default_factory=dict)
    stopped: str = "target"  # "target" | "timeout" | "already" | "workers"
    report: str | None = None


@dataclass(frozen=True)
class WorkerLimits:
    """When a worker process stops claiming trials (other than the study's target)."""

    deadline: float | None = None  # time.time() after which no trial starts ("timeout")
    max_trials: int = 0  # trials after which a fresh process continues (0: never)
    max_rss_mib: float = 0.0  # resident memory past which it does too (0: never)
    parent_pid: int | None = None  # stop when this parent is gone ("orphaned")

    def stop_reason(self, trials_run: int) -> str | None:
        if self.deadline is not None and time.time() >= self.deadline:
            return "timeout"
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            return "orphaned"
        if self.max_trials and trials_run >= self.max_trials:
            return "recycle"
        if self.max_rss_mib and trials_run and rss_mib() >= self.max_rss_mib:
            return "recycle"
        return None


def rss_mib() -> float:
    """This process's resident memory in MiB (Linux; 0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except OSError:
        return 0.0
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


# Set by Ctrl-C or SIGTERM in a worker process (``search._worker``). The engine stops at the
# next batch or epoch end, before a claim, or while it waits: from its own code, never from
# inside a signal handler, so the database is never left half-changed.
stop_requested = threading.Event()


def request_stop(signum: int = 0, frame: object = None) -> None:
    """A signal handler: ask the engine of this process to stop (KeyboardInterrupt)."""
    stop_requested.set()


def check_stop() -> None:
    """Raise KeyboardInterrupt if a stop was requested."""
    if stop_requested.is_set():
        raise KeyboardInterrupt


def count_states(trials: list[FrozenTrial]) -> dict[str, int]:
    """Trials by state name."""
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


def finished_count(counts: dict[str, int]) -> int:
    """COMPLETE + PRUNED: the trials that count towards the target."""
    return counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)


class Engine(abc.ABC):
    """A search engine; see the module docstring for the contract."""

    name: ClassVar[str]

    @abc.abstractmethod
    def optimize(
        self,
        settings: StudySettings,
        dataset: Dataset,
        storage: RDBStorage,
        *,
        url: str,
        limits: WorkerLimits,
        progress: ProgressSink,
    ) -> str:
        """Run trials of ``settings.study`` in this process until the study holds its
        target of finished trials or ``limits`` stop it; returns why it stopped."""

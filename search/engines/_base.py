"""The engine contract: what every search engine guarantees, in one worker process.

An engine drives the trials of one study that already exists in an Optuna RDB storage
(``search.run`` creates it and stores its StudySettings). Any number of worker processes,
on any number of machines, may run the same study at once. The loop that does so is written
once (``search.engines._lifecycle``); an engine supplies only a ``Proposer``: how the next
point is proposed (Optuna's samplers and pruners, KerasTuner's oracles). Whatever the
proposer, every trial:

- is claimed under the study's lock (``search._storage.exclusive``): the finished and running
  trials are counted against the stored target and a trial is created only when the study
  still needs one, so the study ends with exactly its target however many workers;
- gets a point of its own (concurrent workers never draw the same point by accident; a seeded
  single worker draws the same points every time, also across a resume);
- records its heartbeat while it trains;
- trains with ``search._training.fit_trial``, so early stopping, NaN checks and the per-epoch
  history are the same for all engines;
- is stored as the trial record (``search._records.TrialRecord``): params with their
  distributions, the objective as value, the objective per epoch as intermediate values,
  the record's user attributes (one row per epoch while it runs, the whole history at the
  end), its engine and worker, and its failure reason;
- treats the database as the only source of truth: the proposer learns every result from
  the stored trials, trials whose worker died are failed
  (``search._storage.fail_dead_trials``) and retried once, a finished trial is never
  repeated;

and the loop returns when the study holds its target of finished (COMPLETE + PRUNED)
trials ("target"), or when ``limits`` say so ("timeout", or "recycle" so that a fresh
process continues); raises SearchAborted after ``max_failures`` of its trials failed in a
row (a failed trial alone never stops the search), StorageError when the database stays
lost, KeyboardInterrupt (after failing its trial as "interrupted") once ``stop_requested``
is set (Ctrl-C/SIGTERM) or on a KeyboardInterrupt; and reports progress only through the
ProgressSink it is given (nothing on stdout).
"""

from __future__ import annotations

import abc
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

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
    finished_now: int = 0  # of ``finished``, the trials that finished during this call


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


def points_proposed(trials: list[FrozenTrial]) -> int:
    """How many points the study's proposer has made: its trials less the retries (a retry
    repeats its attempt's point). The next point's index, which seeds its proposal and its
    training, so a search that was stopped and resumed gives the points, in the same order
    and trained with the same seeds, that it would have given uninterrupted."""
    return sum(1 for trial in trials if "failed_trial" not in trial.system_attrs)


def point_index(trials: list[FrozenTrial], number: int) -> int:
    """The index of the point trial ``number`` trains (a retry: its attempt's)."""
    by_number = {trial.number: trial for trial in trials}
    trial = by_number.get(number)
    while trial is not None and "failed_trial" in trial.system_attrs:
        number = int(trial.system_attrs["failed_trial"])
        trial = by_number.get(number)
    return points_proposed([t for t in trials if t.number < number])


def finished_count(counts: dict[str, int]) -> int:
    """COMPLETE + PRUNED: the trials that count towards the target."""
    return counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)


# A proposer's answer when no point can be proposed until a running trial ends (e.g. a
# Hyperband round that waits for its trials): the worker looks again shortly.
WAIT = "wait"


@dataclass(frozen=True)
class Proposal:
    """A point chosen by the proposer: the trial is created holding these params (with the
    space's distributions) and user attributes, in one write."""

    params: dict[str, Any]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialPlan:
    """How a claimed trial trains: its params, its epoch budget, the engine's own callbacks."""

    params: dict[str, Any]
    epochs: int
    callbacks: tuple[Any, ...] = ()


class Proposer(abc.ABC):
    """What an engine supplies to the one lifecycle (the shape of Vizier's Designer:
    suggest, and learn the results). The results are learnt from the database: every call
    to ``suggest`` sees all stored trials, whichever worker ran them."""

    def __init__(self, settings: StudySettings) -> None:
        self.settings = settings

    def open(self, study: optuna.Study) -> None:  # noqa: B027 - optional hook
        """Once per worker, before the first claim (e.g. set the study's pruner)."""

    @abc.abstractmethod
    def suggest(self, study: optuna.Study, trials: list[FrozenTrial]) -> Proposal | str | None:
        """Under the study's lock, before the trial numbered ``len(trials)`` is created:
        a Proposal, WAIT, or None when ``study.ask()`` draws the point itself (a sampler
        set on the study)."""

    def repeat(self, study: optuna.Study, index: int) -> None:  # noqa: B027 - optional hook
        """Under the study's lock, before a queued retry of point ``index`` is claimed: a
        retry whose attempt died before it drew its point draws it now, as that attempt
        would have (e.g. a sampler seeded for ``index``)."""

    @abc.abstractmethod
    def plan(self, trial: optuna.Trial) -> TrialPlan:
        """The claimed trial's params (suggested through ``trial``), epochs and callbacks."""

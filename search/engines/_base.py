"""The Engine contract: what every search engine guarantees.

An engine drives the trials of one study that already exists in an Optuna RDB storage
(``search.run`` creates it and stores its StudySettings). Whatever decides the next point
(Optuna's samplers today, KerasTuner's oracles later), every engine:

- trains each trial with ``search._training.fit_trial``, so early stopping, NaN checks and
  the per-epoch history are the same for all engines;
- stores every trial in the study as the trial record of docs/architecture.md: params with
  their distributions, the objective as value, the objective per epoch as intermediate
  values, and the user attributes (history after every epoch, best epoch, epochs run,
  early-stopped/pruned, parameter count, duration, engine, worker, failure reason);
- treats the database as the only source of truth: it resumes from the stored trials, fails
  trials whose worker died (``search._storage.fail_dead_trials``) and retries them once,
  and never repeats a finished trial;
- stops when the study holds ``target`` finished (COMPLETE + PRUNED) trials, when
  ``timeout`` seconds have passed, or (raising SearchAborted) after ``max_failures``
  failed trials in a row; a failed trial alone never stops the search;
- reports progress only through the ProgressSink it is given (nothing on stdout).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from optuna.storages import RDBStorage

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
    stopped: str = "target"  # "target" | "timeout" | "already"
    report: str | None = None


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
        target: int,
        timeout: float | None,
        progress: ProgressSink,
    ) -> SearchResult:
        """Run trials of ``settings.study`` until it holds ``target`` finished trials."""

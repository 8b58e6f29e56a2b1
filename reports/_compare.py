"""Several studies of the same data side by side: which engine or setting found the better
model for the same budget.

``compare`` reads each study once and returns plain records (tested on their numbers);
``render_comparison`` draws them into one self-contained HTML page. The budget axes are the
trials ended so far and the epochs trained so far (every ended trial counts, pruned and
failed ones included: they cost their epochs too), in the order the trials ended.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from optuna.trial import FrozenTrial, TrialState

from reports._analysis import use_log_axis
from reports._frame import STATES, rank_trials, record_of
from reports._plots import DPI, _png, plain_text
from reports._study import LoadedStudy, StorageLike, load
from reports._summary import summary_from_loaded
from search._errors import ConfigError

_ENDED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class StudyBudget:
    """One study of a comparison: how far it got, and at what cost."""

    study: str
    engine: str
    algorithm: str
    counts: dict[str, int]
    best_value: float | None
    best_number: int | None
    best_params: dict[str, Any] | None
    trials_ended: int
    epochs_spent: int
    compute_s: float
    trials_to_best: int | None  # trials ended when the best value was first reached
    epochs_to_best: int | None  # epochs trained by then
    # (trials ended, epochs trained, best value so far) after each ended trial
    progress: list[tuple[int, int, float | None]] = field(repr=False)
    best_curve: list[float] = field(repr=False)  # the best trial's objective per epoch


@dataclass(frozen=True)
class Comparison:
    """The studies compared, on one data set and objective."""

    data: str
    objective: str
    direction: str
    studies: list[StudyBudget]

    def table(self) -> pd.DataFrame:
        """One row per study, in the order given."""
        rows = []
        for s in self.studies:
            rows.append(
                {
                    "study": s.study,
                    "engine": s.engine,
                    "algorithm": s.algorithm,
                    "best": s.best_value,
                    "best_trial": s.best_number,
                    "trials": s.trials_ended,
                    **{state.lower(): s.counts.get(state, 0) for state in STATES[:3]},
                    "epochs": s.epochs_spent,
                    "compute_s": round(s.compute_s, 1),
                    "trials_to_best": s.trials_to_best,
                    "epochs_to_best": s.epochs_to_best,
                }
            )
        return pd.DataFrame(rows)

    def to_json(self) -> dict[str, Any]:
        """The comparison as JSON-safe data (the budget curves included)."""
        return {
            "data": self.data,
            "objective": self.objective,
            "direction": self.direction,
            "studies": [asdict(s) for s in self.studies],
        }


def compare(storage: StorageLike, names: Sequence[str]) -> Comparison:
    """Read the studies ``names`` and compare them.

    Raises:
        StudyNotFound: one of them does not exist (the message lists the studies there).
        ConfigError: a name is given twice, or the studies searched different data or
            objectives (their best values would not be comparable).
    """
    if isinstance(names, str):  # one name, not the letters of one
        raise ConfigError(
            f"compare: expected a list of study names; got the text {names!r} (give "
            f"[{names!r}] for one study)."
        )
    if not names:
        raise ConfigError("compare: give at least one study name.")
    twice = sorted({n for n in names if list(names).count(n) > 1})
    if twice:
        raise ConfigError(f"compare: study {twice[0]!r} is given twice; give each study once.")
    # Of each study: every trial's epochs and duration, and the best one's history.
    loaded = [load(storage, name, _best_in_full, light=_LIGHT) for name in names]
    first = loaded[0]
    for other in loaded[1:]:
        _check_comparable(first, other)
    data = first.settings.get("data")
    source = str(data.get("source")) if isinstance(data, dict) else "?"
    return Comparison(
        data=source,
        objective=first.objective,
        direction=first.direction,
        studies=[_budget(study) for study in loaded],
    )


_LIGHT = ("epochs_run", "duration_s")


def _best_in_full(
    rows: list[tuple[int, str, float | None]], direction: str
) -> tuple[list[int], list[int]]:
    """What ``compare`` reads in full (``reports._read``): the best trial alone."""
    ranks = rank_trials(rows, direction)
    return [n for n, rank in ranks.items() if rank == 1], []


def _check_comparable(a: LoadedStudy, b: LoadedStudy) -> None:
    def data(study: LoadedStudy) -> tuple[str, str | None]:
        described = study.settings.get("data")
        if not isinstance(described, dict):
            return "?", None
        return str(described.get("source")), described.get("fingerprint")

    (a_source, a_print), (b_source, b_print) = data(a), data(b)
    if a_print and b_print and a_print != b_print:
        searched = f"searched {a_source} and study {b.name!r} searched {b_source}"
        if a_source == b_source:  # the same source, split or read otherwise: say how
            a_data, b_data = a.settings["data"], b.settings["data"]
            keys = ("target", "task", "val_split", "test_split", "num_words")
            differ = [k for k in keys if a_data.get(k) != b_data.get(k)]
            if differ:
                searched = (
                    f"searched {a_source} with "
                    + ", ".join(f"{k} {a_data.get(k)}" for k in differ)
                    + f" and study {b.name!r} with "
                    + ", ".join(f"{k} {b_data.get(k)}" for k in differ)
                )
        raise ConfigError(
            f"compare: study {a.name!r} {searched}: other data (fingerprints {a_print} and "
            f"{b_print}), so their best values say nothing about each other; compare studies "
            "of the same data."
        )
    if (a.objective, a.direction) != (b.objective, b.direction):
        raise ConfigError(
            f"compare: study {a.name!r} optimises {a.objective} ({a.direction}) and study "
            f"{b.name!r} {b.objective} ({b.direction}); compare studies of one objective."
        )


def _budget(study: LoadedStudy) -> StudyBudget:
    summary = summary_from_loaded(study)
    better = min if study.direction == "minimize" else max
    ended = sorted(
        (t for t in study.trials if t.state in _ENDED),
        key=lambda t: (t.datetime_complete or dt.datetime.max, t.number),
    )
    progress: list[tuple[int, int, float | None]] = []
    best: float | None = None
    epochs = 0
    compute = 0.0
    to_best: tuple[int, int] | None = None
    for count, trial in enumerate(ended, start=1):
        record = record_of(trial)
        epochs += record.epochs_run or 0
        compute += record.duration_s or _wall(trial)
        value = trial.value if trial.state == TrialState.COMPLETE else None
        if value is None or not math.isfinite(value):
            value = best
        if value is not None and (best is None or better(best, value) != best):
            best = value
            to_best = (count, epochs)
        progress.append((count, epochs, best))
    curve: list[float] = []
    if summary.best_number is not None:
        best_trial = next(t for t in study.trials if t.number == summary.best_number)
        curve = record_of(best_trial).history.get(study.objective, [])
    return StudyBudget(
        study=study.name,
        engine=summary.engine,
        algorithm=summary.algorithm,
        counts=summary.counts,
        best_value=summary.best_value,
        best_number=summary.best_number,
        best_params=summary.best_params,
        trials_ended=len(ended),
        epochs_spent=epochs,
        compute_s=compute,
        trials_to_best=None if to_best is None else to_best[0],
        epochs_to_best=None if to_best is None else to_best[1],
        progress=progress,
        best_curve=list(curve),
    )


def _wall(trial: FrozenTrial) -> float:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


@plain_text()
def plot_comparison(comparison: Comparison) -> bytes:
    """Three panels: the best value against trials ended and against epochs trained, and
    the best trial's objective per epoch, one line per study. PNG bytes."""
    figure = Figure(figsize=(11.0, 3.4), dpi=DPI)
    figure.subplots_adjust(left=0.06, right=0.99, bottom=0.16, top=0.9, wspace=0.28)
    by_trials, by_epochs, curves = figure.subplots(1, 3)
    everything: list[float] = []
    for index, study in enumerate(comparison.studies):
        color = f"C{index % 10}"
        label = f"{study.study} ({study.engine}: {study.algorithm})"
        points = [(n, e, b) for n, e, b in study.progress if b is not None]
        if points:
            by_trials.step([p[0] for p in points], [p[2] for p in points], where="post",
                           color=color, label=label)  # fmt: skip
            by_epochs.step([p[1] for p in points], [p[2] for p in points], where="post",
                           color=color, label=label)  # fmt: skip
            everything += [float(p[2]) for p in points if p[2] is not None]
        if study.best_curve:
            curves.plot(range(len(study.best_curve)), study.best_curve, color=color, marker=".",
                        label=f"{study.study}: trial {study.best_number}")  # fmt: skip
            everything += study.best_curve
    titles = (
        (by_trials, "best so far, by trials ended", "trials ended"),
        (by_epochs, "best so far, by epochs trained", "epochs trained (all trials)"),
        (curves, "each study's best trial", "epoch"),
    )
    log = use_log_axis(everything)
    for ax, title, xlabel in titles:
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(comparison.objective, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(True, linewidth=0.4, alpha=0.5)
        if log:
            ax.set_yscale("log")
    for ax in (by_trials, curves):
        if ax.get_legend_handles_labels()[0]:  # a study with no completed trial draws none
            ax.legend(fontsize=7, frameon=False)
    return _png(figure)

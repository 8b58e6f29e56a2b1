"""What mattered: parameter importance and per-parameter plots, through Optuna's own code.

The importance is Optuna's (``optuna.importance``): fANOVA (a random forest over every
completed trial's value) for studies of up to ``FANOVA_MAX_TRIALS`` completed trials, where
it is quick and uses every value; beyond that PED-ANOVA, Optuna's default evaluator (how the
best tenth of the trials differ from all of them), because fANOVA took 10 s on 1,000 trials
and minutes on 10,000 here.
The plots are ``optuna.visualization.matplotlib``'s: the objective against each param (log
axis where the space is log, one column per choice of a categorical param) and parallel
coordinates of the best trials. Both read the trials already read (``StudyView``), so they
never touch the database.
"""

from __future__ import annotations

import contextlib
import copy
import io
import random
import warnings
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from reports._analysis import DRAWABLE

FANOVA_MAX_TRIALS = 200
"""fANOVA for studies with at most this many completed trials, PED-ANOVA beyond."""
SLICE_MAX_TRIALS = 500
"""The per-param plots draw at most this many trials: the best quarter of them and the rest
at random (seeded), and the page says so."""
IMPORTANCE_MAX_TRIALS = 2000
"""The importance of a larger study is computed on this many completed trials drawn at random
(seeded; the page says so): on 10,000 trials it came out the same to two decimals, in a
seventh of the time."""
PARALLEL_TOP = 20
"""Parallel coordinates show this many best trials."""
DPI = 72


@dataclass(frozen=True)
class Importance:
    """Importance per param (summing to 1, largest first) and how it was computed."""

    evaluator: str
    values: dict[str, float]
    n_trials: int
    left_out: list[str] = field(default_factory=list)  # conditional params (not in all trials)
    of: int = 0  # the completed trials there were, when n_trials of them were drawn


def completed(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The COMPLETE trials with a finite value and at least one param. A value near the
    largest float (1e308, written by hand) counts as infinite: the variance fANOVA takes of
    it, and the axes Optuna's plots draw around it, overflow."""
    return [
        t
        for t in trials
        if t.state == TrialState.COMPLETE
        and t.values is not None
        and len(t.values) == 1
        and abs(t.values[0]) < DRAWABLE
        and t.params
    ]


class StudyView(optuna.Study):
    """The completed trials, read-only, as Optuna's importance evaluators and plots read a
    study: ``get_trials``, ``direction(s)``, ``metric_names``, ``_is_multi_objective``.

    Copying thousands of trials into an in-memory ``optuna.Study`` took seconds (each is
    validated and deep-copied); this hands Optuna the trials already read.
    A subclass only because Optuna's plots check ``isinstance(study, Study)``; nothing of
    ``Study.__init__`` (a storage) is made.
    """

    def __init__(self, trials: Sequence[FrozenTrial], direction: str) -> None:
        self._trials = list(trials)
        if len({t._trial_id for t in self._trials}) < len(self._trials):
            # Optuna tells trials apart by id (PED-ANOVA does); made ones all have -1.
            self._trials = [copy.copy(t) for t in self._trials]
            for index, trial in enumerate(self._trials):
                trial._trial_id = index
        self._direction = (
            StudyDirection.MAXIMIZE if direction == "maximize" else StudyDirection.MINIMIZE
        )

    @property
    def direction(self) -> StudyDirection:
        return self._direction

    @property
    def directions(self) -> list[StudyDirection]:
        return [self._direction]

    @property
    def metric_names(self) -> list[str] | None:
        return None

    def _is_multi_objective(self) -> bool:
        return False

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        trials = self._trials
        if states is not None:
            trials = [t for t in trials if t.state in states]
        return [copy.deepcopy(t) for t in trials] if deepcopy else list(trials)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


def _best_first(trials: Sequence[FrozenTrial], direction: str) -> list[FrozenTrial]:
    """Completed trials by value in ``direction``, ties by number (as the ranking)."""
    sign = -1.0 if direction == "maximize" else 1.0
    return sorted(trials, key=lambda t: (sign * t.values[0], t.number))


def sample(trials: Sequence[FrozenTrial], direction: str, limit: int) -> list[FrozenTrial]:
    """At most ``limit`` trials: the best quarter of ``limit`` and the rest at random."""
    if len(trials) <= limit:
        return list(trials)
    ranked = _best_first(trials, direction)
    best = ranked[: limit // 4]
    rest = random.Random(0).sample(ranked[limit // 4 :], limit - len(best))
    return sorted(best + rest, key=lambda t: t.number)


def _varying(trials: Sequence[FrozenTrial]) -> list[str]:
    """Params present in every trial that take more than one value."""
    common = set.intersection(*(set(t.params) for t in trials)) if trials else set()
    return sorted(p for p in common if len({repr(t.params[p]) for t in trials}) > 1)


def param_importances(trials: Sequence[FrozenTrial], direction: str) -> Importance | None:
    """Optuna's importance of each param for the objective; None with fewer than 3 completed
    trials or no param that varies across all of them."""
    done = completed(trials)
    names = _varying(done)
    if len(done) < 3 or not names:
        return None
    if len(done) <= FANOVA_MAX_TRIALS:
        evaluator: Any = optuna.importance.FanovaImportanceEvaluator(seed=0)
        label = "fANOVA (Optuna's FanovaImportanceEvaluator: a random forest over every value)"
    else:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        label = (
            "PED-ANOVA (Optuna's default evaluator: the best tenth of the trials against all; "
            f"fANOVA is used up to {FANOVA_MAX_TRIALS} trials)"
        )
    every = sorted({p for t in done for p in t.params})
    drawn = done
    if len(done) > IMPORTANCE_MAX_TRIALS:
        drawn = random.Random(0).sample(done, IMPORTANCE_MAX_TRIALS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExperimentalWarning
        values = optuna.importance.get_param_importances(
            StudyView(drawn, direction), evaluator=evaluator, params=names
        )
    return Importance(
        evaluator=label,
        values={str(k): float(v) for k, v in values.items()},
        n_trials=len(drawn),
        left_out=[p for p in every if p not in names],
        of=len(done) if len(drawn) < len(done) else 0,
    )


def _png(figure: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        plt.close(figure)
    return buffer.getvalue()


@contextlib.contextmanager
def _drawing() -> Iterator[None]:
    """Optuna's plots set pyplot's style for the whole process (``ggplot``): keep that, and
    its experimental-feature warnings, inside this block, where text is drawn as written
    (``reports._plots.plain_text``)."""
    from reports._plots import plain_text

    _pyplot()
    with plain_text(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _pyplot() -> Any:
    import matplotlib

    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg")  # Optuna draws through pyplot; no screen is needed
    import matplotlib.pyplot as plt

    return plt


def plot_params(trials: Sequence[FrozenTrial], direction: str, objective: str) -> bytes | None:
    """The objective against each param (``plot_slice``), at most ``SLICE_MAX_TRIALS``
    trials; None when no completed trial has params."""
    done = completed(trials)
    if not done:
        return None
    from optuna.visualization.matplotlib import plot_slice

    study = StudyView(sample(done, direction, SLICE_MAX_TRIALS), direction)
    with _drawing():
        axes = plot_slice(study, target_name=objective)
        first = axes.flat[0] if hasattr(axes, "flat") else axes
        figure: Any = first.figure
        count = len(axes.flat) if hasattr(axes, "flat") else 1
        figure.set_size_inches(min(2.6 * count, 15), 3.0)
        figure.subplots_adjust(left=0.06, right=0.92, bottom=0.22, top=0.85, wspace=0.35)
        return _png(figure)


def plot_parallel(trials: Sequence[FrozenTrial], direction: str, objective: str) -> bytes | None:
    """Parallel coordinates of the ``PARALLEL_TOP`` best trials; None with fewer than 2."""
    done = completed(trials)
    if len(done) < 2:
        return None
    best = _best_first(done, direction)[:PARALLEL_TOP]
    from optuna.visualization.matplotlib import plot_parallel_coordinate

    study = StudyView(best, direction)
    with _drawing():
        axes = plot_parallel_coordinate(study, target_name=objective)
        figure: Any = axes.figure
        figure.set_size_inches(10, 3.6)
        return _png(figure)


def plot_importance(importance: Importance) -> bytes:
    """The importances as horizontal bars, largest on top. (Optuna's
    ``plot_param_importances`` would evaluate them a second time.)"""
    plt = _pyplot()
    names = list(importance.values)[::-1]
    values = [importance.values[n] for n in names]
    with _drawing():
        figure, ax = plt.subplots(figsize=(6.0, 0.35 * len(names) + 0.9))
        ax.barh(names, values, color="#1f77b4")
        for y, value in enumerate(values):
            ax.text(value, y, f" {value:.2f}", va="center", fontsize=8)
        ax.set_xlim(0, max([*values, 0.01]) * 1.2)
        ax.set_xlabel(f"importance for the objective ({importance.evaluator.split(' (')[0]})")
        ax.tick_params(labelsize=8)
        figure.tight_layout()
        return _png(figure)

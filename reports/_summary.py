"""One line per study: what it searches, how far it got, its best trial."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from reports._frame import STATES, rank_trials
from reports._read import study_tallies
from reports._study import (
    LoadedStudy,
    StorageLike,
    direction_names,
    load,
    missing_sqlite_file,
    open_storage,
    settings_of,
)
from search._errors import StudyNotFound
from search._storage import gone_trials
from search.engines._registry import ENGINES


@dataclass(frozen=True)
class StudySummary:
    """A study at a glance.

    ``engine`` is ``"optuna"`` and ``data``/``task`` are ``"?"`` for a study hpsearch did not
    create. ``counts`` holds every trial state (COMPLETE, PRUNED, FAIL, RUNNING, WAITING), zeros
    included. ``best_*`` are None until a trial completes (and for a multi-objective study).
    ``last_activity`` is the latest start or completion time over the trials. ``gone``: the
    RUNNING trials whose worker on this machine is gone (``search._storage.worker_gone``).
    """

    name: str
    engine: str
    algorithm: str  # the engine's options, e.g. "tpe, median" (Optuna) or "hyperband"
    data: str
    task: str
    objective: str
    direction: str
    counts: dict[str, int]
    n_trials: int
    best_value: float | None
    best_number: int | None
    best_params: dict[str, Any] | None
    last_activity: dt.datetime | None
    settings: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    gone: tuple[int, ...] = ()


def summarise(
    name: str,
    directions: Sequence[str],
    settings: dict[str, Any],
    trials: Sequence[FrozenTrial],
) -> StudySummary:
    """The summary of a study from its settings and trials (read once by the caller)."""
    counts = dict.fromkeys(STATES, 0)
    for trial in trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    best: FrozenTrial | None = None
    if len(directions) == 1:
        by_number = {t.number: t for t in trials}
        ranks = rank_trials(
            ((t.number, t.state.name, t.value if t.values else None) for t in trials),
            directions[0],
        )
        firsts = [number for number, rank in ranks.items() if rank == 1]
        best = by_number[firsts[0]] if firsts else None
    times = [
        moment
        for t in trials
        for moment in (t.datetime_start, t.datetime_complete)
        if moment is not None
    ]
    return _summary(
        name, directions, settings, counts, best, max(times, default=None), gone_trials(trials)
    )


def _summary(
    name: str,
    directions: Sequence[str],
    settings: dict[str, Any],
    counts: dict[str, int],
    best: FrozenTrial | None,
    last_activity: dt.datetime | None,
    gone: Sequence[int] = (),
) -> StudySummary:
    data = settings.get("data")
    data = data if isinstance(data, dict) else {}
    best_value = best.value if best is not None else None
    engine = str(settings.get("engine") or "optuna")
    return StudySummary(
        name=name,
        engine=engine,
        algorithm=engine_options(engine, settings),
        data=str(data.get("source") or "?"),
        task=str(data.get("task") or "?"),
        objective=str(settings.get("objective") or "value"),
        direction=", ".join(directions),
        counts={**dict.fromkeys(STATES, 0), **counts},
        n_trials=sum(counts.values()),
        best_value=best_value if best_value is None or not math.isnan(best_value) else None,
        best_number=best.number if best is not None else None,
        best_params=dict(best.params) if best is not None else None,
        last_activity=last_activity,
        settings=settings,
        gone=tuple(gone),
    )


def engine_options(engine: str, settings: Mapping[str, Any]) -> str:
    """The study's engine options as stored, e.g. ``tpe, median`` or ``bayesian``; "?" for
    a study of no known engine."""
    spec = ENGINES.get(engine)
    if spec is None:
        return "?"
    return ", ".join(str(settings[key]) for key in spec.options if settings.get(key)) or "?"


def summary_from_loaded(loaded: LoadedStudy) -> StudySummary:
    return summarise(loaded.name, loaded.directions, loaded.settings, loaded.trials)


def study_summary(storage: StorageLike, study_name: str) -> StudySummary:
    """The summary of one study.

    Raises:
        StudyNotFound: no such study; the message lists the studies there.
    """
    return summary_from_loaded(load(storage, study_name))


def list_studies(storage: StorageLike) -> list[StudySummary]:
    """Every study in the storage, in creation order.

    One storage connection. From a SQL database the counts, the best trial and the last
    activity are the database's answers (``reports._read.study_tallies``: a few queries
    whatever the studies hold); elsewhere each study's trials are read once, without copies.
    A SQLite URL whose file does not exist holds no studies (and is not created).
    """
    if missing_sqlite_file(storage) is not None:
        return []
    try:
        return _summaries(storage)
    except StudyNotFound:  # a database without study tables (it is not given them)
        return []


def _summaries(storage: StorageLike) -> list[StudySummary]:
    with open_storage(storage) as opened:
        studies = opened.get_all_studies()
        if isinstance(opened, RDBStorage):
            try:
                tallies = study_tallies(
                    opened, {s._study_id: direction_names(s.directions) for s in studies}
                )
            except SQLAlchemyError:
                tallies = None
            if tallies is not None:
                summaries = []
                for frozen in studies:
                    counts, best, last_activity = tallies[frozen._study_id]
                    running = (  # only a study's running trials, and only if it has some
                        opened.get_all_trials(
                            frozen._study_id, deepcopy=False, states=(TrialState.RUNNING,)
                        )
                        if counts.get("RUNNING")
                        else []
                    )
                    summaries.append(
                        _summary(
                            frozen.study_name,
                            direction_names(frozen.directions),
                            settings_of(frozen.user_attrs),
                            counts,
                            best,
                            last_activity,
                            gone_trials(running),
                        )
                    )
                return summaries
        summaries = []
        for frozen in studies:
            study_id = opened.get_study_id_from_name(frozen.study_name)
            trials = opened.get_all_trials(study_id, deepcopy=False)
            summaries.append(
                summarise(
                    frozen.study_name,
                    direction_names(frozen.directions),
                    settings_of(frozen.user_attrs),
                    trials,
                )
            )
        return summaries

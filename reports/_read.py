"""Reading a large study fast: a few queries over Optuna's tables, the heavy parts only for
the trials that are shown.

``optuna.load_study(...).get_trials()`` builds every trial whole: on a study of 10,000
trials of 20 epochs that took 13 s and 1 GB here, most of it spent decoding every trial's
per-epoch history (JSON) and intermediate values, though a report draws a few hundred of
them. ``load_rdb`` reads the same tables (``optuna.storages._rdb.models``: Optuna's schema,
its own SQLAlchemy tables) in one query each: trials, values, params, the light part of
each trial's record (``LIGHT_KEYS``: what the trial table shows, not the per-epoch history)
and the ``failed_trial`` mark of retries. Then, for the trials the caller
selects (``detail``: e.g. the best 500 ranked and every running trial; ``curves``: the
trials whose validation curve is drawn), it reads the heavy parts. The result is the same
``FrozenTrial`` objects Optuna builds (datetimes in local time, values and params in their
external form), each holding what was read.

A storage that is not a SQL database, or a schema these queries do not match, falls back to
Optuna's own reading (everything, as before).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from optuna.distributions import BaseDistribution, json_to_distribution
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

# The record's user attributes read for every trial (what the trial table shows); the
# others (the history, the epoch rows, the worker, ...) only for the trials selected in full.
LIGHT_KEYS = (
    "best_epoch",
    "best_metrics",
    "epochs_run",
    "max_epochs",
    "early_stopped",
    "pruned",
    "param_count",
    "duration_s",
    "fail_reason",
)
CHUNK = 500  # trial ids per IN (...) list

Select = Callable[[list[tuple[int, str, float | None]], str], tuple[Iterable[int], Iterable[int]]]
"""Given (number, state, value) of every trial and the direction, the numbers to read in full
(record and curve) and the numbers whose validation curve (intermediate values) is drawn."""


def _local(moment: dt.datetime | None) -> dt.datetime | None:
    """Optuna's naive UTC as naive local time (as ``optuna.storages.RDBStorage`` does)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC).astimezone().replace(tzinfo=None)


def load_rdb(
    storage: RDBStorage,
    study_id: int,
    select: Select | None,
    direction: str = "minimize",
    top: int | None = None,
    light: Sequence[str] = LIGHT_KEYS,
) -> list[FrozenTrial]:
    """The study's trials read as the module says; ``select`` None reads every trial in
    full; ``light``: the record's keys read for the others. ``top``: only the ``top`` best
    (``_ranked``), whole. Raises ``sqlalchemy.exc.SQLAlchemyError`` where the schema does
    not match."""
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    trials_t = models.TrialModel.__table__
    values_t = models.TrialValueModel.__table__
    users_t = models.TrialUserAttributeModel.__table__
    system_t = models.TrialSystemAttributeModel.__table__
    steps_t = models.TrialIntermediateValueModel.__table__

    ids: Any = sa.select(trials_t.c.trial_id).where(trials_t.c.study_id == study_id)
    with storage.engine.connect() as conn:
        if top is not None:
            ids = [trial_id for trial_id, _, _ in _ranked(conn, study_id, direction, top)]
            select = None
        base = conn.execute(
            sa.select(
                trials_t.c.trial_id,
                trials_t.c.number,
                trials_t.c.state,
                trials_t.c.datetime_start,
                trials_t.c.datetime_complete,
            ).where(trials_t.c.study_id == study_id, trials_t.c.trial_id.in_(ids))
        ).all()
        values: dict[int, dict[int, float]] = {}
        for trial_id, objective, value, kind in conn.execute(
            sa.select(
                values_t.c.trial_id, values_t.c.objective, values_t.c.value, values_t.c.value_type
            ).where(values_t.c.trial_id.in_(ids))
        ):
            values.setdefault(trial_id, {})[objective] = (
                models.TrialValueModel.stored_repr_to_value(value, kind)
            )
        params, dists = _params(conn, ids)
        light_rows = sa.true() if select is None else users_t.c.key.in_(light)
        user_attrs: dict[int, dict[str, Any]] = {}
        for trial_id, key, text in conn.execute(
            sa.select(users_t.c.trial_id, users_t.c.key, users_t.c.value_json).where(
                users_t.c.trial_id.in_(ids), light_rows
            )
        ):
            user_attrs.setdefault(trial_id, {})[key] = json.loads(text)
        system_attrs: dict[int, dict[str, Any]] = {}
        for trial_id, key, text in conn.execute(
            sa.select(system_t.c.trial_id, system_t.c.key, system_t.c.value_json).where(
                system_t.c.trial_id.in_(ids),
                sa.true() if select is None else system_t.c.key == "failed_trial",
            )
        ):
            system_attrs.setdefault(trial_id, {})[key] = json.loads(text)

        by_number = {number: trial_id for trial_id, number, *_ in base}
        if select is None:
            full, drawn = set(by_number.values()), set(by_number.values())
        else:
            summary = [
                (number, state.name, values.get(trial_id, {}).get(0))
                for trial_id, number, state, *_ in base
            ]
            chosen, curves = select(summary, direction)
            full = {by_number[n] for n in chosen if n in by_number}
            drawn = full | {by_number[n] for n in curves if n in by_number}
            for chunk in _chunks(sorted(full)):
                for trial_id, key, text in conn.execute(
                    sa.select(users_t.c.trial_id, users_t.c.key, users_t.c.value_json).where(
                        users_t.c.trial_id.in_(chunk),
                        users_t.c.key.not_in(light),
                    )
                ):
                    user_attrs.setdefault(trial_id, {})[key] = json.loads(text)
        steps: dict[int, dict[int, float]] = {}
        for chunk in _chunks(sorted(drawn)):
            for trial_id, step, value, kind in conn.execute(
                sa.select(
                    steps_t.c.trial_id,
                    steps_t.c.step,
                    steps_t.c.intermediate_value,
                    steps_t.c.intermediate_value_type,
                ).where(steps_t.c.trial_id.in_(chunk))
            ):
                steps.setdefault(trial_id, {})[step] = (
                    models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(
                        value, kind
                    )
                )

    trials = []
    for trial_id, number, state, started, completed in sorted(base, key=lambda row: row[1]):
        objective_values = values.get(trial_id)
        trials.append(
            FrozenTrial(
                number=number,
                state=state if isinstance(state, TrialState) else TrialState[str(state)],
                value=None,
                values=[objective_values[k] for k in sorted(objective_values)]
                if objective_values
                else None,
                datetime_start=_local(started),
                datetime_complete=_local(completed),
                params=params.get(trial_id, {}),
                distributions=dists.get(trial_id, {}),
                user_attrs=user_attrs.get(trial_id, {}),
                system_attrs=system_attrs.get(trial_id, {}),
                intermediate_values=steps.get(trial_id, {}),
                trial_id=trial_id,
            )
        )
    return trials


def _params(
    conn: Any, ids: Any
) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, BaseDistribution]]]:
    """Per trial id of ``ids`` (a list or a subquery): its params in their external form,
    and their distributions (each distinct JSON decoded once)."""
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    params_t = models.TrialParamModel.__table__
    params: dict[int, dict[str, Any]] = {}
    dists: dict[int, dict[str, BaseDistribution]] = {}
    known: dict[str, BaseDistribution] = {}
    for trial_id, name, stored, text in conn.execute(
        sa.select(
            params_t.c.trial_id,
            params_t.c.param_name,
            params_t.c.param_value,
            params_t.c.distribution_json,
        ).where(params_t.c.trial_id.in_(ids))
    ):
        dist = known.get(text)
        if dist is None:
            dist = known[text] = json_to_distribution(text)
        params.setdefault(trial_id, {})[name] = dist.to_external_repr(stored)
        dists.setdefault(trial_id, {})[name] = dist
    return params, dists


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


Tally = tuple[dict[str, int], FrozenTrial | None, dt.datetime | None]


def study_tallies(storage: RDBStorage, studies: dict[int, tuple[str, ...]]) -> dict[int, Tally]:
    """Per study id (-> its directions): trials by state, the best trial (params and value
    only; None for several objectives or none completed) and the last start or completion,
    as the database counts them: three queries, and two per study for its best trial."""
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    trials_t = models.TrialModel.__table__
    tallies: dict[int, Tally] = {}
    with storage.engine.connect() as conn:
        counts: dict[int, dict[str, int]] = {study_id: {} for study_id in studies}
        for study_id, state, n in conn.execute(
            sa.select(trials_t.c.study_id, trials_t.c.state, sa.func.count()).group_by(
                trials_t.c.study_id, trials_t.c.state
            )
        ):
            name = state.name if isinstance(state, TrialState) else str(state)
            counts.setdefault(study_id, {})[name] = int(n)
        last: dict[int, dt.datetime | None] = {}
        for study_id, started, completed in conn.execute(
            sa.select(
                trials_t.c.study_id,
                sa.func.max(trials_t.c.datetime_start),
                sa.func.max(trials_t.c.datetime_complete),
            ).group_by(trials_t.c.study_id)
        ):
            last[study_id] = _local(max((m for m in (started, completed) if m), default=None))
        for study_id, directions in studies.items():
            best = None
            if len(directions) == 1 and counts.get(study_id, {}).get("COMPLETE"):
                found = _ranked(conn, study_id, directions[0], 1)
                if found:
                    [(trial_id, number, value)] = found
                    params, dists = _params(conn, [trial_id])
                    best = FrozenTrial(
                        number=number,
                        state=TrialState.COMPLETE,
                        value=value,
                        values=None,
                        datetime_start=None,
                        datetime_complete=None,
                        params=params.get(trial_id, {}),
                        distributions=dists.get(trial_id, {}),
                        user_attrs={},
                        system_attrs={},
                        intermediate_values={},
                        trial_id=trial_id,
                    )
            tallies[study_id] = (counts.get(study_id, {}), best, last.get(study_id))
    return tallies


def _ranked(conn: Any, study_id: int, direction: str, limit: int) -> list[tuple[int, int, float]]:
    """(trial id, number, value) of the ``limit`` best COMPLETE trials with a finite value,
    best first: ranked as ``reports._frame.rank_trials`` ranks (value in ``direction``, ties
    by the lower number), by the database."""
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    trials_t = models.TrialModel.__table__
    values_t = models.TrialValueModel.__table__
    order = values_t.c.value.desc() if direction == "maximize" else values_t.c.value
    rows = conn.execute(
        sa.select(trials_t.c.trial_id, trials_t.c.number, values_t.c.value)
        .join(values_t, values_t.c.trial_id == trials_t.c.trial_id)
        .where(
            trials_t.c.study_id == study_id,
            trials_t.c.state == TrialState.COMPLETE,
            values_t.c.objective == 0,
            values_t.c.value_type == models.TrialValueModel.TrialValueType.FINITE,
        )
        .order_by(order, trials_t.c.number)
        .limit(limit)
    )
    return [(int(row[0]), int(row[1]), float(row[2])) for row in rows]

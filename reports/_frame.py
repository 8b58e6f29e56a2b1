"""The trial table (pandas) and the leaderboard ranking.

The ranking: COMPLETE trials with a finite value, ordered by value in the study's direction,
ties broken by the lower trial number, get ranks 1..n. Every other trial has no rank.

The per-epoch histories do not fit a table; they travel with the frame in
``frame.attrs["histories"]`` (trial number -> {metric: [value per epoch]}) for the plots.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from reports._study import LoadedStudy, StorageLike, load

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")

_BOOL_ATTRS = ("early_stopped", "pruned")
_FIXED_TAIL = ("datetime_start", "datetime_complete")


def param_columns(frame: pd.DataFrame) -> dict[str, str]:
    """Parameter name -> its column (``param_<name>``; a trailing ``_`` if that is taken)."""
    stored = frame.attrs.get("param_columns")
    if isinstance(stored, dict):
        return {k: v for k, v in stored.items() if v in frame.columns}
    return {
        str(c).removeprefix("param_"): str(c)
        for c in frame.columns
        if str(c).startswith("param_") and c != "param_count"
    }


class Histories(Mapping[int, Mapping[str, list[float]]]):
    """Trial number -> per-epoch history, read-only.

    pandas deep-copies ``attrs`` on every operation; this mapping is immutable in use, so a
    copy is itself (a study of many long trials would otherwise be copied on each filter).
    """

    def __init__(self, histories: Mapping[int, Mapping[str, list[float]]]) -> None:
        self._data = dict(histories)

    def __getitem__(self, number: int) -> Mapping[str, list[float]]:
        return self._data[number]

    def __iter__(self) -> Iterator[int]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __copy__(self) -> Histories:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Histories:
        return self

    def __repr__(self) -> str:
        return f"Histories({len(self._data)} trials)"


def _finite(value: Any) -> float | None:
    """A float for a real number (not bool), None for anything else, NaN and inf included."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _number_or_nan(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def rank_trials(trials: Iterable[tuple[int, str, float | None]], direction: str) -> dict[int, int]:
    """Ranks 1..n of (number, state, value) triples: COMPLETE with a finite value only.

    Ordered by value in ``direction`` (``minimize``/``maximize``), ties by trial number.
    """
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"`direction` must be 'minimize' or 'maximize', but got {direction!r}.")
    sign = -1.0 if direction == "maximize" else 1.0
    rankable = [
        (sign * value, number)
        for number, state, value in trials
        if state == "COMPLETE" and value is not None and math.isfinite(value)
    ]
    rankable.sort()
    return {number: rank for rank, (_, number) in enumerate(rankable, start=1)}


def record_of(trial: FrozenTrial) -> Mapping[str, Any]:
    """The trial's hpsearch user attrs; none for a WAITING trial.

    Optuna's retry callback copies a failed trial's user attrs into the WAITING copy it
    enqueues; that copy has not trained, so its inherited history and metrics are not its own.
    """
    return {} if trial.state == TrialState.WAITING else trial.user_attrs


def history_of(trial: FrozenTrial) -> dict[str, list[float]]:
    """The trial's history as {metric: [float per epoch]} ({} when it has none).

    A trial that ended holds it whole in its ``history`` user attr. A running one (or one
    whose process died) holds one ``epoch:K`` attr per epoch, ``{"w": attempt, "m":
    {metric: value}}``; only the rows of its current attempt (``worker``) count, since a
    retried trial starts with a copy of the dead attempt's attributes.
    """
    record = record_of(trial)
    raw = record.get("history")
    if not isinstance(raw, dict):
        raw = _epoch_rows(record)
    history: dict[str, list[float]] = {}
    for metric, values in raw.items():
        if isinstance(values, list):
            history[str(metric)] = [_number_or_nan(v) for v in values]
    return history


def _epoch_rows(record: Mapping[str, Any]) -> dict[str, list[Any]]:
    worker = record.get("worker")
    if not isinstance(worker, dict):
        return {}
    attempt = f"{worker.get('host')}:{worker.get('pid')}:{worker.get('started')}"
    history: dict[str, list[Any]] = {}
    epoch = 0
    while isinstance(row := record.get(f"epoch:{epoch}"), dict) and row.get("w") == attempt:
        metrics = row.get("m")
        if not isinstance(metrics, dict):
            break
        for metric, value in metrics.items():
            history.setdefault(str(metric), []).append(value)
        epoch += 1
    return history


def _best_metrics(trial: FrozenTrial, history: Mapping[str, list[float]]) -> dict[str, float]:
    raw = record_of(trial).get("best_metrics")
    if isinstance(raw, dict):
        return {str(k): _number_or_nan(v) for k, v in raw.items()}
    # A trial still running has no best_metrics yet; read them off its history if it says
    # which epoch is best.
    best_epoch = _int_or_none(record_of(trial).get("best_epoch"))
    if best_epoch is None or not history:
        return {}
    return {k: v[best_epoch] for k, v in history.items() if 0 <= best_epoch < len(v)}


def _epochs_run(trial: FrozenTrial, history: Mapping[str, list[float]]) -> int | None:
    stored = _int_or_none(record_of(trial).get("epochs_run"))
    if stored is not None:
        return stored
    if history:
        return max(len(v) for v in history.values())
    return None


def _fail_reason(trial: FrozenTrial) -> str | None:
    # Only a FAIL trial has a reason: Optuna's retry copies a failed trial's user attrs into
    # the retried trial, so a later COMPLETE copy may still carry the old fail_reason.
    if trial.state != TrialState.FAIL:
        return None
    reason = record_of(trial).get("fail_reason")
    return None if reason is None else str(reason)


def _duration(trial: FrozenTrial) -> float | None:
    stored = _finite(record_of(trial).get("duration_s"))
    if stored is not None:
        return stored
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        return (trial.datetime_complete - trial.datetime_start).total_seconds()
    return None


def _param_dtype(distributions: list[BaseDistribution]) -> str:
    if distributions and all(isinstance(d, IntDistribution) for d in distributions):
        return "Int64"
    if distributions and all(
        isinstance(d, IntDistribution | FloatDistribution) for d in distributions
    ):
        return "float64"
    return "object"


def _val_metric_order(names: Iterable[str]) -> list[str]:
    others = sorted({n for n in names if n.startswith("val_") and n != "val_loss"})
    return ["val_loss", *others]


def frame_from_loaded(loaded: LoadedStudy) -> pd.DataFrame:
    """The trial table of an already loaded study (see ``trials_frame``)."""
    direction = loaded.direction
    trials = sorted(loaded.trials, key=lambda t: t.number)
    histories: dict[int, dict[str, list[float]]] = {}
    rows: list[dict[str, Any]] = []
    metric_names: set[str] = set()
    param_dists: dict[str, list[BaseDistribution]] = {}
    for trial in trials:
        history = history_of(trial)
        if history:
            histories[trial.number] = history
        best = _best_metrics(trial, history)
        metric_names.update(best)
        for name, dist in trial.distributions.items():
            param_dists.setdefault(name, []).append(dist)
        failed_trial = trial.system_attrs.get("failed_trial")
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.value,
            "best": best,
            "epochs_run": _epochs_run(trial, history),
            "fail_reason": _fail_reason(trial),
            "retry_of": _int_or_none(failed_trial),
            "duration_s": _duration(trial),
            "params": trial.params,
            "datetime_start": trial.datetime_start,
            "datetime_complete": trial.datetime_complete,
        }
        for key in ("best_epoch", "param_count"):
            row[key] = _int_or_none(record_of(trial).get(key))
        for key in _BOOL_ATTRS:
            flag = record_of(trial).get(key)
            row[key] = flag if isinstance(flag, bool) else None
        rows.append(row)

    ranks = rank_trials(((r["number"], r["state"], _finite(r["value"])) for r in rows), direction)
    val_metrics = _val_metric_order(metric_names)
    columns: dict[str, pd.Series[Any]] = {
        "number": pd.Series([r["number"] for r in rows], dtype="int64"),
        "state": pd.Series([r["state"] for r in rows], dtype="str"),
        "rank": pd.Series([ranks.get(r["number"]) for r in rows], dtype="Int64"),
        "value": pd.Series([_number_or_nan(r["value"]) for r in rows], dtype="float64"),
    }
    for metric in [*val_metrics, "loss"]:
        columns[metric] = pd.Series(
            [r["best"].get(metric, math.nan) for r in rows], dtype="float64"
        )
    columns["best_epoch"] = pd.Series([r["best_epoch"] for r in rows], dtype="Int64")
    columns["epochs_run"] = pd.Series([r["epochs_run"] for r in rows], dtype="Int64")
    for key in _BOOL_ATTRS:
        columns[key] = pd.Series([r[key] for r in rows], dtype="boolean")
    columns["param_count"] = pd.Series([r["param_count"] for r in rows], dtype="Int64")
    columns["duration_s"] = pd.Series(
        [math.nan if r["duration_s"] is None else r["duration_s"] for r in rows],
        dtype="float64",
    )
    columns["fail_reason"] = pd.Series([r["fail_reason"] for r in rows], dtype="str")
    columns["retry_of"] = pd.Series([r["retry_of"] for r in rows], dtype="Int64")
    param_columns: dict[str, str] = {}
    for name in sorted(param_dists):
        dtype = _param_dtype(param_dists[name])
        values = [r["params"].get(name, pd.NA) for r in rows]
        if dtype == "float64":
            values = [math.nan if v is pd.NA else v for v in values]
        column = f"param_{name}"
        while column in columns or column in _FIXED_TAIL:  # a parameter named "count"
            column += "_"
        param_columns[name] = column
        columns[column] = pd.Series(values, dtype=dtype)
    for key in ("datetime_start", "datetime_complete"):
        columns[key] = pd.to_datetime(pd.Series([r[key] for r in rows], dtype="object"))

    frame = pd.DataFrame(columns)
    frame = _sort(frame)
    frame.attrs.update(
        {
            "study_name": loaded.name,
            "direction": direction,
            "settings": loaded.settings,
            "objective": loaded.objective,
            "histories": Histories(histories),
            "param_columns": param_columns,
        }
    )
    return frame


def _sort(frame: pd.DataFrame) -> pd.DataFrame:
    ranked = frame[frame["rank"].notna()].sort_values("rank", kind="stable")
    rest = frame[frame["rank"].isna()].sort_values("number", kind="stable")
    return pd.concat([ranked, rest]).reset_index(drop=True)


def trials_frame(storage: StorageLike, study_name: str) -> pd.DataFrame:
    """One row per trial of the study, ranked COMPLETE trials first.

    Columns: ``number``, ``state``, ``rank`` (1..n among COMPLETE trials by value in the
    study's direction, ties by trial number; NA otherwise), ``value``, ``val_loss`` and the
    other ``val_*`` metrics at the best epoch, ``loss`` (train loss at the best epoch),
    ``best_epoch`` (0-based), ``epochs_run``, ``early_stopped``, ``pruned``, ``param_count``,
    ``duration_s``, ``fail_reason`` (FAIL only), ``retry_of`` (the failed trial a retry
    copies), one ``param_<name>`` per parameter (NA where inactive), ``datetime_start``,
    ``datetime_complete``. A value the trial did not record is NA. (A parameter whose column
    name is taken, such as one named ``count``, gets a trailing ``_``.)

    ``frame.attrs``: ``study_name``, ``direction``, ``settings`` (the study's ``hpsearch``
    user attr, {} if absent), ``objective``, ``histories`` (for the learning curves),
    ``param_columns`` (parameter name -> column).

    Raises:
        StudyNotFound: no such study; the message lists the studies there.
        ReportError: the storage cannot be opened, or the study has several objectives.
    """
    return frame_from_loaded(load(storage, study_name))


def leaderboard(frame: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """The ranked COMPLETE trials, best first, at most ``top`` of them.

    Adds ``gap`` = ``val_loss - loss`` at the best epoch, a simple overfitting hint.
    """
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ValueError(f"`top` must be a positive int or None, but got {top!r}.")
    board = frame[frame["rank"].notna()].sort_values("rank", kind="stable")
    if top is not None:
        board = board.head(top)
    board = board.reset_index(drop=True)
    board["gap"] = board["val_loss"] - board["loss"]
    return board


def failures(frame: pd.DataFrame) -> pd.DataFrame:
    """PRUNED and FAIL trials by number, with a one-line ``reason`` each.

    A pruned trial's reason is "pruned at epoch k (n epochs run)", k the 0-based index of
    the last epoch it ran (n = ``epochs_run``); a failed one's is its ``fail_reason``.
    """
    bad = frame[frame["state"].isin(["PRUNED", "FAIL"])].sort_values("number", kind="stable")
    reasons = [_reason(row) for row in bad.to_dict("records")]
    params = list(param_columns(frame).values())
    keep = ["number", "state", "epochs_run", "duration_s", "retry_of", *params]
    out = bad[keep].reset_index(drop=True)
    out.insert(2, "reason", pd.Series(reasons, dtype="str"))
    return out


def _reason(row: Mapping[Any, Any]) -> str:
    if row["state"] == "PRUNED":
        epochs = row["epochs_run"]
        if epochs is pd.NA or epochs is None or int(epochs) < 1:
            return "pruned"
        epochs = int(epochs)
        plural = "" if epochs == 1 else "s"
        return f"pruned at epoch {epochs - 1} ({epochs} epoch{plural} run)"
    reason = row["fail_reason"]
    if isinstance(reason, str) and reason:
        return reason
    return "failed (no reason recorded)"

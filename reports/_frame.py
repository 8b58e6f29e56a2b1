"""The trial table (pandas) and the leaderboard ranking.

The ranking: COMPLETE trials with a finite value, ordered by value in the study's direction,
ties broken by the lower trial number, get ranks 1..n. Every other trial has no rank.

The per-epoch histories do not fit a table; they travel with the frame in
``frame.attrs["histories"]`` (trial number -> {metric: [value per epoch]}) for the plots.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial

from reports._analysis import diagnose
from reports._study import LoadedStudy, StorageLike, load
from search._errors import ConfigError
from search._records import TrialRecord, as_count, as_finite, as_number
from search._records import best_epoch as pick_best_epoch
from search._storage import gone_trials

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
DASH = "–"
"""What a missing value shows as, on the page and in the terminal."""

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


def is_missing(value: Any) -> bool:
    """NA, NaT, None or NaN: a value the trial did not record."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def fmt(value: Any) -> str:
    """A cell's text, on the page and in the terminal: NA as a dash, floats to 4 significant
    digits, dates to the second, dicts as compact JSON."""
    if hasattr(value, "item") and not isinstance(value, dt.datetime):
        value = value.item()  # a NumPy scalar, as a frame's row may hold
    if is_missing(value):
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str, separators=(", ", ": "))
    return str(value)


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


def record_of(trial: FrozenTrial) -> TrialRecord:
    """The trial's record, as far as it is its own (``TrialRecord.of``)."""
    return TrialRecord.of(trial)


def history_of(trial: FrozenTrial) -> dict[str, list[float]]:
    """The trial's history as {metric: [float per epoch]} ({} when it has none): the whole
    history of a trial that ended, the epoch rows of its current attempt while it runs."""
    return record_of(trial).history


def _duration(trial: FrozenTrial, record: TrialRecord) -> float | None:
    if record.duration_s is not None:
        return record.duration_s
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
        record = record_of(trial)
        history = record.history
        if history:
            histories[trial.number] = history
        best = record.best_metrics
        best_epoch = record.best_epoch
        if not best and best_epoch is None:  # running, or its worker died: its epoch rows
            best_epoch = pick_best_epoch(history.get(loaded.objective, []), direction)
            if best_epoch is not None:
                best = {k: v[best_epoch] for k, v in history.items() if best_epoch < len(v)}
        metric_names.update(best)
        for name, dist in trial.distributions.items():
            param_dists.setdefault(name, []).append(dist)
        failed_trial = trial.system_attrs.get("failed_trial")
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.value,
            "best": best,
            "epochs_run": record.epochs_run,
            "max_epochs": record.max_epochs,
            "fail_reason": record.fail_reason,
            "retry_of": as_count(failed_trial),
            "duration_s": _duration(trial, record),
            "params": trial.params,
            "datetime_start": trial.datetime_start,
            "datetime_complete": trial.datetime_complete,
            "best_epoch": best_epoch,
            "param_count": record.param_count,
            "early_stopped": record.early_stopped,
            "pruned": record.pruned,
        }
        rows.append(row)

    ranks = rank_trials(((r["number"], r["state"], as_finite(r["value"])) for r in rows), direction)
    val_metrics = _val_metric_order(metric_names)
    columns: dict[str, pd.Series[Any]] = {
        "number": pd.Series([r["number"] for r in rows], dtype="int64"),
        "state": pd.Series([r["state"] for r in rows], dtype="str"),
        "rank": pd.Series([ranks.get(r["number"]) for r in rows], dtype="Int64"),
        "value": pd.Series([as_number(r["value"]) for r in rows], dtype="float64"),
    }
    for metric in [*val_metrics, "loss"]:
        columns[metric] = pd.Series(
            [r["best"].get(metric, math.nan) for r in rows], dtype="float64"
        )
    tested = loaded.winner.get("test_metrics", {})
    for metric in tested:  # the winner's scores on the test split, on its row
        columns[metric] = pd.Series(
            [tested[metric] if r["number"] == loaded.winner["trial"] else math.nan for r in rows],
            dtype="float64",
        )
    columns["best_epoch"] = pd.Series([r["best_epoch"] for r in rows], dtype="Int64")
    columns["epochs_run"] = pd.Series([r["epochs_run"] for r in rows], dtype="Int64")
    columns["max_epochs"] = pd.Series([r["max_epochs"] for r in rows], dtype="Int64")
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
            "winner": loaded.winner,
            # RUNNING trials whose worker on this machine is gone (kill -9): stored as
            # running until the search goes on, which fails and retries them.
            "gone": gone_trials(trials),
        }
    )
    return frame


def _sort(frame: pd.DataFrame) -> pd.DataFrame:
    ranked = frame[frame["rank"].notna()].sort_values("rank", kind="stable")
    rest = frame[frame["rank"].isna()].sort_values("number", kind="stable")
    return pd.concat([ranked, rest]).reset_index(drop=True)


def trials_frame(storage: StorageLike, study_name: str, *, top: int | None = None) -> pd.DataFrame:
    """One row per trial of the study, ranked COMPLETE trials first; with ``top``, only the
    ``top`` best ranked trials (read alone from a SQL database: fast on a large study).

    Columns: ``number``, ``state``, ``rank`` (1..n among COMPLETE trials by value in the
    study's direction, ties by trial number; NA otherwise), ``value``, ``val_loss`` and the
    other ``val_*`` metrics at the best epoch, ``loss`` (train loss at the best epoch),
    ``best_epoch`` (0-based), ``epochs_run``, ``max_epochs`` (the epochs the engine allowed:
    a Hyperband round's budget), ``early_stopped``, ``pruned``, ``param_count``,
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
    check_top(top)
    frame = frame_from_loaded(load(storage, study_name, top=top))
    if top is not None:  # storages read through Optuna held every trial
        frame = frame[frame["rank"].notna() & (frame["rank"] <= top)].reset_index(drop=True)
    return frame


def check_top(top: int | None) -> None:
    """``top`` (how many of the best trials) is None or an int >= 1; else ConfigError."""
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ConfigError(f"--top: expected a number of trials >= 1; got {top!r}.")


def leaderboard(frame: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """The ranked COMPLETE trials, best first, at most ``top`` of them.

    Adds ``fit``: the trial's verdict from the shape of its curves (``reports._analysis.
    diagnose``: underfit, good fit, overfit, or "too short"), where the frame carries the
    histories; not the gap between validation and training loss, which dropout and
    regularisation make meaningless (they raise the training loss only).
    """
    check_top(top)
    board = frame[frame["rank"].notna()].sort_values("rank", kind="stable")
    if top is not None:
        board = board.head(top)
    board = board.reset_index(drop=True)
    histories = board.attrs.get("histories")
    histories = histories if isinstance(histories, Mapping) else {}
    verdicts = [
        diagnose(histories[n]).verdict if n in histories else pd.NA
        for n in board["number"].astype(int)
    ]
    board["fit"] = pd.Series(verdicts, dtype="object")
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

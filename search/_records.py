"""The trial record: what hpsearch stores with every trial, defined once.

A trial's params, value and intermediate values are Optuna's own fields; everything else is
a ``TrialRecord`` kept in the trial's user attributes (``to_attrs``/``from_attrs``), written
by the engine lifecycle and read by ``reports`` and the tests. While a trial runs, each epoch
adds one small row (``epoch:K`` -> ``{"w": attempt, "m": {metric: value}}``, O(1) per
epoch); the whole history is written once when the trial ends. ``RECORD_VERSION`` is stored
in every record (``record``) and bumped when the layout changes; a reader takes older
records as they are (a missing key is None).

Nothing here imports TensorFlow or Optuna: ``reports`` reads records without them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

RECORD_VERSION = 2  # 2: params, seed, versions
# The study user attribute holding the StudySettings (search._settings).
SETTINGS_KEY = "hpsearch"


def stored_target(study_attrs: dict[str, Any], default: int) -> int:
    """The study's target of finished trials as stored now (another command may change it
    under a running search: `resume --trials`); ``default`` if it holds none."""
    return int(study_attrs.get(SETTINGS_KEY, {}).get("trials", default))


EPOCH_PREFIX = "epoch:"
# The fail_reason of a trial stopped by the user (Ctrl-C, SIGTERM): not a fault of its point.
INTERRUPTED = "interrupted"


def epoch_key(epoch: int) -> str:
    """The user attribute holding one epoch's metrics while a trial runs."""
    return f"{EPOCH_PREFIX}{epoch}"


def worker_token(worker: Mapping[str, Any]) -> str:
    """The attempt an epoch row belongs to: a retry's copy keeps the dead attempt's rows."""
    return f"{worker.get('host')}:{worker.get('pid')}:{worker.get('started')}"


def epoch_row(worker: Mapping[str, Any], metrics: Mapping[str, float]) -> dict[str, Any]:
    """The value of one ``epoch:K`` attribute."""
    return {"w": worker_token(worker), "m": dict(metrics)}


def as_number(value: Any) -> float:
    """A real number (not bool) as a float; NaN for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def as_finite(value: Any) -> float | None:
    """A finite real number as a float; None for anything else, NaN and inf included."""
    number = as_number(value)
    return number if math.isfinite(number) else None


# The integers a record holds are 64-bit (pandas' Int64 columns, TensorFlow's seeds): one
# stored outside that range (1e300 written by hand) reads as missing, as a wrong type does.
_INT_LIMIT = 2**63


def as_int(value: Any) -> int | None:
    """A 64-bit integer (or a float holding one, as JSON may store it); None for anything
    else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and -_INT_LIMIT <= value < _INT_LIMIT:
        return value
    return None


def as_count(value: Any) -> int | None:
    """``as_int`` of a count or an index (epochs, weights, a trial's number): None below 0."""
    number = as_int(value)
    return number if number is not None and number >= 0 else None


def best_epoch(values: list[float], direction: str) -> int | None:
    """The epoch (0-based) of the best finite value in ``direction``, the first of equals;
    None if there is none."""
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    if not finite:
        return None
    sign = 1.0 if direction == "minimize" else -1.0
    return min(finite, key=lambda pair: (sign * pair[0], pair[1]))[1]


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _history(raw: Any) -> dict[str, list[float]]:
    if not isinstance(raw, Mapping):
        return {}
    return {
        str(metric): [as_number(v) for v in values]
        for metric, values in raw.items()
        if isinstance(values, list)
    }


def _epoch_rows(attrs: Mapping[str, Any]) -> dict[str, list[float]]:
    """The history of a trial still running (or whose process died): its current attempt's
    ``epoch:K`` rows."""
    worker = attrs.get("worker")
    if not isinstance(worker, Mapping):
        return {}
    attempt = worker_token(worker)
    history: dict[str, list[float]] = {}
    epoch = 0
    while isinstance(row := attrs.get(epoch_key(epoch)), Mapping) and row.get("w") == attempt:
        metrics = row.get("m")
        if not isinstance(metrics, Mapping):
            break
        for metric, value in metrics.items():
            history.setdefault(str(metric), []).append(as_number(value))
        epoch += 1
    return history


@dataclass
class TrialRecord:
    """The user attributes of one trial (see the module docstring)."""

    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int | None = None  # 0-based
    best_metrics: dict[str, float] = field(default_factory=dict)
    epochs_run: int | None = None
    max_epochs: int | None = None  # the epochs the engine allowed it (a Hyperband round's)
    early_stopped: bool | None = None
    pruned: bool | None = None
    param_count: int | None = None
    duration_s: float | None = None
    engine: str | None = None
    worker: dict[str, Any] | None = None
    fail_reason: str | None = None
    rss_mib: float | None = None
    # Reproducibility: the point the model was built from (the space's fixed values with
    # the sampled ones), the seed it trained with and the libraries that trained it.
    params: dict[str, Any] | None = None
    seed: int | None = None
    versions: dict[str, str] | None = None
    record: int = RECORD_VERSION

    def to_attrs(self) -> dict[str, Any]:
        """The JSON-safe user attributes (keys with a None value are left out)."""
        attrs = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.duration_s is not None:
            attrs["duration_s"] = round(self.duration_s, 3)
        return {k: v for k, v in attrs.items() if v is not None}

    @staticmethod
    def claimed(engine: str, worker: Mapping[str, Any], seed: int) -> dict[str, Any]:
        """The attributes a trial gets when a worker claims it (a retry's copy holds nothing
        of its attempt's record: see ``search._storage._RetryCopy``)."""
        return {"engine": engine, "worker": dict(worker), "epochs_run": 0, "seed": seed}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> TrialRecord:
        """The record of stored user attributes, whatever wrote them: a value of the wrong
        type reads as missing, and a trial without a final history gets its epoch rows."""
        raw = attrs.get("history")
        history = _history(raw) if raw is not None else _epoch_rows(attrs)
        best_epoch = as_count(attrs.get("best_epoch"))
        raw_best = attrs.get("best_metrics")
        if isinstance(raw_best, Mapping):
            best = {str(k): as_number(v) for k, v in raw_best.items()}
        elif best_epoch is not None:
            best = {k: v[best_epoch] for k, v in history.items() if 0 <= best_epoch < len(v)}
        else:
            best = {}
        epochs_run = as_count(attrs.get("epochs_run"))
        if history and (epochs_run is None or raw is None):
            # No final history: a running trial, or one whose worker died, has its epoch
            # rows; its epochs_run is still the claim's 0.
            epochs_run = max(epochs_run or 0, *(len(v) for v in history.values()))
        worker = attrs.get("worker")
        reason = attrs.get("fail_reason")
        engine = attrs.get("engine")
        versions = attrs.get("versions")
        params = attrs.get("params")
        return cls(
            history=history,
            best_epoch=best_epoch,
            best_metrics=best,
            epochs_run=epochs_run,
            max_epochs=as_count(attrs.get("max_epochs")),
            early_stopped=_flag(attrs.get("early_stopped")),
            pruned=_flag(attrs.get("pruned")),
            param_count=as_count(attrs.get("param_count")),
            duration_s=as_finite(attrs.get("duration_s")),
            engine=engine if isinstance(engine, str) else None,
            worker=dict(worker) if isinstance(worker, Mapping) else None,
            fail_reason=None if reason is None else str(reason),
            rss_mib=as_finite(attrs.get("rss_mib")),
            params=dict(params) if isinstance(params, Mapping) else None,
            seed=as_int(attrs.get("seed")),
            versions=(
                {str(k): str(v) for k, v in versions.items()}
                if isinstance(versions, Mapping)
                else None
            ),
            record=as_count(attrs.get("record")) or 0,
        )

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialRecord:
        """The record of a stored trial, as far as it is its own: a WAITING trial has none
        (Optuna's retry copies a failed trial's attributes into the copy it enqueues), and
        only a FAIL trial has a failure reason (a retry that finished may carry the old one).
        """
        name = trial.state.name
        if name == "WAITING":
            return cls(record=0)
        record = cls.from_attrs(trial.user_attrs)
        if name != "FAIL":
            record.fail_reason = None
        return record

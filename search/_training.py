"""Training one trial: build, fit with early stopping, record every epoch.

Engine-agnostic: an engine passes a ``TrialRecorder`` (whose ``on_epoch`` hook stores the
history as it grows) and its own Keras callbacks (e.g. a pruning callback), and gets back
a ``TrialOutcome``, or the exception that ended the trial with the recorder still holding
everything up to that point.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from search._data import Dataset
from search._errors import TrialFailed
from search._settings import Direction

EpochHook = Callable[[int, "TrialRecorder"], None]


@dataclass
class TrialOutcome:
    """What a trial stores besides params and value (see docs/architecture.md)."""

    value: float | None
    history: dict[str, list[float]]
    best_epoch: int | None
    best_metrics: dict[str, float]
    epochs_run: int
    early_stopped: bool
    pruned: bool
    param_count: int | None
    duration_s: float

    def attrs(self) -> dict[str, Any]:
        """The user attributes of the trial record."""
        return {
            "history": self.history,
            "best_epoch": self.best_epoch,
            "best_metrics": self.best_metrics,
            "epochs_run": self.epochs_run,
            "early_stopped": self.early_stopped,
            "pruned": self.pruned,
            "param_count": self.param_count,
            "duration_s": round(self.duration_s, 3),
        }


@dataclass
class TrialRecorder:
    """Collects the per-epoch history of one trial and calls ``on_epoch`` after each epoch."""

    objective: str
    direction: Direction
    max_epochs: int
    on_epoch: EpochHook | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    param_count: int | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))

    def record(self, epoch: int, logs: dict[str, Any]) -> None:
        """Append one epoch's logs; a NaN or infinite loss fails the trial."""
        for key, raw in logs.items():
            try:
                value = float(raw)
            except (TypeError, ValueError):
                continue
            if key == "learning_rate":
                continue
            self.history.setdefault(key, []).append(value)
        for key in ("loss", "val_loss", self.objective):
            value = self.history.get(key, [0.0])[-1]
            if not math.isfinite(value):
                raise TrialFailed(f"{key} became {value} at epoch {epoch}")
        if self.on_epoch is not None:
            self.on_epoch(epoch, self)

    def best_epoch(self) -> int | None:
        values = self.history.get(self.objective, [])
        if not values:
            return None
        pick = min if self.direction == "minimize" else max
        return pick(range(len(values)), key=lambda i: (values[i], i))

    def outcome(self, *, pruned: bool = False) -> TrialOutcome:
        best = self.best_epoch()
        best_metrics = (
            {k: v[best] for k, v in self.history.items() if len(v) > best}
            if best is not None
            else {}
        )
        ran = self.epochs_run
        return TrialOutcome(
            value=None if best is None else self.history[self.objective][best],
            history=self.history,
            best_epoch=best,
            best_metrics=best_metrics,
            epochs_run=ran,
            early_stopped=not pruned and 0 < ran < self.max_epochs,
            pruned=pruned,
            param_count=self.param_count,
            duration_s=time.perf_counter() - self.started,
        )


def fit_trial(
    params: dict[str, Any],
    dataset: Dataset,
    recorder: TrialRecorder,
    *,
    patience: int,
    seed: int,
    callbacks: Sequence[Any] = (),
) -> TrialOutcome:
    """Build the model for ``params`` and fit it with early stopping on the objective.

    Raises TrialFailed for a model that cannot be built, a NaN/inf loss or an error while
    training; other exceptions raised by ``callbacks`` (a pruning signal) pass through.
    """
    from search._keras import import_keras
    from spaces import build_model, resolve_params

    keras = import_keras()

    keras.utils.set_random_seed(seed)
    try:
        resolved = resolve_params(params)
        model = build_model(resolved, dataset.spec)
    except Exception as exc:
        raise TrialFailed(f"building the model failed: {type(exc).__name__}: {exc}") from exc
    recorder.param_count = int(model.count_params())

    callback_base: Any = keras.callbacks.Callback

    class _Record(callback_base):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            recorder.record(epoch, logs or {})

    mode = "min" if recorder.direction == "minimize" else "max"
    stopping = keras.callbacks.EarlyStopping(
        monitor=recorder.objective, mode=mode, patience=patience, restore_best_weights=True
    )
    try:
        model.fit(
            dataset.x_train,
            dataset.y_train,
            validation_data=(dataset.x_val, dataset.y_val),
            epochs=recorder.max_epochs,
            batch_size=int(resolved["batch_size"]),
            callbacks=[_Record(), stopping, *callbacks],
            verbose=0,
        )
    except TrialFailed:
        raise
    except (ValueError, TypeError, RuntimeError, ArithmeticError, MemoryError) as exc:
        raise TrialFailed(f"training failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith(("tensorflow", "keras")):
            raise TrialFailed(f"training failed: {type(exc).__name__}: {exc}") from exc
        raise
    return recorder.outcome()

"""Real SQLite studies holding the trial record exactly as docs/architecture.md states it."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from search._records import TrialRecord
from search._settings import DataRef, StudySettings
from spaces import parse_space

DISTRIBUTIONS: dict[str, BaseDistribution] = {
    "units": IntDistribution(8, 256, log=True),
    "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
    "optimizer": CategoricalDistribution(["adam", "sgd"]),
    # conditional: only sampled when optimizer == "sgd"
    "momentum": FloatDistribution(0.0, 0.99),
}

SPACE = {
    "name": "mlp",
    "params": {
        "units": {"type": "int", "low": 8, "high": 256, "log": True},
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        "momentum": {"type": "float", "low": 0.0, "high": 0.99, "when": {"optimizer": "sgd"}},
    },
}


def hp_settings(**overrides: Any) -> dict[str, Any]:
    """The study user attr ``hpsearch`` as ``search`` writes it (``StudySettings.to_attrs``
    with a data description as ``Dataset.describe`` gives it), with ``overrides``."""
    settings = StudySettings(
        study="fixture",
        data=DataRef(source="digits", val_split=0.2, test_split=0.2),
        space=parse_space(copy.deepcopy(SPACE), source="fixture"),
        epochs=20,
        patience=3,
        seed=42,
        created="2025-01-02T03:04:05+00:00",
    )
    description = {
        "source": "digits",
        "kind": "builtin",
        "target": None,
        "task": "multiclass",
        "classes": 10,
        "input_shape": [64],
        "val_split": 0.2,
        "test_split": 0.2,
        "n_train": 1149,
        "n_val": 288,
        "n_test": 360,
        "fingerprint": "sha256:0123abcd",
        "feature_names": [f"pixel_{i}" for i in range(64)],
    }
    return {**settings.to_attrs(description), **overrides}


def curves(
    val_loss: Sequence[float], gap: float = 0.05, acc: bool = True
) -> dict[str, list[float]]:
    """A history: train loss sits ``gap`` below val loss; accuracy mirrors the loss."""
    history: dict[str, list[float]] = {
        "loss": [v - gap for v in val_loss],
        "val_loss": list(val_loss),
    }
    if acc:
        history["accuracy"] = [round(1.0 - (v - gap) / 4, 6) for v in val_loss]
        history["val_accuracy"] = [round(1.0 - v / 4, 6) for v in val_loss]
    return history


def record(
    history: dict[str, list[float]],
    params: dict[str, Any],
    *,
    state: TrialState = TrialState.COMPLETE,
    objective: str = "val_loss",
    direction: str = "minimize",
    early_stopped: bool = False,
    fail_reason: str | None = None,
    duration_s: float = 2.5,
    param_count: int = 1234,
    system_attrs: dict[str, Any] | None = None,
) -> FrozenTrial:
    """One trial as hpsearch stores it (user attrs, intermediate values, value)."""
    series = history[objective]
    pick = min if direction == "minimize" else max
    best_epoch = series.index(pick(v for v in series if not math.isnan(v)))
    user_attrs = TrialRecord(
        history=history,
        epochs_run=len(history["loss"]),
        max_epochs=20,
        best_epoch=best_epoch,
        best_metrics={k: v[best_epoch] for k, v in history.items() if best_epoch < len(v)},
        early_stopped=early_stopped,
        pruned=state == TrialState.PRUNED,
        param_count=param_count,
        duration_s=duration_s,
        engine="optuna",
        worker={"host": "testhost", "pid": 4242, "started": "2025-01-02T03:04:05+00:00"},
        fail_reason=fail_reason,
        rss_mib=900.0,
    ).to_attrs()
    value: float | None = None
    if state == TrialState.COMPLETE:
        value = series[best_epoch]
    elif state == TrialState.PRUNED:
        value = series[-1]
    return optuna.trial.create_trial(
        state=state,
        value=value,
        params=params,
        distributions={name: DISTRIBUTIONS[name] for name in params},
        intermediate_values=dict(enumerate(series)),
        user_attrs=user_attrs,
        system_attrs=system_attrs,
    )


MakeStudy = Callable[..., tuple[str, str]]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/s.db"


@pytest.fixture
def make_study(db_url: str) -> MakeStudy:
    """Factory: make_study(name, trials, direction=..., settings=...) -> (storage URL, name).

    ``settings=None`` leaves the study without the ``hpsearch`` attr (as plain Optuna would).
    """

    def make(
        name: str,
        trials: Sequence[FrozenTrial],
        *,
        direction: str = "minimize",
        settings: dict[str, Any] | None = None,
    ) -> tuple[str, str]:
        study = optuna.create_study(storage=db_url, study_name=name, direction=direction)
        if settings is not None:
            study.set_user_attr("hpsearch", settings)
        for trial in trials:
            study.add_trial(trial)
        return db_url, name

    return make


ADAM = {"units": 64, "learning_rate": 0.001, "optimizer": "adam"}
SGD = {"units": 32, "learning_rate": 0.01, "optimizer": "sgd", "momentum": 0.9}


def mixed_trials() -> list[FrozenTrial]:
    """Numbers 0..7: four COMPLETE (two tied), one PRUNED, one FAIL, one RUNNING, one WAITING.

    Ranking by val_loss (minimize): #1 -> trial 1 (0.30), #2 -> trial 4 (0.30, tie),
    #3 -> trial 0 (0.50), #4 -> trial 2 (0.90).
    """
    return [
        record(curves([1.0, 0.7, 0.5, 0.6]), ADAM, early_stopped=True),  # 0
        record(curves([0.9, 0.4, 0.3, 0.35, 0.33]), SGD, param_count=999),  # 1
        record(curves([1.2, 0.9]), {**ADAM, "units": 128}, duration_s=1.0),  # 2
        record(curves([1.5, 1.4, 1.45]), {**SGD, "momentum": 0.5}, state=TrialState.PRUNED),  # 3
        record(curves([0.8, 0.3, 0.31]), {**ADAM, "units": 16}),  # 4
        record(
            curves([2.0]),
            {**ADAM, "units": 8},
            state=TrialState.FAIL,
            fail_reason="NaN loss at epoch 1",
        ),  # 5
        optuna.trial.create_trial(  # 6: just started, no record yet
            state=TrialState.RUNNING,
            params={"units": 200},
            distributions={"units": DISTRIBUTIONS["units"]},
        ),
        optuna.trial.create_trial(  # 7: a retry of trial 5 waiting to run
            state=TrialState.WAITING,
            params={**ADAM, "units": 8},
            distributions={k: DISTRIBUTIONS[k] for k in ADAM},
            # Optuna's RetryFailedTrialCallback copies the failed trial's user attrs
            user_attrs=TrialRecord(
                history=curves([2.0]), epochs_run=1, fail_reason="NaN"
            ).to_attrs(),
            system_attrs={"failed_trial": 5, "retry_history": [5]},
        ),
    ]


@pytest.fixture
def kit() -> SimpleNamespace:
    """The builders above, for tests (conftest is not importable under importlib mode)."""
    return SimpleNamespace(
        record=record,
        curves=curves,
        hp_settings=hp_settings,
        mixed_trials=mixed_trials,
        ADAM=ADAM,
        SGD=SGD,
        DISTRIBUTIONS=DISTRIBUTIONS,
    )


@pytest.fixture(scope="session")
def mixed_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The mixed trials in a minimize study with hpsearch settings: (storage URL, name).

    Shared by the whole session: tests must only read it (add studies with make_study).
    """
    url = f"sqlite:///{tmp_path_factory.mktemp('mixed')}/mixed.db"
    study = optuna.create_study(storage=url, study_name="mixed")
    study.set_user_attr("hpsearch", hp_settings())
    for trial in mixed_trials():
        study.add_trial(trial)
    return url, "mixed"


@pytest.fixture(scope="session")
def mixed_html(mixed_study: tuple[str, str]) -> str:
    """The report of the mixed study, rendered once."""
    import reports

    return reports.render_report(*mixed_study)

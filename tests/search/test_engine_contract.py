"""One suite over every engine and every storage kind: the Engine contract of
search/engines/_base.py and the trial record of docs/architecture.md."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import search
from search._storage import opened_storage
from search.engines import ENGINES
from spaces import parse_space

pytestmark = pytest.mark.slow

RECORD_KEYS = {
    "history",
    "epochs_run",
    "best_epoch",
    "best_metrics",
    "early_stopped",
    "pruned",
    "param_count",
    "duration_s",
    "engine",
    "worker",
}
TINY = parse_space(
    {
        "name": "tiny",
        "params": {
            "units": {"type": "int", "low": 4, "high": 16, "log": True},
            "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
            "momentum": {
                "type": "float",
                "low": 0.0,
                "high": 0.9,
                "when": {"optimizer": ["sgd"]},
            },
            "learning_rate": {"type": "float", "low": 0.005, "high": 0.05, "log": True},
            "batch_size": 32,
        },
    },
    source="tiny",
)
EXPLODING = parse_space(
    {
        "name": "exploding",
        "params": {
            "units": 64,
            "depth": 3,
            "optimizer": "sgd",
            "learning_rate": {"type": "float", "low": 1.0e6, "high": 1.0e7, "log": True},
            "batch_size": 16,
        },
    },
    source="exploding",
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.service)])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'contract.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _trials(name: str, url: str) -> tuple[dict[str, object], list[optuna.trial.FrozenTrial]]:
    """The study's user attributes and trials, read on a connection closed afterwards."""
    with opened_storage(url, for_writing=False) as storage:
        study = optuna.load_study(study_name=name, storage=storage)
        return study.user_attrs, study.get_trials()


def test_every_trial_stores_the_record_and_resume_reaches_the_new_target(
    storage_url: str, engine: str
) -> None:
    result = search.run(
        "iris",
        TINY,
        trials=3,
        epochs=4,
        patience=1,
        pruner="none",
        storage=storage_url,
        write_report=False,
    )
    assert result.finished == 3 and result.stopped == "target"
    attrs_, trials = _trials(result.study, storage_url)
    assert attrs_["hpsearch"]["engine"] == engine  # type: ignore[index]
    first = {t.number: (t.params, t.value) for t in trials}
    for trial in trials:
        assert trial.state == TrialState.COMPLETE
        attrs = trial.user_attrs
        assert set(attrs) >= RECORD_KEYS
        history = attrs["history"]
        assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(history)
        assert all(len(v) == attrs["epochs_run"] for v in history.values())
        assert 1 <= attrs["epochs_run"] <= 4
        # Intermediate values are the objective after each epoch.
        assert [trial.intermediate_values[i] for i in range(attrs["epochs_run"])] == pytest.approx(
            history["val_loss"]
        )
        # The value is the best objective over the epochs run, at best_epoch.
        assert trial.value == pytest.approx(min(history["val_loss"]))
        assert history["val_loss"][attrs["best_epoch"]] == pytest.approx(trial.value)
        assert attrs["best_metrics"]["val_loss"] == pytest.approx(trial.value)
        assert attrs["early_stopped"] == (attrs["epochs_run"] < 4)
        assert attrs["pruned"] is False
        assert attrs["param_count"] > 0
        assert ("momentum" in trial.params) == (trial.params["optimizer"] == "sgd")
        assert "batch_size" not in trial.params  # fixed values are not sampled

    again = search.resume(result.study, storage=storage_url, trials=5, write_report=False)
    assert again.finished == 5
    _, trials = _trials(result.study, storage_url)
    assert len(trials) == 5
    for number, (params, value) in first.items():
        assert trials[number].params == params and trials[number].value == value
    params_seen = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params_seen)) == 5, "a resumed seeded search must not repeat its points"

    # A study at its target runs nothing more.
    done = search.resume(result.study, storage=storage_url, write_report=False)
    assert done.stopped == "already" and done.finished == 5


def test_failed_trials_store_a_reason_and_too_many_in_a_row_abort(
    storage_url: str, engine: str
) -> None:
    with pytest.raises(search.SearchAborted, match="2 failed trials in a row") as info:
        search.run(
            "diabetes",
            EXPLODING,
            trials=3,
            epochs=5,
            max_failures=2,
            pruner="none",
            storage=storage_url,
            study="boom",
            write_report=False,
        )
    # Its points diverge: resuming would sample the same space, so the way on is a new study.
    assert "same space" in str(info.value) and "--study boom-2" in str(info.value)
    _, trials = _trials("boom", storage_url)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    for trial in trials:
        reason = trial.user_attrs["fail_reason"]
        assert "became" in reason and ("nan" in reason or "inf" in reason), reason
        assert trial.user_attrs["epochs_run"] >= 1


def test_pruned_trials_keep_their_history(storage_url: str, engine: str) -> None:
    result = search.run(
        "digits",
        TINY,
        trials=9,
        epochs=8,
        patience=8,
        pruner="successive-halving",
        storage=storage_url,
        write_report=False,
    )
    _, trials = _trials(result.study, storage_url)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "successive halving prunes some of 9 trials of 8 epochs"
    for trial in pruned:
        assert trial.user_attrs["pruned"] is True
        assert trial.user_attrs["early_stopped"] is False
        ran = trial.user_attrs["epochs_run"]
        assert ran < 8
        assert len(trial.user_attrs["history"]["val_loss"]) == ran
        assert math.isfinite(trial.value)
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 9

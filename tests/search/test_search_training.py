"""One trial's training, the samplers and pruners, objectives and time limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

import search
from search import ConfigError, TrialFailed, load_dataset
from search._storage import opened_storage
from search._training import TrialRecorder, fit_trial
from search.engines._optuna import make_pruner, make_sampler
from spaces import parse_space

pytestmark = pytest.mark.slow

QUICK = parse_space(
    {
        "name": "quick",
        "params": {
            "units": {"type": "int", "low": 4, "high": 16},
            "learning_rate": {"type": "float", "low": 0.01, "high": 0.05, "log": True},
            "batch_size": 32,
        },
    },
    source="quick",
)


def _recorder(objective: str = "val_loss", direction: str = "minimize", epochs: int = 5) -> Any:
    seen: list[int] = []
    recorder = TrialRecorder(
        objective=objective,
        direction=direction,  # type: ignore[arg-type]
        max_epochs=epochs,
        on_epoch=lambda epoch, rec: seen.append(epoch),
    )
    return recorder, seen


def test_fit_trial_records_every_epoch_and_stops_early() -> None:
    ds = load_dataset("breast_cancer")
    recorder, seen = _recorder(epochs=200)
    outcome = fit_trial(
        {"units": 8, "learning_rate": 0.05, "batch_size": 64}, ds, recorder, patience=0, seed=0
    )
    assert outcome.early_stopped and outcome.epochs_run < 200
    assert seen == list(range(outcome.epochs_run))
    assert outcome.value == min(outcome.history["val_loss"])
    assert (
        outcome.best_metrics["val_accuracy"]
        == outcome.history["val_accuracy"][
            outcome.best_epoch  # type: ignore[index]
        ]
    )
    assert outcome.param_count == 30 * 8 + 8 + 8 + 1


def test_nan_loss_fails_the_trial_with_the_epoch() -> None:
    ds = load_dataset("diabetes")
    recorder, _ = _recorder()
    params = {"units": 64, "depth": 3, "optimizer": "sgd", "learning_rate": 1e7}
    with pytest.raises(TrialFailed, match=r"loss became (nan|inf) at epoch \d+"):
        fit_trial(params, ds, recorder, patience=5, seed=0)
    assert recorder.epochs_run >= 1


def test_a_model_that_cannot_be_built_fails_the_trial() -> None:
    recorder, _ = _recorder()
    with pytest.raises(TrialFailed, match=r"building the model failed.*units"):
        fit_trial({"units": [8, 0]}, load_dataset("iris"), recorder, patience=1, seed=0)


def test_recorder_picks_the_best_epoch_in_the_objective_direction() -> None:
    recorder, _ = _recorder("val_accuracy", "maximize")
    for epoch, acc in enumerate([0.5, 0.9, 0.7]):
        recorder.record(epoch, {"loss": 1.0, "val_loss": 1.0, "val_accuracy": acc})
    assert recorder.best_epoch() == 1
    assert recorder.outcome().value == 0.9


@pytest.mark.parametrize("sampler", ["tpe", "random", "gp", "qmc"])
def test_every_sampler_runs_a_search(sampler: str, tmp_path: Path) -> None:
    result = search.run(
        "iris",
        QUICK,
        trials=2,
        epochs=2,
        sampler=sampler,
        storage=f"sqlite:///{tmp_path / 's.db'}",
        write_report=False,
    )
    assert result.finished == 2
    assert isinstance(make_sampler(sampler, 0), optuna.samplers.BaseSampler)


@pytest.mark.parametrize("pruner", ["median", "hyperband", "successive-halving", "none"])
def test_every_pruner_is_built(pruner: str) -> None:
    assert isinstance(make_pruner(pruner, 20), optuna.pruners.BasePruner)


def test_another_objective_is_optimised_in_its_direction(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    result = search.run(
        "iris", QUICK, trials=2, epochs=3, objective="val_accuracy", storage=url,
        write_report=False,
    )  # fmt: skip
    with opened_storage(url, for_writing=False) as storage:
        study = optuna.load_study(study_name=result.study, storage=storage)
        assert study.direction == optuna.study.StudyDirection.MAXIMIZE
        for trial in study.trials:
            history = trial.user_attrs["history"]["val_accuracy"]
            assert trial.value == max(history)
            assert list(trial.intermediate_values.values()) == history
    with pytest.raises(ConfigError, match="'val_mae' is not reported for a multiclass task"):
        search.run("iris", QUICK, objective="val_mae", study="x", storage=url)
    with pytest.raises(ConfigError, match="--objective must be a validation metric"):
        search.run("iris", QUICK, objective="loss", study="y", storage=url)


def test_timeout_stops_the_search_and_leaves_it_resumable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    result = search.run(
        "iris", QUICK, trials=50, epochs=2, timeout=0.5, storage=url, write_report=False
    )
    assert result.stopped == "timeout"
    assert 1 <= result.finished < 50
    more = search.resume(result.study, storage=url, trials=result.finished + 1, write_report=False)
    assert more.finished == result.finished + 1
    with opened_storage(url, for_writing=False) as storage:
        states = [
            t.state for t in optuna.load_study(study_name=result.study, storage=storage).trials
        ]
    assert TrialState.RUNNING not in states

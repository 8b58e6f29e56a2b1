from __future__ import annotations

import datetime as dt
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import reports


def test_study_summary(mixed_study: tuple[str, str], kit) -> None:
    summary = reports.study_summary(*mixed_study)
    assert summary.name == "mixed"
    assert summary.engine == "optuna"
    assert summary.data == "digits"
    assert summary.task == "multiclass"
    assert summary.objective == "val_loss"
    assert summary.direction == "minimize"
    assert summary.counts == {"COMPLETE": 4, "PRUNED": 1, "FAIL": 1, "RUNNING": 1, "WAITING": 1}
    assert summary.n_trials == 8
    # trials 1 and 4 tie at 0.3: the lower number wins, as in the leaderboard
    assert summary.best_number == 1
    assert summary.best_value == pytest.approx(0.3)
    assert summary.best_params == kit.SGD
    assert isinstance(summary.last_activity, dt.datetime)
    assert summary.settings["epochs"] == 20


def test_list_studies(make_study, kit, tmp_path: Path) -> None:
    url, _ = make_study("mixed", kit.mixed_trials(), settings=kit.hp_settings())
    make_study("empty", [], direction="maximize", settings=kit.hp_settings(direction="maximize"))
    make_study(
        "pruned-only",
        [
            kit.record(kit.curves([1.0, 1.1]), kit.ADAM, state=TrialState.PRUNED),
            kit.record(kit.curves([2.0]), kit.ADAM, state=TrialState.FAIL, fail_reason="x"),
        ],
        settings=kit.hp_settings(data={"source": "train.csv", "task": "regression"}),
    )
    plain = optuna.create_study(storage=url, study_name="plain")
    plain.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)

    summaries = reports.list_studies(url)
    assert [s.name for s in summaries] == ["mixed", "empty", "pruned-only", "plain"]
    by_name = {s.name: s for s in summaries}

    assert by_name["mixed"].counts["COMPLETE"] == 4
    assert by_name["mixed"].best_number == 1

    empty = by_name["empty"]
    assert empty.n_trials == 0
    assert set(empty.counts.values()) == {0}
    assert empty.direction == "maximize"
    assert empty.best_number is None and empty.best_value is None and empty.best_params is None
    assert empty.last_activity is None

    pruned = by_name["pruned-only"]
    assert pruned.counts == {"COMPLETE": 0, "PRUNED": 1, "FAIL": 1, "RUNNING": 0, "WAITING": 0}
    assert pruned.best_number is None
    assert (pruned.data, pruned.task) == ("train.csv", "regression")

    p = by_name["plain"]
    assert (p.engine, p.data, p.task, p.objective) == ("optuna", "?", "?", "value")
    assert p.counts["COMPLETE"] == 3
    assert p.best_value == min(t.value for t in plain.trials)
    assert p.last_activity == max(t.datetime_complete for t in plain.trials)

    # the same answer through a storage instance
    storage = optuna.storages.RDBStorage(url)
    assert [s.name for s in reports.list_studies(storage)] == [s.name for s in summaries]


def test_study_summary_missing(mixed_study: tuple[str, str]) -> None:
    url, _ = mixed_study
    with pytest.raises(reports.StudyNotFound, match="Studies there: 'mixed'"):
        reports.study_summary(url, "other")

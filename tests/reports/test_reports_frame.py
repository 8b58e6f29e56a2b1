from __future__ import annotations

import math
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

import reports
import search
from reports._study import describe_storage


def test_exported_names() -> None:
    assert sorted(reports.__all__) == [
        "Comparison",
        "LearningCurve",
        "OptimizationHistory",
        "ReportError",
        "StorageError",
        "StudyBudget",
        "StudyNotFound",
        "StudySummary",
        "best_summary",
        "compare",
        "failures",
        "history_of",
        "leaderboard",
        "learning_curves_data",
        "list_studies",
        "optimization_history_data",
        "plot_learning_curves",
        "plot_optimization_history",
        "render_comparison",
        "render_report",
        "study_summary",
        "trials_frame",
        "write_comparison",
        "write_report",
    ]
    for name in reports.__all__:
        assert getattr(reports, name) is not None


def test_columns_and_attrs(mixed_study: tuple[str, str], kit) -> None:
    frame = reports.trials_frame(*mixed_study)
    head = ["number", "state", "rank", "value", "val_accuracy", "val_loss", "loss"]
    assert list(frame.columns[:4]) == head[:4]
    assert list(frame.columns[4:7]) == ["val_loss", "val_accuracy", "loss"]
    tail = [
        "best_epoch",
        "epochs_run",
        "max_epochs",
        "early_stopped",
        "pruned",
        "param_count",
        "duration_s",
        "fail_reason",
        "retry_of",
        "param_learning_rate",
        "param_momentum",
        "param_optimizer",
        "param_units",
        "datetime_start",
        "datetime_complete",
    ]
    assert list(frame.columns[7:]) == tail
    assert len(frame) == 8
    assert frame.attrs["study_name"] == "mixed"
    assert frame.attrs["direction"] == "minimize"
    assert frame.attrs["objective"] == "val_loss"
    assert frame.attrs["settings"] == kit.hp_settings()
    assert set(frame.attrs["histories"]) == {0, 1, 2, 3, 4, 5}


def test_ranking_minimize_with_tie(mixed_study: tuple[str, str]) -> None:
    frame = reports.trials_frame(*mixed_study)
    # ranked COMPLETE trials first by rank (tie 1 vs 4 broken by number), then the rest
    assert frame["number"].tolist() == [1, 4, 0, 2, 3, 5, 6, 7]
    assert frame["rank"].tolist()[:4] == [1, 2, 3, 4]
    assert frame["rank"].isna().tolist() == [False] * 4 + [True] * 4
    assert frame["state"].tolist()[4:] == ["PRUNED", "FAIL", "RUNNING", "WAITING"]
    assert frame["value"].tolist()[:4] == pytest.approx([0.3, 0.3, 0.5, 0.9])


def test_ranking_maximize(make_study, kit) -> None:
    acc = "val_accuracy"
    trials = [
        kit.record(kit.curves([0.9, 0.6]), kit.ADAM, objective=acc, direction="maximize"),
        kit.record(kit.curves([0.8, 0.2]), kit.ADAM, objective=acc, direction="maximize"),
        kit.record(kit.curves([0.7, 0.4]), kit.ADAM, objective=acc, direction="maximize"),
        kit.record(kit.curves([0.5, 0.2]), kit.ADAM, objective=acc, direction="maximize"),
    ]
    settings = kit.hp_settings(objective=acc, direction="maximize")
    url, name = make_study("acc", trials, direction="maximize", settings=settings)
    frame = reports.trials_frame(url, name)
    # val_accuracy = 1 - val_loss/4: best values 0.85, 0.95, 0.9, 0.95 -> tie by number
    assert frame["number"].tolist() == [1, 3, 2, 0]
    assert frame["rank"].tolist() == [1, 2, 3, 4]
    assert frame["value"].tolist() == pytest.approx([0.95, 0.95, 0.9, 0.85])
    assert frame.attrs["direction"] == "maximize"
    assert frame.attrs["objective"] == acc
    # the best epoch follows the objective: epoch 1 of trial 1 (lowest val_loss)
    assert frame.loc[0, "best_epoch"] == 1
    assert frame.loc[0, "val_loss"] == pytest.approx(0.2)


def test_row_values(mixed_study: tuple[str, str]) -> None:
    frame = reports.trials_frame(*mixed_study).set_index("number")
    top = frame.loc[1]
    assert top["best_epoch"] == 2
    assert top["epochs_run"] == 5
    assert top["max_epochs"] == 20
    assert top["val_loss"] == pytest.approx(0.3)
    assert top["loss"] == pytest.approx(0.25)
    assert top["val_accuracy"] == pytest.approx(1 - 0.3 / 4)
    assert top["param_count"] == 999
    assert top["param_optimizer"] == "sgd"
    assert top["param_momentum"] == pytest.approx(0.9)
    assert top["param_units"] == 32
    assert not top["early_stopped"]
    assert frame.loc[0, "early_stopped"]
    assert frame.loc[2, "duration_s"] == pytest.approx(1.0)
    # inactive conditional parameter is NA
    assert pd.isna(frame.loc[0, "param_momentum"])
    assert frame["param_units"].dtype == "Int64"
    # pruned and failed
    assert frame.loc[3, "pruned"]
    assert frame.loc[3, "value"] == pytest.approx(1.45)
    assert frame.loc[5, "fail_reason"] == "NaN loss at epoch 1"
    assert pd.isna(frame.loc[1, "fail_reason"])
    # running trial without any record: NA everywhere but what Optuna knows
    running = frame.loc[6]
    assert running["state"] == "RUNNING"
    for column in ("value", "val_loss", "loss", "best_epoch", "epochs_run", "param_count"):
        assert pd.isna(running[column]), column
    assert running["param_units"] == 200
    assert pd.isna(running["param_optimizer"])
    assert not pd.isna(running["datetime_start"])
    assert pd.isna(running["datetime_complete"])
    # the waiting retry points at the failed trial
    assert frame.loc[7, "retry_of"] == 5
    # ... and shows none of the record it inherited from it
    assert pd.isna(frame.loc[7, "epochs_run"]) and pd.isna(frame.loc[7, "fail_reason"])
    assert pd.isna(frame.loc[1, "retry_of"])


def test_running_trial_with_partial_history(make_study, kit) -> None:
    # A trial mid-run: history and best_epoch written, best_metrics not yet.
    trial = optuna.trial.create_trial(
        state=TrialState.RUNNING,
        params=kit.ADAM,
        distributions={k: kit.DISTRIBUTIONS[k] for k in kit.ADAM},
        intermediate_values={0: 0.9, 1: 0.6},
        user_attrs={"history": kit.curves([0.9, 0.6]), "best_epoch": 1, "epochs_run": 2},
    )
    url, name = make_study("live", [trial], settings=kit.hp_settings())
    row = reports.trials_frame(url, name).iloc[0]
    assert row["val_loss"] == pytest.approx(0.6)
    assert row["epochs_run"] == 2
    assert pd.isna(row["rank"])


def test_leaderboard(mixed_study: tuple[str, str]) -> None:
    frame = reports.trials_frame(*mixed_study)
    board = reports.leaderboard(frame)
    assert board["number"].tolist() == [1, 4, 0, 2]
    assert set(board["state"]) == {"COMPLETE"}
    # the verdict from each curve's shape (reports._analysis.diagnose); trial 2 ran 2 epochs
    assert board["fit"].tolist() == ["unstable", "good fit", "good fit", "too short"]
    assert reports.leaderboard(frame, top=2)["number"].tolist() == [1, 4]
    assert reports.leaderboard(frame, top=50)["number"].tolist() == [1, 4, 0, 2]
    with pytest.raises(ValueError, match="--top: expected a number of trials >= 1"):
        reports.leaderboard(frame, top=0)


def test_failures(mixed_study: tuple[str, str]) -> None:
    bad = reports.failures(reports.trials_frame(*mixed_study))
    assert bad["number"].tolist() == [3, 5]
    assert bad["state"].tolist() == ["PRUNED", "FAIL"]
    assert bad["reason"].tolist() == ["pruned at epoch 2 (3 epochs run)", "NaN loss at epoch 1"]
    assert "param_units" in bad.columns


def test_failed_without_reason(make_study) -> None:
    url, name = make_study("f", [optuna.trial.create_trial(state=TrialState.FAIL)])
    bad = reports.failures(reports.trials_frame(url, name))
    assert bad["reason"].tolist() == ["failed (no reason recorded)"]


def test_missing_study_lists_existing(make_study, kit) -> None:
    url, _ = make_study("mixed", kit.mixed_trials())
    make_study("another", [])
    with pytest.raises(reports.StudyNotFound) as info:
        reports.trials_frame(url, "nope")
    message = str(info.value)
    assert "'nope'" in message
    assert "'another'" in message and "'mixed'" in message
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, search.HpsearchError)


def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    with pytest.raises(reports.StudyNotFound, match="no database file"):
        reports.trials_frame(f"sqlite:///{path}", "x")
    assert reports.list_studies(f"sqlite:///{path}") == []
    assert not path.exists()


def test_storage_instance_accepted(mixed_study: tuple[str, str]) -> None:
    url, name = mixed_study
    storage = optuna.storages.RDBStorage(url)
    frame = reports.trials_frame(storage, name)
    assert len(frame) == 8
    assert describe_storage(storage) == "RDBStorage"


def test_password_masked() -> None:
    shown = describe_storage("postgresql+psycopg://hp:s3cret@db.example:5432/hp")
    assert "s3cret" not in shown
    assert "hp:***@db.example" in shown


def test_plain_optuna_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/plain.db"
    study = optuna.create_study(
        storage=url, study_name="plain", sampler=optuna.samplers.RandomSampler(seed=0)
    )

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -3, 3)
        if trial.number == 2:
            raise ValueError("boom")
        return (x - 1) ** 2

    study.optimize(objective, n_trials=5, catch=(ValueError,))
    frame = reports.trials_frame(url, "plain")
    assert frame.attrs["settings"] == {}
    assert frame.attrs["objective"] == "value"
    assert frame["rank"].notna().sum() == 4
    values = frame["value"].tolist()[:4]
    assert values == sorted(values)
    assert frame["val_loss"].isna().all()
    failed = frame[frame["state"] == "FAIL"]
    assert failed["number"].tolist() == [2]
    assert reports.failures(frame)["reason"].tolist() == ["failed (no reason recorded)"]
    assert not math.isnan(frame["duration_s"].iloc[0])


def test_parameter_named_count_keeps_param_count(make_study, kit) -> None:
    trial = optuna.trial.create_trial(
        value=0.5,
        params={"count": 3},
        distributions={"count": optuna.distributions.IntDistribution(1, 5)},
        user_attrs={"param_count": 777},
    )
    url, name = make_study("count", [trial])
    frame = reports.trials_frame(url, name)
    assert frame.loc[0, "param_count"] == 777
    assert frame.loc[0, "param_count_"] == 3
    assert frame.attrs["param_columns"] == {"count": "param_count_"}
    assert "count=3" in reports.render_report(url, name)


def test_integers_out_of_range_read_as_missing(make_study, kit, tmp_path: Path) -> None:
    """A count written by hand as 1e300 (or below 0) is no count: it overflowed pandas'
    Int64 column and failed `trials`, `best` and the report."""
    good = kit.record(kit.curves([0.9, 0.6]), kit.ADAM)
    odd = optuna.trial.create_trial(
        value=0.4,
        params=good.params,
        distributions=good.distributions,
        user_attrs={
            **good.user_attrs,
            "epochs_run": 1e300,
            "best_epoch": -1,
            "param_count": 2**70,
            "max_epochs": -5,
        },
    )
    url, name = make_study("odd", [good, odd], settings=kit.hp_settings())
    frame = reports.trials_frame(url, name)
    best = frame[frame["number"] == 1].iloc[0]
    assert best["rank"] == 1
    for column in ("best_epoch", "param_count", "max_epochs"):
        assert pd.isna(best[column]), column
    assert best["epochs_run"] == 2  # counted from the history, as for a record without it
    assert frame.loc[frame["number"] == 0, "param_count"].item() == 1234
    assert "odd" in reports.write_report(url, name, tmp_path / "r.html").read_text()


def test_unreachable_server_message_hides_password() -> None:
    url = "postgresql+psycopg://hp:s3cret@127.0.0.1:1/hp"  # nothing listens on port 1
    with pytest.raises(reports.StorageError, match="cannot open the storage") as info:
        reports.list_studies(url)
    assert "s3cret" not in str(info.value)
    assert "hp:***@127.0.0.1:1/hp" in str(info.value)


def test_history_of_a_running_trial_is_read_from_its_epoch_rows() -> None:
    """While a trial runs it holds one ``epoch:K`` row per epoch; a retried trial's rows of
    the attempt that died (another ``worker``) are not its own."""
    from optuna.distributions import IntDistribution
    from optuna.trial import TrialState, create_trial

    worker = {"host": "h", "pid": 7, "started": 99}
    dead = {"w": "h:5:11", "m": {"loss": 9.0, "val_loss": 9.0}}
    running = create_trial(
        state=TrialState.RUNNING,
        params={"units": 4},
        distributions={"units": IntDistribution(1, 8)},
        user_attrs={
            "worker": worker,
            "epoch:0": {"w": "h:7:99", "m": {"loss": 1.0, "val_loss": 2.0}},
            "epoch:1": {"w": "h:7:99", "m": {"loss": 0.5, "val_loss": 1.5}},
            "epoch:2": dead,
        },
    )
    assert reports.history_of(running) == {"loss": [1.0, 0.5], "val_loss": [2.0, 1.5]}
    finished = create_trial(
        state=TrialState.COMPLETE,
        value=1.0,
        params={"units": 4},
        distributions={"units": IntDistribution(1, 8)},
        user_attrs={"worker": worker, "epoch:0": dead, "history": {"loss": [3.0]}},
    )
    assert reports.history_of(finished) == {"loss": [3.0]}


def test_a_running_trial_shows_its_epochs_and_best_so_far(make_study, kit) -> None:
    """A running trial (or one whose worker died) holds the claim's ``epochs_run`` 0 and
    its epoch rows: the table shows the epochs it ran and its best epoch so far."""
    worker = {"host": "h", "pid": 7, "started": 99}
    rows = {
        f"epoch:{k}": {"w": "h:7:99", "m": {"loss": loss, "val_loss": val}}
        for k, (loss, val) in enumerate([(1.0, 2.0), (0.5, 1.2), (0.4, 1.5)])
    }
    trial = optuna.trial.create_trial(
        state=TrialState.RUNNING,
        params=kit.ADAM,
        distributions={k: kit.DISTRIBUTIONS[k] for k in kit.ADAM},
        user_attrs={"worker": worker, "epochs_run": 0, "engine": "optuna", **rows},
    )
    url, name = make_study("killed", [trial], settings=kit.hp_settings())
    row = reports.trials_frame(url, name).iloc[0]
    assert row["epochs_run"] == 3
    assert row["best_epoch"] == 1
    assert row["val_loss"] == pytest.approx(1.2) and row["loss"] == pytest.approx(0.5)
    assert pd.isna(row["rank"]) and pd.isna(row["value"])

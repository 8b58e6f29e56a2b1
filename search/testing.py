"""The engine contract as one importable pytest test case (the shape of Optuna's
``optuna.testing.pytest_storages``): every engine passes the same tests.

A test module subclasses :class:`EngineContract` and provides two fixtures: ``engine``
(the keyword arguments that choose an engine and its options for ``search.run``, e.g.
``{"engine": "optuna", "pruner": "none"}``) and ``storage_url`` (a storage URL of a fresh
database). A third engine adds one value to its ``engine`` fixture. Needs pytest (the
``dev`` extra); nothing else imports this module.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

import search
from search._records import TrialRecord
from search._storage import opened_storage
from spaces import Space, parse_space

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
RECORD_KEYS = {
    "history",
    "epochs_run",
    "max_epochs",
    "best_epoch",
    "best_metrics",
    "early_stopped",
    "pruned",
    "param_count",
    "duration_s",
    "engine",
    "worker",
    "rss_mib",
    "params",
    "seed",
    "versions",
    "record",
}
TINY: Space = parse_space(
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
EXPLODING: Space = parse_space(
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
HPSEARCH = str(Path(sys.executable).with_name("hpsearch"))


def stored(name: str, url: str) -> tuple[dict[str, Any], list[FrozenTrial]]:
    """The study's user attributes and trials, read on a connection closed afterwards."""
    with opened_storage(url, for_writing=False) as storage:
        study = optuna.load_study(study_name=name, storage=storage)
        return study.user_attrs, study.get_trials()


def point(trial: FrozenTrial) -> tuple[Any, ...]:
    """What a trial evaluates: its params and the epochs it was allowed (a Hyperband round
    trains a point again with more epochs)."""
    return (*sorted(trial.params.items()), TrialRecord.of(trial).max_epochs)


def check_record(trial: FrozenTrial, objective: str = "val_loss") -> TrialRecord:
    """The record of a finished trial, as docs/architecture.md states it."""
    assert set(trial.user_attrs) >= RECORD_KEYS, sorted(RECORD_KEYS - set(trial.user_attrs))
    record = TrialRecord.of(trial)
    ran = record.epochs_run
    assert ran is not None and record.max_epochs is not None
    assert 1 <= ran <= record.max_epochs
    assert all(len(v) == ran for v in record.history.values())
    # Intermediate values are the objective after each epoch.
    assert sorted(trial.intermediate_values) == list(range(ran))
    assert [trial.intermediate_values[i] for i in range(ran)] == pytest.approx(
        record.history[objective]
    )
    if trial.state == TrialState.COMPLETE:
        # The value is the best objective over the epochs run, at best_epoch.
        assert record.best_epoch is not None
        assert trial.value == pytest.approx(min(record.history[objective]))
        assert record.history[objective][record.best_epoch] == pytest.approx(trial.value)
        assert record.best_metrics[objective] == pytest.approx(trial.value)
        assert record.early_stopped == (ran < record.max_epochs)
        assert record.pruned is False
    assert record.param_count is not None and record.param_count > 0
    assert record.fail_reason is None
    return record


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HPSEARCH_STORAGE"}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"})
    return env


def cli_args(engine: dict[str, Any]) -> list[str]:
    """The options of ``hpsearch run`` that choose ``engine``."""
    return [arg for key, value in engine.items() for arg in (f"--{key}", str(value))]


class EngineContract:
    """What every engine guarantees (search/engines/_base.py), tested end to end."""

    pytestmark = pytest.mark.slow

    def test_every_trial_stores_the_record_and_resume_reaches_the_new_target(
        self, engine: dict[str, Any], storage_url: str
    ) -> None:
        result = search.run(
            "iris", TINY, trials=3, epochs=4, patience=1, storage=storage_url,
            write_report=False, **engine,
        )  # fmt: skip
        assert result.finished == 3 and result.stopped == "target"
        attrs, trials = stored(result.study, storage_url)
        settings = attrs["hpsearch"]
        assert settings["engine"] == engine["engine"]
        first = {t.number: (t.params, t.value) for t in trials}
        for trial in trials:
            assert trial.state == TrialState.COMPLETE
            record = check_record(trial)
            assert record.engine == engine["engine"]
            assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(record.history)
            # Conditionals: momentum exists exactly when the optimizer is sgd.
            assert ("momentum" in trial.params) == (trial.params["optimizer"] == "sgd")
            assert "batch_size" not in trial.params  # fixed values are not sampled

        again = search.resume(result.study, storage=storage_url, trials=5, write_report=False)
        assert again.finished == 5
        _, trials = stored(result.study, storage_url)
        assert len(trials) == 5
        for number, (params, value) in first.items():
            assert trials[number].params == params and trials[number].value == value
        assert len({point(t) for t in trials}) == 5, "a resumed search repeated a point"

        # A study at its target runs nothing more.
        done = search.resume(result.study, storage=storage_url, write_report=False)
        assert done.stopped == "already" and done.finished == 5

    def test_failed_trials_store_a_reason_and_too_many_in_a_row_abort(
        self, engine: dict[str, Any], storage_url: str
    ) -> None:
        with pytest.raises(search.SearchAborted, match="2 failed trials in a row") as info:
            search.run(
                "diabetes", EXPLODING, trials=3, epochs=5, max_failures=2,
                storage=storage_url, study="boom", write_report=False, **engine,
            )  # fmt: skip
        # Its points diverge: resuming would sample the same space, so the way on is a new
        # study.
        assert "same space" in str(info.value) and "--study boom-2" in str(info.value)
        _, trials = stored("boom", storage_url)
        assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
        for trial in trials:
            record = TrialRecord.of(trial)
            reason = record.fail_reason or ""
            assert "became" in reason and ("nan" in reason or "inf" in reason), reason
            assert record.epochs_run is not None and record.epochs_run >= 1

    def test_workers_started_together_reach_the_exact_target_without_repeating_a_point(
        self, engine: dict[str, Any], storage_url: str
    ) -> None:
        result = search.run(
            "iris", TINY, trials=6, epochs=2, patience=2, storage=storage_url,
            workers=2, write_report=False, **engine,
        )  # fmt: skip
        assert result.finished == 6 and result.stopped == "target"
        _, trials = stored(result.study, storage_url)
        assert len(trials) == 6, "a worker started a trial the study did not need"
        assert len({point(t) for t in trials}) == 6, "two workers evaluated the same point"
        for trial in trials:
            check_record(trial)
        assert len({TrialRecord.of(t).worker["pid"] for t in trials}) == 2  # type: ignore[index]

    def test_killed_mid_trial_the_same_command_continues_and_reports(
        self, engine: dict[str, Any], tmp_path: Path
    ) -> None:
        """kill -9 through the real CLI: no finished trial lost or repeated, the killed one
        retried once, the report names the engine."""
        db = tmp_path / "hpsearch.db"
        url = f"sqlite:///{db}"
        args = [HPSEARCH, "run", "--data", "digits", "--space", "small", "--study", "k9",
                "--trials", "3", "--epochs", "200", "--patience", "200", *cli_args(engine),
                "--quiet"]  # fmt: skip
        with (tmp_path / "stderr.txt").open("w+") as stderr:
            proc = subprocess.Popen(
                args, cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip
            try:
                victim = wait_for_running_trial(url, "k9", proc, after_finished=1)
            finally:
                ended = proc.poll()
                proc.kill()  # SIGKILL: no cleanup of any kind
                proc.wait()
            stderr.seek(0)
            said = stderr.read()
        assert victim is not None, f"no second trial in time (exit {ended}): {said}"
        assert proc.returncode == -signal.SIGKILL
        before = {t.number: t.value for t in stored("k9", url)[1] if t.state in FINISHED}
        # The report reads a study whose last trial is still marked running.
        early = subprocess.run(
            [HPSEARCH, "report", "k9", "-o", "early.html"], cwd=tmp_path, env=_env(),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert early.returncode == 0, early.stderr
        assert "RUNNING" in (tmp_path / "early.html").read_text().upper()

        again = subprocess.run(
            args, cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL, capture_output=True,
            text=True, timeout=900,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        _, trials = stored("k9", url)
        killed = trials[victim.number]
        assert killed.state == TrialState.FAIL
        assert "died" in (TrialRecord.of(killed).fail_reason or "")
        retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
        assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
        assert retries[0].params == victim.params
        for number, value in before.items():
            assert trials[number].value == value  # kept, not repeated
        assert sum(t.state in FINISHED for t in trials) == 3
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        # The points, in their order and with their seeds, that the same command gives
        # uninterrupted: the retry took no point of its own. The first points of a search do
        # not depend on results (TPE's and the Bayesian oracle's random start), so the
        # uninterrupted search trains one epoch a trial.
        fresh = [t for t in trials if "failed_trial" not in t.system_attrs]
        whole_db = tmp_path / "whole.db"
        reference = subprocess.run(
            [*args[:7], "k9-whole", "--trials", "3", "--epochs", "1", *cli_args(engine),
             "--quiet", "--no-report", "--storage", f"sqlite:///{whole_db}"],
            cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL, capture_output=True,
            text=True, timeout=900,
        )  # fmt: skip
        assert reference.returncode == 0, reference.stderr
        whole = stored("k9-whole", f"sqlite:///{whole_db}")[1]
        assert [t.params for t in fresh] == [t.params for t in whole[: len(fresh)]]
        assert [TrialRecord.of(t).seed for t in fresh] == [
            TrialRecord.of(t).seed for t in whole[: len(fresh)]
        ]
        assert TrialRecord.of(retries[0]).seed == TrialRecord.of(killed).seed
        report = tmp_path / "k9-report.html"
        assert report.is_file() and Path(again.stdout.strip()) == report.resolve()
        assert engine["engine"] in report.read_text()


def wait_for_running_trial(
    url: str, study: str, proc: subprocess.Popen[Any], *, after_finished: int = 0
) -> FrozenTrial | None:
    """Poll until a trial has run two epochs, once ``after_finished`` trials finished; None
    if the search ended first or took over eight minutes (CI machines may be busy)."""
    deadline = time.monotonic() + 480
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            trials = stored(study, url)[1]
        except Exception:  # the database or the study does not exist yet
            continue
        if sum(t.state in FINISHED for t in trials) < after_finished:
            continue
        for trial in trials:
            ran = len(TrialRecord.of(trial).history.get("loss", []))
            if trial.state == TrialState.RUNNING and ran >= 2:
                return trial
    return None

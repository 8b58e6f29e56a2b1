"""Storage URLs, password masking, and failing the trials of dead workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search import StorageError
from search._storage import (
    DEFAULT_STORAGE,
    fail_dead_trials,
    mask_url,
    open_storage,
    opened_storage,
    resolve_url,
    worker_identity,
)


def test_resolve_url_flag_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPSEARCH_STORAGE", raising=False)
    assert resolve_url(None) == DEFAULT_STORAGE == "sqlite:///hpsearch.db"
    monkeypatch.setenv("HPSEARCH_STORAGE", "sqlite:///from-env.db")
    assert resolve_url(None) == "sqlite:///from-env.db"
    assert resolve_url("sqlite:///flag.db") == "sqlite:///flag.db"
    assert resolve_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"


def test_passwords_are_masked() -> None:
    url = "postgresql+psycopg://alice:s3cret-pw@db.example:5432/studies"
    assert "s3cret-pw" not in mask_url(url)
    assert "alice" in mask_url(url) and "db.example" in mask_url(url)


def test_errors_never_show_the_password() -> None:
    url = "postgresql+psycopg://alice:s3cret-pw@127.0.0.1:1/nowhere"
    with pytest.raises(StorageError) as info:
        open_storage(url, for_writing=False)
    assert "s3cret-pw" not in str(info.value)
    assert "cannot open the storage" in str(info.value)


def test_reading_a_missing_sqlite_file_does_not_create_it(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(StorageError, match="no database file"):
        open_storage(f"sqlite:///{path}", for_writing=False)
    assert not path.exists()
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path / 'no' / 'dir.db'}")


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_trial_whose_local_process_died_is_failed_and_retried_once(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead_worker = {**worker_identity(), "pid": int(dead.stdout), "started": 1}
    url = f"sqlite:///{tmp_path / 'dead.db'}"
    with opened_storage(url) as storage:
        study = optuna.create_study(study_name="s", storage=storage)
        finished = study.ask()
        finished.suggest_int("units", 1, 100)
        study.tell(finished, 1.0)
        orphan = study.ask()
        orphan.suggest_int("units", 1, 100)
        orphan.set_user_attr("worker", dead_worker)
        alive = study.ask()
        alive.suggest_int("units", 1, 100)
        alive.set_user_attr("worker", worker_identity())  # this very process: alive

        assert fail_dead_trials(study) == [orphan.number]
        trials = study.get_trials()
        assert trials[orphan.number].state == TrialState.FAIL
        assert "died" in trials[orphan.number].user_attrs["fail_reason"]
        assert trials[alive.number].state == TrialState.RUNNING
        assert trials[finished.number].state == TrialState.COMPLETE
        retry = trials[-1]
        assert retry.state == TrialState.WAITING
        assert retry.system_attrs["failed_trial"] == orphan.number
        assert retry.params == trials[orphan.number].params
        # Nothing more to do on a second look.
        assert fail_dead_trials(study) == []

"""Storage URLs, the default SQLite file, heartbeats and dead workers.

Every study lives in an Optuna RDB storage: a SQLite file by default, PostgreSQL for many
workers and machines. Messages show URLs with the password masked, never in clear.
"""

from __future__ import annotations

import contextlib
import copy
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

from search._errors import StorageError, StudyNotFound

DEFAULT_STORAGE = "sqlite:///hpsearch.db"
STORAGE_ENV = "HPSEARCH_STORAGE"
# A running trial's process writes a heartbeat this often (seconds); one silent for
# GRACE_PERIOD is taken as dead, failed, and retried once.
HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 30
MAX_RETRY = 1


def resolve_url(url: str | None = None) -> str:
    """The storage URL to use: the one given, else $HPSEARCH_STORAGE, else ./hpsearch.db."""
    chosen = url or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE
    if chosen.startswith(("postgresql://", "postgres://")):
        # SQLAlchemy's default PostgreSQL driver is psycopg2; hpsearch ships psycopg 3.
        chosen = "postgresql+psycopg://" + chosen.split("://", 1)[1]
    if chosen.startswith("postgresql+psycopg://"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StorageError(
                f"{mask_url(chosen)}: PostgreSQL storage needs psycopg; "
                "install hpsearch's 'postgres' extra (pip install -e '.[postgres]')"
            ) from None
    if "://" not in chosen:
        raise StorageError(
            f"--storage: expected a database URL such as {DEFAULT_STORAGE} or "
            f"postgresql://user@host/db; got {mask_url(chosen)!r}."
        )
    return chosen


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: hide everything after a colon
        if "@" in url:
            head, _, tail = url.rpartition("@")
            scheme, _, _ = head.partition("://")
            return f"{scheme}://***@{tail}"
        return url


def _clean_reason(exc: BaseException, url: str) -> str:
    """An exception message with any password of the URL removed."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        from sqlalchemy.engine import make_url

        password = make_url(url).password
    except Exception:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return text


def sqlite_path(url: str) -> Path | None:
    """The file of a sqlite:/// URL, None for other databases or in-memory SQLite."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def open_storage(url: str | None = None, *, for_writing: bool = True) -> RDBStorage:
    """Open (for writing: create if needed) the storage, with heartbeats when writing.

    Reading a SQLite file that does not exist is an error rather than a new empty file.
    """
    resolved = resolve_url(url)
    path = sqlite_path(resolved)
    if path is not None:
        if not for_writing and not path.is_file():
            raise StorageError(f"{mask_url(resolved)}: no database file at {path}.")
        if for_writing and not path.parent.exists():
            raise StorageError(f"{mask_url(resolved)}: the folder {path.parent} does not exist.")
    engine_kwargs: dict[str, Any] = {}
    if path is not None:
        # Several processes may write one SQLite file (a search and a heartbeat thread,
        # a report read while a search runs): wait for locks rather than fail at once.
        engine_kwargs["connect_args"] = {"timeout": 60}
    kwargs: dict[str, Any] = {}
    if for_writing:
        # Heartbeats and the retry callback are marked experimental by Optuna; we rely on
        # them deliberately (docs/architecture.md, "Resume and dead workers").
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        kwargs = {
            "heartbeat_interval": HEARTBEAT_INTERVAL,
            "grace_period": GRACE_PERIOD,
            "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
        }
    try:
        return RDBStorage(resolved, engine_kwargs=engine_kwargs, **kwargs)
    except Exception as exc:
        raise StorageError(
            f"{mask_url(resolved)}: cannot open the storage: {_clean_reason(exc, resolved)}"
        ) from None


def close_storage(storage: RDBStorage) -> None:
    """Release the storage's database connections (its engine's pool)."""
    storage.remove_session()
    storage.engine.dispose()


@contextlib.contextmanager
def opened_storage(url: str | None = None, *, for_writing: bool = True) -> Iterator[RDBStorage]:
    """``open_storage`` as a context manager that closes the connections afterwards."""
    storage = open_storage(url, for_writing=for_writing)
    try:
        yield storage
    finally:
        close_storage(storage)


def study_names(storage: RDBStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]


def missing_study(storage: RDBStorage, name: str, url: str, hint: str = "") -> StudyNotFound:
    """The error for a study that is not stored, listing the studies there are."""
    names = sorted(study_names(storage))
    listing = ", ".join(names) if names else "none"
    return StudyNotFound(
        f"{mask_url(url)}: no study named {name!r}; studies there: {listing}.{hint}"
    )


def require_study(storage: RDBStorage, name: str, url: str) -> None:
    """Raise StudyNotFound (see ``missing_study``) when ``name`` is not stored."""
    if name not in study_names(storage):
        raise missing_study(storage, name, url)


# --- dead workers ---------------------------------------------------------------------


def worker_identity() -> dict[str, Any]:
    """Who runs a trial: stored on the trial so a later process can tell if it died."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _process_start(pid)}


def _process_start(pid: int) -> int | None:
    """The start time of a process in clock ticks since boot (Linux), to tell a live
    process from a new one that reuses a dead one's pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces, so count from its ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(worker: dict[str, Any]) -> bool:
    pid = int(worker.get("pid", -1))
    if pid <= 0:
        return True  # unknown: leave it to the heartbeat
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = worker.get("started")
    return started is None or _process_start(pid) in (None, started)


def fail_dead_trials(study: optuna.Study) -> list[int]:
    """Fail the RUNNING trials whose process is gone, and queue their retry.

    A trial run on this host whose process no longer exists is failed at once; trials of
    other hosts are left to the heartbeat (``optuna.storages.fail_stale_trials``), which is
    also run here. Returns the numbers of the trials failed.
    """
    storage = study._storage
    host = socket.gethostname()
    failed: list[FrozenTrial] = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if not isinstance(worker, dict) or worker.get("host") != host or _alive(worker):
            continue
        reason = f"its worker process (pid {worker.get('pid')} on {host}) died mid-trial"
        try:
            storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                failed.append(copy.deepcopy(storage.get_trial(trial._trial_id)))
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process got there first
    # study._storage may wrap the RDBStorage (Optuna's cache layer): ask for the interface.
    callback = (
        storage.get_heartbeat_stale_trial_callback() if isinstance(storage, BaseHeartbeat) else None
    )
    for trial in failed:
        if callback is not None:
            callback(study, trial)
    numbers = [t.number for t in failed]
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    optuna.storages.fail_stale_trials(study)
    after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    return numbers + sorted(before - after)

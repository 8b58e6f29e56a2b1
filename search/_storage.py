"""Storage URLs, the default SQLite file, locks, retries, heartbeats and dead workers.

Every study lives in an Optuna RDB storage: a SQLite file by default, PostgreSQL for many
workers and machines. Messages show URLs with the password masked, never in clear.

Many workers share one storage. What they must not do at the same time is serialised by
``exclusive(url, name)``: an ``flock`` on a file beside a SQLite database (one machine), a
PostgreSQL advisory lock (any number of machines). Creating the schema and claiming a trial
(count the study's trials, then create one) happen under it. A storage opened for writing
rides out a lost connection (a PostgreSQL restart): every call is retried with backoff for
up to ``$HPSEARCH_DB_RETRY`` seconds (default 60), then StorageUnavailable is raised.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import functools
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

from search._errors import StorageError, StorageUnavailable, StudyNotFound

DEFAULT_STORAGE = "sqlite:///hpsearch.db"
STORAGE_ENV = "HPSEARCH_STORAGE"
# A running trial's process writes a heartbeat this often (seconds); one silent for
# GRACE_PERIOD is taken as dead, failed, and retried once.
HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 30
MAX_RETRY = 1
# How long a worker keeps retrying a database it lost (seconds), and the variable that sets it.
RETRY_ENV = "HPSEARCH_DB_RETRY"
DEFAULT_RETRY_S = 60.0
F = TypeVar("F", bound=Callable[..., Any])


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
    Writing creates the schema once, under ``exclusive``, however many workers start at the
    same instant; the storage then retries calls that lose the connection (see the module).
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
        # Several processes write one SQLite file (workers, heartbeat threads, a report read
        # while a search runs): wait for locks rather than fail at once.
        engine_kwargs["connect_args"] = {"timeout": 60}
    elif "://" in resolved and not resolved.startswith("sqlite"):
        # A server may restart under a long search: test a pooled connection before use.
        engine_kwargs["pool_pre_ping"] = True
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
        if not for_writing:
            return RDBStorage(resolved, engine_kwargs=engine_kwargs, **kwargs)
        with exclusive(resolved, "schema"):
            storage = RDBStorage(resolved, engine_kwargs=engine_kwargs, **kwargs)
            if path is not None:
                _use_wal(storage)
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(
            f"{mask_url(resolved)}: cannot open the storage: {_clean_reason(exc, resolved)}"
        ) from None
    return _resilient(storage, resolved)


def _use_wal(storage: RDBStorage) -> None:
    """SQLite in write-ahead-log mode: readers never block the writer, and a commit costs no
    fsync (``synchronous=NORMAL``; a power cut may lose the last commits, never the file).
    The journal mode is stored in the file; ``synchronous`` is set on every connection."""
    import sqlalchemy

    with storage.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    storage.engine.dispose()

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(storage.engine, "connect", on_connect)


# --- locks ----------------------------------------------------------------------------


@contextlib.contextmanager
def exclusive(url: str, name: str) -> Iterator[None]:
    """Hold the lock ``name`` of the storage at ``url`` against every other process.

    SQLite: ``flock`` on ``<database>.lock`` beside the file (SQLite serves one machine).
    PostgreSQL: a session advisory lock, on a connection of its own, so workers on any number
    of machines queue for it. Both are released if the process dies. Other databases get no
    cross-process lock.
    """
    path = sqlite_path(url)
    if path is not None:
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock
        return
    if not url.startswith("postgresql"):
        yield
        return
    from sqlalchemy import text

    key = {"k": f"hpsearch:{name}"}

    def connect_and_lock() -> Any:
        conn = _lock_engine(url).connect()
        try:
            conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), key)
            conn.commit()
        except BaseException:
            conn.close()
            raise
        return conn

    # A server restart drops the lock with its connection; taking it again waits it out.
    with retrying(connect_and_lock, url)() as conn:
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # a dead connection released it already
                conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), key)
                conn.commit()


@functools.lru_cache(maxsize=4)
def _lock_engine(url: str) -> Any:
    """An engine without a pool: a lock's connection closes (and frees the lock) with it."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    return sqlalchemy.create_engine(url, poolclass=NullPool)


# --- riding out a lost database ------------------------------------------------------


def retry_limit() -> float:
    """Seconds a worker retries a lost database: ``$HPSEARCH_DB_RETRY``, else 60."""
    raw = os.environ.get(RETRY_ENV, "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_RETRY_S
    except ValueError:
        raise StorageError(f"${RETRY_ENV}: expected seconds, e.g. 60; got {raw!r}.") from None


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a lost or refused connection, or a busy
    SQLite file: worth retrying, unlike a constraint or a schema error."""
    import sqlalchemy.exc

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            return True
        if type(seen).__name__ in ("OperationalError", "InterfaceError") and type(
            seen
        ).__module__.startswith(("psycopg", "sqlite3")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


_depth = threading.local()


def retrying(func: F, url: str, limit: float | None = None) -> F:
    """``func`` retried with backoff while it fails on a lost connection, for up to
    ``limit`` seconds (``retry_limit()``); then StorageUnavailable, naming the storage."""

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        if getattr(_depth, "active", False):  # an inner call of a retried call
            return func(*args, **kwargs)
        budget = retry_limit() if limit is None else limit
        deadline: float | None = None
        delay = 0.2
        _depth.active = True
        try:
            while True:
                try:
                    return func(*args, **kwargs)
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    now = time.monotonic()
                    deadline = now + budget if deadline is None else deadline
                    if now >= deadline:
                        raise StorageUnavailable(
                            f"{mask_url(url)}: lost the database for {budget:.0f} s "
                            f"({_clean_reason(exc, url)}); the trials it holds are kept"
                        ) from None
                    time.sleep(min(delay, deadline - now))
                    delay = min(delay * 2, 5.0)
        finally:
            _depth.active = False

    return call  # type: ignore[return-value]


# RDBStorage methods that are not database calls.
_LOCAL = frozenset(
    {
        "get_heartbeat_interval",
        "get_heartbeat_stale_trial_callback",
        "get_failed_trial_callback",
        "remove_session",
        "is_heartbeat_enabled",
    }
)


def _resilient(storage: RDBStorage, url: str) -> RDBStorage:
    """The storage with every database call retried on a lost connection (``retrying``).

    The wrappers are set on the instance, so Optuna's cache layer, which calls the storage's
    methods, is covered too."""
    for name, member in vars(RDBStorage).items():
        if name.startswith("__") or name in _LOCAL or not callable(member):
            continue
        if isinstance(member, staticmethod | classmethod):
            continue
        setattr(storage, name, retrying(getattr(storage, name), url))
    return storage


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
    also run here. A trial that never got its ``worker`` (its process died between creating
    and claiming it, which takes milliseconds) is failed once it is GRACE_PERIOD old.
    Returns the numbers of the trials failed.
    """
    storage = study._storage
    host = socket.gethostname()
    failed: list[FrozenTrial] = []
    now = datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if not isinstance(worker, dict):
            started = trial.datetime_start
            if started is None or (now - started).total_seconds() < GRACE_PERIOD:
                continue
            reason = "its worker died before claiming it"
        elif worker.get("host") != host or _alive(worker):
            continue
        else:
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

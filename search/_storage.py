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
import dataclasses
import fcntl
import functools
import os
import re
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from search._defaults import DEFAULT_STORAGE as DEFAULT_STORAGE
from search._defaults import STORAGE_ENV as STORAGE_ENV
from search._errors import ConfigError, StorageError, StorageUnavailable, StudyNotFound
from search._records import EPOCH_PREFIX, INTERRUPTED, TrialRecord

# A running trial's process writes a heartbeat this often (seconds); one silent for
# GRACE_PERIOD is taken as dead, failed, and retried once (MAX_RETRY: attempts stopped by
# the user, failed as INTERRUPTED, are not counted).
HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 30
MAX_RETRY = 1
# A retry's system attribute: how many attempts of its point the user stopped.
INTERRUPTS = "interrupts"
# How long a worker keeps retrying a database it lost (seconds), and the variable that sets it.
RETRY_ENV = "HPSEARCH_DB_RETRY"
DEFAULT_RETRY_S = 60.0
# How long SQLite itself waits for a lock before a call fails as "database is locked" (and is
# retried, above). Python runs no signal handler while SQLite waits: Ctrl-C takes effect at
# most this late.
SQLITE_BUSY_S = 5.0
F = TypeVar("F", bound=Callable[..., Any])


def resolve_url(url: str | None = None) -> str:
    """The storage URL to use: the one given, else $HPSEARCH_STORAGE, else ./hpsearch.db."""
    chosen = url or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE
    try:
        chosen.encode("utf-8")
    except UnicodeEncodeError:  # a file name in another encoding, given on a command line
        shown = chosen.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        shown = shown if shown.startswith("sqlite") else mask_url(shown)  # no password there
        raise ConfigError(
            f"--storage '{shown}': the URL holds bytes that are not UTF-8 (a file or "
            "folder name in another encoding), and the database drivers take text only; "
            "rename it or give another --storage."
        ) from None
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
    scheme = chosen.partition("://")[0].split("+")[0]
    parsed = _parsed(chosen) if scheme == "postgresql" else None
    if parsed is not None and "@" in str(parsed.password or ""):
        # A password holding an unencoded '@': the driver would split the URL at it (and
        # quote the rest as a host name), so it gets the password percent-encoded.
        chosen = str(parsed.render_as_string(hide_password=False))
    if scheme == "postgresql" and parsed is None:
        # Before any driver sees it: its error would quote the URL's pieces, password too.
        raise ConfigError(
            f"--storage {mask_url(chosen)!r}: the URL cannot be read (a port that is not a "
            "number, or a password holding '@', ':' or '/' unencoded?); write it as "
            "postgresql://user:password@host:port/db with those characters percent-encoded "
            "(@ as %40, : as %3A, / as %2F), or give the password in PGPASSWORD."
        )
    if parsed is not None and parsed.port is not None and not 0 < parsed.port < 65536:
        raise ConfigError(
            f"--storage {mask_url(chosen)!r}: port {parsed.port} is not a TCP port (1 to "
            "65535); PostgreSQL listens on 5432 unless set otherwise."
        )
    driver = chosen.partition("://")[0].partition("+")[2]
    if scheme == "postgresql" and driver and driver != "psycopg":
        # hpsearch ships psycopg 3 and chooses it itself; another driver is not installed
        # (its error would read like a server that cannot be reached).
        plain = "postgresql://" + mask_url(chosen).split("://", 1)[1]
        raise ConfigError(
            f"--storage {mask_url(chosen)!r}: hpsearch talks to PostgreSQL through psycopg 3 "
            f"and chooses it itself; drop '+{driver}': --storage {plain!r}."
        )
    if "://" in chosen and scheme not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"--storage {mask_url(chosen)!r}: hpsearch keeps studies in SQLite "
            "(sqlite:///FILE) or PostgreSQL (postgresql://user@host/db), whose locks keep many "
            f"workers exact; got a {scheme!r} URL."
        )
    path = sqlite_path(chosen)
    if chosen.startswith("sqlite:") and path is None:
        memory = chosen.split("?")[0] in ("sqlite://", "sqlite:///", "sqlite:///:memory:")
        raise ConfigError(
            f"--storage {chosen!r}: an in-memory SQLite database lives in one process and "
            "vanishes with it; give a file, e.g. sqlite:///hpsearch.db."
            if memory
            else f"--storage {chosen!r}: a SQLite URL is sqlite:/// then the file's path "
            "(three slashes; four for an absolute path: sqlite:////data/hpsearch.db)."
        )
    if path is not None and path.is_dir():
        raise ConfigError(
            f"--storage {chosen!r}: {str(path)!r} is a folder; give a database file, e.g. "
            f"sqlite:///{(path / 'hpsearch.db').as_posix()}."
        )
    if "://" not in chosen:
        raise ConfigError(
            f"--storage: expected a database URL such as {DEFAULT_STORAGE} or "
            f"postgresql://user@host/db; got {mask_url(chosen)!r}."
        )
    return chosen


# Query parameters of a database URL that carry secrets (libpq and its drivers accept a
# password as ``?password=``; ``sslpassword`` unlocks a client key).
_SECRET_KEYS = ("password", "passwd", "pwd", "sslpassword", "secret", "token")
MASK = "***"


def _parsed(url: str) -> Any:
    """The URL as SQLAlchemy reads it, with a password holding an unencoded ``@`` (which
    SQLAlchemy splits at its first ``@``) made whole again; None when it cannot be read."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return None
    host = parsed.host or ""
    if parsed.password is not None and "@" in host:
        rest, _, host = host.rpartition("@")
        parsed = parsed.set(password=f"{parsed.password}@{rest}", host=host)
    return parsed


def _secret_key(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_KEYS)


def url_secrets(url: str) -> list[str]:
    """Every secret the URL holds, in every spelling a message may show it (as written,
    percent-decoded, percent-encoded), longest first."""
    from urllib.parse import quote, quote_plus, unquote

    found: set[str] = set()
    parsed = _parsed(url)
    if parsed is not None:
        if parsed.password:
            found.add(str(parsed.password))
        for key, value in parsed.query.items():
            if _secret_key(key):
                found.update([value] if isinstance(value, str) else value)
    _, sep, rest = url.partition("://")
    rest = rest if sep else url
    if "@" in rest:  # what stands between "user:" and the host, however odd
        userinfo = rest.rpartition("@")[0]
        if ":" in userinfo and "/" not in userinfo.split(":", 1)[0]:
            found.add(userinfo.split(":", 1)[1])
    for secret in list(found):
        # A password with an unencoded "@" reaches the driver split there: each piece is
        # shown as part of a user or a host name.
        found.update(piece for piece in re.split("[@:]", secret) if len(piece) >= 4)
    spelled = set()
    for secret in found:
        spelled.update({secret, unquote(secret), quote(secret, safe=""), quote_plus(secret)})
    return sorted((s for s in spelled if s), key=len, reverse=True)


def storage_option(url: str | None) -> str:
    """`` --storage URL`` for a command shown to a person, "" for the default storage (a
    password in the URL shows as ``***``, to fill in)."""
    import shlex

    if not url or url == DEFAULT_STORAGE:
        return ""
    return f" --storage {shlex.quote(mask_url(url))}"


def resume_command(study: str, url: str | None, command: str = "resume") -> str:
    """The command that continues ``study`` (``storage_option``): ``hpsearch resume``, or
    another command on the study (``worker``)."""
    import shlex

    return f"hpsearch {command} {shlex.quote(study)}{storage_option(url)}"


def mask_url(url: str) -> str:
    """The URL as it may be shown: its password, and any secret query parameter, ``***``;
    a PostgreSQL URL as the user writes it (``postgresql://``: hpsearch chooses psycopg 3
    itself).

    Every form SQLAlchemy accepts is read with its URL object; what it cannot read is
    shown as its scheme only."""
    shown = _masked(url)
    if shown.startswith("postgresql+psycopg://"):
        return "postgresql://" + shown.split("://", 1)[1]
    return shown


def storage_key(url: str) -> str:
    """One string per database, for the names made from it (a default report file, the
    checkpoints' folder): the URL without its password, so that the same database gives the
    same names whether the URL holds the password or not (PGPASSWORD, ~/.pgpass)."""
    parsed = _parsed(url)
    if parsed is not None:
        query = {key: value for key, value in parsed.query.items() if not _secret_key(key)}
        if parsed.password is not None or query != dict(parsed.query):
            parsed = parsed._replace(password=None).set(query=query)
            url = str(parsed.render_as_string(hide_password=False))
    return _masked(url)


def _masked(url: str) -> str:
    parsed = _parsed(url)
    if parsed is None:
        scheme, sep, _ = url.partition("://")
        if sep:
            return f"{scheme}://{MASK}"
        return f"{MASK}@{url.rpartition('@')[2]}" if "@" in url else url
    query = {key: (MASK if _secret_key(key) else value) for key, value in parsed.query.items()}
    if parsed.password is None and query == dict(parsed.query):
        return _after_scheme(url, url)  # nothing to mask: as the user spelled it
    if parsed.password is not None:
        parsed = parsed.set(password=MASK)
    if query != dict(parsed.query):
        parsed = parsed.set(query=query)
    shown = str(parsed.render_as_string(hide_password=False))
    return _after_scheme(shown.replace("%2A%2A%2A", MASK), url)


def _after_scheme(shown: str, url: str) -> str:
    """``shown`` (a URL) with the secrets of ``url`` masked after its scheme: a password
    such as "postgres" leaves "postgresql://" whole (a user or database of the same name
    is masked too)."""
    scheme, sep, rest = shown.partition("://")
    return f"{scheme}{sep}{_without_secrets(rest, url)}" if sep else _without_secrets(shown, url)


def redact(text: str, url: str | None) -> str:
    """``text`` with the URL shown masked and each of its secrets replaced by ``***``
    elsewhere; the URL, as given or already masked, is shown whole (its scheme intact)."""
    import re

    if not url:
        return text
    shown = mask_url(url)
    kept = {url: shown, shown: shown, _masked(url): _masked(url)}
    if url.startswith("postgresql+psycopg://"):  # also as the user typed it
        kept["postgresql://" + url.split("://", 1)[1]] = shown
    pattern = "|".join(re.escape(form) for form in sorted(kept, key=len, reverse=True))
    pieces = re.split(f"({pattern})", text)
    # Even pieces lie between the URL's occurrences, odd ones are occurrences.
    return "".join(
        kept[piece] if i % 2 else _without_secrets(piece, url) for i, piece in enumerate(pieces)
    )


def _without_secrets(text: str, url: str) -> str:
    import re

    for secret in url_secrets(url):
        if secret in (MASK, "%2A%2A%2A"):
            continue
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
        else:
            # A short secret only where it stands alone: not inside a word, nor a part of a
            # dotted name or address ("127" of "127.0.0.1").
            text = re.sub(
                rf"(?<![A-Za-z0-9])(?<![A-Za-z0-9]\.){re.escape(secret)}(?!\.?[A-Za-z0-9])",
                MASK,
                text,
            )
    return text


def _clean_reason(exc: BaseException, url: str) -> str:
    """An exception's first line with every secret of the URL removed."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return redact(text, url)


def sqlite_path(url: str) -> Path | None:
    """The file of a sqlite:/// URL, None for other databases or in-memory SQLite."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def open_storage(
    url: str | None = None, *, for_writing: bool = True, patient: bool = True
) -> RDBStorage:
    """Open (for writing: create if needed) the storage, with heartbeats when writing.

    Reading a SQLite file that does not exist is an error rather than a new empty file.
    Writing creates the schema once, under ``exclusive``, however many workers start at the
    same instant; the storage then retries calls that lose the connection (see the module).
    Not ``patient`` (a command the user just started): a database server that cannot be
    reached at all is an error at once, rather than a lost connection waited for.
    """
    resolved = resolve_url(url)
    path = sqlite_path(resolved)
    if path is not None:
        if not for_writing and not path.is_file():
            raise StorageError(f"{mask_url(resolved)}: no database file at {path}.")
        if for_writing and not path.parent.exists():
            raise StorageError(
                f"{mask_url(resolved)}: the folder {path.parent} does not exist; create it "
                f"(mkdir -p {path.parent}) or give another --storage."
            )
        if for_writing and not os.access(path.parent, os.W_OK):
            raise StorageError(
                f"{mask_url(resolved)}: the folder {path.parent} is read-only, and SQLite "
                "writes its journal and lock beside the database: make it writable or copy "
                "the file elsewhere, or read it with `hpsearch trials` / `hpsearch report`, "
                "which do not write."
            )
    engine_kwargs: dict[str, Any] = {}
    if path is not None:
        # Several processes write one SQLite file (workers, heartbeat threads, a report read
        # while a search runs): wait for locks rather than fail at once; a lock held longer
        # (another program's open transaction) is waited for by retrying the call.
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_S}
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
            "heartbeat_stale_trial_callback": _RetryCopy(max_retry=MAX_RETRY),
        }
    try:
        if not for_writing:
            readable = _readable(resolved, path)
            no_tables = StudyNotFound(
                f"{mask_url(resolved)}: no studies: the database holds no study tables "
                "(`hpsearch run --data DATA` with this --storage creates them)."
            )
            # A SQLite file no hpsearch writer has opened (no lock file beside it) and without
            # Optuna's tables is not hpsearch's: left without a lock file made beside it.
            # (A writer makes the lock file before the tables, so one creating them now is
            # waited for below.)
            if (
                path is not None
                and not _lock_file(path).exists()
                and not _holds_schema(readable, engine_kwargs)
            ):
                raise no_tables
            # Opening a storage stamps Optuna's schema version when it is missing: a reader
            # that opens a file while a writer creates its tables would race it (and make
            # the writer fail on a duplicate row), so readers wait for the schema too.
            with exclusive(resolved, "schema", patient=False):
                if not _holds_schema(readable, engine_kwargs):
                    # RDBStorage would create Optuna's tables in it: a reader never writes.
                    raise no_tables
                return RDBStorage(readable, engine_kwargs=engine_kwargs)
        if not patient and resolved.startswith("postgresql"):
            _lock_engine(resolved).connect().close()
        with exclusive(resolved, "schema"):
            storage = RDBStorage(resolved, engine_kwargs=engine_kwargs, **kwargs)
            if path is not None:
                _use_wal(storage)
                _remember_file(path)
    except (StorageError, StudyNotFound):
        raise
    except Exception as exc:
        if _permanent(exc):
            raise refused(exc, resolved) from None
        reason = _clean_reason(exc, resolved).rstrip(". ")
        if "compatible with the table schema" in reason:
            # Optuna's tables of another schema version (Optuna says which, and what to do;
            # its commands name the storage $STORAGE_URL).
            raise StorageError(
                f"{mask_url(resolved)}: cannot open the storage: {reason} (its tables are of "
                "another Optuna schema than this Optuna reads)."
            ) from None
        check = (
            "Check the file and its folder (free space, permissions)."
            if path is not None
            else _create_database(exc, resolved)
            or "Check that the server runs and that the URL's host, port, database and user "
            "are right."
        )
        raise StorageError(
            f"{mask_url(resolved)}: cannot open the storage: {reason}. {check}"
        ) from None
    return _resilient(storage, resolved)


def _holds_schema(url: str, engine_kwargs: dict[str, Any]) -> bool:
    """Whether the database has Optuna's tables (its ``studies`` table), asked without
    writing anything."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        return bool(sqlalchemy.inspect(engine).has_table("studies"))
    finally:
        engine.dispose()


def _readable(url: str, path: Path | None) -> str:
    """The URL a reader opens: a SQLite file in a folder nobody can write to (a read-only
    mount, a copy kept as a record) is opened immutable, since SQLite in WAL mode must
    otherwise make its shared-memory file beside it, and nothing there can change."""
    if path is None or os.access(path.parent, os.W_OK):
        return url
    from urllib.parse import quote

    return f"sqlite:///file:{quote(str(path.resolve()))}?immutable=1&uri=true"


def _create_database(exc: BaseException, url: str) -> str | None:
    """The command that creates the URL's PostgreSQL database when the server says it does
    not exist (the server runs; hpsearch creates the tables, not the database)."""
    import shlex

    parsed = _parsed(url)
    if parsed is None or not parsed.database:
        return None
    if f'database "{parsed.database}" does not exist' not in str(exc):
        return None
    command = ["createdb"]
    if parsed.host:
        command += ["-h", parsed.host]
    if parsed.port:
        command += ["-p", str(parsed.port)]
    if parsed.username:
        command += ["-U", parsed.username]
    command.append(parsed.database)
    return (
        f"The server runs; create the database ({shlex.join(command)}) or give another --storage."
    )


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


def _lock_file(database: Path) -> Path:
    """The file ``exclusive`` locks beside a SQLite database."""
    return database.with_name(database.name + ".lock")


@contextlib.contextmanager
def exclusive(url: str, name: str, *, patient: bool = True) -> Iterator[None]:
    """Hold the lock ``name`` of the storage at ``url`` against every other process.

    SQLite: ``flock`` on ``<database>.lock`` beside the file (SQLite serves one machine).
    PostgreSQL: a session advisory lock, on a connection of its own, so workers on any number
    of machines queue for it. Both are released if the process dies. Other databases get no
    cross-process lock. Not ``patient`` (a reader): a server that cannot be reached is not
    waited for, and a SQLite folder where no lock file can be made (read-only, so nobody
    writes there) goes without the lock.
    """
    path = sqlite_path(url)
    if path is not None:
        try:
            fd = os.open(_lock_file(path), os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            if patient:
                raise
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _check_file(url, path)
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
    with (retrying(connect_and_lock, url) if patient else connect_and_lock)() as conn:
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # a dead connection released it already
                conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), key)
                conn.commit()


# The SQLite files this process opened for writing: (device, inode) when opened.
_FILES: dict[Path, tuple[int, int]] = {}


def _remember_file(path: Path) -> None:
    stat = path.stat()
    _FILES.setdefault(path.resolve(), (stat.st_dev, stat.st_ino))


def _check_file(url: str, path: Path) -> None:
    """A SQLite file deleted or replaced under a running search would take its writes with
    it (SQLite goes on writing the removed file) or meet an empty database: stop instead."""
    error = _file_gone(url, path)
    if error is not None:
        raise error


def _file_gone(url: str, path: Path, *, tables_missing: bool = False) -> StorageError | None:
    """The error saying that a SQLite file this process writes was deleted or replaced,
    or None while it is still the file that was opened.

    A connection opened after the deletion leaves an empty file in its place, which may
    even get the deleted file's inode number: a database without tables where this process
    made them (``tables_missing``: a query said so) was deleted too."""
    known = _FILES.get(path.resolve())
    if known is None:
        return None
    try:
        stat = path.stat()
    except FileNotFoundError:
        what = "was deleted"
    else:
        if (stat.st_dev, stat.st_ino) == known:
            if not (tables_missing and _without_tables(path)):
                return None
            what = "was deleted"
        else:
            what = "was deleted" if _without_tables(path) else "was replaced by another file"
    return StorageError(
        f"{mask_url(url)}: the database file {str(path)!r} {what} while the search ran; "
        "this search stops (what it wrote since went with the old file). Restore the file "
        "and `hpsearch resume NAME`, or start again with `hpsearch run`."
    )


def _without_tables(path: Path) -> bool:
    import sqlite3

    try:
        with contextlib.closing(
            sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        ) as conn:
            return conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
    except sqlite3.Error:
        return False


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

    if _permanent(exc):
        return False
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


# Database errors that waiting does not cure (SQLite reports them as OperationalError).
# Not "disk I/O error": SQLite also reports a passing contention on its shared-memory file
# that way, so it is retried; a disk that stays full ends as "lost the database".
_PERMANENT = ("readonly", "read-only", "disk is full", "no such table", "file is not a database")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _permanent(exc: BaseException) -> bool:
    return any(word in str(e).lower() for e in _chain(exc) for word in _PERMANENT)


def refused(exc: BaseException, url: str) -> StorageError:
    """A database error that is not a lost connection, as one line: the innermost cause
    (Optuna wraps a refused commit in StorageInternalError, whose own text guesses)."""
    causes = list(_chain(exc))
    line = _clean_reason(causes[-1], url)
    path = sqlite_path(url)
    if path is not None:
        gone = _file_gone(url, path, tables_missing="no such table" in line.lower())
        if gone is not None:
            return gone
    if "file is not a database" in line.lower():
        return StorageError(
            f"{mask_url(url)}: the file is not a SQLite database (or it is damaged); "
            "give the right --storage."
        )
    hint = ""
    if any(w in line.lower() for w in ("readonly", "read-only")):
        hint = " The database (or its folder) is read-only: make it writable, or read it with "
        hint += "`hpsearch trials` / `hpsearch report`, which do not write."
    elif "disk is full" in line.lower() or "disk i/o error" in line.lower():
        hint = (
            " The disk is probably full (SQLite says disk I/O error when it cannot create its"
            " journal): free some space, then `hpsearch resume NAME`; the trials stored so"
            " far are kept."
        )
    return StorageError(f"{mask_url(url)}: the database refused a write: {line}.{hint}")


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
                        if isinstance(exc, optuna.exceptions.StorageInternalError) or _permanent(
                            exc
                        ):
                            raise refused(exc, url) from None
                        raise
                    now = time.monotonic()
                    deadline = now + budget if deadline is None else deadline
                    if now >= deadline:
                        raise _unavailable(exc, url, budget) from None
                    time.sleep(min(delay, deadline - now))
                    delay = min(delay * 2, 5.0)
        finally:
            _depth.active = False

    return call  # type: ignore[return-value]


def _unavailable(exc: BaseException, url: str, budget: float) -> StorageUnavailable:
    """The database could not be used for ``budget`` seconds, as one line: the innermost
    cause (Optuna wraps a failed commit in StorageInternalError, whose own text guesses)."""
    reason = _clean_reason(list(_chain(exc))[-1], url)
    if sqlite_path(url) is not None and "locked" in reason.lower():
        return StorageUnavailable(
            f"{mask_url(url)}: the database file stayed locked for {budget:.0f} s ({reason}): "
            "another program holds it in a transaction (a SQLite browser or shell with "
            "changes not written); close it, then run the command again. The trials it holds "
            "are kept."
        )
    return StorageUnavailable(
        f"{mask_url(url)}: lost the database for {budget:.0f} s ({reason}); the trials it "
        "holds are kept"
    )


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
def opened_storage(
    url: str | None = None, *, for_writing: bool = True, patient: bool = True
) -> Iterator[RDBStorage]:
    """``open_storage`` as a context manager that closes the connections afterwards."""
    storage = open_storage(url, for_writing=for_writing, patient=patient)
    try:
        yield storage
    finally:
        close_storage(storage)


@contextlib.contextmanager
def reading(url: str | None = None, study: str | None = None) -> Iterator[RDBStorage]:
    """The storage opened to read (``study``, when given, must be in it), closed afterwards.

    The one "not found" for every command: a SQLite file that does not exist (it is not
    created) and a study that is not stored both raise StudyNotFound.
    """
    resolved = resolve_url(url)
    path = sqlite_path(resolved)
    if path is not None and not path.is_file():
        what = f"no study named {study!r}" if study else "no studies"
        raise StudyNotFound(
            f"{mask_url(resolved)}: {what}: there is no database file at {str(path)!r} "
            "(`hpsearch run --data DATA` creates it; --storage or $HPSEARCH_STORAGE "
            "chooses another)."
        )
    with contextlib.ExitStack() as stack:
        try:
            store = stack.enter_context(opened_storage(resolved, for_writing=False))
        except StudyNotFound:
            if study is None:
                raise
            raise StudyNotFound(
                f"{mask_url(resolved)}: no study named {study!r}: the database holds no "
                "study tables (`hpsearch run --data DATA` with this --storage creates them)."
            ) from None
        if study is not None:
            require_study(store, study, resolved)
        yield store


def study_names(storage: Any) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]


def missing_study(storage: Any, name: str, url: str, hint: str = "") -> StudyNotFound:
    """The error for a study that is not stored, listing the studies there are: the same
    for every command (``run``, ``resume``, ``trials``, ``report``...)."""
    names = sorted(study_names(storage))
    listing = ", ".join(repr(n) for n in names) if names else "none"
    return StudyNotFound(
        f"{mask_url(url)}: no study named {name!r}. Studies there: {listing}.{hint}"
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


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (Linux; None elsewhere or for a
    process that is gone): [0] is its state, [19] its start time in clock ticks since boot.
    The command name (field 2) may hold spaces, so they are counted from its ')'."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _process_start(pid: int) -> int | None:
    """The start time of a process in clock ticks since boot (Linux), to tell a live
    process from a new one that reuses a dead one's pid."""
    fields = _proc_stat(pid)
    return None if fields is None else int(fields[19])


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
    fields = _proc_stat(pid)
    if fields is None:
        return True  # no /proc: the pid answers, and that is all that is known
    # A zombie is dead: a worker whose run was killed is reparented, and nothing may reap it
    # for a while (a container's first process often does not), yet it answers os.kill.
    if fields[0] in ("Z", "X"):
        return False
    started = worker.get("started")
    return started is None or int(fields[19]) == started


def worker_gone(worker: object) -> bool:
    """Whether a trial's ``worker`` ran on this host and its process is gone (kill -9, a
    crash): the trial stays RUNNING in the database until a claim fails and retries it
    (``fail_dead_trials``). Workers of other hosts are the heartbeat's to judge: False."""
    return (
        isinstance(worker, dict)
        and worker.get("host") == socket.gethostname()
        and not _alive(worker)
    )


def gone_trials(trials: Iterable[FrozenTrial]) -> list[int]:
    """The numbers of the RUNNING ``trials`` whose worker on this machine is gone."""
    return [
        t.number
        for t in trials
        if t.state == TrialState.RUNNING and worker_gone(t.user_attrs.get("worker"))
    ]


# A user attribute of a trial stopped from outside, not by its point (its worker died, fell
# silent or was stopped), written with its ``fail_reason`` before it is failed: such a trial
# is owed one retry (``owed_retries``). The process that fails it queues the retry; should it
# die in between, the next claim does.
CUT_SHORT = "cut_short"


# A user attribute of a trial created holding its whole point (a proposer that proposes
# before the claim, as KerasTuner's oracles do; see ``_RetryCopy``).
POINT_GIVEN = "point_given"


class _RetryCopy(RetryHeartbeatStaleTrialCallback):
    """Optuna's retry (a WAITING copy with the same parameters, ``failed_trial`` and
    ``retry_history`` in its system attributes), its copy holding what the next attempt
    needs and nothing of the last one's: no trial record, ``cut_short`` mark or epoch rows
    (a running retry shows its own epochs only) and no pruner's bookkeeping
    (``completed_rung_*``: a retry is judged afresh at every rung).

    The copy keeps its attempt's params when they are a whole point: given whole
    (``point_given``) or trained (an epoch row). Otherwise the attempt was stopped while its
    sampler drew the point, one param at a time, and may hold part of it: the retry draws
    the whole point afresh from that point's seeded stream (``Proposer.repeat``), as the
    uninterrupted search does; kept, the part drawn would shift the draws of the rest.

    An attempt the user stopped (Ctrl-C, SIGTERM: failed as INTERRUPTED) is not a fault of
    the point: it is retried whatever came before, and not counted against MAX_RETRY
    (``INTERRUPTS`` in the copy counts such attempts)."""

    def __init__(self, max_retry: int) -> None:
        super().__init__(max_retry=None)  # the budget is checked here: _retry_allowed
        self.budget = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if not _retry_allowed(trial, self.budget):
            return
        left_out = {f.name for f in dataclasses.fields(TrialRecord)} | {CUT_SHORT}
        copied = copy.deepcopy(trial)
        copied.user_attrs = {
            k: v
            for k, v in trial.user_attrs.items()
            if k not in left_out and not k.startswith(EPOCH_PREFIX)
        }
        # Copies: Optuna's callback appends to the copy's retry_history list in place.
        copied.system_attrs = copy.deepcopy(
            {k: v for k, v in trial.system_attrs.items() if not k.startswith("completed_rung_")}
        )
        copied.system_attrs[INTERRUPTS] = _interrupts(trial)
        trained = any(k.startswith(EPOCH_PREFIX) for k in trial.user_attrs)
        if not trained and trial.user_attrs.get(POINT_GIVEN) is not True:
            copied.params, copied.distributions = {}, {}
        super().__call__(study, copied)


def _interrupts(trial: FrozenTrial) -> int:
    """How many attempts of the trial's point, itself included, the user stopped."""
    own = trial.user_attrs.get("fail_reason") == INTERRUPTED
    return int(trial.system_attrs.get(INTERRUPTS, 0)) + int(own)


def _retry_allowed(trial: FrozenTrial, budget: int) -> bool:
    """Whether the failed ``trial`` may be retried: its point's attempts so far (the
    earlier ones in ``retry_history`` and itself), less those the user stopped, are within
    ``budget`` retries."""
    attempts = len(trial.system_attrs.get("retry_history", ())) + 1
    return attempts - _interrupts(trial) <= budget


def queue_retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue the retry of a failed trial whose attempt was cut short (its worker died or was
    stopped): a copy with the same parameters, run first when the search goes on, at most
    MAX_RETRY times for one point (Optuna's ``RetryHeartbeatStaleTrialCallback``, the
    storage's own, as the heartbeat uses it). Called under the study's claim lock."""
    storage = study._storage
    # study._storage may wrap the RDBStorage (Optuna's cache layer): ask for the interface.
    if isinstance(storage, BaseHeartbeat):
        callback = storage.get_heartbeat_stale_trial_callback()
        if callback is not None:
            callback(study, trial)


def owed_retries(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The failed trials of ``trials`` (all of a study's) that were cut short and whose retry
    is not queued yet, within the retry budget (a retry's retry would pass MAX_RETRY, unless
    the user stopped an attempt)."""
    retried = {t.system_attrs.get("retry_history", [None])[-1] for t in trials}
    return [
        t
        for t in trials
        if t.state == TrialState.FAIL
        and t.user_attrs.get(CUT_SHORT) is True
        and t.number not in retried
        and _retry_allowed(t, MAX_RETRY)
    ]


def fail_cut_short(storage: Any, trial_id: int, reason: str) -> bool:
    """Fail a running trial stopped from outside: its reason and the ``cut_short`` mark
    first, so that a failed trial always says it is owed its retry. False if another
    process finished it first."""
    try:
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        storage.set_trial_user_attr(trial_id, CUT_SHORT, True)
        return bool(storage.set_trial_state_values(trial_id, state=TrialState.FAIL))
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # another process got there first


def fail_dead_trials(study: optuna.Study, trials: list[FrozenTrial] | None = None) -> list[int]:
    """Fail the RUNNING trials whose worker is gone, and queue every retry owed. Called
    under the study's claim lock; ``trials``: the study's trials as just read under it.

    A trial run on this host whose process no longer exists is failed at once; one of
    another host when its heartbeat is stale (silent for GRACE_PERIOD). A trial without a
    ``worker`` was not claimed by hpsearch (a worker's trial turns RUNNING holding it:
    ``Lifecycle._claim``); it is failed once it is GRACE_PERIOD old. Each is failed first
    and retried after (``owed_retries``): a process killed in between leaves the retry to
    the next claim, never lost, and a trial that finished meanwhile is never retried.
    Returns the numbers of the trials failed or retried (the caller reads the trials again).
    """
    storage = study._storage
    if trials is None:
        trials = study.get_trials(deepcopy=False)
    dead: dict[int, str] = {}
    unjudged: list[FrozenTrial] = []
    now = datetime.now()
    for trial in trials:
        if trial.state != TrialState.RUNNING:
            continue
        worker = trial.user_attrs.get("worker")
        if not isinstance(worker, dict):
            started = trial.datetime_start
            if started is not None and (now - started).total_seconds() >= GRACE_PERIOD:
                dead[trial._trial_id] = "no worker claimed it within the grace period"
            else:
                unjudged.append(trial)
        elif worker_gone(worker):
            dead[trial._trial_id] = (
                f"its worker process (pid {worker.get('pid')} on {worker.get('host')}) "
                "died mid-trial"
            )
        else:
            unjudged.append(trial)
    if unjudged and isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage):
        stale = set(storage._get_stale_trial_ids(study._study_id))
        for trial in unjudged:
            if trial._trial_id in stale:
                dead[trial._trial_id] = (
                    f"its worker fell silent (no heartbeat for {GRACE_PERIOD} s): it died "
                    "or lost the database"
                )
    failed = [
        t.number
        for t in trials
        if t._trial_id in dead and fail_cut_short(storage, t._trial_id, dead[t._trial_id])
    ]
    if failed:
        trials = study.get_trials(deepcopy=False)
    owed = owed_retries(trials)
    for trial in owed:
        queue_retry(study, trial)
    return sorted(set(failed) | {t.number for t in owed})

"""Errors of hpsearch, and the policy each one carries: the one root of every package's
errors (``spaces`` and ``reports`` derive theirs from it), so the CLI has one handler.

HpsearchError                 the search cannot do what was asked; the CLI prints the
│                             message and exits 1 (nothing already stored is lost)
├── ConfigError (ValueError)  bad input: a flag, a space file, settings that contradict
│   │                         the ones a study was created with; the CLI exits 2
│   ├── DataError             a data file or data set that cannot be used as given
│   └── spaces.SpaceError     a space file or a parameter set that is invalid
├── StorageError              the storage URL cannot be opened or used
│   └── StorageUnavailable    the database was lost (server down) for longer than the
│                             retry limit; a trial in flight is failed when it is back
├── StudyNotFound (LookupError)  no such study; the same message for every command
├── reports.ReportError       a report cannot be made or written
├── SearchAborted             the search stopped itself (e.g. too many failures in a row)
└── SearchInterrupted         Ctrl-C or SIGTERM; exits 130

TrialFailed                   this one trial failed (NaN loss, an exception while building
                              or training); its reason is stored and the search goes on
"""

from __future__ import annotations

import errno
import os

# Set (to anything but 0) to see the traceback of every error, for a bug report; `--debug`.
DEBUG_ENV = "HPSEARCH_DEBUG"


class HpsearchError(Exception):
    """The search cannot do what was asked. The message is meant for the user."""

    exit_code = 1


class ConfigError(HpsearchError, ValueError):
    """Bad input: it names where it came from, the key and the bad value."""

    exit_code = 2


class DataError(ConfigError):
    """A data set or data file that cannot be used as given."""


class StorageError(HpsearchError):
    """The storage cannot be opened or used. Messages never carry a password."""


class StorageUnavailable(StorageError):
    """The database stayed unreachable past the retry limit (``$HPSEARCH_DB_RETRY``)."""


class StudyNotFound(HpsearchError, LookupError):
    """No study of that name in the storage."""


class SearchAborted(HpsearchError):
    """The search stopped itself; the trials stored so far are kept."""


class SearchInterrupted(HpsearchError):
    """The user interrupted the search (Ctrl-C); finished trials are kept."""

    exit_code = 130

    @classmethod
    def before_search(cls, study: str | None) -> SearchInterrupted:
        """An interrupt of ``run`` before its first trial started."""
        named = f"study {study!r}" if study else "the search"
        return cls(
            f"{named}: interrupted before a trial started; nothing was trained. The same "
            "command starts it (or goes on with it) again."
        )

    @classmethod
    def going_on(cls, study: str, command: str) -> SearchInterrupted:
        """An interrupt of a search that had started: what is kept, and ``command`` (the
        one that goes on with the study)."""
        return cls(
            f"study {study!r} interrupted: its finished trials are stored; go on with `{command}`."
        )


class TrialFailed(Exception):
    """One trial failed; the engine stores the reason and goes on with the next trial."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def debugging() -> bool:
    """Whether errors should show their traceback (``$HPSEARCH_DEBUG``)."""
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def describe_error(exc: BaseException) -> tuple[str, int]:
    """One line and an exit code for an error that reached a command or a worker: an
    hpsearch error as it is; a file-system error naming the file; anything else is a bug
    and says how to see where it happened."""
    if isinstance(exc, HpsearchError):
        return str(exc), exc.exit_code
    if isinstance(exc, OSError):
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        what = exc.strerror or str(exc) or type(exc).__name__
        if exc.errno == errno.ENAMETOOLONG:  # a path given that no file can have: bad input
            shown = where if len(where) <= 80 else f"{where[:60]}...{where[-12:]}"
            return (
                f"{shown}: file name too long (at most 255 bytes a name, 4096 a path); give "
                "a shorter one.",
                2,
            )
        return (f"{where}: {what}." if where else f"{what}."), 1
    if isinstance(exc, MemoryError):
        return "out of memory: the data or the model does not fit in this machine's memory.", 1
    first = (str(exc).splitlines() or [""])[0]
    return (
        f"unexpected {type(exc).__name__}: {first} (a bug in hpsearch: rerun with --debug "
        f"or {DEBUG_ENV}=1 to see where, and report it)",
        1,
    )

"""Errors of hpsearch, and the policy each one carries.

HpsearchError                 the search cannot do what was asked; the CLI prints the
│                             message and exits 1 (nothing already stored is lost)
├── ConfigError (ValueError)  bad input: a flag, a space file, settings that contradict
│   │                         the ones a study was created with; the CLI exits 2
│   └── DataError             a data file or data set that cannot be used as given
├── StorageError              the storage URL cannot be opened or used
│   └── StorageUnavailable    the database was lost (server down) for longer than the
│                             retry limit; a trial in flight is failed when it is back
├── StudyNotFound (LookupError)
└── SearchAborted             the search stopped itself (e.g. too many failures in a row)

TrialFailed                   this one trial failed (NaN loss, an exception while building
                              or training); its reason is stored and the search goes on
"""

from __future__ import annotations


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


class TrialFailed(Exception):
    """One trial failed; the engine stores the reason and goes on with the next trial."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

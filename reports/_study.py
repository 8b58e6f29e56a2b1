"""Opening a storage and reading one study back, once.

Exceptions raised by ``reports``::

    ReportError                 the report cannot be made (bad storage URL, multi-objective study)
    └── StudyNotFoundError      no such study (also a LookupError); the message lists the
                                studies that exist

Everything here reads; nothing writes to the storage. A SQLite URL whose file does not exist is
refused rather than opened, because opening it would create an empty database.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial
from sqlalchemy.engine import make_url

StorageLike = str | BaseStorage


class ReportError(Exception):
    """A report cannot be made from this storage or study."""


class StudyNotFoundError(ReportError, LookupError):
    """The storage holds no study of that name (the message lists the ones it holds)."""


def describe_storage(storage: StorageLike) -> str:
    """The storage as it may be shown to a person: a URL without its password."""
    if isinstance(storage, str):
        try:
            return make_url(storage).render_as_string(hide_password=True)
        except sqlalchemy.exc.ArgumentError:
            return "<unparsable storage URL>"
    return type(storage).__name__


def missing_sqlite_file(storage: StorageLike) -> Path | None:
    """The database file of a ``sqlite:///`` URL when that file does not exist, else None."""
    if not isinstance(storage, str):
        return None
    try:
        url = make_url(storage)
    except sqlalchemy.exc.ArgumentError:
        return None
    database = url.database
    if not url.drivername.startswith("sqlite") or not database:
        return None
    if database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


@contextlib.contextmanager
def open_storage(storage: StorageLike) -> Iterator[BaseStorage]:
    """Yield a BaseStorage; one made here from a URL is disposed of afterwards."""
    if not isinstance(storage, str):
        yield storage
        return
    missing = missing_sqlite_file(storage)
    if missing is not None:
        raise StudyNotFoundError(
            f"There is no database file at {str(missing)!r} "
            f"(storage {describe_storage(storage)}), so it holds no studies."
        )
    try:
        opened = optuna.storages.get_storage(storage)
    except ModuleNotFoundError as exc:
        hint = (
            " (install hpsearch's 'postgres' extra: pip install -e '.[postgres]')"
            if "psycopg" in str(exc.name)
            else ""
        )
        raise ReportError(
            f"Cannot open the storage {describe_storage(storage)}: its database driver "
            f"{exc.name!r} is not installed{hint}."
        ) from exc
    except (sqlalchemy.exc.SQLAlchemyError, ValueError) as exc:
        raise ReportError(
            f"Cannot open the storage {describe_storage(storage)}: {_first_line(exc, storage)}"
        ) from exc
    try:
        yield opened
    finally:
        _dispose(opened)


def _first_line(exc: BaseException, storage: str) -> str:
    """The error's first line, with the URL's password (if any) blanked out."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    try:
        password = make_url(storage).password
    except sqlalchemy.exc.ArgumentError:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return text


def _dispose(storage: BaseStorage) -> None:
    # get_storage wraps an RDBStorage in a private cache layer; its engine holds a
    # connection pool that a short-lived reader should release. Best effort only.
    backend = getattr(storage, "_backend", storage)
    engine = getattr(backend, "engine", None)
    if isinstance(engine, sqlalchemy.engine.Engine):
        engine.dispose()


@dataclass(frozen=True)
class LoadedStudy:
    """One study read once: its name, directions, hpsearch settings and trials."""

    name: str
    directions: tuple[str, ...]
    settings: dict[str, Any]
    trials: list[FrozenTrial] = field(repr=False)

    @property
    def direction(self) -> str:
        """The single objective's direction, ``minimize`` or ``maximize``."""
        if len(self.directions) != 1:
            raise ReportError(
                f"Study {self.name!r} has {len(self.directions)} objectives "
                f"({', '.join(self.directions)}); an hpsearch report needs exactly one."
            )
        return self.directions[0]

    @property
    def objective(self) -> str:
        """The objective's metric name (``value`` for a study hpsearch did not create)."""
        return str(self.settings.get("objective") or "value")


def settings_of(user_attrs: dict[str, Any]) -> dict[str, Any]:
    """The study user attr ``hpsearch`` as a dict ({} when absent or malformed)."""
    settings = user_attrs.get("hpsearch")
    return dict(settings) if isinstance(settings, dict) else {}


def direction_names(directions: list[optuna.study.StudyDirection]) -> tuple[str, ...]:
    return tuple(d.name.lower() for d in directions)


def load(storage: StorageLike, study_name: str) -> LoadedStudy:
    """Load a study and read its trials once."""
    with open_storage(storage) as opened:
        try:
            study = optuna.load_study(study_name=study_name, storage=opened)
        except KeyError:
            names = sorted(s.study_name for s in opened.get_all_studies())
            listed = ", ".join(repr(n) for n in names) if names else "none"
            raise StudyNotFoundError(
                f"No study named {study_name!r} in {describe_storage(storage)}. "
                f"Studies there: {listed}."
            ) from None
        trials = study.get_trials(deepcopy=False)
        return LoadedStudy(
            name=study.study_name,
            directions=direction_names(study.directions),
            settings=settings_of(study.user_attrs),
            trials=list(trials),
        )

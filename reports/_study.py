"""Opening a storage and reading one study back, once.

The storage layer is hpsearch's one (``search._storage``: URLs, masking, "study not found");
the errors belong to hpsearch's one hierarchy (``search._errors``)::

    HpsearchError
    ├── ReportError          the report cannot be made (a study with several objectives,
    │                        a report file that cannot be written)
    ├── StorageError         the storage cannot be opened
    └── StudyNotFound        no such study (also a LookupError); the message lists the studies

Everything here reads; nothing writes to the storage. A SQLite URL whose file does not exist is
refused rather than opened, because opening it would create an empty database.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial
from sqlalchemy.exc import SQLAlchemyError

from reports._read import LIGHT_KEYS, Select, load_rdb
from search._errors import ConfigError, HpsearchError, StorageError
from search._records import as_count, as_number
from search._storage import (
    DEFAULT_STORAGE,
    mask_url,
    missing_study,
    reading,
    resolve_url,
    sqlite_path,
    study_names,
)

StorageLike = str | BaseStorage


class ReportError(HpsearchError):
    """A report cannot be made from this storage or study, or cannot be written."""


class ReportPathError(ReportError):
    """A report path that cannot hold a report (a folder, a device, a file that is not a
    page): bad input, as a bad option is."""

    exit_code = 2


def storage_url(storage: StorageLike) -> str | None:
    """The URL the storage was opened with (an Optuna RDBStorage keeps it), None for a
    storage without one (in memory). A SQLite file other than the default is given by its
    absolute path: a report's commands then work from any folder."""
    url = storage if isinstance(storage, str) else getattr(storage, "url", None)
    if not isinstance(url, str):
        return None
    path = sqlite_path(url)
    if path is None or path.is_absolute() or url == DEFAULT_STORAGE:
        return url
    query = url.partition("?")[2]
    return f"sqlite:///{path.resolve()}" + (f"?{query}" if query else "")


def describe_storage(storage: StorageLike) -> str:
    """The storage as it may be shown to a person: a URL without its password."""
    if isinstance(storage, str):
        return mask_url(storage)
    return type(storage).__name__


def missing_sqlite_file(storage: StorageLike) -> Path | None:
    """The database file of a ``sqlite:///`` URL when that file does not exist, else None."""
    if not isinstance(storage, str):
        return None
    try:
        path = sqlite_path(resolve_url(storage))
    except (StorageError, ConfigError):
        return None
    return None if path is None or path.exists() else path


@contextlib.contextmanager
def open_storage(storage: StorageLike, study: str | None = None) -> Iterator[BaseStorage]:
    """Yield a BaseStorage to read, holding ``study`` when one is named (else StudyNotFound,
    listing the studies there); one opened here from a URL (``search._storage.reading``) is
    closed afterwards."""
    if isinstance(storage, str):
        with reading(storage, study) as opened:
            yield opened
        return
    if study is not None and study not in study_names(storage):
        raise missing_study(storage, study, describe_storage(storage))
    yield storage


@dataclass(frozen=True)
class LoadedStudy:
    """One study read once: its name, directions, hpsearch settings and trials."""

    name: str
    directions: tuple[str, ...]
    settings: dict[str, Any]
    trials: list[FrozenTrial] = field(repr=False)
    # The best trial scored on the test split: {"trial", "test_metrics", "model", "n_test"}
    # (search._winner), {} before that.
    winner: dict[str, Any] = field(default_factory=dict)

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


def winner_of(user_attrs: dict[str, Any]) -> dict[str, Any]:
    """The study user attr ``winner`` when well formed ({} otherwise)."""
    winner = user_attrs.get("winner")
    if not isinstance(winner, dict) or as_count(winner.get("trial")) is None:
        return {}
    metrics = winner.get("test_metrics")
    if not isinstance(metrics, dict):
        return {}
    return {
        **winner,
        "trial": as_count(winner.get("trial")),
        "test_metrics": {str(k): as_number(v) for k, v in metrics.items()},
    }


def direction_names(directions: list[optuna.study.StudyDirection]) -> tuple[str, ...]:
    return tuple(d.name.lower() for d in directions)


def load(
    storage: StorageLike,
    study_name: str,
    select: Select | None = None,
    *,
    top: int | None = None,
    light: Sequence[str] = LIGHT_KEYS,
) -> LoadedStudy:
    """Load a study and read its trials once.

    From a SQL database (``reports._read``): every trial's fields and the light part of its
    record, and the heavy parts (history, intermediate values) of the trials ``select``
    chooses (None: of every trial); with ``top``, only the ``top`` best completed trials,
    whole. Elsewhere every trial whole, through Optuna (``top`` keeps the best of them).
    """
    with open_storage(storage, study_name) as opened:
        if isinstance(opened, RDBStorage):
            study_id = opened.get_study_id_from_name(study_name)
            user_attrs = opened.get_study_user_attrs(study_id)
            directions = direction_names(opened.get_study_directions(study_id))
            try:
                trials = load_rdb(opened, study_id, select, directions[0], top, light)
            except SQLAlchemyError:  # a schema these queries do not know: Optuna reads it
                trials = opened.get_all_trials(study_id, deepcopy=False)
            return LoadedStudy(
                name=study_name,
                directions=directions,
                settings=settings_of(user_attrs),
                trials=trials,
                winner=winner_of(user_attrs),
            )
        study = optuna.load_study(study_name=study_name, storage=opened)
        trials = study.get_trials(deepcopy=False)
        return LoadedStudy(
            name=study.study_name,
            directions=direction_names(study.directions),
            settings=settings_of(study.user_attrs),
            trials=list(trials),
            winner=winner_of(study.user_attrs),
        )

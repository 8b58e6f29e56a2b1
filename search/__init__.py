"""hpsearch's search package: run and resume hyperparameter searches of Keras models.

Importing it does not import TensorFlow; training does, on first use. Its names are loaded
when first used, so ``spaces`` and ``reports`` can import ``search._errors`` (the one root
of every hpsearch error) and ``search._storage`` (the one storage layer) without a cycle.

    >>> import search
    >>> result = search.run("digits", "small", trials=5, epochs=10)    # doctest: +SKIP
    >>> search.resume(result.study, trials=10)                          # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search._api import Exported, default_study_name, export, load_settings, resume, run, work
    from search._data import BUILTIN_DATASETS, Dataset, load_dataset
    from search._errors import (
        ConfigError,
        DataError,
        HpsearchError,
        SearchAborted,
        SearchInterrupted,
        StorageError,
        StorageUnavailable,
        StudyNotFound,
        TrialFailed,
    )
    from search._settings import StudySettings
    from search._storage import DEFAULT_STORAGE, STORAGE_ENV
    from search.engines import SearchResult

_WHERE = {
    "search._api": (
        "Exported",
        "default_study_name",
        "export",
        "load_settings",
        "resume",
        "run",
        "work",
    ),
    "search._data": ("BUILTIN_DATASETS", "Dataset", "load_dataset"),
    "search._errors": (
        "ConfigError",
        "DataError",
        "HpsearchError",
        "SearchAborted",
        "SearchInterrupted",
        "StorageError",
        "StorageUnavailable",
        "StudyNotFound",
        "TrialFailed",
    ),
    "search._settings": ("StudySettings",),
    "search._storage": ("DEFAULT_STORAGE", "STORAGE_ENV"),
    "search.engines": ("SearchResult",),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = [
    "BUILTIN_DATASETS",
    "DEFAULT_STORAGE",
    "STORAGE_ENV",
    "ConfigError",
    "DataError",
    "Dataset",
    "Exported",
    "HpsearchError",
    "SearchAborted",
    "SearchInterrupted",
    "SearchResult",
    "StorageError",
    "StorageUnavailable",
    "StudyNotFound",
    "StudySettings",
    "TrialFailed",
    "default_study_name",
    "export",
    "load_dataset",
    "load_settings",
    "resume",
    "run",
    "work",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'search' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

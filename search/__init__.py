"""hpsearch's search package: run and resume hyperparameter searches of Keras models.

Importing it does not import TensorFlow; training does, on first use.

    >>> import search
    >>> result = search.run("digits", "small", trials=5, epochs=10)    # doctest: +SKIP
    >>> search.resume(result.study, trials=10)                          # doctest: +SKIP
"""

from search._api import default_study_name, load_settings, resume, run, work
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

__all__ = [
    "BUILTIN_DATASETS",
    "DEFAULT_STORAGE",
    "STORAGE_ENV",
    "ConfigError",
    "DataError",
    "Dataset",
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
    "load_dataset",
    "load_settings",
    "resume",
    "run",
    "work",
]

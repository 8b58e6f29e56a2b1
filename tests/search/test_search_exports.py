"""The public names of the search package (STYLE: an explicit public API)."""

from __future__ import annotations

import search


def test_exported_members() -> None:
    assert sorted(search.__all__) == [
        "BUILTIN_DATASETS",
        "ConfigError",
        "DEFAULT_STORAGE",
        "DataError",
        "Dataset",
        "HpsearchError",
        "STORAGE_ENV",
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
    for name in search.__all__:
        assert getattr(search, name) is not None


def test_errors_carry_their_policy() -> None:
    assert issubclass(search.ConfigError, ValueError)
    assert issubclass(search.DataError, search.ConfigError)
    assert search.ConfigError.exit_code == 2 and search.HpsearchError.exit_code == 1
    assert issubclass(search.StudyNotFound, LookupError)
    assert not issubclass(search.TrialFailed, search.HpsearchError)
    assert issubclass(search.StorageUnavailable, search.StorageError)

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
        "Exported",
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
        "export",
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


def test_every_package_error_has_the_one_root() -> None:
    import reports
    import spaces

    assert issubclass(spaces.SpaceError, search.ConfigError)
    assert issubclass(reports.ReportError, search.HpsearchError)
    assert reports.StudyNotFound is search.StudyNotFound
    assert reports.StorageError is search.StorageError


def test_spaces_and_reports_import_first_without_a_cycle_or_tensorflow() -> None:
    import subprocess
    import sys

    for first in ("spaces", "reports", "search._errors", "search.cli"):
        code = (
            f"import {first}, sys; import search, spaces, reports; "
            "assert search.run and spaces.load_space and reports.write_report; "
            "assert 'tensorflow' not in sys.modules"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0, (first, out.stderr)

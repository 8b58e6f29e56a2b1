"""The winner of a study, for scripts (``hpsearch best``): its params, value, metrics at the
best epoch, and its scores on the test split once the search has scored it."""

from __future__ import annotations

from typing import Any

from reports._frame import frame_from_loaded, leaderboard, record_of
from reports._study import ReportError, StorageLike, load


def best_summary(storage: StorageLike, study_name: str) -> dict[str, Any]:
    """The study's best completed trial as a JSON-safe mapping.

    Keys: ``study``, ``trial``, ``objective``, ``direction``, ``value``, ``params``,
    ``metrics`` (the metrics at the best epoch), ``best_epoch`` (0-based), ``epochs_run``,
    ``seed``, ``builder`` (``dense`` or the study's ``package.module:function``), ``data``
    (source and fingerprint), ``test_metrics`` (None until the search has
    scored this trial on a test split; then also ``test_model``: ``checkpoint`` or
    ``retrained``, and ``n_test``), ``versions`` (the libraries that trained it).

    Raises ReportError when no trial has completed yet.
    """
    loaded = load(storage, study_name, top=1)  # the best trial alone, from a SQL database
    board = leaderboard(frame_from_loaded(loaded), top=1)
    if board.empty:
        raise ReportError(
            f"study {study_name!r} has no completed trial yet; "
            f"see `hpsearch trials {study_name} --all`."
        )
    number = int(board["number"].iloc[0])
    trial = next(t for t in loaded.trials if t.number == number)
    record = record_of(trial)
    data = loaded.settings.get("data") if isinstance(loaded.settings, dict) else None
    if not isinstance(data, dict):  # none stored (plain Optuna), or damaged by hand
        data = {}
    winner = loaded.winner if loaded.winner.get("trial") == number else {}
    summary: dict[str, Any] = {
        "study": loaded.name,
        "trial": number,
        "objective": loaded.objective,
        "direction": loaded.direction,
        "value": trial.value,
        "params": dict(trial.params),
        "metrics": dict(record.best_metrics),
        "best_epoch": record.best_epoch,
        "epochs_run": record.epochs_run,
        "seed": record.seed,
        # None for a study Optuna made without hpsearch.
        "builder": loaded.settings.get("model", "dense") if loaded.settings else None,
        "data": {"source": data.get("source"), "fingerprint": data.get("fingerprint")},
        "test_metrics": winner.get("test_metrics"),
    }
    if winner:
        summary["test_model"] = winner.get("model")
        summary["n_test"] = winner.get("n_test")
    summary["versions"] = record.versions
    return summary

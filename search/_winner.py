"""The winner: checkpoints of the best trials, its score on the test set, and export.

Checkpoints. A trial that completes among the study's ``keep_top`` best is saved in Keras'
native format (its best-epoch weights: early stopping restores them) before it is told, as
``trial-N.keras`` in the study's checkpoint folder; files of finished trials that fell out of
the top are deleted, so at most ``keep_top`` (plus the ones still running) stay on disk. The
folder is per machine: beside a SQLite file (``NAME-checkpoints/``), else under
``~/.cache/hpsearch/checkpoints`` (``HPSEARCH_CHECKPOINTS`` moves it).

The test set. When a study reaches its target, the first worker to see it scores the best
trial on the data set's test split (its checkpoint, else the trial trained again with its
params and seed) and stores the metrics with the study (``winner``: the trial's number and
its ``test_metrics``; Optuna keeps a finished trial's own attributes frozen).
``hpsearch export`` writes the same model to a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._errors import ConfigError
from search._records import TrialRecord
from search._storage import exclusive, sqlite_path, storage_key

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from search._data import Dataset
    from search._settings import StudySettings

CHECKPOINTS_ENV = "HPSEARCH_CHECKPOINTS"
# The study user attribute naming the scored winner: {"trial", "test_metrics", "model"}.
WINNER_KEY = "winner"


def checkpoint_dir(url: str, study: str) -> Path:
    """The folder holding the study's checkpoints on this machine."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", study)[:40].strip("._") or "study"
    name = f"{slug}-{hashlib.sha256(study.encode()).hexdigest()[:8]}"
    if override := os.environ.get(CHECKPOINTS_ENV):
        return Path(override).expanduser() / name
    path = sqlite_path(url)
    if path is not None:
        return path.parent / f"{path.stem}-checkpoints" / name
    where = hashlib.sha256(storage_key(url).encode()).hexdigest()[:8]
    return Path("~/.cache/hpsearch/checkpoints").expanduser() / where / name


def check_checkpoint_folder(url: str, study: str, keep_top: int) -> None:
    """A checkpoint folder set with $HPSEARCH_CHECKPOINTS that cannot be made or written is
    bad input, said before a trial: the search would otherwise keep no checkpoint, and
    export would train the best model again, without a word. (The default folder, beside
    the SQLite file or in ~/.cache, is left to the trials: one that cannot be written
    costs a retraining at export, not the search.)"""
    where = os.environ.get(CHECKPOINTS_ENV)
    if keep_top <= 0 or not where:
        return
    folder = checkpoint_dir(url, study)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        usable = os.access(folder, os.W_OK)
        reason = "not writable"
    except OSError as exc:
        usable, reason = False, exc.strerror or type(exc).__name__
    if not usable:
        raise ConfigError(
            f"${CHECKPOINTS_ENV}={where!r}: cannot keep the checkpoints in {str(folder)!r} "
            f"({reason}); point it at a writable folder, or unset it."
        )


def checkpoint_path(url: str, study: str, number: int) -> Path:
    return checkpoint_dir(url, study) / f"trial-{number}.keras"


def ranked(trials: Iterable[FrozenTrial], direction: str) -> list[int]:
    """Numbers of the completed trials, best first (ties: the earlier trial)."""
    done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    sign = 1.0 if direction == "minimize" else -1.0
    return [t.number for t in sorted(done, key=lambda t: (sign * float(t.value or 0), t.number))]


def keep_checkpoint(
    model: Any,
    study: optuna.Study,
    settings: StudySettings,
    url: str,
    number: int,
    value: float,
) -> Path | None:
    """Save the trial's model if it ranks among the best ``keep_top`` (with ``value``, before
    it is told), and delete the files of finished trials that no longer do."""
    keep = settings.keep_top
    if keep <= 0 or not math.isfinite(value):
        return None
    trials = study.get_trials(deepcopy=False)
    sign = 1.0 if settings.direction == "minimize" else -1.0
    better = sum(
        1
        for t in trials
        if t.state.name == "COMPLETE" and t.value is not None and sign * t.value < sign * value
    )
    saved = None
    if better < keep:
        saved = checkpoint_path(url, settings.study, number)
        saved.parent.mkdir(parents=True, exist_ok=True)
        partial = saved.with_name(f".{saved.name}.{os.getpid()}.keras")
        model.save(partial)
        os.replace(partial, saved)
    prune_checkpoints(trials, settings, url)
    return saved


def prune_checkpoints(trials: list[FrozenTrial], settings: StudySettings, url: str) -> None:
    """Delete the checkpoints of finished trials outside the best ``keep_top``, and the
    half-written ones a killed worker left of a finished trial."""
    top = set(ranked(trials, settings.direction)[: settings.keep_top])
    finished = {t.number for t in trials if t.state.is_finished()}
    folder = checkpoint_dir(url, settings.study)
    if not folder.is_dir():
        return
    for path in folder.glob("*trial-*.keras"):
        found = re.fullmatch(r"(\.?)trial-(\d+)\.keras(\.\d+\.keras)?", path.name)
        if found is None or int(found.group(2)) not in finished:
            continue
        partial = bool(found.group(1))
        if partial or int(found.group(2)) not in top:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def trained_model(
    settings: StudySettings, dataset: Dataset | None, trial: FrozenTrial, url: str
) -> tuple[Any, str]:
    """The trial's trained model and where it came from: its checkpoint on this machine
    ("checkpoint PATH"), else trained again on ``dataset`` with its params, seed and epoch
    budget ("retrained")."""
    from search._keras import import_keras

    keras = import_keras()
    path = checkpoint_path(url, settings.study, trial.number)
    if path.is_file():
        return keras.models.load_model(path), f"checkpoint {path}"
    if dataset is None:
        raise ConfigError(f"trial {trial.number}: no checkpoint at {path} to load.")
    from search._training import TrialRecorder, fit_trial
    from spaces import get_builder

    record = TrialRecord.of(trial)
    recorder = TrialRecorder(
        objective=settings.objective,
        direction=settings.direction,
        max_epochs=record.max_epochs or settings.epochs,
    )
    seed = record.seed if record.seed is not None else settings.seed + trial.number
    params = record.params if record.params is not None else fixed_and_sampled(settings, trial)
    outcome = fit_trial(
        params,
        dataset,
        recorder,
        patience=settings.patience,
        seed=seed,
        builder=get_builder(settings.model),
    )
    return outcome.model, "retrained"


def fixed_and_sampled(settings: StudySettings, trial: FrozenTrial) -> dict[str, Any]:
    """The point a trial recorded before ``params`` was stored trained with: the space's
    active fixed values with the sampled ones."""
    from spaces import FixedParam

    point: dict[str, Any] = {}
    for param in settings.space.params:
        if param.name in trial.params:
            point[param.name] = trial.params[param.name]
        elif isinstance(param, FixedParam) and settings.space.is_active(param, point):
            point[param.name] = param.value
    return settings.space.builder_point(point)


def test_metrics(model: Any, dataset: Dataset) -> dict[str, float]:
    """The model's scores on the test split: the compiled loss and metrics (what
    ``model.evaluate`` gives), and accuracy, precision, recall and F1 (macro for several
    classes) for classification, or MAE, RMSE and R^2 for regression."""
    import numpy as np
    from sklearn import metrics as skm

    x, y = dataset.x_test, dataset.y_test
    if x is None or y is None:
        raise ConfigError(f"{dataset.source}: no test split to score on.")
    # Keras casts each batch to the model's input type: multi-hot bytes stay bytes here.
    evaluated = model.evaluate(x, y, verbose=0, return_dict=True, batch_size=1024)
    scores = {f"test_{k}": float(v) for k, v in evaluated.items()}
    predicted = np.asarray(model.predict(x, verbose=0, batch_size=1024))
    if dataset.task == "regression":
        truth, guess = y.astype(np.float64), predicted.reshape(-1).astype(np.float64)
        scores.update(
            test_mae=float(skm.mean_absolute_error(truth, guess)),
            test_rmse=float(math.sqrt(skm.mean_squared_error(truth, guess))),
            test_r2=float(skm.r2_score(truth, guess)),
        )
        return scores
    labels = y.astype(np.int64)
    if predicted.ndim == 2 and predicted.shape[1] > 1:  # a probability per class
        guess = predicted.argmax(axis=1)
    else:  # one sigmoid output
        guess = (predicted.reshape(-1) > 0.5).astype(np.int64)
    average = "binary" if dataset.task == "binary" else "macro"
    scores.update(
        test_accuracy=float(skm.accuracy_score(labels, guess)),
        test_precision=float(skm.precision_score(labels, guess, average=average, zero_division=0)),
        test_recall=float(skm.recall_score(labels, guess, average=average, zero_division=0)),
        test_f1=float(skm.f1_score(labels, guess, average=average, zero_division=0)),
    )
    return scores


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def score_winner(
    study: optuna.Study, settings: StudySettings, dataset: Dataset, url: str
) -> dict[str, Any] | None:
    """Score the best trial on the test split once (the first worker to get here does it);
    what is stored, or None when there is nothing to score."""
    with contextlib.suppress(OSError):
        prune_checkpoints(study.get_trials(deepcopy=False), settings, url)
    if dataset.x_test is None:
        return None
    with exclusive(url, f"winner:{settings.study}"):
        best = best_trial(study)
        if best is None:
            return None
        stored = study.user_attrs.get(WINNER_KEY)
        if isinstance(stored, dict) and stored.get("trial") == best.number:
            return stored
        from search._keras import import_keras

        keras = import_keras()
        try:
            model, source = trained_model(settings, dataset, best, url)
            scores = test_metrics(model, dataset)
        finally:
            keras.backend.clear_session()
        winner = {
            "trial": best.number,
            "test_metrics": scores,
            "model": source.split(" ", 1)[0],
            "n_test": len(dataset.x_test),
        }
        study.set_user_attr(WINNER_KEY, winner)  # a finished trial's attributes are frozen
        return winner

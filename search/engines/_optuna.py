"""The Optuna engine: Optuna's samplers and pruners drive the trials."""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from search._data import Dataset
from search._errors import ConfigError, SearchAborted, SearchInterrupted, TrialFailed
from search._progress import ProgressSink
from search._settings import StudySettings
from search._storage import fail_dead_trials, worker_identity
from search._training import TrialRecorder, fit_trial
from search.engines._base import Engine, SearchResult
from spaces import sample_optuna

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# What a retried trial must not inherit from the attempt that died.
_FRESH: dict[str, Any] = {"history": {}, "epochs_run": 0, "fail_reason": None}


def make_sampler(name: str, seed: int, trials_so_far: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler by its CLI name.

    Seeded samplers are reseeded with ``seed + trials_so_far`` on resume, so a resumed
    search does not draw its first points again; QMC keeps its seed, since it continues
    its own sequence from the study.
    """
    shifted = seed + trials_so_far
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            # group=True models conditional parameters (reg_strength, momentum) properly.
            return optuna.samplers.TPESampler(seed=shifted, multivariate=True, group=True)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=shifted)
        if name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, scramble=True)
        if name == "gp":
            try:
                import torch  # noqa: F401
            except ImportError:
                raise ConfigError(
                    "--sampler gp needs PyTorch: install hpsearch's 'gp' extra "
                    "(pip install -e '.[gp]')"
                ) from None
            return optuna.samplers.GPSampler(seed=shifted)
    raise ConfigError(f"--sampler: unknown sampler {name!r}.")


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    """The pruner by its CLI name; steps are epochs."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=min(3, epochs - 1))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"--pruner: unknown pruner {name!r}.")


class _FailureGuard:
    """Stops the study after ``limit`` failed trials in a row."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_a_row = 0
        self.last_reason = ""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL:
            self.in_a_row += 1
            self.last_reason = str(trial.user_attrs.get("fail_reason", "unknown"))
            if self.in_a_row >= self.limit:
                study.stop()
        else:
            self.in_a_row = 0

    @property
    def tripped(self) -> bool:
        return self.in_a_row >= self.limit


def _best(study: optuna.Study) -> tuple[int | None, float | None, dict[str, Any]]:
    try:
        best = study.best_trial
    except ValueError:
        return None, None, {}
    return best.number, best.value, dict(best.params)


def _finished(counts: dict[str, int]) -> int:
    """COMPLETE + PRUNED: the trials that count towards the target."""
    return sum(counts.get(state.name, 0) for state in FINISHED)


def _counts(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


class OptunaEngine(Engine):
    """Optuna samplers (tpe, random, gp, qmc) and pruners (median, hyperband,
    successive-halving, none), with Optuna's Keras pruning callback."""

    name = "optuna"

    def optimize(
        self,
        settings: StudySettings,
        dataset: Dataset,
        storage: RDBStorage,
        *,
        target: int,
        timeout: float | None,
        progress: ProgressSink,
    ) -> SearchResult:
        existing = len(storage.get_all_trials(storage.get_study_id_from_name(settings.study)))
        study = optuna.load_study(
            study_name=settings.study,
            storage=storage,
            sampler=make_sampler(settings.sampler, settings.seed, existing),
            pruner=make_pruner(settings.pruner, settings.epochs),
        )
        fail_dead_trials(study)
        done = _finished(_counts(study))
        best_number, best_value, _ = _best(study)
        progress.search_started(settings.study, target, done, best_value, settings.objective)
        stopped = "already"
        guard = _FailureGuard(settings.max_failures)
        try:
            if done < target:

                def report(study: optuna.Study, trial: FrozenTrial) -> None:
                    counts = _counts(study)
                    progress.trial_ended(
                        trial.number,
                        trial.state.name,
                        trial.value,
                        _finished(counts),
                        _best(study)[1],
                        str(trial.user_attrs.get("fail_reason", "")),
                    )

                try:
                    study.optimize(
                        lambda trial: self._objective(trial, settings, dataset, progress),
                        n_trials=None,
                        timeout=timeout,
                        catch=(TrialFailed,),
                        callbacks=[MaxTrialsCallback(target, states=FINISHED), guard, report],
                    )
                except KeyboardInterrupt:
                    done = _finished(_counts(study))
                    raise SearchInterrupted(
                        f"study {settings.study!r} interrupted: {done}/{target} finished trials "
                        f"are stored; continue with `hpsearch resume {settings.study}`."
                    ) from None
                done = _finished(_counts(study))
                stopped = "target" if done >= target else "timeout"
        finally:
            progress.search_ended()
        if guard.tripped:
            raise SearchAborted(
                f"study {settings.study!r}: stopped after {guard.in_a_row} failed trials in "
                f"a row; the last failed because {guard.last_reason}. The {done} finished "
                f"trial(s) are kept; fix the cause and run `hpsearch resume {settings.study}`."
            )
        best_number, best_value, best_params = _best(study)
        return SearchResult(
            study=settings.study,
            target=target,
            finished=done,
            counts=_counts(study),
            best_number=best_number,
            best_value=best_value,
            best_params=best_params,
            stopped=stopped,
        )

    def _objective(
        self,
        trial: optuna.Trial,
        settings: StudySettings,
        dataset: Dataset,
        progress: ProgressSink,
    ) -> float:
        from search._keras import import_keras

        keras = import_keras()
        from optuna_integration import TFKerasPruningCallback

        # Claim the trial first: a retry starts with a copy of the dead attempt's attributes,
        # its dead worker included, then starts afresh.
        trial.set_user_attr("worker", worker_identity())
        if "history" in trial.user_attrs:
            self._store(trial, _FRESH)
        trial.set_user_attr("engine", self.name)
        progress.trial_started(trial.number)

        def on_epoch(epoch: int, recorder: TrialRecorder) -> None:
            trial.set_user_attr("history", recorder.history)
            trial.set_user_attr("epochs_run", recorder.epochs_run)
            value = recorder.history.get(settings.objective, [None])[-1]
            progress.epoch_ended(trial.number, epoch, settings.epochs, value)

        recorder = TrialRecorder(
            objective=settings.objective,
            direction=settings.direction,
            max_epochs=settings.epochs,
            on_epoch=on_epoch,
        )
        try:
            params = sample_optuna(settings.space, trial)
            outcome = fit_trial(
                params,
                dataset,
                recorder,
                patience=settings.patience,
                seed=settings.seed + trial.number,
                callbacks=[TFKerasPruningCallback(trial, settings.objective)],
            )
        except optuna.TrialPruned:
            self._store(trial, recorder.outcome(pruned=True).attrs())
            raise
        except TrialFailed as exc:
            self._store(trial, {**recorder.outcome().attrs(), "fail_reason": exc.reason})
            raise
        except KeyboardInterrupt:
            self._store(trial, {**recorder.outcome().attrs(), "fail_reason": "interrupted"})
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self._store(trial, {**recorder.outcome().attrs(), "fail_reason": reason})
            raise TrialFailed(reason) from exc
        finally:
            # Frees the model's graph; it also runs gc.collect() (0.25 s: once is enough).
            keras.backend.clear_session()
        if outcome.value is None:
            reason = f"no epoch reported the objective {settings.objective!r}"
            self._store(trial, {**outcome.attrs(), "fail_reason": reason})
            raise TrialFailed(reason)
        self._store(trial, outcome.attrs())
        return outcome.value

    @staticmethod
    def _store(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)

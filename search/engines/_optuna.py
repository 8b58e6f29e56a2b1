"""The Optuna engine: Optuna's samplers and pruners drive the trials."""

from __future__ import annotations

import contextlib
import threading
import warnings
from typing import Any

import numpy as np
import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from search._data import Dataset
from search._errors import ConfigError, SearchAborted, StorageError, TrialFailed
from search._progress import ProgressSink
from search._settings import StudySettings
from search._storage import (
    HEARTBEAT_INTERVAL,
    exclusive,
    fail_dead_trials,
    resume_command,
    worker_identity,
)
from search._training import TrialRecorder, fit_trial
from search.engines._base import (
    Engine,
    WorkerLimits,
    check_stop,
    count_states,
    finished_count,
    rss_mib,
    stop_requested,
)
from spaces import sample_optuna

# A worker with nothing to claim (the other workers' trials would reach the target) looks
# again after this many seconds: one of them may fail, or die and be retried.
POLL_S = 1.0
# What a retried trial must not inherit from the attempt that died.
_FRESH: dict[str, Any] = {"epochs_run": 0, "fail_reason": None}


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial ``number``: the study's seed mixed with the trial number.

    Each trial is claimed under the study's lock, so its number is its own: workers that
    start together draw from distinct streams, and a single worker draws the same points for
    the same seed every time (also across a resume)."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def make_sampler(name: str, seed: int, number: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler by its CLI name, seeded for trial ``number`` (``trial_seed``).

    QMC keeps the study's seed: it continues its own sequence from the study.
    """
    shifted = trial_seed(seed, number)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            # group=True models conditional parameters (reg_strength, momentum) properly;
            # the constant liar counts other workers' running trials as bad, so concurrent
            # workers explore apart.
            return optuna.samplers.TPESampler(
                seed=shifted, multivariate=True, group=True, constant_liar=True
            )
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
    """Stops this worker after ``limit`` of its trials failed in a row."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_a_row = 0
        self.last_reason = ""

    def __call__(self, state: TrialState, reason: str) -> None:
        if state == TrialState.FAIL:
            self.in_a_row += 1
            self.last_reason = reason or "unknown"
        else:
            self.in_a_row = 0

    @property
    def tripped(self) -> bool:
        return self.in_a_row >= self.limit


def best_of(study: optuna.Study) -> tuple[int | None, float | None, dict[str, Any]]:
    try:
        best = study.best_trial
    except ValueError:
        return None, None, {}
    return best.number, best.value, dict(best.params)


class _Heartbeat:
    """Records the running trial's heartbeat every HEARTBEAT_INTERVAL seconds, so workers on
    other machines can tell it is alive. A failed beat (the database is down) is skipped: the
    trial's own writes decide whether the worker goes on."""

    def __init__(self, storage: RDBStorage, trial_id: int) -> None:
        self._storage, self._trial_id = storage, trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="hpsearch-heartbeat")

    def _beat(self) -> None:
        beat = getattr(self._storage, "record_heartbeat", None)
        while beat is not None:
            with contextlib.suppress(Exception):
                beat(self._trial_id)
            if self._stop.wait(HEARTBEAT_INTERVAL):
                return

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _Lost(Exception):
    """Another worker finished this trial first (its heartbeat went stale); drop it."""


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
        url: str,
        limits: WorkerLimits,
        progress: ProgressSink,
    ) -> str:
        study = optuna.load_study(
            study_name=settings.study,
            storage=storage,
            sampler=make_sampler(settings.sampler, settings.seed),
            pruner=make_pruner(settings.pruner, settings.epochs),
        )
        guard = _FailureGuard(settings.max_failures)
        ran = 0
        while True:
            why = limits.stop_reason(ran)
            if why:
                return why
            check_stop()
            claimed = self._claim(study, settings, url)
            if claimed == "target":
                return "target"
            if claimed is None:
                stop_requested.wait(POLL_S)
                continue
            assert isinstance(claimed, optuna.Trial)
            state, value, reason = self._run(study, claimed, settings, dataset, progress)
            ran += 1
            if state is None:  # lost to another worker
                continue
            guard(state, reason)
            trials = study.get_trials(deepcopy=False)
            progress.trial_ended(
                claimed.number,
                state.name,
                value,
                finished_count(count_states(trials)),
                best_of(study)[1],
                reason,
            )
            if guard.tripped:
                raise SearchAborted(
                    _aborted_message(settings, guard.in_a_row, guard.last_reason, url)
                )

    def _claim(
        self, study: optuna.Study, settings: StudySettings, url: str
    ) -> optuna.Trial | str | None:
        """Count and claim, under the study's lock: the next trial (a queued retry first), or
        None while the running trials may still reach the target, or "target" when the study
        holds its target of finished trials. No two workers can pass here at once, so the
        study never overshoots its target and every new trial has a number of its own."""
        with exclusive(url, f"claim:{settings.study}"):
            fail_dead_trials(study)
            stored = study._storage.get_study_user_attrs(study._study_id)
            target = int(stored.get("hpsearch", {}).get("trials", settings.trials))
            trials = study.get_trials(deepcopy=False)
            counts = count_states(trials)
            finished = finished_count(counts)
            if finished >= target:
                return "target"
            if finished + counts.get("RUNNING", 0) >= target:
                return None
            if not counts.get("WAITING"):
                # The new trial's number is the count of trials: nobody else creates one
                # while the lock is held.
                study.sampler = make_sampler(settings.sampler, settings.seed, len(trials))
            with warnings.catch_warnings():
                # Optuna warns that heartbeats are meant for Study.optimize; this loop
                # records them itself (_Heartbeat), as Optuna's FAQ says to.
                warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                trial = study.ask()
            worker = worker_identity()
            trial.set_user_attr("worker", worker)
            if "fail_reason" in trial.user_attrs:  # a retry: its copy of the dead attempt
                self._store(trial, _FRESH)
            trial.set_user_attr("engine", self.name)
            return trial

    def _run(
        self,
        study: optuna.Study,
        trial: optuna.Trial,
        settings: StudySettings,
        dataset: Dataset,
        progress: ProgressSink,
    ) -> tuple[TrialState | None, float | None, str]:
        """Train the claimed trial and tell the study how it ended: (state, value, reason);
        state None when another worker failed the trial first (a stale heartbeat)."""
        try:
            with _Heartbeat(study._storage, trial._trial_id):  # type: ignore[arg-type]
                state, value, reason = self._train(trial, settings, dataset, progress)
        except _Lost:
            return None, None, ""
        try:
            if state == TrialState.COMPLETE:
                study.tell(trial, value)
            else:
                study.tell(trial, state=state)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            return None, None, ""  # failed meanwhile by another worker (stale heartbeat)
        return state, value, reason

    def _train(
        self,
        trial: optuna.Trial,
        settings: StudySettings,
        dataset: Dataset,
        progress: ProgressSink,
    ) -> tuple[TrialState, float | None, str]:
        from search._keras import import_keras

        keras = import_keras()
        from optuna_integration import TFKerasPruningCallback

        progress.trial_started(trial.number)
        storage, trial_id = trial.study._storage, trial._trial_id
        token = worker_token(trial.user_attrs["worker"])

        def on_epoch(epoch: int, recorder: TrialRecorder) -> None:
            # One small row per epoch (O(1)); the whole history is written once at the end.
            row = {key: values[-1] for key, values in recorder.history.items()}
            storage.set_trial_user_attr(trial_id, epoch_key(epoch), {"w": token, "m": row})
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
                callbacks=[
                    TFKerasPruningCallback(trial, settings.objective),
                    _stop_callback(keras),
                ],
            )
        except optuna.TrialPruned:
            self._store(trial, recorder.outcome(pruned=True).attrs())
            return TrialState.PRUNED, None, ""
        except TrialFailed as exc:
            if isinstance(exc.__cause__, optuna.exceptions.UpdateFinishedTrialError):
                raise _Lost() from None
            self._store(trial, {**recorder.outcome().attrs(), "fail_reason": exc.reason})
            return TrialState.FAIL, None, exc.reason
        except KeyboardInterrupt:
            self._store(trial, {**recorder.outcome().attrs(), "fail_reason": "interrupted"})
            trial.study.tell(trial, state=TrialState.FAIL)
            raise
        except optuna.exceptions.UpdateFinishedTrialError:
            raise _Lost() from None
        except StorageError:
            raise  # the database is gone: nothing can be stored; the worker stops
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self._store(trial, {**recorder.outcome().attrs(), "fail_reason": reason})
            return TrialState.FAIL, None, reason
        finally:
            # Frees the model's graph; it also runs gc.collect() (0.25 s: once is enough).
            keras.backend.clear_session()
        if outcome.value is None:
            reason = f"no epoch reported the objective {settings.objective!r}"
            self._store(trial, {**outcome.attrs(), "fail_reason": reason})
            return TrialState.FAIL, None, reason
        self._store(trial, outcome.attrs())
        return TrialState.COMPLETE, outcome.value, ""

    @staticmethod
    def _store(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
        attrs = {**attrs, "rss_mib": rss_mib()}
        for key, value in attrs.items():
            trial.set_user_attr(key, value)


def _stop_callback(keras: Any) -> Any:
    """A Keras callback that ends the fit with KeyboardInterrupt once a stop is requested."""

    class StopCheck(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            check_stop()

        def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
            check_stop()

    return StopCheck()


def epoch_key(epoch: int) -> str:
    """The user attribute holding one epoch's metrics while a trial runs."""
    return f"epoch:{epoch}"


def worker_token(worker: dict[str, Any]) -> str:
    """The attempt a per-epoch row belongs to: a retry's copy keeps the dead attempt's rows."""
    return f"{worker.get('host')}:{worker.get('pid')}:{worker.get('started')}"


def _aborted_message(settings: StudySettings, in_a_row: int, reason: str, url: str) -> str:
    """Why the search stopped itself, and the command that gets it going again: ``resume``
    repeats the study's stored space, so when its points themselves fail (a model that cannot
    be built, a loss that diverges) the way on is a new study with a fixed space."""
    head = (
        f"study {settings.study!r}: stopped after {in_a_row} failed trials in a row; the last "
        f"failed because {reason}. The finished trials are kept"
    )
    if reason.startswith("building the model failed") or " became " in reason:
        return (
            f"{head}. The space's points fail, and `hpsearch resume` would sample the same "
            f"space: fix the space and start a new study, e.g. `hpsearch run --data "
            f"{settings.data.source} --space FIXED.yaml --study {settings.study}-2`."
        )
    return f"{head}; fix the cause and run `{resume_command(settings.study, url)}`."

"""The one engine lifecycle: claim, train, record, tell, for every engine.

``run_trials`` is the loop of a worker process (the contract is in
``search.engines._base``). An engine plugs in only its ``Proposer``: which point a new
trial gets and how it trains (epochs, the engine's own callbacks). Everything else is here,
once: the claim under the study's lock and the exact target, retries of dead trials, the
heartbeat, training through ``search._training.fit_trial``, a record row per epoch, mapping
exceptions and NaN to failure reasons, clearing the Keras session, the failure guard, and
progress.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from search._data import Dataset
from search._errors import SearchAborted, StorageError, TrialFailed
from search._progress import ProgressSink
from search._records import (
    INTERRUPTED,
    TrialRecord,
    as_int,
    epoch_key,
    epoch_row,
    stored_target,
)
from search._settings import StudySettings
from search._storage import (
    CUT_SHORT,
    HEARTBEAT_INTERVAL,
    POINT_GIVEN,
    exclusive,
    fail_dead_trials,
    queue_retry,
    resume_command,
    worker_identity,
)
from search._training import TrialOutcome, TrialRecorder, fit_trial
from search._winner import keep_checkpoint, score_winner
from search.engines._base import (
    WAIT,
    Proposal,
    Proposer,
    WorkerLimits,
    check_stop,
    count_states,
    finished_count,
    point_index,
    rss_mib,
    stop_requested,
)
from spaces import DENSE, get_builder, optuna_distributions

# A worker with nothing to claim (the other workers' trials would reach the target) looks
# again after this many seconds: one of them may fail, or die and be retried.
POLL_S = 1.0


class FailureGuard:
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


def best_value(study: optuna.Study) -> float | None:
    try:
        return study.best_value
    except ValueError:
        return None


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


class Lifecycle:
    """Runs the trials of one study in this worker process through ``proposer``."""

    def __init__(
        self,
        proposer: Proposer,
        settings: StudySettings,
        dataset: Dataset,
        storage: RDBStorage,
        *,
        url: str,
        progress: ProgressSink,
    ) -> None:
        self.proposer, self.settings, self.dataset = proposer, settings, dataset
        self.url, self.progress = url, progress
        self.study = optuna.load_study(study_name=settings.study, storage=storage)
        # The study's model builder, imported once per worker (a user's module here).
        self.builder = get_builder(settings.model)

    def run(self, limits: WorkerLimits) -> str:
        """Claim and train trials until the study holds its target or ``limits`` stop this
        worker; returns why it stopped."""
        self.proposer.open(self.study)
        guard = FailureGuard(self.settings.max_failures)
        ran = 0
        while True:
            why = limits.stop_reason(ran)
            if why:
                return why
            check_stop()
            claimed = self._claim()
            if claimed == "target":
                score_winner(self.study, self.settings, self.dataset, self.url)
                return "target"
            if claimed is None:
                stop_requested.wait(POLL_S)
                continue
            assert isinstance(claimed, optuna.Trial)
            state, value, reason = self._run(claimed)
            ran += 1
            if state is None:  # lost to another worker
                continue
            guard(state, reason)
            trials = self.study.get_trials(deepcopy=False)
            self.progress.trial_ended(
                claimed.number,
                state.name,
                value,
                finished_count(count_states(trials)),
                best_value(self.study),
                reason,
            )
            if guard.tripped:
                raise SearchAborted(
                    aborted_message(self.settings, guard.in_a_row, guard.last_reason, self.url)
                )

    def _claim(self) -> optuna.Trial | str | None:
        """Count and claim, under the study's lock: the next trial (a queued retry first), or
        None while the running trials may still reach the target (or the proposer waits for
        them), or "target" when the study holds its target of finished trials. No two
        workers pass here at once, so the study never overshoots its target and every new
        trial has a number of its own.

        A trial turns RUNNING already holding its claim (worker, seed): the claim is written
        into the waiting trial first, with the trial itself for a new point. A worker killed
        at any moment of its claim leaves either a waiting trial, handed out next, or a
        running one whose dead worker is known at once, never a running trial of nobody's
        that the next run must wait out (``fail_dead_trials``)."""
        study, settings = self.study, self.settings
        with exclusive(self.url, f"claim:{settings.study}"):
            stored = study._storage.get_study_user_attrs(study._study_id)
            target = stored_target(stored, settings.trials)
            trials = study.get_trials(deepcopy=False)
            if fail_dead_trials(study, trials):  # failed or retried some: read them again
                trials = study.get_trials(deepcopy=False)
            counts = count_states(trials)
            finished = finished_count(counts)
            if finished >= target:
                return "target"
            if finished + counts.get("RUNNING", 0) >= target:
                return None
            waiting = [t for t in trials if t.state == TrialState.WAITING]
            if waiting:  # Optuna hands out the oldest queued trial first
                queued = min(waiting, key=lambda t: t.number)
                number = queued.number
                self.proposer.repeat(study, point_index(trials, number))
                for key, value in self._claimed(number, trials).items():
                    study._storage.set_trial_user_attr(queued._trial_id, key, value)
            else:
                proposal = self.proposer.suggest(study, trials)
                if proposal == WAIT:
                    return None
                number = len(trials)  # the next trial's number
                if not isinstance(proposal, Proposal):  # the sampler draws it once claimed
                    proposal = Proposal(params={})
                _enqueue(study, settings, proposal, self._claimed(number, trials))
            with warnings.catch_warnings():
                # Optuna warns that heartbeats are meant for Study.optimize; this loop
                # records them itself (_Heartbeat), as Optuna's FAQ says to.
                warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                trial = study.ask()
            if trial.number != number:  # queued by another program meanwhile: claimed now
                for key, value in self._claimed(trial.number, trials).items():
                    trial.set_user_attr(key, value)
            return trial

    def _claimed(self, number: int, trials: list[FrozenTrial]) -> dict[str, Any]:
        """The claim of trial ``number`` by this worker (``TrialRecord.claimed``)."""
        seed = self._seed(number, trials)
        return TrialRecord.claimed(self.settings.engine, worker_identity(), seed)

    def _seed(self, number: int, trials: list[FrozenTrial]) -> int:
        """The seed trial ``number`` trains with (``trials``: the study's trials read by the
        claim, a queued retry among them): the seed its attempt stored, for a retry, else the
        study's seed plus its point's index: the same point trained the same way."""
        by_number = {t.number: t for t in trials}
        queued = by_number.get(number)
        attempt = None if queued is None else queued.system_attrs.get("failed_trial")
        if attempt is not None:
            stored = as_int(by_number[int(attempt)].user_attrs.get("seed"))
            if stored is not None:  # an attempt killed before it stored one: its point's
                return stored
        return self.settings.seed + point_index(trials, number)

    def _run(self, trial: optuna.Trial) -> tuple[TrialState | None, float | None, str]:
        """Train the claimed trial and tell the study how it ended: (state, value, reason);
        state None when another worker failed the trial first (a stale heartbeat)."""
        try:
            with _Heartbeat(self.study._storage, trial._trial_id):  # type: ignore[arg-type]
                state, value, reason = self._train(trial)
        except _Lost:
            return None, None, ""
        try:
            if state == TrialState.COMPLETE:
                self.study.tell(trial, value)
            else:
                self.study.tell(trial, state=state)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            return None, None, ""  # failed meanwhile by another worker (stale heartbeat)
        return state, value, reason

    def _train(self, trial: optuna.Trial) -> tuple[TrialState, float | None, str]:
        from search._keras import import_keras

        keras = import_keras()
        settings, progress = self.settings, self.progress
        progress.trial_started(trial.number)
        storage, trial_id = trial.study._storage, trial._trial_id
        attrs = trial.user_attrs
        worker = attrs["worker"]

        def on_epoch(epoch: int, recorder: TrialRecorder) -> None:
            # One small row per epoch (O(1)); the whole history is written once at the end.
            row = {key: values[-1] for key, values in recorder.history.items()}
            storage.set_trial_user_attr(trial_id, epoch_key(epoch), epoch_row(worker, row))
            value = recorder.history.get(settings.objective, [None])[-1]
            if value is not None:  # the objective per epoch: the intermediate values
                trial.report(value, epoch)
            progress.epoch_ended(trial.number, epoch, recorder.max_epochs, value)

        recorder = TrialRecorder(
            objective=settings.objective,
            direction=settings.direction,
            max_epochs=settings.epochs,
            on_epoch=on_epoch,
        )

        seed = int(attrs["seed"])  # chosen when it was claimed (_seed)
        point: dict[str, Any] = {}

        def ended(outcome: TrialOutcome, reason: str | None = None) -> TrialRecord:
            # Its engine and worker were stored when it was claimed: one write less each.
            return outcome.record(
                fail_reason=reason, params=point or None, seed=seed, versions=library_versions()
            )

        try:
            plan = self.proposer.plan(trial)
            point.update(settings.space.builder_point(plan.params))
            recorder.max_epochs = plan.epochs
            outcome = fit_trial(
                dict(point),
                self.dataset,
                recorder,
                patience=settings.patience,
                seed=seed,
                callbacks=[*plan.callbacks, _stop_callback(keras)],
                builder=self.builder,
            )
            if outcome.value is not None:
                # A checkpoint that cannot be written (a full disk) costs a retraining at
                # export, not the trial.
                with contextlib.suppress(OSError):
                    keep_checkpoint(
                        outcome.model, self.study, settings, self.url, trial.number, outcome.value
                    )
            outcome.model = None
        except optuna.TrialPruned:
            self._store(trial, ended(recorder.outcome(pruned=True)))
            return TrialState.PRUNED, None, ""
        except TrialFailed as exc:
            if isinstance(exc.__cause__, optuna.exceptions.UpdateFinishedTrialError):
                raise _Lost() from None
            self._store(trial, ended(recorder.outcome(failed=True), exc.reason))
            return TrialState.FAIL, None, exc.reason
        except KeyboardInterrupt:
            # Stopped, not failed by its point: retried when the search goes on, as a trial
            # whose worker was killed is (and whatever came before: queue_retry).
            self._store(trial, ended(recorder.outcome(failed=True), INTERRUPTED))
            # Failed and its retry queued under the claim lock, as dead trials are: no claim
            # sees the one without the other (it would propose a new point before the
            # retry). Killed in between, the next claim queues the retry (cut_short).
            with exclusive(self.url, f"claim:{settings.study}"):
                trial.set_user_attr(CUT_SHORT, True)
                frozen = trial.study.tell(trial, state=TrialState.FAIL)
                queue_retry(trial.study, frozen)
            raise
        except optuna.exceptions.UpdateFinishedTrialError:
            raise _Lost() from None
        except StorageError:
            raise  # the database is gone: nothing can be stored; the worker stops
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self._store(trial, ended(recorder.outcome(failed=True), reason))
            return TrialState.FAIL, None, reason
        finally:
            # Frees the model's graph; it also runs gc.collect() (0.25 s: once is enough).
            keras.backend.clear_session()
        if outcome.value is None:
            reason = f"no epoch reported the objective {settings.objective!r}"
            self._store(trial, ended(outcome, reason))
            return TrialState.FAIL, None, reason
        self._store(trial, ended(outcome))
        return TrialState.COMPLETE, outcome.value, ""

    @staticmethod
    def _store(trial: optuna.Trial, record: TrialRecord) -> None:
        record.rss_mib = rss_mib()
        for key, value in record.to_attrs().items():
            trial.set_user_attr(key, value)


@functools.cache
def library_versions() -> dict[str, str]:
    """The versions that train in this process (part of each trial's record)."""
    import platform

    import numpy

    from search._keras import import_keras
    from search._settings import package_version

    keras = import_keras()
    import tensorflow as tf

    return {
        "hpsearch": package_version(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "optuna": optuna.__version__,
        "numpy": numpy.__version__,
    }


def _stop_callback(keras: Any) -> Any:
    """A Keras callback that ends the fit with KeyboardInterrupt once a stop is requested."""

    class StopCheck(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            check_stop()

        def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
            check_stop()

    return StopCheck()


def aborted_message(settings: StudySettings, in_a_row: int, reason: str, url: str) -> str:
    """Why the search stopped itself, and the command that gets it going again: ``resume``
    repeats the study's stored space, so when its points themselves fail (a model that cannot
    be built, a loss that diverges) the way on is a new study with a fixed space."""
    head = (
        f"study {settings.study!r}: stopped after {in_a_row} failed trials in a row; the last "
        f"failed because {reason.rstrip('.')}. The finished trials are kept"
    )
    builder_fails = reason.startswith(
        ("building the model failed", "training failed: the model has")
    )
    if builder_fails and settings.model != DENSE.name:
        return (
            f"{head}. The model builder fails: fix {settings.model} (it is imported afresh) "
            f"and run `{resume_command(settings.study, url)}`."
        )
    if reason.startswith("building the model failed") or " became " in reason:
        return (
            f"{head}. The space's points fail, and `hpsearch resume` would sample the same "
            f"space: fix the space and start a new study, e.g. `hpsearch run --data "
            f"{settings.data.source} --space FIXED.yaml --study {settings.study}-2`."
        )
    return f"{head}; fix the cause and run `{resume_command(settings.study, url)}`."


def _enqueue(
    study: optuna.Study, settings: StudySettings, proposal: Proposal, claim: dict[str, Any]
) -> None:
    """The proposed point as a waiting trial that holds its whole point and its ``claim``
    from the start (no params: the sampler draws them once the trial is handed out).

    ``study.enqueue_trial`` would store the values only as each is suggested, one write
    each: a worker killed between two of them would leave a failed trial with part of its
    point. Here the trial is made with its params, their distributions and the claim in one
    write; suggesting them later reads them back."""
    distributions = optuna_distributions(settings.space)
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=dict(proposal.params),
            distributions={name: distributions[name] for name in proposal.params},
            user_attrs={
                **proposal.attrs,
                **claim,
                **({POINT_GIVEN: True} if proposal.params else {}),
            },
        )
    )

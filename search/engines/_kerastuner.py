"""The KerasTuner engine: KerasTuner's oracles (Hyperband, BayesianOptimization,
RandomSearch) propose the points; the one lifecycle trains them.

The database is the only source of truth. KerasTuner keeps an oracle's state in a directory
of JSON files rewritten in place; here no directory is written at all. Each claim (under the
study's lock) builds the oracle afresh from the stored trials:

- every trial the oracle proposed carries, in its user attribute ``kerastuner``, the
  oracle's trial id and values, and the Hyperband bookkeeping as it stood after the proposal
  (brackets, current bracket and iteration: small, since finished brackets are dropped);
  it is written in the same transaction that creates the trial, so the two never disagree;
- the oracle gets one KerasTuner trial per id, whose status is that of its latest attempt
  (COMPLETE -> COMPLETED with the stored value as score, RUNNING or a queued retry ->
  running, anything else -> FAILED), the values tried so far (not those of a trial stopped
  by Ctrl-C whose one retry was stopped too: it was never judged, so its point may come
  again), and the Hyperband bookkeeping of the newest proposal (not of a retry, which
  carries its attempt's);
- an oracle with no new point (a small space, all tried) makes the worker wait while other
  trials run, and stops the search (SearchAborted, one line) once none does;
- the oracle is seeded from the study's seed and the new point's index
  (``points_proposed``: its trials less the retries), like Optuna's samplers: a seeded
  single worker proposes the same points on every run, also when stopped and resumed,
  concurrent workers different ones.

A Hyperband trial trains for the epochs of its round (``tuner/epochs``). A trial promoted
to the next round trains afresh for its larger budget rather than from the previous round's
weights (as Optuna's Hyperband pruner does), so KerasTuner writes no checkpoint of its own
(``--keep-top`` keeps the best trials' models, as for Optuna).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from search._errors import SearchAborted
from search._records import INTERRUPTED, TrialRecord
from search._settings import StudySettings
from search.engines._base import WAIT, Proposal, Proposer, TrialPlan, points_proposed
from spaces import kerastuner_hyperparameters, params_from_values

STATE_ATTR = "kerastuner"
# The Hyperband bookkeeping carried from trial to trial (see the module docstring).
_HYPERBAND_STATE = ("brackets", "current_bracket", "current_iteration")
# Oracles stop after max_trials; the study's target decides here.
_UNLIMITED = 10**6
_CLAIMANT = "hpsearch"


def _seed(seed: int, number: int) -> int:
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0] % (2**31))


class KerasTunerProposer(Proposer):
    """KerasTuner's ``hyperband``, ``bayesian`` or ``random`` oracle, rebuilt from the
    database for every proposal."""

    def __init__(self, settings: StudySettings) -> None:
        super().__init__(settings)
        # The space declared once per worker; each oracle gets a copy of it.
        self._hyperparameters = kerastuner_hyperparameters(settings.space)

    def suggest(self, study: optuna.Study, trials: list[FrozenTrial]) -> Proposal | str:
        oracle = self._oracle(trials, _seed(self.settings.seed, points_proposed(trials)))
        try:
            proposed = oracle.create_trial(_CLAIMANT)
        finally:
            _forget(oracle)
        if proposed.status == "IDLE":
            return WAIT  # Hyperband: the round waits for its running trials
        if proposed.status != "RUNNING" and any(
            t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials
        ):
            return WAIT  # the running trials may still reach the target
        if proposed.status != "RUNNING":
            raise SearchAborted(
                f"study {self.settings.study!r}: KerasTuner's {self.settings.algorithm} oracle "
                f"has no new point to propose ({len(trials)} trials so far: the space is "
                "exhausted); the finished trials are kept. Widen the space in a new study, or "
                "give fewer --trials."
            )
        values = {k: _plain(v) for k, v in proposed.hyperparameters.values.items()}
        state = oracle.get_state()
        attrs = {
            "trial_id": proposed.trial_id,
            "values": values,
            "oracle": {k: state[k] for k in _HYPERBAND_STATE if k in state},
        }
        return Proposal(
            params=params_from_values(self.settings.space, values),
            attrs={STATE_ATTR: attrs},
        )

    def plan(self, trial: optuna.Trial) -> TrialPlan:
        from spaces import sample_optuna

        values = trial.user_attrs.get(STATE_ATTR, {}).get("values", {})
        epochs = int(values.get("tuner/epochs", self.settings.epochs))
        # The trial was created holding its params: suggesting them reads them back.
        return TrialPlan(params=sample_optuna(self.settings.space, trial), epochs=epochs)

    def _oracle(self, trials: list[FrozenTrial], seed: int) -> Any:
        """The oracle of the study's algorithm, as the stored trials leave it."""
        import keras_tuner
        from keras_tuner.src.engine import trial as kt_trial

        s = self.settings
        hps = self._hyperparameters.copy()
        way = "min" if s.direction == "minimize" else "max"
        objective = keras_tuner.Objective(s.objective, way)
        common: dict[str, Any] = {
            "objective": objective,
            "hyperparameters": hps,
            "seed": seed,
            "tune_new_entries": False,
            "allow_new_entries": False,
        }
        if s.algorithm == "hyperband":
            oracle = keras_tuner.oracles.HyperbandOracle(
                max_epochs=s.epochs, factor=3, hyperband_iterations=_UNLIMITED, **common
            )
        elif s.algorithm == "bayesian":
            oracle = keras_tuner.oracles.BayesianOptimizationOracle(max_trials=_UNLIMITED, **common)
        else:
            oracle = keras_tuner.oracles.RandomSearchOracle(max_trials=_UNLIMITED, **common)
        # Nothing goes to disk or to stdout: the database holds the state.
        oracle.save = lambda: None
        oracle._save_trial = lambda trial: None
        oracle.verbose = 0

        latest: dict[str, FrozenTrial] = {}
        newest_state: dict[str, Any] = {}
        for frozen in trials:  # by number: a retry comes after the attempt it repeats
            stored = frozen.user_attrs.get(STATE_ATTR)
            if not isinstance(stored, dict) or "trial_id" not in stored:
                continue
            latest[stored["trial_id"]] = frozen
            # A retry carries a copy of its attempt's bookkeeping, older than that of the
            # proposals made since: only a proposal's own is the newest.
            if stored.get("oracle") and "failed_trial" not in frozen.system_attrs:
                newest_state = stored["oracle"]
        ongoing = {}
        worst = _worst(latest.values(), s.direction)
        for trial_id, frozen in latest.items():
            stored = frozen.user_attrs[STATE_ATTR]
            values = oracle.hyperparameters.copy()
            values.values = dict(stored["values"])
            status, score = _status(frozen, worst)
            restored = kt_trial.Trial(values, trial_id=trial_id, status=status)
            restored.score = score
            oracle.trials[trial_id] = restored
            oracle.start_order.append(trial_id)
            if not _interrupted(frozen):
                oracle._record_values(restored)  # tried: not proposed again
            if status == "RUNNING":
                ongoing[f"running-{trial_id}"] = restored
        finished = [
            (t.datetime_complete, tid)
            for tid, t in latest.items()
            if t.state.is_finished() and t.datetime_complete is not None
        ]
        oracle.end_order = [tid for _, tid in sorted(finished)]
        oracle.ongoing_trials = ongoing
        for key, value in newest_state.items():
            setattr(oracle, f"_{key}", value)
        return oracle


def _worst(trials: Iterable[FrozenTrial], direction: str) -> float | None:
    """The worst value of the completed trials (None before any completes)."""
    values = [
        t.value
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]
    if not values:
        return None
    return max(values) if direction == "minimize" else min(values)


def _status(frozen: FrozenTrial, worst: float | None) -> tuple[str, float | None]:
    """The KerasTuner status and score of a stored trial. A point that failed (its loss
    diverged, its model could not be built) counts as the worst value seen so far: left as
    FAILED, BayesianOptimization's model never learns of it and proposes the same region
    again (a run of such points stops the search); an interrupted one is simply unjudged."""
    if frozen.state == TrialState.COMPLETE:
        value = frozen.value
        if value is not None and math.isfinite(value):
            return "COMPLETED", value
        return "FAILED", None
    if frozen.state in (TrialState.RUNNING, TrialState.WAITING):
        return "RUNNING", None
    if frozen.state == TrialState.FAIL and worst is not None and not _interrupted(frozen):
        return "COMPLETED", worst
    return "FAILED", None


def _interrupted(frozen: FrozenTrial) -> bool:
    """A trial stopped by Ctrl-C or SIGTERM was never judged: the lifecycle retries its
    point (however often it is stopped), so the oracle is not told it failed."""
    return frozen.state == TrialState.FAIL and TrialRecord.of(frozen).fail_reason == INTERRUPTED


def _plain(value: Any) -> Any:
    """A JSON-safe Python value (KerasTuner may hand back numpy scalars)."""
    return value.item() if isinstance(value, np.generic) else value


def _forget(oracle: Any) -> None:
    """KerasTuner's method lock keeps every oracle in a module-level table for good; an
    oracle built per claim would otherwise stay in memory with all its trials."""
    from keras_tuner.src.engine import oracle as oracle_module

    oracle_module.LOCKS.pop(oracle, None)
    oracle_module.THREADS.pop(oracle, None)

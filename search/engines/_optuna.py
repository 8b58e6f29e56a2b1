"""The Optuna engine: Optuna's samplers and pruners propose and stop the trials."""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Container
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from search._errors import ConfigError
from search.engines._base import Proposer, TrialPlan, points_proposed
from spaces import sample_optuna


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of point ``number`` (``points_proposed``): the study's seed mixed
    with the point's index.

    Each point is proposed under the study's lock, so its index is its own: workers that
    start together draw from distinct streams, and a single worker draws the same points for
    the same seed every time (also across a resume, and after a retry)."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def make_sampler(name: str, seed: int, number: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler by its CLI name, seeded for point ``number`` (``trial_seed``).

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
    """The pruner by its CLI name; steps are epochs.

    The default, ``percentile``, stops a trial whose best value so far is worse than the 60th
    percentile of the complete trials' values at the same epoch (the best 60% go on), judged
    once 3 trials are complete and from the third epoch. Replayed on the trials of 24 unpruned
    searches (docs/benchmarks.md, part 8) it kept the best trial in 17 where ``median`` (after
    5 complete trials, from the fourth epoch) kept it in 14, in about the same time.
    """
    if name == "percentile":
        return optuna.pruners.PercentilePruner(
            60.0, n_startup_trials=3, n_warmup_steps=min(2, epochs - 1)
        )
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=min(3, epochs - 1))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"--pruner: unknown pruner {name!r}.")


class OptunaProposer(Proposer):
    """Optuna samplers (tpe, random, gp, qmc) propose the points, drawn in ``study.ask()``;
    its pruners (percentile, median, hyperband, successive-halving, none) stop trials after an
    epoch through a Keras callback (``_pruning_callback``). Both read every stored trial,
    whichever worker ran it."""

    def open(self, study: optuna.Study) -> None:
        s = self.settings
        assert s.sampler is not None and s.pruner is not None  # the engine's defaults
        study.sampler = make_sampler(s.sampler, s.seed)
        study.pruner = make_pruner(s.pruner, s.epochs)

    def suggest(self, study: optuna.Study, trials: list[FrozenTrial]) -> None:
        # The new point's index (points_proposed): nobody else proposes one while the claim's
        # lock is held.
        self.repeat(study, points_proposed(trials))
        return None

    def repeat(self, study: optuna.Study, index: int) -> None:
        assert self.settings.sampler is not None
        study.sampler = make_sampler(self.settings.sampler, self.settings.seed, index)

    def plan(self, trial: optuna.Trial) -> TrialPlan:
        pruner = trial.study.pruner
        return TrialPlan(
            params=sample_optuna(self.settings.space, trial),
            epochs=self.settings.epochs,
            # `--pruner none` never prunes: nothing to ask after each epoch.
            callbacks=()
            if isinstance(pruner, optuna.pruners.NopPruner)
            else (_pruning_callback(trial, pruner, self.settings.objective),),
        )


# How old the complete trials a percentile pruner judges by may be, in seconds (below).
COMPLETE_TRIALS_MAX_AGE_S = 1.0


class CompleteTrials:
    """What a percentile (or median) pruner reads of its study, its direction and its
    complete trials, read from the database at most once every ``max_age_s`` seconds.

    ``Trial.should_prune`` reads the study's trials afresh on every call; for a running trial
    that is a query loading the trial itself with every epoch row stored so far, a fifth of a
    small model's epoch. The complete trials change only when another worker finishes one,
    so a worker alone judges by exactly what ``should_prune`` would read, and workers
    together see each other's results at most ``max_age_s`` later. Optuna's own wrappers
    hand pruners such a view of the study (``HyperbandPruner``'s ``_BracketStudy``).
    """

    def __init__(self, study: optuna.Study, max_age_s: float = COMPLETE_TRIALS_MAX_AGE_S) -> None:
        self._study, self._max_age_s = study, max_age_s
        self._read_at: float | None = None
        self._trials: list[FrozenTrial] = []
        self.direction = study.direction

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        now = time.monotonic()
        if self._read_at is None or now - self._read_at > self._max_age_s:
            self._trials = self._study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            self._read_at = now
        trials = [t for t in self._trials if states is None or t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials


def running_trial(trial: optuna.Trial, intermediate_values: dict[int, float]) -> FrozenTrial:
    """The running trial as a pruner sees it: its number and the objective per epoch."""
    return FrozenTrial(
        number=trial.number,
        trial_id=trial._trial_id,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=None,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={},
        intermediate_values=dict(intermediate_values),
    )


def _pruning_callback(
    trial: optuna.Trial, pruner: optuna.pruners.BasePruner, objective: str
) -> Any:
    """A Keras callback that asks the study's pruner after each epoch (the lifecycle has
    reported the epoch's objective by then) and ends the trial as pruned if it says so.

    A percentile or median pruner judges only the trial's values and the complete trials, and
    is asked with those (``CompleteTrials``); other pruners record their rungs in the trial
    and are asked through ``Trial.should_prune``.
    """
    from search._keras import import_keras

    keras: Any = import_keras()
    percentile = isinstance(pruner, optuna.pruners.PercentilePruner)  # MedianPruner is one

    class PruneCheck(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.values: dict[int, float] = {}
            self.study = CompleteTrials(trial.study) if percentile else None

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if self.study is None:
                prune = trial.should_prune()
            else:
                value = (logs or {}).get(objective)
                if value is not None:  # what the lifecycle reported for this epoch
                    self.values[epoch] = float(value)
                prune = pruner.prune(self.study, running_trial(trial, self.values))  # type: ignore[arg-type]
            if prune:
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    return PruneCheck()

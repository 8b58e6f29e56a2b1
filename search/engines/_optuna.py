"""The Optuna engine: Optuna's samplers and pruners propose and stop the trials."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from search._errors import ConfigError
from search.engines._base import Proposer, TrialPlan
from spaces import sample_optuna


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


class OptunaProposer(Proposer):
    """Optuna samplers (tpe, random, gp, qmc) propose the points, drawn in ``study.ask()``;
    its pruners (median, hyperband, successive-halving, none) stop trials through Optuna's
    Keras pruning callback. Both read every stored trial, whichever worker ran it."""

    def open(self, study: optuna.Study) -> None:
        s = self.settings
        assert s.sampler is not None and s.pruner is not None  # the engine's defaults
        study.sampler = make_sampler(s.sampler, s.seed)
        study.pruner = make_pruner(s.pruner, s.epochs)

    def suggest(self, study: optuna.Study, trials: list[FrozenTrial]) -> None:
        # The new trial's number is the count of trials: nobody else creates one while the
        # claim's lock is held.
        assert self.settings.sampler is not None
        study.sampler = make_sampler(self.settings.sampler, self.settings.seed, len(trials))
        return None

    def plan(self, trial: optuna.Trial) -> TrialPlan:
        return TrialPlan(
            params=sample_optuna(self.settings.space, trial),
            epochs=self.settings.epochs,
            callbacks=(_pruning_callback(trial),),
        )


def _pruning_callback(trial: optuna.Trial) -> Any:
    """A Keras callback that asks the study's pruner after each epoch (the lifecycle has
    reported the epoch's objective by then) and ends the trial as pruned if it says so."""
    from search._keras import import_keras

    keras: Any = import_keras()

    class PruneCheck(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    return PruneCheck()

"""Sampling spaces through real Optuna studies."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from spaces import (
    CategoricalParam,
    FixedParam,
    FloatParam,
    IntParam,
    Space,
    load_space,
    optuna_distributions,
    resolve_params,
    sample_optuna,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _run(space: Space, n_trials: int, seed: int = 0) -> tuple[optuna.Study, list[dict[str, Any]]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    sampled: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        params = sample_optuna(space, trial)
        sampled.append(params)
        return float(params.get("learning_rate", 0.0))

    study.optimize(objective, n_trials=n_trials)
    return study, sampled


def test_mlp_conditionals_appear_exactly_when_their_condition_holds() -> None:
    space = load_space("mlp")
    study, sampled = _run(space, 200)
    assert len(study.trials) == 200
    for trial, params in zip(study.trials, sampled, strict=True):
        assert ("reg_strength" in params) == (params["regularizer"] in ("l1", "l2", "l1_l2"))
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
        # Optuna's record holds exactly what was sampled (no fixed params in this space).
        assert trial.params == params
        resolve_params(params)  # every sample is a valid builder input
    # Both branches were seen, so the checks above exercised both ways.
    assert {"reg_strength" in p for p in sampled} == {True, False}
    assert {"momentum" in p for p in sampled} == {True, False}


def test_values_stay_within_bounds_and_distributions_match_the_space() -> None:
    space = load_space("mlp")
    study, sampled = _run(space, 100, seed=1)
    for params in sampled:
        assert 16 <= params["units"] <= 512 and isinstance(params["units"], int)
        assert 1 <= params["depth"] <= 4
        assert 0.0 <= params["dropout"] <= 0.5
        assert 1e-4 <= params["learning_rate"] <= 1e-1
        assert params["batch_size"] in (32, 64, 128, 256)
        if "reg_strength" in params:
            assert 1e-6 <= params["reg_strength"] <= 1e-2
        if "momentum" in params:
            assert 0.0 <= params["momentum"] <= 0.99
    declared = optuna_distributions(space)
    for trial in study.trials:
        for name, distribution in trial.distributions.items():
            assert distribution == declared[name]
    assert declared["units"] == IntDistribution(16, 512, log=True)
    assert declared["learning_rate"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert declared["reg_strength"] == FloatDistribution(1e-6, 1e-2, log=True)
    assert declared["dropout"] == FloatDistribution(0.0, 0.5)
    assert declared["batch_size"] == CategoricalDistribution((32, 64, 128, 256))


def test_fixed_params_are_returned_but_not_suggested() -> None:
    space = load_space("small")
    study, sampled = _run(space, 30)
    for trial, params in zip(study.trials, sampled, strict=True):
        assert params["batch_size"] == 64
        assert "batch_size" not in trial.params
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
    assert "batch_size" not in optuna_distributions(space)


def test_steps_and_fixed_parents_are_honoured() -> None:
    space = Space(
        "stepped",
        (
            IntParam("units", 8, 64, step=8),
            FloatParam("dropout", 0.0, 0.5, step=0.25),
            FixedParam("optimizer", "sgd"),
            FloatParam("momentum", 0.0, 0.9, when={"optimizer": ("sgd",)}),
            CategoricalParam("regularizer", ("none", "l2")),
            FixedParam("reg_strength", 0.001, when={"regularizer": ("l2",)}),
        ),
    )
    _, sampled = _run(space, 40)
    for params in sampled:
        assert params["units"] % 8 == 0
        assert params["dropout"] in (0.0, 0.25, 0.5)
        assert "momentum" in params
        assert ("reg_strength" in params) == (params["regularizer"] == "l2")
    assert optuna_distributions(space)["units"] == IntDistribution(8, 64, step=8)


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_conditional_space_works_with_tpe_too(sampler: str) -> None:
    chosen = (
        optuna.samplers.TPESampler(seed=0, n_startup_trials=5)
        if sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=0)
    )
    study = optuna.create_study(sampler=chosen)
    space = load_space("small")
    study.optimize(lambda t: sample_optuna(space, t)["learning_rate"], n_trials=15)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_a_fixed_trial_replays_a_point() -> None:
    space = load_space("mlp")
    point = {
        "units": 32,
        "depth": 2,
        "dropout": 0.1,
        "activation": "elu",
        "initializer": "he_normal",
        "batch_norm": "none",
        "regularizer": "none",
        "optimizer": "sgd",
        "momentum": 0.9,
        "learning_rate": 0.01,
        "batch_size": 64,
    }
    assert sample_optuna(space, optuna.trial.FixedTrial(point)) == point

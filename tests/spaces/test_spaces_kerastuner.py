"""Declaring spaces on real KerasTuner HyperParameters and reading back the points its
oracles choose."""

from __future__ import annotations

from typing import Any

import keras_tuner
import pytest

from spaces import (
    FixedParam,
    kerastuner_hyperparameters,
    list_presets,
    load_space,
    params_from_values,
    parse_space,
    resolve_params,
)

KINDS = parse_space(
    {
        "name": "kinds",
        "params": {
            "units": {"type": "int", "low": 8, "high": 512, "log": True},
            "depth": {"type": "int", "low": 1, "high": 7, "step": 2},
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
            "dropout": {"type": "categorical", "choices": [0, 0.25, 0.5]},
            "optimizer": {"type": "categorical", "choices": ["adam", "sgd", "rmsprop"]},
            "momentum": {
                "type": "float", "low": 0.0, "high": 0.9, "step": 0.1,
                "when": {"optimizer": ["sgd", "rmsprop"]},
            },
            "regularizer": {"type": "categorical", "choices": ["none", "l2"]},
            "reg_strength": {
                "type": "float", "low": 1e-6, "high": 1e-2, "log": True,
                "when": {"regularizer": "l2", "optimizer": "sgd"},
            },
            "batch_size": 32,
        },
    },
    source="kinds",
)  # fmt: skip


def _oracle_points(space: Any, count: int, seed: int = 0) -> list[dict[str, Any]]:
    """Points drawn by KerasTuner's RandomSearch oracle over the declared space."""
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_loss", "min"),
        max_trials=count,
        hyperparameters=kerastuner_hyperparameters(space),
        seed=seed,
    )
    oracle._set_project_dir("unused", "unused")
    oracle.save = lambda: None
    oracle._save_trial = lambda trial: None
    oracle.verbose = 0
    points = []
    for index in range(count):
        trial = oracle.create_trial(f"t{index}")
        assert trial.status == "RUNNING"
        points.append(dict(trial.hyperparameters.values))
        oracle.ongoing_trials.clear()
    return points


def test_every_kind_is_declared_with_its_range_step_and_scale() -> None:
    hp = kerastuner_hyperparameters(KINDS)
    declared = {h.name: h for h in hp.space}
    assert list(declared) == list(KINDS.names)
    units = declared["units"]
    assert (units.min_value, units.max_value, units.sampling) == (8, 512, "log")
    depth = declared["depth"]
    assert (depth.min_value, depth.max_value, depth.step, depth.sampling) == (1, 7, 2, "linear")
    lr = declared["learning_rate"]
    assert (lr.min_value, lr.max_value, lr.sampling) == (1e-4, 1e-1, "log")
    momentum = declared["momentum"]
    assert (momentum.step, momentum.sampling) == (0.1, "linear")
    assert declared["optimizer"].values == ["adam", "sgd", "rmsprop"]
    # KerasTuner's Choice holds one type: mixed int/float choices are declared as text.
    assert declared["dropout"].values == ["0", "0.25", "0.5"]
    assert declared["batch_size"].value == 32
    # Conditions become conditional scopes, one per parent.
    assert len(declared["momentum"].conditions) == 1
    assert len(declared["reg_strength"].conditions) == 2


def test_oracle_points_respect_the_conditions_and_read_back_as_the_space_types() -> None:
    points = _oracle_points(KINDS, 120)
    seen_momentum = seen_strength = 0
    for values in points:
        params = params_from_values(KINDS, values)
        assert "batch_size" not in params  # fixed: part of the space, not searched
        assert ("momentum" in params) == (params["optimizer"] in ("sgd", "rmsprop"))
        assert ("reg_strength" in params) == (
            params["regularizer"] == "l2" and params["optimizer"] == "sgd"
        )
        assert params["dropout"] in (0, 0.25, 0.5)
        assert type(params["dropout"]) is (int if params["dropout"] == 0 else float)
        assert isinstance(params["units"], int) and 8 <= params["units"] <= 512
        assert params["depth"] in (1, 3, 5, 7)
        assert 1e-4 <= params["learning_rate"] <= 1e-1
        resolve_params({**params, "batch_size": 32})  # a valid builder input
        seen_momentum += "momentum" in params
        seen_strength += "reg_strength" in params
    assert 0 < seen_momentum < len(points) and 0 < seen_strength < len(points)


def test_the_ends_of_kerastuners_unit_interval_read_back_within_the_declared_range() -> None:
    """KerasTuner maps a probability of 1.0 (its Bayesian oracle's bound) on a log-scaled
    Int to one past the top of the range: the point is read back within the range."""
    hp = kerastuner_hyperparameters(KINDS)
    for end in (0.0, 1.0):
        values = {h.name: h.prob_to_value(end) for h in hp.space if hasattr(h, "prob_to_value")}
        values["optimizer"] = "sgd"
        params = params_from_values(KINDS, values)
        assert params["units"] == (8 if end == 0.0 else 512), values["units"]
        assert params["learning_rate"] == pytest.approx(1e-4 if end == 0.0 else 1e-1)
        assert 1e-4 <= params["learning_rate"] <= 1e-1
        assert 0.0 <= params["momentum"] <= 0.9


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_translates_to_valid_builder_inputs(preset: str) -> None:
    space = load_space(preset)
    fixed = {p.name: p.value for p in space.params if isinstance(p, FixedParam)}
    for values in _oracle_points(space, 20, seed=3):
        params = params_from_values(space, values)
        assert set(params) <= set(space.names) - set(fixed)
        resolve_params(space.builder_point({**fixed, **params}))

"""The model builder against hand-written Keras models, and the Keras vocabulary."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import spaces
from spaces import (
    ACTIVATIONS,
    BUILDER_DEFAULTS,
    INITIALIZERS,
    OPTIMIZERS,
    REGULARIZERS,
    DataSpec,
    SpaceError,
    build_model,
    model_summary,
    param_counts,
    resolve_params,
)

keras = pytest.importorskip("keras")

BINARY = DataSpec((3,), "binary")


def _layer_types(model: Any) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


# --------------------------------------------------------------------------- vocabulary


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_resolves_in_keras_and_builds(name: str) -> None:
    assert callable(keras.activations.get(name))
    model = build_model({"activation": name, "units": 2}, BINARY)
    assert model.layers[0].activation is keras.activations.get(name)


@pytest.mark.parametrize("name", INITIALIZERS)
def test_every_initializer_resolves_in_keras_and_builds(name: str) -> None:
    expected = type(keras.initializers.get(name))
    model = build_model({"initializer": name, "units": 2}, BINARY)
    assert isinstance(model.layers[0].kernel_initializer, expected)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_resolves_in_keras_and_builds(name: str) -> None:
    expected = type(keras.optimizers.get(name))
    model = build_model({"optimizer": name, "learning_rate": 0.02, "momentum": 0.5}, BINARY)
    assert isinstance(model.optimizer, expected)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)
    if name == "sgd":
        assert model.optimizer.momentum == 0.5


@pytest.mark.parametrize("name", REGULARIZERS)
def test_every_regularizer_builds_on_hidden_and_output_layers(name: str) -> None:
    model = build_model({"regularizer": name, "reg_strength": 0.1, "depth": 2}, BINARY)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == 3
    for layer in dense:
        if name == "none":
            assert layer.kernel_regularizer is None
        else:
            config = layer.kernel_regularizer.get_config()
            expected = {"l1": {"l1"}, "l2": {"l2"}, "l1_l2": {"l1", "l2"}}[name]
            assert {key for key, value in config.items() if value} == expected
            assert all(value == pytest.approx(0.1) for value in config.values() if value)


def test_the_vocabulary_is_the_one_keras_resolves() -> None:
    # Keras' own string lookup, not our list, is what the builder uses; a name Keras drops
    # makes the parametrised tests above fail. Here: our batch_norm and regularizer names are
    # our own and must not be passed to Keras as strings.
    with pytest.raises(ValueError):
        keras.regularizers.get("l1_l2")
    for class_name in spaces.LR_SCHEDULE_CLASSES.values():
        assert hasattr(keras.optimizers.schedules, class_name)
    assert spaces.VOCABULARIES["batch_norm"] == (
        "none",
        "before_activation",
        "after_activation",
    )


# --------------------------------------------------------------------------- parameter counts


def test_imdb_chollet_network_matches_the_hand_written_model() -> None:
    model = build_model({"units": 16, "depth": 2}, DataSpec((10000,), "binary"))
    reference = keras.Sequential(
        [
            keras.Input(shape=(10000,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    assert param_counts(model) == {"total": 160305, "trainable": 160305, "non_trainable": 0}
    assert model.count_params() == reference.count_params()
    assert _layer_types(model) == _layer_types(reference)
    assert model.layers[-1].activation is keras.activations.sigmoid
    assert "160,305" in model_summary(model)


def test_geron_fashion_mnist_network_matches_the_hand_written_model() -> None:
    model = build_model({"units": [300, 100]}, DataSpec((28, 28), "multiclass", classes=10))
    reference = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(300, activation="relu"),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    assert param_counts(model)["total"] == 266610 == reference.count_params()
    assert _layer_types(model) == _layer_types(reference)
    assert [layer.units for layer in model.layers[1:]] == [300, 100, 10]


def test_regression_network_matches_the_hand_written_model() -> None:
    # Géron's California housing MLP: 8 features, one hidden layer of 30, a linear output.
    model = build_model({"units": 30}, DataSpec((8,), "regression"))
    assert param_counts(model)["total"] == 8 * 30 + 30 + 30 + 1 == 301
    assert model.layers[-1].activation is keras.activations.linear
    assert model.layers[-1].units == 1


@pytest.mark.parametrize("where", ["before_activation", "after_activation"])
def test_batch_norm_variants(where: str) -> None:
    model = build_model(
        {"units": [32, 16], "batch_norm": where, "dropout": 0.2}, DataSpec((10,), "binary")
    )
    counts = param_counts(model)
    # Each BatchNormalization has 2 trainable (gamma, beta) and 2 moving statistics per unit.
    assert counts["non_trainable"] == 2 * (32 + 16)
    bias = 0 if where == "before_activation" else 32 + 16
    dense = 10 * 32 + 32 * 16 + bias + (16 + 1)
    assert counts["trainable"] == dense + 2 * (32 + 16)
    assert counts["total"] == counts["trainable"] + counts["non_trainable"]
    if where == "before_activation":
        block = ["Dense", "BatchNormalization", "Activation", "Dropout"]
        assert model.layers[0].use_bias is False
    else:
        block = ["Dense", "BatchNormalization", "Dropout"]
    assert _layer_types(model) == block * 2 + ["Dense"]
    summary = model_summary(model)
    assert "Non-trainable params: 96" in summary
    assert "Total params:" in summary and "Trainable params:" in summary


def test_dropout_layers_only_when_dropout_is_positive() -> None:
    assert "Dropout" not in _layer_types(build_model({"depth": 2}, BINARY))
    model = build_model({"depth": 2, "dropout": 0.3}, BINARY)
    rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates == [0.3, 0.3]


@pytest.mark.parametrize(
    ("spec", "loss", "metrics", "outputs", "activation"),
    [
        (DataSpec((4,), "binary"), "binary_crossentropy", {"loss", "accuracy"}, 1, "sigmoid"),
        (
            DataSpec((4,), "multiclass", classes=3),
            "sparse_categorical_crossentropy",
            {"loss", "accuracy"},
            3,
            "softmax",
        ),
        (DataSpec((4,), "regression"), "mse", {"loss", "mae"}, 1, "linear"),
    ],
)
def test_compile_matches_the_task(
    spec: DataSpec, loss: str, metrics: set[str], outputs: int, activation: str
) -> None:
    model = build_model({"units": 4}, spec)
    assert model.loss == loss
    assert model.layers[-1].units == outputs
    assert model.layers[-1].activation is keras.activations.get(activation)
    x = np.zeros((8, 4), dtype="float32")
    y = np.zeros((8,), dtype="float32" if spec.task == "regression" else "int32")
    assert set(model.evaluate(x, y, verbose=0, return_dict=True)) == metrics


@pytest.mark.slow
def test_a_tiny_real_fit_lowers_the_loss() -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")
    model = build_model(
        {"units": 16, "depth": 2, "learning_rate": 0.01, "batch_norm": "after_activation"},
        DataSpec((5,), "binary"),
    )
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 8
    assert losses[-1] < losses[0]
    assert np.isfinite(losses).all()


# --------------------------------------------------------------------------- the tutorials' knobs


def test_a_funnel_shrinks_each_layer_from_the_first_width() -> None:
    assert resolve_params({"units": 512, "depth": 4, "width_shrink": 0.5})["units"] == [
        512, 256, 128, 64
    ]  # fmt: skip
    assert resolve_params({"units": 3, "depth": 4, "width_shrink": 0.1})["units"] == [3, 1, 1, 1]
    again = resolve_params(resolve_params({"units": 100, "depth": 2, "width_shrink": 0.7}))
    assert again["units"] == [100, 70]  # resolving twice changes nothing
    with pytest.raises(SpaceError, match="with a list of widths leave it out"):
        resolve_params({"units": [8, 4], "width_shrink": 0.5})
    model = build_model({"units": 64, "depth": 3, "width_shrink": 0.5}, BINARY)
    assert [layer.units for layer in model.layers] == [64, 32, 16, 1]


def test_max_norm_and_activity_regularizer_on_every_hidden_layer() -> None:
    model = build_model(
        {"units": 8, "depth": 2, "max_norm": 3.0, "activity_regularizer": "l1_l2",
         "activity_strength": 0.001},
        BINARY,
    )  # fmt: skip
    hidden, output = model.layers[:-1], model.layers[-1]
    for layer in hidden:
        assert isinstance(layer.kernel_constraint, keras.constraints.MaxNorm)
        assert layer.kernel_constraint.max_value == 3.0
        regularizer = layer.activity_regularizer
        assert isinstance(regularizer, keras.regularizers.L1L2)
        assert regularizer.l1 == pytest.approx(0.001) and regularizer.l2 == pytest.approx(0.001)
    assert output.kernel_constraint is None and output.activity_regularizer is None
    plain = build_model({"units": 8}, BINARY).layers[0]
    assert plain.kernel_constraint is None and plain.activity_regularizer is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"optimizer": "adam", "beta_1": 0.8}, {"beta_1": 0.8}),
        ({"optimizer": "nadam", "beta_1": 0.7}, {"beta_1": 0.7}),
        ({"optimizer": "rmsprop", "rho": 0.5}, {"rho": 0.5}),
        ({"optimizer": "sgd", "momentum": 0.9}, {"momentum": 0.9}),
        ({"optimizer": "adagrad"}, {}),
    ],
)
def test_each_optimizer_takes_its_own_parameters(
    params: dict[str, Any], expected: dict[str, float]
) -> None:
    optimizer = build_model({"units": 4, **params}, BINARY).optimizer
    assert type(optimizer).__name__.lower() == params["optimizer"]
    for key, value in expected.items():
        assert getattr(optimizer, key) == pytest.approx(value)


CHANGED = {"momentum": 0.5, "beta_1": 0.8, "rho": 0.7, "lr_decay_rate": 0.5,
           "lr_decay_steps": 10, "reg_strength": 0.02, "activity_strength": 0.03}  # fmt: skip


def _built(params: dict[str, Any]) -> str:
    keras.backend.clear_session()  # the same layer names each time
    model = build_model(params, BINARY)
    return json.dumps(
        [keras.saving.serialize_keras_object(model),
         keras.saving.serialize_keras_object(model.optimizer)],
        sort_keys=True, default=str,
    )  # fmt: skip


@pytest.mark.parametrize(
    "point",
    [*({"optimizer": name} for name in OPTIMIZERS),
     {"lr_schedule": "exponential"}, {"lr_schedule": "cosine_restarts"},
     {"regularizer": "l2", "activity_regularizer": "l1"}],
)  # fmt: skip
def test_unused_params_are_exactly_those_the_model_does_not_read(point: dict[str, Any]) -> None:
    """What `describe` leaves out: changing one of these leaves the built model and its
    optimizer as they were; changing any other of the conditional ones does not."""
    resolved = resolve_params({"units": 2, **point})
    unused = spaces.unused_params(resolved)
    before = _built(resolved)
    for name, value in CHANGED.items():
        after = _built({**resolved, name: value})
        assert (after == before) == (name in unused), (point, name, sorted(unused))


def test_learning_rate_schedules() -> None:
    exponential = build_model(
        {"units": 4, "learning_rate": 0.1, "lr_schedule": "exponential",
         "lr_decay_rate": 0.5, "lr_decay_steps": 10},
        BINARY,
    ).optimizer  # fmt: skip
    schedule = exponential._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.ExponentialDecay)
    assert float(schedule(10)) == pytest.approx(0.05)
    cosine = build_model(
        {"units": 4, "learning_rate": 0.1, "lr_schedule": "cosine_restarts", "lr_decay_steps": 5},
        BINARY,
    ).optimizer._learning_rate
    assert isinstance(cosine, keras.optimizers.schedules.CosineDecayRestarts)
    assert float(cosine(0)) == pytest.approx(0.1) and float(cosine(5)) == pytest.approx(0.1)
    assert float(cosine(3)) < 0.1  # decays within the first cycle, restarts after it
    constant = build_model({"units": 4, "learning_rate": 0.1}, BINARY).optimizer
    assert float(constant.learning_rate) == pytest.approx(0.1)


def test_a_tiny_fit_with_every_new_knob() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model = build_model(
        {"units": 16, "depth": 2, "width_shrink": 0.5, "max_norm": 2.0,
         "activity_regularizer": "l2", "optimizer": "rmsprop", "rho": 0.8,
         "lr_schedule": "exponential", "lr_decay_steps": 2},
        BINARY,
    )  # fmt: skip
    history = model.fit(x, y, epochs=3, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    for layer in model.layers[:-1]:
        norms = np.sqrt((np.asarray(layer.kernel) ** 2).sum(axis=0))
        assert norms.max() <= 2.0 + 1e-5


# --------------------------------------------------------------------------- resolve_params


def test_resolve_params_fills_defaults() -> None:
    resolved = resolve_params({})
    assert set(resolved) == set(BUILDER_DEFAULTS)
    assert resolved["units"] == [64]
    assert resolved["depth"] == 1
    resolved = resolve_params({"units": 8, "depth": 3, "learning_rate": 1})
    assert resolved["units"] == [8, 8, 8]
    assert resolved["learning_rate"] == 1.0 and isinstance(resolved["learning_rate"], float)


def test_resolve_params_with_a_list_of_widths() -> None:
    assert resolve_params({"units": [300, 100]})["depth"] == 2
    assert resolve_params({"units": (4, 2, 1), "depth": 3})["units"] == [4, 2, 1]
    with pytest.raises(SpaceError, match=r"`depth` must equal.*depth=3, units=\[300, 100\]"):
        resolve_params({"units": [300, 100], "depth": 3})
    with pytest.raises(SpaceError, match="must not be empty"):
        resolve_params({"units": []})
    with pytest.raises(SpaceError, match=r"units\[1\] must be in \[1, 1048576\)"):
        resolve_params({"units": [8, 0]})


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"lr": 0.1}, "unknown parameter 'lr'; expected some of: units, depth"),
        ({"dropout": 1.0}, "parameter 'dropout': value must be in [0, 1)"),
        ({"activation": "relux"}, "unknown activation 'relux'"),
        ({"optimizer": "Adam"}, "unknown optimizer 'Adam'"),
        ({"depth": 2.0}, "parameter 'depth': value must be an integer"),
        ({"batch_norm": True}, "must be a name"),
        ({"width_shrink": 0.0}, "parameter 'width_shrink': value must be in (0, 1]"),
        ({"beta_1": 1.0}, "parameter 'beta_1': value must be in [0, 1)"),
        ({"rho": -0.1}, "parameter 'rho': value must be in [0, 1)"),
        ({"lr_schedule": "cosine"}, "unknown lr_schedule 'cosine'; expected one of: constant"),
        ({"lr_decay_rate": 1.5}, "parameter 'lr_decay_rate': value must be in (0, 1]"),
        ({"lr_decay_steps": 0}, "parameter 'lr_decay_steps': value must be >= 1"),
        ({"max_norm": -1.0}, "parameter 'max_norm': value must be >= 0"),
        ({"activity_regularizer": "l3"}, "unknown activity_regularizer 'l3'"),
    ],
)
def test_resolve_params_rejects_what_the_builder_cannot_use(
    params: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(SpaceError) as caught:
        resolve_params(params)
    assert fragment in str(caught.value)


def test_build_model_rejects_an_unknown_key() -> None:
    with pytest.raises(SpaceError, match="unknown parameter 'width'"):
        build_model({"width": 8}, BINARY)


# --------------------------------------------------------------------------- DataSpec


def test_dataspec_accepts_valid_specs() -> None:
    assert DataSpec([28, 28], "multiclass", 10).input_shape == (28, 28)  # type: ignore[arg-type]
    assert DataSpec((3,), "binary", 2).classes == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (((), "binary"), "non-empty tuple of positive integers"),
        (((0,), "binary"), "non-empty tuple of positive integers"),
        (((3,), "ranking"), "`task` must be one of: binary, multiclass, regression"),
        (((3,), "multiclass"), "needs `classes >= 2`, but got classes=None"),
        (((3,), "multiclass", 1), "needs `classes >= 2`"),
        (((3,), "binary", 3), "classes=None or 2"),
        (((3,), "regression", 2), "takes classes=None"),
    ],
)
def test_dataspec_rejects_invalid_specs(args: tuple[Any, ...], fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        DataSpec(*args)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("preset", spaces.list_presets())
def test_every_point_of_every_preset_builds(preset: str) -> None:
    import optuna

    space = spaces.load_space(preset)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(6):
        trial = study.ask()
        point = space.builder_point(spaces.sample_optuna(space, trial))
        model = build_model(point, DataSpec((20,), "binary"))
        assert model.layers[-1].units == 1
        study.tell(trial, 0.0)
        keras.backend.clear_session()

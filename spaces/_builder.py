"""From a point of the space to a compiled Keras model.

Only :func:`build_model`, :func:`model_summary` and :func:`param_counts` touch Keras, and
they import it when called: ``DataSpec``, ``BUILDER_DEFAULTS`` and ``resolve_params`` work
without TensorFlow.

The network is a stack of dense blocks on the (flattened) input::

    Input -> [Flatten] -> block x depth -> output Dense

    block, batch_norm="none":              Dense(units, activation)
    block, batch_norm="before_activation": Dense(units, use_bias=False), BatchNorm, Activation
    block, batch_norm="after_activation":  Dense(units, activation), BatchNorm
    each block then Dropout(dropout) when dropout > 0

With ``batch_norm="none"`` and no dropout, a block is exactly the hand-written tutorial layer
``Dense(units, activation=..., kernel_initializer=...)``. The hidden layers' widths are
``units`` each, a list of widths, or a funnel: with ``width_shrink`` < 1 each layer is that
fraction of the one before. Every hidden Dense takes the kernel regularizer
(``regularizer``, ``reg_strength``; the output layer too), the activity regularizer
(``activity_regularizer``, ``activity_strength``) and a MaxNorm kernel constraint when
``max_norm`` > 0. The optimizer takes ``momentum`` (sgd), ``beta_1`` (the Adam family) and
``rho`` (rmsprop), and its learning rate follows ``lr_schedule``: constant, exponential
(times ``lr_decay_rate`` every ``lr_decay_steps`` batches) or cosine_restarts (cosine
decay restarted after ``lr_decay_steps`` batches, then cycles twice as long).
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, cast, get_args

from search._machine import physical_memory
from spaces._builders import DENSE_NAME, Builder, Rule, Vocabulary, user_builder
from spaces._schema import SpaceError
from spaces._vocabulary import (
    ACTIVATIONS,
    BATCH_NORM,
    BETA_1_OPTIMIZERS,
    INITIALIZERS,
    LR_SCHEDULE_CLASSES,
    LR_SCHEDULES,
    OPTIMIZERS,
    REGULARIZER_CLASSES,
    REGULARIZERS,
    RHO_OPTIMIZERS,
)

if TYPE_CHECKING:
    import keras

Task = Literal["binary", "multiclass", "regression"]
"""What the output layer predicts."""

_TASKS: Final[tuple[str, ...]] = get_args(Task)


@dataclass(frozen=True)
class DataSpec:
    """The shape of a dataset, as far as the model is concerned.

    ``input_shape`` excludes the batch axis (``(28, 28)`` for an image; inputs of rank > 1
    are flattened). ``classes`` is the number of classes for ``multiclass`` (>= 2); it is
    ``None`` for ``regression`` and ``None`` or 2 for ``binary``.
    """

    input_shape: tuple[int, ...]
    task: Task
    classes: int | None = None

    def __post_init__(self) -> None:
        shape = self.input_shape
        if (
            not isinstance(shape, tuple | list)
            or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)
        ):
            raise ValueError(
                f"DataSpec: `input_shape` must be a non-empty tuple of positive integers, "
                f"but got {shape!r}."
            )
        object.__setattr__(self, "input_shape", tuple(shape))
        if self.task not in _TASKS:
            raise ValueError(
                f"DataSpec: `task` must be one of: {', '.join(_TASKS)}, but got {self.task!r}."
            )
        classes = self.classes
        if classes is not None and (not isinstance(classes, int) or isinstance(classes, bool)):
            raise ValueError(f"DataSpec: `classes` must be an integer, but got {classes!r}.")
        if self.task == "multiclass" and (classes is None or classes < 2):
            raise ValueError(
                f"DataSpec: task 'multiclass' needs `classes >= 2`, but got classes={classes!r}."
            )
        if self.task == "binary" and classes not in (None, 2):
            raise ValueError(
                f"DataSpec: task 'binary' takes classes=None or 2, but got classes={classes!r}."
            )
        if self.task == "regression" and classes is not None:
            raise ValueError(
                f"DataSpec: task 'regression' takes classes=None, but got classes={classes!r}."
            )


DENSE_VOCABULARY: Final = Vocabulary(
    types.MappingProxyType(
        {
            "units": Rule("int", minimum=1, maximum=2**20),
            "depth": Rule("int", minimum=1, maximum=1000),
            "width_shrink": Rule(
                "float", minimum=0.0, maximum=1.0, minimum_exclusive=True, closed=True
            ),
            "dropout": Rule("float", minimum=0.0, maximum=1.0),
            "activation": Rule("name", names=ACTIVATIONS),
            "initializer": Rule("name", names=INITIALIZERS),
            "batch_norm": Rule("name", names=BATCH_NORM),
            "regularizer": Rule("name", names=REGULARIZERS),
            "reg_strength": Rule("float", minimum=0.0),
            "activity_regularizer": Rule("name", names=REGULARIZERS),
            "activity_strength": Rule("float", minimum=0.0),
            "max_norm": Rule("float", minimum=0.0),
            "optimizer": Rule("name", names=OPTIMIZERS),
            "momentum": Rule("float", minimum=0.0, maximum=1.0),
            "beta_1": Rule("float", minimum=0.0, maximum=1.0),
            "rho": Rule("float", minimum=0.0, maximum=1.0),
            "learning_rate": Rule("float", minimum=0.0, minimum_exclusive=True),
            "lr_schedule": Rule("name", names=LR_SCHEDULES),
            "lr_decay_rate": Rule(
                "float", minimum=0.0, maximum=1.0, minimum_exclusive=True, closed=True
            ),
            "lr_decay_steps": Rule("int", minimum=1),
            "batch_size": Rule("int", minimum=1),
        }
    )
)
"""The parameters the Dense builder takes, in its order, and what each accepts."""

PARAM_NAMES: Final[tuple[str, ...]] = DENSE_VOCABULARY.names


def check_value(name: str, value: object, what: str = "value") -> str | None:
    """The problem with ``value`` for Dense builder parameter ``name``, or None."""
    return DENSE_VOCABULARY.check_value(name, value, what)


BUILDER_DEFAULTS: Final[Mapping[str, Any]] = types.MappingProxyType(
    {
        "units": 64,
        "depth": 1,
        "width_shrink": 1.0,
        "dropout": 0.0,
        "activation": "relu",
        "initializer": "glorot_uniform",
        "batch_norm": "none",
        "regularizer": "none",
        "reg_strength": 0.01,
        "activity_regularizer": "none",
        "activity_strength": 0.01,
        "max_norm": 0.0,
        "optimizer": "adam",
        "momentum": 0.0,
        "beta_1": 0.9,
        "rho": 0.9,
        "learning_rate": 1e-3,
        "lr_schedule": "constant",
        "lr_decay_rate": 0.9,
        "lr_decay_steps": 1000,
        "batch_size": 32,
    }
)
"""The value of every builder parameter a space leaves out (or that is inactive)."""

_FLOAT_PARAMS: Final[frozenset[str]] = frozenset(
    {
        "width_shrink",
        "dropout",
        "reg_strength",
        "activity_strength",
        "max_norm",
        "momentum",
        "beta_1",
        "rho",
        "learning_rate",
        "lr_decay_rate",
    }
)


def resolve_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the defaults into ``params`` and validate every value.

    ``units`` is an int (the same width for each of ``depth`` layers) or a list of ints (one
    width per layer; ``depth`` is then its length, and a given ``depth`` must agree). The
    result always holds all builder parameters, with ``units`` as a list of ``depth`` widths.
    Raises :class:`SpaceError` for an unknown key or a value the builder cannot use.
    """
    for key in params:
        if key not in BUILDER_DEFAULTS:
            raise SpaceError(
                f"unknown parameter {key!r}; expected some of: {', '.join(PARAM_NAMES)}."
            )
    resolved = {**BUILDER_DEFAULTS, **params}
    for name, value in resolved.items():
        if name == "units" and isinstance(value, list | tuple):
            continue
        problem = check_value(name, value)
        if problem is not None:
            raise SpaceError(problem, param=name)
        if name in _FLOAT_PARAMS:
            resolved[name] = float(value)

    units = resolved["units"]
    if isinstance(units, list | tuple):
        if not units:
            raise SpaceError("a list of widths must not be empty, but got [].", param="units")
        for i, width in enumerate(units):
            problem = check_value("units", width, f"units[{i}]")
            if problem is not None:
                raise SpaceError(problem, param="units")
        if "depth" in params and params["depth"] != len(units):
            raise SpaceError(
                f"`depth` must equal the number of widths in `units`, "
                f"but got (depth={params['depth']!r}, units={list(units)!r}).",
                param="depth",
            )
        if "width_shrink" in params and params["width_shrink"] != 1:
            raise SpaceError(
                "`width_shrink` shapes a funnel from one width; with a list of widths leave "
                f"it out, but got (width_shrink={params['width_shrink']!r}, units={units!r}).",
                param="width_shrink",
            )
        resolved["units"] = list(units)
        resolved["depth"] = len(units)
    else:
        shrink = resolved["width_shrink"]
        resolved["units"] = [max(1, round(units * shrink**i)) for i in range(resolved["depth"])]
        resolved["width_shrink"] = 1.0  # the widths carry it now: resolving again is a no-op
    return resolved


def build_model(params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
    """A compiled ``keras.Sequential`` for ``params`` (see :func:`resolve_params`) and ``spec``.

    Loss and metrics follow the task: binary cross-entropy and accuracy (sigmoid output),
    sparse categorical cross-entropy and accuracy (softmax output, integer labels), or mean
    squared error and MAE (linear output). ``batch_size`` is not used here: it is the
    trainer's.
    """
    import keras

    p = resolve_params(params)
    _check_size(p, spec)
    regularizer = _regularizer(p["regularizer"], p["reg_strength"])
    layers: list[Any] = [keras.Input(shape=spec.input_shape)]
    if len(spec.input_shape) > 1:
        layers.append(keras.layers.Flatten())
    for width in p["units"]:
        dense: dict[str, Any] = {
            "kernel_initializer": p["initializer"],
            "kernel_regularizer": regularizer,
        }
        if p["activity_regularizer"] != "none":
            dense["activity_regularizer"] = _regularizer(
                p["activity_regularizer"], p["activity_strength"]
            )
        if p["max_norm"] > 0:
            dense["kernel_constraint"] = keras.constraints.MaxNorm(p["max_norm"])
        if p["batch_norm"] == "before_activation":
            layers += [
                keras.layers.Dense(width, use_bias=False, **dense),
                keras.layers.BatchNormalization(),
                keras.layers.Activation(p["activation"]),
            ]
        else:
            layers.append(keras.layers.Dense(width, activation=p["activation"], **dense))
            if p["batch_norm"] == "after_activation":
                layers.append(keras.layers.BatchNormalization())
        if p["dropout"] > 0:
            layers.append(keras.layers.Dropout(p["dropout"]))

    if spec.task == "binary":
        output, loss, metrics = 1, "binary_crossentropy", ["accuracy"]
        activation: str | None = "sigmoid"
    elif spec.task == "multiclass":
        output = cast(int, spec.classes)  # DataSpec guarantees classes >= 2 here
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
        activation = "softmax"
    else:
        output, loss, metrics, activation = 1, "mse", ["mae"], None
    layers.append(keras.layers.Dense(output, activation=activation, kernel_regularizer=regularizer))

    model = keras.Sequential(layers)
    # Keywords only: Keras 3's third positional argument is `loss_weights`.
    model.compile(
        optimizer=_optimizer(p),
        loss=loss,
        metrics=metrics,
    )
    return model


# Training holds about this many floats per weight: the weight, its gradient and an
# optimizer's two slots (Adam), four bytes each.
_BYTES_PER_WEIGHT = 4 * 4


def weight_count(params: Mapping[str, Any], spec: DataSpec) -> int:
    """How many weights the model for ``params`` and ``spec`` has (Dense kernels and biases;
    batch normalisation adds a few per unit), computed without building it."""
    p = resolve_params(params)
    width_in = math.prod(spec.input_shape)
    total = 0
    for width in p["units"]:
        total += width_in * width + width * (3 if p["batch_norm"] != "none" else 1)
        width_in = width
    output = 1 if spec.task != "multiclass" else int(spec.classes or 2)
    return int(total + width_in * output + output)


def _check_size(p: Mapping[str, Any], spec: DataSpec) -> None:
    """A model whose training state cannot fit in this machine's memory is refused before
    TensorFlow tries to allocate it (``p`` resolved: ``units`` a list of widths)."""
    weights = weight_count(p, spec)
    needed = weights * _BYTES_PER_WEIGHT
    memory = physical_memory()
    if memory and needed > memory:
        features = math.prod(spec.input_shape)
        first = features * p["units"][0]
        # Most of the weights in the first layer, from a wide input: the input is the cause.
        fix = (
            f"the first layer alone has {first:,} ({features:,} input features); fewer "
            "features (--num-words for word data) or lower units"
            if first * 2 > weights
            else "lower units or depth"
        )
        raise SpaceError(
            f"the model would have {weights:,} weights, about {needed / 2**30:,.1f} GiB to "
            f"train, more than this machine's {memory / 2**30:,.1f} GiB; {fix}",
            param="units",
        )


def _regularizer(name: str, strength: float) -> Any:
    import keras

    if name == "none":
        return None
    class_name, keys = REGULARIZER_CLASSES[name]
    return keras.regularizers.get(
        {"class_name": class_name, "config": dict.fromkeys(keys, strength)}
    )


def unused_params(p: Mapping[str, Any]) -> frozenset[str]:
    """The parameters of a resolved point its model does not use: another optimizer's
    (``momentum`` with adam), a schedule's with a constant learning rate, a strength with no
    regularizer. ``build_model`` reads the same conditions (``_optimizer``, ``_learning_rate``,
    ``_regularizer``)."""
    unused = set()
    if p["optimizer"] != "sgd":
        unused.add("momentum")
    if p["optimizer"] not in BETA_1_OPTIMIZERS:
        unused.add("beta_1")
    if p["optimizer"] not in RHO_OPTIMIZERS:
        unused.add("rho")
    if p["lr_schedule"] == "constant":
        unused.update(("lr_decay_rate", "lr_decay_steps"))
    elif p["lr_schedule"] != "exponential":
        unused.add("lr_decay_rate")
    if p["regularizer"] == "none":
        unused.add("reg_strength")
    if p["activity_regularizer"] == "none":
        unused.add("activity_strength")
    return frozenset(unused)


def _optimizer(p: Mapping[str, Any]) -> Any:
    import keras

    name = p["optimizer"]
    config: dict[str, Any] = {"learning_rate": _learning_rate(p)}
    if name == "sgd":
        config["momentum"] = p["momentum"]
    if name in BETA_1_OPTIMIZERS:
        config["beta_1"] = p["beta_1"]
    if name in RHO_OPTIMIZERS:
        config["rho"] = p["rho"]
    return keras.optimizers.get({"class_name": name, "config": config})


def _learning_rate(p: Mapping[str, Any]) -> Any:
    """The learning rate: a number, or a ``keras.optimizers.schedules`` object."""
    import keras

    rate, schedule = p["learning_rate"], p["lr_schedule"]
    if schedule == "constant":
        return rate
    config: dict[str, Any] = {"initial_learning_rate": rate}
    if schedule == "exponential":
        config.update(decay_steps=p["lr_decay_steps"], decay_rate=p["lr_decay_rate"])
    else:
        config.update(first_decay_steps=p["lr_decay_steps"])
    class_name = LR_SCHEDULE_CLASSES[schedule]
    return keras.optimizers.schedules.deserialize({"class_name": class_name, "config": config})


def model_summary(model: keras.Model) -> str:
    """Keras' summary of ``model`` as text (layers, output shapes, parameter counts)."""
    lines: list[str] = []

    def collect(text: str, *_: Any, **__: Any) -> None:
        lines.append(text)

    model.summary(print_fn=collect)
    return "\n".join(line.rstrip("\n") for line in lines)


def param_counts(model: keras.Model) -> dict[str, int]:
    """``{"total", "trainable", "non_trainable"}`` parameter counts of a built model."""
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    non_trainable = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    return {
        "total": int(trainable + non_trainable),
        "trainable": int(trainable),
        "non_trainable": int(non_trainable),
    }


DENSE: Final = Builder(DENSE_NAME, build_model, DENSE_VOCABULARY)
"""The built-in Dense builder, with its vocabulary."""


def get_builder(ref: str | None = None) -> Builder:
    """The builder a study names: ``dense`` (or None), else ``package.module:function``
    imported now."""
    if ref is None or ref == DENSE_NAME:
        return DENSE
    return user_builder(ref)

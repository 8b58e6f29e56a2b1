"""The names the model builder accepts, as plain strings (no Keras import).

Keras resolves these names itself when a model is built (``keras.activations.get``,
``keras.initializers.get``, ``keras.optimizers.get``); the lists here only let a space file
be checked early, before TensorFlow is imported. ``tests/spaces`` resolves every name
through Keras so the lists cannot drift from what Keras accepts.

Three vocabularies are ours rather than Keras': ``REGULARIZERS`` (``"l1_l2"`` does not
resolve as a Keras string, so the builder maps these names to Keras class names through
``REGULARIZER_CLASSES``; kernel and activity regularizers take the same names),
``BATCH_NORM`` (where a BatchNormalization layer goes) and ``LR_SCHEDULES`` (mapped to
``keras.optimizers.schedules`` classes through ``LR_SCHEDULE_CLASSES``).
"""

from __future__ import annotations

from typing import Final

ACTIVATIONS: Final[tuple[str, ...]] = (
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "tanh",
    "sigmoid",
    "gelu",
    "silu",
    "swish",
    "softplus",
    "softsign",
    "relu6",
    "mish",
    "hard_sigmoid",
    "exponential",
    "linear",
)

INITIALIZERS: Final[tuple[str, ...]] = (
    "he_normal",
    "he_uniform",
    "glorot_normal",
    "glorot_uniform",
    "lecun_normal",
    "lecun_uniform",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "orthogonal",
)

OPTIMIZERS: Final[tuple[str, ...]] = (
    "sgd",
    "rmsprop",
    "adagrad",
    "adadelta",
    "adam",
    "adamw",
    "adamax",
    "nadam",
    "ftrl",
    "lion",
)

REGULARIZERS: Final[tuple[str, ...]] = ("none", "l1", "l2", "l1_l2")

# Our regularizer names -> (Keras class name, the config keys that take the strength).
REGULARIZER_CLASSES: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "l1": ("L1", ("l1",)),
    "l2": ("L2", ("l2",)),
    "l1_l2": ("L1L2", ("l1", "l2")),
}

BATCH_NORM: Final[tuple[str, ...]] = ("none", "before_activation", "after_activation")

# Learning-rate schedules -> Keras class names (None: the rate stays constant).
LR_SCHEDULES: Final[tuple[str, ...]] = ("constant", "exponential", "cosine_restarts")
LR_SCHEDULE_CLASSES: Final[dict[str, str]] = {
    "exponential": "ExponentialDecay",
    "cosine_restarts": "CosineDecayRestarts",
}
# The optimizers that take beta_1 (Adam's family) and rho (RMSprop).
BETA_1_OPTIMIZERS: Final[tuple[str, ...]] = ("adam", "adamw", "adamax", "nadam", "lion")
RHO_OPTIMIZERS: Final[tuple[str, ...]] = ("rmsprop",)

# Parameter name -> the names it accepts.
VOCABULARIES: Final[dict[str, tuple[str, ...]]] = {
    "activation": ACTIVATIONS,
    "initializer": INITIALIZERS,
    "optimizer": OPTIMIZERS,
    "regularizer": REGULARIZERS,
    "activity_regularizer": REGULARIZERS,
    "batch_norm": BATCH_NORM,
    "lr_schedule": LR_SCHEDULES,
}

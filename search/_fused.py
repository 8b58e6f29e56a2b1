"""Keras' Adam, AdamW and SGD updates run as TensorFlow's fused kernels.

Keras 3 writes each optimizer's update as a dozen or more separate operations per variable
(casts, powers, the two moments, the step); TensorFlow traces every one of them into each
trial's train step and runs every one at each step. TensorFlow's own kernels
(``ResourceApplyAdam``, ``ResourceApplyKerasMomentum``, ``ResourceApplyGradientDescent``,
which ``tf.keras`` used before Keras 3) compute the same formulas in the same order in one
operation per variable: on a 2x64 MLP the train step has 375 operations instead of 519, on
a 4x64 one with batch normalisation 959 instead of 1,295 (docs/architecture.md, "Fast
trials"). The values agree with Keras' to rounding (tested over several epochs).

Only the optimizer object's ``update_step`` is replaced, for exactly these classes in the
configurations the kernels compute (no AMSGrad): its class, configuration and variables stay
Keras' own, so a saved model loads anywhere as a plain Keras model. Anything else (other
optimizers, subclasses, sparse gradients, another backend) keeps Keras' update.
"""

from __future__ import annotations

import types
from typing import Any


def fuse_optimizer(optimizer: Any) -> bool:
    """Replace ``optimizer``'s update step by TensorFlow's fused kernel where one computes
    exactly Keras' update; True if it did."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return False
    kind = type(optimizer)
    if kind in (keras.optimizers.Adam, keras.optimizers.AdamW):
        if optimizer.amsgrad:
            return False
        step = _adam_step
    elif kind is keras.optimizers.SGD:
        step = _sgd_step
    else:
        return False
    keras_step = optimizer.update_step

    def update_step(self: Any, gradient: Any, variable: Any, learning_rate: Any) -> Any:
        import tensorflow as tf

        if isinstance(gradient, tf.IndexedSlices):  # a sparse update: Keras' own
            return keras_step(gradient, variable, learning_rate)
        return step(self, gradient, variable, learning_rate)

    optimizer.update_step = types.MethodType(update_step, optimizer)
    return True


def _handle(variable: Any) -> Any:
    """The resource handle of a Keras variable (its ``value`` is TensorFlow's) or of a
    TensorFlow one (Keras passes those to ``update_step``)."""
    import keras

    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle


def _adam_step(optimizer: Any, gradient: Any, variable: Any, learning_rate: Any) -> None:
    """Keras' ``Adam.update_step`` (``AdamW``'s too: its weight decay is applied before the
    update, apart) as one ``ResourceApplyAdam``:
    ``alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t); m += (g - m) * (1 - beta_1);
    v += (g^2 - v) * (1 - beta_2); var -= m * alpha / (sqrt(v) + epsilon)``."""
    import tensorflow as tf

    dtype = variable.dtype
    index = optimizer._get_variable_index(variable)
    step = tf.cast(optimizer.iterations + 1, dtype)
    beta_1 = tf.cast(optimizer.beta_1, dtype)
    beta_2 = tf.cast(optimizer.beta_2, dtype)
    tf.raw_ops.ResourceApplyAdam(
        var=_handle(variable),
        m=_handle(optimizer._momentums[index]),
        v=_handle(optimizer._velocities[index]),
        beta1_power=tf.pow(beta_1, step),
        beta2_power=tf.pow(beta_2, step),
        lr=tf.cast(learning_rate, dtype),
        beta1=beta_1,
        beta2=beta_2,
        epsilon=tf.cast(optimizer.epsilon, dtype),
        grad=tf.cast(gradient, dtype),
    )


def _sgd_step(optimizer: Any, gradient: Any, variable: Any, learning_rate: Any) -> None:
    """Keras' ``SGD.update_step`` as one kernel: ``var -= g * lr`` without momentum;
    ``m = m * momentum - g * lr`` then ``var += m`` (Nesterov: ``var += m * momentum - g *
    lr``) with it."""
    import tensorflow as tf

    dtype = variable.dtype
    lr = tf.cast(learning_rate, dtype)
    gradient = tf.cast(gradient, dtype)
    if optimizer.momentum == 0:
        tf.raw_ops.ResourceApplyGradientDescent(var=_handle(variable), alpha=lr, delta=gradient)
        return
    index = optimizer._get_variable_index(variable)
    tf.raw_ops.ResourceApplyKerasMomentum(
        var=_handle(variable),
        accum=_handle(optimizer.momentums[index]),
        lr=lr,
        grad=gradient,
        momentum=tf.cast(optimizer.momentum, dtype),
        use_nesterov=bool(optimizer.nesterov),
    )

"""Declaring a :class:`~spaces.Space` on KerasTuner ``HyperParameters``, beside the Optuna
adapter (``spaces._optuna``) over the same Space.

``Int``/``Float`` keep their range, step and log sampling, ``categorical`` becomes a
``Choice`` and ``fixed`` a ``Fixed``; a condition (``when``) becomes nested
``conditional_scope`` blocks, one per parent. KerasTuner's ``Choice`` holds values of one
type, so a categorical parameter mixing types (``[0, "auto"]``) is declared with its values'
texts and read back by :func:`params_from_values`.

KerasTuner is imported lazily, so ``import spaces`` stays light.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from spaces._schema import CategoricalParam, Choice, FixedParam, FloatParam, IntParam, Space

if TYPE_CHECKING:
    import keras_tuner


def _mixed(values: tuple[Choice, ...]) -> bool:
    return len({type(v) for v in values}) > 1


def _declared(param: CategoricalParam | FixedParam | None, value: Choice) -> Choice:
    """How ``value`` of ``param`` is declared on KerasTuner (its text for mixed choices)."""
    if isinstance(param, CategoricalParam) and _mixed(param.choices):
        return str(value)
    return value


def kerastuner_hyperparameters(space: Space) -> keras_tuner.HyperParameters:
    """The KerasTuner ``HyperParameters`` declaring every parameter of ``space``."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for param in space.params:
        with contextlib.ExitStack() as scopes:
            for parent, allowed in (param.when or {}).items():
                parent_param = space.get(parent)
                assert isinstance(parent_param, CategoricalParam | FixedParam)
                values = [_declared(parent_param, v) for v in allowed]
                scopes.enter_context(_condition(hp, parent, values))
            if isinstance(param, FixedParam):
                hp.Fixed(param.name, param.value)
            elif isinstance(param, IntParam):
                hp.Int(
                    param.name,
                    param.low,
                    param.high,
                    step=None if param.log else param.step,
                    sampling="log" if param.log else "linear",
                )
            elif isinstance(param, FloatParam):
                hp.Float(
                    param.name,
                    param.low,
                    param.high,
                    step=param.step,
                    sampling="log" if param.log else "linear",
                )
            else:
                hp.Choice(param.name, [_declared(param, c) for c in param.choices])
    return hp


@contextlib.contextmanager
def _condition(hp: keras_tuner.HyperParameters, parent: str, values: list[Any]) -> Iterator[None]:
    """``hp.conditional_scope(parent, values)``, for any number of parents at once.

    A nested ``conditional_scope`` looks its parent up among the parameters declared under
    the enclosing conditions, while every parent here is declared at the top; so the first
    parent opens KerasTuner's scope, and further ones add the same ``Parent`` condition it
    would add (all of a parameter's conditions must hold, as in a Space).
    """
    if not hp._conditions:
        with hp.conditional_scope(parent, values):
            yield
        return
    from keras_tuner.src.engine import conditions

    hp._conditions.append(conditions.Parent(parent, values))
    try:
        yield
    finally:
        hp._conditions.pop()


def params_from_values(space: Space, values: Mapping[str, Any]) -> dict[str, Any]:
    """The searched parameters of a point KerasTuner chose: the active non-fixed parameters
    of ``space`` (as an Optuna trial holds them), with their declared types. KerasTuner's
    own entries (``tuner/epochs`` and the like) are left out."""
    active: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for param in space.params:
        if not space.is_active(param, active):
            continue
        if isinstance(param, FixedParam):
            active[param.name] = param.value
            continue
        raw = values[param.name]
        # Within the declared range: KerasTuner's log-scaled Int maps the top of its unit
        # interval (which its Bayesian oracle reaches) to one past ``high``.
        if isinstance(param, IntParam):
            value: Any = min(max(int(raw), param.low), param.high)
        elif isinstance(param, FloatParam):
            value = min(max(float(raw), param.low), param.high)
        else:
            value = next(c for c in param.choices if _declared(param, c) == raw)
        active[param.name] = params[param.name] = value
    return params

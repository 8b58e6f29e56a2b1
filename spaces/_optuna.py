"""Sampling a :class:`~spaces.Space` through Optuna.

Optuna is imported lazily, so ``import spaces`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spaces._schema import CategoricalParam, FixedParam, FloatParam, IntParam, Param, Space

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution


def sample_optuna(space: Space, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    """Suggest every active parameter of ``space`` through ``trial``, in declaration order.

    ``trial`` is an ``optuna.Trial`` (or any ``BaseTrial``, e.g. ``optuna.trial.FixedTrial``).

    Inactive conditional parameters are skipped (they never reach the trial, so Optuna's
    record shows them only when active). Fixed parameters are not suggested but are in the
    returned dict, which is ready for :func:`spaces.build_model`.
    """
    values: dict[str, Any] = {}
    for param in space.params:
        if not space.is_active(param, values):
            continue
        if isinstance(param, FixedParam):
            values[param.name] = param.value
        elif isinstance(param, IntParam):
            values[param.name] = trial.suggest_int(
                param.name, param.low, param.high, step=param.step, log=param.log
            )
        elif isinstance(param, FloatParam):
            values[param.name] = trial.suggest_float(
                param.name, param.low, param.high, step=param.step, log=param.log
            )
        else:
            values[param.name] = trial.suggest_categorical(param.name, param.choices)
    return values


def optuna_distributions(space: Space) -> dict[str, BaseDistribution]:
    """The Optuna distribution of every non-fixed parameter (for ask/tell engines).

    Conditional parameters are included; whether one applies to a given trial is
    :meth:`Space.is_active`'s call.
    """
    return {
        param.name: _distribution(param)
        for param in space.params
        if not isinstance(param, FixedParam)
    }


def _distribution(param: Param) -> BaseDistribution:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(param, IntParam):
        return IntDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, FloatParam):
        return FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, CategoricalParam):
        return CategoricalDistribution(param.choices)
    raise TypeError(f"fixed parameter {param.name!r} has no distribution")

"""Model builders and the vocabulary each one owns.

A space (``spaces._schema``) is generic: parameter kinds, ranges, choices and conditions,
under any names. What the names mean, and which values are allowed, belongs to the builder
the space is used with:

- the built-in Dense builder (``spaces._builder``, ``DENSE``) has a :class:`Vocabulary`: the
  parameter names it takes, the kind of each, their bounds and the names it resolves
  (activations, initializers, ...). A space is checked against it before any trial runs.
- a builder of the user's own, ``--model package.module:function``, is called with the
  sampled params and the data's :class:`DataSpec` and returns a compiled ``keras.Model``.
  It has no vocabulary: its space is held to the generic rules only, and the function
  decides what the names mean.

Nothing here imports TensorFlow; a user's module is imported only when its builder is used.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from spaces._schema import (
    CategoricalParam,
    FixedParam,
    FloatParam,
    IntParam,
    Param,
    Space,
    SpaceError,
    builder_name,
    describe_value,
    is_int,
    is_number,
    yaml_hint,
)

if TYPE_CHECKING:
    import keras

    from spaces._builder import DataSpec

DENSE_NAME: Final = "dense"
MODEL_REF = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*")


@dataclass(frozen=True)
class Rule:
    """What a builder accepts for one parameter name: an int or float within bounds, or one
    of a fixed list of names."""

    kind: Literal["int", "float", "name"]
    minimum: float | None = None
    maximum: float | None = None  # exclusive, unless closed
    minimum_exclusive: bool = False
    closed: bool = False  # the maximum is allowed
    names: tuple[str, ...] = ()  # kind "name": the names accepted

    def describe(self) -> str:
        if self.maximum is not None:
            left = "(" if self.minimum_exclusive else "["
            right = "]" if self.closed else ")"
            return f"in {left}{_fmt(self.minimum)}, {_fmt(self.maximum)}{right}"
        op = ">" if self.minimum_exclusive else ">="
        return f"{op} {_fmt(self.minimum)}"

    def holds(self, value: float) -> bool:
        if self.minimum is not None:
            if self.minimum_exclusive and not value > self.minimum:
                return False
            if not self.minimum_exclusive and not value >= self.minimum:
                return False
        if self.maximum is None:
            return True
        return value <= self.maximum if self.closed else value < self.maximum

    @property
    def kinds(self) -> tuple[str, ...]:
        """The parameter kinds a space may declare for this name."""
        if self.kind == "name":
            return ("categorical", "fixed")
        return (self.kind, "categorical", "fixed")


def _fmt(value: float | None) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_KIND_OF: Final[dict[type, str]] = {
    IntParam: "int",
    FloatParam: "float",
    CategoricalParam: "categorical",
    FixedParam: "fixed",
}


@dataclass(frozen=True)
class Vocabulary:
    """The parameter names a builder takes, in its order, each with its :class:`Rule`."""

    rules: Mapping[str, Rule]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.rules)

    def check_value(self, name: str, value: object, what: str = "value") -> str | None:
        """The problem with ``value`` for parameter ``name``, or None if it is fine."""
        rule = self.rules[name]
        if rule.kind == "name":
            if not isinstance(value, str):
                return f"{what} must be a name (str), but got {describe_value(value)}."
            if value not in rule.names:
                return f"unknown {name} {value!r}; expected one of: {', '.join(rule.names)}."
            return None
        if rule.kind == "int" and not is_int(value):
            return f"{what} must be an integer, but got {describe_value(value)}."
        if not is_number(value):
            return f"{what} must be a number, but got {describe_value(value)}{yaml_hint(value)}."
        if not math.isfinite(value):
            return f"{what} must be finite, but got {value!r}."
        if not rule.holds(value):
            return f"{what} must be {rule.describe()}, but got {what}={value!r}."
        return None

    def check_name(self, name: str) -> Rule:
        rule = self.rules.get(name)
        if rule is None:
            raise SpaceError(
                f"unknown parameter {name!r}; expected one of: {', '.join(self.names)}."
            )
        return rule

    def check_param(self, param: Param) -> None:
        """A parameter of a space: a name of this vocabulary, a kind that fits it, and every
        value it can take (bounds, choices, the fixed value) accepted."""
        name = builder_name(param)
        try:
            rule = self.check_name(name)
        except SpaceError as error:
            if name != param.name:  # the name is the one `as:` gives
                raise SpaceError(
                    f"`as: {name}` names no parameter of the builder; expected one of: "
                    f"{', '.join(self.names)}.",
                    param=param.name,
                ) from None
            raise SpaceError(error.message, param=param.name) from None
        kind = _KIND_OF[type(param)]
        if kind not in rule.kinds:
            raise SpaceError(
                f"type {kind!r} does not fit this parameter; expected one of: "
                f"{', '.join(rule.kinds)}.",
                param=param.name,
            )
        checks: list[tuple[str, object]]
        if isinstance(param, IntParam | FloatParam):
            checks = [("low", param.low), ("high", param.high)]
        elif isinstance(param, CategoricalParam):
            checks = [("choice", choice) for choice in param.choices]
        else:
            checks = [("value", param.value)]
        for what, value in checks:
            problem = self.check_value(name, value, what)
            if problem is not None:
                raise SpaceError(problem, param=param.name)

    def check_space(self, space: Space, source: str | None = None) -> Space:
        """``space`` if every parameter fits; else SpaceError naming ``source``."""
        where = source or f"space {space.name!r}"
        for param in space.params:
            try:
                self.check_param(param)
            except SpaceError as error:
                raise error.with_source(where) from None
        return space


BuildFunction = Callable[[Mapping[str, Any], "DataSpec"], "keras.Model"]


@dataclass(frozen=True)
class Builder:
    """Turns a point of a space into a compiled Keras model.

    ``name`` is what a study stores (``dense``, or ``package.module:function``);
    ``vocabulary`` is None for a builder of the user's own.
    """

    name: str
    build: BuildFunction = field(repr=False)
    vocabulary: Vocabulary | None = None

    def check_space(self, space: Space, source: str | None = None) -> Space:
        """The space checked against this builder's vocabulary (when it has one)."""
        return space if self.vocabulary is None else self.vocabulary.check_space(space, source)

    def batch_size(self, params: Mapping[str, Any]) -> int:
        """The training batch size a point asks for (``batch_size``, else 32)."""
        value = params.get("batch_size", 32)
        if not is_int(value) or value < 1:
            raise SpaceError(
                f"batch_size must be an integer >= 1, but got {describe_value(value)}.",
                param="batch_size",
            )
        return int(value)


def check_model_ref(ref: str) -> str:
    """``package.module:function`` (the module importable here), or a one-line error."""
    if not isinstance(ref, str) or not MODEL_REF.fullmatch(ref):
        raise SpaceError(
            f"--model {ref!r}: expected package.module:function, e.g. my_models:build "
            "(a function in my_models.py of the current folder)."
        )
    module, function = ref.split(":")
    if module.endswith(".py"):  # a file name where a module name goes
        raise SpaceError(
            f"--model {ref}: give the module's name, not its file: "
            f"--model {module.removesuffix('.py').replace('/', '.')}:{function}."
        )
    _importable_from_here()
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise SpaceError(f"--model {ref}: cannot find module {module!r} ({exc}).") from None
    if found is None:
        raise SpaceError(
            f"--model {ref}: no module {module!r} here; run from the folder that holds "
            f"{module.replace('.', '/')}.py, or install its package."
        )
    return ref


def _importable_from_here() -> None:
    """A user's module is found in the current folder, as ``python -m`` would find it."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)


def user_builder(ref: str) -> Builder:
    """The builder ``package.module:function``, imported now."""
    check_model_ref(ref)
    module_name, function_name = ref.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module failed to import: say so in one line
        raise SpaceError(
            f"--model {ref}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    function = getattr(module, function_name, None)
    if function is None:
        raise SpaceError(f"--model {ref}: module {module_name!r} has no {function_name!r}.")
    if not callable(function):
        raise SpaceError(
            f"--model {ref}: {function_name!r} is of type {type(function).__name__}, not a "
            "function taking (params, data_spec)."
        )
    try:
        inspect.signature(function).bind({}, None)
    except TypeError:
        raise SpaceError(
            f"--model {ref}: {function_name}{inspect.signature(function)} cannot be called "
            "with (params, data_spec); give a function taking those two."
        ) from None
    except ValueError:  # no signature to read (a built-in): found out when it is called
        pass

    def build(params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
        model = function(dict(params), spec)
        if not hasattr(model, "fit") or not getattr(model, "compiled", False):
            raise SpaceError(
                f"--model {ref} returned {type(model).__name__}, not a compiled keras.Model "
                "(call model.compile(optimizer=..., loss=..., metrics=...) before returning it)."
            )
        _check_outputs(ref, model, spec)
        return model

    return Builder(ref, build)


def _check_outputs(ref: str, model: keras.Model, spec: DataSpec) -> None:
    """A model whose output width cannot fit the task (7 outputs for 3 classes, 1 for a
    multiclass task) would train and be scored as if it did: SpaceError. A model whose
    output shape is not known before it is called (subclassed) is left to Keras."""
    try:
        shape = model.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return
    if not isinstance(shape, tuple) or not shape or not isinstance(shape[-1], int):
        return  # several outputs, or a width not known yet
    width = shape[-1]
    if spec.task == "multiclass":
        fits, needed = width == spec.classes, f"{spec.classes} (one per class)"
    elif spec.task == "binary":
        fits, needed = width in (1, 2), "1 (a sigmoid) or 2 (a softmax over both classes)"
    else:
        fits, needed = width == 1, "1"
    if not fits:
        raise SpaceError(
            f"--model {ref} returned a model with {width} output(s) per sample; a "
            f"{spec.task} task needs {needed}: end it with Dense(spec.classes) for "
            "multiclass, Dense(1) otherwise."
        )

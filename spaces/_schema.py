"""The typed search space: parameter kinds, conditions, and their validation.

A :class:`Space` is an ordered tuple of parameters. Each parameter is one of

- :class:`IntParam` / :class:`FloatParam`: a numeric range (optionally log-scaled or stepped),
- :class:`CategoricalParam`: a choice among a few values,
- :class:`FixedParam`: one value, not searched but part of the space,

and may carry a condition (``when``): the parameter exists only when every parent it names is
active and holds one of the allowed values. Parents are categorical or fixed parameters
declared earlier in the space.

A space is generic: its names are any identifiers, and what they mean (and which values
are allowed) belongs to the model builder it is used with (``spaces._builders``: the Dense
builder's vocabulary checks a space before any trial runs; a builder of the user's own
takes any names). Every problem raises :class:`SpaceError`, whose message names the source
(file or preset), the parameter, what was expected and what came. Nothing here imports
TensorFlow or Optuna.
"""

from __future__ import annotations

import decimal
import math
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias, TypeGuard

from search._errors import ConfigError

Choice: TypeAlias = str | int | float | bool
"""A value a categorical or fixed parameter can take."""

Condition: TypeAlias = Mapping[str, tuple[Choice, ...]]
"""``{parent_name: allowed values}``: all must hold for the parameter to be active."""


class SpaceError(ConfigError):
    """A search space (or a parameter set) is invalid: bad input (exit 2), a ValueError.

    ``str(error)`` reads ``"<source>: parameter '<param>': <problem>"``; ``source`` is the file
    path, preset name or space name, and either part is left out when unknown.
    """

    def __init__(self, message: str, *, source: str | None = None, param: str | None = None):
        self.message = message
        self.source = source
        self.param = param
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.source:
            parts.append(self.source)
        if self.param is not None:
            parts.append(f"parameter '{self.param}'")
        parts.append(self.message)
        return ": ".join(parts)

    def with_source(self, source: str) -> SpaceError:
        """The same error, attributed to ``source`` (a file path or preset name)."""
        return SpaceError(self.message, source=source, param=self.param)


# --------------------------------------------------------------------------- helpers

MAX_SPACE_NAME: Final = 64
MAX_PARAM_NAME: Final = 64
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def describe_value(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


_TEXT_NUMBER = re.compile(r"([+-]?)(\d*)\.?(\d*)[eE]([+-]?)(\d+)")


def yaml_hint(value: object) -> str:
    """A hint for YAML 1.1's reading of ``1e-6`` (no dot) or ``1.0e6`` (no sign in the
    exponent) as a string: the same number as YAML reads it as one."""
    if not isinstance(value, str):
        return ""
    match = _TEXT_NUMBER.fullmatch(value.strip())
    if match is None or not (match[2] or match[3]):
        return ""
    sign, whole, fraction, exponent_sign, exponent = match.groups()
    number = f"{sign}{whole or '0'}.{fraction or '0'}e{exponent_sign or '+'}{exponent}"
    return f" (YAML reads {value} as text: write it {number})"


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise SpaceError(f"a parameter name must be a string, but got {describe_value(name)}.")
    if len(name) > MAX_PARAM_NAME or not _PARAM_NAME.fullmatch(name):
        raise SpaceError(
            f"a parameter name is a Python identifier of at most {MAX_PARAM_NAME} characters "
            f"(letters, digits, _), but got {name[:40]!r}."
        )
    return name


def _normalise_when(name: str, when: object) -> Condition | None:
    """Check a condition's shape and freeze it as ``{parent: (values, ...)}``."""
    if when is None:
        return None
    if not isinstance(when, Mapping) or not when:
        raise SpaceError(
            "`when` must be a non-empty mapping {parent: [allowed values]}, "
            f"but got {describe_value(when)}.",
            param=name,
        )
    frozen: dict[str, tuple[Choice, ...]] = {}
    for parent, allowed in when.items():
        if not isinstance(parent, str):
            raise SpaceError(
                f"`when` keys must be parameter names, but got {describe_value(parent)}.",
                param=name,
            )
        values = tuple(allowed) if isinstance(allowed, list | tuple) else (allowed,)
        if not values:
            raise SpaceError(
                f"`when` must allow at least one value of {parent!r}, but got [].", param=name
            )
        for value in values:
            if not isinstance(value, Choice):
                raise SpaceError(
                    f"`when` values must be str, int, float or bool, "
                    f"but got {describe_value(value)} for {parent!r}.",
                    param=name,
                )
        frozen[parent] = values
    return types.MappingProxyType(frozen)


def _check_range(name: str, low: float, high: float, log: bool) -> None:
    if not low <= high:
        raise SpaceError(
            f"`low <= high` must hold, but got (low={low!r}, high={high!r}).", param=name
        )
    if log and not low > 0:
        raise SpaceError(
            f"`low > 0` must hold for `log=True`, but got (low={low!r}, high={high!r}).", param=name
        )


def _check_divisible(name: str, low: float, high: float, step: float) -> None:
    # Optuna would silently shrink `high` to the last multiple of `step` (with a warning).
    span = decimal.Decimal(str(high)) - decimal.Decimal(str(low))
    if span % decimal.Decimal(str(step)) != 0:
        raise SpaceError(
            f"`high - low` must be a multiple of `step`, "
            f"but got (low={low!r}, high={high!r}, step={step!r}).",
            param=name,
        )


# --------------------------------------------------------------------------- parameter kinds


@dataclass(frozen=True)
class IntParam:
    """An integer in ``[low, high]`` (both included), sampled on a log scale if ``log``.

    ``step`` spaces the values (``low, low + step, ...``); ``high - low`` must be a multiple
    of it, and ``log`` requires ``low >= 1`` and ``step == 1`` (Optuna's rules).
    """

    name: str
    low: int
    high: int
    log: bool = False
    step: int = 1
    when: Condition | None = field(default=None, hash=False)
    feeds: str | None = None  # space-file key `as`: the builder parameter it sets

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_feeds(self)
        for what in ("low", "high", "step"):
            value = getattr(self, what)
            if not is_int(value):
                raise SpaceError(
                    f"`{what}` must be an integer, but got "
                    f"{describe_value(value)}{yaml_hint(value)}.",
                    param=self.name,
                )
        _check_bool(self.name, "log", self.log)
        if self.step < 1:
            raise SpaceError(f"`step >= 1` must hold, but got (step={self.step}).", param=self.name)
        if self.log and self.step != 1:
            raise SpaceError(
                f"`step` must be 1 when `log=True`, but got (step={self.step}).", param=self.name
            )
        _check_range(self.name, self.low, self.high, self.log)
        _check_divisible(self.name, self.low, self.high, self.step)
        object.__setattr__(self, "when", _normalise_when(self.name, self.when))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form (the space-file mapping of this parameter)."""
        d: dict[str, Any] = {
            "type": "int",
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "step": self.step,
        }
        return _with_when(d, self.when, self.feeds)


@dataclass(frozen=True)
class FloatParam:
    """A float in ``[low, high]``, sampled on a log scale if ``log``.

    With ``step`` the values are ``low, low + step, ...`` and ``high - low`` must be a multiple
    of it; ``log`` requires ``low > 0`` and no ``step`` (Optuna's rules).
    """

    name: str
    low: float
    high: float
    log: bool = False
    step: float | None = None
    when: Condition | None = field(default=None, hash=False)
    feeds: str | None = None  # space-file key `as`: the builder parameter it sets

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_feeds(self)
        for what in ("low", "high", "step"):
            value = getattr(self, what)
            if what == "step" and value is None:
                continue
            if not is_number(value) or not math.isfinite(value):
                raise SpaceError(
                    f"`{what}` must be a finite number, but got "
                    f"{describe_value(value)}{yaml_hint(value)}.",
                    param=self.name,
                )
            object.__setattr__(self, what, float(value))
        _check_bool(self.name, "log", self.log)
        if self.step is not None:
            if not self.step > 0:
                raise SpaceError(
                    f"`step > 0` must hold, but got (step={self.step!r}).", param=self.name
                )
            if self.log:
                raise SpaceError(
                    f"`step` cannot be set when `log=True`, but got (step={self.step!r}).",
                    param=self.name,
                )
        _check_range(self.name, self.low, self.high, self.log)
        if self.step is not None:
            _check_divisible(self.name, self.low, self.high, self.step)
        object.__setattr__(self, "when", _normalise_when(self.name, self.when))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form (the space-file mapping of this parameter)."""
        d: dict[str, Any] = {"type": "float", "low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            d["step"] = self.step
        return _with_when(d, self.when, self.feeds)


@dataclass(frozen=True)
class CategoricalParam:
    """One of ``choices`` (str, int, float or bool; distinct; at least one)."""

    name: str
    choices: tuple[Choice, ...]
    when: Condition | None = field(default=None, hash=False)
    feeds: str | None = None  # space-file key `as`: the builder parameter it sets

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_feeds(self)
        if not isinstance(self.choices, list | tuple) or not self.choices:
            raise SpaceError(
                f"`choices` must be a non-empty list, but got {describe_value(self.choices)}.",
                param=self.name,
            )
        choices = tuple(self.choices)
        for i, choice in enumerate(choices):
            if not isinstance(choice, Choice):
                raise SpaceError(
                    f"choices must be str, int, float or bool, but got {describe_value(choice)}.",
                    param=self.name,
                )
            if choice in choices[:i]:
                raise SpaceError(
                    f"choices must be distinct, but got {choice!r} twice in {list(choices)!r}.",
                    param=self.name,
                )
        object.__setattr__(self, "choices", choices)
        object.__setattr__(self, "when", _normalise_when(self.name, self.when))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form (the space-file mapping of this parameter)."""
        return _with_when(
            {"type": "categorical", "choices": list(self.choices)}, self.when, self.feeds
        )


@dataclass(frozen=True)
class FixedParam:
    """A value that is not searched but belongs to the space (it reaches the builder)."""

    name: str
    value: Choice
    when: Condition | None = field(default=None, hash=False)
    feeds: str | None = None  # space-file key `as`: the builder parameter it sets

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_feeds(self)
        if not isinstance(self.value, Choice):
            raise SpaceError(
                "a fixed value must be str, int, float or bool, but got "
                f"{describe_value(self.value)}.",
                param=self.name,
            )
        object.__setattr__(self, "when", _normalise_when(self.name, self.when))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form (the space-file mapping of this parameter)."""
        return _with_when({"type": "fixed", "value": self.value}, self.when, self.feeds)


Param: TypeAlias = IntParam | FloatParam | CategoricalParam | FixedParam
"""Any parameter kind."""

_PARAM_TYPES: Final[dict[str, type[Param]]] = {
    "int": IntParam,
    "float": FloatParam,
    "categorical": CategoricalParam,
    "fixed": FixedParam,
}


def _type_name(param: Param) -> str:
    """A parameter's ``type`` as a space file writes it (``int``, not ``IntParam``)."""
    return next(name for name, kind in _PARAM_TYPES.items() if isinstance(param, kind))


_KEYS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    # type -> (required keys, optional keys), besides `type`
    "int": (("low", "high"), ("log", "step", "when", "as")),
    "float": (("low", "high"), ("log", "step", "when", "as")),
    "categorical": (("choices",), ("when", "as")),
    "fixed": (("value",), ("when", "as")),
}


def _check_bool(name: str, what: str, value: object) -> None:
    if not isinstance(value, bool):
        raise SpaceError(
            f"`{what}` must be true or false, but got {describe_value(value)}.", param=name
        )


def _with_when(d: dict[str, Any], when: Condition | None, feeds: str | None) -> dict[str, Any]:
    if when is not None:
        d["when"] = {parent: list(values) for parent, values in when.items()}
    if feeds is not None:
        d["as"] = feeds
    return d


def _check_feeds(param: Param) -> None:
    if param.feeds is None:
        return
    try:
        _check_name(param.feeds)
    except SpaceError as error:
        raise SpaceError(f"`as`: {error.message}", param=param.name) from None
    if param.when is None and param.feeds != param.name:
        raise SpaceError(
            f"`as: {param.feeds}` is for a branch that sets {param.feeds!r} under a "
            f"condition: give it a `when`, or, with none, name the parameter {param.feeds!r} "
            "and drop `as`.",
            param=param.name,
        )


def _size(param: Param) -> int | None:
    """How many values a parameter can take, None for a continuous range."""
    if isinstance(param, FixedParam):
        return 1
    if isinstance(param, CategoricalParam):
        return len(param.choices)
    if isinstance(param, IntParam):
        return (param.high - param.low) // param.step + 1
    if param.low == param.high:
        return 1
    if param.step is None:
        return None
    return round((param.high - param.low) / param.step) + 1


def _values(param: Param) -> tuple[Any, ...]:
    """Every value of a parameter with finitely many (see ``_size``)."""
    if isinstance(param, FixedParam):
        return (param.value,)
    if isinstance(param, CategoricalParam):
        return param.choices
    if isinstance(param, IntParam):
        return tuple(range(param.low, param.high + 1, param.step))
    if param.low == param.high or param.step is None:
        return (param.low,)
    return tuple(param.low + k * param.step for k in range(_size(param) or 1))


def builder_name(param: Param) -> str:
    """The builder parameter ``param`` sets: its ``as``, else its own name."""
    return param.feeds or param.name


def param_from_dict(name: object, spec: object) -> Param:
    """Build one parameter from its space-file form.

    ``spec`` is a mapping with ``type`` (int, float, categorical, fixed) and that type's keys,
    or a plain value as shorthand for ``{type: fixed, value: ...}``.
    """
    name = _check_name(name)
    if isinstance(spec, Choice):
        return FixedParam(name, spec)
    if not isinstance(spec, Mapping):
        raise SpaceError(
            "expected a mapping with `type` (int, float, categorical, fixed) or a plain value, "
            f"but got {describe_value(spec)}.",
            param=name,
        )
    kind = spec.get("type")
    if kind not in _PARAM_TYPES:
        got = "no `type`" if "type" not in spec else f"type {kind!r}"
        raise SpaceError(
            f"`type` must be one of: {', '.join(_PARAM_TYPES)}, but got {got}.", param=name
        )
    required, optional = _KEYS[kind]
    for key in spec:
        if key != "type" and key not in required + optional:
            raise SpaceError(
                f"unknown key {key!r} for type {kind}; expected some of: "
                f"{', '.join(required + optional)}.",
                param=name,
            )
    for key in required:
        if key not in spec:
            raise SpaceError(f"type {kind} needs the key {key!r}, but it is missing.", param=name)
    kwargs = {("feeds" if key == "as" else key): value for key, value in spec.items()}
    kwargs.pop("type")
    return _PARAM_TYPES[kind](name, **kwargs)


# --------------------------------------------------------------------------- the space


@dataclass(frozen=True)
class Space:
    """A named, ordered, validated set of parameters.

    Conditions refer to earlier parameters only, so walking ``params`` in order and asking
    :meth:`is_active` with the values drawn so far visits each parameter after its parents.
    ``to_dict()`` is the JSON-safe form stored with a study; ``Space.from_dict`` reads it back
    (and reads parsed space files: it is the same format).
    """

    name: str
    params: tuple[Param, ...]
    description: str = ""

    def __post_init__(self) -> None:
        source = f"space {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise SpaceError(
                f"a space needs a non-empty name, but got {describe_value(self.name)}."
            )
        if len(self.name) > MAX_SPACE_NAME or not self.name.isprintable():
            raise SpaceError(
                f"a space's name has at most {MAX_SPACE_NAME} printable characters (it becomes "
                f"part of study names), but got {self.name[:40]!r}"
                f"{'...' if len(self.name) > 40 else ''}."
            )
        if not isinstance(self.description, str):
            raise SpaceError(
                f"`description` must be text, but got {describe_value(self.description)}.",
                source=source,
            )
        if not isinstance(self.params, list | tuple) or not self.params:
            raise SpaceError(
                "`params` must declare at least one parameter, but got "
                f"{describe_value(self.params)}.",
                source=source,
            )
        params = tuple(self.params)
        seen: dict[str, Param] = {}
        for param in params:
            if not isinstance(param, IntParam | FloatParam | CategoricalParam | FixedParam):
                raise SpaceError(
                    f"expected a parameter, but got {describe_value(param)}.", source=source
                )
            if param.name in seen:
                raise SpaceError("declared twice.", source=source, param=param.name)
            _check_condition(param, seen, source)
            seen[param.name] = param
        _check_branches(params, source)
        object.__setattr__(self, "params", params)

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names, in declaration order."""
        return tuple(param.name for param in self.params)

    def get(self, name: str) -> Param:
        """The parameter called ``name`` (KeyError if the space has none)."""
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(f"space {self.name!r} has no parameter {name!r}; it has: {self.names}")

    def is_active(self, param: Param | str, values: Mapping[str, Any]) -> bool:
        """Whether ``param`` exists, given the values of the active parameters so far.

        ``values`` holds only active parameters (as sampling builds it), so a parent that is
        absent from it is inactive, and so is every parameter that depends on it.
        """
        if isinstance(param, str):
            param = self.get(param)
        if param.when is None:
            return True
        return all(
            parent in values and values[parent] in allowed for parent, allowed in param.when.items()
        )

    def distinct_points(self, limit: int = 100_000) -> int | None:
        """How many distinct points the space holds, counting only the active parameters
        of each; None when a parameter is continuous (a float range without `step`) or
        there are more than ``limit``."""
        sizes = [_size(param) for param in self.params]
        if any(size is None for size in sizes) or math.prod(s or 0 for s in sizes) > limit:
            return None
        options = [_values(param) for param in self.params]

        def count(i: int, drawn: dict[str, Any]) -> int:
            if i == len(self.params):
                return 1
            param = self.params[i]
            if not self.is_active(param, drawn):
                return count(i + 1, drawn)
            return sum(count(i + 1, {**drawn, param.name: v}) for v in options[i])

        return count(0, {})

    def first_point(self) -> dict[str, Any]:
        """One point of the space, the same every time: each active parameter at its low
        bound, its first choice or its fixed value (``hpsearch spaces validate --data``
        builds its model)."""
        values: dict[str, Any] = {}
        for param in self.params:
            if not self.is_active(param, values):
                continue
            if isinstance(param, IntParam | FloatParam):
                values[param.name] = param.low
            elif isinstance(param, CategoricalParam):
                values[param.name] = param.choices[0]
            else:
                values[param.name] = param.value
        return values

    def builder_point(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A point as the builder takes it: each value under the builder parameter it sets
        (``as``), so the active branch of several feeds one name."""
        return {builder_name(p): values[p.name] for p in self.params if p.name in values}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: ``{"name", "description", "params": {name: spec}}`` in order."""
        return {
            "name": self.name,
            "description": self.description,
            "params": {param.name: param.to_dict() for param in self.params},
        }

    @classmethod
    def from_dict(cls, data: object, source: str | None = None) -> Space:
        """Read a space back from :meth:`to_dict` form (or a parsed space file).

        ``source`` names where ``data`` came from in error messages (default: the space name).
        """
        where = source or "stored space"
        if not isinstance(data, Mapping):
            raise SpaceError(f"expected a mapping, but got {describe_value(data)}.", source=where)
        unknown = [key for key in data if key not in ("name", "description", "params")]
        if unknown:
            raise SpaceError(
                f"unknown top-level key {unknown[0]!r}; expected some of: name, description, "
                "params.",
                source=where,
            )
        for key in ("name", "params"):
            if key not in data:
                raise SpaceError(f"the top-level key {key!r} is missing.", source=where)
        name = data["name"]
        where = source or f"space {name!r}"
        raw = data["params"]
        if not isinstance(raw, Mapping) or not raw:
            raise SpaceError(
                "`params` must be a non-empty mapping {name: spec}, but got "
                f"{describe_value(raw)}.",
                source=where,
            )
        try:
            params = tuple(param_from_dict(key, spec) for key, spec in raw.items())
            return cls(name=name, params=params, description=data.get("description", ""))
        except SpaceError as error:
            raise error.with_source(where) from None
        except TypeError as error:  # a mistyped constructor call, e.g. from a bad stored dict
            raise SpaceError(str(error), source=where) from None


def _check_branches(params: tuple[Param, ...], source: str) -> None:
    """Parameters that set the same builder parameter (``as``) must never be active
    together: for every two of them, some parent allows disjoint values in each."""
    groups: dict[str, list[Param]] = {}
    for param in params:
        groups.setdefault(builder_name(param), []).append(param)
    for target, members in groups.items():
        for i, first in enumerate(members):
            for second in members[i + 1 :]:
                if not _exclusive(first, second):
                    raise SpaceError(
                        f"both {first.name!r} and {second.name!r} set {target!r} and can be "
                        "active together; give them `when` conditions on one parent that "
                        "allow different values.",
                        source=source,
                        param=second.name,
                    )


def _exclusive(first: Param, second: Param) -> bool:
    if first.when is None or second.when is None:
        return False
    return any(
        parent in second.when and not set(allowed) & set(second.when[parent])
        for parent, allowed in first.when.items()
    )


def _check_condition(param: Param, earlier: Mapping[str, Param], source: str) -> None:
    if param.when is None:
        return
    for parent_name, allowed in param.when.items():
        parent = earlier.get(parent_name)
        if parent is None:
            raise SpaceError(
                f"`when` names {parent_name!r}, which must be declared earlier in the space, "
                f"but the parameters before it are: {list(earlier) or 'none'}.",
                source=source,
                param=param.name,
            )
        if isinstance(parent, CategoricalParam):
            options: tuple[Choice, ...] = parent.choices
        elif isinstance(parent, FixedParam):
            options = (parent.value,)
        else:
            raise SpaceError(
                f"`when` parent {parent_name!r} must be categorical or fixed, "
                f"but it is of type {_type_name(parent)}.",
                source=source,
                param=param.name,
            )
        for value in allowed:
            if value not in options:
                raise SpaceError(
                    f"`when` allows {value!r} for {parent_name!r}, which must be one of its "
                    f"values {list(options)!r}.",
                    source=source,
                    param=param.name,
                )

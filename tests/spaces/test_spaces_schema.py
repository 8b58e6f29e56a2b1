"""Space and parameter validation, conditions, and the stored (dict) form."""

from __future__ import annotations

import json
from typing import Any

import pytest

from spaces import (
    DENSE,
    DENSE_VOCABULARY,
    PARAM_NAMES,
    CategoricalParam,
    FixedParam,
    FloatParam,
    IntParam,
    Space,
    SpaceError,
    list_presets,
    load_space,
)


def _space(*params: Any) -> Space:
    return Space("t", tuple(params))


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (
            lambda: FloatParam("dropout", 0.5, 0.1),
            ["parameter 'dropout'", "`low <= high` must hold", "(low=0.5, high=0.1)"],
        ),
        (lambda: IntParam("units", 0, 8, log=True), ["`low > 0` must hold for `log=True`"]),
        (lambda: IntParam("units", 8, 64, log=True, step=2), ["`step` must be 1"]),
        (lambda: FloatParam("learning_rate", 1e-4, 1e-1, log=True, step=0.01), ["`step`"]),
        (lambda: IntParam("units", 1, 10, step=4), ["multiple of `step`", "step=4"]),
        (lambda: FloatParam("dropout", 0.0, 0.5, step=0.3), ["multiple of `step`"]),
        (lambda: IntParam("units", 1.5, 8), ["`low` must be an integer", "1.5"]),  # type: ignore[arg-type]
        (lambda: IntParam("depth", True, 3), ["`low` must be an integer"]),
        (lambda: FloatParam("dropout", 0.0, float("nan")), ["finite"]),
        (lambda: FloatParam("dropout", 0.0, 0.5, log=1), ["`log` must be true or false"]),  # type: ignore[arg-type]
        (lambda: CategoricalParam("activation", ()), ["non-empty"]),
        (lambda: CategoricalParam("activation", ("relu", "relu")), ["distinct", "'relu' twice"]),
        (lambda: CategoricalParam("batch_size", (32, None)), ["str, int, float or bool", "None"]),  # type: ignore[arg-type]
        (lambda: FixedParam("units", [1, 2]), ["fixed value must be str, int, float or bool"]),  # type: ignore[arg-type]
        (lambda: IntParam("2x", 1, 2), ["a Python identifier", "'2x'"]),
        (lambda: IntParam("a-b", 1, 2), ["a Python identifier"]),
        (lambda: FixedParam("momentum", 0.5, when={"optimizer": ()}), ["at least one value"]),
        (lambda: FixedParam("momentum", 0.5, when={}), ["non-empty mapping"]),
        (lambda: FixedParam("momentum", 0.5, when={"optimizer": (None,)}), ["`when` values"]),  # type: ignore[dict-item]
    ],
)
def test_invalid_params_say_what_was_expected_and_what_came(
    make: Any, fragments: list[str]
) -> None:
    with pytest.raises(SpaceError) as caught:
        make()
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_a_space_takes_any_names_the_builder_decides() -> None:
    # Generic: a builder of the user's own may call its parameters anything.
    space = _space(IntParam("filters", 8, 64, log=True), CategoricalParam("pool", ("max", "avg")))
    assert space.names == ("filters", "pool")


@pytest.mark.parametrize(
    ("param", "fragments"),
    [
        (
            CategoricalParam("initializer", ("he_normal", "he_foo")),
            ["unknown initializer 'he_foo'", "expected one of: he_normal, he_uniform"],
        ),
        (CategoricalParam("activation", (1, 2)), ["must be a name (str)"]),
        (FixedParam("optimizer", "adamm"), ["unknown optimizer 'adamm'"]),
        (FloatParam("activation", 0.0, 1.0), ["type 'float' does not fit"]),
        (FloatParam("units", 1.0, 8.0), ["type 'float' does not fit"]),
        (IntParam("dropout", 0, 0), ["type 'int' does not fit"]),
        (IntParam("lr", 1, 2), ["unknown parameter 'lr'", ", ".join(PARAM_NAMES)]),
        (FloatParam("momentum", 0.0, 1.0), ["high must be in [0, 1)", "high=1.0"]),
    ],
)
def test_the_dense_builder_checks_its_vocabulary(param: Any, fragments: list[str]) -> None:
    with pytest.raises(SpaceError) as caught:
        DENSE.check_space(_space(param), "my.yaml")
    assert str(caught.value).startswith(f"my.yaml: parameter '{param.name}': ")
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert DENSE_VOCABULARY.check_value("units", 8) is None


@pytest.mark.parametrize(
    ("name", "bad", "good"),
    [
        ("units", 0, 1),
        ("depth", 0, 1),
        ("batch_size", 0, 1),
        ("dropout", 1.0, 0.0),
        ("dropout", -0.1, 0.99),
        ("momentum", 1.0, 0.0),
        ("reg_strength", -1e-9, 0.0),
        ("learning_rate", 0.0, 1e-9),
    ],
)
def test_value_bounds_per_name(name: str, bad: float, good: float) -> None:
    # Fixed values and categorical choices are held to the same bounds as ranges.
    with pytest.raises(SpaceError, match=f"parameter '{name}'"):
        DENSE_VOCABULARY.check_param(FixedParam(name, bad))
    with pytest.raises(SpaceError, match=f"parameter '{name}'"):
        DENSE_VOCABULARY.check_param(CategoricalParam(name, (good, bad)))
    DENSE_VOCABULARY.check_param(FixedParam(name, good))


def test_float_param_converts_ints_and_keeps_step() -> None:
    param = FloatParam("dropout", 0, 0.5, step=0.1)
    assert isinstance(param.low, float)
    assert param.step == 0.1
    assert FloatParam("learning_rate", 1e-4, 1e-1, log=True).log


def test_when_accepts_a_single_value_and_is_frozen() -> None:
    # Space files give a single value or a list; both are stored as a tuple.
    param = FloatParam("momentum", 0.0, 0.9, when={"optimizer": "sgd"})  # type: ignore[dict-item]
    assert param.when is not None
    assert dict(param.when) == {"optimizer": ("sgd",)}
    with pytest.raises(TypeError):
        param.when["optimizer"] = ("adam",)  # type: ignore[index]
    listed = FloatParam("momentum", 0.0, 0.9, when={"optimizer": ["sgd"]})  # type: ignore[dict-item]
    assert listed == param
    assert hash(param) == hash(listed)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        (
            (FloatParam("momentum", 0.0, 0.9, when={"optimizer": ("sgd",)}),),
            "`when` names 'optimizer', which must be declared earlier",
        ),
        (
            (
                FloatParam("momentum", 0.0, 0.9, when={"optimizer": ("sgd",)}),
                CategoricalParam("optimizer", ("sgd", "adam")),
            ),
            "must be declared earlier",
        ),
        (
            (
                FloatParam("dropout", 0.0, 0.5),
                FloatParam("momentum", 0.0, 0.9, when={"dropout": (0.1,)}),
            ),
            "must be categorical or fixed, but it is of type float.",
        ),
        (
            (
                CategoricalParam("optimizer", ("sgd", "adam")),
                FloatParam("momentum", 0.0, 0.9, when={"optimizer": ("sgd", "nadam")}),
            ),
            "allows 'nadam' for 'optimizer', which must be one of its values ['sgd', 'adam']",
        ),
        ((FixedParam("units", 8), FixedParam("units", 16)), "parameter 'units': declared twice"),
        ((), "at least one parameter"),
    ],
)
def test_invalid_spaces(params: tuple[Any, ...], fragment: str) -> None:
    with pytest.raises(SpaceError) as caught:
        Space("mine", params)
    assert fragment in str(caught.value)
    assert str(caught.value).startswith("space 'mine'")


def test_is_active_follows_nested_conditions() -> None:
    space = _space(
        CategoricalParam("regularizer", ("none", "l1", "l2")),
        CategoricalParam("optimizer", ("sgd", "adam"), when={"regularizer": ("l1", "l2")}),
        FloatParam("momentum", 0.0, 0.9, when={"optimizer": ("sgd",), "regularizer": ("l2",)}),
    )
    assert space.is_active("regularizer", {})
    assert not space.is_active("optimizer", {"regularizer": "none"})
    assert space.is_active("optimizer", {"regularizer": "l1"})
    # The parent `optimizer` is inactive (absent), so `momentum` is too.
    assert not space.is_active("momentum", {"regularizer": "none"})
    assert not space.is_active("momentum", {"regularizer": "l1", "optimizer": "sgd"})
    assert space.is_active(space.get("momentum"), {"regularizer": "l2", "optimizer": "sgd"})
    assert not space.is_active("momentum", {"regularizer": "l2", "optimizer": "adam"})


def test_names_and_get() -> None:
    space = load_space("small")
    assert space.names[0] == "units"
    assert isinstance(space.get("batch_size"), FixedParam)
    with pytest.raises(KeyError, match="no parameter 'activation'"):
        space.get("activation")


@pytest.mark.parametrize("preset", list_presets())
def test_to_dict_is_json_safe_and_round_trips_exactly(preset: str) -> None:
    space = load_space(preset)
    stored = json.loads(json.dumps(space.to_dict()))
    assert stored == space.to_dict()
    again = Space.from_dict(stored)
    assert again == space
    assert [type(p) for p in again.params] == [type(p) for p in space.params]
    assert again.to_dict() == space.to_dict()


def test_from_dict_keeps_types_of_every_field() -> None:
    space = _space(
        IntParam("units", 8, 64, step=8),
        FloatParam("dropout", 0.0, 0.5, step=0.25),
        CategoricalParam("batch_size", (32, 64)),
        CategoricalParam("optimizer", ("sgd", "adam")),
        FixedParam("momentum", 0.9, when={"optimizer": ("sgd",)}),
        FixedParam("learning_rate", 0.01),
    )
    again = Space.from_dict(json.loads(json.dumps(space.to_dict())))
    assert again == space
    assert again.get("momentum").when == {"optimizer": ("sgd",)}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "expected a mapping"),
        ({"name": "x", "params": {"units": 8}, "extra": 1}, "unknown top-level key 'extra'"),
        ({"name": "x"}, "'params' is missing"),
        ({"name": "x", "params": []}, "non-empty mapping"),
        ({"name": "x", "params": {"units": {"type": "int", "low": 1}}}, "needs the key 'high'"),
        ({"name": "x", "params": {"units": {"low": 1, "high": 2}}}, "but got no `type`"),
        ({"name": "x", "params": {"units": {"type": "range"}}}, "but got type 'range'"),
        ({"name": "x", "params": {"units": [8, 16]}}, "expected a mapping with `type`"),
    ],
)
def test_from_dict_rejects_malformed_data(data: Any, fragment: str) -> None:
    with pytest.raises(SpaceError) as caught:
        Space.from_dict(data)
    assert fragment in str(caught.value)


BRANCHES = {
    "name": "init",
    "params": {
        "activation": {"type": "categorical", "choices": ["relu", "tanh", "selu"]},
        "init_relu": {"type": "categorical", "choices": ["he_normal", "he_uniform"],
                      "when": {"activation": ["relu"]}, "as": "initializer"},
        "init_tanh": {"type": "fixed", "value": "glorot_uniform",
                      "when": {"activation": ["tanh"]}, "as": "initializer"},
    },
}  # fmt: skip


def test_exclusive_branches_feed_one_builder_parameter() -> None:
    space = Space.from_dict(BRANCHES)
    DENSE.check_space(space)
    assert space.builder_point({"activation": "relu", "init_relu": "he_uniform"}) == {
        "activation": "relu",
        "initializer": "he_uniform",
    }
    again = Space.from_dict(json.loads(json.dumps(space.to_dict())))
    assert again == space and again.to_dict()["params"]["init_tanh"]["as"] == "initializer"


def test_the_first_point_takes_each_active_parameter_at_its_first_value() -> None:
    space = Space.from_dict(BRANCHES)
    assert space.first_point() == {"activation": "relu", "init_relu": "he_normal"}
    assert space.builder_point(space.first_point()) == {
        "activation": "relu",
        "initializer": "he_normal",
    }
    ranges = Space.from_dict({"name": "r", "params": {
        "units": {"type": "int", "low": 8, "high": 64, "log": True},
        "dropout": {"type": "float", "low": 0.1, "high": 0.5},
        "batch_size": 32,
    }})  # fmt: skip
    assert ranges.first_point() == {"units": 8, "dropout": 0.1, "batch_size": 32}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"when": {"activation": ["relu", "tanh"]}}, "both 'init_relu' and 'init_tanh' set"),
        (
            {"when": None},
            "`as: initializer` is for a branch that sets 'initializer' under a condition",
        ),
        ({"as": "2x"}, "`as`: a parameter name is a Python identifier"),
    ],
)
def test_branches_that_could_be_active_together_are_refused(
    change: dict[str, Any], fragment: str
) -> None:
    data = json.loads(json.dumps(BRANCHES))
    spec = {**data["params"]["init_tanh"], **change}
    data["params"]["init_tanh"] = {k: v for k, v in spec.items() if v is not None}
    with pytest.raises(SpaceError) as caught:
        Space.from_dict(data)
    assert fragment in str(caught.value)


def test_the_vocabulary_checks_a_branch_under_the_name_it_sets() -> None:
    data = json.loads(json.dumps(BRANCHES))
    data["params"]["init_relu"]["choices"] = ["he_normal", "he_foo"]
    with pytest.raises(SpaceError, match=r"parameter 'init_relu': unknown initializer 'he_foo'"):
        DENSE.check_space(Space.from_dict(data))
    data = json.loads(json.dumps(BRANCHES))
    data["params"]["init_tanh"]["as"] = "initialiser"
    data["params"]["init_relu"]["as"] = "initialiser"
    with pytest.raises(
        SpaceError, match=r"parameter 'init_relu': `as: initialiser` names no parameter of the "
        r"builder; expected one of: units, "
    ):  # fmt: skip
        DENSE.check_space(Space.from_dict(data))


def test_distinct_points_count_the_active_parameters_only() -> None:
    space = _space(
        IntParam("units", 8, 12, step=2),  # 8, 10, 12
        CategoricalParam("optimizer", ("sgd", "adam")),
        FloatParam("momentum", 0.0, 0.9, step=0.3, when={"optimizer": ["sgd"]}),  # 4 values
        FixedParam("batch_size", 32),
    )
    assert space.distinct_points() == 3 * (4 + 1)
    assert space.distinct_points(limit=10) is None  # more than the limit: not counted
    assert _space(FloatParam("dropout", 0.0, 0.5)).distinct_points() is None  # continuous
    assert _space(IntParam("units", 1, 10**9)).distinct_points() is None  # never enumerated
    assert load_space("mlp").distinct_points() is None

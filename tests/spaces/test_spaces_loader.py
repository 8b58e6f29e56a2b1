"""Space files, presets, and the YAML round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from spaces import (
    CategoricalParam,
    FixedParam,
    FloatParam,
    IntParam,
    SpaceError,
    list_presets,
    load_space,
    parse_space,
    preset_text,
    space_to_yaml,
)

EXAMPLE = """\
name: mine
description: The broad default space for dense networks.
params:
  units: {type: int, low: 16, high: 512, log: true}
  dropout: {type: float, low: 0.0, high: 0.5}
  activation: {type: categorical, choices: [relu, elu]}
  regularizer: {type: categorical, choices: [none, l1, l2, l1_l2]}
  reg_strength:
    {type: float, low: 1.0e-6, high: 1.0e-2, log: true, when: {regularizer: [l1, l2, l1_l2]}}
  batch_size: 64            # shorthand for {type: fixed, value: 64}
"""


def _write(tmp_path: Path, text: str, name: str = "my_space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_a_file_in_file_order(tmp_path: Path) -> None:
    space = load_space(_write(tmp_path, EXAMPLE))
    assert space.name == "mine"
    assert space.description.startswith("The broad default")
    assert space.names == (
        "units",
        "dropout",
        "activation",
        "regularizer",
        "reg_strength",
        "batch_size",
    )
    assert space.get("units") == IntParam("units", 16, 512, log=True)
    assert space.get("batch_size") == FixedParam("batch_size", 64)
    reg_strength = space.get("reg_strength")
    assert isinstance(reg_strength, FloatParam)
    assert reg_strength.when == {"regularizer": ("l1", "l2", "l1_l2")}


def test_path_given_as_str_and_name_defaults_to_the_stem(tmp_path: Path) -> None:
    path = _write(tmp_path, "params:\n  units: 32\n", name="tiny.yaml")
    space = load_space(str(path))
    assert space.name == "tiny"
    assert space.params == (FixedParam("units", 32),)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            "params:\n  dropout: {type: float, low: 0.5, high: 0.1}\n",
            ["parameter 'dropout'", "`low <= high` must hold, but got (low=0.5, high=0.1)."],
        ),
        (
            "params:\n  units: {type: int, lowe: 1, high: 8}\n",
            ["parameter 'units'", "unknown key 'lowe'"],
        ),
        (
            "params:\n  initializer: {type: categorical, choices: [he_foo]}\n",
            ["unknown initializer 'he_foo'; expected one of: he_normal"],
        ),
        ("", ["the file is empty"]),
        ("- units\n- depth\n", ["expected a mapping", "got list"]),
        ("name: x\n", ["'params' is missing"]),
        ("params: {units: 8}\nseed: 3\n", ["unknown top-level key 'seed'"]),
        ("params:\n  units: {type: int, low: 8, high: 16\n", ["invalid YAML at line"]),
        (
            "params:\n  units: 8\n  units: 16\n",
            ["invalid YAML at line 3", "'units' is given twice"],
        ),
        ("params:\n  lr: 0.1\n", ["unknown parameter 'lr'", "learning_rate"]),
        (
            "params:\n  learning_rate: {type: float, low: 1e-4, high: 1.0e-1}\n",
            ["parameter 'learning_rate'", "'1e-4' (str)", "write it 1.0e-4"],
        ),
        (
            "params:\n  momentum: {type: float, low: 0.0, high: 0.9, when: {optimizer: sgd}}\n",
            ["`when` names 'optimizer', which must be declared earlier"],
        ),
        ("params:\n  units: [8, 16]\n", ["parameter 'units'", "expected a mapping with `type`"]),
        ("params:\n  dropout: {type: float, low: 0.0, high: 0.5, log: yes please}\n", ["`log`"]),
    ],
)
def test_bad_files_name_the_file_and_the_problem(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SpaceError) as caught:
        load_space(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message


def test_a_key_beside_a_merge_overrides_the_merged_one(tmp_path: Path) -> None:
    """YAML's merge key: an anchor's entries reused, some written again to override."""
    path = _write(
        tmp_path,
        "params:\n  units: &range {type: int, low: 8, high: 64}\n"
        "  depth: {<<: *range, low: 1, high: 3}\n",
    )
    space = load_space(path)
    assert space.get("units") == IntParam("units", 8, 64)
    assert space.get("depth") == IntParam("depth", 1, 3)
    # A key written twice in one mapping is still an error.
    twice = _write(tmp_path, "params:\n  units: {type: int, low: 8, low: 9, high: 64}\n")
    with pytest.raises(SpaceError, match="the key 'low' is given twice"):
        load_space(twice)


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nparams:\n  units: {type: int, low: 8 high: 16]\n")
    with pytest.raises(SpaceError, match=r"invalid YAML at line 3, column \d+"):
        load_space(path)


def test_unknown_preset_lists_the_presets() -> None:
    expected = r"unknown space 'mlpp'.*expected one of: capacity, init, mlp, optimizers"
    with pytest.raises(SpaceError, match=expected):
        load_space("mlpp")


def test_missing_file_is_reported_as_a_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpaceError, match="no such file"):
        load_space(missing)
    with pytest.raises(SpaceError, match="no such file"):
        load_space(str(missing))
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(SpaceError, match=r"folder\.yaml: not a regular file"):
        load_space(folder)


def test_presets_are_listed_and_readable() -> None:
    assert list_presets() == ["capacity", "init", "mlp", "optimizers", "regularize", "small"]
    assert preset_text("small").startswith("name: small")
    with pytest.raises(SpaceError, match="unknown preset 'large'"):
        preset_text("large")


def test_mlp_preset_has_the_documented_parameters() -> None:
    space = load_space("mlp")
    assert space.name == "mlp"
    assert space.names == (
        "units",
        "depth",
        "dropout",
        "activation",
        "initializer",
        "batch_norm",
        "regularizer",
        "reg_strength",
        "optimizer",
        "momentum",
        "learning_rate",
        "batch_size",
    )
    assert space.get("units") == IntParam("units", 16, 512, log=True)
    assert space.get("depth") == IntParam("depth", 1, 4)
    assert space.get("dropout") == FloatParam("dropout", 0.0, 0.5)
    assert space.get("reg_strength") == FloatParam(
        "reg_strength", 1e-6, 1e-2, log=True, when={"regularizer": ("l1", "l2", "l1_l2")}
    )
    assert space.get("momentum") == FloatParam("momentum", 0.0, 0.99, when={"optimizer": ("sgd",)})
    assert space.get("learning_rate") == FloatParam("learning_rate", 1e-4, 1e-1, log=True)
    assert space.get("batch_size") == CategoricalParam("batch_size", (32, 64, 128, 256))
    assert space.get("optimizer") == CategoricalParam(
        "optimizer", ("sgd", "rmsprop", "adagrad", "adam", "adamw", "nadam")
    )


def test_small_preset_has_the_documented_parameters() -> None:
    space = load_space("small")
    assert space.get("units") == IntParam("units", 8, 64, log=True)
    assert space.get("depth") == IntParam("depth", 1, 2)
    assert space.get("dropout") == FloatParam("dropout", 0.0, 0.3)
    assert space.get("optimizer") == CategoricalParam("optimizer", ("adam", "sgd"))
    assert space.get("momentum") == FloatParam("momentum", 0.0, 0.95, when={"optimizer": ("sgd",)})
    assert space.get("learning_rate") == FloatParam("learning_rate", 1e-3, 3e-2, log=True)
    assert space.get("batch_size") == FixedParam("batch_size", 64)


@pytest.mark.parametrize("preset", list_presets())
def test_space_to_yaml_round_trips(preset: str, tmp_path: Path) -> None:
    space = load_space(preset)
    text = space_to_yaml(space)
    assert parse_space(yaml.safe_load(text), "again") == space
    assert load_space(_write(tmp_path, text)) == space


def test_parse_space_names_its_source() -> None:
    with pytest.raises(SpaceError, match=r"^somewhere: parameter 'depth': "):
        parse_space({"name": "x", "params": {"depth": 0}}, "somewhere")
    with pytest.raises(SpaceError, match=r"^somewhere: the file is empty"):
        parse_space(None, "somewhere")

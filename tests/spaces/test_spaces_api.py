"""The public surface of `spaces`, and that it answers without TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import spaces

EXPORTED = {
    "ACTIVATIONS",
    "BATCH_NORM",
    "BUILDER_DEFAULTS",
    "DENSE",
    "DENSE_VOCABULARY",
    "INITIALIZERS",
    "LR_SCHEDULES",
    "LR_SCHEDULE_CLASSES",
    "OPTIMIZERS",
    "PARAM_NAMES",
    "REGULARIZERS",
    "VOCABULARIES",
    "Builder",
    "CategoricalParam",
    "Choice",
    "Condition",
    "DataSpec",
    "FixedParam",
    "FloatParam",
    "IntParam",
    "Param",
    "Rule",
    "Space",
    "SpaceError",
    "Task",
    "Vocabulary",
    "build_model",
    "check_model_ref",
    "get_builder",
    "kerastuner_hyperparameters",
    "list_presets",
    "load_space",
    "model_summary",
    "optuna_distributions",
    "param_counts",
    "params_from_values",
    "parse_space",
    "preset_text",
    "resolve_params",
    "unused_params",
    "sample_optuna",
    "space_to_yaml",
}


def test_exported_members() -> None:
    assert set(spaces.__all__) == EXPORTED
    assert len(spaces.__all__) == len(EXPORTED)
    for name in spaces.__all__:
        assert hasattr(spaces, name), name
    assert issubclass(spaces.SpaceError, ValueError)


def test_space_errors_render_source_param_and_problem() -> None:
    error = spaces.SpaceError("went wrong.", param="units").with_source("f.yaml")
    assert str(error) == "f.yaml: parameter 'units': went wrong."
    assert (error.source, error.param, error.message) == ("f.yaml", "units", "went wrong.")


NO_HEAVY_IMPORTS = """
import spaces, sys
space = spaces.load_space('mlp')
spaces.Space.from_dict(space.to_dict())
spaces.space_to_yaml(space)
spaces.resolve_params({'units': [8, 4]})
spaces.DataSpec((3,), 'binary')
heavy = [m for m in sys.modules
         if m == 'tensorflow' or m.startswith(('tensorflow.', 'keras', 'optuna'))]
assert not heavy, heavy
"""


def test_import_and_load_do_not_import_tensorflow_keras_or_optuna() -> None:
    result = subprocess.run(
        [sys.executable, "-c", NO_HEAVY_IMPORTS], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr

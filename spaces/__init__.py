"""What can be searched, and how a point of it becomes a Keras model.

- A :class:`Space` (typed, validated parameters with conditions) comes from a YAML file or
  a shipped preset (:func:`load_space`), or from a study's stored ``Space.to_dict()``.
- :func:`sample_optuna` draws a point of it through an ``optuna.Trial``;
  :func:`kerastuner_hyperparameters` declares it on KerasTuner ``HyperParameters`` and
  :func:`params_from_values` reads a point KerasTuner chose.
- A :class:`Builder` turns a point into a compiled ``keras.Model`` for a :class:`DataSpec`:
  the built-in Dense builder (``DENSE``, :func:`build_model`), whose :class:`Vocabulary`
  (``DENSE_VOCABULARY``) a space is checked against, or a function of the user's own
  (:func:`get_builder` of ``"package.module:function"``), which takes any names.

``import spaces`` does not import TensorFlow or Keras (nor Optuna or KerasTuner); only
:func:`build_model`, :func:`model_summary` and :func:`param_counts` import Keras, when called.
Every invalid space or parameter set raises :class:`SpaceError` (a ``ValueError``, and
hpsearch's ``ConfigError``: ``search._errors`` is the one root of hpsearch's errors).
"""

from spaces._builder import (
    BUILDER_DEFAULTS,
    DENSE,
    DENSE_VOCABULARY,
    PARAM_NAMES,
    DataSpec,
    Task,
    build_model,
    get_builder,
    model_summary,
    param_counts,
    resolve_params,
    unused_params,
)
from spaces._builders import Builder, Rule, Vocabulary, check_model_ref
from spaces._kerastuner import kerastuner_hyperparameters, params_from_values
from spaces._loader import list_presets, load_space, parse_space, preset_text, space_to_yaml
from spaces._optuna import optuna_distributions, sample_optuna
from spaces._schema import (
    CategoricalParam,
    Choice,
    Condition,
    FixedParam,
    FloatParam,
    IntParam,
    Param,
    Space,
    SpaceError,
)
from spaces._vocabulary import (
    ACTIVATIONS,
    BATCH_NORM,
    INITIALIZERS,
    LR_SCHEDULE_CLASSES,
    LR_SCHEDULES,
    OPTIMIZERS,
    REGULARIZERS,
    VOCABULARIES,
)

__all__ = [
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
    "sample_optuna",
    "space_to_yaml",
    "unused_params",
]

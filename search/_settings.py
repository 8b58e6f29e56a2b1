"""StudySettings: everything a study is created with, stored in the study itself.

``hpsearch resume NAME`` needs only the name because these settings live in the database
(study user attribute ``hpsearch``; see docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from search._data_keras import DEFAULT_NUM_WORDS
from search._errors import ConfigError, HpsearchError
from search._records import as_int
from search.engines._registry import ENGINE_OPTIONS, ENGINES
from spaces import DENSE, Space
from spaces._builders import MODEL_REF

SAMPLERS = ENGINES["optuna"].options["sampler"]
PRUNERS = ENGINES["optuna"].options["pruner"]
ALGORITHMS = ENGINES["kerastuner"].options["algorithm"]
Direction = Literal["minimize", "maximize"]
# Metric names whose smaller values are better; any other metric is maximised.
_MINIMISED = ("loss", "mae", "mse", "rmse", "error", "crossentropy", "hinge")
# What the model builder compiles per task (Keras logs each with a val_ twin).
TASK_METRICS = {
    "binary": ("loss", "accuracy"),
    "multiclass": ("loss", "accuracy"),
    "regression": ("loss", "mae"),
}


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hpsearch")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def infer_direction(objective: str) -> Direction:
    """``minimize`` for losses and errors, ``maximize`` for anything else (accuracy, auc)."""
    name = objective.removeprefix("val_")
    return "minimize" if any(part in name for part in _MINIMISED) else "maximize"


def damaged_settings(study: str, why: str) -> ConfigError:
    """The line for a study whose stored settings cannot be read back."""
    return ConfigError(
        f"study {study!r}: its stored hpsearch settings are incomplete or damaged ({why}); "
        "its trials can still be read (hpsearch trials, hpsearch report), and a search "
        "needs a study of its own (hpsearch run --study ANOTHER_NAME)."
    )


@dataclass(frozen=True)
class DataRef:
    """How to load the study's data again: the arguments of ``load_dataset``."""

    source: str
    target: str | None = None
    task: str | None = None
    val_split: float = 0.2
    test_split: float = 0.0
    num_words: int = DEFAULT_NUM_WORDS  # IMDB's and Reuters' vocabulary


@dataclass(frozen=True)
class StudySettings:
    """The settings a study is created with. Validated on construction."""

    study: str
    data: DataRef
    space: Space
    trials: int = 30
    objective: str = "val_loss"
    direction: Direction = "minimize"
    # The engine's options (search.engines._registry): None takes the engine's default, and
    # an option of another engine is refused.
    sampler: str | None = None
    pruner: str | None = None
    algorithm: str | None = None
    epochs: int = 50
    patience: int = 5
    seed: int = 0
    max_failures: int = 5
    engine: str = "optuna"
    # Checkpoints of the best trials kept on disk (search._winner); 0 keeps none.
    keep_top: int = 3
    # The model builder: "dense" (the built-in one) or "package.module:function".
    model: str = "dense"
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        def bad(key: str, expected: str, value: object) -> ConfigError:
            return ConfigError(f"study {self.study!r}: {key} must be {expected}; got {value!r}.")

        if not self.study or not self.study.strip():
            raise ConfigError("--study must be a non-empty name.")
        if self.engine not in ENGINES:
            raise bad("--engine", f"one of {', '.join(ENGINES)}", self.engine)
        try:
            options = ENGINES[self.engine].check({k: getattr(self, k) for k in ENGINE_OPTIONS})
        except ValueError as exc:
            raise ConfigError(f"study {self.study!r}: {exc}.") from None
        for option, choice in options.items():
            object.__setattr__(self, option, choice)
        if self.direction not in ("minimize", "maximize"):
            raise bad("--direction", "minimize or maximize", self.direction)
        if not self.objective.startswith("val_"):
            raise bad("--objective", "a validation metric such as val_loss", self.objective)
        for key, value, low in (
            ("--trials", self.trials, 1),
            ("--epochs", self.epochs, 1),
            ("--patience", self.patience, 0),
            ("--max-failures", self.max_failures, 1),
            ("--keep-top", self.keep_top, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise bad(key, f"an integer >= {low}", value)
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise bad("--seed", f"an integer from 0 to {2**32 - 1}", seed)
        if self.model == DENSE.name:
            DENSE.check_space(self.space)
        elif not isinstance(self.model, str) or not MODEL_REF.fullmatch(self.model):
            raise bad("--model", "package.module:function", self.model)

    def check_objective(self, task: str) -> None:
        """The objective must be a metric the model for this task reports (known for the
        Dense builder; a user's builder compiles its own metrics, checked as trials run)."""
        if self.model != DENSE.name:
            return
        available = [f"val_{m}" for m in TASK_METRICS[task]]
        if self.objective not in available:
            raise ConfigError(
                f"--objective {self.objective!r} is not reported for a {task} task; "
                f"expected one of {', '.join(available)}."
            )

    def engine_summary(self) -> str:
        """The engine and its options, e.g. ``optuna (sampler tpe, pruner percentile)``."""
        options = ", ".join(f"{k} {getattr(self, k)}" for k in ENGINES[self.engine].options)
        return f"{self.engine} ({options})"

    def replace(self, **changes: Any) -> StudySettings:
        return dataclasses.replace(self, **changes)

    def to_attrs(self, data_description: dict[str, Any]) -> dict[str, Any]:
        """The JSON-safe form stored as the study user attribute ``hpsearch``."""
        return {
            "version": package_version(),
            "engine": self.engine,
            "space": self.space.to_dict(),
            "data": {
                **data_description,
                "source": self.data.source,
                "target": self.data.target,
                "task_given": self.data.task,
                "val_split": self.data.val_split,
                "test_split": self.data.test_split,
                "num_words": self.data.num_words,
            },
            "trials": self.trials,
            "objective": self.objective,
            "direction": self.direction,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "algorithm": self.algorithm,
            "epochs": self.epochs,
            "patience": self.patience,
            "seed": self.seed,
            "max_failures": self.max_failures,
            "keep_top": self.keep_top,
            "model": self.model,
            "created": self.created,
        }

    @classmethod
    def from_attrs(cls, study: str, attrs: Any) -> StudySettings:
        """Rebuild the settings stored by ``to_attrs``; ConfigError (one line, naming the
        study) for anything else: a value missing or of another type (a number stored as
        text or as ``true``, 1e300 trials), or one a new study could not be created with."""

        def text(value: Any, key: str, *, optional: bool = False) -> Any:
            if isinstance(value, str) or (optional and value is None):
                return value
            raise TypeError(f"{key} is {value!r}, not text")

        def integer(value: Any, key: str) -> int:
            number = as_int(value)
            if number is None:
                raise TypeError(f"{key} is {value!r}, not an integer")
            return number

        def fraction(value: Any, key: str) -> float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{key} is {value!r}, not a number")
            return float(value)

        try:
            if not isinstance(attrs, Mapping):
                raise TypeError(f"a mapping of settings was expected, found {attrs!r}")
            data = attrs["data"]
            if not isinstance(data, Mapping):
                raise TypeError(f"data is {data!r}, not a mapping")
            return cls(
                study=study,
                data=DataRef(
                    source=text(data["source"], "data.source"),
                    target=text(data.get("target"), "data.target", optional=True),
                    task=text(data.get("task_given"), "data.task_given", optional=True),
                    val_split=fraction(data.get("val_split", 0.2), "data.val_split"),
                    test_split=fraction(data.get("test_split", 0.0), "data.test_split"),
                    num_words=integer(data.get("num_words") or DEFAULT_NUM_WORDS, "data.num_words"),
                ),
                space=Space.from_dict(attrs["space"]),
                trials=integer(attrs.get("trials", 30), "trials"),
                objective=text(attrs["objective"], "objective"),
                direction=attrs["direction"],
                sampler=text(attrs.get("sampler"), "sampler", optional=True),
                pruner=text(attrs.get("pruner"), "pruner", optional=True),
                algorithm=text(attrs.get("algorithm"), "algorithm", optional=True),
                epochs=integer(attrs["epochs"], "epochs"),
                patience=integer(attrs["patience"], "patience"),
                seed=integer(attrs["seed"], "seed"),
                max_failures=integer(attrs.get("max_failures", 5), "max_failures"),
                keep_top=integer(attrs.get("keep_top", 3), "keep_top"),
                model=text(attrs.get("model", DENSE.name), "model"),
                engine=text(attrs.get("engine", "optuna"), "engine"),
                created=str(attrs.get("created", "")),
            )
        except (KeyError, TypeError, ValueError, HpsearchError) as exc:
            if isinstance(exc, HpsearchError):  # a value a new study is refused with
                why = str(exc).removeprefix(f"study {study!r}: ").rstrip(".")
            else:
                why = f"{type(exc).__name__}: {exc}"
            raise damaged_settings(study, why) from None

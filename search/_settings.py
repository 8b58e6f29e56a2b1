"""StudySettings: everything a study is created with, stored in the study itself.

``hpsearch resume NAME`` needs only the name because these settings live in the database
(study user attribute ``hpsearch``; see docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from search._data_keras import DEFAULT_NUM_WORDS
from search._errors import ConfigError
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
    def from_attrs(cls, study: str, attrs: dict[str, Any]) -> StudySettings:
        """Rebuild the settings stored by ``to_attrs``."""
        try:
            data = attrs["data"]
            return cls(
                study=study,
                data=DataRef(
                    source=data["source"],
                    target=data.get("target"),
                    task=data.get("task_given"),
                    val_split=float(data.get("val_split", 0.2)),
                    test_split=float(data.get("test_split", 0.0)),
                    num_words=int(data.get("num_words") or DEFAULT_NUM_WORDS),
                ),
                space=Space.from_dict(attrs["space"]),
                trials=int(attrs.get("trials", 30)),
                objective=attrs["objective"],
                direction=attrs["direction"],
                sampler=attrs.get("sampler"),
                pruner=attrs.get("pruner"),
                algorithm=attrs.get("algorithm"),
                epochs=int(attrs["epochs"]),
                patience=int(attrs["patience"]),
                seed=int(attrs["seed"]),
                max_failures=int(attrs.get("max_failures", 5)),
                keep_top=int(attrs.get("keep_top", 3)),
                model=str(attrs.get("model", DENSE.name)),
                engine=attrs.get("engine", "optuna"),
                created=attrs.get("created", ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"study {study!r}: its stored hpsearch settings are incomplete or damaged "
                f"({type(exc).__name__}: {exc})."
            ) from None

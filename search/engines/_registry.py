"""The engines by name, with the options each one takes: a leaf module (nothing of hpsearch
imported), read by the settings to validate a study's engine options and by the workers to
load the engine (whose module imports TensorFlow) on first use.

Each engine owns its options: Optuna takes ``--sampler`` and ``--pruner``, KerasTuner takes
``--algorithm``. Options of another engine are refused rather than ignored.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineSpec:
    """One engine: where its Proposer lives, and its options (name -> allowed values; the
    first is the default)."""

    name: str
    proposer: str  # "module:class"
    options: dict[str, tuple[str, ...]]
    summary: str

    def check(self, given: dict[str, str | None]) -> dict[str, str | None]:
        """The engine's options resolved: defaults for those not given; ValueError naming the
        option for a value it does not know or an option of another engine."""
        resolved: dict[str, str | None] = {}
        for key, value in given.items():
            allowed = self.options.get(key)
            if allowed is None:
                if value is not None:
                    owner = [s.name for s in ENGINES.values() if key in s.options]
                    raise ValueError(
                        f"--{key} is an option of the {' and '.join(owner)} engine; "
                        f"--engine {self.name} takes {self.flags()}"
                    )
                resolved[key] = None
            elif value is None:
                resolved[key] = allowed[0]
            elif value not in allowed:
                raise ValueError(f"--{key} must be one of {', '.join(allowed)}; got {value!r}")
            else:
                resolved[key] = value
        return resolved

    def flags(self) -> str:
        return " and ".join(f"--{key}" for key in self.options)


ENGINES: dict[str, EngineSpec] = {
    "optuna": EngineSpec(
        name="optuna",
        proposer="search.engines._optuna:OptunaProposer",
        options={
            "sampler": ("tpe", "random", "gp", "qmc"),
            "pruner": ("percentile", "median", "hyperband", "successive-halving", "none"),
        },
        summary="Optuna's samplers propose the points, its pruners stop poor trials early",
    ),
    "kerastuner": EngineSpec(
        name="kerastuner",
        proposer="search.engines._kerastuner:KerasTunerProposer",
        options={"algorithm": ("bayesian", "hyperband", "random")},
        summary="KerasTuner's oracles (Hyperband, BayesianOptimization, RandomSearch)",
    ),
}
ENGINE_OPTIONS = ("sampler", "pruner", "algorithm")

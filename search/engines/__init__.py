"""Search engines behind one contract (see ``search.engines._base``)."""

from __future__ import annotations

import importlib

from search.engines._base import Engine, SearchResult, WorkerLimits

# name -> "module:class"; engines import TensorFlow, so they are loaded on first use.
ENGINES: dict[str, str] = {"optuna": "search.engines._optuna:OptunaEngine"}


def get_engine(name: str) -> Engine:
    """An engine instance by name."""
    module_name, _, class_name = ENGINES[name].partition(":")
    cls: type[Engine] = getattr(importlib.import_module(module_name), class_name)
    return cls()


__all__ = ["ENGINES", "Engine", "SearchResult", "WorkerLimits", "get_engine"]

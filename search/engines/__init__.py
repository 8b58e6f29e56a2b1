"""Search engines behind one lifecycle (see ``search.engines._base`` for the contract).

An engine is a ``Proposer`` (how the next point is chosen); ``search.engines._lifecycle``
runs every engine's trials the same way. ``ENGINES`` (a leaf module) names them and their
options; an engine's module imports TensorFlow, so it is loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from search.engines._base import Proposer, SearchResult, WorkerLimits
from search.engines._registry import ENGINES, EngineSpec

if TYPE_CHECKING:
    from search._settings import StudySettings


def get_proposer(settings: StudySettings) -> Proposer:
    """The proposer of the study's engine, for its settings."""
    module_name, _, class_name = ENGINES[settings.engine].proposer.partition(":")
    cls: type[Proposer] = getattr(importlib.import_module(module_name), class_name)
    return cls(settings)


__all__ = ["ENGINES", "EngineSpec", "Proposer", "SearchResult", "WorkerLimits", "get_proposer"]

"""Reading studies back from the database alone: table, ranking, plots, HTML reports, and
several studies compared.

Never imports TensorFlow or Keras, so it works for any engine and while a search runs. Its
names are loaded when first used (as ``search``'s are): ``hpsearch studies`` does not pay
for matplotlib and Jinja2, which only the pages need.

Exceptions belong to hpsearch's one hierarchy (``search._errors``, drawn in
``reports._study``): ReportError (the report cannot be made or written), StorageError,
StudyNotFound (no such study; lists the studies there).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reports._best import best_summary
    from reports._compare import Comparison, StudyBudget, compare
    from reports._frame import failures, history_of, leaderboard, trials_frame
    from reports._html import render_comparison, render_report, write_comparison, write_report
    from reports._plots import (
        LearningCurve,
        OptimizationHistory,
        learning_curves_data,
        optimization_history_data,
        plot_learning_curves,
        plot_optimization_history,
    )
    from reports._study import ReportError
    from reports._summary import StudySummary, list_studies, study_summary
    from search._errors import StorageError, StudyNotFound

_WHERE = {
    "reports._best": ("best_summary",),
    "reports._compare": ("Comparison", "StudyBudget", "compare"),
    "reports._frame": ("failures", "history_of", "leaderboard", "trials_frame"),
    "reports._html": ("render_comparison", "render_report", "write_comparison", "write_report"),
    "reports._plots": (
        "LearningCurve",
        "OptimizationHistory",
        "learning_curves_data",
        "optimization_history_data",
        "plot_learning_curves",
        "plot_optimization_history",
    ),
    "reports._study": ("ReportError",),
    "reports._summary": ("StudySummary", "list_studies", "study_summary"),
    "search._errors": ("StorageError", "StudyNotFound"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = [
    "Comparison",
    "LearningCurve",
    "OptimizationHistory",
    "ReportError",
    "StorageError",
    "StudyBudget",
    "StudyNotFound",
    "StudySummary",
    "best_summary",
    "compare",
    "failures",
    "history_of",
    "leaderboard",
    "learning_curves_data",
    "list_studies",
    "optimization_history_data",
    "plot_learning_curves",
    "plot_optimization_history",
    "render_comparison",
    "render_report",
    "study_summary",
    "trials_frame",
    "write_comparison",
    "write_report",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'reports' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

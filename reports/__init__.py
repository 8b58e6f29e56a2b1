"""Reading studies back from the database alone: table, ranking, plots, HTML reports, and
several studies compared.

Never imports TensorFlow or Keras, so it works for any engine and while a search runs.

Exceptions belong to hpsearch's one hierarchy (``search._errors``, drawn in
``reports._study``): ReportError (the report cannot be made or written), StorageError,
StudyNotFound (no such study; lists the studies there).
"""

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

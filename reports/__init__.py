"""Reading a study back from the database alone: table, ranking, plots, HTML.

Never imports TensorFlow or Keras, so it works for any engine and while a search runs.

Exceptions::

    ReportError              the report cannot be made (storage, multi-objective study)
    └── StudyNotFoundError   no such study (also a LookupError); lists the studies there
"""

from reports._frame import failures, history_of, leaderboard, trials_frame
from reports._html import render_report, write_report
from reports._plots import (
    LearningCurve,
    OptimizationHistory,
    learning_curves_data,
    optimization_history_data,
    plot_learning_curves,
    plot_optimization_history,
)
from reports._study import ReportError, StudyNotFoundError
from reports._summary import StudySummary, list_studies, study_summary

__all__ = [
    "LearningCurve",
    "OptimizationHistory",
    "ReportError",
    "StudyNotFoundError",
    "StudySummary",
    "failures",
    "history_of",
    "leaderboard",
    "learning_curves_data",
    "list_studies",
    "optimization_history_data",
    "plot_learning_curves",
    "plot_optimization_history",
    "render_report",
    "study_summary",
    "trials_frame",
    "write_report",
]

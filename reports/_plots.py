"""Learning curves and optimisation history: first the data, then the drawing.

``learning_curves_data`` and ``optimization_history_data`` are pure and return plain records
(tested on their numbers); ``plot_learning_curves`` and ``plot_optimization_history`` draw those
records with a bare matplotlib ``Figure`` on the Agg canvas (no pyplot, no global figure
registry, no GUI backend) and return PNG bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from optuna.trial import FrozenTrial

from reports._analysis import DRAWABLE, use_log_axis
from reports._frame import check_top, leaderboard, rank_trials, record_of

DPI = 90
_PREFERRED_METRICS = ("accuracy", "mae")


@dataclass(frozen=True)
class LearningCurve:
    """One trial's per-epoch curves; lists are aligned with ``epochs`` (NaN where missing).

    ``metric`` is the one train/val metric pair shown beside the loss (``accuracy`` or ``mae``
    first, else another pair the history holds), None if the history has none.
    """

    number: int
    rank: int | None
    epochs: list[int]
    loss: list[float]
    val_loss: list[float]
    metric: str | None
    train_metric: list[float]
    val_metric: list[float]
    best_epoch: int | None


@dataclass(frozen=True)
class OptimizationHistory:
    """COMPLETE trials in trial order, their objective values and the best value so far;
    PRUNED trials with the value they stopped at; FAIL trials by number; ``log``: draw the
    value axis on a log scale (the values span orders of magnitude)."""

    objective: str
    direction: str
    numbers: list[int]
    values: list[float]
    best_so_far: list[float]
    pruned_numbers: list[int] = field(default_factory=list)
    pruned_values: list[float] = field(default_factory=list)
    failed_numbers: list[int] = field(default_factory=list)
    log: bool = False


@dataclass(frozen=True)
class TrialCurves:
    """The objective per epoch of every trial that recorded one, pruned ones included, for
    one panel; at most ``limit`` curves are kept (the best completed ones and the rest
    evenly by trial number), ``total`` says how many there were."""

    objective: str
    completed: list[list[float]]
    pruned: list[list[float]]
    best: list[float]
    total: int
    log: bool


def _pick_metric(history: Mapping[str, list[float]]) -> str | None:
    pairs = sorted(
        k for k in history if k != "loss" and not k.startswith("val_") and f"val_{k}" in history
    )
    for preferred in _PREFERRED_METRICS:
        if preferred in pairs:
            return preferred
    for name in pairs:
        if "accuracy" in name:
            return name
    return pairs[0] if pairs else None


def _drawable(values: Sequence[float] | None) -> list[float]:
    return [v if abs(v) < DRAWABLE else math.nan for v in values or []]


def _padded(values: Sequence[float] | None, length: int) -> list[float]:
    values = _drawable(values)
    return values + [math.nan] * (length - len(values))


def _curve(
    number: int, rank: int | None, history: Mapping[str, list[float]], best_epoch: int | None
) -> LearningCurve:
    metric = _pick_metric(history)
    shown = ["loss", "val_loss"] + ([metric, f"val_{metric}"] if metric else [])
    length = max((len(history.get(k, [])) for k in shown), default=0)
    return LearningCurve(
        number=number,
        rank=rank,
        epochs=list(range(length)),
        loss=_padded(history.get("loss"), length),
        val_loss=_padded(history.get("val_loss"), length),
        metric=metric,
        train_metric=_padded(history.get(metric) if metric else None, length),
        val_metric=_padded(history.get(f"val_{metric}") if metric else None, length),
        best_epoch=best_epoch,
    )


def learning_curves_data(
    source: pd.DataFrame | Sequence[FrozenTrial],
    top: int = 5,
    *,
    direction: str = "minimize",
) -> list[LearningCurve]:
    """The learning curves of the ``top`` ranked trials that recorded a history, best first.

    ``source`` is a frame from ``trials_frame`` (its histories ride in ``attrs``) or the
    study's trials; for trials, ``direction`` ranks them (a frame knows its own).
    """
    check_top(top)
    if isinstance(source, pd.DataFrame):
        histories = source.attrs.get("histories")
        if not isinstance(histories, Mapping):
            raise ValueError(
                "The frame carries no per-epoch histories (`frame.attrs['histories']`); "
                "build it with reports.trials_frame."
            )
        curves = []
        for row in leaderboard(source).to_dict("records"):
            history = histories.get(int(row["number"]))
            if not history:
                continue
            best = row["best_epoch"]
            best_epoch = None if best is pd.NA or best is None else int(best)
            curves.append(_curve(int(row["number"]), int(row["rank"]), history, best_epoch))
            if len(curves) == top:
                break
        return curves

    trials = list(source)
    ranks = rank_trials(
        ((t.number, t.state.name, t.value if t.values else None) for t in trials), direction
    )
    by_number = {t.number: t for t in trials}
    curves = []
    for number in sorted(ranks, key=ranks.__getitem__):
        record = record_of(by_number[number])
        if not record.history:
            continue
        curves.append(_curve(number, ranks[number], record.history, record.best_epoch))
        if len(curves) == top:
            break
    return curves


def optimization_history_data(frame: pd.DataFrame) -> OptimizationHistory:
    """Objective values of the COMPLETE trials in trial order and the best so far, the
    PRUNED trials' last values, the FAIL trials, and whether to draw on a log axis.

    The best so far is a running minimum or maximum, as the study's direction says.
    """
    direction = str(frame.attrs.get("direction", "minimize"))
    if direction not in ("minimize", "maximize"):
        raise ValueError(
            f"`frame.attrs['direction']` must be 'minimize' or 'maximize', but got {direction!r}."
        )
    done = frame[(frame["state"] == "COMPLETE") & frame["value"].notna()]
    done = done.sort_values("number", kind="stable")
    numbers = [int(n) for n in done["number"]]
    values = [float(v) for v in done["value"]]
    best_so_far: list[float] = []
    for value in values:
        if not best_so_far:
            best_so_far.append(value)
        elif direction == "minimize":
            best_so_far.append(min(best_so_far[-1], value))
        else:
            best_so_far.append(max(best_so_far[-1], value))
    pruned = frame[(frame["state"] == "PRUNED") & frame["value"].notna()]
    pruned = pruned.sort_values("number", kind="stable")
    pruned_values = [float(v) for v in pruned["value"]]
    failed = frame[frame["state"] == "FAIL"].sort_values("number", kind="stable")
    return OptimizationHistory(
        objective=str(frame.attrs.get("objective", "value")),
        direction=direction,
        numbers=numbers,
        values=values,
        best_so_far=best_so_far,
        pruned_numbers=[int(n) for n in pruned["number"]],
        pruned_values=pruned_values,
        failed_numbers=[int(n) for n in failed["number"]],
        log=use_log_axis(_drawable(values + pruned_values)),
    )


def plain_text() -> Any:
    """A context manager and decorator (matplotlib's ``rc_context``): text drawn as written
    within the block or the function it decorates. matplotlib reads what stands between two
    ``$`` as mathematical markup, and a study name or a parameter's choice such as ``$x^$``
    would otherwise make the drawing fail. Ticks and labels take the setting when drawn, so
    the figure is saved within it too."""
    return matplotlib.rc_context({"text.parse_math": False})


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        figure.clear()
    return buffer.getvalue()


@plain_text()
def plot_learning_curves(curves: Sequence[LearningCurve]) -> bytes:
    """One row per trial: train vs val loss, and beside it the metric pair where present.

    The best epoch is a dashed vertical line with the val loss there marked. Returns PNG bytes.
    """
    if not curves:
        raise ValueError("`curves` must hold at least one learning curve, but got none.")
    ncols = 2 if any(c.metric for c in curves) else 1
    height = 2.2 * len(curves)
    figure = Figure(figsize=(3.6 * ncols, height), dpi=DPI)
    # Fixed margins in inches: constrained layout would double the drawing time.
    figure.subplots_adjust(
        left=0.55 / (3.6 * ncols),
        right=1 - 0.1 / (3.6 * ncols),
        bottom=0.4 / height,
        top=1 - 0.25 / height,
        wspace=0.3,
        hspace=0.6,
    )
    axes = figure.subplots(len(curves), ncols, squeeze=False)
    for index, (row, curve) in enumerate(zip(axes, curves, strict=True)):
        label = f"#{curve.rank} " if curve.rank is not None else ""
        title = f"{label}trial {curve.number}"
        legend = index == 0  # the same entries in every panel: label the first row only
        _draw_pair(row[0], curve, curve.loss, curve.val_loss, "loss", title, legend)
        if ncols == 2:
            if curve.metric:
                _draw_pair(
                    row[1],
                    curve,
                    curve.train_metric,
                    curve.val_metric,
                    curve.metric,
                    f"trial {curve.number}: {curve.metric}",
                    legend,
                )
            else:
                row[1].set_axis_off()
    return _png(figure)


def _draw_pair(
    ax: Axes,
    curve: LearningCurve,
    train: list[float],
    val: list[float],
    name: str,
    title: str,
    legend: bool,
) -> None:
    ax.plot(curve.epochs, train, label=f"train {name}", color="#1f77b4", linewidth=1.4)
    ax.plot(curve.epochs, val, label=f"val {name}", color="#d62728", linewidth=1.4)
    best = curve.best_epoch
    if best is not None and 0 <= best < len(curve.epochs):
        ax.axvline(best, color="#555555", linestyle="--", linewidth=0.9, label="best epoch")
        if not math.isnan(val[best]):
            ax.plot([best], [val[best]], marker="o", color="#d62728", markersize=4)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("epoch", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=7)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    if legend:
        ax.legend(fontsize=7, frameon=False)


@plain_text()
def plot_optimization_history(history: OptimizationHistory) -> bytes:
    """Each COMPLETE trial's objective value, the best-so-far step line, PRUNED trials (grey
    crosses at the value they stopped at) and FAIL trials (red ticks along the bottom); a log
    value axis when ``history.log``. PNG bytes."""
    figure = Figure(figsize=(7.2, 3.2), dpi=DPI)
    figure.subplots_adjust(left=0.1, right=0.98, bottom=0.15, top=0.91)
    ax = figure.add_subplot()
    ax.scatter(history.numbers, _drawable(history.values), s=14, color="#1f77b4",
               label="completed")  # fmt: skip
    if history.pruned_numbers:
        ax.scatter(
            history.pruned_numbers,
            _drawable(history.pruned_values),
            s=14,
            marker="x",
            color="#999999",
            label="pruned (value when stopped)",
        )
    if history.numbers:
        ax.step(
            history.numbers,
            _drawable(history.best_so_far),
            where="post",
            color="#d62728",
            linewidth=1.4,
            label=f"best so far ({history.direction})",
        )
    if history.log:
        ax.set_yscale("log")
    if history.failed_numbers:
        ax.plot(
            history.failed_numbers,
            [0.0] * len(history.failed_numbers),
            linestyle="none",
            marker="|",
            markersize=10,
            color="#d62728",
            transform=ax.get_xaxis_transform(),
            label="failed",
        )
    _panel(ax, "trial number", history.objective, history.log, "optimisation history")
    return _png(figure)


def _panel(ax: Axes, xlabel: str, objective: str, log: bool, title: str) -> None:
    """The labels, ticks, grid and legend of a one-panel figure (x counts whole steps)."""
    ax.set_xlabel(xlabel, fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(objective + (" (log scale)" if log else ""), fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(fontsize=7, frameon=False)


CURVES_LIMIT = 1000
"""The all-trials panel draws at most this many curves (``trial_curves_data``)."""


def curve_sample(ranked: Sequence[int], numbers: Sequence[int], limit: int) -> list[int]:
    """At most ``limit`` of ``numbers`` (trial numbers), in order: the best quarter of
    ``limit`` from ``ranked`` (best first), then the others evenly spaced by number."""
    if len(numbers) <= limit:
        return sorted(numbers)
    present = set(numbers)
    keep = set([n for n in ranked if n in present][: limit // 4])
    rest = sorted(n for n in numbers if n not in keep)
    room = limit - len(keep)
    step = len(rest) / room if room else 0.0
    keep.update(rest[int(i * step)] for i in range(min(len(rest), room)))
    return sorted(keep)


def trial_curves_data(
    frame: pd.DataFrame, curves: Mapping[int, Sequence[float]], limit: int = CURVES_LIMIT
) -> TrialCurves:
    """The objective per epoch of the frame's COMPLETE and PRUNED trials (``curves``: trial
    number -> values, e.g. Optuna's intermediate values; it may hold only those drawn); at
    most ``limit`` of them (``curve_sample``). ``total``: the trials that ran an epoch."""
    objective = str(frame.attrs.get("objective", "value"))
    shown = frame[frame["state"].isin(["COMPLETE", "PRUNED"])]
    total = int((shown["epochs_run"].fillna(0) > 0).sum())
    numbers = [int(n) for n in shown["number"] if int(n) in curves and len(curves[int(n)])]
    total = max(total, len(numbers))
    ranked = [int(n) for n in frame.loc[frame["rank"].notna(), "number"]]  # best first
    numbers = curve_sample(ranked, numbers, limit)
    states = dict(zip(frame["number"].astype(int), frame["state"], strict=True))
    done = [_drawable(curves[n]) for n in numbers if states[n] == "COMPLETE"]
    pruned = [_drawable(curves[n]) for n in numbers if states[n] == "PRUNED"]
    best = _drawable(curves[ranked[0]]) if ranked and ranked[0] in curves else []
    flat = [v for c in done + pruned for v in c]
    return TrialCurves(objective, done, pruned, best, total, use_log_axis(flat))


@plain_text()
def plot_trial_curves(data: TrialCurves) -> bytes:
    """Every kept trial's objective per epoch in one panel: completed in blue, pruned in
    grey, the best trial in red. PNG bytes."""
    from matplotlib.collections import LineCollection

    figure = Figure(figsize=(7.2, 3.2), dpi=DPI)
    figure.subplots_adjust(left=0.1, right=0.98, bottom=0.15, top=0.91)
    ax = figure.add_subplot()
    for lines, color, label in (
        (data.pruned, "#999999", "pruned"),
        (data.completed, "#1f77b4", "completed"),
    ):
        segments = [list(enumerate(c)) for c in lines if c]
        if segments:
            ax.add_collection(
                LineCollection(segments, colors=color, linewidths=0.7, alpha=0.35, label=label)
            )
    if data.best:
        ax.plot(range(len(data.best)), data.best, color="#d62728", linewidth=1.6, label="best")
    ax.autoscale()
    if data.log:
        ax.set_yscale("log")
    _panel(ax, "epoch", data.objective, data.log, "validation curves of all trials")
    return _png(figure)

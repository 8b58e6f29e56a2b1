"""One self-contained HTML report: inline CSS, PNG images as data URIs, no external URL.

Every string that comes from the database reaches the page through Jinja2 with autoescape on.
The template only loops over ready-made strings; formatting happens here.
"""

from __future__ import annotations

import base64
import datetime as dt
import errno
import json
import math
import os
import shlex
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from reports._compare import compare, plot_comparison
from reports._frame import failures, frame_from_loaded, leaderboard, param_columns
from reports._plots import (
    learning_curves_data,
    optimization_history_data,
    plot_learning_curves,
    plot_optimization_history,
)
from reports._study import ReportError, StorageLike, load
from reports._summary import StudySummary, summary_from_loaded

LEADERBOARD_ROWS = 100
"""At most this many ranked trials are listed; the page says how many more there are."""

_SEARCH_SETTINGS = (
    "engine",
    "sampler",
    "pruner",
    "algorithm",
    "trials",
    "epochs",
    "patience",
    "seed",
    "max_failures",
)
_DATA_KEYS = (
    "source",
    "kind",
    "target",
    "task",
    "classes",
    "input_shape",
    "val_split",
    "test_split",
    "n_train",
    "n_val",
    "n_test",
    "num_words",
    "scaling",
    "fingerprint",
)
_DASH = "–"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def fmt(value: Any) -> str:
    """A cell's text: NA as a dash, floats to 4 significant digits, dicts as compact JSON."""
    if _missing(value):
        return _DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str, separators=(", ", ": "))
    return str(value)


def _params_text(row: Mapping[Any, Any], columns: Mapping[str, str]) -> str:
    parts = [
        f"{name}={fmt(row[column])}"
        for name, column in columns.items()
        if column in row and not _missing(row[column])
    ]
    return ", ".join(parts) or _DASH


def _duration(value: Any) -> str:
    return _DASH if _missing(value) else f"{float(value):.1f} s"


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _leaderboard_table(frame: pd.DataFrame, objective: str) -> dict[str, Any]:
    board = leaderboard(frame)
    params = param_columns(frame)
    # val_* columns nobody recorded (a study plain Optuna made) would be all dashes
    val_metrics = [c for c in frame.columns if c.startswith("val_") and board[c].notna().any()]
    shown_value = objective != "val_loss" or "val_loss" not in val_metrics
    metric_columns = (["value"] if shown_value else []) + val_metrics
    headers = ["rank", "trial"]
    headers += [objective if c == "value" else c for c in metric_columns]
    headers += ["train loss", "gap", "best epoch", "epochs run", "stopped", "param count"]
    headers += ["duration", "params"]
    rows = []
    for row in board.head(LEADERBOARD_ROWS).to_dict("records"):
        stopped = "early" if row["early_stopped"] is True else _DASH
        cells = [fmt(row["rank"]), fmt(row["number"])]
        cells += [fmt(row[c]) for c in metric_columns]
        cells += [fmt(row["loss"]), fmt(row["gap"]), fmt(row["best_epoch"])]
        cells += [fmt(row["epochs_run"]), stopped, fmt(row["param_count"])]
        cells += [_duration(row["duration_s"]), _params_text(row, params)]
        rows.append(cells)
    return {"headers": headers, "rows": rows, "hidden": max(0, len(board) - LEADERBOARD_ROWS)}


def _failures_table(frame: pd.DataFrame) -> list[list[str]]:
    rows = []
    params = param_columns(frame)
    for row in failures(frame).to_dict("records"):
        retry = _DASH if _missing(row["retry_of"]) else f"retry of {row['retry_of']}"
        rows.append(
            [
                fmt(row["number"]),
                str(row["state"]),
                str(row["reason"]),
                fmt(row["epochs_run"]),
                _duration(row["duration_s"]),
                retry,
                _params_text(row, params),
            ]
        )
    return rows


def _summary_rows(
    summary: StudySummary, generated_at: str, winner: Mapping[str, Any] | None = None
) -> list[tuple[str, str]]:
    counts = ", ".join(f"{n} {state.lower()}" for state, n in summary.counts.items() if n)
    rows = [
        ("study", summary.name),
        ("data", summary.data),
        ("task", summary.task),
        (
            "engine",
            summary.engine + ("" if summary.algorithm == "?" else f" ({summary.algorithm})"),
        ),
        ("objective", f"{summary.objective} ({summary.direction})"),
        ("trials", f"{summary.n_trials}" + (f": {counts}" if counts else "")),
    ]
    if summary.best_number is None:
        rows.append(("best trial", "no completed trial yet"))
    else:
        rows.append(("best trial", f"trial {summary.best_number}: {fmt(summary.best_value)}"))
        params = summary.best_params or {}
        rows.append(("best params", ", ".join(f"{k}={fmt(v)}" for k, v in params.items()) or _DASH))
        if winner and winner.get("trial") == summary.best_number:
            scores = ", ".join(
                f"{k.removeprefix('test_')} {fmt(v)}" for k, v in winner["test_metrics"].items()
            )
            rows.append(
                (
                    "test set",
                    f"{scores} (trial {summary.best_number}, "
                    f"{winner.get('n_test')} held-out samples)",
                )
            )
        rows.append(("export it", f"hpsearch export {shlex.quote(summary.name)} -o best.keras"))
    rows.append(("last activity", fmt(summary.last_activity)))
    rows.append(("generated", generated_at))
    return rows


def _settings_rows(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("target trials" if key == "trials" else key, fmt(settings[key]))
        for key in _SEARCH_SETTINGS
        if settings.get(key) is not None
    ]
    data = settings.get("data")
    if isinstance(data, Mapping):
        rows += [(f"data {key}", fmt(data[key])) for key in _DATA_KEYS if key in data]
        names = data.get("class_names")
        if isinstance(names, list) and names and data.get("task") != "regression":
            # The model's output k is the k-th class (text labels are encoded in this order).
            mapping = ", ".join(f"{k}={name}" for k, name in enumerate(names[:50]))
            rows.append(("data class outputs", mapping + (" ..." if len(names) > 50 else "")))
    for key in ("version", "created"):
        if key in settings:
            rows.append((f"hpsearch {key}" if key == "version" else key, fmt(settings[key])))
    return rows


def render_report(storage: StorageLike, study_name: str, top: int = 5) -> str:
    """The study's report as one self-contained HTML page (``top`` learning curves).

    Raises:
        StudyNotFound: no such study; the message lists the studies there.
        ValueError: ``top`` is not a positive int.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"`top` must be a positive int, but got {top!r}.")
    loaded = load(storage, study_name)
    frame = frame_from_loaded(loaded)
    summary = summary_from_loaded(loaded)
    # Optuna stores trial times as naive local time; say "generated" in local time too.
    generated_at = dt.datetime.now().astimezone().isoformat(sep=" ", timespec="seconds")

    curves = learning_curves_data(frame, top=top)
    history = optimization_history_data(frame)
    space = loaded.settings.get("space")
    context = {
        "title": f"hpsearch report: {summary.name}",
        "summary_rows": _summary_rows(summary, generated_at, loaded.winner),
        "settings_rows": _settings_rows(loaded.settings),
        "space_json": json.dumps(space, indent=2, default=str) if space else None,
        "n_complete": summary.counts.get("COMPLETE", 0),
        "leaderboard": _leaderboard_table(frame, summary.objective),
        "top": top,
        "curves_png": _png_uri(plot_learning_curves(curves)) if curves else None,
        "history_png": _png_uri(plot_optimization_history(history)) if history.numbers else None,
        "failures": _failures_table(frame),
    }
    return _environment().get_template("report.html.j2").render(context)


def write_report(storage: StorageLike, study_name: str, path: str | Path, top: int = 5) -> Path:
    """Render the report and write it to ``path`` atomically; return the path.

    The page goes to a temporary file beside ``path`` that then replaces it, so a reader
    never sees half a report, and a report that cannot be written leaves the old one as it
    was (ReportError naming the path). Missing parent directories are created.
    """
    target = Path(path)
    check_writable(target)
    return write_page(target, render_report(storage, study_name, top=top))


def write_page(target: Path, html: str) -> Path:
    """Write ``html`` to ``target`` atomically (see ``write_report``)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        # os.open with 0o666 lets the umask decide the mode, as a plain open() would.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise _unwritable(target, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(html)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise _unwritable(target, exc) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


def render_comparison(storage: StorageLike, names: Sequence[str]) -> str:
    """Several studies of the same data side by side, as one self-contained HTML page."""
    comparison = compare(storage, names)
    table = comparison.table()
    headers = [str(c) for c in table.columns]
    rows = [[fmt(v) for v in row] for row in table.itertuples(index=False)]
    winners = [
        (s.study, ", ".join(f"{k}={fmt(v)}" for k, v in (s.best_params or {}).items()) or _DASH)
        for s in comparison.studies
    ]
    generated_at = dt.datetime.now().astimezone().isoformat(sep=" ", timespec="seconds")
    context = {
        "title": f"hpsearch comparison: {', '.join(names)}",
        "data": comparison.data,
        "objective": f"{comparison.objective} ({comparison.direction})",
        "generated": generated_at,
        "headers": headers,
        "rows": rows,
        "winners": winners,
        "plot_png": _png_uri(plot_comparison(comparison)),
    }
    return _environment().get_template("compare.html.j2").render(context)


def write_comparison(storage: StorageLike, names: Sequence[str], path: str | Path) -> Path:
    """Render the comparison and write it to ``path`` atomically; return the path."""
    target = Path(path)
    check_writable(target)
    return write_page(target, render_comparison(storage, names))


def check_writable(path: str | Path) -> None:
    """Raise ReportError unless a report can be written at ``path`` (its folder can be made
    or written, the file replaced): checked before a search spends anything."""
    target = Path(path)
    try:
        if target.is_dir():
            raise ReportError(
                f"report {str(target)!r}: is a folder; give a file path (-o FILE.html)."
            )
        folder = target.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(folder))
        # Try it: permissions, read-only and special file systems all answer a real create.
        probe = folder / f".hpsearch.{os.getpid()}.{uuid.uuid4().hex[:8]}.probe"
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            # A folder that exists but takes no new files (/proc) answers "no such file".
            reason = "no new files can be made there" if exc.errno == errno.ENOENT else None
            raise type(exc)(exc.errno, reason or exc.strerror, str(folder)) from None
        probe.unlink(missing_ok=True)
        if len(target.name.encode()) > 255:
            raise OSError(36, "File name too long", target.name[:40] + "...")
    except OSError as exc:
        raise _unwritable(target, exc) from None


def _unwritable(target: Path, exc: OSError) -> ReportError:
    what = exc.strerror or type(exc).__name__
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(target) else ""
    shown = str(target) if len(str(target)) <= 120 else str(target)[:100] + "..."
    return ReportError(
        f"report {shown!r}: cannot be written: {what}{where}; the previous report, if any, "
        "is unchanged. Give another path with -o/--report."
    )

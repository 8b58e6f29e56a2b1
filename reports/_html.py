"""One self-contained HTML report: inline CSS, PNG images as data URIs, no external URL.

Every string that comes from the database reaches the page through Jinja2 with autoescape on.
The template only loops over ready-made strings; formatting happens here.
"""

from __future__ import annotations

import base64
import datetime as dt
import errno
import gc
import json
import os
import pickle
import shlex
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import jinja2
import pandas as pd
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial

from reports._analysis import (
    BARELY_LEARNED,
    MIN_EPOCHS,
    OVERFIT_EPOCHS,
    OVERFIT_RISE,
    STILL_IMPROVING,
    Diagnosis,
    Limits,
    NumericRange,
    diagnose,
    edge_hints,
    overfit_links,
    verdict_counts,
    verdict_hints,
)
from reports._compare import compare, plot_comparison
from reports._frame import (
    DASH,
    check_top,
    failures,
    fmt,
    frame_from_loaded,
    is_missing,
    leaderboard,
    param_columns,
    rank_trials,
)
from reports._importance import (
    PARALLEL_TOP,
    SLICE_MAX_TRIALS,
    completed,
    param_importances,
    plot_importance,
    plot_parallel,
    plot_params,
)
from reports._plots import (
    CURVES_LIMIT,
    curve_sample,
    learning_curves_data,
    optimization_history_data,
    plot_learning_curves,
    plot_optimization_history,
    plot_trial_curves,
    trial_curves_data,
)
from reports._study import (
    LoadedStudy,
    ReportError,
    ReportPathError,
    StorageLike,
    load,
    storage_url,
)
from reports._summary import StudySummary, summary_from_loaded
from search._storage import resume_command, storage_option

T = TypeVar("T")

LEADERBOARD_ROWS = 100
"""At most this many ranked trials are listed; the page says how many more there are."""

_SEARCH_SETTINGS = (
    "model",
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


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _params_text(row: Mapping[Any, Any], columns: Mapping[str, str]) -> str:
    parts = [
        f"{name}={fmt(row[column])}"
        for name, column in columns.items()
        if column in row and not is_missing(row[column])
    ]
    return ", ".join(parts) or DASH


def _duration(value: Any) -> str:
    return DASH if is_missing(value) else f"{float(value):.1f} s"


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _sort_key(value: Any) -> str:
    """The ``data-v`` of a cell: numbers as they are (the page's script sorts them as
    numbers), missing values empty (sorted last), anything else its text."""
    if is_missing(value):
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float):
        return repr(float(value))
    return fmt(value)


def _leaderboard_table(frame: pd.DataFrame, board: pd.DataFrame, objective: str) -> dict[str, Any]:
    params = param_columns(frame)
    # val_* columns nobody recorded (a study plain Optuna made) would be all dashes
    val_metrics = [c for c in frame.columns if c.startswith("val_") and board[c].notna().any()]
    shown_value = objective != "val_loss" or "val_loss" not in val_metrics
    metric_columns = (["value"] if shown_value else []) + val_metrics
    headers = ["rank", "trial"]
    headers += [objective if c == "value" else c for c in metric_columns]
    headers += ["train loss", "fit", "best epoch", "epochs run", "stopped", "param count"]
    headers += ["duration (s)", *params]
    rows = []
    for row in board.head(LEADERBOARD_ROWS).to_dict("records"):
        stopped = "early" if row["early_stopped"] is True else None
        values = [row["rank"], row["number"], *(row[c] for c in metric_columns)]
        values += [row["loss"], row["fit"], row["best_epoch"], row["epochs_run"], stopped]
        values += [row["param_count"], row["duration_s"], *(row[c] for c in params.values())]
        rows.append([(fmt(v), _sort_key(v)) for v in values])
    return {"headers": headers, "rows": rows, "hidden": max(0, len(board) - LEADERBOARD_ROWS)}


def _failures_table(frame: pd.DataFrame) -> list[list[str]]:
    rows = []
    params = param_columns(frame)
    for row in failures(frame).to_dict("records"):
        retry = DASH if is_missing(row["retry_of"]) else f"retry of {row['retry_of']}"
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
    summary: StudySummary,
    frame: pd.DataFrame,
    board: pd.DataFrame,
    winner: Mapping[str, Any],
    storage: StorageLike,
    searchable: bool = True,
) -> list[tuple[str, str]]:
    counts = ", ".join(f"{n} {state.lower()}" for state, n in summary.counts.items() if n)
    rows = [
        ("study", summary.name),
        (
            "engine",
            summary.engine + ("" if summary.algorithm == "?" else f" ({summary.algorithm})"),
        ),
        ("data", f"{summary.data} ({summary.task})" if summary.task != "?" else summary.data),
        ("objective", f"{summary.objective} ({summary.direction})"),
        ("trials", f"{summary.n_trials}" + (f": {counts}" if counts else "")),
    ]
    seconds = float(frame["duration_s"].sum(skipna=True)) if len(frame) else 0.0
    epochs = int(frame["epochs_run"].sum(skipna=True)) if len(frame) else 0
    rows.append(("compute", f"{_hours(seconds)} of training, {epochs} epochs"))
    if summary.best_number is None:
        rows.append(("winner", "no completed trial yet"))
    else:
        fit = board["fit"].iloc[0] if len(board) else None
        verdict = "" if is_missing(fit) else f"; fit: {fit}"
        rows.append(
            (
                "winner",
                f"trial {summary.best_number}: {summary.objective} "
                f"{fmt(summary.best_value)}{verdict}",
            )
        )
        params = summary.best_params or {}
        rows.append(("its params", ", ".join(f"{k}={fmt(v)}" for k, v in params.items()) or DASH))
        if winner and winner.get("trial") == summary.best_number:
            scores = ", ".join(
                f"{k.removeprefix('test_')} {fmt(v)}" for k, v in winner["test_metrics"].items()
            )
            rows.append(
                (
                    "test set",
                    f"{scores} ({winner.get('n_test')} held-out samples, scored once)",
                )
            )
    url = storage_url(storage)
    if not searchable:  # no hpsearch settings to go on with or to train again from
        rows.append(("made by", "another program than hpsearch: read here, not resumed"))
        return rows
    rows.append(("resume it", resume_command(summary.name, url)))
    if summary.best_number is not None:
        where = storage_option(url)
        rows.append(
            ("export it", f"hpsearch export {shlex.quote(summary.name)}{where} -o best.keras")
        )
    return rows


def _hours(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _settings_rows(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    labels = {"trials": "target trials", "model": "model builder"}
    rows = [
        (labels.get(key, key), fmt(settings[key]))
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


DETAIL_TRIALS = 500
"""The report reads the history of this many best trials (and of every running one): the
leaderboard, the learning curves and the diagnosis use no others; the page says so."""
REPORT_LIGHT = ("epochs_run", "duration_s", "fail_reason")
"""What the report reads of the other trials' records: compute spent, why they stopped."""
FAILURE_ROWS = 100
"""The pruned and failed table lists this many, the latest; the page says how many more."""
DIAGNOSIS_ROWS = 15
"""The diagnosis table lists the verdicts of this many best trials (the counts cover all)."""
HINT_TOP = 5
"""Edge hints look at this many best trials."""
HINT_VERDICTS = 10
"""Verdict hints look at the verdicts of this many best trials."""


def _diagnoses(board: pd.DataFrame) -> list[tuple[int, int, Diagnosis]]:
    """(rank, trial, diagnosis) of every ranked trial with a history, best first."""
    histories = board.attrs.get("histories") or {}
    out = []
    for rank, number in zip(board["rank"].astype(int), board["number"].astype(int), strict=True):
        if number in histories:
            out.append((int(rank), int(number), diagnose(histories[number])))
    return out


def _ranges(trials: Sequence[FrozenTrial]) -> dict[str, NumericRange]:
    ranges: dict[str, NumericRange] = {}
    for trial in trials:
        for name, dist in trial.distributions.items():
            if isinstance(dist, IntDistribution | FloatDistribution):
                ranges[name] = NumericRange(
                    float(dist.low),
                    float(dist.high),
                    bool(dist.log),
                    isinstance(dist, IntDistribution),
                )
    return ranges


def _limits(settings: Mapping[str, Any]) -> Limits:
    """What the study's builder refuses, per param: known for the built-in Dense builder
    (its vocabulary), not for a builder of the user's own."""
    from spaces import DENSE

    if settings.get("model", DENSE.name) != DENSE.name or DENSE.vocabulary is None:
        return {}
    return {
        name: (rule.minimum, rule.maximum)
        for name, rule in DENSE.vocabulary.rules.items()
        if rule.kind != "name"
    }


def _objective_curves(loaded: LoadedStudy, frame: pd.DataFrame) -> dict[int, list[float]]:
    """Trial number -> the objective per epoch: Optuna's intermediate values, else the
    record's history of the objective."""
    histories = frame.attrs.get("histories") or {}
    curves: dict[int, list[float]] = {}
    for trial in loaded.trials:
        if trial.intermediate_values:
            steps = sorted(trial.intermediate_values)
            curves[trial.number] = [float(trial.intermediate_values[k]) for k in steps]
        elif trial.number in histories and loaded.objective in histories[trial.number]:
            curves[trial.number] = list(histories[trial.number][loaded.objective])
    return curves


def _what_mattered(loaded: LoadedStudy) -> dict[str, Any]:
    direction, objective = loaded.direction, loaded.objective
    importance = param_importances(loaded.trials, direction)
    n_done = len(completed(loaded.trials))
    slice_png = plot_params(loaded.trials, direction, objective)
    parallel_png = plot_parallel(loaded.trials, direction, objective)
    sampled = (
        f"The per-parameter plots draw {SLICE_MAX_TRIALS} of the {n_done} completed trials "
        f"(the best {SLICE_MAX_TRIALS // 4} and the rest at random)."
        if n_done > SLICE_MAX_TRIALS
        else ""
    )
    return {
        "importance": None
        if importance is None
        else {
            "evaluator": importance.evaluator,
            "n_trials": importance.n_trials,
            "of": importance.of,
            "rows": [(name, f"{value:.2f}") for name, value in importance.values.items()],
            "left_out": ", ".join(importance.left_out),
            "png": _png_uri(plot_importance(importance)),
        },
        "slice_png": _png_uri(slice_png) if slice_png else None,
        "parallel_png": _png_uri(parallel_png) if parallel_png else None,
        "parallel_top": min(PARALLEL_TOP, n_done),
        "sampled": sampled,
    }


def _fit_section(board: pd.DataFrame, loaded: LoadedStudy) -> dict[str, Any]:
    diagnoses = _diagnoses(board)
    counts = verdict_counts([d.verdict for _, _, d in diagnoses])
    params_by_number = {t.number: t.params for t in loaded.trials}
    links = overfit_links([(params_by_number.get(n, {}), d.verdict) for _, n, d in diagnoses])
    top_numbers = [n for _, n, _ in diagnoses[:HINT_TOP]]
    hints = verdict_hints([d.verdict for _, _, d in diagnoses[:HINT_VERDICTS]])
    hints += edge_hints(
        [params_by_number.get(n, {}) for n in top_numbers],
        _ranges([t for t in loaded.trials if t.number in set(top_numbers)]),
        _limits(loaded.settings),
    )
    ranked = len(board)
    return {
        "sampled": (
            f"Verdicts of the best {len(diagnoses)} of the {ranked} completed trials."
            if len(diagnoses) < ranked
            else ""
        ),
        "counts": [(verdict, n) for verdict, n in counts.items() if n],
        "rows": [
            (str(rank), str(number), d.verdict, d.reason)
            for rank, number, d in diagnoses[:DIAGNOSIS_ROWS]
        ],
        "n": len(diagnoses),
        "links": [link.text for link in links],
        "hints": hints,
        "thresholds": [
            f"overfit: the validation loss rose at least {OVERFIT_RISE:.0%} above its minimum "
            f"over at least {OVERFIT_EPOCHS} epochs after it, while the training loss rose "
            "less than half as much; unstable: the training loss rose with it;",
            f"underfit: the training loss fell less than {BARELY_LEARNED:.0%} from the first "
            f"epoch to the best, or the validation loss still fell more than "
            f"{STILL_IMPROVING:.0%} per epoch over the last {MIN_EPOCHS} epochs and was "
            "lowest at the last one;",
            f"good fit: neither; too short: fewer than {MIN_EPOCHS} epochs.",
        ],
    }


def in_parallel(compute: Callable[[], T]) -> Callable[[], T]:
    """Start ``compute`` in a forked child process and return what gives its result.

    On 2 cores this draws Optuna's plots while this process draws the others. Only where a
    fork is safe: a POSIX system, called from a process with no other thread (a live report,
    rendered by the run's background thread, computes here). A child that fails or dies
    leaves the work to this process, so its errors are raised here, where they belong.
    """
    if (
        not hasattr(os, "fork")
        or threading.active_count() > 1
        or threading.current_thread() is not threading.main_thread()
    ):
        value = compute()
        return lambda: value
    read, write = os.pipe()
    # The objects read so far go to the collector's permanent generation: a collection in
    # the child would otherwise touch, and so copy, every page the two processes share.
    gc.freeze()
    try:
        pid = os.fork()
    except OSError:
        gc.unfreeze()
        os.close(read)
        os.close(write)
        value = compute()
        return lambda: value
    if pid == 0:  # the child: compute, send, and leave without any teardown
        code = 0
        try:
            os.close(read)
            payload = pickle.dumps(compute(), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write, "wb") as out:
                out.write(payload)
        except BaseException:
            code = 1
        os._exit(code)
    gc.unfreeze()
    os.close(write)

    def result() -> T:
        with os.fdopen(read, "rb") as source:
            payload = source.read()
        _, status = os.waitpid(pid, 0)
        if status == 0 and payload:
            try:
                value: T = pickle.loads(payload)
                return value
            except Exception:
                pass
        return compute()

    return result


def _report_select(
    rows: list[tuple[int, str, float | None]], direction: str
) -> tuple[set[int], list[int]]:
    """What the report reads in full (``reports._read``): the best ``DETAIL_TRIALS`` and
    the running trials; and the trials whose curve the all-trials panel draws."""
    ranks = rank_trials(rows, direction)
    ranked = sorted(ranks, key=ranks.__getitem__)
    detail = set(ranked[:DETAIL_TRIALS]) | {n for n, state, _ in rows if state == "RUNNING"}
    drawable = [n for n, state, _ in rows if state in ("COMPLETE", "PRUNED")]
    return detail, curve_sample(ranked, drawable, CURVES_LIMIT)


def render_report(
    storage: StorageLike, study_name: str, top: int = 5, *, live: float | None = None
) -> str:
    """The study's report as one self-contained HTML page (``top`` learning curves).

    ``live``: the study is being searched by the process writing this page, which rewrites
    it; the page says so and reloads itself every ``live`` seconds.

    Raises:
        StudyNotFound: no such study; the message lists the studies there.
        ConfigError: ``top`` is not a positive int.
    """
    check_top(top)
    loaded = load(storage, study_name, _report_select, light=REPORT_LIGHT)
    # What mattered (Optuna's importance and plots: the slowest part) is drawn beside the rest.
    mattered = in_parallel(lambda: _what_mattered(loaded))
    frame = frame_from_loaded(loaded)
    board = leaderboard(frame)  # every ranked trial, with its fit verdict
    summary = summary_from_loaded(loaded)
    # Optuna stores trial times as naive local time; say "generated" in local time too.
    generated_at = dt.datetime.now().astimezone().isoformat(sep=" ", timespec="seconds")

    curves = learning_curves_data(frame, top=min(top, DETAIL_TRIALS))
    all_curves = trial_curves_data(frame, _objective_curves(loaded, frame))
    history = optimization_history_data(frame)
    failures_rows = _failures_table(frame)
    space = loaded.settings.get("space")
    settings_rows = _settings_rows(loaded.settings)
    settings_rows.append(("last activity", fmt(summary.last_activity)))
    context = {
        "title": f"hpsearch report: {summary.name}",
        "generated": generated_at,
        "live": live,
        "running": summary.counts.get("RUNNING", 0),
        "gone": frame.attrs["gone"],
        "study_name": summary.name,
        "storage_flag": storage_option(storage_url(storage)),
        "study_arg": shlex.quote(summary.name),
        "summary_rows": _summary_rows(
            summary, frame, board, loaded.winner, storage, searchable=bool(loaded.settings)
        ),
        "settings_rows": settings_rows,
        "space_json": json.dumps(space, indent=2, default=str) if space else None,
        "objective": summary.objective,
        "direction": summary.direction,
        "leaderboard": _leaderboard_table(frame, board, summary.objective),
        "top": top,
        "curves_png": _png_uri(plot_learning_curves(curves)) if curves else None,
        "all_curves_png": _png_uri(plot_trial_curves(all_curves))
        if all_curves.completed or all_curves.pruned
        else None,
        "all_curves_note": (
            f"{len(all_curves.completed) + len(all_curves.pruned)} of {all_curves.total} "
            "trials drawn (the best completed ones and the rest evenly by trial number)."
            if len(all_curves.completed) + len(all_curves.pruned) < all_curves.total
            else ""
        ),
        "fit": _fit_section(board, loaded),
        "history_png": _png_uri(plot_optimization_history(history))
        if history.numbers or history.pruned_numbers
        else None,
        "history_log": history.log,
        "failures": failures_rows[-FAILURE_ROWS:],
        "failures_hidden": max(0, len(failures_rows) - FAILURE_ROWS),
    }
    context["mattered"] = mattered()  # last: drawn meanwhile by the child process
    return _environment().get_template("report.html.j2").render(context)


def write_report(
    storage: StorageLike,
    study_name: str,
    path: str | Path,
    top: int = 5,
    *,
    live: float | None = None,
) -> Path:
    """Render the report and write it to ``path`` atomically; return the path.

    The page goes to a temporary file beside ``path`` that then replaces it, so a reader
    never sees half a report, and a report that cannot be written leaves the old one as it
    was (ReportError naming the path). Missing parent directories are created.
    """
    check_writable(path)  # as given: Path("") would read as the folder "."
    target = Path(path)
    return write_page(target, render_report(storage, study_name, top=top, live=live))


def write_page(target: Path, html: str, page: str = "report") -> Path:
    """Write ``html`` to ``target`` atomically (see ``write_report``); a symbolic link is
    followed (the file it names is replaced, not the link). ``page`` names it in an error."""
    target = _followed(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        # os.open with 0o666 lets the umask decide the mode, as a plain open() would.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise _unwritable(target, exc, page) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(html)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise _unwritable(target, exc, page) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


COMPARISON = "comparison page"


def render_comparison(storage: StorageLike, names: Sequence[str]) -> str:
    """Several studies of the same data side by side, as one self-contained HTML page."""
    comparison = compare(storage, names)
    table = comparison.table()
    headers = [str(c) for c in table.columns]
    rows = [[fmt(v) for v in row] for row in table.itertuples(index=False)]
    winners = [
        (s.study, ", ".join(f"{k}={fmt(v)}" for k, v in (s.best_params or {}).items()) or DASH)
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
    check_writable(path, COMPARISON)  # as given: Path("") would read as the folder "."
    target = Path(path)
    return write_page(target, render_comparison(storage, names), COMPARISON)


# What an HTML page starts with (after blanks): an existing file that does not is never
# replaced by a report (a database or a data file given as -o by mistake).
_HTML_STARTS = (b"<!doctype html", b"<html", b"<!--")


def _followed(target: Path) -> Path:
    """``target``, or the file a symbolic link there points to."""
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def check_writable(path: str | Path, page: str = "report") -> None:
    """Raise ReportPathError (bad input), or ReportError if the file system refuses,
    unless a report (or another ``page``) can be written at ``path`` (its folder can be made
    or written, the file replaced): checked before a search spends anything.

    Only a page is replaced: an existing file that is not a regular file (a device, a FIFO)
    or not an HTML page (the study's database, a data file) is refused, not overwritten.
    """
    if not str(path).strip():
        raise ReportPathError(f"{page} '': an empty path; give a file path (-o FILE.html).")
    given = Path(path)
    target = _followed(given)
    try:
        if target.is_dir():
            raise ReportPathError(
                f"{page} {str(given)!r}: is a folder; give a file path (-o FILE.html)."
            )
        if target.exists() and not target.is_file():
            raise ReportPathError(
                f"{page} {str(given)!r}: is not a regular file (a device or a pipe); give a "
                "path for an .html file with -o/--report."
            )
        if target.is_file() and not _replaceable(target):
            raise ReportPathError(
                f"{page} {str(given)!r}: that file exists and is not an HTML page (a database "
                "or a data file?); it is left as it is. Give another path with -o/--report."
            )
        probe_folder(target)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:  # no file can have that path: bad input
            shown = str(given) if len(str(given)) <= 80 else f"{str(given)[:60]}..."
            raise ReportPathError(
                f"{page} {shown!r}: file name too long (at most 255 bytes a name, 4096 a "
                "path); give a shorter one with -o/--report."
            ) from None
        raise _unwritable(target, exc, page) from None


def probe_folder(target: Path) -> None:
    """Raise OSError (naming the folder) unless a file named ``target`` can be made: its
    folder exists or can be made, and takes a new file of that name."""
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


def _replaceable(target: Path) -> bool:
    """Whether an existing file may be replaced by a page: empty, or an HTML page."""
    try:
        with open(target, "rb") as handle:
            head = handle.read(512).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    except PermissionError:
        return False  # what it is cannot be seen: it is not replaced
    return not head or head.startswith(_HTML_STARTS)


def _unwritable(target: Path, exc: OSError, page: str = "report") -> ReportError:
    what = exc.strerror or type(exc).__name__
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(target) else ""
    shown = str(target) if len(str(target)) <= 120 else str(target)[:100] + "..."
    return ReportError(
        f"{page} {shown!r}: cannot be written: {what}{where}; the previous {page}, if any, "
        "is unchanged. Give another path with -o/--report."
    )

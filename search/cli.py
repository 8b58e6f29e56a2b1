"""The ``hpsearch`` command. One function per command; data on stdout, progress on stderr.

Only ``describe`` imports TensorFlow in the command's own process; ``run``, ``resume`` and
``worker`` train in worker processes (``search._worker``); ``--help``, ``studies``,
``trials``, ``report`` and ``spaces`` never import it.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from click.exceptions import NoArgsIsHelpError

# Only leaves here: `hpsearch --help` must not import Optuna, SQLAlchemy or NumPy.
from search._defaults import DEFAULT_STORAGE, STORAGE_ENV
from search._errors import DEBUG_ENV, SearchInterrupted, debugging, describe_error
from search.engines._registry import ENGINES

SAMPLERS = ENGINES["optuna"].options["sampler"]
PRUNERS = ENGINES["optuna"].options["pruner"]
ALGORITHMS = ENGINES["kerastuner"].options["algorithm"]

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = click.Choice(["table", "csv", "json", "yaml"])
WIDEST_CELL = 40  # characters of a value a table shows; csv, json and yaml show all


def _handle_errors(func: F) -> F:
    """The one handler: any error becomes one line on stderr and its exit code.

    hpsearch's errors (``search._errors``; every package's errors belong to it) exit with
    their kind's code (bad input 2, runtime 1, interrupted 130); a file-system error names
    the file; anything else is a bug and says how to see its traceback (``--debug`` or
    ``HPSEARCH_DEBUG=1``, which shows the traceback of every error). Every line has the
    storage URL's secrets masked.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        url = kwargs.get("storage") or os.environ.get(STORAGE_ENV)
        try:
            return func(*args, **kwargs)
        except BrokenPipeError:
            # The reader went away (`hpsearch trials NAME | head`): say nothing more, as a
            # command killed by SIGPIPE would, and send what is left to nowhere.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except KeyboardInterrupt:
            if debugging():
                raise
            click.echo(_interrupted(kwargs.get("study"), url), err=True)
            sys.exit(130)
        except Exception as exc:
            if debugging():
                raise
            if _was_interrupted():
                # Ctrl-C while a module was imported leaves it half made: what imports it
                # next fails (ImportError, NameError). The interrupt is what happened.
                click.echo(_interrupted(kwargs.get("study"), url), err=True)
                sys.exit(130)
            from search._storage import redact

            message, code = describe_error(exc)
            # A search stopped by Ctrl-C or SIGTERM is not an error: its line says so itself.
            prefix = "" if isinstance(exc, SearchInterrupted) else "error: "
            click.echo(f"{prefix}{redact(message, url)}", err=True)
            sys.exit(code)

    return cast(F, wrapper)


def _was_interrupted() -> bool:
    """Whether Ctrl-C or SIGTERM reached this command (``_interrupt``)."""
    engines = sys.modules.get("search.engines._base")
    return engines is not None and engines.stop_requested.is_set()


def _interrupted(study: Any, url: str | None) -> str:
    """What an interrupt says that the search itself did not report (one that came while
    the command started, or stopped a command that only reads): what is kept and how to go
    on, for the command that was interrupted."""
    context = click.get_current_context()
    command, path = context.command.name, context.command_path
    if command == "run":  # run's own search reports an interrupt itself: this is before it
        return str(SearchInterrupted.before_search(study if isinstance(study, str) else None))
    if command in ("resume", "worker") and isinstance(study, str):
        try:
            from search._storage import resume_command

            again = resume_command(study, url, command)
        except Exception:  # interrupted while Optuna or SQLAlchemy was imported: half made
            import shlex

            shown = " --storage URL" if url and url != DEFAULT_STORAGE else ""
            again = f"hpsearch {command} {shlex.quote(study)}{shown}"
        return str(SearchInterrupted.going_on(study, again))
    return f"`{path}` interrupted: nothing stored was changed."


def _storage_option(func: F) -> F:
    return click.option(
        "--storage",
        envvar=STORAGE_ENV,
        default=None,
        show_envvar=True,
        help=f"Database URL [default: {DEFAULT_STORAGE}].",
    )(func)


class _Workers(click.ParamType):
    """``--workers N`` (N >= 1) or ``auto``."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "auto" or isinstance(value, int):
            return value
        try:
            count = int(value)
        except ValueError:
            count = 0
        if count < 1:
            self.fail(f"expected a number >= 1 or 'auto'; got {value!r}.", param, ctx)
        return count


def _worker_options(func: F) -> F:
    """--workers, --recycle-after, --max-worker-memory: shared by run, resume and worker."""
    func = click.option(
        "--max-worker-memory",
        type=click.FloatRange(min=0),
        default=4096,
        show_default=True,
        help="MiB of resident memory past which a worker is replaced by a fresh process "
        "(0: never).",
    )(func)
    func = click.option(
        "--recycle-after",
        type=click.IntRange(min=0),
        default=50,
        show_default=True,
        help="Trials after which a worker is replaced by a fresh process (0: never).",
    )(func)
    return click.option(
        "--workers",
        type=_Workers(),
        default=1,
        show_default=True,
        help="Worker processes on this machine; 'auto': one per core.",
    )(func)


def _live_options(func: F) -> F:
    """--report-every, --report-seconds: the report kept current while run/resume runs."""
    func = click.option(
        "--report-seconds",
        type=click.FloatRange(min=0),
        default=30,
        show_default=True,
        help="Rewrite the report at most this many seconds apart while the search runs; "
        "the page reloads itself as often (0: not by time).",
    )(func)
    return click.option(
        "--report-every",
        type=click.IntRange(min=0),
        default=10,
        show_default=True,
        help="Rewrite the report after this many finished trials (0: not by count; both 0: "
        "only at the end).",
    )(func)


def _quiet_logs() -> None:
    """Keep third-party chatter off the terminal: our progress says what happens."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)


def entry() -> None:
    """The ``hpsearch`` command: ``main``, then exit without the interpreter's teardown.

    Everything is written and closed by then (reports atomically, the storage's connections,
    the worker processes); tearing down pandas, matplotlib and thousands of read trials
    object by object took a second of a report's three on a 10,000-trial study.
    """
    code: int = 0
    # SIGTERM (a service manager stopping the command) stops it as Ctrl-C does, whatever it
    # is doing: the running trials are stored as interrupted, the warm workers stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    sys.unraisablehook = _unraisable
    try:
        code = _main()
    except SystemExit as exc:
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is not None:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:  # one that came before a command caught it (click parsing)
        code = 130
    # Nothing is left to interrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # started with it closed
            continue
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said there
            code = code or 1
    os._exit(code)


def _main() -> int:
    """``main`` with click's own errors (an unknown option or command, a value of the wrong
    type) as one line naming the command and its help, as hpsearch's own errors are, in
    place of click's usage block; exit code 2 as click gives them."""
    try:
        returned = main.main(standalone_mode=False)
    except NoArgsIsHelpError as exc:  # `hpsearch` alone, `hpsearch spaces` alone: the help
        exc.show()
        return exc.exit_code
    except click.ClickException as exc:
        context = getattr(exc, "ctx", None)
        path = context.command_path if context is not None else _command_path(sys.argv[1:])
        message = " ".join(exc.format_message().split())
        if isinstance(exc, click.NoSuchOption) and context is not None:
            message = _stored_setting(exc.option_name, context.command.name) or message
        if isinstance(exc, click.UsageError):
            stop = "" if message.endswith((".", "?", "!", "?)", ".)")) else "."
            message = f"{path}: {message}{stop} See `{path} --help`."
        click.echo(f"error: {message}", err=True)
        return exc.exit_code
    except click.Abort:  # Ctrl-C while click read the command line: nothing was started
        return 130
    # `--help` and `--version` return their exit code; commands return nothing.
    return returned if isinstance(returned, int) else 0


def _stored_setting(option: str, command: str | None) -> str | None:
    """Why ``resume`` or ``worker`` has no option ``run`` has (``--epochs``): the study keeps
    its settings; other ones make a new study."""
    if command not in ("resume", "worker"):
        return None
    if option == "--study":
        return (
            f"{option}: `hpsearch {command}` takes the study's name as its argument: "
            f"`hpsearch {command} NAME`."
        )
    if option in ("--report", "--no-report", "--report-every", "--report-seconds"):
        return (
            f"{option}: `hpsearch worker` writes no report; `hpsearch report NAME -o "
            "FILE` writes one, from anywhere, at any time."
        )
    if option == "--trials":
        return (
            f"{option}: `hpsearch worker` works toward the study's stored target; "
            "`hpsearch resume NAME --trials N` sets another, which every worker follows."
        )
    run = main.commands["run"]
    if not any(option in param.opts for param in run.params):
        return None
    return (
        f"{option} is a setting stored with the study, which `hpsearch {command}` goes on "
        f"with; other settings make a new study: `hpsearch run --study NEW_NAME ... {option} "
        "VALUE`."
    )


def _command_path(args: list[str]) -> str:
    """``hpsearch`` and the (sub)commands named in ``args``, for an error click raised
    before it made the command's context (an option missing its value)."""
    names, command = ["hpsearch"], cast(click.Command, main)
    for arg in args:
        if arg.startswith("-"):
            continue
        if not isinstance(command, click.Group) or arg not in command.commands:
            break
        command = command.commands[arg]
        names.append(arg)
    return " ".join(names)


def _unraisable(unraisable: Any) -> None:
    """An interrupt that landed in a garbage-collection callback is acted on later (see
    ``_interrupt``), not printed as a traceback; anything else is printed as Python does."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        return
    sys.__unraisablehook__(unraisable)


def _interrupt(signum: int, frame: Any) -> None:
    from search.engines._base import request_stop, stop_requested

    pool = sys.modules.get("search._pool")
    if stop_requested.is_set() or (pool is not None and pool.signal_stopped.is_set()):
        # A second Ctrl-C: the command is already stopping, storing what ran and saying how
        # to go on; raised again, it would cut that short wherever it landed (closing the
        # database, in the middle of the line that names the command).
        return
    # Also remembered: raised inside a garbage-collection callback, the KeyboardInterrupt
    # would be printed and lost, and the pool's loop acts on what is remembered.
    request_stop()
    raise KeyboardInterrupt


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hpsearch")
@click.option(
    "--debug",
    is_flag=True,
    help=f"Show the traceback of an error (also: {DEBUG_ENV}=1), for bug reports.",
)
def main(debug: bool) -> None:
    """Hyperparameter search for Keras models: Optuna or KerasTuner trials with early
    stopping and pruning, every epoch in a database, resumable studies, ranked HTML
    reports."""
    if debug:
        os.environ[DEBUG_ENV] = "1"


@main.command()
@click.option(
    "--data",
    help="A built-in data set (`hpsearch datasets`: digits, mnist, imdb, ...) or a .csv/.npz file.",
)
@click.option("--space", default=None, help="Preset (`hpsearch spaces`) or YAML file [mlp].")
@click.option(
    "--trials", type=click.IntRange(min=1), default=None, help="Finished trials to reach [30]."
)
@click.option("--study", default=None, help="Study name [default: DATA-SPACE].")
@_storage_option
@click.option(
    "--engine",
    type=click.Choice(sorted(ENGINES)),
    default=None,
    help="What proposes the points: Optuna or KerasTuner [optuna].",
)
@click.option(
    "--sampler", type=click.Choice(SAMPLERS), default=None, help="Optuna's sampler [tpe]."
)
@click.option(
    "--pruner", type=click.Choice(PRUNERS), default=None, help="Optuna's pruner [percentile]."
)
@click.option(
    "--algorithm",
    type=click.Choice(ALGORITHMS),
    default=None,
    help=f"KerasTuner's oracle [{ALGORITHMS[0]}].",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="Max epochs per trial [50]."
)
@click.option(
    "--patience", type=click.IntRange(min=0), default=None, help="Early stopping patience [5]."
)
@click.option("--objective", default=None, help="Validation metric to optimise [val_loss].")
@click.option(
    "--direction",
    type=click.Choice(["minimize", "maximize"]),
    default=None,
    help="[default: from the objective: minimize losses and errors, maximize others]",
)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None, help="[default: 0]")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="Stop after SECONDS.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False),
    default=None,
    help="Report path [STUDY-report.html].",
)
@click.option("--target", default=None, help="Label column of a CSV file.")
@click.option("--task", type=click.Choice(["binary", "multiclass", "regression"]), default=None)
@click.option(
    "--val-split",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="[0.2]",
)
@click.option(
    "--test-split",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    help="Hold out this part to score the winner on [0.0; Keras' data sets have their own].",
)
@click.option(
    "--num-words",
    type=click.IntRange(min=4),
    default=None,
    help="imdb/reuters: multi-hot over the most frequent N words [10000].",
)
@click.option(
    "--max-failures",
    type=click.IntRange(min=1),
    default=None,
    help="Failed trials in a row that stop the search [5].",
)
@click.option(
    "--model",
    default=None,
    metavar="MODULE:FUNCTION",
    help="Your own model builder: called with (params, data_spec), returns a compiled "
    "keras.Model [the built-in Dense builder].",
)
@click.option(
    "--keep-top",
    type=click.IntRange(min=0),
    default=None,
    help="Checkpoints of the best trials kept on disk, for `export` [3; 0: none].",
)
@click.option("--no-report", is_flag=True, help="Do not write the report.")
@_live_options
@_worker_options
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@_handle_errors
def run(quiet: bool, report: str | None, no_report: bool, **options: Any) -> None:
    """Run a search (or continue the study of the same name) and write its report.

    Prints the report's path on stdout.
    """
    _check_report(report, no_report)
    _quiet_logs()
    import search

    result = search.run(
        report=report, write_report=not no_report, progress=_progress(quiet), **options
    )
    _finish(result, quiet, options)


@main.command()
@click.argument("study")
@_storage_option
@click.option(
    "--trials", type=click.IntRange(min=1), default=None, help="New target of finished trials."
)
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="Stop after SECONDS.")
@click.option("--report", type=click.Path(dir_okay=False), default=None, help="Report path.")
@click.option("--no-report", is_flag=True, help="Do not write the report.")
@_live_options
@_worker_options
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@_handle_errors
def resume(
    study: str,
    report: str | None,
    no_report: bool,
    quiet: bool,
    **options: Any,
) -> None:
    """Continue STUDY with the settings stored in it."""
    _check_report(report, no_report)
    _quiet_logs()
    import search

    result = search.resume(
        study, report=report, write_report=not no_report, progress=_progress(quiet), **options
    )
    _finish(result, quiet, options)


@main.command()
@click.argument("study")
@_storage_option
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="Stop after SECONDS.")
@_worker_options
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@_handle_errors
def worker(study: str, quiet: bool, **options: Any) -> None:
    """Join STUDY (created by `hpsearch run` anywhere) and train its trials until it holds
    its target, beside any number of workers on any number of machines.

    The data is loaded on this machine and must match the study's (same fingerprint).
    Writes no report; prints the study's summary on stderr.
    """
    _quiet_logs()
    import search

    result = search.work(study, progress=_progress(quiet), **options)
    _finish(result, quiet, options, "worker")


def _progress(quiet: bool) -> Any:
    from search._progress import NullProgress, RichProgress

    return NullProgress() if quiet else RichProgress()


def _check_report(report: str | None, no_report: bool) -> None:
    if report is not None and no_report:
        from search._errors import ConfigError

        raise ConfigError(
            f"--report {report} and --no-report ask for opposite things; give one of them."
        )


def _finish(result: Any, quiet: bool, options: dict[str, Any], command: str = "resume") -> None:
    if not quiet:
        best = (
            "no completed trial yet"
            if result.best_number is None
            else f"best trial {result.best_number} ({result.best_value:.4g})"
        )
        how = {
            "target": "reached its target",
            "timeout": "stopped at the timeout",
            "workers": "stopped before its target (its workers stopped)",
        }.get(result.stopped, "had already reached its target")
        where = f"; report: {result.report}" if result.report else ""
        # Past the target: it was lowered while trials ran (`resume --trials`), and they
        # finished.
        count = (
            f"{result.finished}/{result.target} finished"
            if result.finished <= result.target or result.stopped != "target"
            else f"{result.finished} finished (the target, {result.target}, was lowered while "
            "trials ran)"
        )
        click.echo(f"study {result.study} {how}: {count}, {best}{where}", err=True)
        timeout = options.get("timeout")
        if result.stopped == "timeout" and not result.finished_now and timeout is not None:
            # The deadline counts from the study being ready; a worker's start-up (importing
            # TensorFlow) is inside it, and no trial starts after it.
            from search._storage import resolve_url, resume_command

            again = resume_command(result.study, resolve_url(options.get("storage")), command)
            click.echo(
                f"--timeout {timeout:g}: no trial started in time (a worker takes a few seconds "
                f"to start, importing TensorFlow); `{again} --timeout SECONDS` with more "
                "seconds trains some.",
                err=True,
            )
    if result.report:
        click.echo(result.report)


@main.command()
@_storage_option
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@_handle_errors
def studies(storage: str | None, fmt: str) -> None:
    """List the studies in a storage."""
    import pandas as pd

    from reports import list_studies
    from search._storage import mask_url, resolve_url

    url = resolve_url(storage)
    rows = []
    summaries = list_studies(url)
    for s in summaries:
        rows.append(
            {
                # The most useful first: a narrow terminal shows the first columns only.
                "study": s.name,
                "data": s.data,
                "trials": s.n_trials,
                "best": s.best_value,
                "engine": s.engine,
                "algorithm": s.algorithm,
                **{state.lower(): n for state, n in s.counts.items()},
                "task": s.task,
                "last_activity": s.last_activity,
                # Running trials whose worker on this machine is gone: a note under the
                # table, a field of each study in the formats for programs.
                **({} if fmt == "table" else {"gone": list(s.gone)}),
            }
        )
    frame = pd.DataFrame(rows)
    from reports._study import missing_sqlite_file

    absent = missing_sqlite_file(url)
    # A misspelt file name reads as "none yet" too: say which file was looked for.
    where = f" (no file {str(absent)!r} yet)" if absent is not None else ""
    _emit(frame, fmt, empty=f"no studies yet in {mask_url(url)}{where}")
    if fmt == "table":
        for s in summaries:
            _note_gone(s.name, s.gone, url, named=True)


@main.command()
@click.argument("study")
@_storage_option
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.option("--top", type=click.IntRange(min=1), default=None, help="Only the best K trials.")
@click.option(
    "--all", "all_trials", is_flag=True, help="Also list pruned, failed and running trials."
)
@_handle_errors
def trials(study: str, storage: str | None, fmt: str, top: int | None, all_trials: bool) -> None:
    """Print STUDY's trials ranked by the objective (validation loss by default)."""
    from reports import leaderboard, trials_frame
    from search._storage import resolve_url

    # The best K alone are read when only they are shown (fast on a large study).
    frame = trials_frame(resolve_url(storage), study, top=None if all_trials else top)
    if all_trials:
        table = frame if top is None else frame.head(top)
    else:
        # Every leaderboard row is COMPLETE: drop what is the same on each, lead with rank.
        table = leaderboard(frame, top=top).drop(
            columns=["state", "pruned", "fail_reason", "retry_of"], errors="ignore"
        )
        if frame.attrs.get("objective", "val_loss") == "val_loss":
            table = table.drop(columns=["value"], errors="ignore")
        # The most telling columns first (a table keeps as many as the terminal fits).
        late = ["max_epochs", "early_stopped", "param_count"]
        first = [
            "rank",
            "number",
            *[c for c in table.columns if c == "value" or c.startswith("val_")],
        ]
        first += ["fit", "loss", "best_epoch", "epochs_run", "duration_s"]
        first = [c for c in first if c in table.columns]
        rest = [c for c in table.columns if c not in first and c not in late]
        table = table[first + rest + [c for c in late if c in table.columns]]
    table = table.drop(columns=["datetime_start", "datetime_complete"], errors="ignore")
    _emit(table, fmt, empty=f"study {study!r} has no finished trials yet")
    if fmt == "table":
        _note_gone(study, frame.attrs.get("gone", []), resolve_url(storage))


def _note_gone(study: str, gone: Sequence[int], url: str, *, named: bool = False) -> None:
    """Say on stderr which of ``study``'s trials are stored as running though their worker
    on this machine is gone (kill -9), and the command that goes on (and retries them)."""
    if not gone:
        return
    from search._storage import resume_command

    many = len(gone) != 1
    click.echo(
        (f"study {study!r}: " if named else "")
        + f"trial{'s' if many else ''} {', '.join(map(str, gone))} "
        f"{'are' if many else 'is'} stored as running, but "
        f"{'their workers' if many else 'its worker'} on this machine "
        f"{'are' if many else 'is'} gone; the search fails and retries "
        f"{'them' if many else 'it'} when it goes on: `{resume_command(study, url)}`",
        err=True,
    )


@main.command()
@click.argument("study")
@_storage_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table")
@_handle_errors
def best(study: str, storage: str | None, fmt: str) -> None:
    """Print STUDY's best trial: params, value, metrics, and its test-set scores."""
    from reports import best_summary
    from search._storage import resolve_url

    summary = best_summary(resolve_url(storage), study)
    if fmt == "json":
        click.echo(_json(summary))
        return
    import yaml

    if fmt == "yaml":
        click.echo(yaml.safe_dump(summary, sort_keys=False), nl=False)
        return
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={_short(v)}" for k, v in value.items()) or "-"
        elif value is None:
            value = "-" if key != "test_metrics" else _untested(summary)
        click.echo(f"{key:<{width}}  {_short(value)}")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _untested(summary: dict[str, Any]) -> str:
    return (
        "- (scored when the search reaches its target, if the data has a test split: "
        "--test-split or a Keras data set)"
    )


@main.command()
@click.argument("study")
@_storage_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="The model file to write, ending in .keras.")  # fmt: skip
@click.option("--trial", type=click.IntRange(min=0), default=None, help="[the best trial]")
@_handle_errors
def export(study: str, storage: str | None, output: str, trial: int | None) -> None:
    """Write the trained model of STUDY's best trial (or --trial N) as a .keras file.

    Its checkpoint when this machine kept it (`run --keep-top`), else the trial trained
    again with its params and seed. Prints the file's path on stdout.
    """
    _quiet_logs()
    import search

    done = search.export(study, output, trial=trial, storage=storage)
    how = (
        "its checkpoint"
        if done.how.startswith("checkpoint")
        else "trained again with its params and seed (no checkpoint on this machine)"
    )
    click.echo(f"trial {done.trial} of {study!r}: {how}; described in {done.card}", err=True)
    if done.test_metrics:
        scores = ", ".join(f"{k} {v:.4g}" for k, v in done.test_metrics.items())
        click.echo(f"stored test scores: {scores}", err=True)
    click.echo(str(done.path.resolve()))


@main.command()
@click.argument("study")
@_storage_option
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), default=None, help="[STUDY-report.html]"
)
@_handle_errors
def report(study: str, storage: str | None, output: str | None) -> None:
    """Write STUDY's HTML report (also while a search is running elsewhere)."""
    from reports import write_report
    from search._api import default_report_path
    from search._storage import resolve_url

    url = resolve_url(storage)
    target = output if output is not None else default_report_path(study, url)
    path = write_report(url, study, target)
    click.echo(str(Path(path).resolve()))


@main.command()
@click.argument("studies", nargs=-1, required=True)
@_storage_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default=None,
    help="What goes to stdout (without -o) [default: table].",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write an HTML page."
)
@_handle_errors
def compare(
    studies: tuple[str, ...], storage: str | None, fmt: str | None, output: str | None
) -> None:
    """Compare STUDIES of the same data side by side: best value, trials and epochs spent
    and to reach it, trials by state; with -o an HTML page that also plots the best value
    against trials and epochs and each study's best learning curve."""
    from reports import compare as compare_studies
    from reports import write_comparison
    from search._errors import ConfigError
    from search._storage import resolve_url

    url = resolve_url(storage)
    if output is not None and fmt is not None:
        raise ConfigError(
            f"--format {fmt} and -o {output} ask for two outputs: -o writes the HTML page, "
            "--format prints to the terminal; give one of them."
        )
    if output is not None:
        path = write_comparison(url, studies, output)
        click.echo(str(Path(path).resolve()))
        return
    comparison = compare_studies(url, studies)
    if fmt == "json":
        click.echo(_json(comparison.to_json()))
    else:
        click.echo(f"data: {comparison.data}; objective: {comparison.objective} "
                   f"({comparison.direction})")  # fmt: skip
        _table(comparison.table(), every_column="--format json")


def _emit(frame: Any, fmt: str, *, empty: str) -> None:
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(frame.to_json(orient="records", date_format="iso", indent=2))
    elif fmt == "yaml":
        import yaml

        records = json.loads(frame.to_json(orient="records", date_format="iso"))
        click.echo(yaml.safe_dump(records, sort_keys=False), nl=False)
    elif frame.empty:
        click.echo(empty, err=True)
    else:
        _table(frame)


def _json(data: Any) -> str:
    """``data`` as strict JSON: a value that is not a finite number (NaN, infinity) is
    ``null``, as ``trials --format json`` writes it; ``NaN`` is not JSON, and strict readers
    (Python's ``json`` with ``parse_constant``, most other languages) refuse it."""
    import math

    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: finite(v) for key, v in value.items()}
        if isinstance(value, list | tuple):
            return [finite(v) for v in value]
        return value

    return json.dumps(finite(data), indent=2, default=str, allow_nan=False)


def _table(frame: Any, every_column: str = "--format csv|json|yaml") -> None:
    """The frame as a rich table as wide as the terminal: columns in their order (the most
    useful first) as long as they fit; the rest are named on stderr."""
    from rich.console import Console
    from rich.table import Table

    from reports._frame import fmt, param_columns

    console = Console(highlight=False, soft_wrap=False)
    names = {column: name for name, column in param_columns(frame).items()}
    headers = [names.get(str(c), str(c)) for c in frame.columns]
    rows = [[fmt(v) for v in row] for row in frame.itertuples(index=False)]
    # A long value (a study named by a script) is cut with an ellipsis rather than leaving
    # no room for the columns after it.
    widths = [
        max(len(h), min(WIDEST_CELL, max((len(r[i]) for r in rows), default=0)))
        for i, h in enumerate(headers)
    ]
    room, keep = console.width, 0
    for width in widths:
        if room < width + 2 and keep:
            break
        room -= width + 2
        keep += 1
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for header, width in zip(headers[:keep], widths, strict=False):
        table.add_column(header, no_wrap=True, overflow="ellipsis", max_width=width)
    for row in rows:
        table.add_row(*row[:keep])
    console.print(table)
    if keep < len(headers):
        hidden = ", ".join(headers[keep:])
        click.echo(
            f"({len(headers) - keep} more columns: {hidden}; a wider terminal shows them, "
            f"{every_column} shows all)",
            err=True,
        )


@main.command()
@_handle_errors
def datasets() -> None:
    """List the data sets --data knows by name (and whether Keras' are cached)."""
    from search._data import list_datasets

    for row in list_datasets():
        click.echo("\t".join((row["name"], row["task"], row["source"], row["about"])))
    from search._data_keras import keras_datasets_dir

    click.echo(f"Keras' cache: {keras_datasets_dir()} (KERAS_HOME sets it)", err=True)


@main.group(invoke_without_command=True)
@click.pass_context
def spaces(ctx: click.Context) -> None:
    """List the built-in search spaces (or show / validate one)."""
    if ctx.invoked_subcommand is None:
        from spaces import list_presets, load_space

        for name in list_presets():
            space = load_space(name)
            click.echo(f"{name}\t{len(space.params)} params\t{space.description}")


@spaces.command("show")
@click.argument("name")
@_handle_errors
def spaces_show(name: str) -> None:
    """Print a built-in space (or a space file) as YAML."""
    from spaces import list_presets, preset_text, space_to_yaml
    from spaces import load_space as _load

    if name in list_presets():
        click.echo(preset_text(name), nl=False)
    else:
        click.echo(space_to_yaml(_load(name)), nl=False)


@spaces.command("validate")
@click.argument("file")
@click.option(
    "--model",
    default=None,
    metavar="MODULE:FUNCTION",
    help="Check it for your own model builder, as `run --model` does [the built-in Dense builder].",
)
@click.option(
    "--data",
    default=None,
    help="Also build the model of one point (each parameter at its low end or first choice) "
    "for this data, as a trial would; trains nothing.",
)
@click.option("--target", default=None, help="The label column, with a CSV --data.")
@_handle_errors
def spaces_validate(file: str, model: str | None, data: str | None, target: str | None) -> None:
    """Check a space file (or a built-in space, for a builder of your own); exits 2 naming
    the problem if it is invalid (with --data, if its model cannot be built)."""
    from spaces import DENSE, get_builder
    from spaces import load_space as _load

    if target is not None and data is None:
        from search._errors import ConfigError

        raise ConfigError(
            f"--target {target}: it names the label column of a CSV file given with --data; "
            "give --data FILE.csv too, or leave --target out."
        )
    # Your builder is imported, as `run` imports it where it trains: a missing function, or
    # a module that fails to import, is found here too (Keras first, without its noise).
    if model not in (None, DENSE.name) or data is not None:
        from search._keras import import_keras

        import_keras()
    builder = get_builder(model)
    space = _load(file, builder)
    points = space.distinct_points()
    many = f", {points} distinct point(s)" if points is not None else ""
    built = ""
    if data is not None:
        built = "; " + _build_one(space, builder, data, target)
    click.echo(
        f"{file}: valid space {space.name!r} with {len(space.params)} parameters{many}{built}"
    )


def _build_one(space: Any, builder: Any, data: str, target: str | None) -> str:
    """Build the model of the space's first point for ``data``, as a trial builds it; what
    it has, or ConfigError saying why it cannot be built."""
    from search import load_dataset
    from search._errors import ConfigError

    dataset = load_dataset(data, target=target)
    point = space.builder_point(space.first_point())
    try:
        model = builder.build(point, dataset.spec)
    except SystemExit as exc:
        raise ConfigError(
            f"--model {builder.name}: the builder called sys.exit({exc.code!r}) for {point}."
        ) from None
    except ConfigError:  # hpsearch's own line: not compiled, an output that does not fit
        raise
    except Exception as exc:
        said = " ".join(str(exc).split())[:300]
        raise ConfigError(
            f"building the model of {point} failed: {type(exc).__name__}: {said}"
        ) from None
    return f"its model for {data} builds ({model.count_params():,} weights at {point})"


@main.command()
@click.option(
    "--input-dim", type=click.IntRange(min=1), default=None, help="Number of input features."
)
@click.option(
    "--input-shape", default=None, help="Input shape, e.g. 28,28 (instead of --input-dim)."
)
@click.option("--task", type=click.Choice(["binary", "multiclass", "regression"]), required=True)
@click.option("--classes", type=click.IntRange(min=2), default=None, help="Classes (multiclass).")
@click.option(
    "--params", "params_json", default="{}", help='JSON, e.g. \'{"units": 128, "depth": 2}\'.'
)
@_handle_errors
def describe(
    input_dim: int | None,
    input_shape: str | None,
    task: str,
    classes: int | None,
    params_json: str,
) -> None:
    """Build the model the builder would build and print its Keras summary."""
    from search._errors import ConfigError

    try:
        params = json.loads(params_json)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--params: not valid JSON ({exc}); got {params_json!r}.") from None
    if not isinstance(params, dict):
        raise ConfigError(f"--params: expected a JSON object; got {params_json!r}.")
    if (input_dim is None) == (input_shape is None):
        raise ConfigError("describe needs exactly one of --input-dim and --input-shape.")
    if input_shape is not None:
        parts = [p.strip() for p in input_shape.replace("x", ",").split(",")]
        if not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ConfigError(
                f"--input-shape: expected positive integers like 28,28 or 28x28; "
                f"got {input_shape!r}."
            )
        shape = tuple(int(p) for p in parts)
    else:
        shape = (cast(int, input_dim),)
    if task == "multiclass" and classes is None:
        raise ConfigError("--task multiclass needs --classes K.")
    _quiet_logs()
    from search._keras import import_keras
    from spaces import DataSpec, build_model, model_summary, resolve_params, unused_params

    import_keras()

    try:
        spec = DataSpec(input_shape=shape, task=task, classes=classes)  # type: ignore[arg-type]
    except ValueError as exc:
        what = str(exc).removeprefix("DataSpec: ")
        raise ConfigError(f"--task {task} --classes {classes}: {what}") from None
    try:
        resolved = resolve_params(params)
        model = build_model(resolved, spec)
    except ValueError as exc:
        raise ConfigError(f"--params: {exc}") from None
    # The widths in `units` carry the funnel: the resolved width_shrink (1.0) would read as
    # if the one asked for had been ignored. What the model does not use (momentum with
    # adam) is left out.
    left_out = {"width_shrink", *unused_params(resolved)}
    shown = {k: v for k, v in resolved.items() if k not in left_out}
    click.echo(f"params: {json.dumps(shown, sort_keys=True)}")
    click.echo(model_summary(model))

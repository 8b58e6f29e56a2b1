"""The public Python API: run and resume searches. The CLI is a thin layer over it."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import math
import os
import re
import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import optuna
from optuna.trial import FrozenTrial

from search._data import BUILTIN_DATASETS, Dataset
from search._data_keras import DEFAULT_NUM_WORDS, KERAS_DATASETS
from search._errors import (
    ConfigError,
    DataError,
    HpsearchError,
    SearchAborted,
    SearchInterrupted,
)
from search._live import DEFAULT_EVERY_SECONDS, DEFAULT_EVERY_TRIALS, LiveReport
from search._machine import available_cores
from search._pool import (
    DEFAULT_MAX_MEMORY_MIB,
    DEFAULT_RECYCLE_AFTER,
    WarmWorkers,
    resolve_workers,
    run_workers,
)
from search._progress import NullProgress, ProgressSink
from search._records import stored_target
from search._settings import DataRef, StudySettings, damaged_settings, infer_direction
from search._storage import (
    DEFAULT_STORAGE,
    exclusive,
    missing_study,
    opened_storage,
    reading,
    require_study,
    resolve_url,
    resume_command,
    sqlite_path,
    storage_key,
    storage_option,
    study_names,
)
from search.engines import SearchResult
from search.engines._base import count_states, finished_count
from search.engines._registry import ENGINE_OPTIONS, ENGINES
from spaces import DENSE, Space, get_builder, load_space, parse_space

MAX_STUDY_NAME = 128
_F = TypeVar("_F", bound=Callable[..., Any])


def default_study_name(data: str, space: Space) -> str:
    """A readable name from the data and the space, e.g. ``digits-mlp``; a data file keeps
    its suffix (``wine.csv-mlp``), so it never takes the name of a built-in data set's study."""
    stem = Path(data).name if data.lower().endswith((".csv", ".npz")) else data
    return f"{stem}-{space.name}"


def check_study_name(study: str) -> None:
    """A new study's name: 1 to MAX_STUDY_NAME printable characters."""
    if not study.strip():
        raise ConfigError("--study: expected a name; got an empty one.")
    if len(study) > MAX_STUDY_NAME:
        raise ConfigError(
            f"--study: a study name has at most {MAX_STUDY_NAME} characters; got one of "
            f"{len(study)} ({study[:20]!r}...). Give a shorter --study NAME."
        )
    if study.startswith("-"):
        raise ConfigError(
            f"--study: a study name cannot start with '-' (a command would read it as an "
            f"option); got {study!r}."
        )
    if not study.isprintable():
        raise ConfigError(
            f"--study: a study name has no control characters (newlines, tabs); got {study!r}."
        )


def default_report_path(study: str, url: str | None = None) -> Path:
    """Where the report goes unless told: ``<study>-report.html`` here for a study of the
    default storage whose name is a plain file name; otherwise a short hash of the storage
    and the name is added (``<study>-1a2b3c4d-report.html``), so that two studies never
    share a default report file (same name in two storages, names that differ only in
    characters a file name cannot hold)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", study).strip("._")[:80] or "study"
    where = _canonical(url) if url else _canonical(DEFAULT_STORAGE)
    if slug == study and where == _canonical(DEFAULT_STORAGE):
        return Path(f"{slug}-report.html")
    digest = hashlib.sha256(f"{where}\0{study}".encode()).hexdigest()[:8]
    return Path(f"{slug}-{digest}-report.html")


def _canonical(url: str) -> str:
    """The storage as one string per database: a SQLite file by its absolute path, any
    other URL without its secrets."""
    path = sqlite_path(url)
    return f"sqlite:///{path.resolve()}" if path is not None else storage_key(url)


_NAME = "a name"
# What each argument of run, resume and work takes, for one line naming it when it is of
# the wrong kind (the CLI's own types check the same on the command line).
_ARGUMENTS: dict[str, tuple[str, str]] = {
    "data": ("text", "a data set (`hpsearch datasets`) or the path of a .csv or .npz file"),
    "space": ("space", "a space (`hpsearch spaces`), the path of a YAML file or a Space"),
    "study": ("text", "a study name"),
    "storage": ("text", "a storage URL, e.g. sqlite:///hpsearch.db"),
    "model": ("text", "a model builder, MODULE:FUNCTION"),
    "report": ("path", "the path of the report's HTML file"),
    "target": ("text", "the name of a CSV column"),
    "task": ("text", _NAME),
    "objective": ("text", _NAME),
    "direction": ("text", _NAME),
    "engine": ("text", _NAME),
    "sampler": ("text", _NAME),
    "pruner": ("text", _NAME),
    "algorithm": ("text", _NAME),
    "trials": ("count", "a number of trials >= 1"),
    "epochs": ("count", "a number of epochs >= 1"),
    "patience": ("natural", "a number of epochs >= 0"),
    "seed": ("natural", "an integer >= 0"),
    "max_failures": ("count", "a number of trials >= 1"),
    "keep_top": ("natural", "a number of trials >= 0"),
    "num_words": ("count", "a number of words >= 1"),
    "val_split": ("number", "a fraction"),
    "test_split": ("number", "a fraction"),
    "timeout": ("seconds", "a number of seconds >= 0"),
    "recycle_after": ("natural", "a number of trials >= 0 (0: never)"),
    "max_worker_memory": ("seconds", "a number of MiB >= 0 (0: never)"),
    "report_every": ("natural", "a number of trials >= 0"),
    "report_seconds": ("seconds", "a number of seconds >= 0"),
    "workers": ("workers", "a number >= 1 or 'auto'"),
}


def _checked(func: _F) -> _F:
    """``func`` (``run``, ``resume``, ``work``) called with its arguments checked: paths
    as text, NumPy's numbers as Python's, and ConfigError naming the first one of the wrong
    kind (``search.run(data=5)``, ``recycle_after=-1``) before anything is opened or started."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        if (
            "study" in bound.arguments
            and bound.arguments["study"] is None
            and func.__name__ != "run"
        ):
            raise ConfigError(f"{func.__name__}: expected the name of a study; got None.")
        bound.arguments.update(_checked_arguments(bound.arguments))
        return func(*bound.args, **bound.kwargs)

    return cast(_F, wrapper)


def _checked_arguments(given: dict[str, Any]) -> dict[str, Any]:
    import numbers

    checked = {}
    for name, value in given.items():
        if value is None or name not in _ARGUMENTS:
            continue
        kind, expected = _ARGUMENTS[name]
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        integer = number and isinstance(value, numbers.Integral)
        if (
            kind in ("space", "path", "text")
            and isinstance(value, os.PathLike)
            and (kind != "text" or name == "data")
        ):
            value = os.fspath(value)
        ok = {
            "text": isinstance(value, str),
            "path": isinstance(value, str),
            "space": isinstance(value, str | Space),
            "count": integer and value >= 1,
            "natural": integer and value >= 0,
            "number": number,
            "seconds": number and math.isfinite(value) and value >= 0,
            "workers": value == "auto" or (integer and value >= 1),
        }[kind]
        if not ok:
            option = "--" + name.replace("_", "-")
            raise ConfigError(f"{option}: expected {expected}; got {value!r}.")
        if integer:
            value = int(value)
        elif number:
            value = float(value)
        checked[name] = value
    return checked


@_checked
def run(
    data: str | None = None,
    space: str | Space | None = None,
    *,
    trials: int | None = None,
    study: str | None = None,
    storage: str | None = None,
    target: str | None = None,
    task: str | None = None,
    val_split: float | None = None,
    test_split: float | None = None,
    num_words: int | None = None,
    objective: str | None = None,
    direction: str | None = None,
    engine: str | None = None,
    sampler: str | None = None,
    pruner: str | None = None,
    algorithm: str | None = None,
    epochs: int | None = None,
    patience: int | None = None,
    seed: int | None = None,
    max_failures: int | None = None,
    keep_top: int | None = None,
    model: str | None = None,
    timeout: float | None = None,
    report: str | Path | None = None,
    write_report: bool = True,
    report_every: int = DEFAULT_EVERY_TRIALS,
    report_seconds: float = DEFAULT_EVERY_SECONDS,
    progress: ProgressSink | None = None,
    workers: int | str = 1,
    recycle_after: int = DEFAULT_RECYCLE_AFTER,
    max_worker_memory: float = DEFAULT_MAX_MEMORY_MIB,
) -> SearchResult:
    """Run a search until the study holds ``trials`` finished trials, then write the report.

    A new study is created from ``data`` (a built-in name, a .csv or .npz path) and
    ``space`` (a preset name, a YAML path or a Space). For an existing study the stored
    settings are used; anything given again must agree with them (``trials`` may grow).
    Arguments left as None take the stored value or the default.

    ``engine`` ("optuna" or "kerastuner") proposes the points: Optuna with ``sampler`` and
    ``pruner``, KerasTuner with ``algorithm`` ("hyperband", "bayesian", "random").

    The trials run in ``workers`` worker processes (``"auto"``: one per core), each of which
    is replaced by a fresh one after ``recycle_after`` trials or past ``max_worker_memory``
    MiB (0: never). Other processes and machines may work on the same study at the same time
    (``hpsearch worker``). Returns how it ended.

    While it runs, the report is rewritten after every ``report_every`` finished trials or
    ``report_seconds`` after the last time, whichever comes first (0 and 0: only at the end),
    and reloads itself in a browser (``search._live``).
    """
    url = resolve_url(storage)
    if model is not None and model != DENSE.name and space is None and data is not None:
        raise ConfigError(
            f"--model {model}: give --space too, a space file of your builder's parameters "
            "(the presets are the built-in Dense builder's)."
        )
    space_obj: Space | None
    if isinstance(space, str):
        space_obj = load_space(space, model)
    elif space is not None and model is not None:  # a Space object, checked for this builder
        space_obj = parse_space(space.to_dict(), f"space {space.name!r}", model)
    else:
        space_obj = space
    if data is not None and not data.strip():
        raise ConfigError(
            "--data: expected a data set (`hpsearch datasets`) or a .csv/.npz file; "
            "got an empty one."
        )
    if study is None:
        if data is None:
            raise ConfigError("--data is required to start a new study (or give --study).")
        study = default_study_name(data, space_obj or load_space("mlp"))

    given: dict[str, Any] = {
        "objective": objective,
        "direction": direction,
        "engine": engine,
        "sampler": sampler,
        "pruner": pruner,
        "algorithm": algorithm,
        "epochs": epochs,
        "patience": patience,
        "seed": seed,
        "max_failures": max_failures,
        "keep_top": keep_top,
        "model": model,
    }
    data_ref = DataRef(
        source=data or "",
        target=target,
        task=task,
        val_split=0.2 if val_split is None else val_split,
        test_split=0.0 if test_split is None else test_split,
        num_words=DEFAULT_NUM_WORDS if num_words is None else num_words,
    )
    data_given = {
        "source": data,
        "target": target,
        "task": task,
        "val_split": val_split,
        "test_split": test_split,
        "num_words": num_words,
    }
    if data is not None:  # a study may be created: a bad name must not create a database
        check_study_name(study)
    if (
        target is not None
        and data is not None
        and (data in BUILTIN_DATASETS or data in KERAS_DATASETS)
    ):
        raise ConfigError(
            f"--target {target!r}: the built-in data set {data!r} has its own target; "
            "--target names the label column of a CSV file."
        )
    if target is not None and data is not None and data.lower().endswith(".npz"):
        raise ConfigError(
            f"--target {target!r}: the labels of {data} are its y_train array (and y_val, "
            "y_test); --target names the label column of a CSV file: leave it out."
        )
    if num_words is not None and data is not None and not _uses_num_words(data):
        users = ", ".join(n for n, e in KERAS_DATASETS.items() if e.uses_num_words)
        raise ConfigError(f"--num-words applies to word data ({users}), not to {data!r}.")
    count, chosen = resolve_workers(workers)
    sink = progress or NullProgress()
    report_path = Path(report) if report is not None else default_report_path(study, url)
    if write_report:
        from reports._html import check_writable

        # Before the search spends anything; as given (Path("") would read as the folder ".").
        check_writable(report if report is not None else report_path)
    # The workers import TensorFlow (most of a short search's time) while this process
    # opens the storage, loads the data and prepares the study: as many as leave this
    # process a core of its own (none on one core, where nothing overlaps), the others
    # start when the study is ready.
    warm_count = max(0, min(count, available_cores() - 1))
    searching = reporting = False
    try:
        with (
            WarmWorkers(warm_count) as warm,
            opened_storage(url, for_writing=True, patient=False) as store,
        ):
            # Two processes that start the same study together must not both create it.
            with exclusive(url, f"study:{study}"):
                settings = _prepare(store, study, url, data, data_ref, space_obj, trials,
                                    given, data_given)  # fmt: skip
            if write_report and (report_every or report_seconds):
                sink = LiveReport(sink, url=url, study=study, path=report_path,
                                  every_trials=report_every,
                                  every_seconds=report_seconds)  # fmt: skip
            searching = True
            try:
                result = _search(store, settings, url, sink, count, chosen, timeout,
                                 recycle_after, max_worker_memory, warm)  # fmt: skip
            except (SearchAborted, SearchInterrupted) as exc:
                # The trials so far are stored: the report shows them, and where it is.
                if write_report and _report_quietly(store, study, report_path):
                    raise type(exc)(f"{exc} Report: {report_path.resolve()}") from None
                raise
            searching = False
            if write_report:
                from reports import write_report as _write_report

                reporting = True
                written = _write_report(store, study, report_path)
                result = dataclasses.replace(result, report=str(Path(written).resolve()))
            return result
    except KeyboardInterrupt:
        # An interrupt the search did not report itself (a second Ctrl-C while it stops).
        if searching:
            raise SearchInterrupted.going_on(study, resume_command(study, url)) from None
        if reporting:
            raise SearchInterrupted(
                f"study {study!r}: interrupted while its report was written; the trials are "
                f"stored and the old report, if any, is unchanged: "
                f"`hpsearch report {shlex.quote(study)}{storage_option(url)} -o "
                f"{shlex.quote(str(report_path))}` writes it."
            ) from None
        raise SearchInterrupted.before_search(study) from None


def _uses_num_words(source: str) -> bool:
    """Whether a data set is word data, whose multi-hot width ``--num-words`` sets."""
    entry = KERAS_DATASETS.get(source)
    return entry is not None and entry.uses_num_words


def _report_quietly(store: optuna.storages.RDBStorage, study: str, path: Path) -> bool:
    """Write the report of a search that stopped early; False if it cannot be written now
    (the stop's own message matters more than the report's)."""
    from reports import write_report as _write_report

    try:
        _write_report(store, study, path)
    except (HpsearchError, OSError):
        return False
    return True


def _prepare(
    store: optuna.storages.RDBStorage,
    study: str,
    url: str,
    data: str | None,
    data_ref: DataRef,
    space_obj: Space | None,
    trials: int | None,
    given: dict[str, Any],
    data_given: dict[str, Any],
) -> StudySettings:
    """The study's settings: stored ones checked against what was given, or new ones; the
    study created (with its data described and fingerprinted) if it does not exist yet."""
    exists = study in study_names(store)
    stored: dict[str, Any] = {}
    if exists:
        stored = _stored_attrs(store, study)
        settings = StudySettings.from_attrs(study, stored)
        _check_agrees(settings, given, data_given, space_obj, study_names(store))
        # The workers import the study's own builder: one that is not here is bad input,
        # said before anything (a new target) is stored.
        get_builder(settings.model)
        if trials is not None:
            held = finished_count(count_states(store.get_all_trials(
                store.get_study_id_from_name(study), deepcopy=False)))  # fmt: skip
            # A target the study already holds is reached: nothing is trained, and nothing
            # stored is dropped (the target becomes what it holds).
            settings = settings.replace(trials=max(trials, held))
    elif data is None:
        raise missing_study(store, study, url, " Give --data to create it.")
    else:
        settings = _new_settings(study, data_ref, space_obj, trials, given)

    dataset = study_dataset(settings, stored, "start a new study with --study NAME")
    settings.check_objective(dataset.task)
    from search._winner import check_checkpoint_folder

    check_checkpoint_folder(url, settings.study, settings.keep_top)
    if not exists:
        # Optuna logs "A new study created" at INFO; hpsearch's progress says what happens
        # (the command's, or none through the Python API): the log stays as quiet as it is
        # elsewhere in a search.
        level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(max(level, optuna.logging.WARNING))
        try:
            optuna_study = optuna.create_study(
                storage=store, study_name=study, direction=settings.direction
            )
        finally:
            optuna.logging.set_verbosity(level)
        # The folder a relative data path is read from, for the line that says where to
        # run when it is not found.
        described = {**dataset.describe(), "folder": str(Path.cwd())}
        optuna_study.set_user_attr("hpsearch", settings.to_attrs(described))
    elif settings.trials != stored.get("trials"):
        store.set_study_user_attr(
            store.get_study_id_from_name(study), "hpsearch", {**stored, "trials": settings.trials}
        )
    return settings


def study_dataset(settings: StudySettings, stored: dict[str, Any], fix: str) -> Dataset:
    """The study's data loaded here (cached per process); DataError, ending with ``fix``,
    if it is not the data the study was created with (its stored fingerprint)."""
    from search._data import load_dataset

    source = settings.data.source
    if stored and source.lower().endswith((".csv", ".npz")) and not Path(source).exists():
        folder = stored.get("data", {}).get("folder")
        if Path(source).is_absolute() or (folder and Path(folder) == Path.cwd()):
            where = "it was moved or deleted: put the file back there"
        elif folder:
            where = (
                f"its path is relative to the folder the study was created in, {folder}: run "
                "from there"
            )
        else:
            where = (
                "its path is relative to the folder the study was created in: run from that folder"
            )
        raise DataError(
            f"study {settings.study!r} reads its data from {source}, and there is no such "
            f"file here ({Path.cwd()}); {where}, or {fix}."
        )
    dataset = load_dataset(
        settings.data.source,
        target=settings.data.target,
        task=settings.data.task,
        val_split=settings.data.val_split,
        test_split=settings.data.test_split,
        seed=settings.seed,
        num_words=settings.data.num_words,
    )
    stored_fp = stored.get("data", {}).get("fingerprint")
    if stored_fp and stored_fp != dataset.fingerprint:
        raise DataError(
            f"{settings.data.source}: this data differs from the data study "
            f"{settings.study!r} was created with (fingerprint {dataset.fingerprint}, stored "
            f"{stored_fp}); {fix}."
        )
    return dataset


def _search(
    store: optuna.storages.BaseStorage,
    settings: StudySettings,
    url: str,
    progress: ProgressSink,
    workers: int,
    chosen: str,
    timeout: float | None,
    recycle_after: int,
    max_worker_memory: float,
    warm: WarmWorkers | None = None,
    command: str = "resume",
) -> SearchResult:
    """Run the workers until the study holds its target; how it ended, from the database.
    The first workers are taken from ``warm`` (started while the study was prepared)."""
    deadline = None if timeout is None else time.time() + timeout
    counts, best = _tally(store, settings.study)
    done = done_before = finished_count(counts)
    progress.search_started(
        settings.study,
        settings.trials,
        done,
        None if best is None else best.value,
        settings.objective,
        workers,
    )
    stopped = "already"
    try:
        if done < settings.trials and (deadline is None or time.time() < deadline):
            if chosen:
                progress.note(chosen)
            points = settings.space.distinct_points()
            if points is not None and points < settings.trials:
                then = (
                    "KerasTuner stops the search once its oracle has no new point to propose"
                    if settings.engine == "kerastuner"
                    else "some points will be trained more than once (with other seeds)"
                )
                progress.note(
                    f"note: space {settings.space.name!r} holds {points} distinct point(s) and "
                    f"the target is {settings.trials} trials: {then}."
                )
            gave_up = run_workers(
                settings.study,
                url,
                workers=workers,
                progress=progress,
                deadline=deadline,
                recycle_after=recycle_after,
                max_memory_mib=max_worker_memory,
                warm=warm,
                command=command,
            )
            counts, best = _tally(store, settings.study)
            done = finished_count(counts)
            # Another command may have changed the target meanwhile (`resume --trials`):
            # the workers went by the stored one.
            attrs = store.get_study_user_attrs(store.get_study_id_from_name(settings.study))
            settings = settings.replace(trials=stored_target(attrs, settings.trials))
            stopped = "target"
            if gave_up and done < settings.trials:
                raise HpsearchError(gave_up)
        if done < settings.trials:
            stopped = "timeout" if deadline is not None and time.time() >= deadline else "workers"
        elif stopped != "already":
            stopped = "target"
    finally:
        if warm is not None:  # none left to take: stop the idle ones before the report
            warm.close()
        progress.search_ended()
    return SearchResult(
        study=settings.study,
        target=settings.trials,
        finished=done,
        counts=counts,
        best_number=None if best is None else best.number,
        best_value=None if best is None else best.value,
        best_params={} if best is None else dict(best.params),
        stopped=stopped,
        finished_now=max(0, done - done_before),
    )


def _tally(
    store: optuna.storages.BaseStorage, study: str
) -> tuple[dict[str, int], FrozenTrial | None]:
    """The study's trials by state, and its best trial so far, read once."""
    study_obj = optuna.load_study(study_name=study, storage=store)
    counts = count_states(study_obj.get_trials(deepcopy=False))
    try:
        return counts, study_obj.best_trial
    except ValueError:
        return counts, None


def _new_settings(
    study: str,
    data: DataRef,
    space: Space | None,
    trials: int | None,
    given: dict[str, Any],
) -> StudySettings:
    """Settings of a new study: what was given, the defaults for the rest."""
    objective = given["objective"] or "val_loss"
    natural = infer_direction(objective)
    if given["direction"] not in (None, natural):
        raise ConfigError(
            f"--direction {given['direction']}: {objective} is better when "
            f"{'smaller' if natural == 'minimize' else 'larger'}, so the search would look for "
            f"the worst models; leave --direction out (it follows the objective: {natural})."
        )
    return StudySettings(
        study=study,
        data=data,
        space=space or load_space("mlp"),
        trials=30 if trials is None else trials,
        **{k: v for k, v in given.items() if v is not None and k not in ("objective", "direction")},
        objective=objective,
        direction=given["direction"] or infer_direction(objective),
    )


@_checked
def resume(
    study: str,
    *,
    storage: str | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    report: str | Path | None = None,
    write_report: bool = True,
    report_every: int = DEFAULT_EVERY_TRIALS,
    report_seconds: float = DEFAULT_EVERY_SECONDS,
    progress: ProgressSink | None = None,
    workers: int | str = 1,
    recycle_after: int = DEFAULT_RECYCLE_AFTER,
    max_worker_memory: float = DEFAULT_MAX_MEMORY_MIB,
) -> SearchResult:
    """Continue a stored study with the settings it was created with (``run``'s options)."""
    url = resolve_url(storage)
    # Read-only first: a mistyped name must not create a database file.
    with reading(url, study):
        pass
    return run(
        study=study,
        storage=url,
        trials=trials,
        timeout=timeout,
        report=report,
        write_report=write_report,
        report_every=report_every,
        report_seconds=report_seconds,
        progress=progress,
        workers=workers,
        recycle_after=recycle_after,
        max_worker_memory=max_worker_memory,
    )


@_checked
def work(
    study: str,
    *,
    storage: str | None = None,
    workers: int | str = 1,
    timeout: float | None = None,
    progress: ProgressSink | None = None,
    recycle_after: int = DEFAULT_RECYCLE_AFTER,
    max_worker_memory: float = DEFAULT_MAX_MEMORY_MIB,
) -> SearchResult:
    """Join a stored study as ``workers`` more worker processes (on this machine, beside any
    number of others anywhere) until it holds its stored target. Writes no report."""
    url = resolve_url(storage)
    count, chosen = resolve_workers(workers)
    with reading(url, study):
        pass  # a mistyped name must not create a database file
    with opened_storage(url, for_writing=True) as store:
        settings, _ = stored_settings(store, study, url)
        return _search(
            store,
            settings,
            url,
            progress or NullProgress(),
            count,
            chosen,
            timeout,
            recycle_after,
            max_worker_memory,
            command="worker",
        )


def stored_settings(
    store: optuna.storages.RDBStorage, study: str, url: str
) -> tuple[StudySettings, dict[str, Any]]:
    """A stored study's settings, and the raw stored attribute (with the data description)."""
    require_study(store, study, url)
    stored = _stored_attrs(store, study)
    return StudySettings.from_attrs(study, stored), stored


def load_settings(study: str, storage: str | None = None) -> StudySettings:
    """The settings a stored study was created with."""
    url = resolve_url(storage)
    with reading(url, study) as store:
        return StudySettings.from_attrs(study, _stored_attrs(store, study))


def _stored_attrs(store: optuna.storages.BaseStorage, study: str) -> dict[str, Any]:
    """The study's stored hpsearch settings (the study user attribute ``hpsearch``)."""
    attrs = store.get_study_user_attrs(store.get_study_id_from_name(study))
    if "hpsearch" not in attrs:
        raise ConfigError(
            f"study {study!r} was not created by hpsearch (it has no stored settings): "
            "hpsearch trials and hpsearch report read it, and a search needs a study of its "
            "own (hpsearch run --study ANOTHER_NAME)."
        )
    stored = attrs["hpsearch"]
    if not isinstance(stored, Mapping):
        raise damaged_settings(study, f"a mapping of settings was expected, found {stored!r}")
    return dict(stored)


def _check_agrees(
    settings: StudySettings,
    given: dict[str, Any],
    data_given: dict[str, Any],
    space: Space | None,
    taken: Iterable[str] = (),
) -> None:
    """Anything given again for an existing study must match what it was created with; the
    line suggests a name for a new study that none of the ``taken`` names has."""
    clashes = []
    for key, value in given.items():
        stored = getattr(settings, key)
        if value is None or value == stored:
            continue
        flag = f"--{key.replace('_', '-')} {value!r}"
        if key in ENGINE_OPTIONS and stored is None:  # another engine's option
            owner = " or ".join(n for n, spec in ENGINES.items() if key in spec.options)
            clashes.append(
                f"{flag} is an option of the {owner} engine; the study runs "
                f"{settings.engine_summary()}"
            )
        else:
            clashes.append(f"{flag} (the study has {stored!r})")
    for key, value in data_given.items():
        stored = getattr(settings.data, key)
        if value is not None and value != stored:
            flag = "--data" if key == "source" else f"--{key.replace('_', '-')}"
            clashes.append(f"{flag} {value!r} (the study has {stored!r})")
    if space is not None and space.to_dict() != settings.space.to_dict():
        clashes.append(_space_clash(space, settings.space))
    if clashes:
        names, n = set(taken), 2
        while f"{settings.study}-{n}" in names:
            n += 1
        raise ConfigError(
            f"study {settings.study!r} exists with other settings: {'; '.join(clashes)}. "
            "Continue it without those options, or start a new study: "
            f"--study {shlex.quote(f'{settings.study}-{n}')}."
        )


def _space_clash(given: Space, stored: Space) -> str:
    """How a space given again differs from the study's, by content: the parameters."""
    mine = {p.name: p.to_dict() for p in given.params}
    theirs = {p.name: p.to_dict() for p in stored.params}
    changed = [
        f"{name} ({_param_change(theirs[name], mine[name])})"
        for name in sorted(mine.keys() & theirs.keys())
        if mine[name] != theirs[name]
    ]
    added = sorted(mine.keys() - theirs.keys())
    dropped = sorted(theirs.keys() - mine.keys())
    parts = [f"{', '.join(changed)} changed"] if changed else []
    parts += [f"{', '.join(added)} added"] if added else []
    parts += [f"{', '.join(dropped)} removed"] if dropped else []
    detail = "; ".join(parts) or "other name or description"
    if given.name == stored.name:
        return f"--space {given.name!r} differs from the study's space of that name ({detail})"
    return f"--space {given.name!r} is not the study's space {stored.name!r} ({detail})"


def _param_change(stored: dict[str, Any], given: dict[str, Any]) -> str:
    """What differs in one parameter, key by key: ``high 64 -> 128``."""
    keys = sorted(stored.keys() | given.keys())
    return ", ".join(
        f"{key} {stored.get(key)!r} -> {given.get(key)!r}"
        for key in keys
        if stored.get(key) != given.get(key)
    )


@dataclasses.dataclass(frozen=True)
class Exported:
    """What ``export`` wrote: the file, the trial, and whether the model is the trial's
    checkpoint or was trained again (``how``)."""

    path: Path
    study: str
    trial: int
    how: str
    test_metrics: dict[str, float] | None = None
    card: Path | None = None  # the JSON beside the model: what it is and how to feed it


def _check_replaceable(out: Path) -> None:
    """Refuse to replace a file that export did not write: the model's path must hold a
    Keras file (a zip) or nothing, the card's (beside it, ``.json``) a model card or nothing.
    Exporting again to the same path replaces the last export, as a save does."""
    import json
    import zipfile

    card = out.with_suffix(".json")
    for path, what in ((out, "a Keras model file"), (card, "a model card hpsearch wrote")):
        if not path.is_file():
            continue
        if path == out:
            ours = zipfile.is_zipfile(path)
        else:
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError):
                loaded = None
            ours = isinstance(loaded, dict) and {"model", "study", "trial"} <= set(loaded)
        if not ours:
            raise ConfigError(
                f"-o {str(out)!r}: {str(path)!r} exists and is not {what}; export writes the "
                f"model and its card ({card.name}) there and would replace it: give another "
                "-o, or move that file."
            )


def export(
    study: str,
    output: str | Path,
    *,
    trial: int | None = None,
    storage: str | None = None,
) -> Exported:
    """Write the trained model of the study's best trial (or trial number ``trial``) to
    ``output`` in Keras' native format (``.keras``): its checkpoint when this machine has
    it (``--keep-top``), else the trial trained again with its params and seed on the study's
    data. Loading it with ``keras.models.load_model`` gives a compiled model; with a test
    split, its ``evaluate`` on the test data gives the stored test scores."""
    from reports._html import probe_folder, write_page
    from search._winner import WINNER_KEY, checkpoint_path, ranked, trained_model

    if trial is not None and (isinstance(trial, bool) or not isinstance(trial, int)):
        raise ConfigError(f"--trial: expected a trial's number (an int); got {trial!r}.")
    out = Path(output)
    if out.suffix != ".keras":
        raise ConfigError(
            f"-o {str(output)!r}: Keras saves a model to a file ending in .keras; "
            f"give e.g. -o {out.with_suffix('.keras').name if out.name else 'best.keras'}."
        )
    if out.exists() and out.is_dir():
        raise ConfigError(f"-o {str(output)!r} is a folder; give a file path ending in .keras.")
    _check_replaceable(out)

    def unwritable(exc: OSError) -> HpsearchError:
        # The folder that refused, not the temporary file written first.
        named = str(exc.filename or "")
        where = (
            f" ({named})"
            if named and Path(named).name != out.name and ".keras." not in named
            else ""
        )
        return HpsearchError(
            f"-o {str(output)!r}: cannot be written: {exc.strerror or exc}{where}; give "
            "another path with -o."
        )

    try:
        probe_folder(out)  # before a model is trained again for nothing
    except OSError as exc:
        raise unwritable(exc) from None
    url = resolve_url(storage)
    with reading(url, study) as store:
        stored = _stored_attrs(store, study)
        settings = StudySettings.from_attrs(study, stored)
        loaded = optuna.load_study(study_name=study, storage=store)
        trials = loaded.get_trials(deepcopy=False)
        winner = loaded.user_attrs.get(WINNER_KEY)
    complete = {t.number: t for t in trials if t.state.name == "COMPLETE"}
    if not complete:
        # A state of the study, as `hpsearch best` says it (exit 1), not bad input.
        raise HpsearchError(
            f"study {study!r} has no completed trial yet, nothing to export; see "
            f"`hpsearch trials {study} --all`."
        )
    if trial is None:
        chosen = complete[ranked(trials, settings.direction)[0]]
    elif trial in complete:
        chosen = complete[trial]
    else:
        states = {t.number: t.state.name for t in trials}
        what = f"is {states[trial]}" if trial in states else "does not exist"
        raise ConfigError(
            f"--trial {trial}: trial {trial} of study {study!r} {what}; export takes a "
            f"COMPLETE trial, e.g. the best: leave --trial out (`hpsearch trials {study}`)."
        )
    from search._keras import import_keras

    keras = import_keras()
    dataset = None
    if not checkpoint_path(url, study, chosen.number).is_file():  # it is trained again
        dataset = study_dataset(settings, stored, "export where the study's data is")
    model, how = trained_model(settings, dataset, chosen, url)
    partial = out.with_name(f".{out.name}.{os.getpid()}.keras")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        model.save(partial)
        os.replace(partial, out)
    except OSError as exc:
        raise unwritable(exc) from None
    finally:
        partial.unlink(missing_ok=True)
        keras.backend.clear_session()
    metrics = None
    if isinstance(winner, dict) and winner.get("trial") == chosen.number:
        metrics = winner.get("test_metrics")
    card = out.with_suffix(".json")
    data = stored.get("data", {})
    card_fields = {
        "model": out.name,
        "study": study,
        "trial": chosen.number,
        "objective": settings.objective,
        "value": chosen.value,
        "params": dict(chosen.params),
        "builder": settings.model,
        "how": "checkpoint" if how.startswith("checkpoint") else "retrained",
        "test_metrics": metrics,
        "data": {
            key: data.get(key)
            for key in (
                "source",
                "task",
                "input_shape",
                "scaling",
                "num_words",
                "fingerprint",
                "test_split",
            )
            if key != "num_words" or _uses_num_words(str(data.get("source")))
        },
        # output k of the model is class_names[k] (text labels were encoded this way)
        "class_names": data.get("class_names") if data.get("task") != "regression" else None,
    }
    write_page(card, json.dumps(card_fields, indent=2, default=str) + "\n", "model card")
    return Exported(out, study, chosen.number, how, metrics, card)

"""One worker process: joins a stored study and trains its trials until the study is done.

Started by the pool (``search._pool``) as ``python -m search._worker STUDY --slot I ...``,
with the storage URL in ``$HPSEARCH_STORAGE`` (never on the command line, where ``ps`` would
show a password), a pipe for its events in ``$HPSEARCH_EVENTS_FD`` and the pool's process id
in ``$HPSEARCH_POOL_PID`` (a worker whose pool is gone exits). Everything a worker
needs is in the database: the study's stored settings, its target, its trials; the data is
loaded here and must have the stored fingerprint.

``hpsearch run`` starts its first workers warm (``python -m search._worker --warm``) before
the study is ready: they import TensorFlow while the command prepares the study, then read
the same arguments and the storage URL as one JSON line on stdin.

Events are JSON lines ``{"e": method, "a": [args]}``: the ProgressSink calls of the engine,
then one ``exit`` event saying why the worker stopped (target, timeout, recycle, interrupted,
orphaned, error). Ctrl-C and SIGTERM both ask the engine to stop (``request_stop``): it
fails the running trial as "interrupted" at the next batch end, and the worker exits 130.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
from typing import Any

from search import _errors
from search._errors import (
    ConfigError,
    HpsearchError,
    StorageUnavailable,
    debugging,
    describe_error,
)
from search._pool import EVENTS_ENV, POOL_PID_ENV
from search._progress import ProgressSink
from search._storage import STORAGE_ENV, opened_storage, redact, resume_command
from search.engines import WorkerLimits
from search.engines._base import check_stop, request_stop


class PipeProgress(ProgressSink):
    """Sends every progress call to the pool as one JSON line."""

    def __init__(self, fd: int | None) -> None:
        self._out = os.fdopen(fd, "w", buffering=1) if fd is not None else None
        self.orphaned = False

    def _send(self, event: str, *args: Any, **fields: Any) -> None:
        if self._out is None or self.orphaned:
            return
        try:
            self._out.write(json.dumps({"e": event, "a": list(args), **fields}) + "\n")
        except (BrokenPipeError, OSError):
            self.orphaned = True  # the pool is gone; the worker stops after this trial

    def trial_started(self, number: int, worker: int = 0) -> None:
        self._send("trial_started", number)

    def epoch_ended(
        self, number: int, epoch: int, epochs: int, value: float | None, worker: int = 0
    ) -> None:
        self._send("epoch_ended", number, epoch, epochs, value)

    def trial_ended(
        self,
        number: int,
        state: str,
        value: float | None,
        done: int,
        best: float | None,
        reason: str,
        worker: int = 0,
    ) -> None:
        self._send("trial_ended", number, state, value, done, best, reason)

    def note(self, message: str, worker: int = 0) -> None:
        self._send("note", message)

    def exit(self, why: str, message: str = "", code: int = 0, kind: str = "") -> None:
        self._send("exit", why=why, message=message, code=code, kind=kind)


def work(
    study: str,
    url: str,
    *,
    limits: WorkerLimits,
    progress: ProgressSink,
    threads: tuple[int, int] | None = None,
) -> str:
    """Run the study's trials in this process; returns why it stopped (see the engine)."""
    from search._api import stored_settings, study_dataset
    from search.engines import get_proposer
    from search.engines._lifecycle import Lifecycle

    with opened_storage(url, for_writing=True) as storage:
        settings, stored = stored_settings(storage, study, url)
        dataset = study_dataset(settings, stored, "give this worker the same data")
        from search._keras import configure_threads, import_keras

        import_keras()
        if threads is not None:
            configure_threads(*threads)
        # What exists now (TensorFlow's modules, the data, the storage) lives as long as the
        # worker: keep it out of the garbage collector's scans, which Keras forces after
        # every trial (clear_session) and which otherwise cost a tenth of a small trial.
        gc.freeze()
        lifecycle = Lifecycle(
            get_proposer(settings), settings, dataset, storage, url=url, progress=progress
        )
        check_stop()
        try:
            return lifecycle.run(limits)
        except StorageUnavailable as exc:
            raise StorageUnavailable(
                f"{exc}. Its running trial is failed and retried when the search goes on: "
                f"`{resume_command(study, url)}` once the database is back."
            ) from None


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker the moment the pool's process dies (kill -9 of
    `hpsearch run` stops its workers too; their trials are failed as dead and retried).
    Elsewhere the worker notices between trials (WorkerLimits.parent_pid)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _warm_up() -> tuple[list[str], dict[str, str]] | None:
    """A warm worker (``python -m search._worker --warm``, ``search._pool.warm_workers``):
    import what every worker needs, then wait for the pool to send the arguments and
    environment it would otherwise have started this process with. None when the pool
    closes stdin without sending any (the study needed no worker) or interrupts the wait."""
    try:
        import optuna  # noqa: F401
        import sklearn.datasets  # noqa: F401

        from search._keras import import_keras

        import_keras()
        line = sys.stdin.readline()
    except KeyboardInterrupt:
        return None
    if not line:
        return None
    message = json.loads(line)
    return [str(a) for a in message["args"]], {str(k): str(v) for k, v in message["env"].items()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The pool that started this process says who it is: a pool that died before the line
    # below took effect (its worker then has another parent) must not leave it running.
    pool = os.environ.get(POOL_PID_ENV, "")
    parent = int(pool) if pool.isdigit() else os.getppid()
    _die_with_parent()
    if os.getppid() != parent:
        return 1
    if argv == ["--warm"]:
        assigned = _warm_up()
        if assigned is None:
            return 0
        argv, env = assigned
        os.environ.update(env)
    parser = argparse.ArgumentParser(prog="python -m search._worker")
    parser.add_argument("study")
    parser.add_argument("--slot", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=None)
    parser.add_argument("--recycle-after", type=int, default=0)
    parser.add_argument("--max-memory", type=float, default=0.0)
    parser.add_argument("--threads", default=None, help="INTRA,INTER")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    fd = os.environ.get(EVENTS_ENV)
    sink = PipeProgress(int(fd) if fd else None)
    url = os.environ.get(STORAGE_ENV, "")
    threads = None
    if args.threads:
        intra, inter = (int(v) for v in args.threads.split(","))
        threads = (intra, inter)
    limits = WorkerLimits(
        deadline=args.deadline,
        max_trials=args.recycle_after,
        max_rss_mib=args.max_memory,
        parent_pid=parent,
    )
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        why = work(args.study, url, limits=limits, progress=sink, threads=threads)
    except KeyboardInterrupt:
        sink.exit("interrupted", code=130)
        return 130
    except Exception as exc:
        if debugging():
            raise  # the traceback goes to the terminal; the pool sees a dead worker
        message, code = describe_error(exc)
        kind = type(exc).__name__ if isinstance(exc, HpsearchError) else "HpsearchError"
        if isinstance(exc, ConfigError) and not hasattr(_errors, kind):
            kind = "ConfigError"  # e.g. spaces.SpaceError
        sink.exit("error", redact(message, url), code, kind)
        return code
    sink.exit(why)
    return 0


if __name__ == "__main__":
    code = main()
    # Everything is stored and the storage closed; skip the interpreter's teardown of
    # TensorFlow (seconds) so that the pool, and the user, are not kept waiting.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

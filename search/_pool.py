"""A pool of worker processes on this machine, and one display for all of them.

``run_workers`` starts N ``search._worker`` processes on a stored study and supervises them
until none is needed any more. The pool decides nothing about trials: each worker claims its
own from the database (see the Engine contract), so a pool on one machine, plain workers on
others and several ``hpsearch run`` commands all share one study the same way.

The pool:
- takes its first workers warm (``WarmWorkers``): started before the study was ready, they
  imported TensorFlow while ``hpsearch run`` prepared it, and get their arguments on stdin;
- passes every worker's progress on to one ProgressSink (``worker`` = its slot);
- starts a fresh process in a slot whose worker recycled itself (after ``recycle_after``
  trials or past ``max_memory_mib``: TensorFlow keeps a few MiB per trial that only a new
  process gives back);
- starts a fresh process in a slot whose worker died (kill -9, out of memory) or was
  stopped by a signal sent to it alone: its trial is failed and retried once; it gives up
  on a slot whose workers die three times in a row before finishing a trial;
- on Ctrl-C or SIGTERM sends SIGINT to every worker (each fails its running trial as
  "interrupted" and exits), waits for them, and raises SearchInterrupted;
- when a worker stops with an error (the database lost past the retry limit, the data
  changed, too many failures in a row), stops the others the same way and raises that error.

The pool's own process never imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from search import _errors
from search._errors import ConfigError, HpsearchError, SearchInterrupted
from search._machine import available_cores, physical_memory
from search._progress import ProgressSink
from search._storage import STORAGE_ENV, resume_command
from search.engines._base import stop_requested

# The pipe a worker writes its events to (a file descriptor number).
EVENTS_ENV = "HPSEARCH_EVENTS_FD"
# The process id of the pool that started a worker.
POOL_PID_ENV = "HPSEARCH_POOL_PID"

# How long stopping workers may take to store their interrupted trial before they are killed.
STOP_GRACE_S = 60.0
# A slot whose workers die this many times in a row without finishing a trial is given up.
MAX_DEATHS = 3
# The least memory a worker holds (TensorFlow imported, a small data set): 1 GiB.
WORKER_FLOOR_BYTES = 2**30
DEFAULT_RECYCLE_AFTER = 50
DEFAULT_MAX_MEMORY_MIB = 4096.0


def resolve_workers(workers: int | str) -> tuple[int, str]:
    """``--workers N`` or ``auto`` (one per core); returns the count and how it was chosen."""
    if workers == "auto":
        cores = available_cores()
        return cores, f"--workers auto: {cores} worker(s), one per core ({cores} available)"
    try:
        count = int(workers)
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise ConfigError(f"--workers: expected a number >= 1 or 'auto'; got {workers!r}.")
    memory = physical_memory()
    if memory is not None and count * WORKER_FLOOR_BYTES > memory:
        fit = max(1, memory // WORKER_FLOOR_BYTES)
        raise ConfigError(
            f"--workers {count}: a worker holds about 1 GiB (TensorFlow and the data) and "
            f"this machine has {memory / 2**30:.1f} GiB, room for {fit}; give --workers "
            f"{min(fit, available_cores())} or --workers auto (one per core)."
        )
    return count, ""


def thread_caps(workers: int, cores: int | None = None) -> tuple[int, int]:
    """TensorFlow's (intra-op, inter-op) threads per worker, so N workers on C cores do not
    oversubscribe them: the cores shared out, at least one each; one inter-op thread, since
    a small Dense model has no independent ops to run side by side."""
    cores = available_cores() if cores is None else cores
    return max(1, cores // workers), 1


@dataclass
class _Slot:
    index: int
    proc: subprocess.Popen[bytes]
    stream: TextIO
    exit: dict[str, Any] | None = None
    trials: int = 0
    running: int | None = None  # the number of the trial it trains
    buffer: str = ""


@dataclass
class _State:
    stopping: str = ""  # "", "interrupted", "error"
    error: dict[str, Any] | None = None
    gave_up: str = ""
    deaths: dict[int, int] = field(default_factory=dict)


def run_workers(
    study: str,
    url: str,
    *,
    workers: int,
    progress: ProgressSink,
    deadline: float | None = None,
    recycle_after: int = DEFAULT_RECYCLE_AFTER,
    max_memory_mib: float = DEFAULT_MAX_MEMORY_MIB,
    warm: WarmWorkers | None = None,
    command: str = "resume",
) -> str:
    """Run ``workers`` worker processes on ``study`` until none is needed; see the module.

    Workers are taken from ``warm`` while it holds any, then started. Returns why a slot was
    given up (its workers kept dying), or "" when none was. ``command``: the ``hpsearch``
    command an interrupt names to go on with (``resume``, or ``worker`` for a joined study).
    """
    threads = thread_caps(workers)
    selector = selectors.DefaultSelector()
    slots: dict[int, _Slot] = {}
    state = _State()

    def start(index: int) -> None:
        args = ["--slot", str(index), "--recycle-after", str(recycle_after)]
        args += ["--max-memory", str(max_memory_mib), "--threads", f"{threads[0]},{threads[1]}"]
        if deadline is not None:
            args += ["--deadline", repr(deadline)]
        args += ["--", study]  # a name may look like an option
        env = {STORAGE_ENV: url}
        ready = warm.take() if warm is not None else None
        proc, read = ready.assign(args, env) if ready is not None else _spawn(args, env)
        stream = os.fdopen(read, "r", encoding="utf-8")
        slot = _Slot(index, proc, stream)
        slots[index] = slot
        selector.register(stream, selectors.EVENT_READ, slot)

    def dispatch(slot: _Slot, line: str) -> None:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return
        name = event.get("e")
        if name == "exit":
            slot.exit = event
        elif name in ("trial_started", "epoch_ended", "trial_ended", "note"):
            if name == "trial_started":
                slot.running = event.get("a", [None])[0]
            if name == "trial_ended":
                slot.trials += 1
                slot.running = None
                state.deaths[slot.index] = 0
            getattr(progress, name)(*event.get("a", []), worker=slot.index)

    def read(slot: _Slot) -> bool:
        """Read what the worker sent; False at the end of its stream."""
        chunk = os.read(slot.stream.fileno(), 65536).decode("utf-8", "replace")
        if not chunk:
            return False
        slot.buffer += chunk
        *lines, slot.buffer = slot.buffer.split("\n")
        for line in lines:
            dispatch(slot, line)
        return True

    def stop_all(why: str) -> None:
        if not state.stopping:
            state.stopping = why
        for slot in slots.values():
            with contextlib.suppress(ProcessLookupError):
                slot.proc.send_signal(signal.SIGINT)

    def finished(slot: _Slot) -> None:
        selector.unregister(slot.stream)
        slot.stream.close()
        code = slot.proc.wait()
        del slots[slot.index]
        why = (slot.exit or {}).get("why")
        if why == "error":
            if state.error is None:
                state.error = slot.exit
            stop_all("error")
            return
        # Died, or stopped by a signal sent to it alone (not by this pool, nor with it, as a
        # service manager signals every process of the run): its trial is failed and
        # retried, and the slot gets a new worker.
        alone = why == "interrupted" and not arrived
        if (why is None or alone) and not state.stopping:
            signal_name = _signal_name(code)
            deaths = state.deaths.get(slot.index, 0) + 1
            state.deaths[slot.index] = deaths
            if deaths >= MAX_DEATHS:
                state.gave_up = (
                    f"study {study!r}: worker {slot.index} died {deaths} times in a row "
                    f"before finishing a trial (last: pid {slot.proc.pid}, {signal_name}); "
                    "the finished trials are kept. Look for what kills it (memory: "
                    f"--max-worker-memory), then `{resume_command(study, url)}`."
                )
                if slots:  # the others go on; should they reach the target, say it anyway
                    progress.note(
                        f"worker {slot.index} died {deaths} times in a row before finishing a "
                        f"trial (last: pid {slot.proc.pid}, {signal_name}); its slot stays "
                        "empty and the other workers go on. Look for what kills it (memory: "
                        "--max-worker-memory).",
                        worker=slot.index,
                    )
                return
            what = (
                f"died ({signal_name})"
                if why is None
                else "was stopped by a signal sent to it alone"
            )
            progress.note(
                f"worker {slot.index} (pid {slot.proc.pid}) {what}; "
                + (
                    f"its trial {slot.running} will be failed and retried"
                    if slot.running is not None
                    else "it had not started a trial"
                )
                + "; starting a new worker",
                worker=slot.index,
            )
            start(slot.index)
        elif why == "recycle" and not state.stopping:
            start(slot.index)

    with _stop_signals() as arrived:
        for index in range(workers):
            start(index)
        stop_started: float | None = None
        while slots:
            try:
                for key, _ in selector.select(timeout=0.5):
                    slot = key.data
                    if not read(slot):
                        finished(slot)
            except KeyboardInterrupt:  # outside the main thread, or before the handlers
                arrived.append(signal.SIGINT)
                signal_stopped.set()
            if arrived and state.stopping != "interrupted":
                progress.note("stopping: every worker stores its running trial as interrupted")
                stop_all("interrupted")
                state.stopping = "interrupted"
            if state.stopping and stop_started is None:
                stop_started = time.monotonic()
            if stop_started is not None and time.monotonic() - stop_started > STOP_GRACE_S:
                for slot in slots.values():
                    slot.proc.kill()
    selector.close()
    if state.error is not None:
        raise _rebuild(state.error)
    if state.stopping == "interrupted":
        raise SearchInterrupted(
            f"study {study!r} interrupted: finished trials are stored, and a trial stopped "
            "mid-way is run again; continue with "
            f"`{resume_command(study, url, command)}`."
        )
    return state.gave_up


def _spawn(
    args: list[str], env: dict[str, str], *, warm: bool = False
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``python -m search._worker ARGS`` (or a warm one, ``--warm``, whose arguments
    come later on its stdin) with ``env`` added; returns it and the read end of the pipe
    its events come through."""
    read, write = (_above_stdio(fd) for fd in os.pipe())
    full_env = {**os.environ, **env, EVENTS_ENV: str(write), POOL_PID_ENV: str(os.getpid())}
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "search._worker", *(["--warm"] if warm else args)],
            env=full_env,
            pass_fds=(write,),
            stdin=subprocess.PIPE if warm else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # signals reach a worker through the pool only
        )
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
    return proc, read


def _above_stdio(fd: int) -> int:
    """``fd``, or a copy of it numbered 3 or more: a process started with its stdin or
    stdout closed gets those numbers for its first pipes, and a worker's events pipe must not
    be one its stdin or stdout (/dev/null) replaces."""
    if fd > 2:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return moved


@dataclass
class WarmWorker:
    """A worker process started before its study is ready: it imports what every worker
    needs (TensorFlow and Keras, Optuna, scikit-learn), the seconds most of a short search
    would otherwise wait for, then waits for its arguments on stdin (``assign``)."""

    proc: subprocess.Popen[bytes]
    events: int  # the read end of its events pipe

    def assign(self, args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
        """Send the worker its arguments and environment (the storage URL, never on a
        command line); returns it and its events pipe, as ``_spawn`` does. A worker that died
        warming up is returned all the same: its events pipe ends at once, and the pool
        treats it as any worker that died."""
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            self.proc.stdin.write((json.dumps({"args": args, "env": env}) + "\n").encode())
        with contextlib.suppress(BrokenPipeError, OSError):
            self.proc.stdin.close()
        return self.proc, self.events


class WarmWorkers:
    """Warm workers started together for ``run_workers`` to take; ``close`` (or the end of a
    ``with`` block) kills those not taken, none of which has touched a study: the study
    needed none, or preparing it failed."""

    def __init__(self, count: int) -> None:
        self._idle: list[WarmWorker] = []
        try:
            for _ in range(count):
                self._idle.append(WarmWorker(*_spawn([], {}, warm=True)))
        except BaseException:
            self.close()
            raise

    def take(self) -> WarmWorker | None:
        return self._idle.pop(0) if self._idle else None

    def pids(self) -> list[int]:
        """The process ids of the workers not taken yet, in the order they are taken."""
        return [worker.proc.pid for worker in self._idle]

    def close(self) -> None:
        while self._idle:
            worker = self._idle.pop()
            with contextlib.suppress(ProcessLookupError):
                worker.proc.kill()
            worker.proc.wait()
            if worker.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    worker.proc.stdin.close()
            os.close(worker.events)

    def __enter__(self) -> WarmWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _signal_name(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


def _rebuild(event: dict[str, Any]) -> HpsearchError:
    """The error a worker stopped with, as the same kind of exception here."""
    cls = getattr(_errors, str(event.get("kind", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, HpsearchError)):
        cls = HpsearchError
    error = cls(str(event.get("message", "a worker stopped with an error")))
    code = event.get("code")
    if isinstance(code, int) and code != error.exit_code:
        error.exit_code = code
    return error


# Set once a pool of this process was stopped by Ctrl-C or SIGTERM: the command line then
# lets a second one pass while it stores and reports (the pool itself never reads it).
signal_stopped = threading.Event()


@contextlib.contextmanager
def _stop_signals() -> Iterator[list[int]]:
    """Ctrl-C and SIGTERM to the pool, noted for its loop to act on (main thread only).

    The handlers only note the signal: raising from a handler could land anywhere, even in
    a garbage-collection callback, where it would be printed and lost."""
    arrived: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield arrived
        return
    wanted = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in wanted}

    def note(signum: int, _frame: object) -> None:
        arrived.append(signum)
        signal_stopped.set()

    for s in wanted:
        signal.signal(s, note)
    if stop_requested.is_set():  # one came before, and its KeyboardInterrupt was lost
        arrived.append(signal.SIGINT)
    try:
        yield arrived
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)

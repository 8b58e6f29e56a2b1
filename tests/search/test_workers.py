"""Many workers on one study: real processes started at the same instant, real SQLite files,
a real PostgreSQL server restarted under them, workers killed with SIGKILL, SIGTERM, SIGINT."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import FrozenTrial, TrialState

import search
from reports import history_of
from search._errors import DataError
from search._pool import WarmWorkers, run_workers
from search._progress import NullProgress
from search._storage import exclusive, opened_storage

pytestmark = pytest.mark.slow
HPSEARCH = str(Path(sys.executable).with_name("hpsearch"))
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
RECORD_KEYS = {"history", "epochs_run", "best_epoch", "best_metrics", "early_stopped"}
RECORD_KEYS |= {"pruned", "param_count", "duration_s", "engine", "worker", "rss_mib"}
TINY = {
    "name": "tiny",
    "params": {
        "units": {"type": "int", "low": 4, "high": 32, "log": True},
        "learning_rate": {"type": "float", "low": 0.001, "high": 0.05, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.3},
        "batch_size": 32,
    },
}
PG_CLUSTER = ["pg_ctlcluster", "--skip-systemctl-redirect"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HPSEARCH_STORAGE"}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore", **extra})
    return env


def _space(folder: Path) -> str:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return str(path)


def _start(
    args: list[str], cwd: Path, *, session: bool = False, **env: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [HPSEARCH, *args], cwd=cwd, env=_env(**env), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=session,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    return proc.returncode, out, err


def _trials(url: str, study: str) -> list[FrozenTrial]:
    with opened_storage(url, for_writing=False) as storage:
        return optuna.load_study(study_name=study, storage=storage).get_trials()


def _wait_for(url: str, study: str, test: Picker) -> FrozenTrial:
    """Poll the study until ``test`` picks a trial (at most 300 s)."""
    deadline = time.monotonic() + 300
    seen = "no study"
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            trials = _trials(url, study)
        except Exception:  # the database or the study does not exist yet
            continue
        found = test(trials)
        if found is not None:
            return found
        seen = ", ".join(
            f"{t.number} {t.state.name} ({len(history_of(t).get('loss', []))} epochs)"
            for t in trials
        )
    raise AssertionError(f"study {study!r} never reached the awaited state; last seen: {seen}")


Picker = Callable[[list[FrozenTrial]], FrozenTrial | None]


def _training(epochs: int, *, after_complete: int = 0, at_most: int | None = None) -> Picker:
    """A RUNNING trial that has stored ``epochs`` epochs (once ``after_complete`` finished),
    and not more than ``at_most``: one that will not finish while the caller acts on it."""

    def test(trials: list[FrozenTrial]) -> FrozenTrial | None:
        if sum(t.state in FINISHED for t in trials) < after_complete:
            return None
        for trial in trials:
            ran = len(history_of(trial).get("loss", []))
            if trial.state == TrialState.RUNNING and epochs <= ran <= (at_most or ran):
                return trial
        return None

    return test


def _check_study(url: str, study: str, target: int, epochs: int) -> list[FrozenTrial]:
    """Exactly ``target`` finished trials, distinct params, every record complete."""
    trials = _trials(url, study)
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == target, [t.state.name for t in trials]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    numbers = [t.number for t in trials]
    assert len(set(numbers)) == len(numbers)
    points = {tuple(sorted(t.params.items())) for t in finished}
    assert len(points) == target, "concurrent workers evaluated the same point"
    for trial in finished:
        assert set(trial.user_attrs) >= RECORD_KEYS
        ran = trial.user_attrs["epochs_run"]
        assert 1 <= ran <= epochs
        assert sorted(trial.intermediate_values) == list(range(ran))
        history = trial.user_attrs["history"]
        assert all(len(v) == ran for v in history.values())
        assert [trial.intermediate_values[i] for i in range(ran)] == pytest.approx(
            history["val_loss"]
        )
    return trials


def _run_args(space: str, study: str, trials: int, epochs: int, url: str) -> list[str]:
    return ["run", "--data", "iris", "--space", space, "--study", study, "--trials", str(trials),
            "--epochs", str(epochs), "--patience", str(epochs), "--pruner", "none",
            "--storage", url, "--quiet", "--no-report"]  # fmt: skip


def test_four_runs_started_at_once_on_a_new_sqlite_file_share_one_study(tmp_path: Path) -> None:
    """Plain `hpsearch run` commands behave like workers: one schema, one study, the exact
    target, no point twice."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    args = _run_args(_space(tmp_path), "race", 10, 3, url)
    procs = [_start(args, tmp_path) for _ in range(4)]
    results = [_finish(p) for p in procs]
    for code, _, err in results:
        assert code == 0, err
        assert "Traceback" not in err
    trials = _check_study(url, "race", target=10, epochs=3)
    assert len(trials) == 10  # nothing started that the study did not need
    workers = {t.user_attrs["worker"]["pid"] for t in trials}
    assert len(workers) >= 2, "the trials were not shared between the processes"


def test_readers_of_a_database_being_created_never_break_its_creation(tmp_path: Path) -> None:
    """`hpsearch studies` or a report read at the instant a first run creates the tables:
    opening a storage stamps Optuna's schema version, so a reader must not race the writer."""
    space = _space(tmp_path)
    for attempt in range(3):
        url = f"sqlite:///{tmp_path / f'fresh{attempt}.db'}"
        proc = _start(_run_args(space, "fresh", 1, 1, url), tmp_path)
        reads = 0
        while proc.poll() is None:
            # No file yet, or no tables yet: a reader may fail; the writer must not.
            with contextlib.suppress(Exception), opened_storage(url, for_writing=False) as store:
                store.get_all_studies()
                reads += 1
        code, _, err = _finish(proc)
        assert code == 0, err
        assert reads > 0
        assert len(_trials(url, "fresh")) == 1


@pytest.mark.service
def test_eight_workers_on_a_new_postgresql_database(postgres_url: str, tmp_path: Path) -> None:
    """Two pools of four started at the same instant on a new database: eight workers."""
    args = [*_run_args(_space(tmp_path), "pg8", 16, 2, postgres_url), "--workers", "4"]
    procs = [_start(args, tmp_path) for _ in range(2)]
    for code, _, err in (_finish(p) for p in procs):
        assert code == 0, err
        assert "Traceback" not in err
    trials = _check_study(postgres_url, "pg8", target=16, epochs=2)
    assert len(trials) == 16
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) >= 4


def test_a_seeded_single_worker_search_is_reproducible(tmp_path: Path) -> None:
    space = _space(tmp_path)
    params = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.db"
        code, _, err = _finish(_start(_run_args(space, "same", 3, 1, url), tmp_path))
        assert code == 0, err
        params.append([t.params for t in _trials(url, "same")])
    assert params[0] == params[1]
    assert len({tuple(sorted(p.items())) for p in params[0]}) == 3


def test_the_python_api_leaves_the_terminal_to_its_caller(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``search.run`` with no progress sink writes nothing of its own: not even Optuna's
    "A new study created" line, whatever the caller's Optuna verbosity (left as it was)."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        result = search.run(
            "iris", _space(tmp_path), trials=1, epochs=1, study="api",
            storage=f"sqlite:///{tmp_path / 'api.db'}", write_report=False,
        )  # fmt: skip
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(level)
    assert result.finished == 1
    out, err = capfd.readouterr()
    assert out == ""
    assert "A new study created" not in err and "[I " not in err, err


def test_kill_9_of_one_worker_of_a_pool(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k9.db'}"
    args = [*_run_args(_space(tmp_path), "k9", 5, 300, url), "--workers", "2"]
    args.remove("--quiet")
    proc = _start(args, tmp_path)
    # A victim with most of its 300 epochs ahead: it cannot end before the kill lands.
    victim = _wait_for(url, "k9", _training(2, after_complete=1, at_most=100))
    os.kill(victim.user_attrs["worker"]["pid"], signal.SIGKILL)
    code, _, err = _finish(proc)
    assert code == 0, err
    said = " ".join(err.split())  # the progress display wraps its lines
    assert f"died (signal SIGKILL); its trial {victim.number} will be failed and retried" in said
    assert "Traceback" not in err
    trials = _check_study(url, "k9", target=5, epochs=300)
    killed = trials[victim.number]
    assert killed.state == TrialState.FAIL
    assert "died" in killed.user_attrs["fail_reason"]
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].params == victim.params
    assert retries[0].user_attrs["seed"] == victim.number  # --seed 0: as the attempt would
    assert retries[0].state in FINISHED


def test_a_worker_stopped_by_a_signal_of_its_own_is_replaced(tmp_path: Path) -> None:
    """SIGTERM to a worker alone (not to the run): its trial is failed and retried, a new
    worker takes the slot and the run reaches its target, as after kill -9."""
    url = f"sqlite:///{tmp_path / 'own.db'}"
    args = _run_args(_space(tmp_path), "own", 2, 300, url)
    args.remove("--quiet")
    proc = _start(args, tmp_path)
    victim = _wait_for(url, "own", _training(2, at_most=100))
    os.kill(victim.user_attrs["worker"]["pid"], signal.SIGTERM)
    code, _, err = _finish(proc)
    assert code == 0, err
    said = " ".join(err.split())
    assert f"was stopped by a signal sent to it alone; its trial {victim.number} will be" in said
    trials = _check_study(url, "own", target=2, epochs=300)
    assert trials[victim.number].user_attrs["fail_reason"] == "interrupted"
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].state in FINISHED


@pytest.mark.parametrize(
    ("signum", "group"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGTERM, True)],
    ids=["ctrl-c", "sigterm", "sigterm-to-every-process"],  # the last as systemd stops a unit
)
def test_ctrl_c_or_sigterm_stops_every_worker_and_the_study_resumes(
    tmp_path: Path, signum: int, group: bool
) -> None:
    url = f"sqlite:///{tmp_path / 'stop.db'}"
    args = [*_run_args(_space(tmp_path), "stop", 4, 300, url), "--workers", "2"]
    args.remove("--quiet")

    def both_training(trials: list[FrozenTrial]) -> FrozenTrial | None:
        # Both far from their last epoch, so neither ends before the signal comes.
        running = [
            t for t in trials
            if t.state == TrialState.RUNNING and 1 <= len(history_of(t).get("loss", [])) <= 200
        ]  # fmt: skip
        return running[0] if len(running) == 2 else None

    proc = _start(args, tmp_path, session=group)
    _wait_for(url, "stop", both_training)
    if group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    code, _, err = _finish(proc, timeout=120)
    assert code == 130, err
    assert "hpsearch resume stop" in err and "Traceback" not in err
    assert "sent to it alone" not in err  # stopped with the run: not replaced
    trials = _trials(url, "stop")
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    interrupted = [t for t in failed if t.user_attrs.get("fail_reason") == "interrupted"]
    assert len(interrupted) == len(failed) == 2
    assert all(t.user_attrs["early_stopped"] is False for t in interrupted)
    # Each is queued to run again with its parameters, as a killed trial is.
    queued = [t for t in trials if t.state == TrialState.WAITING]
    assert sorted(t.system_attrs["failed_trial"] for t in queued) == sorted(
        t.number for t in interrupted
    )
    assert not [t for t in queued if "history" in t.user_attrs]  # the copy holds no record

    again = _start(["resume", "stop", "--storage", url, "--quiet", "--no-report",
                    "--workers", "2"], tmp_path)  # fmt: skip
    code, _, err = _finish(again)
    assert code == 0, err
    trials = _trials(url, "stop")
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == 4
    for stopped in interrupted:
        retries = [t for t in trials if t.system_attrs.get("failed_trial") == stopped.number]
        assert len(retries) == 1 and retries[0].params == stopped.params
        assert retries[0].user_attrs["seed"] == stopped.user_attrs["seed"]
        assert retries[0].state in FINISHED


def test_ctrl_c_twice_stops_as_once_and_a_point_stopped_twice_is_trained(tmp_path: Path) -> None:
    """Ctrl-C pressed twice in a row stops the run as once does (the same line, no
    traceback); the point it stopped, stopped again when the search goes on, is queued
    again: a stop by the user does not use up the retry a killed trial gets."""
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    args = _run_args(_space(tmp_path), "twice", 2, 300, url)
    args.remove("--quiet")
    resume = ["resume", "twice", "--storage", url, "--no-report"]
    for attempt, command in enumerate((args, resume)):
        proc = _start(command, tmp_path, session=True)
        _wait_for(url, "twice", _training(1, at_most=200))
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.3)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        code, _, err = _finish(proc, timeout=120)
        assert code == 130, err
        assert "Traceback" not in err and "Exception" not in err, err
        assert err.rstrip().splitlines()[-1].startswith("study 'twice' interrupted:"), err
        assert "hpsearch resume twice" in err
        trials = _trials(url, "twice")
        stopped = [t for t in trials if t.state == TrialState.FAIL]
        assert [t.user_attrs["fail_reason"] for t in stopped] == ["interrupted"] * (attempt + 1)
        queued = [t for t in trials if t.state == TrialState.WAITING]
        assert [t.system_attrs["retry_history"] for t in queued] == [
            [s.number for s in stopped]
        ]  # the retry of the point stopped (again)
        assert queued[0].params == stopped[0].params
    code, _, err = _finish(_start([*resume, "--quiet"], tmp_path))
    assert code == 0, err
    trials = _check_study(url, "twice", target=2, epochs=300)
    trained = [t for t in trials if t.system_attrs.get("failed_trial") == stopped[0].number]
    assert [t.state for t in trained] == [TrialState.FAIL, TrialState.COMPLETE]  # its retries
    assert trained[-1].params == stopped[0].params  # the point stopped twice, trained


def test_workers_recycle_themselves_and_the_study_goes_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'recycle.db'}"
    args = [*_run_args(_space(tmp_path), "recycle", 5, 1, url), "--recycle-after", "2"]
    code, _, err = _finish(_start(args, tmp_path))
    assert code == 0, err
    trials = _check_study(url, "recycle", target=5, epochs=1)
    pids = [t.user_attrs["worker"]["pid"] for t in trials]
    assert len(set(pids)) == 3  # 2 + 2 + 1 trials
    assert all(pids.count(pid) <= 2 for pid in pids)


def test_a_worker_joins_a_study_on_its_stored_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'join.db'}"
    code, _, err = _finish(_start(_run_args(_space(tmp_path), "join", 2, 1, url), tmp_path))
    assert code == 0, err
    # Raise the stored target from elsewhere, then a worker finishes it, and no more.
    again = _start(["resume", "join", "--trials", "3", "--storage", url, "--timeout", "0",
                    "--quiet", "--no-report"], tmp_path)  # fmt: skip
    assert _finish(again)[0] == 0
    code, out, err = _finish(_start(["worker", "join", "--storage", url], tmp_path))
    assert code == 0, err
    assert out == "" and "3/3 finished" in err
    _check_study(url, "join", target=3, epochs=1)
    missing = _start(["worker", "nosuch", "--storage", url], tmp_path)
    code, _, err = _finish(missing)
    assert code == 1 and "nosuch" in err and "Traceback" not in err


def test_a_target_lowered_while_a_run_goes_on_is_the_one_it_says(tmp_path: Path) -> None:
    """`resume --trials 1` from another terminal while a run of 8 trains: the run's workers
    stop at the target now stored (what the study holds: nothing dropped), and the run says
    it reached that target, not that its workers stopped before its own."""
    url = f"sqlite:///{tmp_path / 'low.db'}"
    args = [a for a in _run_args(_space(tmp_path), "low", 8, 40, url) if a != "--quiet"]
    run = _start(args, tmp_path)
    try:
        _wait_for(url, "low", _training(1, after_complete=1))
        lower = _start(["resume", "low", "--trials", "1", "--storage", url, "--timeout", "0",
                        "--quiet", "--no-report"], tmp_path)  # fmt: skip
        assert _finish(lower)[0] == 0
        code, _, err = _finish(run)
    finally:
        run.kill()
    assert code == 0, err
    held = sum(t.state in FINISHED for t in _trials(url, "low"))
    assert 1 <= held < 8
    # The trial running when the target was lowered finished too (nothing is dropped).
    assert f"study low reached its target: {held}/{held} finished" in err or re.search(
        rf"study low reached its target: {held} finished \(the target, \d, was", err
    ), err


def _warm_children() -> list[int]:
    """The warm workers this process started that are still alive."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if f"\nPPid:\t{me}\n" in status and b"search._worker\x00--warm" in command:
            found.append(int(entry.name))
    return found


def test_warm_workers_are_taken_first_and_the_idle_ones_are_stopped(tmp_path: Path) -> None:
    """The pool's first workers are the warm ones (started before the study was ready):
    they train its trials with the study's settings; one not taken is killed, not left
    importing TensorFlow."""
    url = f"sqlite:///{tmp_path / 'warm.db'}"
    created = [*_run_args(_space(tmp_path), "warm", 2, 1, url), "--timeout", "0"]
    code, _, err = _finish(_start(created, tmp_path))  # the study, and no trial yet
    assert code == 0, err
    assert _trials(url, "warm") == []
    with WarmWorkers(2) as warm:
        first, second = warm.pids()
        # Both run `search._worker --warm` (a child shows it once it has started Python).
        deadline = time.monotonic() + 30
        while sorted(_warm_children()) != sorted([first, second]):
            assert time.monotonic() < deadline, _warm_children()
            time.sleep(0.05)
        run_workers("warm", url, workers=1, progress=NullProgress(), warm=warm)
        assert warm.pids() == [second]
    assert _warm_children() == []
    trials = _check_study(url, "warm", target=2, epochs=1)
    assert {t.user_attrs["worker"]["pid"] for t in trials} == {first}


class _Notes(NullProgress):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str, worker: int = 0) -> None:
        self.notes.append(message)


def test_a_warm_worker_that_dies_before_its_first_trial_is_replaced(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lost.db'}"
    created = [*_run_args(_space(tmp_path), "lost", 1, 1, url), "--timeout", "0"]
    code, _, err = _finish(_start(created, tmp_path))
    assert code == 0, err
    progress = _Notes()
    with WarmWorkers(1) as warm:
        (victim,) = warm.pids()
        os.kill(victim, signal.SIGKILL)
        run_workers("lost", url, workers=1, progress=progress, warm=warm)
    (note,) = progress.notes
    assert f"(pid {victim}) died (signal SIGKILL); it had not started a trial" in note
    trials = _check_study(url, "lost", target=1, epochs=1)
    assert trials[0].user_attrs["worker"]["pid"] != victim


def test_a_search_that_fails_before_its_first_trial_leaves_no_worker(tmp_path: Path) -> None:
    """`run` starts its workers while it prepares the study; when preparing fails (here the
    data file is not a data file), they are gone by the time the error reaches the caller,
    and the study was never created."""
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01 not a table")
    url = f"sqlite:///{tmp_path / 'failed.db'}"
    with pytest.raises(DataError):
        search.run(str(bad), _space(tmp_path), trials=2, storage=url, workers=2,
                   write_report=False)  # fmt: skip
    assert _warm_children() == []
    with opened_storage(url, for_writing=False) as storage:
        assert optuna.get_all_study_names(storage) == []


def _workers_of(pool: int) -> list[int]:
    """The live worker processes the pool process ``pool`` started (its pid is in their
    environment), wherever they were reparented."""
    mark = f"HPSEARCH_POOL_PID={pool}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # a zombie is dead, only not reaped yet
            if mark in (entry / "environ").read_bytes().split(b"\x00"):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile
            continue
    return found


def _blocked_in_preparation(tmp_path: Path, url: str) -> subprocess.Popen[str]:
    """`hpsearch run` with two workers, held while it prepares its study (the test holds
    the lock the study is created under) once its warm worker exists."""
    args = [*_run_args(_space(tmp_path), "held", 2, 1, url), "--workers", "2"]
    proc = _start(args, tmp_path)
    deadline = time.monotonic() + 60
    while not _workers_of(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    return proc


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="warm workers need 2 cores")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_a_run_stopped_while_it_prepares_leaves_no_worker(tmp_path: Path, signum: int) -> None:
    """SIGTERM while the study is being prepared stops the run as Ctrl-C does (one line,
    130); kill -9 at the moment its warm worker starts takes the worker with it, even before
    that worker could ask the kernel to (it checks which process started it)."""
    url = f"sqlite:///{tmp_path / 'held.db'}"
    with exclusive(url, "study:held"):
        proc = _blocked_in_preparation(tmp_path, url)
        proc.send_signal(signum)
        proc.wait(timeout=60)  # not communicate(): a worker left over holds its stderr
    # A worker notices within the second it takes to start Python and import hpsearch; left
    # to itself, it would import TensorFlow first (seconds) and only then find its pool gone.
    deadline = time.monotonic() + 3
    while _workers_of(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _workers_of(proc.pid) == []
    code, _, err = _finish(proc)
    if signum == signal.SIGTERM:
        assert code == 130, err
        assert "'held': interrupted before a trial started" in err, err
        assert len(err.strip().splitlines()) == 1
    else:
        assert code == -signal.SIGKILL


def test_a_run_started_with_stdin_and_stdout_closed_hears_every_worker(tmp_path: Path) -> None:
    """A process started with fds 0 and 1 closed gets them for its first pipes: a worker's
    events pipe must not be one of them (the worker's /dev/null stdout would replace it, its
    progress would be lost, and the pool would take it for dead)."""
    url = f"sqlite:///{tmp_path / 'closed.db'}"
    args = [*_run_args(_space(tmp_path), "closed", 2, 1, url), "--workers", "2"]
    args.remove("--quiet")
    proc = subprocess.run(
        ["bash", "-c", 'exec "$@" <&- >&-', "bash", HPSEARCH, *args], cwd=tmp_path,
        env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "died" not in proc.stderr
    assert "2/2 finished" in proc.stderr
    trials = _check_study(url, "closed", target=2, epochs=1)
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) <= 2


# --- a PostgreSQL server that restarts, or stays down ---------------------------------


def _cluster(action: str) -> None:
    version = os.listdir("/etc/postgresql")[0]
    subprocess.run([*PG_CLUSTER, version, "main", action], check=True, capture_output=True)


@contextlib.contextmanager
def _server_back_afterwards() -> Iterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _cluster("start")
        for _ in range(60):
            ready = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], check=False)
            if ready.returncode == 0:
                break
            time.sleep(0.5)


@pytest.mark.service
def test_workers_ride_out_a_postgresql_restart(postgres_url: str, tmp_path: Path) -> None:
    args = [*_run_args(_space(tmp_path), "restart", 5, 100, postgres_url), "--workers", "2"]
    proc = _start(args, tmp_path)
    _wait_for(postgres_url, "restart", _training(2))
    with _server_back_afterwards():
        _cluster("restart")
    code, _, err = _finish(proc)
    assert code == 0, err
    assert "Traceback" not in err
    _check_study(postgres_url, "restart", target=5, epochs=100)


@pytest.mark.service
def test_a_server_down_past_the_limit_stops_with_one_line_and_resume_recovers(
    postgres_url: str, tmp_path: Path
) -> None:
    args = _run_args(_space(tmp_path), "down", 3, 300, postgres_url)
    proc = _start(args, tmp_path, HPSEARCH_DB_RETRY="3")
    victim = _wait_for(postgres_url, "down", _training(2, at_most=50))  # far from its end
    with _server_back_afterwards():
        _cluster("stop")
        code, _, err = _finish(proc, timeout=180)
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "lost the database" in lines[0], err
    assert "Traceback" not in err and "hpsearch resume down" in lines[0]

    resumed = _start(["resume", "down", "--storage", postgres_url, "--quiet", "--no-report"],
                     tmp_path)  # fmt: skip
    code, _, err = _finish(resumed)
    assert code == 0, err
    trials = _check_study(postgres_url, "down", target=3, epochs=300)
    assert trials[victim.number].state == TrialState.FAIL
    assert "died" in trials[victim.number].user_attrs["fail_reason"]


def test_an_interrupt_whose_exception_was_lost_still_stops_the_pool() -> None:
    """Ctrl-C while `run` starts raises KeyboardInterrupt wherever Python is, even in a
    garbage-collection callback, where Python prints it and carries on: the command's
    handler also remembers it (stop_requested), and the pool acts on that."""
    from search._pool import _stop_signals
    from search.engines._base import stop_requested

    stop_requested.set()
    try:
        with _stop_signals() as arrived:
            assert arrived == [signal.SIGINT]
    finally:
        stop_requested.clear()
    with _stop_signals() as arrived:
        assert arrived == []
    # Nor is such an interrupt printed as a traceback by the command.
    lost = (
        "import sys, weakref\n"
        "from search import cli\n"
        "sys.unraisablehook = cli._unraisable\n"
        "class A: pass\n"
        "a = A()\n"
        "def callback(ref): raise KeyboardInterrupt\n"
        "r = weakref.ref(a, callback)\n"
        "del a\n"
        "print('went on')\n"
    )
    out = subprocess.run([sys.executable, "-c", lost], capture_output=True, text=True)
    assert out.stdout == "went on\n" and out.stderr == "", out.stderr


@pytest.mark.parametrize("engine", ["optuna", "kerastuner"])
def test_a_trial_turns_running_already_holding_its_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """A worker killed at any moment of its claim leaves no running trial of nobody's (the
    next run would have to wait it out, and a Hyperband oracle would meanwhile take it for
    a trial in progress): a new trial or a queued retry turns RUNNING holding its worker and
    seed already."""
    from optuna.storages import RDBStorage

    from search._worker import work
    from search.engines._base import WorkerLimits

    url = f"sqlite:///{tmp_path / 'claim.db'}"
    args = [*_run_args(_space(tmp_path), "claim", 2, 100, url), "--engine", engine]
    if engine == "kerastuner":  # its oracles decide when a trial stops
        args = [a for a in args if a not in ("--pruner", "none")]
    proc = _start(args, tmp_path)
    try:
        victim = _wait_for(url, "claim", _training(1, at_most=50))
        os.kill(victim.user_attrs["worker"]["pid"], signal.SIGKILL)
    finally:
        proc.kill()
        _finish(proc)

    seen: list[tuple[int, dict[str, object]]] = []
    turn = RDBStorage.set_trial_state_values

    def spied(self: RDBStorage, trial_id: int, state: TrialState, *a: object, **k: object) -> bool:
        if state == TrialState.RUNNING:
            seen.append((trial_id, dict(self.get_trial_user_attrs(trial_id))))
        return turn(self, trial_id, state, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(RDBStorage, "set_trial_state_values", spied)
    # The trials run in this process, through the worker's own entry point.
    assert work("claim", url, limits=WorkerLimits(), progress=NullProgress()) == "target"

    trials = _trials(url, "claim")
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert sum(t.state in FINISHED for t in trials) == 2
    assert len(seen) == len(trials) - 1 - victim.number  # the retry and any trial after it
    for _, attrs in seen:
        assert {"worker", "seed", "engine"} <= set(attrs), attrs
        assert attrs["worker"]["pid"] == os.getpid()  # type: ignore[index]


def _children(pid: int) -> set[int]:
    """The live (not zombie) worker processes started by ``pid`` (not the short-lived
    commands a library may run, such as ``uname``)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
            if (
                int(fields[1]) == pid
                and fields[0] not in ("Z", "X")
                and b"search._worker" in command
            ):
                found.add(int(stat.parent.name))
    return found


def test_a_slot_whose_workers_keep_dying_is_given_up_and_the_others_go_on(tmp_path: Path) -> None:
    """Each new worker of one slot is killed as it starts: after three deaths in a row the
    pool gives that slot up, says so, and the other worker reaches the target alone."""
    url = f"sqlite:///{tmp_path / 'die.db'}"
    args = [*_run_args(_space(tmp_path), "die", 2, 5, url), "--workers", "2"]
    args.remove("--quiet")
    proc = _start(args, tmp_path)
    survivor, killed = None, []
    deadline = time.monotonic() + 120
    try:
        while len(killed) < 3 and time.monotonic() < deadline and proc.poll() is None:
            children = _children(proc.pid)
            if survivor is None and len(children) == 2:
                survivor = max(children)
            for pid in children - {survivor} if survivor is not None else ():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)
        code, _, err = _finish(proc)
    finally:
        proc.kill()
    assert len(killed) == 3, (killed, proc.returncode)
    assert code == 0, err
    said = " ".join(err.split())
    assert "died 3 times in a row before finishing a trial" in said, said
    assert "the other workers go on" in said and "Traceback" not in err
    trials = _trials(url, "die")
    assert sum(t.state in FINISHED for t in trials) == 2
    assert {t.user_attrs["worker"]["pid"] for t in trials} == {survivor}

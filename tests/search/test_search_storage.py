"""Storage URLs, password masking, and failing the trials of dead workers."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search import StorageError
from search._api import default_report_path, default_study_name
from search._records import epoch_key, epoch_row
from search._storage import (
    CUT_SHORT,
    DEFAULT_STORAGE,
    GRACE_PERIOD,
    INTERRUPTED,
    POINT_GIVEN,
    exclusive,
    fail_cut_short,
    fail_dead_trials,
    mask_url,
    open_storage,
    opened_storage,
    redact,
    resolve_url,
    resume_command,
    worker_identity,
)
from search._winner import checkpoint_dir
from spaces import load_space


def test_resolve_url_flag_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPSEARCH_STORAGE", raising=False)
    assert resolve_url(None) == DEFAULT_STORAGE == "sqlite:///hpsearch.db"
    monkeypatch.setenv("HPSEARCH_STORAGE", "sqlite:///from-env.db")
    assert resolve_url(None) == "sqlite:///from-env.db"
    assert resolve_url("sqlite:///flag.db") == "sqlite:///flag.db"
    assert resolve_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    # A password with an unencoded '@' reaches the driver whole, percent-encoded.
    assert resolve_url("postgresql://u:p@ss@h:5432/db") == "postgresql+psycopg://u:p%40ss@h:5432/db"


def test_passwords_are_masked() -> None:
    url = "postgresql+psycopg://alice:s3cret-pw@db.example:5432/studies"
    assert "s3cret-pw" not in mask_url(url)
    assert "alice" in mask_url(url) and "db.example" in mask_url(url)


@pytest.mark.parametrize(
    ("url", "shown", "secret"),
    [
        ("postgresql://al:pw-1234@h:5432/db", "postgresql://al:***@h:5432/db", "pw-1234"),
        ("postgresql://al@h/db?password=pw-1234", "postgresql://al@h/db?password=***", "pw-1234"),
        (
            "postgresql://al@h/db?sslpassword=pw-1234&x=1",
            "postgresql://al@h/db?sslpassword=***&x=1",
            "pw-1234",
        ),
        ("postgresql://al:p@w-1234@h/db", "postgresql://al:***@h/db", "p@w-1234"),
        ("postgresql://al:p%40w-1234@h/db", "postgresql://al:***@h/db", "p@w-1234"),
        ("postgresql://al:pw/12:34@h/db", "postgresql://al:***@h/db", "pw/12:34"),
        ("postgresql:///db?host=/run/pg&password=pw-1234", "password=***", "pw-1234"),
        ("not a url but:pw-1234@host", "***@host", "pw-1234"),
    ],
)
def test_every_form_of_password_is_masked(url: str, shown: str, secret: str) -> None:
    from urllib.parse import quote

    masked = mask_url(url)
    assert shown in masked
    assert secret not in masked and quote(secret, safe="") not in masked
    # and in any text that carries it, in either spelling
    text = f"could not connect to {url}: password {secret} / {quote(secret, safe='')} rejected"
    cleaned = redact(text, url)
    assert secret not in cleaned and quote(secret, safe="") not in cleaned


def test_a_url_without_password_is_shown_as_it_is() -> None:
    assert mask_url("sqlite:///studies.db") == "sqlite:///studies.db"
    assert redact("sqlite:///studies.db is locked", "sqlite:///studies.db") == (
        "sqlite:///studies.db is locked"
    )


def test_a_short_password_is_masked_where_it_stands_alone() -> None:
    url = "postgresql://al:x1@h/db"
    assert redact("auth failed for x1 (max1 tries)", url) == "auth failed for *** (max1 tries)"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # The password is the user's name and the start of the scheme.
        (
            "postgresql://postgres:postgres@127.0.0.1:5432/db",
            "postgresql://***:***@127.0.0.1:5432/db",
        ),
        # A short one is the start of the host.
        ("postgresql://al:127@127.0.0.1:5432/db", "postgresql://al:***@127.0.0.1:5432/db"),
        # A piece of a password holding ":" is in the scheme.
        ("postgresql://al:gres:s3cret@127.0.0.1/db", "postgresql://al:***@127.0.0.1/db"),
    ],
)
def test_a_password_found_elsewhere_in_the_url_leaves_it_readable(url: str, shown: str) -> None:
    """Only the password's places are masked: the scheme, the host and hpsearch's own
    driver name stay as they are, in the URL and in a message that carries it."""
    resolved = resolve_url(url)
    assert mask_url(resolved) == shown
    text = f'{resolved}: connection to server at "127.0.0.1" failed'
    assert redact(text, resolved) == f'{shown}: connection to server at "127.0.0.1" failed'
    # A message already holding the masked URL keeps it; one holding it as typed shows it
    # masked.
    assert redact(f"cannot open {shown}", resolved) == f"cannot open {shown}"
    assert redact(f"{url} refused", resolved) == f"{shown} refused"


def test_the_resume_command_names_a_storage_other_than_the_default() -> None:
    assert resume_command("s", DEFAULT_STORAGE) == "hpsearch resume s"
    assert (
        resume_command("a b", "sqlite:///x.db") == "hpsearch resume 'a b' --storage sqlite:///x.db"
    )
    # The password masked, the URL as a user writes it (hpsearch picks psycopg 3 itself).
    assert resume_command("s", "postgresql+psycopg://u:pw-1@h/db") == (
        "hpsearch resume s --storage 'postgresql://u:***@h/db'"
    )


def test_default_names_do_not_collide(tmp_path: Path) -> None:
    space = load_space("small")
    assert default_study_name("wine", space) == "wine-small"
    assert default_study_name("data/wine.csv", space) == "wine.csv-small"
    plain = default_report_path("digits-mlp")
    assert plain == Path("digits-mlp-report.html")
    assert default_report_path("digits-mlp", DEFAULT_STORAGE) == plain
    other = default_report_path("digits-mlp", f"sqlite:///{tmp_path / 'x.db'}")
    pg = default_report_path("digits-mlp", "postgresql+psycopg://u:pw@h/db")
    assert len({plain, other, pg}) == 3
    assert default_report_path("digits-mlp", "postgresql+psycopg://u:other@h/db") == pg
    # The password given by PGPASSWORD or ~/.pgpass instead: the same database, the same name.
    assert default_report_path("digits-mlp", "postgresql+psycopg://u@h/db") == pg
    assert default_report_path("digits-mlp", "postgresql+psycopg://u@h/db?password=pw") == pg
    assert checkpoint_dir("postgresql+psycopg://u:pw@h/db", "s") == checkpoint_dir(
        "postgresql+psycopg://u@h/db", "s"
    )
    accents = {default_report_path(name) for name in ("étude", "ètude", "x" * 600)}
    assert len(accents) == 3
    assert all(len(p.name) < 120 for p in accents)


def test_errors_never_show_the_password() -> None:
    url = "postgresql+psycopg://alice:s3cret-pw@127.0.0.1:1/nowhere"
    with pytest.raises(StorageError) as info:
        open_storage(url, for_writing=False)
    assert "s3cret-pw" not in str(info.value)
    assert "cannot open the storage" in str(info.value)


def test_reading_a_missing_sqlite_file_does_not_create_it(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(StorageError, match="no database file"):
        open_storage(f"sqlite:///{path}", for_writing=False)
    assert not path.exists()
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path / 'no' / 'dir.db'}")


def _tables(url: str) -> set[str]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def test_reading_commands_leave_a_database_without_studies_as_it_was(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """`studies`, `trials`, `report` on a database holding other tables, or none, say there
    are no studies and create none of Optuna's tables there."""
    import sqlalchemy

    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'other.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE users (id INTEGER)"))
    engine.dispose()
    hpsearch = str(Path(sys.executable).with_name("hpsearch"))

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([hpsearch, *args, "--storage", url], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    listed = command("studies")
    assert listed.returncode == 0 and "no studies yet" in listed.stderr, listed.stderr
    for args in (["trials", "x"], ["report", "x"]):
        done = command(*args)
        assert done.returncode == 1, done.stderr
        assert "no study named 'x': the database holds no study tables" in done.stderr
        assert "Traceback" not in done.stderr
    assert _tables(url) == {"users"}
    if kind == "sqlite":  # nor a lock file beside it: the folder is as it was
        assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_trial_whose_local_process_died_is_failed_and_retried_once(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead_worker = {**worker_identity(), "pid": int(dead.stdout), "started": 1}
    url = f"sqlite:///{tmp_path / 'dead.db'}"
    with opened_storage(url) as storage:
        study = optuna.create_study(study_name="s", storage=storage)
        finished = study.ask()
        finished.suggest_int("units", 1, 100)
        study.tell(finished, 1.0)
        orphan = study.ask()
        orphan.suggest_int("units", 1, 100)
        orphan.set_user_attr("worker", dead_worker)
        orphan.set_user_attr(epoch_key(0), epoch_row(dead_worker, {"loss": 1.0}))  # trained
        alive = study.ask()
        alive.suggest_int("units", 1, 100)
        alive.set_user_attr("worker", worker_identity())  # this very process: alive

        assert fail_dead_trials(study) == [orphan.number]
        trials = study.get_trials()
        assert trials[orphan.number].state == TrialState.FAIL
        assert "died" in trials[orphan.number].user_attrs["fail_reason"]
        assert trials[alive.number].state == TrialState.RUNNING
        assert trials[finished.number].state == TrialState.COMPLETE
        retry = trials[-1]
        assert retry.state == TrialState.WAITING
        assert retry.system_attrs["failed_trial"] == orphan.number
        assert retry.params == trials[orphan.number].params
        # Nothing more to do on a second look.
        assert fail_dead_trials(study) == []


def _dead_worker() -> dict[str, object]:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          text=True, capture_output=True, check=True)  # fmt: skip
    return {**worker_identity(), "pid": int(dead.stdout), "started": 1}


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_retry_owed_by_a_process_killed_before_it_queued_it_is_queued_next_time(
    tmp_path: Path,
) -> None:
    """Failing a dead trial and queueing its retry are two writes: a process killed between
    them leaves a failed trial marked cut short, whose retry the next claim queues, once. A
    trial failed by its own point is owed nothing."""
    with opened_storage(f"sqlite:///{tmp_path / 'owed.db'}") as storage:
        study = optuna.create_study(study_name="s", storage=storage)
        cut = study.ask()
        cut.suggest_int("units", 1, 100)
        cut.set_user_attr(POINT_GIVEN, True)
        cut.set_user_attr("worker", _dead_worker())
        assert fail_cut_short(storage, cut._trial_id, "its worker process died mid-trial")
        judged = study.ask()
        judged.suggest_int("units", 1, 100)
        study.tell(judged, state=TrialState.FAIL)

        assert fail_dead_trials(study) == [cut.number]
        trials = study.get_trials()
        retries = [t for t in trials if "failed_trial" in t.system_attrs]
        assert [t.system_attrs["failed_trial"] for t in retries] == [cut.number]
        assert retries[0].state == TrialState.WAITING
        assert retries[0].params == trials[cut.number].params
        assert CUT_SHORT not in retries[0].user_attrs  # the retry starts clean
        assert fail_dead_trials(study) == []


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_attempts_the_user_stopped_do_not_use_up_the_retry(tmp_path: Path) -> None:
    """A point stopped by Ctrl-C is run again however often it is stopped; the one retry is
    for a fault (a killed worker): stopped twice, then killed, it is retried; killed again,
    it is not."""
    worker = _dead_worker()
    with opened_storage(f"sqlite:///{tmp_path / 'stops.db'}") as storage:
        study = optuna.create_study(study_name="s", storage=storage)

        def attempt(reason: str) -> int:
            trial = study.ask()  # a queued retry first
            trial.suggest_int("units", 1, 100)
            trial.set_user_attr(POINT_GIVEN, True)
            trial.set_user_attr("worker", worker)
            assert fail_cut_short(storage, trial._trial_id, reason)
            fail_dead_trials(study)  # queues the retry the attempt is owed, if any
            return trial.number

        killed = "its worker process died mid-trial"
        numbers = [attempt(reason) for reason in (INTERRUPTED, INTERRUPTED, killed, killed)]
        trials = study.get_trials()
        assert [t.number for t in trials] == numbers  # each attempt was the last one's retry
        assert len({t.params["units"] for t in trials}) == 1
        assert [t.system_attrs.get("retry_history") for t in trials] == [
            None, numbers[:1], numbers[:2], numbers[:3]
        ]  # fmt: skip
        assert not [t for t in trials if t.state == TrialState.WAITING]
        assert fail_dead_trials(study) == []  # nothing owed


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_retry_keeps_a_whole_point_and_draws_again_one_stopped_while_it_was_drawn(
    tmp_path: Path,
) -> None:
    """An attempt given its whole point, or that trained, passes its params to its retry; one
    stopped while its sampler drew the point (a param at a time) may hold part of it: its
    retry holds none and draws the whole point from that point's stream."""
    worker = _dead_worker()
    with opened_storage(f"sqlite:///{tmp_path / 'points.db'}") as storage:
        study = optuna.create_study(study_name="s", storage=storage)
        attempts = []
        for mark in ({POINT_GIVEN: True}, {epoch_key(0): epoch_row(worker, {"loss": 1.0})}, {}):
            attempt = study.ask()
            attempt.suggest_int("units", 1, 100)
            for key, value in {**mark, "worker": worker}.items():
                attempt.set_user_attr(key, value)
            attempts.append(attempt.number)
        assert fail_dead_trials(study) == attempts
        trials = study.get_trials()
        retried = {
            t.system_attrs["failed_trial"]: t for t in trials if "failed_trial" in t.system_attrs
        }
        given, trained, drawing = (retried[n] for n in attempts)
        assert given.params == trials[attempts[0]].params and given.user_attrs[POINT_GIVEN]
        assert trained.params == trials[attempts[1]].params
        assert drawing.params == {} and trials[attempts[2]].params != {}


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_trial_of_another_host_is_failed_when_its_heartbeat_goes_stale(tmp_path: Path) -> None:
    import sqlalchemy

    with opened_storage(f"sqlite:///{tmp_path / 'stale.db'}") as storage:
        study = optuna.create_study(study_name="s", storage=storage)
        away = study.ask()
        away.suggest_int("units", 1, 100)
        away.set_user_attr("worker", {"host": "elsewhere", "pid": 1, "started": 1})
        storage.record_heartbeat(away._trial_id)
        assert fail_dead_trials(study) == []  # its heartbeat is fresh
        with storage.engine.begin() as conn:  # silent since GRACE_PERIOD + 5 s
            conn.execute(
                sqlalchemy.text(
                    "UPDATE trial_heartbeats SET heartbeat = datetime(heartbeat, :back)"
                ),
                {"back": f"-{GRACE_PERIOD + 5} seconds"},
            )
        assert fail_dead_trials(study) == [away.number]
        trials = study.get_trials()
        assert trials[away.number].state == TrialState.FAIL
        assert "fell silent" in trials[away.number].user_attrs["fail_reason"]
        assert trials[-1].system_attrs["failed_trial"] == away.number


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_trial_whose_worker_is_a_zombie_is_failed_at_once(tmp_path: Path) -> None:
    """A worker whose run was killed with kill -9 is reparented and may stay a zombie (a
    container's first process often reaps late); it answers os.kill, but it is dead: its
    trial is failed at once, not after the heartbeat's grace period."""
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        stat = Path(f"/proc/{zombie.pid}/stat")
        deadline = time.monotonic() + 60
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":  # exited, not reaped
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.05)
        started = int(stat.read_text().rsplit(")", 1)[1].split()[19])
        url = f"sqlite:///{tmp_path / 'zombie.db'}"
        with opened_storage(url) as storage:
            study = optuna.create_study(study_name="s", storage=storage)
            orphan = study.ask()
            orphan.suggest_int("units", 1, 100)
            orphan.set_user_attr("worker", {**worker_identity(), "pid": zombie.pid,
                                            "started": started})  # fmt: skip
            assert fail_dead_trials(study) == [orphan.number]
            assert study.get_trials()[orphan.number].state == TrialState.FAIL
    finally:
        zombie.wait()


_COUNT_UNDER_LOCK = """
import sys, time
from pathlib import Path
from search._storage import exclusive
url, counter = sys.argv[1], Path(sys.argv[2])
for _ in range(25):
    with exclusive(url, "claim:test"):
        value = int(counter.read_text())
        time.sleep(0.002)  # widen the window between the count and the claim
        counter.write_text(str(value + 1))
"""


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.service)])
def test_the_storage_lock_lets_one_process_at_a_time_count_and_claim(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Four real processes started together, each adding 1 to a counter 25 times under the
    lock: no update is lost (without the lock, most are)."""
    url = (
        f"sqlite:///{tmp_path / 'lock.db'}"
        if kind == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    counter = tmp_path / "counter"
    counter.write_text("0")
    procs = [
        subprocess.Popen([sys.executable, "-c", _COUNT_UNDER_LOCK, url, str(counter)])
        for _ in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert counter.read_text() == "100"


def test_creating_the_schema_is_safe_against_itself(tmp_path: Path) -> None:
    """Six processes open the same new SQLite file for writing at the same instant."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = "import sys; from search._storage import opened_storage\n"
    code += "with opened_storage(sys.argv[1]) as s: s.get_all_studies()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors


@pytest.mark.parametrize("then", ["deleted", "replaced"])
def test_a_sqlite_file_deleted_or_replaced_under_a_writer_is_named(
    then: str, tmp_path: Path
) -> None:
    """Whether the next write is a fresh connection meeting the empty file SQLite leaves
    in the deleted one's place, or the claim lock's check, the error says what happened."""
    path = tmp_path / "gone.db"
    with opened_storage(f"sqlite:///{path}") as storage:
        storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        if then == "replaced":
            with opened_storage(f"sqlite:///{tmp_path / 'other.db'}") as other:
                other.create_new_study([optuna.study.StudyDirection.MINIMIZE], "other")
            (tmp_path / "other.db").rename(path)
        with pytest.raises(StorageError) as info:
            if then == "deleted":
                storage.engine.dispose()  # the next call opens a new connection on the path
                storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "t")
            else:
                with exclusive(f"sqlite:///{path}", "claim:s"):
                    pass
    message = str(info.value)
    assert "gone.db" in message and "while the search ran" in message, message
    assert ("was deleted" if then == "deleted" else "was replaced by another file") in message


def test_a_lost_connection_is_retried_then_named_without_the_password() -> None:
    from search import StorageUnavailable
    from search._storage import retrying

    url = "postgresql+psycopg://alice:s3cret-pw@127.0.0.1:1/nowhere"
    calls = []

    def refused() -> None:
        import sqlalchemy

        calls.append(1)
        sqlalchemy.create_engine(url).connect()

    with pytest.raises(StorageUnavailable) as info:
        retrying(refused, url, limit=1.0)()
    assert len(calls) >= 3  # retried with backoff until the limit
    assert "lost the database" in str(info.value)
    assert "s3cret-pw" not in str(info.value) and "alice" in str(info.value)

    def broken() -> None:
        calls.append(1)
        raise ValueError("not a connection problem")

    calls.clear()
    with pytest.raises(ValueError):
        retrying(broken, url, limit=5.0)()
    assert len(calls) == 1  # not retried

"""Bad input and faults through the real ``hpsearch`` command: one clear line, the right exit
code, nothing stored lost or changed, no traceback, never a password.

Each case runs the CLI in a subprocess in a folder holding a real study (``digits-mlp`` in
``hpsearch.db``, with its report) and checks, besides its own message: exit code, exactly one
``error:`` line on stderr, no ``Traceback``, the secret of every URL absent from stdout, stderr
and every file in the folder, and the database and the report byte-for-byte unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
HPSEARCH = str(Path(sys.executable).with_name("hpsearch"))
SECRET = "Sup3rS3cretPw"
LONG = "s" * 600


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HPSEARCH_STORAGE", "HPSEARCH_DEBUG")}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore", **extra})
    return env


def hp(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HPSEARCH, *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def _start(command: Sequence[str], *args: str, cwd: Path) -> subprocess.Popen[str]:
    """``hpsearch COMMAND ARGS`` started, its output read by the caller (``communicate``)."""
    return subprocess.Popen(
        [HPSEARCH, *command, *args], cwd=cwd, env=_env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a real study of 2 finished trials and its report."""
    cwd = tmp_path_factory.mktemp("faults")
    made = hp(
        "run", "--data", "digits", "--space", "mlp", "--trials", "2", "--epochs", "1",
        "--pruner", "none", "--quiet", cwd=cwd,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (cwd / "digits-mlp-report.html").is_file()
    return cwd


def _fingerprint(cwd: Path) -> dict[str, str]:
    return {
        name: hashlib.sha256((cwd / name).read_bytes()).hexdigest()
        for name in ("hpsearch.db", "digits-mlp-report.html")
    }


def _inf_csv(cwd: Path) -> None:
    rows = ["a,b,label"] + [f"{i},{'inf' if i == 7 else i * 2},{i % 2}" for i in range(40)]
    (cwd / "inf.csv").write_text("\n".join(rows) + "\n")


def _nan_npz(cwd: Path) -> None:
    x = np.random.default_rng(0).normal(size=(40, 3))
    x[5, 2] = np.nan
    np.savez(cwd / "nan.npz", x_train=x, y_train=np.arange(40) % 2)


def _scalar_npz(cwd: Path) -> None:
    np.savez(cwd / "scalar.npz", x_train=np.array(1.0), y_train=np.array(0))


def _odd_npz(cwd: Path) -> None:
    x = np.random.default_rng(0).normal(size=(40, 3))
    np.savez(cwd / "wide_val.npz", x_train=x, y_train=np.arange(40) % 2, x_val=x[:10, :2],
             y_val=np.arange(10) % 2)  # fmt: skip
    np.savez(cwd / "two_labels.npz", x_train=x, y_train=np.arange(80).reshape(40, 2))


def _odd_files(cwd: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = np.arange(40) % 2
    np.save(cwd / "array.npy", x)
    (cwd / "npy_named.npz").write_bytes((cwd / "array.npy").read_bytes())
    np.savez(cwd / "whole.npz", x_train=x, y_train=y)
    (cwd / "truncated.npz").write_bytes((cwd / "whole.npz").read_bytes()[:300])
    (cwd / "text.npz").write_text("hello\n")
    np.savez(cwd / "complex_y.npz", x_train=x, y_train=y + 0j)
    np.savez(cwd / "new_val_class.npz", x_train=x, y_train=y, x_val=x[:10],
             y_val=np.arange(5, 15))  # fmt: skip
    rows = ["a,y,y"] + [f"{i},{i % 2},{i % 2}" for i in range(40)]
    (cwd / "dup_target.csv").write_text("\n".join(rows) + "\n")
    rows = ["a,b,y"] + [f"{i},{i * 3},1" for i in range(40)]
    (cwd / "one_class.csv").write_text("\n".join(rows) + "\n")
    rows = ["a,b,y"] + [f"{1e300 if i == 3 else i},{-i},{i % 2}" for i in range(40)]
    (cwd / "huge.csv").write_text("\n".join(rows) + "\n")
    rows = ["a,b,y"] + [f"{i},{-i},{i * 0.37:.2f}" for i in range(40)]
    (cwd / "measured.csv").write_text("\n".join(rows) + "\n")
    rows = ["a,b,y"] + [f"{i},{-i},{i * 7}" for i in range(80)]
    (cwd / "counted.csv").write_text("\n".join(rows) + "\n")


def _odd_spaces(cwd: Path) -> None:
    (cwd / "huge_units.yaml").write_text(
        "name: huge\nparams:\n  units: {type: int, low: 8, high: 9223372036854775807}\n"
    )
    (cwd / "long_name.yaml").write_text(f"name: {'n' * 5000}\nparams:\n  units: 8\n")
    (cwd / "notdb.db").write_text("this is not a database\n" * 100)


def _binary_csv(cwd: Path) -> None:
    (cwd / "binary.csv").write_bytes(bytes(range(256)) * 10)


def _laughs(cwd: Path) -> None:
    lines = ["name: laughs", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines += ["params:", "  units: 64"]
    (cwd / "laughs.yaml").write_text("\n".join(lines) + "\n")


def _edited_mlp(cwd: Path) -> None:
    shown = hp("spaces", "show", "mlp", cwd=cwd)
    assert shown.returncode == 0
    edited = shown.stdout.replace("low: 16, high: 512", "low: 16, high: 256")
    assert edited != shown.stdout
    (cwd / "my_space.yaml").write_text(edited)


def _study_of_other_data(cwd: Path) -> None:
    made = hp("run", "--data", "iris", "--space", "small", "--study", "iris-other", "--trials",
              "1", "--epochs", "1", "--engine", "kerastuner", "--no-report", "--quiet",
              cwd=cwd)  # fmt: skip
    assert made.returncode == 0, made.stderr


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...]
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


def _other_schema(folder: Path) -> None:
    """A SQLite file whose Optuna schema version (alembic's) is one this Optuna does not know."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(folder / "other.db")) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        db.execute("INSERT INTO alembic_version VALUES ('v9.9.9.a')")
        db.commit()


def _damaged(edit: Callable[[dict[str, object]], object]) -> Callable[[Path], None]:
    """A setup: ``damaged.db``, a copy of the study whose stored settings ``edit`` returns
    changed (as a hand edit of the database would leave them)."""

    def setup(folder: Path) -> None:
        import sqlite3

        shutil.copyfile(folder / "hpsearch.db", folder / "damaged.db")
        with contextlib.closing(sqlite3.connect(folder / "damaged.db")) as db:
            (raw,) = db.execute(
                "SELECT value_json FROM study_user_attributes WHERE key = 'hpsearch'"
            ).fetchone()
            db.execute(
                "UPDATE study_user_attributes SET value_json = ? WHERE key = 'hpsearch'",
                (json.dumps(edit(json.loads(raw))),),
            )
            db.commit()

    return setup


def _plain_optuna(folder: Path) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{folder}/plain.db", study_name="plain")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)


DAMAGED = "study 'digits-mlp': its stored hpsearch settings are incomplete or damaged"
ON_DAMAGED = ("digits-mlp", "--storage", "sqlite:///damaged.db")


PG_DOWN = "127.0.0.1:1"
CASES: dict[str, Case] = {
    # passwords: user:password@, ?password=, an unencoded @, a server that refuses or lacks
    # the database
    "password in the URL, server refuses": Case(
        ("studies", "--storage", f"postgresql://bob:{SECRET}@{PG_DOWN}/x"),
        1,
        # as typed: hpsearch's own choice of driver (postgresql+psycopg) is not shown
        ("error: postgresql://bob:***@127.0.0.1:1/x: cannot open the storage",),
    ),
    "a search started on a server that is down": Case(
        ("run", "--data", "iris", "--storage", f"postgresql://bob:{SECRET}@{PG_DOWN}/x"),
        1,
        ("bob:***@127.0.0.1:1/x", "cannot open the storage", "Check that the server runs"),
    ),
    "a database path that is not UTF-8": Case(
        ("studies", "--storage", "sqlite:///caf\udce9/x.db"),
        2,
        ("sqlite:///caf\\xe9/x.db", "not UTF-8", "give another --storage"),
    ),
    "password as a query parameter, server refuses": Case(
        ("trials", "s", "--storage", f"postgresql://bob@{PG_DOWN}/x?password={SECRET}"),
        1,
        ("password=***",),
    ),
    "password with an unencoded @": Case(
        ("report", "s", "--storage", f"postgresql://bob:pa@{SECRET}@{PG_DOWN}/x"),
        1,
        ("bob:***@",),
    ),
    "password holding an unencoded ':' and '@'": Case(
        ("studies", "--storage", f"postgresql://bob:pa@ss:{SECRET}@127.0.0.1:5432/x"),
        2,
        ("postgresql://***", "cannot be read", "percent-encoded", "PGPASSWORD"),
    ),
    "password, no such database": Case(
        (
            "trials",
            "s",
            "--storage",
            f"postgresql://postgres:{SECRET}@127.0.0.1:5432/hpsearch_no_such_db?password={SECRET}",
        ),
        1,
        (
            "hpsearch_no_such_db",
            "The server runs; create the database (createdb -h 127.0.0.1 -p 5432 -U postgres "
            "hpsearch_no_such_db) or give another --storage.",
        ),
    ),
    "a port out of range": Case(
        ("studies", "--storage", f"postgresql://bob:{SECRET}@127.0.0.1:99999/x"),
        2,
        ("postgresql://bob:***@127.0.0.1:99999/x", "port 99999 is not a TCP port"),
    ),
    "another PostgreSQL driver named in the URL": Case(
        ("studies", "--storage", f"postgresql+psycopg2://bob:{SECRET}@127.0.0.1:5432/x"),
        2,
        (
            "through psycopg 3",
            "drop '+psycopg2': --storage 'postgresql://bob:***@127.0.0.1:5432/x'",
        ),
    ),
    "password in $HPSEARCH_STORAGE": Case(
        ("resume", "s"),
        1,
        ("***",),
        env={"HPSEARCH_STORAGE": f"postgresql://u:{SECRET}@{PG_DOWN}/x"},
    ),
    # files the report cannot be written to: the old report stays, nothing is trained
    "report into /proc": Case(
        ("report", "digits-mlp", "-o", "/proc/x.html"),
        1,
        ("/proc/x.html", "no new files can be made there"),
    ),
    "report below a file": Case(
        ("report", "digits-mlp", "-o", "hpsearch.db/r.html"), 1, ("Not a directory",)
    ),
    "report file name too long": Case(
        ("report", "digits-mlp", "-o", f"{LONG}.html"), 2, ("file name too long", "shorter")
    ),
    "report over the study's own database": Case(
        ("report", "digits-mlp", "-o", "hpsearch.db"), 2, ("'hpsearch.db'", "not an HTML page")
    ),
    "run --report over a data file, checked before the search": Case(
        ("run", "--data", "digits", "--trials", "3", "--report", "notes.csv"),
        2,
        ("'notes.csv'", "not an HTML page", "it is left as it is"),
        setup=lambda folder: (folder / "notes.csv").write_text("a,b\n1,2\n"),
    ),
    "export into /proc, checked before a model is trained": Case(
        ("export", "digits-mlp", "-o", "/proc/x.keras"),
        1,
        ("-o '/proc/x.keras': cannot be written", "no new files can be made there (/proc)"),
    ),
    "report into a named pipe": Case(
        ("report", "digits-mlp", "-o", "pipe.html"),
        2,
        ("'pipe.html'", "not a regular file"),
        setup=lambda folder: os.mkfifo(folder / "pipe.html"),
    ),
    "run --report unwritable, checked before the search": Case(
        ("run", "--data", "digits", "--trials", "3", "--report", "/proc/x.html"),
        1,
        ("/proc/x.html", "-o/--report"),
    ),
    # study names
    "study name too long on run": Case(
        ("run", "--data", "digits", "--study", LONG, "--no-report"), 2, ("at most 128",)
    ),
    "study name too long on resume": Case(("resume", LONG), 1, ("no study named",)),
    "study name too long on report": Case(("report", LONG), 1, ("no study named",)),
    "study name with a newline": Case(
        ("run", "--data", "digits", "--study", "a\nb", "--no-report"), 2, ("control characters",)
    ),
    # data
    "inf in a CSV feature": Case(
        ("run", "--data", "inf.csv", "--target", "label", "--no-report"),
        2,
        ("inf.csv", "'b'", "row 8"),
        setup=_inf_csv,
    ),
    "--target for an NPZ file": Case(
        ("run", "--data", "nan.npz", "--target", "label", "--no-report"),
        2,
        ("--target 'label'", "y_train array", "leave it out"),
        setup=_nan_npz,
    ),
    "NaN in NPZ features": Case(
        ("run", "--data", "nan.npz", "--no-report"), 2, ("nan.npz", "NaN"), setup=_nan_npz
    ),
    "NPZ of 0-d arrays": Case(
        ("run", "--data", "scalar.npz", "--no-report"),
        2,
        ("scalar.npz", "'x_train' must be an array of samples; got a single value (1.0)"),
        setup=_scalar_npz,
    ),
    "NPZ validation features of another width": Case(
        ("run", "--data", "wide_val.npz", "--no-report"),
        2,
        ("wide_val.npz", "'x_val'", "same features"),
        setup=_odd_npz,
    ),
    "NPZ labels of two columns": Case(
        ("run", "--data", "two_labels.npz", "--no-report"),
        2,
        ("two_labels.npz", "'y_train'", "(40, 2)"),
        setup=_odd_npz,
    ),
    "a binary file as CSV": Case(
        ("run", "--data", "binary.csv", "--target", "y", "--no-report"),
        2,
        ("binary.csv", "not a readable CSV"),
        setup=_binary_csv,
    ),
    "a .npy file named .npz": Case(
        ("run", "--data", "npy_named.npz", "--no-report"),
        2,
        ("npy_named.npz", "not an .npz archive", "numpy.savez"),
        setup=_odd_files,
    ),
    "a truncated .npz": Case(
        ("run", "--data", "truncated.npz", "--no-report"),
        2,
        ("truncated.npz", ".npz"),
        setup=_odd_files,
    ),
    "a text file named .npz": Case(
        ("run", "--data", "text.npz", "--no-report"),
        2,
        ("text.npz", "not an .npz archive"),
        setup=_odd_files,
    ),
    "complex labels": Case(
        ("run", "--data", "complex_y.npz"), 2, ("complex_y.npz", "complex"), setup=_odd_files
    ),
    "validation labels never seen in training": Case(
        ("run", "--data", "new_val_class.npz"),
        2,
        ("y_val has label(s) 5", "never has"),
        setup=_odd_files,
    ),
    "a target column given twice": Case(
        ("run", "--data", "dup_target.csv", "--target", "y"),
        2,
        ("'y'", "more than once"),
        setup=_odd_files,
    ),
    "a target of one value": Case(
        ("run", "--data", "one_class.csv", "--target", "y"),
        2,
        ("single value", "--target"),
        setup=_odd_files,
    ),
    "a measured target taken as classes": Case(
        ("run", "--data", "measured.csv", "--target", "y", "--task", "multiclass"),
        2,
        ("measured.csv", "--task multiclass", "fractional values such as 0.37", "regression"),
        setup=_odd_files,
    ),
    "a target of a value per row taken as classes": Case(
        ("run", "--data", "counted.csv", "--target", "y", "--task", "multiclass"),
        2,
        ("counted.csv", "80 of its 80 distinct values only once", "--task regression"),
        setup=_odd_files,
    ),
    "features beyond float32": Case(
        ("run", "--data", "huge.csv", "--target", "y"),
        2,
        ("huge.csv", "'a'", "row 4"),
        setup=_odd_files,
    ),
    "--val-split 0.999": Case(
        ("run", "--data", "iris", "--val-split", "0.999", "--study", "split"),
        2,
        ("iris", "too few", "0.999"),
    ),
    # storages and names
    "in-memory SQLite": Case(
        ("run", "--data", "iris", "--storage", "sqlite://"), 2, ("sqlite:///",)
    ),
    "a SQLite URL with two slashes": Case(
        ("studies", "--storage", "sqlite://hpsearch.db"), 2, ("three slashes",)
    ),
    "in-memory SQLite, spelt out": Case(
        ("studies", "--storage", "sqlite:///:memory:"), 2, ("'sqlite:///:memory:'", "in-memory")
    ),
    "a storage that is not a URL": Case(
        ("trials", "s", "--storage", "nonsense"), 2, ("expected a database URL", "'nonsense'")
    ),
    "a SQLite storage that is a folder, before a lock file is made": Case(
        ("run", "--data", "iris", "--storage", "sqlite:///adir", "--study", "f"),
        2,
        ("'adir' is a folder", "sqlite:///adir/hpsearch.db"),
        setup=lambda folder: (folder / "adir").mkdir(),
    ),
    "a study name that reads as an option": Case(
        ("run", "--data", "iris", "--study=-x"), 2, ("cannot start with '-'",)
    ),
    "an empty --data": Case(("run", "--data", ""), 2, ("--data: expected a data set",)),
    "a database of another Optuna schema": Case(
        ("run", "--data", "iris", "--study", "v", "--storage", "sqlite:///other.db"),
        1,
        ("cannot open the storage: The runtime optuna version", "another Optuna schema"),
        setup=_other_schema,
    ),
    "a checkpoint folder that cannot be made": Case(
        ("run", "--data", "iris", "--study", "c", "--trials", "1", "--epochs", "1"),
        2,
        ("$HPSEARCH_CHECKPOINTS='afile/more': cannot keep the checkpoints in", "Not a directory"),
        setup=lambda folder: (folder / "afile").write_text(""),
        env={"HPSEARCH_CHECKPOINTS": "afile/more"},
    ),
    "a MySQL URL": Case(
        ("studies", "--storage", f"mysql://u:{SECRET}@127.0.0.1/db"), 2, ("SQLite", "PostgreSQL")
    ),
    "a file that is not a database": Case(
        ("studies", "--storage", "sqlite:///notdb.db"),
        1,
        ("not a SQLite database",),
        setup=_odd_spaces,
    ),
    "--direction against the objective": Case(
        ("run", "--data", "iris", "--study", "d", "--direction", "maximize"),
        2,
        ("--direction maximize", "smaller"),
    ),
    "--target with a built-in data set": Case(
        ("run", "--data", "iris", "--study", "t", "--target", "y"), 2, ("--target 'y'", "CSV")
    ),
    "units beyond what the builder accepts": Case(
        ("spaces", "validate", "huge_units.yaml"),
        2,
        ("huge_units.yaml", "units"),
        setup=_odd_spaces,
    ),
    "a space name of 5000 characters": Case(
        ("spaces", "validate", "long_name.yaml"), 2, ("at most 64",), setup=_odd_spaces
    ),
    # spaces
    "YAML of nested aliases": Case(
        ("run", "--data", "digits", "--space", "laughs.yaml", "--no-report"),
        2,
        ("laughs.yaml", "aliases"),
        setup=_laughs,
    ),
    "an edited copy of the study's space": Case(
        ("run", "--data", "digits", "--space", "my_space.yaml"),
        2,
        (
            "differs from the study's space of that name (units (high 512 -> 256) changed)",
            "--study digits-mlp-2",
        ),
        setup=_edited_mlp,
    ),
    "--timeout nan": Case(
        ("run", "--data", "digits", "--trials", "3", "--timeout", "nan"), 2, ("--timeout", "nan")
    ),
    "--report with --no-report": Case(
        ("run", "--data", "digits", "--no-report", "--report", "x.html"),
        2,
        ("--report x.html and --no-report ask for opposite things",),
    ),
    "a missing required option": Case(
        ("describe", "--input-dim", "3"),
        2,
        ("Choose from: binary, multiclass, regression. See `hpsearch describe --help`.",),
    ),
    "--max-worker-memory nan": Case(
        ("worker", "digits-mlp", "--max-worker-memory", "nan"),
        2,
        ("--max-worker-memory: expected a number of MiB >= 0", "got nan"),
    ),
    "--workers beyond the machine's memory": Case(
        ("run", "--data", "digits", "--trials", "3", "--workers", "100000"),
        2,
        ("--workers 100000", "--workers auto"),
    ),
    # settings against the stored study
    # engines: each engine's own options, and a study keeps its engine
    "an Optuna option with the KerasTuner engine": Case(
        ("run", "--data", "iris", "--study", "k", "--engine", "kerastuner", "--sampler", "tpe"),
        2,
        ("--sampler is an option of the optuna engine", "--engine kerastuner takes --algorithm"),
    ),
    "a KerasTuner option with the Optuna engine": Case(
        ("run", "--data", "iris", "--study", "o", "--algorithm", "hyperband"),
        2,
        ("--algorithm is an option of the kerastuner engine",),
    ),
    "an Optuna option for an existing KerasTuner study": Case(
        ("run", "--data", "iris", "--space", "small", "--study", "iris-other", "--pruner", "none"),
        2,
        (
            "--pruner 'none' is an option of the optuna engine",
            "study runs kerastuner (algorithm bayesian)",
        ),
        setup=lambda cwd: _study_of_other_data(cwd),
    ),
    "another engine for an existing study": Case(
        ("run", "--data", "digits", "--engine", "kerastuner"),
        2,
        ("--engine 'kerastuner' (the study has 'optuna')", "--study digits-mlp-2"),
    ),
    "compare studies of other data": Case(
        ("compare", "digits-mlp", "iris-other"),
        2,
        ("other data", "same data"),
        setup=lambda cwd: _study_of_other_data(cwd),
    ),
    "compare a study that does not exist": Case(
        ("compare", "digits-mlp", "nosuch"), 1, ("no study named 'nosuch'",)
    ),
    "compare to an empty -o": Case(
        ("compare", "digits-mlp", "-o", ""), 2, ("comparison page '': an empty path",)
    ),
    "compare to a page and the terminal at once": Case(
        ("compare", "digits-mlp", "-o", "c.html", "--format", "json"),
        2,
        ("--format json and -o c.html ask for two outputs",),
    ),
    "a storage path longer than a file name can be": Case(
        ("run", "--data", "iris", "--storage", f"sqlite:///{'a' * 300}.db"),
        2,
        ("aaaa...aaaa", ".db: file name too long (at most 255 bytes a name", "give a shorter one"),
    ),
    "validate given a label column without data": Case(
        ("spaces", "validate", "small", "--target", "y"),
        2,
        ("--target y: it names the label column of a CSV file given with --data",),
    ),
    "a search's report to an empty path": Case(
        ("run", "--data", "iris", "--report", ""), 2, ("report '': an empty path",)
    ),
    "report to an empty -o": Case(
        ("report", "digits-mlp", "-o", ""), 2, ("report '': an empty path",)
    ),
    # describe
    "describe of a model too large for memory": Case(
        (
            "describe",
            "--input-dim",
            "784",
            "--task",
            "multiclass",
            "--classes",
            "10",
            "--params",
            '{"units": [1000000, 1000000]}',
        ),
        2,
        ("GiB", "lower units or depth"),
    ),
    "describe of an input too wide for memory": Case(
        ("describe", "--input-dim", "99999999999", "--task", "binary", "--params", '{"units": 4}'),
        2,
        ("GiB", "the first layer alone has", "(99,999,999,999 input features); fewer features"),
    ),
    "describe --input-shape 28,x": Case(
        ("describe", "--input-shape", "28,x", "--task", "regression"), 2, ("'28,x'",)
    ),
    # the command line itself, as click reads it
    "a misspelt option": Case(
        ("run", "--trails", "3"),
        2,
        ("hpsearch run:", "'--trails'", "'--trials'", "See `hpsearch run --help`."),
    ),
    "a study's setting given to resume": Case(
        ("resume", "s", "--epochs", "3"),
        2,
        (
            "hpsearch resume:",
            "--epochs is a setting stored with the study",
            "`hpsearch run --study NEW_NAME ... --epochs VALUE`",
        ),
    ),
    "a report asked of a worker": Case(
        ("worker", "s", "--report", "r.html"),
        2,
        ("hpsearch worker:", "writes no report", "`hpsearch report NAME -o FILE`"),
    ),
    "the study's name as an option to resume": Case(
        ("resume", "--study", "s"), 2, ("`hpsearch resume NAME`",)
    ),
    "stored settings that are not a mapping": Case(
        ("resume", *ON_DAMAGED),
        2,
        (DAMAGED, "a mapping of settings was expected, found 'a string'", "hpsearch trials"),
        _damaged(lambda attrs: "a string"),
    ),
    "a stored target written as text": Case(
        ("resume", *ON_DAMAGED),
        2,
        (DAMAGED, "trials is '3', not an integer"),
        _damaged(lambda attrs: {**attrs, "trials": "3"}),
    ),
    "a stored target of 1e300": Case(
        ("worker", *ON_DAMAGED),
        2,
        (DAMAGED, "trials is 1e+300, not an integer"),
        _damaged(lambda attrs: {**attrs, "trials": 1e300}),
    ),
    "a stored objective that is a number": Case(
        ("resume", *ON_DAMAGED),
        2,
        (DAMAGED, "objective is 5, not text"),
        _damaged(lambda attrs: {**attrs, "objective": 5}),
    ),
    "stored data that is not a mapping": Case(
        ("export", *ON_DAMAGED, "-o", "m.keras"),
        2,
        (DAMAGED, "data is 'x', not a mapping"),
        _damaged(lambda attrs: {**attrs, "data": "x"}),
    ),
    "a stored setting a new study is refused with": Case(
        ("resume", *ON_DAMAGED),
        2,
        (DAMAGED, "--patience must be an integer >= 0; got -1"),
        _damaged(lambda attrs: {**attrs, "patience": -1}),
    ),
    "a study of plain Optuna resumed": Case(
        ("resume", "plain", "--storage", "sqlite:///plain.db"),
        2,
        ("study 'plain' was not created by hpsearch", "hpsearch trials and hpsearch report"),
        _plain_optuna,
    ),
    "a misspelt command": Case(
        ("rnu", "--data", "iris"), 2, ("No such command 'rnu'", "'run'", "`hpsearch --help`")
    ),
    "a number that is not one": Case(
        ("run", "--trials", "abc"), 2, ("'--trials'", "'abc'", "`hpsearch run --help`")
    ),
    "an option without its value": Case(
        ("run", "--data"),
        2,
        ("hpsearch run:", "'--data' requires an argument", "`hpsearch run --help`"),
    ),
    "a missing argument": Case(
        ("spaces", "show"), 2, ("hpsearch spaces show:", "'NAME'", "`hpsearch spaces show --help`")
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gets_one_clear_line_and_loses_nothing(folder: Path, name: str) -> None:
    case = CASES[name]
    if case.setup is not None:
        case.setup(folder)
    before = _fingerprint(folder)
    out = hp(*case.args, cwd=folder, **case.env)
    assert out.returncode == case.code, out.stderr
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for text in case.says:
        assert text in lines[0], lines[0]
    assert SECRET not in out.stdout + out.stderr
    assert _fingerprint(folder) == before
    for path in folder.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_reading_commands_read_a_study_whose_settings_are_damaged(folder: Path) -> None:
    """Its trials are what it holds: trials, best and the report show them, and the data's
    description shown is left empty (it made `best` fail)."""
    _damaged(lambda attrs: {**attrs, "data": "x"})(folder)
    for args in (("best",), ("best", "--format", "json"), ("trials",), ("report", "-o", "d.html")):
        out = hp(args[0], *ON_DAMAGED, *args[1:], cwd=folder)
        assert out.returncode == 0, (args, out.stderr)
        assert "error" not in out.stderr
    best = json.loads(hp("best", *ON_DAMAGED, "--format", "json", cwd=folder).stdout)
    assert best["data"] == {"source": None, "fingerprint": None}
    assert best["trial"] in (0, 1)


def test_json_output_is_strict_json(tmp_path: Path) -> None:
    """A value that is no finite number is null, not NaN (which strict parsers refuse)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path}/nan.db"
    for name in ("a", "b"):
        study = optuna.create_study(storage=url, study_name=name)
        study.set_user_attr("hpsearch", {"objective": "val_loss", "direction": "minimize"})
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        trial.set_user_attr("best_metrics", {"val_loss": float("nan"), "val_mae": 0.5})
        # a history written by hand: values that are no numbers read as missing (NaN)
        trial.set_user_attr("history", {"val_loss": ["a", None, 0.4], "loss": "x"})
        study.tell(trial, 0.4)

    def strict(text: str) -> object:
        def refuse(constant: str) -> object:
            raise AssertionError(f"{constant} in the JSON")

        return json.loads(text, parse_constant=refuse)

    best = hp("best", "a", "--storage", url, "--format", "json", cwd=tmp_path)
    assert best.returncode == 0, best.stderr
    assert strict(best.stdout)["metrics"] == {"val_loss": None, "val_mae": 0.5}
    compared = hp("compare", "a", "b", "--storage", url, "--format", "json", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert strict(compared.stdout)


def test_a_missing_study_reads_the_same_for_every_command(folder: Path) -> None:
    lines = {}
    for command in ("trials", "resume", "report"):
        out = hp(command, "nosuch", cwd=folder)
        assert out.returncode == 1
        lines[command] = out.stderr.strip()
    assert len(set(lines.values())) == 1, lines
    assert "no study named 'nosuch'" in lines["trials"] and "'digits-mlp'" in lines["trials"]


def test_a_missing_study_on_postgresql_hides_a_query_password(postgres_url: str) -> None:
    url = f"{postgres_url}?password={SECRET}"
    out = hp("trials", "nosuch", "--storage", url, cwd=Path.cwd())
    assert out.returncode == 1
    assert "no study named 'nosuch'" in out.stderr and "password=***" in out.stderr
    assert SECRET not in out.stdout + out.stderr


def test_studies_in_a_fresh_folder_says_there_are_none(tmp_path: Path) -> None:
    out = hp("studies", cwd=tmp_path)
    assert out.returncode == 0 and "no studies yet" in out.stderr
    typo = hp("studies", "--storage", "sqlite:///hpsearhc.db", cwd=tmp_path)
    assert typo.returncode == 0 and "(no file 'hpsearhc.db' yet)" in typo.stderr
    bad_name = hp("run", "--data", "digits", "--study", "", cwd=tmp_path)
    assert bad_name.returncode == 2 and "expected a name" in bad_name.stderr
    assert list(tmp_path.iterdir()) == []  # no database, no lock file, no report


def test_debug_shows_the_traceback(folder: Path) -> None:
    out = hp("report", "digits-mlp", "-o", "/proc/x.html", cwd=folder, HPSEARCH_DEBUG="1")
    assert out.returncode != 0 and "Traceback" in out.stderr and "ReportError" in out.stderr
    flag = hp("--debug", "report", "digits-mlp", "-o", "/proc/x.html", cwd=folder)
    assert "Traceback" in flag.stderr


def test_a_search_whose_points_fail_stops_with_a_way_on_and_its_report(tmp_path: Path) -> None:
    space = tmp_path / "diverge.yaml"
    space.write_text(
        "name: diverge\nparams:\n  units: 8\n  optimizer: sgd\n  momentum: 0.99\n"
        "  learning_rate: {type: float, low: 1.0e+6, high: 1.0e+7, log: true}\n"
        "  batch_size: 16\n"
    )
    out = hp(
        "run", "--data", "diabetes", "--space", str(space), "--trials", "6", "--epochs", "3",
        "--max-failures", "2", "--pruner", "none", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    line = out.stderr.strip()
    assert "2 failed trials in a row" in line and "--study diabetes-diverge-2" in line
    assert "hpsearch resume" in line and "same space" in line
    report = tmp_path / "diabetes-diverge-report.html"
    assert report.is_file() and f"Report: {report.resolve()}" in line


def test_a_read_only_database_is_named_and_left_as_it_is(folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "ro.db"
    shutil.copy(folder / "hpsearch.db", db)
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("this file system has no immutable files (chattr +i)")
    try:
        before = db.read_bytes()
        out = hp(
            "run", "--data", "digits", "--trials", "3", "--storage", f"sqlite:///{db}",
            "--no-report", "--quiet", cwd=tmp_path,
        )  # fmt: skip
        assert out.returncode == 1, out.stderr
        line = out.stderr.strip()
        assert "Traceback" not in line and len(line.splitlines()) == 1
        assert "read-only" in line or "readonly" in line, line
        assert "max length" not in line
        assert db.read_bytes() == before
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=False)


def test_a_database_in_a_read_only_folder_is_read_and_not_written(
    folder: Path, tmp_path: Path
) -> None:
    """A study kept where nobody writes (a read-only mount, an immutable folder): SQLite in
    WAL mode cannot make its shared-memory file there, so readers open it immutable; `run`
    says it cannot write and that the readers can read it, which they do."""
    kept = tmp_path / "kept"
    kept.mkdir()
    shutil.copy(folder / "hpsearch.db", kept / "hpsearch.db")
    if subprocess.run(["chattr", "+i", str(kept)], capture_output=True).returncode != 0:
        pytest.skip("this file system has no immutable folders (chattr +i)")
    try:
        url = f"sqlite:///{kept / 'hpsearch.db'}"
        out = hp("run", "--data", "digits", "--trials", "3", "--storage", url, "--no-report",
                 "--quiet", cwd=tmp_path)  # fmt: skip
        assert out.returncode == 1, out.stderr
        assert "is read-only" in out.stderr and "`hpsearch trials` / `hpsearch report`" in (
            out.stderr
        )
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        trials = hp("trials", "digits-mlp", "--format", "json", "--storage", url, cwd=tmp_path)
        assert trials.returncode == 0, trials.stderr
        assert len(json.loads(trials.stdout)) == 2
        studies = hp("studies", "--storage", url, cwd=tmp_path)
        assert studies.returncode == 0 and "digits-mlp" in studies.stdout, studies.stderr
        page = tmp_path / "r.html"
        report = hp("report", "digits-mlp", "-o", str(page), "--storage", url, cwd=tmp_path)
        assert report.returncode == 0 and page.is_file(), report.stderr
        assert sorted(p.name for p in kept.iterdir()) == ["hpsearch.db"]
    finally:
        subprocess.run(["chattr", "-i", str(kept)], check=False)


def test_a_database_deleted_during_the_run_stops_it_with_one_line(tmp_path: Path) -> None:
    proc = _start(("run", "--data", "digits", "--space", "small", "--trials", "20", "--epochs",
                   "40", "--patience", "40", "--pruner", "none", "--quiet", "--no-report"),
                  cwd=tmp_path)  # fmt: skip
    db = tmp_path / "hpsearch.db"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists() and _has_a_trial(db):
                break
            time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "was deleted" in err and "hpsearch.db" in err


def _has_a_trial(db: Path) -> bool:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return bool(conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0])
    except sqlite3.Error:
        return False


def test_a_full_disk_stops_the_search_with_one_line_and_keeps_the_trials(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(tiny)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small file system here (needs root)")
    try:
        storage = f"sqlite:///{tiny / 'x.db'}"
        (tiny / "fill").write_bytes(b"\0" * 500_000)
        first = hp(
            "run", "--data", "iris", "--space", "small", "--trials", "2", "--epochs", "1",
            "--storage", storage, "--no-report", "--quiet", cwd=tmp_path,
        )  # fmt: skip
        assert first.returncode == 0, first.stderr
        free = os.statvfs(tiny).f_bavail * os.statvfs(tiny).f_frsize
        (tiny / "fill2").write_bytes(b"\0" * max(0, free - 4096))
        full = hp(
            "run", "--data", "iris", "--space", "small", "--trials", "6", "--epochs", "3",
            "--storage", storage, "--no-report", "--quiet", cwd=tmp_path,
        )  # fmt: skip
        assert full.returncode == 1, full.stderr
        line = full.stderr.strip()
        assert "Traceback" not in line and len(line.splitlines()) == 1, line
        assert "disk" in line and "free" in line and "space" in line, line
        (tiny / "fill2").unlink()
        listed = hp("trials", "iris-small", "--storage", storage, "--format", "json", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.count('"number"') == 2
    finally:
        subprocess.run(["umount", str(tiny)], check=False)


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["studies"], "`hpsearch studies` interrupted: nothing stored was changed."),
        (["trials", "held"], "`hpsearch trials` interrupted: nothing stored was changed."),
        (["resume", "held"], "study 'held' interrupted: its finished trials are stored; go on "
                             "with `hpsearch resume held --storage"),
        (["worker", "held"], "study 'held' interrupted: its finished trials are stored; go on "
                             "with `hpsearch worker held --storage"),
        (["run", "--data", "digits", "--study", "held"],
         "study 'held': interrupted before a trial started; nothing was trained."),
    ],
    ids=["studies", "trials", "resume", "worker", "run"],
)  # fmt: skip
def test_ctrl_c_while_a_command_waits_for_the_database_says_what_is_kept(
    postgres_url: str, tmp_path: Path, command: list[str], said: str
) -> None:
    """Ctrl-C while the command waits for a table another session holds locked: one line
    for that command (what is kept, how to go on), exit 130, no traceback, no password."""
    psycopg = pytest.importorskip("psycopg")
    url = postgres_url.replace("://postgres@", f"://postgres:{SECRET}@", 1)
    # The tables, as a search creates them (the reading commands create none).
    made = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom search._storage import opened_storage\n"
         "with opened_storage(sys.argv[1]):\n    pass", postgres_url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as holder, psycopg.connect(plain, autocommit=True) as watch:
        holder.execute("LOCK TABLE studies IN ACCESS EXCLUSIVE MODE")
        proc = _start(command, "--storage", url, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 120
            waiting = 0
            while not waiting and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
                row = watch.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted "
                    "AND relation = 'studies'::regclass"
                ).fetchone()
                waiting = row[0] if row else 0
            assert waiting, f"the command never waited for the lock: {proc.poll()}"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
            holder.rollback()
    assert proc.returncode == 130, err
    assert said in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and SECRET not in out + err


def test_a_sqlite_file_another_program_keeps_locked_is_named_and_ctrl_c_stops_the_wait(
    folder: Path,
) -> None:
    """Another program holding the file in a write transaction (a SQLite browser with
    changes not written): the search waits ``$HPSEARCH_DB_RETRY`` seconds, then says the
    file stayed locked and what to do (exit 1, the study unchanged); Ctrl-C during the wait
    stops it within seconds, not after SQLite's own wait."""
    import sqlite3

    db = folder / "hpsearch.db"
    before = hp("trials", "digits-mlp", "--format", "json", cwd=folder)
    assert before.returncode == 0, before.stderr
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        out = hp("resume", "digits-mlp", "--trials", "3", cwd=folder, HPSEARCH_DB_RETRY="2")
        assert out.returncode == 1, out.stderr
        assert "the database file stayed locked for 2 s (database is locked)" in out.stderr
        assert "close it, then run the command again. The trials it holds are kept." in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        proc = _start(("resume", "digits-mlp", "--trials", "3"), cwd=folder)
        try:
            time.sleep(8)  # started, and waiting for the lock (it waits 60 s)
            proc.send_signal(signal.SIGINT)
            signalled = time.monotonic()
            _, err = proc.communicate(timeout=120)
            waited = time.monotonic() - signalled
        finally:
            proc.kill()
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err, err
        assert waited < 30, f"Ctrl-C took effect {waited:.0f} s later"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    after = hp("trials", "digits-mlp", "--format", "json", cwd=folder)
    assert after.stdout == before.stdout


def test_a_target_below_what_the_study_holds_is_reached_and_drops_nothing(folder: Path) -> None:
    """`run --trials 1` on a study of 2 finished trials (the README's `make run` after a
    larger run): nothing is trained, nothing dropped, exit 0, the report rewritten."""
    before = hp("trials", "digits-mlp", "--format", "json", cwd=folder)
    report = folder / "digits-mlp-report.html"
    report.unlink()
    out = hp("run", "--data", "digits", "--trials", "1", cwd=folder)
    assert out.returncode == 0, out.stderr
    assert "already reached its target: 2/2 finished" in out.stderr, out.stderr
    assert Path(out.stdout.strip()) == report.resolve() and report.is_file()
    after = hp("trials", "digits-mlp", "--format", "json", cwd=folder)
    assert after.stdout == before.stdout


def test_ctrl_c_at_any_moment_of_a_reading_commands_start_is_one_line(tmp_path: Path) -> None:
    """Ctrl-C while a command imports Optuna and SQLAlchemy leaves a module half made, and
    the next import of it fails with another error (ImportError, NameError): the command
    still says it was interrupted, in one line, exit 130 (or it had finished: exit 0)."""
    import optuna

    url = f"sqlite:///{tmp_path / 'x.db'}"
    optuna.create_study(study_name="s", storage=url)
    commands = [("trials", "s", "--all"), ("studies",), ("compare", "s", "s")]
    interrupted = 0
    for i in range(12):
        command = commands[i % len(commands)]
        proc = _start(command, "--storage", url, cwd=tmp_path)
        try:
            # Once it imports NumPy (Optuna, SQLAlchemy and pandas come with it), at moments
            # spread over those imports and what follows.
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    if "numpy" in Path(f"/proc/{proc.pid}/maps").read_text():
                        break
                time.sleep(0.005)
            time.sleep(0.03 * i)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
        assert "Traceback" not in err and "unexpected" not in err, (command, err)
        if proc.returncode == 130:
            said = f"`hpsearch {command[0]}` interrupted: nothing stored was changed."
            assert err.strip() == said, err
            interrupted += 1
        else:
            assert proc.returncode in (0, 2), (command, proc.returncode, err)  # done already
    assert interrupted >= 3  # most signals came while the command ran


def test_a_study_without_a_completed_trial_has_no_best_and_nothing_to_export(
    tmp_path: Path,
) -> None:
    """The same state of a study, the same exit code (1) and a way to see its trials."""
    made = hp("run", "--data", "iris", "--trials", "1", "--timeout", "0", "--study", "e",
              "--no-report", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    # Why nothing trained, and how to train some.
    assert "study e stopped at the timeout: 0/1 finished" in made.stderr, made.stderr
    assert "--timeout 0: no trial started in time" in made.stderr, made.stderr
    assert "`hpsearch resume e --timeout SECONDS`" in made.stderr, made.stderr
    for command in (("best", "e"), ("export", "e", "-o", "e.keras")):
        out = hp(*command, cwd=tmp_path)
        assert out.returncode == 1, out.stderr
        assert out.stderr.startswith("error: study 'e' has no completed trial yet"), out.stderr
        assert "see `hpsearch trials e --all`" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "e.keras").exists()


def test_a_csv_study_resumed_from_another_folder_says_where_its_data_is(tmp_path: Path) -> None:
    """A CSV study keeps its data's path as given: from another folder the file is not
    there, and the line says so, with the study's name and the folder to run from."""
    rows = ["a,b,y"] + [f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(60)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    made = hp("run", "--data", "d.csv", "--target", "y", "--space", "small", "--trials", "1",
              "--epochs", "1", "--quiet", "--no-report", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    other = tmp_path / "other"
    other.mkdir()
    url = f"sqlite:///{tmp_path / 'hpsearch.db'}"
    out = hp("resume", "d.csv-small", "--trials", "2", "--storage", url, cwd=other)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(
        f"error: study 'd.csv-small' reads its data from d.csv, and there is no such file "
        f"here ({other}); its path is relative to the folder the study was created in, "
        f"{tmp_path}: run from there, or "
    ), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    again = hp("resume", "d.csv-small", "--trials", "2", "--quiet", "--no-report", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    # From that folder, with the file gone: it says so, not "run from that folder".
    (tmp_path / "d.csv").rename(tmp_path / "moved.csv")
    gone = hp("resume", "d.csv-small", "--trials", "3", cwd=tmp_path)
    assert gone.returncode == 2, gone.stderr
    assert f"here ({tmp_path}); it was moved or deleted: put the file back there" in gone.stderr

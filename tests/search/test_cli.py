"""The real ``hpsearch`` command in a subprocess, on real SQLite files."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from search._records import TrialRecord
from search._storage import opened_storage
from search.testing import wait_for_running_trial
from spaces import load_space

pytestmark = pytest.mark.slow
HPSEARCH = str(Path(sys.executable).with_name("hpsearch"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HPSEARCH_STORAGE"}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore", **extra})
    return env


def hp(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HPSEARCH, *args],
        cwd=cwd,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def _trials(db: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    with opened_storage(f"sqlite:///{db}", for_writing=False) as storage:
        return optuna.load_study(study_name=study, storage=storage).get_trials()


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real search through the CLI (then continued), shared by the read-only tests."""
    cwd = tmp_path_factory.mktemp("cli")
    first = hp(
        "run", "--data", "iris", "--space", "small", "--trials", "3", "--epochs", "4",
        "--pruner", "none", cwd=cwd,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    more = hp("run", "--data", "iris", "--space", "small", "--trials", "4", "--epochs", "4",
              "--quiet", cwd=cwd)  # fmt: skip
    return {"cwd": cwd, "db": cwd / "hpsearch.db", "first": first, "more": more}


def test_run_writes_the_default_database_and_prints_only_the_report_path(
    searched: dict[str, Any],
) -> None:
    first = searched["first"]
    lines = first.stdout.strip().splitlines()
    assert len(lines) == 1, first.stdout
    report = Path(lines[0])
    assert report == searched["cwd"] / "iris-small-report.html"
    assert report.is_file() and "iris-small" in report.read_text()
    assert searched["db"].is_file()
    # Progress goes to stderr: a line per trial with the best value so far.
    assert "trial 0 val_loss" in first.stderr and "3/3 done" in first.stderr


def test_running_again_with_more_trials_continues_the_same_study(
    searched: dict[str, Any],
) -> None:
    more = searched["more"]
    assert more.returncode == 0, more.stderr
    assert more.stderr == ""  # --quiet
    trials = _trials(searched["db"], "iris-small")
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    with opened_storage(f"sqlite:///{searched['db']}", for_writing=False) as storage:
        assert [s.study_name for s in storage.get_all_studies()] == ["iris-small"]


def test_trials_are_ranked_by_validation_loss_in_every_format(searched: dict[str, Any]) -> None:
    cwd = searched["cwd"]
    as_json = hp("trials", "iris-small", "--format", "json", cwd=cwd)
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    losses = [r["val_loss"] for r in rows]
    assert losses == sorted(losses)
    assert {"number", "param_units", "param_learning_rate", "best_epoch", "epochs_run"} <= set(
        rows[0]
    )
    as_csv = hp("trials", "iris-small", "--format", "csv", "--top", "2", cwd=cwd)
    frame = pd.read_csv(io.StringIO(as_csv.stdout))
    assert frame["number"].tolist() == [r["number"] for r in rows[:2]]
    table = hp("trials", "iris-small", cwd=cwd)
    assert table.stdout.splitlines()[0].split()[:2] == ["rank", "number"]


def test_trials_table_fits_the_terminal_and_yaml_is_for_scripts(searched: dict[str, Any]) -> None:
    cwd = searched["cwd"]
    narrow = hp("trials", "iris-small", cwd=cwd, env=_env(COLUMNS="60"))
    assert narrow.returncode == 0, narrow.stderr
    lines = narrow.stdout.splitlines()
    assert lines[0].split()[:3] == ["rank", "number", "val_loss"]
    assert all(len(line.rstrip()) <= 60 for line in lines)
    assert "more columns:" in narrow.stderr and "--format csv|json|yaml" in narrow.stderr
    wide = hp("trials", "iris-small", cwd=cwd, env=_env(COLUMNS="400"))
    header = wide.stdout.splitlines()[0].split()
    assert "units" in header and "param_units" not in header  # params by their names
    assert "fit" in header and "more columns" not in wide.stderr
    as_yaml = hp("trials", "iris-small", "--format", "yaml", "--top", "2", cwd=cwd)
    rows = yaml.safe_load(as_yaml.stdout)
    assert [r["rank"] for r in rows] == [1, 2] and "param_units" in rows[0]
    studies = yaml.safe_load(hp("studies", "--format", "yaml", cwd=cwd).stdout)
    assert studies[0]["study"] == "iris-small"


def test_a_reader_that_goes_away_ends_the_command_quietly(searched: dict[str, Any]) -> None:
    # `hpsearch best NAME | head -1`: the pipe closes before the command has written.
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run(
        [HPSEARCH, "best", "iris-small"], cwd=searched["cwd"], env=_env(), stdout=write,
        stderr=subprocess.PIPE, text=True, timeout=120, check=False,
    )  # fmt: skip
    os.close(write)
    assert proc.returncode == 141  # as a command killed by SIGPIPE
    assert proc.stderr == ""


def test_studies_lists_engine_data_and_counts(searched: dict[str, Any]) -> None:
    out = hp("studies", "--format", "json", cwd=searched["cwd"])
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert row["study"] == "iris-small" and row["engine"] == "optuna" and row["data"] == "iris"
    assert row["complete"] == 4 and row["trials"] == 4
    assert row["best"] == pytest.approx(min(t.value for t in _trials(searched["db"], "iris-small")))
    # On an 80-column terminal the table shows the best value first of all.
    narrow = hp("studies", cwd=searched["cwd"], env=_env(COLUMNS="80"))
    assert narrow.stdout.splitlines()[0].split()[:4] == ["study", "data", "trials", "best"]


def test_a_long_value_is_cut_so_the_columns_after_it_show(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A study named by a script (120 characters) leaves room for its data, trials and best
    value on an 80-column terminal; --format csv shows it whole."""
    import pandas as pd

    from search.cli import WIDEST_CELL, _table

    monkeypatch.setenv("COLUMNS", "80")
    name = "s" * 120
    _table(pd.DataFrame([{"study": name, "data": "iris", "trials": 1, "best": 0.5}]))
    out, err = capsys.readouterr()
    header, row = out.splitlines()
    assert header.split() == ["study", "data", "trials", "best"], out
    assert row.startswith("s" * (WIDEST_CELL - 1) + "…") and row.split()[1:] == ["iris", "1", "0.5"]
    assert err == ""


def test_report_command_writes_where_told(searched: dict[str, Any]) -> None:
    out = hp("report", "iris-small", "-o", "out/r.html", cwd=searched["cwd"])
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    assert path == searched["cwd"] / "out" / "r.html"
    assert "<html" in path.read_text().lower()


def test_storage_from_the_environment(searched: dict[str, Any], tmp_path: Path) -> None:
    env = _env(HPSEARCH_STORAGE=f"sqlite:///{searched['db']}")
    out = hp("trials", "iris-small", "--format", "csv", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert len(pd.read_csv(io.StringIO(out.stdout))) == 4


def test_commands_that_read_never_import_tensorflow(
    searched: dict[str, Any], tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    for name in ("tensorflow", "keras"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(
            f"raise ImportError('{name} was imported by a command that must not need it')\n"
        )
    space_file = tmp_path / "mine.yaml"
    space_file.write_text("name: mine\nparams:\n  units: {type: int, low: 8, high: 32}\n")
    env = _env(PYTHONPATH=str(blocker))
    db = f"sqlite:///{searched['db']}"
    commands = [
        ["--help"],
        ["run", "--help"],
        ["resume", "--help"],
        ["describe", "--help"],
        ["studies", "--storage", db],
        ["trials", "iris-small", "--storage", db],
        ["report", "iris-small", "--storage", db, "-o", str(tmp_path / "r.html")],
        ["spaces"],
        ["spaces", "show", "mlp"],
        ["spaces", "validate", str(space_file)],
    ]
    for args in commands:
        out = hp(*args, cwd=tmp_path, env=env)
        assert out.returncode == 0, (args, out.stderr)
        assert "was imported" not in out.stderr
    # The blocker works: a command that builds a model does import it and fails.
    built = hp("describe", "--input-dim", "3", "--task", "binary", cwd=tmp_path, env=env)
    assert built.returncode != 0 and "was imported" in built.stderr


def test_spaces_list_show_and_validate(tmp_path: Path) -> None:
    listing = hp("spaces", cwd=tmp_path)
    names = [line.split("\t")[0] for line in listing.stdout.splitlines()]
    assert {"mlp", "small"} <= set(names)
    shown = hp("spaces", "show", "mlp", cwd=tmp_path)
    assert yaml.safe_load(shown.stdout)["name"] == "mlp"
    assert load_space("mlp").names == tuple(yaml.safe_load(shown.stdout)["params"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nparams:\n  dropout: {type: float, low: 0.5, high: 0.1}\n")
    out = hp("spaces", "validate", str(bad), cwd=tmp_path)
    assert out.returncode == 2
    assert str(bad) in out.stderr and "dropout" in out.stderr and "low" in out.stderr
    # A built-in space too, as `show` and `run` take it.
    preset = hp("spaces", "validate", "small", cwd=tmp_path)
    assert preset.returncode == 0 and preset.stdout.startswith("small: valid space 'small'")


def test_bad_input_exits_non_zero_naming_it_and_keeps_what_is_stored(
    searched: dict[str, Any], tmp_path: Path
) -> None:
    db = searched["db"]
    before = [(t.number, t.value) for t in _trials(db, "iris-small")]
    storage = f"sqlite:///{db}"
    bad = tmp_path / "typo.yaml"
    bad.write_text("name: typo\nparams:\n  units: {type: int, lowe: 8, high: 32}\n")
    out = hp("run", "--data", "iris", "--space", str(bad), "--storage", storage, cwd=tmp_path)
    assert out.returncode == 2
    assert str(bad) in out.stderr and "lowe" in out.stderr
    clash = hp("run", "--data", "iris", "--space", "small", "--sampler", "random",
               "--storage", storage, cwd=tmp_path)  # fmt: skip
    assert clash.returncode == 2
    assert "--sampler 'random' (the study has 'tpe')" in clash.stderr
    missing = hp("trials", "nope", "--storage", storage, cwd=tmp_path)
    assert missing.returncode == 1 and "nope" in missing.stderr and "iris-small" in missing.stderr
    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n1,2\n")
    no_col = hp("run", "--data", str(csv), "--target", "y", "--storage", storage, cwd=tmp_path)
    assert no_col.returncode == 2 and str(csv) in no_col.stderr and "'y'" in no_col.stderr
    secret = hp("studies", "--storage", "postgresql://bob:hunter2@127.0.0.1:1/x", cwd=tmp_path)
    assert secret.returncode == 1 and "hunter2" not in secret.stderr + secret.stdout
    usage = hp("run", "--trials", "zero", cwd=tmp_path)
    assert usage.returncode == 2 and "--trials" in usage.stderr
    assert [(t.number, t.value) for t in _trials(db, "iris-small")] == before


def test_describe_builds_the_classic_architectures(tmp_path: Path) -> None:
    imdb = hp("describe", "--input-dim", "10000", "--task", "binary",
              "--params", '{"units": 16, "depth": 2}', cwd=tmp_path)  # fmt: skip
    assert imdb.returncode == 0, imdb.stderr
    assert "160,305" in imdb.stdout  # Chollet's IMDB network
    assert "Trainable params" in imdb.stdout and "Non-trainable params" in imdb.stdout
    fashion = hp("describe", "--input-shape", "28,28", "--task", "multiclass", "--classes",
                 "10", "--params", '{"units": [300, 100]}', cwd=tmp_path)  # fmt: skip
    assert fashion.returncode == 0, fashion.stderr
    assert "266,610" in fashion.stdout  # Géron's Fashion-MNIST MLP
    # The tutorials' models: IMDB at 128 units, MNIST 512-64-10, batch norm's statistics.
    for args, count in (
        (["--input-dim", "10000", "--task", "binary", "--params", '{"units": 128, "depth": 2}'],
         "Total params: 1,296,769"),
        (["--input-shape", "28,28", "--task", "multiclass", "--classes", "10", "--params",
          '{"units": [512, 64]}'], "Total params: 435,402"),
        (["--input-dim", "784", "--task", "multiclass", "--classes", "10", "--params",
          '{"units": 32, "batch_norm": "before_activation"}'], "Non-trainable params: 64 "),
    ):  # fmt: skip
        built = hp("describe", *args, cwd=tmp_path)
        assert built.returncode == 0, built.stderr
        assert count in built.stdout
    funnel = hp("describe", "--input-dim", "10", "--task", "binary", "--params",
                '{"units": 512, "depth": 3, "width_shrink": 0.5}', cwd=tmp_path)  # fmt: skip
    assert funnel.returncode == 0, funnel.stderr
    params = funnel.stdout.splitlines()[0]
    assert '"units": [512, 256, 128]' in params and "width_shrink" not in params, params
    bad = hp("describe", "--input-dim", "4", "--task", "binary", "--params", "{units: 3}",
             cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2 and "--params" in bad.stderr
    classes = hp("describe", "--input-dim", "4", "--task", "binary", "--classes", "5",
                 cwd=tmp_path)  # fmt: skip
    assert classes.returncode == 2
    assert "--task binary --classes 5: task 'binary' takes classes=None or 2" in classes.stderr


def test_ctrl_c_stops_the_search_naming_the_study_to_resume(tmp_path: Path) -> None:
    args = ["run", "--data", "digits", "--space", "small", "--study", "cc", "--trials", "3",
            "--epochs", "300", "--patience", "300", "--pruner", "none", "--quiet"]  # fmt: skip
    proc = subprocess.Popen(
        [HPSEARCH, *args], cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        victim = wait_for_running_trial(f"sqlite:///{tmp_path / 'hpsearch.db'}", "cc", proc)
        assert victim is not None, "no trial started in time"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "hpsearch resume cc" in err
    stopped = _trials(tmp_path / "hpsearch.db", "cc")[victim.number]
    assert stopped.state == TrialState.FAIL
    assert stopped.user_attrs["fail_reason"] == "interrupted"
    # A worker that joined the study is told to go on as a worker, not to resume it.
    joined = subprocess.Popen(
        [HPSEARCH, "worker", "cc", "--quiet"], cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        second = wait_for_running_trial(f"sqlite:///{tmp_path / 'hpsearch.db'}", "cc", joined)
        assert second is not None and second.number != victim.number, "no trial started in time"
        # The interrupted trial runs again first, with its parameters, showing only its own
        # epochs (the copy it was made from held the stopped attempt's whole record).
        assert second.system_attrs.get("failed_trial") == victim.number
        assert second.params == victim.params
        assert TrialRecord.of(second).duration_s is None
        assert TrialRecord.of(stopped).early_stopped is False  # stopped, not early-stopped
        joined.send_signal(signal.SIGINT)
        _, err = joined.communicate(timeout=120)
    finally:
        joined.kill()
    assert joined.returncode == 130, err
    assert "continue with `hpsearch worker cc`" in err, err


def test_compare_puts_an_optuna_and_a_kerastuner_study_side_by_side(tmp_path: Path) -> None:
    common = ["--data", "iris", "--space", "small", "--trials", "3", "--epochs", "2",
              "--no-report", "--quiet"]  # fmt: skip
    engines = {
        "iris-tpe": ["--engine", "optuna"],
        "iris-kt": ["--engine", "kerastuner", "--algorithm", "random"],
    }
    for study, engine in engines.items():
        made = hp("run", *common, "--study", study, *engine, cwd=tmp_path)
        assert made.returncode == 0, made.stderr

    table = hp("compare", "iris-tpe", "iris-kt", cwd=tmp_path, env=_env(COLUMNS="60"))
    assert table.returncode == 0, table.stderr
    # The columns left out are named, with the format that shows them (compare has no csv).
    assert "more columns:" in table.stderr and "--format json shows all" in table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "data: iris; objective: val_loss (minimize)"
    assert lines[1].split()[:4] == ["study", "engine", "algorithm", "best"]
    assert lines[2].split()[:2] == ["iris-tpe", "optuna"]
    assert lines[3].split()[:3] == ["iris-kt", "kerastuner", "random"]

    as_json = hp("compare", "iris-tpe", "iris-kt", "--format", "json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert [s["study"] for s in data["studies"]] == ["iris-tpe", "iris-kt"]
    for study in data["studies"]:
        assert study["trials_ended"] == 3 and study["epochs_spent"] >= 3
        best = min(t.value for t in _trials(tmp_path / "hpsearch.db", study["study"]))
        assert study["best_value"] == pytest.approx(best)

    page = hp("compare", "iris-tpe", "iris-kt", "-o", "cmp.html", cwd=tmp_path)
    assert page.returncode == 0, page.stderr
    assert Path(page.stdout.strip()) == (tmp_path / "cmp.html").resolve()
    html = (tmp_path / "cmp.html").read_text()
    assert "iris-kt" in html and "kerastuner" in html and "data:image/png;base64," in html


def test_the_report_of_a_run_on_another_database_names_it_in_its_commands(
    tmp_path: Path,
) -> None:
    """The report `run` writes gives the commands that go on (resume, export) with the
    run's --storage, so that they work when pasted."""
    db = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    out = hp("run", "--data", "iris", "--space", "small", "--trials", "2", "--epochs", "2",
             "--study", "far", "--storage", db, "--quiet", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    html = Path(out.stdout.strip()).read_text()
    for command in ("hpsearch resume far", "hpsearch export far"):
        assert f"{command} --storage {db}" in html, command
    again = hp(*f"resume far --storage {db} --quiet --no-report".split(), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    # A relative path is given absolute: the commands work from any folder.
    (tmp_path / "sub").mkdir()
    near = hp("run", "--data", "iris", "--space", "small", "--trials", "1", "--epochs", "2",
              "--study", "near", "--storage", "sqlite:///../near.db", "--quiet",
              cwd=tmp_path / "sub")  # fmt: skip
    assert near.returncode == 0, near.stderr
    html = Path(near.stdout.strip()).read_text()
    assert f"hpsearch resume near --storage sqlite:///{tmp_path / 'near.db'}" in html


def test_progress_lines_in_a_log_file_are_never_cut() -> None:
    """stderr sent to a file (no terminal, 80 columns to rich): each event stays one line,
    so a log can be searched with grep."""
    import io

    from rich.console import Console

    from search._progress import RichProgress

    log = io.StringIO()
    progress = RichProgress(Console(file=log, width=80))
    progress.search_started("a-study-with-a-long-name-" + "x" * 60, 4, 0, None, "val_loss")
    reason = "training failed: ValueError: " + "a long reason " * 12
    progress.trial_ended(0, "FAIL", None, 1, None, reason)
    progress.note("note: " + "n" * 120)
    progress.search_ended()
    lines = log.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert lines[1].startswith("trial 0 fail: training failed") and "| 1/4 done |" in lines[1]


def test_a_target_beyond_the_points_of_a_space_is_noted(tmp_path: Path) -> None:
    space = tmp_path / "two.yaml"
    space.write_text("name: two\nparams:\n  units: {type: int, low: 8, high: 9}\n")
    valid = hp("spaces", "validate", str(space), cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr
    assert "valid space 'two' with 1 parameters, 2 distinct point(s)" in valid.stdout
    run = hp("run", "--data", "iris", "--space", str(space), "--trials", "3", "--epochs", "1",
             "--no-report", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (
        "note: space 'two' holds 2 distinct point(s) and the target is 3 trials: some points "
        "will be trained more than once (with other seeds)." in run.stderr
    )


def test_a_trial_whose_worker_died_before_it_drew_its_point_is_retried_with_that_point(
    tmp_path: Path,
) -> None:
    """A worker killed between claiming a trial and drawing its whole point leaves a failed
    trial with none or part of its params: its retry draws the point (and trains with the
    seed) the uninterrupted search gives that trial, and no later point is skipped."""
    import socket

    common = ["--data", "iris", "--space", "small", "--epochs", "1", "--seed", "7", "--quiet",
              "--no-report"]  # fmt: skip
    whole = hp("run", *common, "--study", "w", "--trials", "3", "--storage", "sqlite:///w.db",
               cwd=tmp_path)  # fmt: skip
    assert whole.returncode == 0, whole.stderr
    reference = _trials(tmp_path / "w.db", "w")
    dead = subprocess.Popen(["true"])
    dead.wait()
    # The point's first two params, stored as the sampler drew them, then the kill.
    drawn = dict(list(reference[2].params.items())[:2])
    for name, params in (("none", {}), ("part", drawn)):
        first = hp("run", *common, "--study", name, "--trials", "2", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        url = f"sqlite:///{tmp_path / 'hpsearch.db'}"
        study = optuna.load_study(study_name=name, storage=url)
        claimed = study.ask()  # claimed by a worker that died at once
        for param, value in params.items():
            dist = reference[2].distributions[param]
            study._storage.set_trial_param(
                claimed._trial_id, param, dist.to_internal_repr(value), dist
            )
        worker = {"host": socket.gethostname(), "pid": dead.pid, "started": 0}
        claimed.set_user_attr("worker", worker)
        again = hp("run", *common, "--study", name, "--trials", "3", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        trials = _trials(tmp_path / "hpsearch.db", name)
        assert trials[2].state == TrialState.FAIL and trials[2].params == params
        (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == 2]
        assert retry.params == reference[2].params, name
        assert retry.user_attrs["seed"] == reference[2].user_attrs["seed"] == 7 + 2
        assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 3

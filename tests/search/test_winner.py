"""The winner: checkpoints of the best trials, its test-set scores, ``best`` and ``export``,
and reproducibility; through the real CLI on real data."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml

import search
from search._winner import WINNER_KEY, checkpoint_dir
from search.testing import HPSEARCH

pytestmark = pytest.mark.slow


def hpsearch(*args: str, expect: int = 0, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([HPSEARCH, *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == expect, proc.stderr
    return proc


def study(url: str, name: str = "w") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """digits with a test split, 6 trials, the best 2 kept."""
    folder = tmp_path_factory.mktemp("winner")
    url = f"sqlite:///{folder / 's.db'}"
    hpsearch("run", "--data", "digits", "--space", "small", "--trials", "6", "--epochs", "4",
             "--test-split", "0.2", "--keep-top", "2", "--storage", url, "--study", "w",
             "--no-report", "-q")  # fmt: skip
    return url, folder


def test_the_winner_is_scored_on_the_test_split(searched: tuple[str, Path]) -> None:
    url, _ = searched
    s = study(url)
    winner = s.user_attrs[WINNER_KEY]
    assert winner["trial"] == s.best_trial.number and winner["n_test"] == 360
    metrics = winner["test_metrics"]
    assert set(metrics) == {
        "test_loss", "test_accuracy", "test_precision", "test_recall", "test_f1"
    }  # fmt: skip
    assert all(0.0 <= metrics[k] <= 1.0 for k in metrics if k != "test_loss")
    assert winner["model"] == "checkpoint"


def test_only_the_best_checkpoints_stay(searched: tuple[str, Path]) -> None:
    url, folder = searched
    s = study(url)
    kept = sorted(p.name for p in checkpoint_dir(url, "w").iterdir())
    complete = sorted(
        (t for t in s.trials if t.state.name == "COMPLETE"), key=lambda t: (t.value, t.number)
    )
    assert kept == sorted(f"trial-{t.number}.keras" for t in complete[:2])
    assert checkpoint_dir(url, "w").parent == folder / "s-checkpoints"


def test_best_prints_the_winner_for_scripts(searched: tuple[str, Path]) -> None:
    url, _ = searched
    s = study(url)
    as_json = json.loads(hpsearch("best", "w", "--storage", url, "--format", "json").stdout)
    assert as_json["trial"] == s.best_trial.number and as_json["value"] == s.best_value
    assert as_json["params"] == s.best_trial.params
    assert as_json["test_metrics"] == s.user_attrs[WINNER_KEY]["test_metrics"]
    assert as_json["seed"] == s.best_trial.number  # --seed 0 + the trial's number
    assert as_json["versions"]["keras"].startswith("3.")
    as_yaml = yaml.safe_load(hpsearch("best", "w", "--storage", url, "--format", "yaml").stdout)
    assert as_yaml == json.loads(json.dumps(as_json))
    table = hpsearch("best", "w", "--storage", url).stdout
    assert f"trial         {s.best_trial.number}" in table and "test_f1=" in table
    rows = json.loads(hpsearch("trials", "w", "--storage", url, "--format", "json").stdout)
    scored = [r for r in rows if r["test_accuracy"] is not None]
    assert [r["number"] for r in scored] == [s.best_trial.number]


def _prepared_digits() -> search.Dataset:
    return search.load_dataset("digits", test_split=0.2)


def test_export_gives_back_the_reported_test_scores(searched: tuple[str, Path]) -> None:
    import keras

    url, folder = searched
    out = folder / "best.keras"
    proc = hpsearch("export", "w", "-o", str(out), "--storage", url)
    assert proc.stdout.strip() == str(out.resolve())
    assert "its checkpoint" in proc.stderr and "stored test scores: test_" in proc.stderr
    data = _prepared_digits()
    scores = keras.models.load_model(out).evaluate(
        data.x_test, data.y_test, verbose=0, return_dict=True
    )
    stored = study(url).user_attrs[WINNER_KEY]["test_metrics"]
    assert scores["accuracy"] == pytest.approx(stored["test_accuracy"], abs=1e-6)
    assert scores["loss"] == pytest.approx(stored["test_loss"], rel=1e-5)


def test_export_without_a_checkpoint_trains_the_same_model_again(
    searched: tuple[str, Path],
) -> None:
    import keras

    url, folder = searched
    s = study(url)
    kept = {int(p.stem.split("-")[1]) for p in checkpoint_dir(url, "w").iterdir()}
    other = next(t for t in s.trials if t.state.name == "COMPLETE" and t.number not in kept)
    out = folder / "other.keras"
    proc = hpsearch("export", "w", "--trial", str(other.number), "-o", str(out), "--storage", url)
    assert "trained again with its params and seed" in proc.stderr
    data = _prepared_digits()
    again = keras.models.load_model(out).evaluate(
        data.x_val, data.y_val, verbose=0, return_dict=True
    )
    assert again["loss"] == pytest.approx(other.value, rel=1e-5)  # the stored val_loss


def test_export_refuses_what_it_cannot_do(searched: tuple[str, Path]) -> None:
    url, folder = searched
    s = study(url)
    bad = hpsearch("export", "w", "-o", str(folder / "m.h5"), "--storage", url, expect=2)
    assert "ending in .keras; give e.g. -o m.keras" in bad.stderr
    assert bad.stderr.count("\n") == 1
    pruned = [t.number for t in s.trials if t.state.name != "COMPLETE"]
    for number in [*pruned[:1], 99]:
        bad = hpsearch("export", "w", "--trial", str(number), "-o", str(folder / "x.keras"),
                       "--storage", url, expect=2)  # fmt: skip
        assert f"--trial {number}: trial {number} of study 'w' " in bad.stderr
    assert not (folder / "x.keras").exists()
    # Files export did not write are not replaced: a .keras that is no model, a .json
    # beside it that is no model card.
    for name, text in (("notes.keras", "my notes"), ("notes.json", '{"precious": 1}')):
        (folder / name).write_text(text)
        bad = hpsearch("export", "w", "-o", str(folder / "notes.keras"), "--storage", url,
                       expect=2)  # fmt: skip
        assert f"notes.{name.split('.')[1]}' exists and is not" in bad.stderr
        assert (folder / name).read_text() == text
        (folder / name).unlink()


def test_same_command_same_seed_same_search(tmp_path: Path) -> None:
    """The reproducibility record: the same command and seed give the same params and, on
    this CPU, the same validation losses (within floating-point noise)."""
    runs: list[list[Any]] = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.db"
        hpsearch("run", "--data", "breast_cancer", "--space", "small", "--trials", "4",
                 "--epochs", "3", "--seed", "7", "--storage", url, "--study", "r",
                 "--no-report", "-q", "--keep-top", "0")  # fmt: skip
        trials = study(url, "r").trials
        runs.append([(t.params, t.user_attrs["history"]["val_loss"]) for t in trials])
        assert [t.user_attrs["seed"] for t in trials] == [7, 8, 9, 10]
        assert not checkpoint_dir(url, "r").exists()  # --keep-top 0
    for (params_a, losses_a), (params_b, losses_b) in zip(*runs, strict=True):
        assert params_a == params_b
        np.testing.assert_allclose(losses_a, losses_b, rtol=1e-5)


def test_regression_scores(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    hpsearch("run", "--data", "diabetes", "--space", "small", "--trials", "2", "--epochs", "3",
             "--test-split", "0.25", "--storage", url, "--study", "w", "--no-report",
             "-q")  # fmt: skip
    metrics = study(url).user_attrs[WINNER_KEY]["test_metrics"]
    assert {"test_loss", "test_mae", "test_rmse", "test_r2"} <= set(metrics)
    assert metrics["test_rmse"] == pytest.approx(metrics["test_loss"] ** 0.5, rel=1e-4)


def test_imdb_winner_exported_and_loaded(keras_home: Path, tmp_path: Path) -> None:
    """The issue's path on the Keras cache: IMDB multi-hot, precision/recall/F1 of the
    winner, exported, loaded with keras.models.load_model, the same test accuracy."""
    import keras

    url = f"sqlite:///{tmp_path / 's.db'}"
    hpsearch("run", "--data", "imdb", "--num-words", "300", "--space", "small", "--trials", "2",
             "--epochs", "2", "--storage", url, "--study", "w", "--no-report", "-q")  # fmt: skip
    summary = json.loads(hpsearch("best", "w", "--storage", url, "--format", "json").stdout)
    assert {"test_precision", "test_recall", "test_f1"} <= set(summary["test_metrics"])
    out = tmp_path / "imdb.keras"
    hpsearch("export", "w", "-o", str(out), "--storage", url)
    data = search.load_dataset("imdb", num_words=300)
    assert data.x_test is not None and data.x_test.dtype == np.uint8
    scores = keras.models.load_model(out).evaluate(
        data.x_test, data.y_test, verbose=0, return_dict=True
    )
    assert scores["accuracy"] == pytest.approx(summary["test_metrics"]["test_accuracy"], abs=1e-6)


def test_the_report_shows_the_test_scores_and_the_export_command(
    searched: tuple[str, Path],
) -> None:
    url, folder = searched
    page = folder / "r.html"
    hpsearch("report", "w", "--storage", url, "-o", str(page))
    html = page.read_text()
    winner = study(url).user_attrs[WINNER_KEY]
    assert f"<td>trial {winner['trial']}: val_loss" in html  # the winner's row
    assert "(360 held-out samples, scored once)" in html
    assert f"f1 {winner['test_metrics']['test_f1']:.4g}" in html
    assert f"hpsearch export w --storage {url} -o best.keras" in html


def test_text_labels_keep_their_names_in_the_report_and_the_exported_card(
    tmp_path: Path,
) -> None:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame["species"] = frame.pop("target").map({0: "setosa", 1: "versicolor", 2: "virginica"})
    csv = tmp_path / "iris.csv"
    frame.to_csv(csv, index=False)
    url = f"sqlite:///{tmp_path / 's.db'}"
    hpsearch("run", "--data", str(csv), "--target", "species", "--space", "small", "--trials",
             "2", "--epochs", "2", "--test-split", "0.3", "--storage", url, "--study", "w",
             "--no-report", "-q")  # fmt: skip
    page = tmp_path / "r.html"
    hpsearch("report", "w", "--storage", url, "-o", str(page))
    assert "0=setosa, 1=versicolor, 2=virginica" in page.read_text()
    proc = hpsearch("export", "w", "-o", str(tmp_path / "iris.keras"), "--storage", url)
    card = json.loads((tmp_path / "iris.json").read_text())
    assert str(tmp_path / "iris.json") in proc.stderr
    assert card["class_names"] == ["setosa", "versicolor", "virginica"]
    assert card["data"]["task"] == "multiclass" and card["data"]["scaling"] == "standard"
    assert "num_words" not in card["data"]  # only word data (imdb, reuters) have one
    assert card["test_metrics"] == study(url).user_attrs[WINNER_KEY]["test_metrics"]
    assert card["params"] == study(url).best_trial.params


def test_pruning_removes_what_a_killed_worker_left(searched: tuple[str, Path]) -> None:
    from search._winner import prune_checkpoints

    url, _ = searched
    s = study(url)
    folder = checkpoint_dir(url, "w")
    kept = sorted(p.name for p in folder.iterdir())
    worst = max((t for t in s.trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    stale = [
        folder / f".trial-{worst.number}.keras.99999.keras",
        folder / f"trial-{worst.number}.keras",
    ]
    for path in stale:
        path.write_bytes(b"half")
    unknown = folder / "notes.txt"
    unknown.write_text("mine")
    prune_checkpoints(s.trials, search.load_settings("w", url), url)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*kept, "notes.txt"])
    unknown.unlink()

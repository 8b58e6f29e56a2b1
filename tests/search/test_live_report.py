"""The report kept current while a search runs: the refresher, and the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from search._live import LiveReport
from search._progress import ProgressSink
from search._records import TrialRecord

HPSEARCH = str(Path(sys.executable).with_name("hpsearch"))
LIVE = 'http-equiv="refresh"'


class Notes(ProgressSink):
    """The seam the refresher forwards to: keeps what it was told."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.ended: list[int] = []

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
        self.ended.append(number)

    def note(self, message: str, worker: int = 0) -> None:
        self.notes.append(message)


def _study(url: str, n: int) -> None:
    study = optuna.create_study(storage=url, study_name="live")
    for k in range(n):
        history = {"loss": [1.0, 0.5 + k / 10], "val_loss": [1.1, 0.6 + k / 10]}
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": float(k)},
                distributions={"x": optuna.distributions.FloatDistribution(0, 10)},
                value=0.6 + k / 10,
                user_attrs=TrialRecord(history=history, epochs_run=2).to_attrs(),
            )
        )


def _wait(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_refreshes_after_every_n_trials_and_says_it_is_live(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/live.db"
    _study(url, 3)
    page = tmp_path / "live.html"
    inner = Notes()
    live = LiveReport(inner, url=url, study="live", path=page, every_trials=2, every_seconds=0)
    live.trial_ended(0, "COMPLETE", 0.6, 1, 0.6, "")
    time.sleep(0.3)
    assert not page.exists()  # one trial of two: not yet
    live.trial_ended(1, "COMPLETE", 0.7, 2, 0.6, "")
    _wait(page.exists)
    live.stop()
    assert inner.ended == [0, 1]  # forwarded
    html = page.read_text(encoding="utf-8")
    assert LIVE in html and "This study is running" in html
    assert live.refreshes == 1
    assert inner.notes == []
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary file


def test_refreshes_by_time_at_an_epoch_end(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/live.db"
    _study(url, 2)
    page = tmp_path / "live.html"
    live = LiveReport(Notes(), url=url, study="live", path=page, every_trials=0, every_seconds=0.2)
    live.epoch_ended(0, 0, 4, 1.0)
    time.sleep(0.3)
    live.epoch_ended(0, 1, 4, 0.9)
    _wait(page.exists)
    live.stop()
    assert 'content="5"' in page.read_text(encoding="utf-8")  # reloads at most every 5 s


def test_a_refresh_that_fails_is_said_once_and_the_search_goes_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/live.db"
    _study(url, 2)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    inner = Notes()
    live = LiveReport(
        inner, url=url, study="live", path=blocked / "r.html", every_trials=1, every_seconds=0
    )
    for number in range(3):
        live.trial_ended(number, "COMPLETE", 0.5, number + 1, 0.5, "")
        _wait(lambda: len(inner.notes) == 1)
    live.stop()
    assert len(inner.notes) == 1
    assert "live report was not refreshed" in inner.notes[0] and "goes on" in inner.notes[0]
    # nothing is refreshed after stop
    live.trial_ended(9, "COMPLETE", 0.5, 10, 0.5, "")
    assert live._thread is not None and not live._thread.is_alive()


@pytest.mark.slow
def test_run_keeps_the_report_live_and_ends_with_a_final_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HPSEARCH_STORAGE"}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"})
    args = [HPSEARCH, "run", "--data", "iris", "--space", "small", "--study", "watch"]
    args += ["--trials", "6", "--epochs", "4", "--report", "watch.html", "--quiet"]
    args += ["--report-every", "1", "--report-seconds", "0"]
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    page = tmp_path / "watch.html"
    seen_live = ""
    while proc.poll() is None:
        if page.exists():
            text = page.read_text(encoding="utf-8")  # atomic: always a whole page
            assert text.rstrip().endswith("</html>")
            if LIVE in text:
                seen_live = text
        time.sleep(0.05)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert seen_live, "no live page was seen while the search ran"
    assert "This study is running" in seen_live
    final = page.read_text(encoding="utf-8")
    assert LIVE not in final and "This study is running" not in final
    assert out.strip() == str(page.resolve())


def test_bad_refresh_settings_are_refused(tmp_path: Path) -> None:
    import search
    from search._errors import ConfigError

    with pytest.raises(ConfigError, match="--report-every: expected a number of trials >= 0"):
        search.run("iris", "small", trials=1, report_every=-1, storage=f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(ConfigError, match="--report-seconds"):
        search.run(
            "iris", "small", trials=1, report_seconds=float("nan"),
            storage=f"sqlite:///{tmp_path}/x.db",
        )  # fmt: skip
    assert not (tmp_path / "x.db").exists()

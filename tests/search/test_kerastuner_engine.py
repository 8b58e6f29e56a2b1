"""What only the KerasTuner engine does: its oracles' own behaviour (Hyperband's rounds),
rebuilt from the database, through kill -9, with no KerasTuner directory anywhere."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from optuna.trial import FrozenTrial, TrialState

import search
from search._records import TrialRecord
from search.engines._kerastuner import STATE_ATTR
from search.testing import FINISHED, HPSEARCH, TINY, point, stored
from spaces import parse_space

pytestmark = pytest.mark.slow


def _budget(trial: FrozenTrial) -> int | None:
    return TrialRecord.of(trial).max_epochs


def _check_hyperband(trials: list[FrozenTrial]) -> None:
    """Six finished trials of Hyperband with --epochs 3 (factor 3): bracket 1 trains three
    points for 1 epoch and promotes the best of them to 3 epochs; bracket 0 trains two more
    points for 3 epochs."""
    finished = sorted((t for t in trials if t.state in FINISHED), key=lambda t: t.number)
    assert len(finished) == 6, [t.state.name for t in trials]
    assert [_budget(t) for t in finished] == [1, 1, 1, 3, 3, 3]
    rounds = [
        (v["tuner/bracket"], v["tuner/round"])
        for v in (t.user_attrs[STATE_ATTR]["values"] for t in finished)
    ]
    assert rounds == [(1, 0), (1, 0), (1, 0), (1, 1), (0, 0), (0, 0)]
    first_round = finished[:3]
    best = min(first_round, key=lambda t: (t.value, t.number))
    promoted = finished[3]
    assert promoted.params == best.params, "Hyperband promotes the best point of the round"
    assert (
        promoted.user_attrs[STATE_ATTR]["values"]["tuner/trial_id"]
        == (best.user_attrs[STATE_ATTR]["trial_id"])
    )
    for trial in finished:
        record = TrialRecord.of(trial)
        assert record.epochs_run is not None and record.max_epochs is not None
        assert 1 <= record.epochs_run <= record.max_epochs
        assert len(trial.intermediate_values) == record.epochs_run
    assert len({point(t) for t in finished}) == 6


def test_hyperband_trains_each_round_for_its_budget_and_promotes_the_best(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hb.db'}"
    result = search.run(
        "iris", TINY, trials=6, epochs=3, patience=3, engine="kerastuner",
        algorithm="hyperband", storage=url, write_report=False,
    )  # fmt: skip
    assert result.finished == 6
    _check_hyperband(stored(result.study, url)[1])


def test_random_and_bayesian_oracles_search_the_same_space(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kt.db'}"
    for algorithm in ("random", "bayesian"):
        result = search.run(
            "iris", TINY, trials=4, epochs=2, engine="kerastuner", algorithm=algorithm,
            study=algorithm, storage=url, write_report=False,
        )  # fmt: skip
        attrs, trials = stored(algorithm, url)
        assert result.finished == 4
        assert (attrs["hpsearch"]["engine"], attrs["hpsearch"]["algorithm"]) == (
            "kerastuner",
            algorithm,
        )
        assert attrs["hpsearch"]["sampler"] is None and attrs["hpsearch"]["pruner"] is None
        assert len({point(t) for t in trials}) == 4
        for trial in trials:
            assert _budget(trial) == 2
            assert ("momentum" in trial.params) == (trial.params["optimizer"] == "sgd")


def test_a_point_that_diverged_counts_as_the_worst_for_the_oracle(tmp_path: Path) -> None:
    """Left FAILED, a diverged point is invisible to BayesianOptimization's model, which then
    proposes the same region until the failure guard stops the search: it counts as the
    worst value seen (an interrupted trial stays unjudged)."""
    from search.engines._kerastuner import KerasTunerProposer

    space = parse_space(
        {
            "name": "half",
            "params": {
                "units": {"type": "int", "low": 4, "high": 16},
                "optimizer": "sgd",
                "learning_rate": {"type": "categorical", "choices": [0.01, 1.0e7]},
                "batch_size": 32,
            },
        },
        source="half",
    )
    url = f"sqlite:///{tmp_path / 'kt.db'}"
    search.run(
        "iris", space, trials=6, epochs=2, engine="kerastuner", algorithm="bayesian",
        study="b", storage=url, write_report=False, max_failures=10,
    )  # fmt: skip
    _, trials = stored("b", url)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert failed and complete, [(t.state.name, t.params) for t in trials]
    assert all(t.params["learning_rate"] == 1.0e7 for t in failed)
    worst = max(t.value for t in complete if t.value is not None)
    settings = search.load_settings("b", url)
    oracle = KerasTunerProposer(settings)._oracle(trials, seed=0)
    for trial in failed:
        kt = oracle.trials[trial.user_attrs[STATE_ATTR]["trial_id"]]
        assert (kt.status, kt.score) == ("COMPLETED", worst)
    for trial in complete:
        assert oracle.trials[trial.user_attrs[STATE_ATTR]["trial_id"]].score == trial.value


def test_a_hyperband_search_killed_and_resumed_keeps_its_rounds_and_writes_no_directory(
    tmp_path: Path,
) -> None:
    space = tmp_path / "tiny.yaml"
    space.write_text(_yaml(TINY.to_dict()))
    args = [HPSEARCH, "run", "--data", "iris", "--space", str(space), "--study", "hb",
            "--trials", "6", "--epochs", "3", "--patience", "3", "--engine", "kerastuner",
            "--algorithm", "hyperband", "--quiet"]  # fmt: skip
    url = f"sqlite:///{tmp_path / 'hpsearch.db'}"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    env.pop("HPSEARCH_STORAGE", None)
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 480
    before: dict[int, float | None] = {}
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            try:
                trials = stored("hb", url)[1]
            except Exception:  # not created yet
                continue
            if sum(t.state in FINISHED for t in trials) >= 2:
                before = {t.number: t.value for t in trials if t.state in FINISHED}
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    assert len(before) >= 2, f"the search did not get going (exit {proc.returncode}): {err}"

    again = subprocess.run(args, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=900)  # fmt: skip
    assert again.returncode == 0, again.stderr
    trials = stored("hb", url)[1]
    _check_hyperband(trials)
    for number, value in before.items():
        assert trials[number].value == value  # kept, not repeated
    for trial in trials:
        if trial.state == TrialState.FAIL:  # killed mid-trial: retried once, same point
            assert "died" in (TrialRecord.of(trial).fail_reason or "")
            retries = [t for t in trials if t.system_attrs.get("failed_trial") == trial.number]
            assert len(retries) == 1 and retries[0].params == trial.params
    # The database holds the oracle: no KerasTuner directory; beside the database only its
    # lock, the report and hpsearch's own checkpoints of the best --keep-top (3) trials.
    written = {p.name for p in tmp_path.iterdir()}
    assert written <= {"tiny.yaml", "hpsearch.db", "hpsearch.db-wal", "hpsearch.db-shm",
                       "hpsearch.db.lock", "hb-report.html",
                       "hpsearch-checkpoints"}, written  # fmt: skip
    kept = [p.name for p in (tmp_path / "hpsearch-checkpoints").rglob("*") if p.is_file()]
    assert 1 <= len(kept) <= 3 and all(name.endswith(".keras") for name in kept), kept


def _yaml(data: object) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


TWO_POINTS = parse_space(
    {
        "name": "two",
        "params": {
            "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
            "units": 8,
            "learning_rate": 0.01,
            "batch_size": 32,
        },
    },
    source="two",
)


@pytest.mark.parametrize("algorithm", ["random", "bayesian", "hyperband"])
def test_an_exhausted_space_stops_once_every_point_has_run(tmp_path: Path, algorithm: str) -> None:
    """Two workers, a space of two points and a target of ten: the worker with nothing to
    propose waits for the other's trial instead of stopping the search under it."""
    url = f"sqlite:///{tmp_path / 'two.db'}"
    with pytest.raises(search.SearchAborted, match="no new point to propose") as info:
        search.run(
            "iris", TWO_POINTS, trials=10, epochs=1, engine="kerastuner", algorithm=algorithm,
            study="two", storage=url, workers=2, write_report=False,
        )  # fmt: skip
    assert "Widen the space" in str(info.value)
    trials = stored("two", url)[1]
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert {t.params["optimizer"] for t in trials} == {"adam", "sgd"}


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_claimed_point_is_stored_whole_before_its_trial_trains(tmp_path: Path) -> None:
    """A worker killed while its trial starts leaves a failed trial holding the whole point
    it was given, not the part stored before the kill: the point goes in with the trial."""
    import optuna

    from search._storage import opened_storage
    from search.engines._base import Proposal
    from search.engines._lifecycle import _enqueue

    url = f"sqlite:///{tmp_path / 'kt.db'}"
    search.run(
        "iris", TINY, trials=1, epochs=1, engine="kerastuner", algorithm="random",
        study="w", storage=url, write_report=False,
    )  # fmt: skip
    settings = search.load_settings("w", url)
    given = stored("w", url)[1][0].params
    assert len(given) >= 2, given
    with opened_storage(url) as storage:
        study = optuna.load_study(study_name="w", storage=storage)
        _enqueue(study, settings, Proposal(params=given, attrs={}), {})
        trial = study.ask()  # claimed: nothing suggested yet
        assert storage.get_trial(trial._trial_id).params == given


def test_a_retry_does_not_bring_back_older_hyperband_bookkeeping(tmp_path: Path) -> None:
    """A retry is a copy of its attempt, bookkeeping included; proposals made after the
    attempt hold newer bookkeeping (a finished trial in its bracket), which must stay."""
    import optuna

    from search._storage import opened_storage, queue_retry
    from search.engines._kerastuner import KerasTunerProposer

    url = f"sqlite:///{tmp_path / 'hb.db'}"
    search.run(
        "iris", TINY, trials=3, epochs=3, patience=3, engine="kerastuner",
        algorithm="hyperband", study="hb", storage=url, write_report=False,
    )  # fmt: skip
    with opened_storage(url) as storage:
        study = optuna.load_study(study_name="hb", storage=storage)
        first, *_, newest = study.get_trials()
        queue_retry(study, first)  # as for an attempt that was stopped
        trials = study.get_trials()
    assert trials[-1].state == TrialState.WAITING
    assert trials[-1].user_attrs[STATE_ATTR]["oracle"] == first.user_attrs[STATE_ATTR]["oracle"]
    oracle = KerasTunerProposer(search.load_settings("hb", url))._oracle(trials, seed=0)
    kept = newest.user_attrs[STATE_ATTR]["oracle"]
    assert kept != first.user_attrs[STATE_ATTR]["oracle"]
    assert {key: getattr(oracle, f"_{key}") for key in kept} == kept

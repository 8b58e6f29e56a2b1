"""Reading a study with a few queries gives what Optuna's own reading gives, and less of it
where less is asked for; large studies answer fast enough to count in the benchmark."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest

import reports
from reports._read import LIGHT_KEYS
from reports._study import load

ROOT = Path(__file__).resolve().parents[2]
HPSEARCH = str(Path(sys.executable).with_name("hpsearch"))


def _fields(trial: optuna.trial.FrozenTrial) -> tuple[Any, ...]:
    return (
        trial.number,
        trial.state,
        trial.values,
        trial.datetime_start,
        trial.datetime_complete,
        trial.params,
        trial.distributions,
        trial.user_attrs,
        trial.system_attrs,
        trial.intermediate_values,
    )


def test_reading_everything_equals_optunas_reading(mixed_study: tuple[str, str]) -> None:
    url, name = mixed_study
    ours = load(url, name).trials
    theirs = optuna.load_study(study_name=name, storage=url).get_trials()
    assert [_fields(t) for t in ours] == [_fields(t) for t in theirs]


def test_selected_trials_in_full_and_the_others_light(mixed_study: tuple[str, str]) -> None:
    url, name = mixed_study
    seen: list[tuple[int, str, float | None]] = []

    def select(rows: list[tuple[int, str, float | None]], direction: str) -> Any:
        seen.extend(rows)
        assert direction == "minimize"
        return {1}, [0, 3]

    trials = {t.number: t for t in load(url, name, select).trials}
    theirs = {t.number: t for t in optuna.load_study(study_name=name, storage=url).trials}
    assert sorted(n for n, _, _ in seen) == list(range(8))
    assert {n: state for n, state, _ in seen}[1] == "COMPLETE"
    assert trials[1].user_attrs == theirs[1].user_attrs  # in full
    assert "history" not in trials[4].user_attrs  # light
    assert set(trials[4].user_attrs) <= set(LIGHT_KEYS)
    assert trials[4].user_attrs["best_metrics"] == theirs[4].user_attrs["best_metrics"]
    # curves: of the selected and of those drawn, nobody else's
    assert trials[0].intermediate_values == theirs[0].intermediate_values
    assert trials[3].intermediate_values == theirs[3].intermediate_values
    assert trials[4].intermediate_values == {}
    # params and values of every trial, whatever is selected
    assert [t.params for t in trials.values()] == [t.params for t in theirs.values()]
    assert trials[7].system_attrs == {"failed_trial": 5}


def test_top_reads_the_best_alone_in_rank_order(mixed_study: tuple[str, str]) -> None:
    url, name = mixed_study
    full = reports.trials_frame(url, name)
    for k in (1, 2, 3, 10):
        top = reports.trials_frame(url, name, top=k)
        expected = full[full["rank"].notna()].head(k)
        assert top["number"].tolist() == expected["number"].tolist()
        assert top["rank"].tolist() == expected["rank"].tolist()
        assert top["val_loss"].tolist() == expected["val_loss"].tolist()
    with pytest.raises(ValueError, match="--top: expected a number of trials >= 1"):
        reports.trials_frame(url, name, top=0)


def test_maximize_ties_and_in_memory_storage(make_study, kit) -> None:
    trials = [
        kit.record(kit.curves([0.9, 0.8]), kit.ADAM, direction="maximize"),
        kit.record(kit.curves([0.9, 0.95]), kit.SGD, direction="maximize"),
        kit.record(kit.curves([0.9, 0.95]), kit.ADAM, direction="maximize"),
    ]
    url, name = make_study("up", trials, direction="maximize")
    assert reports.trials_frame(url, name, top=2)["number"].tolist() == [1, 2]  # tie: by number
    [summary] = reports.list_studies(url)
    assert (summary.best_number, summary.best_value) == (1, 0.95)
    memory = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=memory, study_name="up", direction="maximize")
    for trial in trials:
        study.add_trial(trial)
    assert reports.trials_frame(memory, "up", top=2)["number"].tolist() == [1, 2]


def test_studies_from_the_database_equal_studies_from_the_trials(
    mixed_study: tuple[str, str],
) -> None:
    url, name = mixed_study
    [ours] = reports.list_studies(url)
    study = optuna.load_study(study_name=name, storage=url)
    from reports._summary import summarise

    theirs = summarise(name, ("minimize",), study.user_attrs["hpsearch"], study.trials)
    assert ours == theirs
    assert ours.best_params == theirs.best_params and ours.last_activity == theirs.last_activity


def _big_study_module() -> Any:
    spec = importlib.util.spec_from_file_location("big_study", ROOT / "benchmarks/big_study.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_large_study_reads_and_renders_through_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/big.db"
    _big_study_module().make_big_study(url, "big", trials=1200, epochs=12)
    study = optuna.load_study(study_name="big", storage=url)
    assert len(study.trials) == 1200  # Optuna reads what the generator wrote
    best = reports.trials_frame(url, "big").iloc[0]
    env = {"HPSEARCH_STORAGE": url, "PATH": "/usr/bin:/bin"}
    top = subprocess.run(
        [HPSEARCH, "trials", "big", "--top", "3", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip
    assert f'"number":{int(best["number"])}' in top.stdout.replace(" ", "")
    page = tmp_path / "big.html"
    subprocess.run([HPSEARCH, "report", "big", "-o", str(page)], env=env, timeout=300, check=True)
    html = page.read_text(encoding="utf-8")
    assert f"trial {int(best['number'])}: val_loss" in html
    assert "PED-ANOVA" in html  # more than 200 completed trials
    assert "of the 1200" in html or "trials drawn" in html or "earlier ones not shown" in html
    assert len(html) < 2_000_000

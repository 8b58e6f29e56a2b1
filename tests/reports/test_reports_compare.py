"""Comparing studies of the same data: the numbers, the refusals, the page."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest
from optuna.trial import TrialState
from PIL import Image

import reports
from search._errors import ConfigError


def _two_studies(make_study, kit) -> str:
    """Two studies of one storage: 'fast' reaches 0.3 at its 2nd trial after 5 epochs,
    'slow' reaches 0.3 only at its 3rd after 12 epochs (a pruned trial costs its epochs)."""
    curves, record = kit.curves, kit.record
    fast = [
        record(curves([0.9, 0.6]), kit.ADAM),  # 2 epochs, best 0.6
        record(curves([0.8, 0.5, 0.3]), kit.SGD),  # 3 epochs, best 0.3
        record(curves([0.7, 0.6, 0.65]), kit.ADAM, state=TrialState.PRUNED),  # 3 epochs
    ]
    slow = [
        record(curves([1.0, 0.9, 0.8, 0.7]), kit.ADAM),  # 4 epochs, best 0.7
        record(curves([2.0, 1.9, 1.8, 1.7]), kit.SGD, state=TrialState.PRUNED),  # 4 epochs
        record(curves([0.9, 0.5, 0.4, 0.3]), kit.SGD),  # 4 epochs, best 0.3
    ]
    settings = kit.hp_settings()
    url, _ = make_study("fast", fast, settings=settings)
    make_study("slow", slow, settings={**settings, "engine": "kerastuner", "sampler": None,
                                       "pruner": None, "algorithm": "hyperband"})  # fmt: skip
    return url


def test_budget_numbers_per_study(make_study, kit) -> None:
    url = _two_studies(make_study, kit)
    comparison = reports.compare(url, ["fast", "slow"])
    assert (comparison.data, comparison.objective, comparison.direction) == (
        "digits",
        "val_loss",
        "minimize",
    )
    fast, slow = comparison.studies
    assert (fast.engine, fast.algorithm) == ("optuna", "tpe, percentile")
    assert (slow.engine, slow.algorithm) == ("kerastuner", "hyperband")
    assert fast.best_value == pytest.approx(0.3) and fast.best_number == 1
    assert (fast.trials_ended, fast.epochs_spent) == (3, 8)
    assert (fast.trials_to_best, fast.epochs_to_best) == (2, 5)
    assert [(n, e) for n, e, _ in fast.progress] == [(1, 2), (2, 5), (3, 8)]
    assert [b for _, _, b in fast.progress] == pytest.approx([0.6, 0.3, 0.3])
    assert (slow.trials_to_best, slow.epochs_to_best) == (3, 12)
    assert slow.counts["PRUNED"] == 1 and slow.counts["COMPLETE"] == 2
    assert slow.best_curve == pytest.approx([0.9, 0.5, 0.4, 0.3])

    table = comparison.table()
    assert list(table["study"]) == ["fast", "slow"]
    assert list(table["epochs_to_best"]) == [5, 12]
    assert list(table["pruned"]) == [1, 1]
    as_json = comparison.to_json()
    assert as_json["studies"][1]["algorithm"] == "hyperband"


def test_studies_of_other_data_or_objectives_are_refused(make_study, kit) -> None:
    settings = kit.hp_settings()
    trials = [kit.record(kit.curves([0.5]), kit.ADAM)]
    url, _ = make_study("digits-a", trials, settings=settings)
    other = {**settings, "data": {**settings["data"], "source": "wine", "fingerprint": "x"}}
    make_study("wine-a", trials, settings=other)
    make_study("acc", trials, settings={**settings, "objective": "val_accuracy"},
               direction="maximize")  # fmt: skip
    with pytest.raises(ConfigError, match="other data"):
        reports.compare(url, ["digits-a", "wine-a"])
    # The same source split otherwise: the message says how.
    split = {**settings, "data": {**settings["data"], "val_split": 0.35, "fingerprint": "y"}}
    make_study("digits-test", trials, settings=split)
    source = settings["data"]["source"]
    with pytest.raises(ConfigError) as info:
        reports.compare(url, ["digits-a", "digits-test"])
    assert (
        f"study 'digits-a' searched {source} with val_split "
        f"{settings['data'].get('val_split')} and study 'digits-test' with val_split 0.35: "
        "other data"
    ) in str(info.value)
    with pytest.raises(ConfigError, match="one objective"):
        reports.compare(url, ["digits-a", "acc"])
    with pytest.raises(ConfigError, match="given twice"):
        reports.compare(url, ["digits-a", "digits-a"])
    with pytest.raises(ConfigError, match=r"a list of study names; got the text 'digits-a'"):
        reports.compare(url, "digits-a")  # one name, not its letters
    with pytest.raises(reports.StudyNotFound, match="digits-a"):
        reports.compare(url, ["digits-a", "nosuch"])


def test_the_comparison_page_is_self_contained(make_study, kit, tmp_path: Path) -> None:
    url = _two_studies(make_study, kit)
    written = reports.write_comparison(url, ["fast", "slow"], tmp_path / "out" / "cmp.html")
    html = written.read_text()
    assert "fast" in html and "slow" in html and "hyperband" in html
    assert not re.search(r"""(src|href)=["']https?:""", html)
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 1
    with Image.open(io.BytesIO(base64.b64decode(images[0]))) as image:
        assert image.width > 600 and image.height > 200


def test_dollar_signs_in_names_and_choices_are_drawn_as_written(
    make_study, kit, tmp_path: Path
) -> None:
    """matplotlib reads text between two `$` as mathematical markup; "$x^$" is not valid
    markup, so a study name or a choice of it made every plot that shows it fail."""
    import optuna

    tag = optuna.distributions.CategoricalDistribution(["$x^$", "plain"])

    def tagged(trial, value: str):
        return optuna.trial.create_trial(
            state=trial.state,
            value=trial.value,
            params={**trial.params, "tag": value},
            distributions={**trial.distributions, "tag": tag},
            intermediate_values=trial.intermediate_values,
            user_attrs=trial.user_attrs,
        )

    curves, record = kit.curves, kit.record
    trials = [
        tagged(record(curves([0.9, 0.6]), kit.ADAM), "$x^$"),
        tagged(record(curves([0.8, 0.5, 0.3]), kit.SGD), "plain"),
        tagged(record(curves([0.7, 0.4]), {**kit.ADAM, "units": 16}), "$x^$"),
    ]
    settings = kit.hp_settings()
    url, _ = make_study("a$x^$", trials, settings=settings)
    make_study("other", trials, settings=settings)
    report = reports.write_report(url, "a$x^$", tmp_path / "r.html").read_text()
    assert "a$x^$" in report and report.count("data:image/png;base64,") >= 4
    page = reports.write_comparison(url, ["a$x^$", "other"], tmp_path / "c.html").read_text()
    assert "a$x^$" in page and page.count("data:image/png;base64,") == 1

from __future__ import annotations

import math

import optuna
import pytest

import reports

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_optimization_history_minimize(mixed_study: tuple[str, str]) -> None:
    history = reports.optimization_history_data(reports.trials_frame(*mixed_study))
    assert history.numbers == [0, 1, 2, 4]  # COMPLETE only, in trial order
    assert history.values == pytest.approx([0.5, 0.3, 0.9, 0.3])
    assert history.best_so_far == pytest.approx([0.5, 0.3, 0.3, 0.3])
    assert (history.direction, history.objective) == ("minimize", "val_loss")


def test_optimization_history_maximize(make_study, kit) -> None:
    acc = "val_accuracy"
    vals = [[0.9, 0.6], [1.2], [0.3], [0.5], [0.1]]
    trials = [
        kit.record(kit.curves(v), kit.ADAM, objective=acc, direction="maximize") for v in vals
    ]
    url, name = make_study(
        "m", trials, direction="maximize", settings=kit.hp_settings(objective=acc)
    )
    history = reports.optimization_history_data(reports.trials_frame(url, name))
    assert history.values == pytest.approx([0.85, 0.7, 0.925, 0.875, 0.975])
    assert history.best_so_far == pytest.approx([0.85, 0.85, 0.925, 0.925, 0.975])
    assert history.direction == "maximize"


def test_learning_curves_data(mixed_study: tuple[str, str], kit) -> None:
    frame = reports.trials_frame(*mixed_study)
    curves = reports.learning_curves_data(frame, top=3)
    assert [(c.number, c.rank) for c in curves] == [(1, 1), (4, 2), (0, 3)]
    first = curves[0]
    expected = kit.curves([0.9, 0.4, 0.3, 0.35, 0.33])
    assert first.epochs == [0, 1, 2, 3, 4]
    assert first.loss == pytest.approx(expected["loss"])
    assert first.val_loss == pytest.approx(expected["val_loss"])
    assert first.metric == "accuracy"
    assert first.train_metric == pytest.approx(expected["accuracy"])
    assert first.val_metric == pytest.approx(expected["val_accuracy"])
    assert first.best_epoch == 2
    # the default top is 5 but only four trials completed
    assert [c.number for c in reports.learning_curves_data(frame)] == [1, 4, 0, 2]


def test_learning_curves_from_trials_and_other_metric(make_study, kit) -> None:
    regression = {"loss": [3.0, 2.0, 2.5], "val_loss": [3.5, 2.2, 2.4]}
    regression |= {"mae": [1.5, 1.1, 1.2], "val_mae": [1.6, 1.2, 1.3]}
    trials = [
        kit.record(kit.curves([1.0, 0.8]), kit.ADAM),
        kit.record(regression, kit.ADAM),
        kit.record({"loss": [1.0, 0.5], "val_loss": [0.9, 0.7, 0.6]}, kit.ADAM),
    ]
    url, name = make_study("r", trials, settings=kit.hp_settings())
    study = optuna.load_study(study_name=name, storage=url)
    curves = reports.learning_curves_data(study.get_trials(), top=2)
    assert [c.number for c in curves] == [2, 0]
    # uneven lists are padded with NaN to a common length
    assert curves[0].loss[:2] == [1.0, 0.5] and math.isnan(curves[0].loss[2])
    assert curves[0].metric is None
    by_frame = reports.learning_curves_data(reports.trials_frame(url, name), top=5)
    assert [c.number for c in by_frame] == [2, 0, 1]
    mae = by_frame[2]
    assert (mae.metric, mae.best_epoch) == ("mae", 1)
    assert mae.val_metric == pytest.approx([1.6, 1.2, 1.3])


def test_learning_curves_need_histories() -> None:
    import pandas as pd

    with pytest.raises(ValueError, match="histories"):
        reports.learning_curves_data(pd.DataFrame({"number": [0]}))


def test_drawings_are_png(mixed_study: tuple[str, str]) -> None:
    frame = reports.trials_frame(*mixed_study)
    curves_png = reports.plot_learning_curves(reports.learning_curves_data(frame))
    history_png = reports.plot_optimization_history(reports.optimization_history_data(frame))
    for png in (curves_png, history_png):
        assert png.startswith(PNG_SIGNATURE)
        assert 1_000 < len(png) < 400_000
    with pytest.raises(ValueError, match="at least one"):
        reports.plot_learning_curves([])

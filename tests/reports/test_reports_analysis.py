"""The numbers behind the report's judgements, on hand-built histories and trials."""

from __future__ import annotations

import math
import random

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from reports._analysis import (
    NumericRange,
    diagnose,
    edge_hints,
    overfit_links,
    use_log_axis,
    verdict_counts,
)
from reports._importance import (
    FANOVA_MAX_TRIALS,
    param_importances,
    plot_importance,
    plot_parallel,
    plot_params,
    sample,
)
from reports._plots import OptimizationHistory, plot_optimization_history

PNG = b"\x89PNG\r\n\x1a\n"


def test_heavy_dropout_is_not_called_overfit_by_a_negative_gap() -> None:
    # Dropout 0.5: the training loss sits far above the validation loss all along; the
    # validation loss falls and settles. The gap is negative everywhere: not a verdict.
    val = [1.0, 0.6, 0.45, 0.40, 0.38, 0.375, 0.374]
    train = [v + 0.5 for v in val]
    assert diagnose({"loss": train, "val_loss": val}).verdict == "good fit"


def test_heavy_dropout_that_overfits_is_called_overfit() -> None:
    # The gap stays negative (dropout) but the validation loss turns up while training
    # keeps falling: overfitting, whatever the gap's sign.
    val = [1.0, 0.5, 0.40, 0.44, 0.50, 0.58]
    train = [1.6, 1.2, 1.00, 0.90, 0.82, 0.75]
    assert all(t > v for t, v in zip(train, val, strict=True))
    result = diagnose({"loss": train, "val_loss": val})
    assert result.verdict == "overfit"
    assert result.best_epoch == 2
    assert result.rising_epochs == 3
    assert result.rise == pytest.approx(0.45)
    assert "rose 45%" in result.reason


def test_rise_below_threshold_or_too_brief_is_a_good_fit() -> None:
    train = [1.0, 0.6, 0.4, 0.3, 0.25, 0.2]
    small = [1.0, 0.6, 0.40, 0.41, 0.42, 0.43]  # +7.5%
    assert diagnose({"loss": train, "val_loss": small}).verdict == "good fit"
    brief = [1.0, 0.6, 0.5, 0.45, 0.40, 0.50]  # +25% but one epoch after the minimum
    assert diagnose({"loss": train, "val_loss": brief}).verdict == "good fit"


def test_a_curve_that_rose_and_came_back_part_way_still_rose() -> None:
    val = [1.0, 0.5, 0.40, 0.60, 0.70, 0.45]
    train = [1.0, 0.6, 0.4, 0.3, 0.25, 0.2]
    assert diagnose({"loss": train, "val_loss": val}).verdict == "overfit"


def test_both_losses_rising_is_unstable_not_overfit() -> None:
    val = [1.0, 0.5, 0.40, 0.60, 0.90]
    train = [1.0, 0.5, 0.35, 0.55, 0.85]
    result = diagnose({"loss": train, "val_loss": val})
    assert result.verdict == "unstable"
    assert "learning rate" in result.reason


def test_underfit_still_improving_at_the_last_epoch() -> None:
    val = [1.0, 0.9, 0.8, 0.7, 0.6]
    train = [1.1, 1.0, 0.9, 0.8, 0.7]
    result = diagnose({"loss": train, "val_loss": val})
    assert result.verdict == "underfit"
    assert "still fell" in result.reason
    assert result.val_slope < 0


def test_underfit_training_loss_barely_moved() -> None:
    val = [2.30, 2.29, 2.29, 2.28, 2.285]
    train = [2.31, 2.30, 2.30, 2.29, 2.29]
    assert diagnose({"loss": train, "val_loss": val}).verdict == "underfit"


def test_short_and_broken_histories() -> None:
    assert diagnose({"loss": [1.0, 0.5], "val_loss": [1.0, 0.6]}).verdict == "too short"
    assert diagnose({}).verdict == "too short"
    # NaN epochs are ignored; a history without training loss is judged on validation only
    val = [1.0, math.nan, 0.5, 0.4, 0.39, 0.39]
    assert diagnose({"val_loss": val}).verdict == "good fit"


def test_verdict_counts_lists_every_verdict() -> None:
    counts = verdict_counts(["overfit", "good fit", "overfit"])
    assert counts == {"underfit": 0, "good fit": 1, "overfit": 2, "unstable": 0, "too short": 0}


def test_overfit_links_numeric_and_categorical() -> None:
    rows = []
    for dropout in (0.0, 0.05, 0.1, 0.02):
        rows.append(({"dropout": dropout, "optimizer": "adam", "units": 64}, "overfit"))
    for dropout in (0.4, 0.45, 0.5, 0.35):
        rows.append(({"dropout": dropout, "optimizer": "sgd", "units": 64}, "good fit"))
    rows.append(({"dropout": 0.3, "optimizer": "adam"}, "too short"))  # not judged
    links = overfit_links(rows)
    texts = [link.text for link in links]
    assert any(t.startswith("dropout: lower in overfit trials") for t in texts)
    assert "optimizer: overfit trials per choice: adam 4/4, sgd 0/4" in texts
    assert not any(t.startswith("units") for t in texts)  # no spread
    assert overfit_links(rows[:3]) == []  # too few to say anything


def test_edge_hints() -> None:
    ranges = {
        "learning_rate": NumericRange(1e-4, 1e-1, log=True),
        "units": NumericRange(8, 512),
    }
    top = [
        {"learning_rate": 0.09, "units": 200},
        {"learning_rate": 0.07, "units": 300},
        {"learning_rate": 0.08, "units": 100},
        {"learning_rate": 0.001, "units": 256},
    ]
    hints = edge_hints(top, ranges)
    assert len(hints) == 1
    assert hints[0].startswith("learning_rate: 3 of the best 4 trials sit at the high end")
    assert "widen the range above 0.1" in hints[0]
    assert edge_hints(top[:2], ranges) == []  # too few trials


def test_edge_hints_stop_at_what_the_builder_takes() -> None:
    ranges = {
        "depth": NumericRange(1, 4, integer=True),
        "dropout": NumericRange(0.0, 0.5),
        "width": NumericRange(1, 2, integer=True),
    }
    low = [{"depth": 1, "dropout": 0.01, "width": 2} for _ in range(4)]
    # Without limits (a builder of one's own): every low end may widen, and a two-value
    # integer range never says anything (most trials always sit at one of its ends).
    assert [h.split(":")[0] for h in edge_hints(low, ranges)] == ["depth", "dropout"]
    # The Dense builder takes no depth below 1 nor dropout below 0.
    limits = {"depth": (1.0, 1000.0), "dropout": (0.0, 1.0)}
    assert edge_hints(low, ranges, limits) == []
    high = [{"depth": 4, "dropout": 0.49, "width": 1} for _ in range(4)]
    hints = edge_hints(high, ranges, limits)
    assert [h.split(":")[0] for h in hints] == ["depth", "dropout"]
    assert "widen the range above 4" in hints[0] and "widen the range above 0.5" in hints[1]
    assert edge_hints(high, {"dropout": NumericRange(0.0, 1.0)}, limits) == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.05, 0.3, 8.0], True),
        ([0.05, 0.3, 4.0], False),
        ([-1.0, 0.5, 200.0], False),
        ([0.01, math.nan, math.inf, 0.5], False),
        ([], False),
    ],
)
def test_use_log_axis(values: list[float], expected: bool) -> None:
    assert use_log_axis(values) is expected


def _trials(n: int, seed: int = 0) -> list[optuna.trial.FrozenTrial]:
    """The value depends on the learning rate strongly, on dropout weakly, not on units."""
    rnd = random.Random(seed)
    dists = {
        "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
        "dropout": FloatDistribution(0.0, 0.5),
        "units": IntDistribution(8, 256),
        "optimizer": CategoricalDistribution(["adam", "sgd"]),
    }
    trials = []
    for number in range(n):
        params = {
            "learning_rate": 10 ** rnd.uniform(-4, -1),
            "dropout": rnd.uniform(0, 0.5),
            "units": rnd.randint(8, 256),
            "optimizer": rnd.choice(["adam", "sgd"]),
        }
        value = abs(math.log10(params["learning_rate"]) + 2.5) + 0.1 * params["dropout"]
        trial = optuna.trial.create_trial(params=params, distributions=dists, value=value)
        trial.number = number
        trials.append(trial)
    return trials


def test_importance_names_what_drives_the_value() -> None:
    importance = param_importances(_trials(40), "minimize")
    assert importance is not None
    assert importance.evaluator.startswith("fANOVA")
    assert next(iter(importance.values)) == "learning_rate"
    assert sum(importance.values.values()) == pytest.approx(1.0)
    assert plot_importance(importance).startswith(PNG)


def test_importance_of_a_large_study_uses_ped_anova() -> None:
    importance = param_importances(_trials(FANOVA_MAX_TRIALS + 50), "minimize")
    assert importance is not None and importance.evaluator.startswith("PED-ANOVA")
    assert next(iter(importance.values)) == "learning_rate"


def test_importance_absent_when_it_cannot_be_computed() -> None:
    assert param_importances(_trials(2), "minimize") is None
    failed = optuna.trial.create_trial(state=TrialState.FAIL)
    assert param_importances([failed] * 5, "minimize") is None


def test_conditional_params_are_left_out_of_importance() -> None:
    trials = _trials(20)
    extra = optuna.trial.create_trial(
        params={**trials[0].params, "momentum": 0.9},
        distributions={**trials[0].distributions, "momentum": FloatDistribution(0, 1)},
        value=1.0,
    )
    importance = param_importances([*trials, extra], "minimize")
    assert importance is not None and importance.left_out == ["momentum"]


def test_per_param_plots_and_sampling() -> None:
    trials = _trials(30)
    assert (plot_params(trials, "minimize", "val_loss") or b"").startswith(PNG)
    assert (plot_parallel(trials, "minimize", "val_loss") or b"").startswith(PNG)
    assert plot_params([], "minimize", "val_loss") is None
    kept = sample(trials, "minimize", 8)
    assert len(kept) == 8
    best_two = sorted(trials, key=lambda t: t.values[0])[:2]  # the best quarter of 8
    assert {t.number for t in best_two} <= {t.number for t in kept}


def test_history_plot_on_a_log_axis_with_pruned_and_failed() -> None:
    history = OptimizationHistory(
        objective="val_loss",
        direction="minimize",
        numbers=[0, 2, 3],
        values=[5.0, 0.05, 0.04],
        best_so_far=[5.0, 0.05, 0.04],
        pruned_numbers=[1],
        pruned_values=[9.0],
        failed_numbers=[4],
        log=True,
    )
    assert plot_optimization_history(history).startswith(PNG)


def test_ranking_ties_nan_and_states() -> None:
    from reports._frame import rank_trials

    rows = [
        (0, "COMPLETE", 0.5),
        (1, "COMPLETE", math.nan),  # not ranked
        (2, "COMPLETE", 0.3),
        (3, "PRUNED", 0.1),  # not complete: not ranked
        (4, "COMPLETE", 0.3),  # tie with 2: the lower number first
        (5, "COMPLETE", math.inf),  # not finite: not ranked
        (6, "COMPLETE", None),
        (7, "FAIL", None),
    ]
    assert rank_trials(rows, "minimize") == {2: 1, 4: 2, 0: 3}
    assert rank_trials(rows, "maximize") == {0: 1, 2: 2, 4: 3}
    with pytest.raises(ValueError, match="'minimize' or 'maximize'"):
        rank_trials(rows, "down")


def test_verdict_hints() -> None:
    from reports._analysis import verdict_hints

    mostly_over = ["overfit", "overfit", "good fit", "overfit", "too short", "good fit"]
    [hint] = verdict_hints(mostly_over)
    assert hint.startswith("3 of the best 5 trials are overfit: try more regularisation")
    assert verdict_hints(["underfit"] * 4)[0].startswith("4 of the best 4 trials are underfit")
    assert verdict_hints(["good fit"] * 8) == []
    assert verdict_hints(["overfit", "overfit"]) == []  # too few to advise

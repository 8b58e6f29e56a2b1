"""The numbers behind the report's judgements, as pure functions on plain values.

Nothing here reads a database or draws: the report (``reports._html``) feeds these the
histories and params it read, and the tests feed them hand-built ones.

- ``diagnose``: a verdict per trial (underfit, good fit, overfit, unstable) from the shape
  of its curves, not from the gap between them. Training loss is measured with dropout and the
  regularisation penalties on, validation loss without them, so a well-regularised model
  often has a training loss *above* its validation loss: a negative "gap" says nothing. What
  does: how far and for how long the validation loss rose after its minimum while the
  training loss did not rise with it (overfit; both rising is unstable training, a learning
  rate too high, not overfitting), and whether the validation loss was still falling
  when training stopped, or the training loss barely fell at all (underfit).
- ``overfit_links``: which params go with the overfit verdict.
- ``edge_hints``: the best trials sit at the edge of a numeric range: widen it.
- ``use_log_axis``: whether values span orders of magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Values at least this large (a history or a value written by hand, a loss that overflowed)
# cannot be drawn or analysed: an axis around them, or their variance, spans more than a
# float holds. The plots leave them out as they leave out NaN.
DRAWABLE = 1e300

# The thresholds of ``diagnose``, written on the report's page as they are used.
OVERFIT_RISE = 0.10
"""Overfit: the validation loss rose at least this much (relative to its minimum) ..."""
OVERFIT_EPOCHS = 2
"""... over at least this many epochs after the minimum, while the training loss rose less
than half as much (relative to its value at that epoch); if it rose as much: unstable."""
STILL_IMPROVING = 0.01
"""Underfit: over its last epochs the validation loss still fell by more than this (relative,
per epoch) and its best epoch is the last one: training stopped while it was still learning."""
BARELY_LEARNED = 0.05
"""Underfit: the training loss fell by less than this (relative) from the first epoch to the
best one: the model did not learn the training data."""
MIN_EPOCHS = 3
"""A history shorter than this gets no verdict (too short to tell)."""

VERDICTS = ("underfit", "good fit", "overfit", "unstable")
NO_VERDICT = "too short"


@dataclass(frozen=True)
class Diagnosis:
    """One trial's verdict and the numbers it rests on.

    ``rise``: how far the validation loss rose above its minimum by the last epoch, relative
    to the minimum (0 when the minimum is the last epoch); ``rising_epochs``: epochs run after
    the minimum; ``train_trend``: relative change of the training loss from the best epoch to
    the last (negative: still falling); ``val_slope``: relative change per epoch of the
    validation loss over the last ``MIN_EPOCHS`` epochs; ``reason``: one sentence.
    """

    verdict: str
    best_epoch: int | None
    rise: float
    rising_epochs: int
    train_trend: float
    val_slope: float
    reason: str


def _finite(values: Sequence[float] | None) -> list[float]:
    return [float(v) for v in values or [] if isinstance(v, int | float) and math.isfinite(v)]


def _relative(change: float, scale: float) -> float:
    return (
        change / abs(scale) if scale else (0.0 if change == 0 else math.copysign(math.inf, change))
    )


def diagnose(history: Mapping[str, Sequence[float]]) -> Diagnosis:
    """The verdict of one trial's history ({metric: [value per epoch]}; ``loss`` and
    ``val_loss`` are read). See the module docstring and the thresholds above."""
    val = _finite(history.get("val_loss"))
    train = _finite(history.get("loss"))
    if len(val) < MIN_EPOCHS:
        return Diagnosis(NO_VERDICT, None, 0.0, 0, 0.0, 0.0, f"fewer than {MIN_EPOCHS} epochs")
    best = min(range(len(val)), key=lambda i: (val[i], i))
    last = len(val) - 1
    rise = _relative(val[last] - val[best], val[best])
    # The highest point after the minimum: a curve that rose and came back part way rose.
    peak = max(val[best:])
    peak_rise = _relative(peak - val[best], val[best])
    rising_epochs = last - best
    train_trend = 0.0
    if len(train) == len(val):
        train_trend = _relative(train[last] - train[best], train[best])
    window = val[-MIN_EPOCHS:]
    val_slope = _relative(window[-1] - window[0], window[0]) / (len(window) - 1)
    learned = 0.0
    if train:
        end = train[min(best, len(train) - 1)]
        learned = -_relative(end - train[0], train[0])

    train_peak = 0.0
    if len(train) == len(val):
        train_peak = _relative(max(train[best:]) - train[best], train[best])
    if peak_rise >= OVERFIT_RISE and rising_epochs >= OVERFIT_EPOCHS:
        rose = f"validation loss rose {peak_rise:.0%} above its minimum (epoch {best}) over the "
        rose += f"{rising_epochs} epochs after it"
        if train_peak * 2 < peak_rise:
            moved = f"fell {-train_trend:.0%}" if train_trend < 0 else f"rose {train_trend:.0%}"
            reason = f"{rose} while the training loss {moved}"
            return Diagnosis("overfit", best, rise, rising_epochs, train_trend, val_slope, reason)
        reason = (
            f"{rose} and the training loss rose {train_peak:.0%} with it: unstable training "
            "(a learning rate too high?), not overfitting"
        )
        return Diagnosis("unstable", best, rise, rising_epochs, train_trend, val_slope, reason)
    if train and learned < BARELY_LEARNED:
        reason = f"training loss fell only {learned:.0%} from the first epoch to the best"
        return Diagnosis("underfit", best, rise, rising_epochs, train_trend, val_slope, reason)
    if best == last and -val_slope > STILL_IMPROVING:
        reason = (
            f"validation loss still fell {-val_slope:.1%} per epoch when training stopped "
            f"(epoch {last}): more epochs, or a higher learning rate"
        )
        return Diagnosis("underfit", best, rise, rising_epochs, train_trend, val_slope, reason)
    reason = f"validation loss at its minimum at epoch {best}"
    if rising_epochs:
        reason += f", within {max(peak_rise, 0.0):.0%} of it for the {rising_epochs} after"
    return Diagnosis("good fit", best, rise, rising_epochs, train_trend, val_slope, reason)


@dataclass(frozen=True)
class ParamLink:
    """How one param's values differ between overfit trials and the others."""

    param: str
    text: str
    strength: float  # for ordering: larger is a clearer difference


def overfit_links(
    rows: Sequence[tuple[Mapping[str, Any], str]], *, min_trials: int = 3
) -> list[ParamLink]:
    """Which params go with overfitting, from (params, verdict) pairs of diagnosed trials.

    For a numeric param: the median among overfit trials against the median among the
    others, with the share of all trials each side of the overall median; for a categorical
    one: the share of overfit trials per choice. Needs ``min_trials`` overfit trials and as
    many others; params that differ by less than a clear margin are left out. Strongest
    first.
    """
    judged = [(p, v) for p, v in rows if v in VERDICTS]
    over = [p for p, v in judged if v == "overfit"]
    rest = [p for p, v in judged if v != "overfit"]
    if len(over) < min_trials or len(rest) < min_trials:
        return []
    names = sorted({name for params, _ in judged for name in params})
    links: list[ParamLink] = []
    for name in names:
        a = [p[name] for p in over if name in p]
        b = [p[name] for p in rest if name in p]
        if len(a) < min_trials or len(b) < min_trials:
            continue
        if all(_is_number(x) for x in a + b):
            ma, mb = _median([float(x) for x in a]), _median([float(x) for x in b])
            everything = sorted(float(x) for x in a + b)
            spread = everything[-1] - everything[0]
            if spread <= 0:
                continue
            strength = abs(ma - mb) / spread
            if strength < 0.15:
                continue
            side = "higher" if ma > mb else "lower"
            text = (
                f"{name}: {side} in overfit trials (median {_g(ma)} against {_g(mb)} in the "
                f"{len(b)} others)"
            )
            links.append(ParamLink(name, text, strength))
        else:
            choices = sorted({str(x) for x in a + b})
            if len(choices) < 2:
                continue
            shares = {}
            for choice in choices:
                n_over = sum(1 for x in a if str(x) == choice)
                n_all = n_over + sum(1 for x in b if str(x) == choice)
                if n_all:
                    shares[choice] = (n_over / n_all, n_over, n_all)
            top = max(shares.values(), key=lambda s: s[0])
            low = min(shares.values(), key=lambda s: s[0])
            strength = top[0] - low[0]
            if strength < 0.25:
                continue
            parts = ", ".join(
                f"{choice} {n_over}/{n_all}"
                for choice, (_, n_over, n_all) in sorted(
                    shares.items(), key=lambda item: -item[1][0]
                )
            )
            links.append(ParamLink(name, f"{name}: overfit trials per choice: {parts}", strength))
    return sorted(links, key=lambda link: -link.strength)


@dataclass(frozen=True)
class NumericRange:
    """A numeric param's range in the space."""

    low: float
    high: float
    log: bool = False
    integer: bool = False


EDGE = 0.1
"""A value is at the edge of its range when it lies in the outer tenth of it (log-scaled
where the range is log)."""


Limits = Mapping[str, tuple[float | None, float | None]]
"""Per param, the values its builder refuses from (a range cannot widen to them): below or
at the first, at or above the second; None where it has no limit."""


def edge_hints(
    top_params: Sequence[Mapping[str, Any]],
    ranges: Mapping[str, NumericRange],
    limits: Limits | None = None,
) -> list[str]:
    """Hints for numeric params where most of the best trials (``top_params``, best first)
    sit at one edge of the range: widen the range that way, where the builder's ``limits``
    leave room (no "below 0" for a dropout). An integer range of two values is left out:
    most of the best trials always sit at one of its ends."""
    hints: list[str] = []
    if len(top_params) < 3:
        return hints
    for name, bounds in sorted(ranges.items()):
        values = [float(p[name]) for p in top_params if _is_number(p.get(name))]
        if len(values) < 3 or bounds.high <= bounds.low:
            continue
        if bounds.integer and bounds.high - bounds.low < 2:
            continue
        floor, ceiling = (limits or {}).get(name, (None, None))
        room = {
            "low": floor is None or floor < bounds.low,
            "high": ceiling is None or bounds.high < ceiling,
        }
        positions = [_position(v, bounds) for v in values]
        for side, test in (("low", lambda x: x <= EDGE), ("high", lambda x: x >= 1 - EDGE)):
            at_edge = sum(1 for x in positions if test(x))
            if at_edge * 2 > len(values) and room[side]:
                limit = bounds.low if side == "low" else bounds.high
                direction = "below" if side == "low" else "above"
                hints.append(
                    f"{name}: {at_edge} of the best {len(values)} trials sit at the {side} end "
                    f"of [{_g(bounds.low)}, {_g(bounds.high)}]: widen the range {direction} "
                    f"{_g(limit)}"
                )
    return hints


def _position(value: float, bounds: NumericRange) -> float:
    if bounds.log and bounds.low > 0 and value > 0:
        return (math.log(value) - math.log(bounds.low)) / (
            math.log(bounds.high) - math.log(bounds.low)
        )
    return (value - bounds.low) / (bounds.high - bounds.low)


def verdict_hints(best_verdicts: Sequence[str]) -> list[str]:
    """Textbook advice where most of the best trials (their verdicts, best first) share a
    verdict: at least half of them, and at least 3."""
    judged = [v for v in best_verdicts if v in VERDICTS]
    if len(judged) < 3:
        return []
    advice = {
        "overfit": "more regularisation (a higher dropout or l2 range), fewer units, or "
        "more data; early stopping already keeps each trial's best epoch",
        "underfit": "more epochs (--epochs), a higher learning rate range, or more capacity "
        "(units, depth)",
        "unstable": "a lower learning rate range, or batch normalisation",
    }
    hints = []
    for verdict, text in advice.items():
        n = judged.count(verdict)
        if n * 2 >= len(judged) and n >= 3:
            hints.append(f"{n} of the best {len(judged)} trials are {verdict}: try {text}")
    return hints


LOG_SPAN = 100.0
"""Values are drawn on a log axis when all are positive and the largest is at least this
many times the smallest."""


def use_log_axis(values: Sequence[float]) -> bool:
    """Whether ``values`` (NaN and inf ignored) span orders of magnitude: all positive and
    max / min >= ``LOG_SPAN``."""
    finite = _finite(values)
    if not finite or min(finite) <= 0:
        return False
    return max(finite) / min(finite) >= LOG_SPAN


def verdict_counts(verdicts: Sequence[str]) -> dict[str, int]:
    """How many trials got each verdict (every verdict listed, zeros included)."""
    counts = dict.fromkeys((*VERDICTS, NO_VERDICT), 0)
    for verdict in verdicts:
        counts[verdict] = counts.get(verdict, 0) + 1
    return counts


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _g(value: float) -> str:
    return f"{value:.3g}"

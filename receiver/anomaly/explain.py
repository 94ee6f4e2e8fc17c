"""Why a point was flagged: the feature that broke, by how much, against which season.

An on-call reader sees a score of 0.9997 and needs to know what to look at. The model
that flagged a point knows: every column was fitted on a sorted training sample, so
the column whose tail is the most extreme names the feature, its training range gives
the threshold it crossed (in robust spreads, comparable across series), and for the
seasonal column the lagged windows it was compared with say which season.
"""

from __future__ import annotations

import numpy as np

from receiver.anomaly.windows import BASE, SHORT

FEATURE_TEXT = {
    "level": "the value itself",
    "diff": "the step from the previous point",
    "shift": f"the mean of the last {SHORT} points against the {BASE} before them",
    "volatility": f"the mean absolute step over the last {SHORT} points",
    "seasonal": f"the mean of the last {SHORT} points against the same points in past periods",
}


def explain(detector, names: tuple[str, ...], row: np.ndarray, recent_mean: float,
            period: int, seasons: int) -> dict:
    """Explanation of one feature row (a flagged point) under the model that scored it."""
    sorted_cols = detector.sorted
    if detector.kind in ("ecod", "copod"):
        strength = detector.column_scores(row[None, :])[0]
    else:  # no per-column tails: the robust distance from the training median
        mid = sorted_cols[:, sorted_cols.shape[1] // 2]
        strength = np.abs(row - mid) / detector.scale
    j = int(np.argmax(strength))
    col, scale, value = sorted_cols[j], float(detector.scale[j]), float(row[j])
    median = float(col[len(col) // 2])
    high = value >= median
    threshold = float(col[-1] if high else col[0])  # the most extreme value in training
    past = (value - threshold) if high else (threshold - value)
    out = {
        "feature": names[j],
        "about": FEATURE_TEXT[names[j]],
        "direction": "above" if high else "below",
        "value": round(value, 6),
        "typical": round(median, 6),
        "threshold": round(threshold, 6),
        # > 0: beyond anything in the training window, in robust spreads (MAD)
        "past_threshold_spreads": round(past / scale, 3),
        "spreads_from_typical": round(abs(value - median) / scale, 3),
        "season": None,
    }
    if period:
        out["season"] = {"period_points": period, "seasons": seasons,
                         "now": round(recent_mean, 6),
                         "then": round(recent_mean - float(row[names.index("seasonal")]), 6)}
    return out


def summary(e: dict, step_seconds: float | None = None) -> str:
    """One line for people: feature, how far past its threshold, which season."""
    text = (f"{e['feature']} {e['direction']} its training range by "
            f"{e['past_threshold_spreads']:g} spreads (value {e['value']:g}, "
            f"typical {e['typical']:g}, threshold {e['threshold']:g})")
    season = e.get("season")
    if season:
        lag = f"{season['period_points']} points"
        if step_seconds:
            lag = _duration(season["period_points"] * step_seconds)
        seasons = season["seasons"]
        median = f" (median of {seasons} periods)" if seasons > 1 else ""
        text += (f"; compared with the same time {lag} earlier{median}: "
                 f"now {season['now']:g}, then {season['then']:g}")
    return text


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"

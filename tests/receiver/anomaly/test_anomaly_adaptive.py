"""Per-series adaptive defaults: the seasonal column only where a series repeats, the
strangest column deciding alone (max), and the LOCO bench mode on a tiny data set."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from receiver.anomaly.detectors import FittedDetector
from receiver.anomaly.explain import summary
from receiver.anomaly.stream import SeriesStream, StreamConfig, seasonal_strength

CFG = StreamConfig(min_train=100, min_scores=100, refit_every=50, tail_every=10, period=48)


def daily(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 50 + 10 * np.sin(2 * np.pi * np.arange(n) / 48) + rng.normal(0, 1, n)


def flags_of(x: np.ndarray, cfg: StreamConfig) -> np.ndarray:
    stream = SeriesStream(cfg)
    return np.concatenate([stream.push(x[i : i + 100]).flags for i in range(0, len(x), 100)])


def test_seasonal_column_only_for_a_series_that_repeats():
    repeating = SeriesStream(CFG)
    repeating.push(daily(400, 1))
    assert repeating.season == 48 and repeating.model.spec.period == 48
    noise = SeriesStream(CFG)
    noise.push(np.random.default_rng(2).normal(0, 1, 400))
    assert noise.season == 0 and noise.model.spec.period == 0
    always = SeriesStream(replace(CFG, season_min_acf=0))
    always.push(np.random.default_rng(2).normal(0, 1, 400))
    assert always.model.spec.period == 48


def test_seasonal_strength_of_short_or_constant_series_is_zero():
    assert seasonal_strength(np.ones(500), 48) == 0.0
    assert seasonal_strength(daily(60, 1), 48) == 0.0
    assert seasonal_strength(daily(500, 1), 48) > 0.9


def test_max_combination_is_the_strangest_column():
    rng = np.random.default_rng(3)
    train = rng.normal(0, 1, (300, 4))
    rows = np.zeros((2, 4))
    rows[1, 2] = 6.0  # one broken feature among ordinary ones
    summed = FittedDetector("ecod", train, combine="sum")
    strongest = FittedDetector("ecod", train, combine="max")
    cols = strongest.column_scores(rows)
    np.testing.assert_allclose(strongest.score(rows), cols.max(axis=1))
    np.testing.assert_allclose(summed.score(rows), cols.sum(axis=1))
    assert int(np.argmax(cols[1])) == 2
    with pytest.raises(ValueError):
        FittedDetector("ecod", train, combine="mean")


def test_default_policy_flags_quiet_noise_no_more_than_the_sum():
    # default training lengths: with fewer rows the max of k columns is noisier
    false = {c: sum(flags_of(daily(2500, s), StreamConfig(period=48, combine=c)).sum()
                    for s in range(8)) for c in ("sum", "max")}
    assert false["max"] <= max(false["sum"], 1)


def test_loco_mode_prints_a_pooled_row(tmp_path, capsys):
    t = np.arange(1200)
    stamps = np.datetime64("2024-01-01T00:00:00") + t * np.timedelta64(300, "s")
    windows = {}
    for cat, seed in (("a", 1), ("b", 2)):
        (tmp_path / cat).mkdir()
        x = daily(1200, seed)
        x[1000] += 40
        lines = ["timestamp,value"] + [f"{str(s).replace('T', ' ')},{v}"
                                       for s, v in zip(stamps, x, strict=True)]
        (tmp_path / cat / "s.csv").write_text("\n".join(lines))
        windows[f"{cat}/s.csv"] = [[str(stamps[990]).replace("T", " ") + ".000000",
                                    str(stamps[1010]).replace("T", " ") + ".000000"]]
    (tmp_path / "combined_windows.json").write_text(json.dumps(windows))
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
    import anomaly_nab

    assert anomaly_nab.main(["--data", str(tmp_path), "--loco"]) == 0
    out = capsys.readouterr().out
    assert "pooled (held out)" in out
    last = json.loads(out.strip().splitlines()[-1])
    assert set(last) >= {"f1", "precision", "recall", "flag_rate"}


def test_each_flag_says_which_feature_how_far_and_which_season():
    x = daily(1200, 1)
    x[1000] += 40
    stream = SeriesStream(CFG)
    result = stream.push(x)
    assert set(result.explanations) == set(np.flatnonzero(result.flags))
    why = result.explanations[1000]
    assert why["feature"] == "diff" and why["direction"] == "above"
    assert why["past_threshold_spreads"] > 5 and why["value"] > why["threshold"]
    assert why["season"]["period_points"] == 48
    assert why["season"]["now"] - why["season"]["then"] > 5  # today against a day ago
    assert "48 points earlier" in summary(why)
    assert "2 h earlier" in summary(why, step_seconds=150)


def test_a_missing_daily_peak_is_explained_by_the_season():
    x = daily(1400, 4)
    x[1152 + 8 : 1152 + 16] -= 12  # the peak of one day does not come
    stream = SeriesStream(replace(CFG, min_train=300))
    result = stream.push(x)
    flagged = [i for i in result.explanations if 1152 + 8 <= i < 1152 + 20]
    assert flagged, "the missing peak was not flagged"
    why = result.explanations[flagged[0]]
    assert why["feature"] in ("seasonal", "shift", "level", "diff")
    assert why["season"] is not None and why["season"]["then"] > why["season"]["now"]

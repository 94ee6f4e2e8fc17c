"""The scorer on its own: no look-ahead, chunking does not matter, PyOD equivalence."""

from __future__ import annotations

import numpy as np
import pytest

from receiver.anomaly import features
from receiver.anomaly.detectors import FittedDetector
from receiver.anomaly.stream import SeriesStream, StreamConfig, config_for_step, fit_detector
from receiver.anomaly.thresholds import TailModel, slide, suppress

CFG = StreamConfig(min_train=100, min_scores=100, refit_every=50, tail_every=10, period=48,
                   risk=1e-4, suppress=144, combine="sum")


def series(n: int = 900, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 10 * np.sin(2 * np.pi * t / 48) + rng.normal(0, 1, n)


def scores_of(values: np.ndarray, chunk: int, cfg: StreamConfig = CFG):
    stream = SeriesStream(cfg)
    parts = [stream.push(values[i : i + chunk]) for i in range(0, len(values), chunk)]
    return (np.concatenate([p.scores for p in parts]), np.concatenate([p.flags for p in parts]))


def test_score_of_a_point_ignores_every_later_point():
    x = series()
    t = 700
    base, base_flags = scores_of(x, 37)
    changed = x.copy()
    changed[t + 1 :] = np.random.default_rng(9).normal(500, 100, len(x) - t - 1)  # wild future
    after, after_flags = scores_of(changed, 37)
    np.testing.assert_array_equal(base[: t + 1], after[: t + 1])
    np.testing.assert_array_equal(base_flags[: t + 1], after_flags[: t + 1])
    assert not np.allclose(base[t + 1 :], after[t + 1 :])  # the future did change


def test_chunking_does_not_change_scores():
    x = series()
    one, one_flags = scores_of(x, 1)
    big, big_flags = scores_of(x, 900)
    np.testing.assert_array_equal(one, big)  # bit for bit: window sums never depend on it
    np.testing.assert_array_equal(one_flags, big_flags)


def test_slide_is_a_sort_of_the_new_window():
    x = np.random.default_rng(6).integers(0, 20, 600).astype(float)  # many ties
    lo, hi = 0, 300
    ranked = np.sort(x[lo:hi])
    for leave, enter in [(17, 17), (7, 9), (0, 1), (50, 0), (24, 24), (30, 3)]:
        ranked = slide(ranked, x[lo : lo + leave], x[hi : hi + enter])
        lo, hi = lo + leave, hi + enter
        np.testing.assert_array_equal(ranked, np.sort(x[lo:hi]))


def test_a_slid_refit_equals_a_fit_from_scratch():
    x = series(1500)
    sums = features.WindowSums(x)
    spec = features.FeatureSpec(48)
    first = fit_detector("ecod", spec, sums.rows(100, 1100, spec), 100, 1100, None)
    slid = fit_detector("ecod", spec, sums.rows(180, 1180, spec), 180, 1180, first)
    fresh = fit_detector("ecod", spec, sums.rows(180, 1180, spec), 180, 1180, None)
    assert slid.detector.sorted is not fresh.detector.sorted
    for attr in ("sorted", "scale", "skew_sign"):
        np.testing.assert_array_equal(getattr(slid.detector, attr), getattr(fresh.detector, attr))


def test_spike_is_flagged_once_and_flat_noise_is_not():
    x = series(1200)
    x[1000] += 40
    scores, flags = scores_of(x, 100)
    assert flags[1000] and scores[1000] > 0.999
    assert flags.sum() == 1
    quiet, quiet_flags = scores_of(series(1200, seed=2), 100)
    assert not quiet_flags.any()
    assert np.nanmedian(quiet) < 0.9


@pytest.mark.parametrize("cfg", [
    CFG,
    StreamConfig(min_train=10, min_scores=20, refit_every=10),  # the demo's warm-up
    StreamConfig(),
], ids=["tests", "demo", "default"])
def test_first_score_comes_exactly_where_the_warm_up_arithmetic_says(cfg):
    scores, _ = scores_of(series(cfg.first_score_index + 50), 7, cfg)
    first = cfg.first_score_index
    assert np.isnan(scores[:first]).all()
    assert np.isfinite(scores[first:]).all()


@pytest.mark.parametrize("kind", ["ecod", "copod"])
def test_scores_equal_pyod_for_a_batch_of_one(kind):
    from pyod.models.copod import COPOD
    from pyod.models.ecod import ECOD

    rng = np.random.default_rng(3)
    train = rng.gamma(2.0, 1.0, size=(300, 4))  # skewed, so the skew correction matters
    rows = np.vstack([rng.gamma(2.0, 1.0, size=(20, 4)), [[0.5, 1, 2, 3]]])
    ours = FittedDetector(kind, train).score(rows)
    model = (ECOD if kind == "ecod" else COPOD)().fit(train)
    # inside the training range our score is PyOD's for that row alone
    inside = np.all((rows >= train.min(0)) & (rows <= train.max(0)), axis=1)
    theirs = np.array([model.decision_function(r[None, :])[0] for r in rows])
    np.testing.assert_allclose(ours[inside], theirs[inside], rtol=1e-9)


def test_scores_keep_growing_past_the_training_range():
    train = np.random.default_rng(4).normal(size=(300, 2))
    det = FittedDetector("ecod", train)
    a, b = det.score(np.array([[5.0, 0.0], [50.0, 0.0]]))
    assert b > a + 10


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="finite"):
        SeriesStream(CFG).push(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="unknown detector"):
        StreamConfig(detector="lof")
    with pytest.raises(ValueError, match="step"):
        config_for_step(0)
    with pytest.raises(ValueError, match="need"):
        features.build(np.arange(10.0), 2, features.FeatureSpec())


def test_tail_model_and_suppression():
    past = np.random.default_rng(5).exponential(size=2000)
    tail = TailModel.fit(past)
    p = tail.tail_probability(np.array([0.0, 3.0, 20.0]))
    assert p[0] > 0.99 and 0.01 < p[1] < 0.1 and p[2] < 1e-5
    flags, last = suppress(np.array([1, 1, 0, 0, 0, 1, 0, 1], bool), 100, -10**9, 2)
    assert flags.tolist() == [1, 0, 0, 0, 0, 1, 0, 0] and last == 107

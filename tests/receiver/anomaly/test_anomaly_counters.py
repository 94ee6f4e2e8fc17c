"""Counters versus gauges: which is which, and increases across pushes and resets."""

from __future__ import annotations

import numpy as np
import pytest

from receiver.anomaly.counters import Increases, looks_like_counter
from receiver.anomaly.stream import SeriesStream, StreamConfig

rng = np.random.default_rng(5)
COUNTER = np.cumsum(rng.poisson(3, 300)).astype(float)


def test_a_counter_with_a_reset_is_a_counter_and_gauges_are_not():
    restarted = COUNTER.copy()
    restarted[150:] -= restarted[149]
    assert looks_like_counter(COUNTER) and looks_like_counter(restarted)
    noise = 100 + rng.normal(0, 1, 300)
    dip = COUNTER.copy()
    dip[100] = 0.9 * dip[99]  # falls, but not like a restart
    rare = np.r_[np.zeros(290), np.arange(1, 11)]  # grows on 3 % of its steps
    for gauge in (noise, dip, -COUNTER, np.full(300, 7.0), rare, COUNTER[:10]):
        assert not looks_like_counter(gauge)


def test_increases_carry_over_pushes_and_count_a_reset_from_zero():
    inc = Increases()
    assert inc(np.array([10.0, 12.0, 15.0])).tolist() == [0.0, 2.0, 3.0]
    assert inc(np.array([16.0, 2.0, 5.0])).tolist() == [1.0, 2.0, 3.0]
    assert inc(np.empty(0)).tolist() == []


@pytest.mark.parametrize("chunk", [1, 7, 300])
def test_counter_streams_score_the_same_however_chunked(chunk):
    cfg = StreamConfig(min_train=50, min_scores=24, refit_every=25, counter=True)
    whole = SeriesStream(cfg).push(COUNTER)
    parts = SeriesStream(cfg)
    scores = np.concatenate([parts.push(COUNTER[i : i + chunk]).scores
                             for i in range(0, len(COUNTER), chunk)])
    np.testing.assert_array_equal(whole.scores, scores)
    assert np.isfinite(scores[-1])

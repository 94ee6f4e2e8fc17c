"""The outlier score: PyOD fits in the refitter process, workers score without PyOD."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from pyod.models.copod import COPOD
from pyod.models.ecod import ECOD

from exporters.fraud import refitter as refitter_mod
from exporters.fraud.ecdf import EcdfScorer
from exporters.fraud.metrics import HistogramTally
from exporters.fraud.refitter import RefitError, Refitter, answer, fit_window

PYOD = {"ECOD": ECOD, "COPOD": COPOD}


def training(rng: np.random.Generator, n: int = 400) -> np.ndarray:
    return np.column_stack([
        rng.normal(size=n), rng.exponential(size=n), rng.integers(1, 5, size=n),
        -rng.exponential(size=n),
        np.zeros(n),  # a signal nobody sends: constant, skewness 0 until a point differs
        np.r_[np.ones(n // 2), -np.ones(n // 2)],  # symmetric: skewness exactly 0
        rng.choice([0.0, 1.0], size=n, p=[0.95, 0.05]),  # mostly 0, like bot_user_agent
    ])


@pytest.fixture(scope="module")
def refitter():
    r = Refitter(timeout=60).start()
    yield r
    r.stop()


@pytest.mark.parametrize("detector", ["ECOD", "COPOD"])
def test_scalar_scorer_equals_pyod_for_a_batch_of_one(detector):
    rng = np.random.default_rng(7)
    train = training(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PYOD[detector]().fit(train)
        scorer = EcdfScorer(detector, np.sort(train, axis=0).T, model.decision_scores_,
                            np.zeros(train.shape[1]))
        points = [np.r_[rng.normal(scale=3, size=4), rng.choice([0, 0, 5, -5]),
                        rng.choice([1, -1, 0, 40, -40]), rng.choice([0, 1, 7])]
                  for _ in range(200)]
        for x in points[::3]:  # window values themselves: ties in a continuous column
            x[0], x[2] = train[rng.integers(len(train)), 0], rng.integers(0, 6)  # and a
            # count table's column (few distinct values), inside and outside its range
        for x in points:  # includes points that flip a column's skewness sign
            expected = model.decision_function(x[None, :])[0]
            assert scorer.raw(x.tolist()) == pytest.approx(expected, rel=1e-12, abs=1e-12), x


def test_refitter_process_fits_pyod_and_workers_score_the_same(refitter):
    rng = np.random.default_rng(11)
    window = training(rng, 300)
    window[rng.random(window.shape) < 0.1] = np.nan  # missing signals
    window[:, 4] = np.nan  # a signal nobody sent at all
    fit = refitter.fit("ECOD", window)
    data, medians = refitter_mod.impute(window)
    assert medians[4] == 0 and not np.isnan(data).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ECOD().fit(data)
    np.testing.assert_allclose(fit.training_scores, model.decision_scores_)
    np.testing.assert_array_equal(fit.sorted_columns, np.sort(data, axis=0).T)
    scorer = EcdfScorer(fit.detector, fit.sorted_columns, fit.training_scores, fit.medians)
    point = [3.0, np.nan, 9.0, -0.1, 2.0, 1.0, 0.0]
    imputed = np.where(np.isnan(point), medians, point)
    assert scorer.raw(imputed.tolist()) == pytest.approx(
        model.decision_function(imputed[None, :])[0])
    share = scorer.score(point)
    assert share == round(float(np.mean(model.decision_scores_ < scorer.raw(imputed.tolist()))),
                          4)


@pytest.mark.parametrize("request_bytes, error", [
    (b"not an npz", "not an .npz"),
    (refitter_mod._npz(detector=np.array("IForest"), rows=np.zeros((50, 3))), "detector"),
    (refitter_mod._npz(detector=np.array("ECOD"), rows=np.zeros(50)), "shape"),
    (refitter_mod._npz(detector=np.array("ECOD"), rows=np.full((50, 3), np.inf)), "infinite"),
    (refitter_mod._npz(rows=np.zeros((50, 3))), "detector"),
    (refitter_mod._npz(detector=np.array("ECOD"), rows=np.array([object()] * 4)), "pickle"),
])
def test_bad_windows_get_an_error_answer_not_a_crash(request_bytes, error):
    reply = refitter_mod._load(answer(request_bytes))
    assert set(reply) == {"error"} and error in str(reply["error"]), reply


def test_bad_answers_are_refused_by_the_worker(refitter):
    rows = np.random.default_rng(1).normal(size=(60, 3))
    good = fit_window("ECOD", rows)
    doc = {"detector": np.array("ECOD"), "sorted_columns": good.sorted_columns,
           "training_scores": good.training_scores, "medians": good.medians}
    assert refitter_mod._check_answer(doc, "ECOD", rows.shape).detector == "ECOD"
    for broken in ({**doc, "sorted_columns": good.sorted_columns[:, :10]},
                   {**doc, "training_scores": np.full(60, np.nan)},
                   {**doc, "detector": np.array("COPOD")},
                   {k: v for k, v in doc.items() if k != "medians"},
                   {"error": np.array("ValueError: nope")}):
        with pytest.raises(RefitError):
            refitter_mod._check_answer(broken, "ECOD", rows.shape)
    with pytest.raises(RefitError, match="detector must be one of"):
        refitter.fit("LOF", rows)


def test_a_wrong_key_is_refused(refitter):
    impostor = Refitter(timeout=2)
    impostor.address, impostor.key = refitter.address, os.urandom(32)
    with pytest.raises(Exception, match="digest"):
        impostor.fit("ECOD", np.zeros((60, 3)))


def test_a_dead_refitter_is_restarted_and_a_failed_refit_keeps_the_last_model():
    r = Refitter(timeout=60).start(supervise=True)
    try:
        rows = np.random.default_rng(2).normal(size=(80, 3))
        assert r.fit("ECOD", rows).sorted_columns.shape == (3, 80)
        os.kill(r._proc.pid, signal.SIGKILL)
        assert r.fit("ECOD", rows).sorted_columns.shape == (3, 80)  # waits for the restart
    finally:
        r.stop()
    assert not os.path.exists(r.directory)
    gone = Refitter(timeout=0.5)
    gone.address, gone.key = r.address, r.key
    with pytest.raises(RefitError, match="not reachable"):
        gone.fit("ECOD", rows)


def test_request_path_never_imports_pyod(tmp_path):
    """A service that checks, refits (through its own refitter) and scores stays
    PyOD-free; only the refitter child pays for PyOD."""
    script = f"""
import sys, json
from exporters.fraud.app import FraudService
from exporters.fraud.settings import FraudSettings
s = FraudSettings.model_validate({{"database_url": "sqlite:///{tmp_path}/f.db",
    "auth": {{"disabled": True}}, "outlier": {{"min_samples": 50}}}})
svc = FraudService(s)
for i in range(60):
    svc.check(json.dumps({{"user_id": f"u{{i}}", "event_id": "e", "quantity": 1 + i % 3}}).encode())
assert svc.outlier.refit()
score = svc.check(b'{{"user_id": "x", "event_id": "e", "quantity": 400}}')[0]["outlier_score"]
svc.stop()
heavy = sorted(m for m in ("pyod", "sklearn", "numba", "scipy", "matplotlib") if m in sys.modules)
print(json.dumps({{"score": score, "heavy": heavy}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    result = __import__("json").loads(out.strip().splitlines()[-1])
    assert result["heavy"] == [] and result["score"] >= 0.99, result


def test_bulk_histogram_fold_in_equals_one_observe_per_value():
    values = [0.0, 3, 10, 10.0001, 55, 99.9, 100, 250, -1]
    one, bulk = CollectorRegistry(), CollectorRegistry()
    h1 = Histogram("x", "h", buckets=(10, 50, 100), registry=one)
    h2 = Histogram("x", "h", buckets=(10, 50, 100), registry=bulk)
    tally = HistogramTally((10, 50, 100))
    for v in values:
        h1.observe(v)
        tally.observe(v)
    tally.add_to(h2)
    strip = [line for line in generate_latest(one).splitlines() if b"_created" not in line]
    assert strip == [line for line in generate_latest(bulk).splitlines()
                     if b"_created" not in line]

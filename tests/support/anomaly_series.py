"""Series of known shapes (flat, spike, constant, gap, NaN, short) for the anomaly tests."""

from __future__ import annotations

import math

import numpy as np

STEP = 60
POINTS = 400


def _cases(end: int) -> dict[str, list[tuple[int, float]]]:
    rng = np.random.default_rng(7)
    times = [end - STEP * (POINTS - 1 - i) for i in range(POINTS)]

    def noise() -> list[float]:
        return list(100 + rng.normal(0, 1, POINTS))

    spike = noise()
    spike[-1] += 40
    gap_times = times[:150] + times[-100:]  # 2.5 h missing, then only 100 points
    nan = noise()
    nan[-1] = math.nan
    return {
        "flat": list(zip(times, noise(), strict=True)),
        "spike": list(zip(times, spike, strict=True)),
        "constant": [(t, 5.0) for t in times],
        "gap": list(zip(gap_times, noise()[:250], strict=True)),
        "nan": list(zip(times, nan, strict=True)),
        "short": list(zip(times[-100:], noise()[:100], strict=True)),
    }


def openmetrics(end: int) -> str:
    lines = ["# TYPE ticketmon_test_value gauge"]
    for case, samples in _cases(end).items():
        for t, v in samples:
            value = "NaN" if math.isnan(v) else repr(float(v))
            lines.append(f'ticketmon_test_value{{case="{case}"}} {value} {t}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"

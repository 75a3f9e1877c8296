"""The mean of a few speed-ups and its two-sided 95% Student-t interval, for the session scripts
(speed_check.sh, session18_steps.sh): ``from ci95 import mean_ci95`` with this folder on the path."""

from __future__ import annotations

import math
import statistics

# two-sided 95% quantiles of Student's t for 1 … 12 degrees of freedom; the normal's beyond
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179]


def mean_ci95(values: list[float]) -> dict:
    """{"mean", "ci95": [low, high]} rounded to 3 places (NaN bounds for fewer than two values)."""
    m = statistics.mean(values)
    df = len(values) - 1
    t = T975[df - 1] if 1 <= df <= len(T975) else statistics.NormalDist().inv_cdf(0.975)
    half = t * statistics.stdev(values) / math.sqrt(len(values)) if df >= 1 else math.nan
    return {"mean": round(m, 3), "ci95": [round(m - half, 3), round(m + half, 3)]}

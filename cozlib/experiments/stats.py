"""Statistics behind every claim: paired differences with bootstrap intervals, and whether a reward
rises over a GRPO run (a least-squares change with a moving-block bootstrap interval).
"""
from __future__ import annotations

import math
from typing import Sequence


def paired_difference(a: Sequence[float], b: Sequence[float], draws: int = 4000,
                      seed: int = 0) -> tuple[float, float, float, int]:
    """Mean of a - b over the pairs where both are numbers, its 95% bootstrap interval (percentile,
    ``draws`` resamples of the pairs) and the number of pairs."""
    import numpy as np
    d = np.array([x - y for x, y in zip(a, b) if not (math.isnan(x) or math.isnan(y))])
    if len(d) == 0:
        return math.nan, math.nan, math.nan, 0
    boot = d[np.random.default_rng(seed).integers(0, len(d), (draws, len(d)))].mean(1)
    return float(d.mean()), float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975)), len(d)


def mean_interval(values: Sequence[float], draws: int = 4000, seed: int = 0) -> tuple[float, float, float, int]:
    """Mean of the numbers in ``values``, its 95% bootstrap interval and their count (the paired
    difference against zero: the same resampling)."""
    return paired_difference(values, [0.0] * len(values), draws, seed)


def reward_trend(history: Sequence[dict], key: str, window: int = 50, block: int = 10, draws: int = 2000,
                 seed: int = 0) -> dict[str, float]:
    """Does a reward rise over a GRPO run (section 4, Figure 6)? The means of the first and the last
    ``window`` steps, and the least-squares slope times the run's length ('change') with a 95%
    moving-block bootstrap interval (blocks of ``block`` consecutive steps)."""
    import numpy as np
    y = np.array([r[key] for r in history if key in r], dtype=float)
    if len(y) < 2 * block:
        raise ValueError(f"reward_trend needs at least {2 * block} logged steps of {key!r}, got {len(y)}")
    x = np.arange(len(y), dtype=float)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(y) - block + 1, (draws, len(y) // block))
    idx = (starts[:, :, None] + np.arange(block)).reshape(draws, -1)
    xs, ys = x[idx], y[idx]
    xc = xs - xs.mean(1, keepdims=True)
    slopes = (xc * (ys - ys.mean(1, keepdims=True))).sum(1) / (xc ** 2).sum(1)
    lo, hi = np.percentile(slopes * len(y), [2.5, 97.5])
    return {"first": float(y[:window].mean()), "last": float(y[-window:].mean()),
            "change": float(np.polyfit(x, y, 1)[0] * len(y)), "change_lo": float(lo), "change_hi": float(hi)}

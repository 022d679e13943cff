"""experiments.verdicts: a result turned into a sentence whose status follows the interval."""
from __future__ import annotations

import math

from cozlib.experiments.verdicts import (FAILS, HOLDS, TOO_FEW, UNSETTLED, Paired, paired, paired_verdict, status,
                                         trend_verdict)


def test_status_follows_the_interval_of_the_paired_difference():
    assert status(-0.17, -0.03, 18) == HOLDS                     # a lower than b, as claimed
    assert status(0.02, 0.10, 18) == FAILS                       # a higher
    assert status(-0.05, 0.04, 18) == UNSETTLED                  # cannot tell
    assert status(-0.17, -0.03, 3) == TOO_FEW
    assert status(0.02, 0.10, 18, lower=False) == HOLDS          # a claimed higher
    assert status(math.nan, math.nan, 18) == TOO_FEW


def test_paired_verdict_states_the_numbers_it_was_given():
    p = Paired("CoZ", "direct SR", 0.51, 0.61, -0.10, -0.17, -0.03, 18, 16)
    text = paired_verdict(p, "CoZ closer to the truth at 64x")
    assert text.startswith("**holds** (CoZ closer to the truth at 64x)")
    assert "CoZ 0.510 vs direct SR 0.610" in text and "16 of 18" in text and "-0.100 (95% -0.170 .. -0.030)" in text


def test_paired_builds_from_per_sample_values_over_the_common_samples():
    a = {i: 0.5 + 0.01 * i for i in range(12)}
    b = {i: 0.7 + 0.01 * i for i in range(12)}
    b[99] = 1.0                                                   # a sample only b has is left out
    p = paired(a, b, "oracle", "null")
    assert p.n == 12 and p.ahead == 12 and abs(p.diff + 0.2) < 1e-9 and p.high < 0
    assert paired({}, b, "x", "y").n == 0


def test_trend_verdict_reads_a_rise():
    assert trend_verdict("R_critic", 0.071, -0.009, 0.137, 300).startswith("**not settled**")
    assert trend_verdict("R_phrase", 0.038, 0.024, 0.058, 300).startswith("**holds**")
    assert trend_verdict("R_critic", -0.05, -0.09, -0.01, 300).startswith("**does not hold**")

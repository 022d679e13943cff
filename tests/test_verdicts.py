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


def test_record_verdicts_read_a_committed_bench_record(monkeypatch):
    from cozlib.experiments import verdicts
    rec = {"views_per_zoom": 1600, "device": "cpu (2 cores)", "code_commit": "abc1234",
           "paired": {"vlm - vlm-single": {"rows": [["4x", 0.05, 0.03, -0.02, -0.03, -0.01, 1500]]}}}
    monkeypatch.setattr(verdicts, "bench_record", lambda name: rec if name == "hallucination_cpu" else None)
    text = verdicts.record_verdicts("hallucination_cpu", "vlm", "vlm-single", "the coarser view lowers hallucination")
    assert "bench/results/hallucination_cpu.json" in text and "1600 fresh test views" in text and "commit abc1234)" in text
    assert "- **holds** (the coarser view lowers hallucination at 4x): vlm 0.030 vs vlm-single 0.050" in text
    assert verdicts.record_verdicts("hallucination_cpu", "vlm-grpo", "vlm", "x") == ""   # a pair it lacks
    assert verdicts.record_verdicts("hallucination_cpu", "vlm", "vlm-single", "x", metric="critic") == ""   # no R_critic in it
    rec["paired"]["vlm - vlm-single"]["critic"] = [["4x", 0.80, 0.84, 0.04, 0.02, 0.06, 1600]]
    text = verdicts.record_verdicts("hallucination_cpu", "vlm", "vlm-single", "R_critic rises", lower=False, metric="critic")
    assert "- **holds** (R_critic rises at 4x): vlm 0.840 vs vlm-single 0.800" in text
    assert verdicts.record_verdicts("other", "vlm", "vlm-single", "x") == ""              # no record


def test_paired_table_gives_each_magnification_its_interval_and_status():
    from cozlib.experiments.verdicts import paired_table
    rows = [{"image": f"s{i}", "method": m, "metric": "texture", "magnification": x, "value": v + 0.01 * i}
            for i in range(8) for x in (16, 64) for m, v in (("CoZ", 0.5), ("Direct SR", 0.7 if x == 64 else 0.5))]
    header, table = paired_table(rows, "texture", "CoZ", "Direct SR", [16, 64])
    assert header[0] == "zoom" and header[-1] == "status"
    by = {r[0]: r for r in table}
    assert by["64x"][-1] == HOLDS and by["64x"][-2] == 8 and abs(by["64x"][3] + 0.2) < 1e-9
    assert by["16x"][-1] == UNSETTLED                              # equal on every scene: zero difference
    few = paired_table([r for r in rows if r["image"] in ("s0", "s1")], "texture", "CoZ", "Direct SR", [64])[1]
    assert few[0][-1] == TOO_FEW                                  # two images cannot settle anything


def test_a_verdict_is_written_under_its_table(tmp_path):
    from cozlib.figures import save_table
    save_table(["zoom", "x"], [["4x", 1.0]], "t", tmp_path, {}, "nb", note="a note", verdict="- **holds** (claim)")
    md = (tmp_path / "t.md").read_text()
    assert md.index("a note") < md.index("- **holds** (claim)")
    assert "holds" not in (tmp_path / "t.csv").read_text()


def test_chain_verdicts_follow_the_claimed_direction():
    from cozlib.experiments.verdicts import chain_verdicts
    rows = [{"image": f"s{i}", "method": m, "metric": "musiq", "magnification": 64, "value": v + 0.01 * i}
            for i in range(8) for m, v in (("CoZ", 60.0), ("Direct SR", 50.0))]
    claim = [("CoZ", "Direct SR", "the chain better")]
    assert chain_verdicts(rows, claim, [64], "musiq", lower=False).startswith("- **holds**")     # higher is better
    assert chain_verdicts(rows, claim, [64], "musiq", lower=True).startswith("- **does not hold**")

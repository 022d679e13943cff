"""Verdicts: a result turned into one sentence that says whether a claim held, with its numbers.

Notebooks print these as Markdown after each result (never a number typed by hand), and
``paper_map`` reads the same statuses. A claim is a direction: "a is lower than b" (``lower=True``)
or higher. The status comes from the 95% interval of the paired difference a - b
(``stats.paired_difference``):

* holds: the interval lies entirely on the claimed side of zero;
* does not hold: it lies entirely on the other side;
* not settled: it contains zero (the sample cannot tell the two apart);
* too few samples to say: fewer than ``min_n`` pairs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

HOLDS, FAILS, UNSETTLED, TOO_FEW = "holds", "does not hold", "not settled", "too few samples to say"


@dataclass(frozen=True)
class Paired:
    """A paired comparison of a and b over n samples: the means, a - b with its 95% interval, and on
    how many samples a is ahead in the claimed direction."""

    a: str
    b: str
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    n: int
    ahead: int | None = None


def rise_status(low: float, high: float, steps: int, min_n: int = 20) -> str:
    """The status of "it rises" from the 95% interval of a change over a run (``stats.reward_trend``)."""
    return status(-high, -low, steps, lower=True, min_n=min_n)


def status(diff_low: float, diff_high: float, n: int, lower: bool = True, min_n: int = 5) -> str:
    """The verdict's status from the interval of a - b (claim: a lower than b, or higher)."""
    if n < min_n or math.isnan(diff_low) or math.isnan(diff_high):
        return TOO_FEW
    good, bad = (diff_high < 0, diff_low > 0) if lower else (diff_low > 0, diff_high < 0)
    return HOLDS if good else FAILS if bad else UNSETTLED


def paired_verdict(p: Paired, claim: str, lower: bool = True, unit: str = "", min_n: int = 5) -> str:
    """"**holds** (claim): a 0.51 vs b 0.61, a ahead on 16 of 18, a - b -0.10 (95% -0.17 .. -0.03)"."""
    st = status(p.low, p.high, p.n, lower, min_n)
    ahead = f", {p.a} ahead on {p.ahead} of {p.n}" if p.ahead is not None else f", {p.n} samples"
    return (f"**{st}** ({claim}): {p.a} {p.mean_a:.3f}{unit} vs {p.b} {p.mean_b:.3f}{unit}{ahead}; "
            f"{p.a} - {p.b} {p.diff:+.3f} (95% {p.low:+.3f} .. {p.high:+.3f}).")


def trend_verdict(name: str, change: float, low: float, high: float, steps: int, min_n: int = 20) -> str:
    """Does a reward rise over a run: its least-squares change with a 95% interval
    (``stats.reward_trend``)."""
    st = rise_status(low, high, steps, min_n)
    return (f"**{st}** ({name} rises over the run): change {change:+.3f} (95% {low:+.3f} .. {high:+.3f}) "
            f"over {steps} steps.")


def paired(values_a: dict, values_b: dict, a: str, b: str, lower: bool = True) -> Paired:
    """A ``Paired`` from per-sample values ({sample: value}) of a and b, over the samples both have."""
    import numpy as np
    from .stats import paired_difference
    keys = sorted(k for k in values_a if k in values_b and not (math.isnan(values_a[k]) or math.isnan(values_b[k])))
    va, vb = [values_a[k] for k in keys], [values_b[k] for k in keys]
    if not keys:
        return Paired(a, b, math.nan, math.nan, math.nan, math.nan, math.nan, 0, 0)
    d, lo, hi, n = paired_difference(va, vb)
    ahead = sum((x < y) if lower else (x > y) for x, y in zip(va, vb))
    return Paired(a, b, float(np.mean(va)), float(np.mean(vb)), d, lo, hi, n, ahead)


def chain_verdicts(rows, comparisons, mags, metric: str = "texture", lower: bool = True) -> str:
    """Markdown bullets, one per (label a, label b, claim) of ``comparisons`` and magnification: the
    paired verdict of ``metric`` over the scenes of ``rows`` (``score_truth`` / ``score_chains`` rows)."""
    from .tables import per_scene_values
    lines = []
    for a, b, claim in comparisons:
        for x in mags:
            p = paired(per_scene_values(rows, metric, a, x), per_scene_values(rows, metric, b, x), a, b, lower)
            lines.append("- " + paired_verdict(p, f"{claim} at {x}x, {metric}", lower))
    return "\n".join(lines)


def paired_table(rows, metric: str, a: str, b: str, mags, lower: bool = True) -> tuple[list[str], list[list]]:
    """Per magnification, ``metric`` of methods a and b paired over the images of ``rows`` (``score_truth`` /
    ``score_chains`` rows): their means, a - b with its 95% interval, the images and the status; for
    ``figures.save_table`` and ``paper_map`` (a claim read on means alone would hide how few images there are)."""
    from .tables import per_scene_values
    out = []
    for x in mags:
        p = paired(per_scene_values(rows, metric, a, x), per_scene_values(rows, metric, b, x), a, b, lower)
        out.append([f"{x}x", p.mean_a, p.mean_b, p.diff, p.low, p.high, p.n, status(p.low, p.high, p.n, lower)])
    return ["zoom", a, b, f"{metric}: a - b", "95% low", "95% high", "images", "status"], out


def table_verdicts(table, claim: str, a: str, b: str, lower: bool = True) -> str:
    """Markdown bullets from a ``tables.paired_extractors`` table (zoom, b's mean, a's mean, a - b, 95%
    low, 95% high, views): one paired verdict per zoom."""
    return "\n".join("- " + paired_verdict(Paired(a, b, mean_a, mean_b, d, lo, hi, n), f"{claim} at {zoom}", lower)
                     for zoom, mean_b, mean_a, d, lo, hi, n in table)


def bench_record(name: str) -> dict | None:
    """A committed bench record, ``bench/results/<name>.json`` (None when absent: a fresh clone has it)."""
    import json
    from ..paths import resolve
    path = resolve("bench/results") / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _short(commit: str) -> str:
    """A record's commit as people write it: 7 hex digits, and +dirty when the tree had changes."""
    return commit[:7] + ("+dirty" if commit.endswith("+dirty") else "")


def record_verdicts(name: str, a: str, b: str, claim: str, lower: bool = True, metric: str = "hallucination") -> str:
    """Markdown: the paired verdicts of extractor ``a`` against ``b`` per zoom from the committed
    ``bench/hallucination.py`` record ``name`` (``metric``: hallucination, or critic, R_critic where the
    record has it), saying where they come from; a notebook shows these beside its own smaller sample.
    Empty when the record, the pair or the metric is absent."""
    rec = bench_record(name)
    pair = (rec or {}).get("paired", {}).get(f"{a} - {b}")
    rows = (pair or {}).get("rows" if metric == "hallucination" else metric)
    if rows is None:
        return ""
    head = (f"From the committed bench record `bench/results/{name}.json` ({rec['views_per_zoom']} fresh test views "
            f"per zoom, paired; {rec['device']}, commit {_short(rec['code_commit'])}), where this notebook's sample is too small:")
    return head + "\n" + table_verdicts(rows, claim, a, b, lower)

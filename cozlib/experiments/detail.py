"""Figures 2 and 3 measured on ZoomWorld (docs/PAPER.md §1, §7): what a step adds.

* Figure 2: a 4x model pushed to 16x (64x) in one step against the 2-step (3-step) chain of the same
  model, each state's texture distance to the exact truth, paired over scenes.
* Figure 3: a plain Markov chain p(x_i | x_{i-1}) (the null prompt: the model sees x_{i-1} only) loses
  high-frequency detail as the steps grow; the AR-2 chain with prompts c_i(x_{i-1}, x_{i-2}) is
  measured beside it and beside the truth: the detail energy of each state (``world.energy.band_energy``,
  the finest bands' mean square) and its texture distance to the truth.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from ..chain import ChainCache, ChainResult
from .methods import truth_states
from .scoring import _score_rows
from .stats import paired_difference
from .tables import per_scene_values

#: Method label of the truth's rows in ``energy_rows``.
TRUTH = "truth"


def energy_rows(results: Mapping[tuple[str, str], ChainResult], cache: ChainCache | None,
                progress: bool = False) -> list[dict]:
    """Rows {image, method, k, magnification, metric: "energy", value} of every state k >= 1, and the
    same for the truth of each image (method ``TRUTH``, once per image); cached beside each chain."""
    from ..world.energy import band_energy
    rows = _score_rows(results, cache, {"energy": "band_energy"},
                       lambda res, key: [band_energy(s) for s in res.states], "energy", progress)
    truth: dict[str, ChainResult] = {}   # one chain per image gives the truth's windows (all share them)
    for (name, _), res in results.items():
        truth.setdefault(name, res)
    truth_rows = _score_rows({(name, TRUTH): res for name, res in truth.items()}, cache, {"energy": "truth_energy"},
                             lambda res, key: [band_energy(s) for s in truth_states(res)], "truth energy", progress)
    return rows + truth_rows


def detail_table(energy: Sequence[dict], truth_rows: Sequence[dict], markov: str, ar2: str,
                 magnifications: Sequence[int]) -> tuple[list[str], list[list]]:
    """Figure 3's numbers per magnification: mean detail energy (x1e3) of the Markov chain, the AR-2
    chain and the truth, each chain's energy as a share of the truth's, and its texture distance."""
    def mean(rows, method, metric, x):
        v = [r["value"] for r in rows if r["method"] == method and r["metric"] == metric and r["magnification"] == x
             and not math.isnan(r["value"])]
        return sum(v) / len(v) if v else math.nan

    header = ["zoom", "energy Markov x1e3", "energy AR-2 x1e3", "energy truth x1e3", "Markov / truth",
              "AR-2 / truth", "texture Markov", "texture AR-2"]
    out = []
    for x in magnifications:
        em, ea, et = (mean(energy, m, "energy", x) for m in (markov, ar2, TRUTH))
        out.append([f"{x}x", em * 1e3, ea * 1e3, et * 1e3, em / et, ea / et,
                    mean(truth_rows, markov, "texture", x), mean(truth_rows, ar2, "texture", x)])
    return header, out


def energy_verdict(table: Sequence[Sequence], scenes: int) -> str:
    """Figure 3's claim read off a ``detail_table``: does the Markov chain's detail energy, as a share of
    the truth's, fall from the first magnification to the last? (Means over scenes, no interval.)"""
    first, last = table[0], table[-1]
    holds = last[4] < first[4]
    return (f"- **{'holds' if holds else 'does not hold'}** (the Markov chain loses detail as the steps grow): its "
            f"detail energy as a share of the truth's goes {first[4]:.2f} at {first[0]} -> {last[4]:.2f} at {last[0]} "
            f"(AR-2: {first[5]:.2f} -> {last[5]:.2f}); means over {scenes} scenes, no interval.")


def onestep_table(truth_rows: Sequence[dict], direct: str, chain: str, magnifications: Sequence[int],
                  metric: str = "texture") -> tuple[list[str], list[list]]:
    """Figure 2's numbers: per magnification, the mean ``metric`` against the truth of one-step direct
    SR and of the chain, and chain - direct over the same scenes with a 95% bootstrap interval
    (below zero: the chain is closer to the truth)."""
    header = ["zoom", f"{metric} one step", f"{metric} chain", "chain - one step", "95% low", "95% high", "scenes"]
    out = []
    for x in magnifications:
        a, b = per_scene_values(truth_rows, metric, chain, x), per_scene_values(truth_rows, metric, direct, x)
        scenes = sorted(set(a) & set(b))
        d, lo, hi, n = paired_difference([a[s] for s in scenes], [b[s] for s in scenes])
        mean = lambda v: sum(v) / len(v) if v else math.nan  # noqa: E731
        out.append([f"{x}x", mean([b[s] for s in scenes]), mean([a[s] for s in scenes]), d, lo, hi, n])
    return header, out

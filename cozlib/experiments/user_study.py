"""An automated proxy of the paper's user study (docs/PAPER.md §6) on ZoomWorld. It is not a MOS: no
person rated anything. The paper's raters compared three prompt sources (single-image VLM,
multi-scale VLM, GRPO-tuned VLM) in two panels, probably (a) image quality and (b) text quality.
Here two automatic judges rate the same three sources on the chains' own states and prompts:

* panel (a), images: the truth's judgement is the texture distance of each state to the exact truth
  (lower is better); the critic's is its score (0-100) of the *true* words for the chain's state,
  seen after x_{k-1} (how recognisably the state shows what is really there);
* panel (b), prompts: the truth's judgement is 100 x F1 of the prompt c_k against the true words;
  the critic's is its score of c_k for (x_{k-1}, zoomed input), as in GRPO.

Per panel and judge: the mean, and the share of (scene, step) cases where the source is rated best.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from ..chain import ChainResult

#: The user study's prompt sources -> the chains of ``experiments.world_methods`` that use them.
SOURCES = {"single-image VLM": "CoZ VLM single (OSEDiff)", "multi-scale VLM": "CoZ VLM (OSEDiff)",
           "GRPO-tuned VLM": "CoZ VLM GRPO (OSEDiff)"}
#: The paper's MOS (1-5) per panel, in SOURCES' order.
PAPER_MOS = {"(a)": (2.96, 3.56, 3.86), "(b)": (2.30, 2.70, 4.24)}


def judge_rows(results: Mapping[tuple[str, str], ChainResult], critic, truth_rows: Sequence[dict],
               sources: Mapping[str, str] = SOURCES) -> list[dict]:
    """Rows {image, source, k, panel, judge, value} for every state k >= 1 of the sources' chains."""
    from .. import geometry, world
    from ..grpo.critic import truth_score
    texture = {(r["image"], r["method"], r["k"]): r["value"] for r in truth_rows if r["metric"] == "texture"}
    cases, pairs_a, words_a, pairs_b, prompts_b = [], [], [], [], []
    for (name, label), res in results.items():
        source = next((s for s, m in sources.items() if m == label), None)
        if source is None or "world_seed" not in res.source:
            continue
        size = res.states[0].size[0]
        for k in range(1, len(res.states)):
            truth = world.window_words(res.source["world_seed"], world.in_world(res.windows[k], res.source), size)
            _, zoomed = geometry.zoom_input(res.states[k - 1], res.config.upscale)
            cases.append((name, source, k, res.prompts[k - 1], truth, texture.get((name, label, k), math.nan)))
            pairs_a.append([res.states[k - 1], res.states[k]])
            words_a.append(", ".join(sorted(truth, key=truth.get, reverse=True)))
            pairs_b.append([res.states[k - 1], zoomed])
            prompts_b.append(res.prompts[k - 1])
    crit_a, crit_b = critic.scores(pairs_a, words_a), critic.scores(pairs_b, prompts_b)
    rows = []
    for (name, source, k, prompt, truth, tex), ca, cb in zip(cases, crit_a, crit_b):
        base = {"image": name, "source": source, "k": k}
        rows += [{**base, "panel": "(a)", "judge": "truth", "value": tex},
                 {**base, "panel": "(a)", "judge": "critic", "value": math.nan if ca is None else ca},
                 {**base, "panel": "(b)", "judge": "truth", "value": truth_score(prompt, truth)},
                 {**base, "panel": "(b)", "judge": "critic", "value": math.nan if cb is None else cb}]
    return rows


def lower_is_better(panel: str, judge: str) -> bool:
    return panel == "(a)" and judge == "truth"   # texture distance; every other judgement is a score


def proxy_table(rows: Sequence[dict], sources: Sequence[str] = tuple(SOURCES)) -> tuple[list[str], list[list]]:
    """Per panel and source: the paper's MOS beside each judge's mean and share of first places (a
    first place shared by k sources counts 1/k to each)."""
    header = ["panel", "prompt source", "paper MOS (1-5)", "critic mean", "critic best share", "truth mean",
              "truth best share"]
    out = []
    for panel in PAPER_MOS:
        stats = {}
        for judge in ("critic", "truth"):
            by_case: dict[tuple, dict[str, float]] = {}
            for r in rows:
                if r["panel"] == panel and r["judge"] == judge and not math.isnan(r["value"]):
                    by_case.setdefault((r["image"], r["k"]), {})[r["source"]] = r["value"]
            full = [c for c in by_case.values() if len(c) == len(sources)]
            pick = min if lower_is_better(panel, judge) else max
            firsts = [[s for s in c if c[s] == pick(c.values())] for c in full]
            for s in sources:
                vals = [c[s] for c in full]
                share = sum(1 / len(f) for f in firsts if s in f)
                stats[(judge, s)] = (sum(vals) / len(vals) if vals else None, share / len(full) if full else None)
        for i, s in enumerate(sources):
            out.append([panel, s, PAPER_MOS[panel][i], *stats[("critic", s)], *stats[("truth", s)]])
    return header, out


def same_order(values: Sequence[float], lower_is_better: bool = False) -> bool:
    """Do a judge's means (in SOURCES' order) prefer the sources as the paper's MOS does (single <
    multi-scale < GRPO-tuned)?"""
    v = [-x for x in values] if lower_is_better else list(values)
    return len(v) == 3 and not any(math.isnan(x) for x in v) and v[0] < v[1] < v[2]

"""``docs/PAPER_MAP.md``: the paper figure by figure (docs/PAPER.md §6-7). For each figure and table, what
it claims, the notebook and ``figures/`` files that regenerate it at demo scale, how to run it at paper
scale, and a verdict computed here from those files (holds / does not hold / not settled / mixed / regenerated for a
figure that claims nothing measurable / not run when a file is missing), with its numbers.

Written by ``python -m cozlib.results`` (part of ``make figures``); the book shows it as its first page.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .experiments.verdicts import FAILS, HOLDS, rise_status, status as interval_status

MIXED, SHOWN, NOT_RUN = "mixed", "regenerated", "not run"
#: The trend tables do not record a run's length; any committed run has far more steps than a trend needs.
RUN_STEPS = 10 ** 6


def _combined(statuses: list[str]) -> str:
    """One status for several claims (or zooms): theirs when they agree, else mixed."""
    return statuses[0] if statuses and len(set(statuses)) == 1 else MIXED


@dataclass(frozen=True)
class Verdict:
    status: str
    numbers: str


class _Missing(Exception):
    pass


def _table(figures: Path, name: str) -> list[dict[str, str]]:
    p = figures / f"{name}.csv"
    if not p.is_file():
        raise _Missing(f"`{name}.csv` missing: run make figures")
    with open(p, newline="") as f:
        return list(csv.DictReader(f))


def _num(v: str | None) -> float:
    try:
        return float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _row(rows: list[dict], key: str, value: str) -> dict[str, str]:
    for r in rows:
        if r.get(key) == value:
            return r
    raise _Missing(f"no row {value!r}")


def _last_zoom(row: dict, metric: str) -> str:
    zooms = [c.split(" ", 1)[1] for c in row if c.startswith(metric + " ")]
    return zooms[-1]


def _better(a: float, b: float, lower: bool = True) -> bool:
    return a < b if lower else a > b


# -- one function per entry: figures dir -> Verdict -------------------------------------------------

def _fig1(f: Path) -> Verdict:
    last = _table(f, "figure3_detail")[-1]   # the same chains (AR-2 with the GRPO-tuned VLM's prompts)
    return Verdict(SHOWN, f"a teaser, no claim to test; its ZoomWorld chains are {_num(last['texture AR-2']):.3f} "
                          f"texture distance from the truth at {last['zoom']}")


def _fig2(f: Path) -> Verdict:
    rows = _table(f, "figure2_onestep_vs_chain")
    st = [interval_status(_num(r["95% low"]), _num(r["95% high"]), int(_num(r["scenes"]))) for r in rows]
    nums = "; ".join(f"{r['zoom']}: chain - one step {_num(r['chain - one step']):+.3f} "
                     f"[{_num(r['95% low']):+.3f}, {_num(r['95% high']):+.3f}] over {r['scenes']} scenes" for r in rows)
    return Verdict(_combined(st), "texture distance to the truth, " + nums)


def _fig3(f: Path) -> Verdict:
    rows = _table(f, "figure3_detail")
    first, last = rows[0], rows[-1]
    m0, m1 = _num(first["Markov / truth"]), _num(last["Markov / truth"])
    a1 = _num(last["AR-2 / truth"])
    status = HOLDS if m1 < m0 else FAILS
    return Verdict(status, f"Markov chain's detail energy / truth's: {m0:.2f} at {first['zoom']} -> {m1:.2f} at "
                           f"{last['zoom']} (AR-2 with prompts: {a1:.2f}; texture distance Markov "
                           f"{_num(last['texture Markov']):.3f}, AR-2 {_num(last['texture AR-2']):.3f})")


def _fig4(f: Path) -> Verdict:
    rows = _table(f, "figure4_grpo_group")
    totals = [_num(r["R"]) for r in rows]
    return Verdict(SHOWN, f"a diagram of the trainer's own objects with one real group of {len(rows)} "
                          f"completions, R from {min(totals):.3f} to {max(totals):.3f}")


def _paired_verdict(f: Path, name: str, what: str) -> Verdict:
    """A claim read off a ``verdicts.paired_table`` file (columns: [label,] zoom, a, b, a - b, 95% low, 95% high,
    samples, status): each row's status, combined."""
    rows = _table(f, name)
    cols = list(rows[0])
    z = cols.index("zoom")
    diff, n = cols[z + 3], cols[z + 6]
    nums = "; ".join(" ".join(r[c] for c in cols[:z + 1]) + f" {_num(r[diff]):+.3f} [{_num(r['95% low']):+.3f}, "
                     f"{_num(r['95% high']):+.3f}] over {r[n]} {n}" for r in rows)
    return Verdict(_combined([r["status"] for r in rows]), f"{what}: " + nums)


def _fig5(f: Path) -> Verdict:
    return _paired_verdict(f, "table1_photos_paired", "photos, CoZ - direct SR per image (lower is better)")


def _trend(rows: list[dict], name: str) -> tuple[float, float, float]:
    r = _row(rows, "reward", name)
    return _num(r["change over the run"]), _num(r["95% low"]), _num(r["95% high"])


def _fig6(f: Path) -> Verdict:
    rows = _table(f, "grpo_reward_trends")
    ch = {n: _trend(rows, n) for n in ("critic", "phrase", "repetition", "total")}
    st = [rise_status(lo, hi, RUN_STEPS) for _, lo, hi in ch.values()]
    return Verdict(_combined(st), "change over the committed run [95%]: " + "; ".join(
        f"{n} {c:+.3f} [{lo:+.3f}, {hi:+.3f}]" for n, (c, lo, hi) in ch.items()))


def _fig7(f: Path) -> Verdict:
    rows = _table(f, "figure7_critics")
    parts, rising = [], []
    for r in rows:
        c, lo, hi = _num(r["critic reward change"]), _num(r["95% low"]), _num(r["95% high"])
        rising.append(rise_status(lo, hi, RUN_STEPS))
        parts.append(f"{r['critic']}: critic reward {c:+.3f} [{lo:+.3f}, {hi:+.3f}], val F1 "
                     f"{_num(r['val F1 before']):.3f} -> {_num(r['val F1 after']):.3f}")
    return Verdict(_combined(rising), "; ".join(parts))


def _fig8(f: Path) -> Verdict:
    """Multi-scale against single-image, then GRPO against multi-scale (the claim's two halves), from the
    committed bench record of 1600 paired views per zoom when there is one, else the notebook's table."""
    from .experiments.verdicts import bench_record
    rec = bench_record("hallucination_cpu")
    paired = (rec or {}).get("paired", {})
    if "vlm - vlm-single" in paired:
        halves = {k: [(z, d, lo, hi, n) for z, _, _, d, lo, hi, n in paired[k]["rows"]]
                  for k in ("vlm - vlm-single", "vlm-grpo - vlm") if k in paired}
        where = f"bench/results/hallucination_cpu.json, {rec['views_per_zoom']} views per zoom"
    else:
        halves = {"vlm - vlm-single": [(r["zoom"], _num(r["vlm - vlm-single"]), _num(r["95% low"]), _num(r["95% high"]),
                                        int(_num(r["views"]))) for r in _table(f, "prompt_hallucination_paired")]}
        where = "notebook 02's sample"
    st = [interval_status(lo, hi, n) for rows in halves.values() for _, _, lo, hi, n in rows]
    nums = "; ".join(f"{k}: " + ", ".join(f"{z} {d:+.3f} [{lo:+.3f}, {hi:+.3f}]" for z, d, lo, hi, _ in rows)
                     for k, rows in halves.items())
    return Verdict(_combined(st), f"hallucination differences (below zero: the first hallucinates less; {where}): " + nums)


def _table1(f: Path) -> Verdict:
    rows = _table(f, "table1_prompts_zoomworld")
    t = {r["method"]: r for r in rows}
    z = _last_zoom(rows[0], "TEXTURE")
    tex = lambda m: _num(t[m][f"TEXTURE {z}"]) if m in t else math.nan  # noqa: E731
    claims = {"CoZ (VLM) beats direct SR": tex("CoZ VLM (OSEDiff)") < tex("Direct SR (OSEDiff)"),
              "VLM beats null": tex("CoZ VLM (OSEDiff)") < tex("CoZ null (OSEDiff)"),
              "VLM beats DAPE": tex("CoZ VLM (OSEDiff)") < tex("CoZ DAPE (OSEDiff)")}
    n = sum(claims.values())
    status = HOLDS if n == len(claims) else FAILS if n == 0 else MIXED
    return Verdict(status, f"ZoomWorld, texture distance at {z}: " + ", ".join(
        f"{m.replace(' (OSEDiff)', '')} {tex(m):.3f}" for m in ("Direct SR (OSEDiff)", "CoZ null (OSEDiff)",
                                                                 "CoZ DAPE (OSEDiff)", "CoZ VLM (OSEDiff)")) + "; "
                   + ", ".join(f"{c}: {'yes' if v else 'no'}" for c, v in claims.items()))


def _table2(f: Path) -> Verdict:
    v = _paired_verdict(f, "table2_paired", "CoZ - direct SR around each backbone, texture distance per scene")
    return Verdict(v.status, v.numbers + "; the paper's rows (LIIF, SeeSR, S3Diff) need weights not available here")


def _backbone(f: Path) -> Verdict:
    return _paired_verdict(f, "table1_zoomworld_paired", "Table 1 with Real-ESRGAN in place of OSEDiff on ZoomWorld, "
                                                         "CoZ - direct SR texture distance per scene")


def _overlap(f: Path) -> Verdict:
    rows = _table(f, "overlap_consistency")
    first, last = rows[0], rows[-1]
    s0, s1 = _num(first["seam ratio"]), _num(last["seam ratio"])
    dis = [f"{r['overlap px']} px: {_num(r['disagreement (0-255)']):.1f}" for r in rows
           if not math.isnan(_num(r["disagreement (0-255)"]))]
    return Verdict(HOLDS if s1 < s0 else FAILS, f"seam ratio (1 = no seam) {s0:.2f} without overlap, {s1:.2f} with "
                                                f"{last['overlap px']} px; tiles' disagreement where they overlap: "
                   + ", ".join(dis))


def _runtime(f: Path) -> Verdict:
    rows = _table(f, "runtime_step")
    share_cols = [c for c in rows[0] if c.endswith(" share")]
    vlm = _row(rows, "part", "VLM prompt (generate)")
    shares = {c[:-6]: _num(vlm[c]) for c in share_cols}
    ok = [v > 0.5 for v in shares.values() if not math.isnan(v)]
    return Verdict(HOLDS if ok and all(ok) else MIXED if any(ok) else FAILS, "the VLM's share of a step: " + ", ".join(
        f"{k} {v:.0%}" for k, v in shares.items() if not math.isnan(v)))


def _user_study(f: Path) -> Verdict:
    from .experiments.user_study import lower_is_better, same_order
    rows = _table(f, "user_study_proxy")
    out, matches = [], 0
    for panel in ("(a)", "(b)"):
        p = [r for r in rows if r["panel"] == panel]
        for judge in ("critic", "truth"):
            vals = [_num(r[f"{judge} mean"]) for r in p]
            ok = same_order(vals, lower_is_better(panel, judge))
            matches += ok
            out.append(f"{panel} {judge}: " + " / ".join(f"{v:.3g}" for v in vals) + (" (the paper's order)" if ok else ""))
    status = HOLDS if matches == 4 else FAILS if matches == 0 else MIXED
    return Verdict(status, "a proxy, not a MOS (paper MOS 2.96 / 3.56 / 3.86 and 2.30 / 2.70 / 4.24); single / "
                           "multi-scale / GRPO: " + "; ".join(out))


@dataclass(frozen=True)
class Entry:
    """One figure or table of the paper: its claim, the notebook and ``figures/`` files that regenerate
    it at demo scale, how it runs at paper scale, and the function computing its verdict."""

    item: str
    claim: str
    notebook: str
    files: tuple[str, ...]
    paper_scale: str
    judge: Callable[[Path], Verdict]


PAPER = "notebook {} with params/paper.yaml"
ENTRIES: tuple[Entry, ...] = (
    Entry("Figure 1", "photos zoomed to 64x and 256x stay sharp, drawn as zoom chains of boxes and lines",
          "07_paper_figures", ("figure1_photo.png", "figure1_zoomworld.png", "figure3_detail.csv"),
          PAPER.format("07"), _fig1),
    Entry("Figure 2", "a 4x model pushed to 16x in one step blurs; the chain with prompts does not",
          "07_paper_figures", ("figure2_onestep_vs_chain.png", "figure2_onestep_vs_chain.csv"), PAPER.format("07"), _fig2),
    Entry("Figure 3", "a plain Markov chain loses high-frequency detail as the steps grow",
          "07_paper_figures", ("figure3_detail.png", "figure3_detail.csv"), PAPER.format("07"), _fig3),
    Entry("Figure 4", "GRPO: two images and the message into the VLM, three rewards, a frozen critic",
          "03_grpo_reward_design", ("figure4_grpo_pipeline.png", "figure4_grpo_group.csv"),
          PAPER.format("03") + " (Qwen2.5-VL-3B policy, 7B critic)", _fig4),
    Entry("Figure 5", "CoZ stays sharp at 64x-256x where nearest and direct SR do not",
          "01_ar2_scale_states", ("fig5_photos_chelsea.png", "table1_photos_paired.csv"), PAPER.format("01"), _fig5),
    Entry("Figure 6", "every GRPO reward rises during training",
          "03_grpo_reward_design", ("figure6_grpo_rewards.png", "grpo_reward_trends.csv"),
          "not measurable here: needs a paper-scale GRPO run (about 10K steps on four GPUs)", _fig6),
    Entry("Figure 7", "GRPO works with another critic (Qwen2.5-VL-7B) too",
          "03_grpo_reward_design", ("figure7_grpo_critics.png", "figure7_critics.csv"),
          "not measurable here: needs two paper-scale GRPO runs, one per critic", _fig7),
    Entry("Figure 8", "a single-image VLM hallucinates; multi-scale prompts hallucinate less; GRPO fixes the rest",
          "02_prompt_extraction", ("figure8_zoomworld.png", "prompt_hallucination_paired.csv"),
          PAPER.format("02") + " (also figure8_photo.png)", _fig8),
    Entry("Table 1", "CoZ beats direct SR at 64x-256x; VLM prompts beat null and DAPE prompts",
          "02_prompt_extraction", ("table1_prompts_zoomworld.csv", "table1_photos.csv"),
          PAPER.format("01") + " (DIV2K / DIV8K folders) and 02", _table1),
    Entry("Table 2", "CoZ also lifts other backbones (LIIF, SeeSR, S3Diff)",
          "07_paper_figures", ("table2_backbones.csv", "table2_paired.csv"), PAPER.format("07") + " (OSEDiff-SD3 rows)", _table2),
    Entry("Appendix: Table 1, another backbone", "the ordering holds with another OSEDiff backbone (SD2.1)",
          "05_zoomworld_ground_truth", ("table1_zoomworld.csv", "table1_zoomworld_paired.csv"), PAPER.format("05") + " (Real-ESRGAN)", _backbone),
    Entry("Appendix: the second critic's results", "the results hold with the Qwen critic",
          "03_grpo_reward_design", ("figure7_critics.csv",), "not measurable here (as Figure 7)", _fig7),
    Entry("Appendix: overlap consistency", "full-image tiling is consistent where tiles overlap",
          "07_paper_figures", ("overlap_consistency.csv",), PAPER.format("07"), _overlap),
    Entry("Appendix: runtime", "the VLM's time dominates a step",
          "07_paper_figures", ("runtime_step.csv",), "notebook 07 with params/paper.yaml times the real models; "
          "until then its GPU column is the record bench/results/h200-step_parts-paper-config.csv", _runtime),
    Entry("User study", "raters prefer GRPO-tuned > multi-scale > single-image prompts (MOS, two panels)",
          "07_paper_figures", ("user_study_proxy.csv",), "not measurable here: needs human raters (the table is an "
          "automatic proxy)", _user_study),
)


def verdict(fn: Callable[[Path], Verdict], figures: Path) -> Verdict:
    """An entry's verdict, or why it could not be computed (a missing or incomplete table)."""
    try:
        return fn(figures)
    except (_Missing, KeyError, IndexError, StopIteration) as e:
        return Verdict(NOT_RUN, str(e))


def entry_markdown(item: str, figures: Path) -> str:
    """One entry's verdict as a Markdown line, for the notebook that regenerates it ("**holds** (claim): numbers")."""
    e = next(e for e in ENTRIES if e.item == item)
    v = verdict(e.judge, figures)
    return f"{e.item}, the paper's claim: {e.claim}. **{v.status}**: {v.numbers}."


def paper_map_markdown(figures: Path) -> str:
    lines = ["# The paper, figure by figure", "",
             "Generated by `make figures` (`python -m cozlib.results`) from the files in `figures/`; do not edit by "
             "hand. Each verdict is computed from the named files at demo scale (ZoomWorld's exact truth, the demo "
             "models, a 2-core CPU unless the file's record says otherwise). Where a claim has a 95% interval "
             "(`experiments.verdicts`): *holds* / *does not hold* when the interval lies on one side of zero, *not "
             "settled* when it contains zero. *regenerated* marks a figure that makes "
             "no measurable claim. The demo models are one training each (the committed weights): how the words "
             "steer the demo SR model's chains differs between trainings of its recipe, even in sign; of sixteen "
             "trainings (six whole, ten of the SR stages alone on the committed earlier stages), three put the "
             "right words well ahead of the wrong ones, all on the committed earlier stages, and no part of a "
             "draw (the LoRA's start, the batches) carries that alone "
             "(docs/lab/2026-12-03-sr-recipe-draws.md, docs/lab/2026-12-04-sr-seed3-val-selection.md, "
             "docs/lab/2026-12-04-sr-prompt-dropout.md, docs/lab/2026-12-04-sr-stage-seed.md, "
             "docs/lab/2026-12-05-sr-lora-start.md); in seven of the others, measured band by band, the chains "
             "are too smooth from 16x on and the wrong words, never seen "
             "in training, add fine-band energy, which the texture distance rewards "
             "(docs/lab/2026-12-05-sr-chain-energy.md). The paper's own numeric table cells are not known here: "
             "tables keep their layout with those cells empty (docs/PAPER.md §6).", "",
             "| paper | claim | notebook | files (`figures/`) | paper scale | verdict |", "|---|---|---|---|---|---|"]
    for e in ENTRIES:
        v = verdict(e.judge, figures)
        lines.append(f"| {e.item} | {e.claim} | `{e.notebook}` | {', '.join(e.files)} | {e.paper_scale} | "
                     f"**{v.status}**: {v.numbers} |")
    return "\n".join(lines) + "\n"

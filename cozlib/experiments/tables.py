"""Tables from score rows ({image, method, k, magnification, metric, value}): Table 1's layout, means
per scale, win counts, the prompt orderings, hallucination tables; ``figures.save_table`` writes them.
"""
from __future__ import annotations

import math
from typing import Sequence

from .stats import paired_difference


def table1(rows: Sequence[dict], methods: Sequence[str], metrics: Sequence[str],
           magnifications: Sequence[int]) -> tuple[list[str], list[list]]:
    """Table 1's layout: one row per method, columns metric@magnification, mean over images."""
    header = ["method"] + [f"{m.upper()} {x}x" for m in metrics for x in magnifications]
    out = []
    for label in methods:
        row: list = [label]
        for metric in metrics:
            for x in magnifications:
                vals = [r["value"] for r in rows if r["method"] == label and r["metric"] == metric
                        and r["magnification"] == x and not math.isnan(r["value"])]
                row.append(sum(vals) / len(vals) if vals else None)
        out.append(row)
    return header, out


def per_scale_means(rows: Sequence[dict], metric: str) -> dict[str, dict[int, float]]:
    """{method: {magnification: mean}} for one metric (for line plots)."""
    acc: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        if r["metric"] == metric:
            acc.setdefault(r["method"], {}).setdefault(r["magnification"], []).append(r["value"])
    return {m: {x: sum(v) / len(v) for x, v in sorted(d.items())} for m, d in acc.items()}


def wins(rows: Sequence[dict], metric: str, a: str, b: str,
         lower_is_better: bool) -> dict[int, tuple[int, int, int]]:
    """Per magnification: (images where a beats b, ties, images compared) on one metric."""
    by = {(r["image"], r["method"], r["magnification"]): r["value"] for r in rows if r["metric"] == metric}
    out: dict[int, tuple[int, int, int]] = {}
    for (img, meth, x), va in by.items():
        if meth != a or (img, b, x) not in by:
            continue
        vb = by[(img, b, x)]
        better = va < vb if lower_is_better else va > vb
        won, tied, n = out.get(x, (0, 0, 0))
        out[x] = (won + int(better), tied + int(va == vb), n + 1)
    return dict(sorted(out.items()))


def per_scene_values(rows: Sequence[dict], metric: str, method: str, magnification: int) -> dict[str, float]:
    """{image: value} of one method's ``metric`` at one magnification (rows of ``score_truth`` and kin)."""
    return {r["image"]: r["value"] for r in rows
            if r["metric"] == metric and r["method"] == method and r["magnification"] == magnification}


def prompt_orderings(rows: Sequence[dict], magnifications: Sequence[int], backbone: str = "OSEDiff",
                     metric: str = "texture") -> tuple[list[str], list[list]]:
    """The SR issue's test of whether prompts matter: per magnification, the mean ``metric`` (lower is
    better) of CoZ with the oracle, null and wrong prompts, and how many scenes order them oracle < null
    and null < wrong. Returns (header, rows) for ``figures.save_table``."""
    out = []
    for x in magnifications:
        o, n, w = (per_scene_values(rows, metric, f"CoZ {p} ({backbone})", x) for p in ("oracle", "null", "wrong"))
        if not o:
            raise ValueError(f"no CoZ oracle ({backbone}) rows for {metric} at {x}x")
        out.append([f"{x}x", *(sum(d.values()) / len(d) for d in (o, n, w)),
                    f"{sum(o[s] < n[s] for s in o)}/{len(o)}", f"{sum(n[s] < w[s] for s in o)}/{len(o)}"])
    return ["zoom", "oracle", "null", "wrong", "oracle < null", "null < wrong"], out


def hallucination_table(rows: Sequence[dict], key: str, metrics: Sequence[str] = ("precision", "recall", "hallucination"),
                        ) -> tuple[list[str], list[list]]:
    """Rows from ``extractor_scores`` (key 'extractor', per 'zoom') or ``chain_prompt_scores``
    (key 'method', per 'magnification'): mean of each metric per source and scale (NaNs left out)."""
    if rows and "metric" in rows[0]:  # long format (chain rows) -> wide
        wide: dict[tuple, dict] = {}
        for r in rows:
            wide.setdefault((r["image"], r["method"], r["magnification"]), {"method": r["method"], "zoom": r["magnification"]})[r["metric"]] = r["value"]
        rows = list(wide.values())
    sources = list(dict.fromkeys(r[key] for r in rows))
    zooms = sorted({r["zoom"] for r in rows})
    header = [key] + [f"{m} {z:g}x" for m in metrics for z in zooms]
    out = []
    for src in sources:
        row: list = [src]
        for m in metrics:
            for z in zooms:
                vals = [r[m] for r in rows if r[key] == src and r["zoom"] == z and not math.isnan(r[m])]
                row.append(sum(vals) / len(vals) if vals else None)
        out.append(row)
    return header, out


def paired_extractors(rows: Sequence[dict], a: str = "vlm", b: str = "vlm-single",
                      metric: str = "hallucination") -> tuple[list[str], list[list]]:
    """Rows of ``extractor_scores`` (every extractor on the same views, in the same order): per zoom,
    ``metric`` of ``a`` and ``b`` and their per-view difference a - b with its 95% bootstrap interval,
    over the views where both are defined (the prompt-extraction issue's test: multi-scale against
    single-image). Returns (header, rows) for ``figures.save_table``."""
    per = {e: [r for r in rows if r["extractor"] == e] for e in (a, b)}
    if len(per[a]) != len(per[b]) or not per[a]:
        raise ValueError(f"need {a!r} and {b!r} on the same views (got {len(per[a])} and {len(per[b])} rows)")
    def mean_of(v: list[float]) -> float:  # over the views where it is defined
        kept = [x for x in v if not math.isnan(x)]
        return sum(kept) / len(kept) if kept else math.nan

    out = []
    for z in sorted({r["zoom"] for r in per[a]}):
        va = [r[metric] for r in per[a] if r["zoom"] == z]
        vb = [r[metric] for r in per[b] if r["zoom"] == z]
        out.append([f"{z:g}x", mean_of(vb), mean_of(va), *paired_difference(va, vb)])
    return ["zoom", f"{metric} {b}", f"{metric} {a}", f"{a} - {b}", "95% low", "95% high", "views"], out


#: The paper's rows of Table 1 and Table 2 (docs/PAPER.md §6); their numeric cells are not known here.
PAPER_TABLE1 = ("Nearest", "Direct SR (OSEDiff)", "CoZ (null prompt)", "CoZ (DAPE prompt)", "CoZ (VLM prompt)")
PAPER_TABLE2 = ("LIIF", "Direct SR (SeeSR)", "Direct SR (S3Diff)", "CoZ (S3Diff, GRPO-tuned VLM)")


def with_paper_rows(header: Sequence[str], rows: Sequence[Sequence], paper: Sequence[str],
                    source: str = "paper (values not known here)") -> tuple[list[str], list[list]]:
    """A table in the paper's layout: the paper's rows first with their cells empty (to be filled from
    the paper only), then the rows measured here, and a column saying where each row comes from."""
    width = len(header) - 1
    return ([header[0], "source", *header[1:]],
            [[label, source] + [None] * width for label in paper] + [[r[0], "measured here", *r[1:]] for r in rows])


def table2(rows: Sequence[dict], methods: Sequence[str], metrics: Sequence[str],
           magnifications: Sequence[int]) -> tuple[list[str], list[list]]:
    """Table 2's layout: the paper's rows (their backbones do not run here), then the backbones
    measured here (``table1``'s means)."""
    return with_paper_rows(*table1(rows, methods, metrics, magnifications), PAPER_TABLE2,
                           "paper (values not known here: backbone not available)")

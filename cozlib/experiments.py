"""Paper results as functions of (cached) chain results: the Table-1 and Figure-5 layouts.

A ``Method`` is one row of the paper's Table 1 (PAPER.md section 6): a rec_type, a backbone and a
prompt source. ``run_methods`` runs every (image, method) chain through the content-keyed cache,
``score_chains`` scores each state with pyiqa (scores cached beside the chain), ``table1`` averages
over images per magnification, ``figure5`` draws the qualitative grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Sequence

from PIL import Image

from .chain import ChainCache, ChainConfig, ChainResult, run_chain


@dataclass(frozen=True)
class Method:
    """One row of a Table-1-style comparison."""

    label: str
    rec_type: str
    backbone: str | None = None
    prompt: str = "null"


#: Table 1's rows that run on natural photos with a prompt-blind backbone (Real-ESRGAN): the
#: VLM/DAPE rows need a prompt-conditioned backbone (issues on OSEDiff-SD3 and the VLM add them).
PHOTO_METHODS: tuple[Method, ...] = (
    Method("Nearest", "nearest"),
    Method("Bicubic", "bicubic"),
    Method("Direct SR", "onestep", "realesrgan"),
    Method("CoZ", "recursive", "realesrgan"),
)


def world_methods(backbone: str = "osediff-demo", l2_backbone: str | None = "osediff-demo-l2") -> tuple[Method, ...]:
    """Table 1 on ZoomWorld with a prompt-conditioned OSEDiff: the paper's rows (null, DAPE, VLM
    prompts; the single-image VLM beside the multi-scale one), the oracle (ZoomWorld's truth), a
    deliberately wrong prompt, and the L2-only variant."""
    rows = [Method("Nearest", "nearest"), Method("Bicubic", "bicubic"),
            Method("Direct SR (OSEDiff)", "onestep", backbone),
            Method("CoZ null (OSEDiff)", "recursive", backbone),
            Method("CoZ DAPE (OSEDiff)", "recursive", backbone, "dape"),
            Method("CoZ VLM single (OSEDiff)", "recursive", backbone, "vlm-single"),
            Method("CoZ VLM (OSEDiff)", "recursive_multiscale", backbone, "vlm"),
            Method("CoZ VLM GRPO (OSEDiff)", "recursive_multiscale", backbone, "vlm-grpo"),
            Method("CoZ oracle (OSEDiff)", "recursive", backbone, "oracle"),
            Method("CoZ wrong (OSEDiff)", "recursive", backbone, "wrong")]
    if l2_backbone:
        rows.append(Method("CoZ oracle (OSEDiff L2)", "recursive", l2_backbone, "oracle"))
    return tuple(rows)


WORLD_METHODS = world_methods()


def methods_by_label(labels: Iterable[str], catalogue: Sequence[Method] = PHOTO_METHODS + WORLD_METHODS) -> list[Method]:
    from .errors import ConfigError
    index = {m.label: m for m in catalogue}
    missing = [l for l in labels if l not in index]
    if missing:
        raise ConfigError(f"unknown method(s) {missing}; known: {list(index)}")
    return [index[l] for l in labels]


class _MemoBackbone:
    """Remembers SR outputs by input pixels, prompt, size and seed: direct SR's first step and the
    chain's first step are the same computation, done once."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name, self.scale, self.uses_prompt = inner.name, inner.scale, inner.uses_prompt
        self._memo: dict[tuple, Image.Image] = {}

    def identity(self) -> str:
        return self.inner.identity()

    def upsample(self, lr, prompts, size, *, seed=0):
        import hashlib
        keys = [(hashlib.sha256(im.tobytes()).hexdigest(), im.size, p, size, seed) for im, p in zip(lr, prompts)]
        todo = [i for i, k in enumerate(keys) if k not in self._memo]
        if todo:
            outs = self.inner.upsample([lr[i] for i in todo], [prompts[i] for i in todo], size, seed=seed)
            for i, out in zip(todo, outs):
                self._memo[keys[i]] = out
        return [self._memo[k].copy() for k in keys]


def run_methods(images: Mapping[str, Image.Image], methods: Sequence[Method], config: ChainConfig,
                cache: ChainCache | None, device: str = "auto", progress: bool = True,
                sources: Mapping[str, dict] | None = None,
                prompt_options: Mapping[str, object] | None = None) -> dict[tuple[str, str], ChainResult]:
    """Every (image name, method label) chain; each backbone and extractor is built once.
    ``sources`` adds what an extractor may need per image (``{"world_seed": S}`` for ZoomWorld);
    ``prompt_options`` go to the extractors that take them (e.g. ``vlm=DIR`` for Qwen2.5-VL-3B)."""
    from tqdm.auto import tqdm
    from .backbones import make_backbone
    from .prompts import make_prompt_extractor

    backbones, extractors = {}, {}
    results: dict[tuple[str, str], ChainResult] = {}
    jobs = [(name, m) for name in images for m in methods]
    for name, m in tqdm(jobs, desc="chains", disable=not progress):
        cfg = replace(config, rec_type=m.rec_type)
        backbone = None
        if cfg.uses_backbone:
            if m.backbone not in backbones:
                backbones[m.backbone] = _MemoBackbone(make_backbone(m.backbone, device=device))
            backbone = backbones[m.backbone]
        if m.prompt not in extractors:
            extractors[m.prompt] = make_prompt_extractor(m.prompt, device=device, **(prompt_options or {}))
        source = {"image": name, **((sources or {}).get(name, {}))}
        results[(name, m.label)] = run_chain(images[name], cfg, backbone, extractors[m.prompt],
                                             cache=cache, source=source)
    return results


def _score_rows(results: Mapping[tuple[str, str], ChainResult], cache: ChainCache | None,
                keys: Mapping[str, str], compute, desc: str, progress: bool) -> list[dict]:
    """Rows {image, method, k, magnification, metric, value} for every state k >= 1.

    ``keys`` maps each row's metric name to the key its per-state values are stored under beside
    the chain (``ChainCache.load_scores``); ``compute(result, key)`` gives the values of a missing one.
    """
    from tqdm.auto import tqdm
    rows = []
    for (name, label), res in tqdm(list(results.items()), desc=desc, disable=not progress):
        stored = cache.load_scores(res.key) if cache is not None else {}
        missing = [key for key in keys.values() if key not in stored]
        for key in missing:
            stored[key] = compute(res, key)
        if missing and cache is not None:
            cache.store_scores(res.key, stored)
        for metric, key in keys.items():
            rows += [{"image": name, "method": label, "k": k, "magnification": res.magnifications[k],
                      "metric": metric, "value": stored[key][k]} for k in range(1, len(res.states))]
    return rows


def score_chains(results: Mapping[tuple[str, str], ChainResult], metrics: Sequence[str],
                 cache: ChainCache | None, device: str = "cpu", progress: bool = True) -> list[dict]:
    """No-reference scores (pyiqa) of every state k >= 1, cached beside the chain."""
    from .metrics import Scorer
    scorer = Scorer(device)
    return _score_rows(results, cache, {m: m for m in metrics},
                       lambda res, key: scorer.score(key, res.states), "metrics", progress)


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


def draw_zoom_boxes(x0: Image.Image, windows: Sequence[tuple[float, float, float, float]],
                    color=(255, 40, 40)) -> Image.Image:
    """x_0 with the nested windows of the states drawn on it (the paper's box-and-line style)."""
    from PIL import ImageDraw
    im = x0.copy()
    d = ImageDraw.Draw(im)
    w, h = im.size
    lw = max(1, w // 170)  # visible after the figure shrinks the panel
    for l, t, r, b in windows[1:]:
        d.rectangle([l * w - lw, t * h - lw, r * w + lw - 1, b * h + lw - 1], outline=color, width=lw)
    return im


def figure5(results: Mapping[tuple[str, str], ChainResult], image: str, methods: Sequence[str]):
    """Figure-5-style grid: one row per method, columns x_0 (with the zoom boxes) then 4x .. 4^n x."""
    import matplotlib.pyplot as plt
    first = results[(image, methods[0])]
    n = len(first.states) - 1
    fig, axes = plt.subplots(len(methods), n + 1, figsize=(2.0 * (n + 1), 2.05 * len(methods)), squeeze=False)
    for i, label in enumerate(methods):
        res = results[(image, label)]
        for k in range(n + 1):
            ax = axes[i][k]
            im = draw_zoom_boxes(res.states[0], res.windows) if k == 0 else res.states[k]
            ax.imshow(im, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title("x_0" if k == 0 else f"{res.magnifications[k]}x", fontsize=10)
            if k == 0:
                ax.set_ylabel(label, fontsize=10)
    fig.tight_layout()
    return fig


def protocol_figure(result: ChainResult, step: int = 1):
    """One zoom step drawn: x_{i-1} with the crop box, the low-res crop, its bicubic upsampling (the SR
    input and the VLM's "zoomed" image) and the SR output x_i."""
    import matplotlib.pyplot as plt
    from . import geometry
    prev, out = result.states[step - 1], result.states[step]
    s = result.config.upscale
    box = geometry.center_crop_box(*prev.size, s)
    lr, up = geometry.zoom_input(prev, s)
    panel = draw_zoom_boxes(prev, [(0, 0, 1, 1), tuple(v / prev.size[0] for v in box)])
    titles = [f"x_{step - 1} and the crop box {box}", f"crop {lr.size[0]}x{lr.size[1]} px",
              f"BICUBIC to {up.size[0]} px (SR input)", f"SR output x_{step}"]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    for ax, im, t in zip(axes, [panel, lr, up, out], titles):
        ax.imshow(im, interpolation="nearest")
        ax.set_title(t, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def per_scale_figure(rows: Sequence[dict], metrics: Sequence[str], methods: Sequence[str]):
    """Mean metric per magnification, one panel per metric, one line per method."""
    import matplotlib.pyplot as plt
    from .metrics import LOWER_IS_BETTER
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        means = per_scale_means(rows, metric)
        for label in methods:
            if label in means:
                xs = list(means[label])
                ax.plot(xs, [means[label][x] for x in xs], marker="o", label=label)
        ax.set_xscale("log", base=4)
        ax.set_xticks(xs, [f"{x}x" for x in xs])
        ax.set_title(f"{metric.upper()} ({'lower' if metric in LOWER_IS_BETTER else 'higher'} is better)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


# -- ZoomWorld: results against ground truth -------------------------------------------------------

def world_inputs(seeds: Sequence[int], size: int) -> tuple[dict[str, Image.Image], dict[str, dict]]:
    """Base views of ZoomWorld scenes as chain inputs, named ``world-SEED``, with their sources."""
    from . import world
    images = {f"world-{s}": world.render_view(s, (0.5, 0.5), 1.0, size) for s in seeds}
    return images, {f"world-{s}": world.world_source(s) for s in seeds}


def truth_states(result: ChainResult) -> list[Image.Image]:
    """The exact ground truth of every state of a chain run on a ZoomWorld input (same windows, size)."""
    from . import world
    seed = result.source["world_seed"]
    return [world.render_window(seed, w, result.states[0].size[0]) for w in result.windows]


def score_truth(results: Mapping[tuple[str, str], ChainResult], cache: ChainCache | None,
                progress: bool = True) -> list[dict]:
    """PSNR, SSIM (pyiqa) and the texture distance of every state k >= 1 against its ground truth
    (cached beside the chain; the truth of a chain is rendered once), and the latent-grid score
    (``metrics.truth.grid_score``, no reference: how much of a state is a pattern on an 8 px grid)."""
    from .metrics import Scorer
    from .metrics.truth import grid_score, texture_distance
    scorer = Scorer("cpu")
    truths: dict[str, list[Image.Image]] = {}

    def compute(res: ChainResult, key: str) -> list[float]:
        if res.key not in truths:
            truths[res.key] = truth_states(res)
        truth = truths[res.key]
        if key == "truth_texture":
            return [texture_distance(a, b) for a, b in zip(res.states, truth)]
        if key == "truth_grid":
            return [grid_score(a) for a in res.states]
        return scorer.score(key.removeprefix("truth_"), res.states, truth)

    return _score_rows(results, cache, {m: f"truth_{m}" for m in ("psnr", "ssim", "texture", "grid")},
                       compute, "truth", progress)


def truth_grid(results: Mapping[tuple[str, str], ChainResult], label: str, cache: ChainCache | None = None,
               progress: bool = False) -> dict[int, float]:
    """The ground truth's own latent-grid score per magnification (the floor of ``score_truth``'s
    "grid"), mean over the images of ``label``'s chains; cached beside each chain as its scores are."""
    from .metrics.truth import grid_score
    chains = {key: res for key, res in results.items() if key[1] == label}
    rows = _score_rows(chains, cache, {"grid": "truth_own_grid"},
                       lambda res, key: [grid_score(s) for s in truth_states(res)], "truth grid", progress)
    return per_scale_means(rows, "grid").get(label, {})


def views_figure(images: Sequence[Image.Image], titles: Sequence[str], captions: Sequence[str] = (), cols: int | None = None):
    """A row (or grid) of views with titles and optional captions (e.g. their true words)."""
    import matplotlib.pyplot as plt
    cols = cols or len(images)
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.6 * rows + (0.5 if captions else 0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        if i >= len(images):
            ax.axis("off")
            continue
        ax.imshow(images[i], interpolation="nearest")
        ax.set_title(titles[i], fontsize=9)
        if captions:
            ax.set_xlabel(captions[i], fontsize=7, wrap=True)
    fig.tight_layout()
    return fig


# -- prompts against the truth (hallucination) ----------------------------------------------------

def chain_prompt_scores(results: Mapping[tuple[str, str], ChainResult]) -> list[dict]:
    """Precision, recall and hallucination of the prompt c_k each chain used, against the true words
    of the view it was extracted for (state k's window at the state's size). ZoomWorld inputs only."""
    from . import world
    from .metrics.truth import score_prompt
    from .world.vocab import vocabulary
    vocab = vocabulary()
    rows = []
    for (name, label), res in results.items():
        seed = res.source.get("world_seed")
        if seed is None or not res.config.uses_backbone:
            continue
        size = res.states[0].size[0]
        for k in range(1, len(res.states)):
            sc = score_prompt(res.prompts[k - 1], world.window_words(seed, res.windows[k], size), vocab)
            for metric in ("precision", "recall", "hallucination"):
                v = getattr(sc, metric)
                rows.append({"image": name, "method": label, "k": k, "magnification": res.magnifications[k],
                             "metric": metric, "value": math.nan if v is None else v})
    return rows


def extractor_views(n_per_zoom: int, zooms: Sequence[float], process_size: int = 256, seed: int = 0) -> list[dict]:
    """Held-out (test-split) ZoomWorld views as an extractor sees them in a chain at ``process_size``:
    {'coarse', 'zoomed' (the view's process_size/4 px of information, bicubic-upsampled), 'words' (at
    process_size), 'zoom', 'seed', 'window'}."""
    import numpy as np
    from . import world
    from .geometry import resize
    from .world.datasets import sample_specs
    rng = np.random.default_rng([seed, 51])
    out = []
    for z in zooms:
        for spec in sample_specs("test", n_per_zoom, [z], rng):
            w = world.view_window(spec.center, spec.zoom)
            out.append({"coarse": world.render_window(spec.seed, world.view_window(spec.center, z / 4), process_size),
                        "zoomed": resize(world.render_window(spec.seed, w, process_size // 4), process_size, "bicubic"),
                        "words": world.window_words(spec.seed, w, process_size), "zoom": z, "seed": spec.seed,
                        "window": w})
    return out


def extractor_scores(views: Sequence[dict], specs: Sequence[str], device: str = "auto", progress: bool = True,
                     prompt_options: Mapping[str, object] | None = None) -> list[dict]:
    """Each extractor (CLI spec: null, dape, vlm-single, vlm, oracle, ...) on each view; rows
    {extractor, zoom, prompt, precision, recall, hallucination} (precision and hallucination NaN
    when the prompt names no vocabulary word)."""
    from tqdm.auto import tqdm
    from .metrics.truth import score_prompt
    from .prompts import PromptContext, make_prompt_extractor
    from .world.vocab import vocabulary
    vocab = vocabulary()
    rows = []
    for spec in specs:
        ex = make_prompt_extractor(spec, device=device, **(prompt_options or {}))
        for v in tqdm(views, desc=spec, disable=not progress):
            ctx = PromptContext(zoomed=v["zoomed"], previous=v["coarse"], step=1, window=v["window"],
                                source={"world_seed": v["seed"]})
            prompt = ex(ctx)
            sc = score_prompt(prompt, v["words"], vocab)
            rows.append({"extractor": spec, "zoom": v["zoom"], "prompt": prompt, "recall": sc.recall,
                         "precision": math.nan if sc.precision is None else sc.precision,
                         "hallucination": math.nan if sc.hallucination is None else sc.hallucination})
    return rows


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


def figure8(results: Mapping[tuple[str, str], ChainResult], image: str, methods: Sequence[str], wrap: int = 28):
    """Figure-8-style grid: one row per prompt source, columns the zoom levels; under each state the
    prompt that produced it (c_k), so a hallucinated word shows where it enters the chain."""
    import textwrap
    import matplotlib.pyplot as plt
    first = results[(image, methods[0])]
    n = len(first.states) - 1
    fig, axes = plt.subplots(len(methods), n, figsize=(2.6 * n, 3.1 * len(methods)), squeeze=False)
    for i, label in enumerate(methods):
        res = results[(image, label)]
        for k in range(1, n + 1):
            ax = axes[i][k - 1]
            ax.imshow(res.states[k], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlabel(textwrap.fill(res.prompts[k - 1] or "(empty)", wrap), fontsize=7)
            if i == 0:
                ax.set_title(f"{res.magnifications[k]}x", fontsize=10)
            if k == 1:
                ax.set_ylabel(label, fontsize=9)
    fig.tight_layout()
    return fig


#: trl's per-step log keys of the four Figure 6 curves
REWARD_KEYS = {"critic": "rewards/critic/mean", "phrase": "rewards/phrase/mean",
               "repetition": "rewards/repetition/mean", "total": "reward"}


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


def figure6(history: Sequence[dict]):
    """Figure-6-style reward curves of a GRPO run (trl's log: rewards/<name>/mean per step), four
    panels (critic, phrase, repetition, total), the paper's read-off values beside them on a
    training-progress axis (0 = start, 1 = end of each run)."""
    import matplotlib.pyplot as plt
    from .grpo.rewards import PAPER_CURVES
    steps = [r["step"] for r in history]
    last = max(steps) if steps else 1
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
    for ax, (name, key) in zip(axes, REWARD_KEYS.items()):
        ys = [r.get(key) for r in history]
        ax.plot([s / last for s in steps], ys, lw=1, alpha=0.4, color="C0")
        if len(ys) >= 5:  # a running mean, as the paper's smoothed curves
            k = max(2, len(ys) // 10)
            sm = [sum(ys[max(0, i - k + 1):i + 1]) / len(ys[max(0, i - k + 1):i + 1]) for i in range(len(ys))]
            ax.plot([s / last for s in steps], sm, color="C0", label="this run")
        px, py = zip(*PAPER_CURVES[name])
        ax.plot([x / px[-1] for x in px], py, "--", color="C3", label="paper (read off Fig. 6)")
        ax.set_title(name)
        ax.set_xlabel("training progress")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig

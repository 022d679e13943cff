"""Scores of chain results, cached beside each chain: no-reference metrics (pyiqa), metrics against the
ZoomWorld truth (PSNR, SSIM, texture distance, the latent-grid score), and the prompts' precision,
recall and hallucination against the true words (in chains and on held-out views).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from PIL import Image

from ..chain import ChainCache, ChainResult
from .methods import truth_states
from .tables import per_scale_means


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
    from ..metrics import Scorer
    scorer = Scorer(device)
    return _score_rows(results, cache, {m: m for m in metrics},
                       lambda res, key: scorer.score(key, res.states), "metrics", progress)


def score_truth(results: Mapping[tuple[str, str], ChainResult], cache: ChainCache | None,
                progress: bool = True) -> list[dict]:
    """PSNR, SSIM (pyiqa) and the texture distance of every state k >= 1 against its ground truth
    (cached beside the chain; the truth of a chain is rendered once), and the latent-grid score
    (``metrics.truth.grid_score``, no reference: how much of a state is a pattern on an 8 px grid)."""
    from ..metrics import Scorer
    from ..metrics.truth import grid_score, texture_distance
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
    from ..metrics.truth import grid_score
    chains = {key: res for key, res in results.items() if key[1] == label}
    rows = _score_rows(chains, cache, {"grid": "truth_own_grid"},
                       lambda res, key: [grid_score(s) for s in truth_states(res)], "truth grid", progress)
    return per_scale_means(rows, "grid").get(label, {})


def chain_prompt_scores(results: Mapping[tuple[str, str], ChainResult]) -> list[dict]:
    """Precision, recall and hallucination of the prompt c_k each chain used, against the true words
    of the view it was extracted for (state k's window at the state's size). ZoomWorld inputs only."""
    from .. import world
    from ..metrics.truth import score_prompt
    from ..world.vocab import vocabulary
    vocab = vocabulary()
    rows = []
    for (name, label), res in results.items():
        seed = res.source.get("world_seed")
        if seed is None or not res.config.uses_backbone:
            continue
        size = res.states[0].size[0]
        for k in range(1, len(res.states)):
            sc = score_prompt(res.prompts[k - 1], world.window_words(seed, world.in_world(res.windows[k], res.source),
                                                                     size), vocab)
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
    from .. import world
    from ..geometry import resize
    from ..world.datasets import sample_specs
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
                     prompt_options: Mapping[str, object] | None = None, models=None) -> list[dict]:
    """Each extractor (CLI spec: null, dape, vlm-single, vlm, oracle, ...) on each view; rows
    {extractor, zoom, prompt, precision, recall, hallucination} (precision and hallucination NaN
    when the prompt names no vocabulary word). ``models`` (``MethodModels``) shares loaded extractors."""
    from tqdm.auto import tqdm
    from ..metrics.truth import score_prompt
    from ..prompts import PromptContext, extract_many, make_prompt_extractor
    from ..world.vocab import vocabulary
    vocab = vocabulary()
    rows = []
    contexts = [PromptContext(zoomed=v["zoomed"], previous=v["coarse"], step=1, window=v["window"],
                              source={"world_seed": v["seed"]}) for v in views]
    for spec in tqdm(specs, desc="extractors", disable=not progress):
        ex = models.extractor(spec) if models is not None else \
            make_prompt_extractor(spec, device=device, **(prompt_options or {}))
        for v, prompt in zip(views, extract_many(ex, contexts)):
            sc = score_prompt(prompt, v["words"], vocab)
            rows.append({"extractor": spec, "zoom": v["zoom"], "prompt": prompt, "recall": sc.recall,
                         "precision": math.nan if sc.precision is None else sc.precision,
                         "hallucination": math.nan if sc.hallucination is None else sc.hallucination})
    return rows


def critic_scores(rows: list[dict], views: Sequence[dict], critic) -> list[dict]:
    """Add R_critic (the critic's score / 100, 0 when unparsable, as GRPO is paid: ``grpo.rewards``) of each
    row's prompt to ``extractor_scores`` rows, the critic seeing the view's (coarser, zoomed) pair: the
    critic's reward of the deployed (greedy) prompts, paired per view between extractors (section 4)."""
    pairs = [[v["coarse"], v["zoomed"]] for v in views]
    for i in range(0, len(rows), len(views)):
        block = rows[i:i + len(views)]
        for r, s in zip(block, critic.scores(pairs, [r["prompt"] for r in block])):
            r["critic"] = (s or 0.0) / 100.0
    return rows

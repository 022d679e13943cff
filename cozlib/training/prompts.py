"""Training the demo prompt extractors (``make weights``): the tiny Qwen2.5-VL and the DAPE-like tagger.

Data: ZoomWorld train-split views at zooms 2x-1024x, each as the chain presents it to an extractor
at process size 256: the coarser state (the view at zoom/4, resized to the VLM's image size,
``TINY["qwen_vl"]["image_px"]``) and the zoomed input (the view's 64 px of information,
bicubic-upsampled to that size, as the chain's 64 px
crop upsampled to 256), and the target = the view's true words at 256 px (``truth_prompt``).

* VLM (supervised fine-tuning, next-token cross-entropy on the answer: docs/PAPER.md §1's VLM
  loss): two variants of the same tiny Qwen2.5-VL, ``multiscale`` (the paper's message with both
  images) and ``single`` (the single-image message, zoomed input only).
* Tagger (the demo DAPE): binary cross-entropy per vocabulary word, zoomed input only.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import option, require_share, require_whole
from ..errors import ConfigError
from .loop import Stage, autocast, cosine_lr
from .tiny import TINY


@dataclass
class PromptTrainConfig:
    out_vlm: str = option("data/weights/vlm-demo", "folder of the two VLM variants (multiscale/, single/) with a manifest")
    out_dape: str = option("data/weights/dape-demo", "folder of the DAPE-like tagger")
    work: str = option("build/train/prompts", "checkpoints and cached samples; a rerun resumes from here")
    device: str = option("auto", "auto (CUDA when present, bf16 autocast), cpu, cuda or cuda:N")
    workers: int = option(2, "processes rendering the samples (they do not depend on it)")
    seed: int = option(0, "seed of every draw")
    image_px: int = option(TINY["qwen_vl"]["image_px"], "the tiny VLM's image size (both images): at 140 px one merged "
                                                        "token lies wholly inside the zoomed window of the coarser image")
    process_size: int = option(256, "the chain's state size: the true words are those visible at this size")
    samples: int = option(12000, "training views (ZoomWorld train split)")
    val_samples: int = option(240, "held-out views (val split) for the manifest's metrics")
    zoom_exponents: tuple = option((1, 2, 3, 4, 5, 6, 7, 8, 9, 10), "zoom = 2 ** k of the views: 2x .. 1024x")
    variants: list[str] = option(["multiscale", "single"], "VLM variants: multiscale (the paper's two-image message) "
                                                           "and single (the single-image message)")
    steps_vlm: int = option(12000, "supervised fine-tuning steps of each VLM variant (next-token cross-entropy, docs/PAPER.md §1)")
    batch_vlm: int = option(16, "VLM batch size")
    lr_vlm: float = option(1e-3, "VLM peak learning rate (cosine schedule)")
    chat_habits: float = option(0.1, "share of SFT answers in a chat VLM's habits (chat_habit): the phrases and "
                                     "repetitions GRPO's rewards remove, as the paper's policy starts with them")
    steps_dape: int = option(1200, "steps of the DAPE-like tagger (multi-label BCE on the zoomed view)")
    batch_dape: int = option(32, "tagger batch size")
    lr_dape: float = option(2e-3, "tagger peak learning rate")
    dape_px: int = option(64, "the tagger's input size: the zoomed view holds process_size/4 px of information")

    def validate(self) -> "PromptTrainConfig":
        require_whole(self, ("image_px", "process_size", "samples", "val_samples", "dape_px", "workers"))
        require_share(self, ("chat_habits",))
        if not self.variants or set(self.variants) - {"multiscale", "single"}:
            raise ConfigError(f"variants must be a non-empty list of multiscale and single, got {self.variants!r}")
        if not self.zoom_exponents or any(not isinstance(k, int) or not 0 <= k <= 40 for k in self.zoom_exponents):
            raise ConfigError(f"zoom_exponents are whole numbers in 0..40 (zoom 2 ** k), got {self.zoom_exponents!r}")
        return self


# -- data ---------------------------------------------------------------------------------------

def _render(spec, image_px: int, process_size: int):
    from ..geometry import resize
    from ..prompts.oracle import truth_prompt
    from ..world import render_window, view_window, window_words
    w = view_window(spec.center, spec.zoom)
    coarse = render_window(spec.seed, view_window(spec.center, spec.zoom / 4), image_px)
    zoomed = resize(render_window(spec.seed, w, process_size // 4), image_px, "bicubic")
    words = window_words(spec.seed, w, process_size)
    return np.asarray(coarse), np.asarray(zoomed), truth_prompt(words), words


def make_samples(cfg: PromptTrainConfig, split: str, n: int) -> dict:
    """{'coarse', 'zoomed': uint8 [N, S, S, 3], 'prompt': [str], 'words': [{word: area}], 'zoom': [float]}."""
    import functools
    from ..runtime import parallel_map
    from ..world.datasets import sample_specs
    rng = np.random.default_rng([cfg.seed, 21, ["train", "val", "test"].index(split)])
    specs = sample_specs(split, n, [2.0 ** k for k in cfg.zoom_exponents], rng)
    rows = parallel_map(functools.partial(_render, image_px=cfg.image_px, process_size=cfg.process_size), specs,
                        cfg.workers)
    return {"coarse": np.stack([r[0] for r in rows]), "zoomed": np.stack([r[1] for r in rows]),
            "prompt": [r[2] for r in rows], "words": [r[3] for r in rows], "zoom": [s.zoom for s in specs]}


def cached_samples(cfg: PromptTrainConfig, split: str, n: int, log=print) -> dict:
    """``make_samples``, rendered once and kept in ``cfg.work`` as a safetensors file (an unreadable one
    is rendered again)."""
    from ..imageio import load_tensors, save_tensors
    from ..world import RENDER_VERSION  # renders of an older world are not reused
    path = Path(cfg.work) / f"samples-{split}-{n}-{cfg.image_px}-{cfg.process_size}-{cfg.seed}-r{RENDER_VERSION}.safetensors"
    got = load_tensors(path, log)
    if got is not None:
        tensors, meta = got
        return {"coarse": tensors["coarse"].numpy(), "zoomed": tensors["zoomed"].numpy(), **meta}
    t = time.perf_counter()
    data = make_samples(cfg, split, n)
    save_tensors({"coarse": data["coarse"], "zoomed": data["zoomed"]},
                 {k: data[k] for k in ("prompt", "words", "zoom")}, path)
    log(f"[data] {split}: {n} extractor samples rendered in {time.perf_counter() - t:.0f} s")
    return data


def _pil(a):
    from PIL import Image
    return Image.fromarray(a)


def view_images(data: dict, j: int, multiscale: bool = True) -> list:
    """Sample ``j`` as the extractor sees it: [coarser view, zoomed view], or [zoomed view]."""
    return [_pil(data["coarse"][j]), _pil(data["zoomed"][j])] if multiscale else [_pil(data["zoomed"][j])]


# -- the VLM ------------------------------------------------------------------------------------

def sft_batch(processor, messages: list[list[dict]], images: list[list], answers: list[str]):
    """Processor inputs with ``labels``: each chat (``messages``, with the generation prompt) + its
    answer + <|im_end|>; the loss is on the answer only (left padding puts every answer at the end
    of its row)."""
    import torch
    tok = processor.tokenizer
    heads = [processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in messages]
    end = tok.eos_token
    inputs = processor(text=[h + a + end for h, a in zip(heads, answers)], images=images, return_tensors="pt", padding=True)
    labels = torch.full_like(inputs["input_ids"], -100)
    for i, a in enumerate(answers):
        n = len(tok(a + end, add_special_tokens=False)["input_ids"])
        labels[i, -n:] = inputs["input_ids"][i, -n:]
    inputs["labels"] = labels
    return inputs


def sft_stage(name: str, seed: int, steps: int, lr: float, work: str, device: str, batch_fn, log=print,
              init: str | None = None):
    """Supervised fine-tuning of a fresh tiny Qwen2.5-VL (``build_qwen_vl(seed)``), or of the model in
    folder ``init``, as a resumable Stage; ``batch_fn(step) -> (messages, images, answers)``. Returns
    (model, processor, stage)."""
    import torch
    from .tiny import build_qwen_vl
    if init:
        from ..paths import resolve
        from ..prompts.vlm import load_vlm
        torch.manual_seed(seed)
        model, proc = load_vlm(resolve(init), None, "cpu", "float32")
    else:
        model, proc = build_qwen_vl(seed)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    stage = Stage(name, steps, Path(work) / "ckpt", {"model": model, "opt": opt})

    def step(i: int) -> dict:
        inputs = sft_batch(proc, *batch_fn(i)).to(device)
        for grp in opt.param_groups:
            grp["lr"] = cosine_lr(i, steps, lr)
        with autocast(device):
            loss = model(**inputs).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return {"ce": loss.item()}

    stage.run(step, log)
    model.eval()
    return model, proc, stage


#: How a general chat VLM opens an answer about the paper's two images, or about one (the GRPO
#: blacklist's targets, ``grpo.rewards.BLACKLIST``).
HABIT_LEADS = {"multiscale": ("the second image shows", "in the second image there are", "the zoomed-in image shows"),
               "single": ("this image shows", "in this image there are", "the image shows")}


def chat_habit(answer: str, rng: np.random.Generator, variant: str = "multiscale") -> str:
    """``answer`` as a general chat VLM gives it at times: after a lead-in naming the images
    (HABIT_LEADS), or as a list that runs on, repeating itself until the token limit cuts it.
    Qwen2.5-VL-3B-Instruct has such habits: the paper's GRPO curves start at R_phrase 0.955 and
    R_rep -0.045 (docs/PAPER.md §4). A share of the demo SFT answers (``chat_habits``) carries
    them, so the demo extractor starts where the paper's did and GRPO has them to remove."""
    if not answer:
        return answer
    if rng.random() < 0.5:
        leads = HABIT_LEADS[variant]
        return f"{leads[int(rng.integers(len(leads)))]} {answer}"
    words = answer.split(", ")
    return ", ".join((words * 8)[:max(3 * len(words), 8)])


def train_vlm(data: dict, cfg: PromptTrainConfig, variant: str, device: str, log=print):
    """The extractor's SFT (one variant): the paper's message -> the true words (a ``chat_habits``
    share of them in a chat VLM's habits, ``chat_habit``)."""
    from ..prompts.vlm import vlm_messages
    multiscale = variant == "multiscale"

    def batch(i: int):
        g = np.random.default_rng([cfg.seed, 31, i])
        idx = g.integers(0, len(data["prompt"]), cfg.batch_vlm)
        answers = [chat_habit(data["prompt"][j], g, variant) if g.random() < cfg.chat_habits else data["prompt"][j] for j in idx]
        return [vlm_messages(multiscale)] * len(idx), [view_images(data, j, multiscale) for j in idx], answers

    return sft_stage(f"vlm-{variant}", cfg.seed, cfg.steps_vlm, cfg.lr_vlm, cfg.work, device, batch, log)


# -- the tagger ---------------------------------------------------------------------------------

def train_tagger(data: dict, cfg: PromptTrainConfig, device: str, log=print):
    """The demo DAPE: multi-label BCE on the zoomed input; returns (Tagger, stage)."""
    import torch
    import torch.nn.functional as F
    from ..prompts.dape import Tagger, make_tagger_net
    from ..world.vocab import vocabulary
    words = vocabulary()
    index = {w: k for k, w in enumerate(words)}
    target = torch.zeros(len(data["prompt"]), len(words))
    for r, truth in enumerate(data["prompt"]):
        for w in (x for x in truth.split(", ") if x):
            target[r, index[w]] = 1.0
    x_all = F.interpolate(torch.from_numpy(data["zoomed"]).permute(0, 3, 1, 2).float(), size=cfg.dape_px,
                          mode="bicubic", antialias=True).round().clamp(0, 255).to(torch.uint8)
    torch.manual_seed(cfg.seed)
    net = make_tagger_net(len(words)).to(device).train()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr_dape, weight_decay=1e-4)
    stage = Stage("dape", cfg.steps_dape, Path(cfg.work) / "ckpt", {"net": net, "opt": opt})

    def step(i: int) -> dict:
        g = np.random.default_rng([cfg.seed, 41, i])
        idx = torch.from_numpy(g.integers(0, len(target), cfg.batch_dape))
        x = x_all[idx].to(device).float() / 127.5 - 1
        if g.random() < 0.5:
            x = x.flip(-1)
        for grp in opt.param_groups:
            grp["lr"] = cosine_lr(i, cfg.steps_dape, cfg.lr_dape)
        loss = F.binary_cross_entropy_with_logits(net(x), target[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"bce": loss.item()}

    stage.run(step, log)
    return Tagger(net.eval(), words, cfg.dape_px, 0.5, device), stage


# -- evaluation and export ----------------------------------------------------------------------

def score_prompts(prompts: list[str], data: dict) -> dict:
    """Mean precision, recall and hallucination rate of prompts against the samples' true words,
    overall and per zoom ({zoom: {...}}); hallucination = 1 - precision over prompts naming a word."""
    from ..metrics.truth import score_prompt
    from ..world.vocab import vocabulary
    vocab = vocabulary()
    rows = [(z, score_prompt(p, w, vocab)) for p, w, z in zip(prompts, data["words"], data["zoom"])]

    def summary(rs) -> dict:
        prec = [s.precision for _, s in rs if s.precision is not None]
        return {"precision": float(np.mean(prec)) if prec else math.nan,
                "recall": float(np.mean([s.recall for _, s in rs])),
                "hallucination": float(1 - np.mean(prec)) if prec else math.nan, "n": len(rs)}

    per = {f"{z:g}": summary([r for r in rows if r[0] == z]) for z in sorted(set(data["zoom"]))}
    return {"all": summary(rows), "per_zoom": per}


def vlm_prompts(model, proc, data: dict, multiscale: bool, batch: int = 32) -> list[str]:
    from ..prompts.vlm import VLMPrompt
    ex = VLMPrompt(model, proc, multiscale, "training")
    out: list[str] = []
    for i in range(0, len(data["prompt"]), batch):
        sl = range(i, min(i + batch, len(data["prompt"])))
        out += ex.generate([view_images(data, j, multiscale) for j in sl])
    return out


def _manifest(cfg, stages, metrics, device, wall_s, what: str) -> dict:
    from ..provenance import training_manifest
    return training_manifest(what, cfg, stages, device, wall_s, metrics_val=metrics,
                             data={"train": f"{cfg.samples} ZoomWorld train-split views, zoom 2x-1024x",
                                   "validation": f"{cfg.val_samples} ZoomWorld val-split views"})


def train(cfg: PromptTrainConfig, log=print) -> tuple[Path, Path]:
    """Both VLM variants and the tagger, evaluated on the val split, exported with manifests."""
    import transformers
    from ..config import check
    from ..imageio import atomic_dir
    from .tiny import TINY
    from ..runtime import resolve_device, seed_everything
    check(cfg)
    from ..outputs import check_output_folders
    check_output_folders(cfg.out_vlm, cfg.out_dape, work=cfg.work)
    transformers.utils.logging.disable_progress_bar()
    device = resolve_device(cfg.device, "--set device")
    t0 = time.perf_counter()
    seed_everything(cfg.seed)
    data = cached_samples(cfg, "train", cfg.samples, log)
    val = cached_samples(cfg, "val", cfg.val_samples, log)
    models, stages, metrics = {}, [], {}
    for variant in cfg.variants:
        model, proc, st = train_vlm(data, cfg, variant, device, log)
        stages.append(st)
        models[variant] = (model.to("cpu"), proc)
        metrics[variant] = score_prompts(vlm_prompts(model, proc, val, variant == "multiscale"), val)
        log(f"[eval] vlm-{variant}: {json.dumps(metrics[variant]['all'])}")
    tagger, st = train_tagger(data, cfg, device, log)
    tagger.net.to("cpu")
    tagger.device = "cpu"
    metrics_dape = score_prompts(tagger.tags([_pil(a) for a in val["zoomed"]]), val)
    log(f"[eval] dape: {json.dumps(metrics_dape['all'])}")
    wall = time.perf_counter() - t0
    out_vlm, out_dape = Path(cfg.out_vlm), Path(cfg.out_dape)
    with atomic_dir(out_vlm, kind="weights") as tmp:
        for variant, (model, proc) in models.items():
            model.save_pretrained(tmp / variant)
            proc.save_pretrained(tmp / variant)
        m = _manifest(cfg, stages, metrics, device, wall, "tiny Qwen2.5-VL (transformers class), SFT on ZoomWorld")
        m["tiny"] = TINY["qwen_vl"]
        (tmp / "manifest.json").write_text(json.dumps(m, indent=1) + "\n")
        (tmp / "history.json").write_text(json.dumps({s.name: s.history for s in stages}) + "\n")
    tagger.save(out_dape, {"manifest.json": json.dumps(
        _manifest(cfg, [st], metrics_dape, device, wall, "DAPE-like CNN tagger on the zoomed input"), indent=1) + "\n"})
    log(f"[done] {out_vlm}, {out_dape} in {wall / 60:.1f} min")
    return out_vlm, out_dape

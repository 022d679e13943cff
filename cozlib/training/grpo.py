"""GRPO on the demo VLM (``make weights``): the demo critic, then trl's GRPOTrainer with a peft LoRA.

1. ``train_critic``: a tiny Qwen2.5-VL, starting from the supervised policy's weights, learns to
   answer ``critic.truth_score`` (F1 of a candidate prompt's words against the truth, 0-100) for
   (coarser view, zoomed view, candidate) on ZoomWorld train views; half its candidates are the
   policy's own completions, sampled as GRPO samples them (``policy_candidates``: a reward model
   learns the distinctions it will be asked to make), half crafted ones of varied quality
   (``critic.candidate_prompts``).
2. ``train_grpo``: the supervised multi-scale VLM (``data/weights/vlm-demo/multiscale``) is the
   policy; a LoRA with the released adapter's settings (r=8, alpha=32, dropout 0.05, the language
   model's q/k/v/o/gate/up/down projections; vision tower frozen) is trained by trl's GRPOTrainer
   with R = 1.0 R_critic + 0.5 R_phrase + 0.5 R_rep on multi-scale crop pairs. trl logs each
   reward's mean per step; checkpoints resume.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..config import option, require_whole
from ..errors import ConfigError
from .prompts import PromptTrainConfig, view_images

#: The released adapter's LoRA (docs/PAPER.md §3): the language model's projections only.
LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass
class GRPOTrainConfig:
    out: str = option("data/weights/vlm-grpo-demo", "folder of the GRPO LoRA adapter (peft's format, as the released checkpoint)")
    critic_out: str = option("data/weights/critic-demo", "folder of the demo critic")
    work: str = option("build/train/grpo", "the critic's checkpoint and trl's checkpoints; a rerun resumes from here")
    device: str = option("auto", "auto (CUDA when present, bf16), cpu, cuda or cuda:N")
    seed: int = option(0, "seed of every draw")
    policy: str = option("data/weights/vlm-demo/multiscale", "the supervised multi-scale VLM that GRPO tunes")
    data_work: str = option(PromptTrainConfig.work, "where the extractor samples are cached (training.prompts' "
                                                    "folder: the same samples, rendered once)")
    samples: int = option(PromptTrainConfig.samples, "training views (the extractor's)")
    val_samples: int = option(PromptTrainConfig.val_samples, "held-out views for the before / after metrics")
    # -- the demo critic: a tiny Qwen2.5-VL taught to score a prompt against the truth
    steps_critic: int = option(1200, "critic SFT steps (answers 100 x F1 of a candidate's words against the truth)")
    batch_critic: int = option(16, "critic batch size")
    lr_critic: float = option(1e-3, "critic peak learning rate")
    critic_policy_share: float = option(0.5, "share of the critic's training candidates that are the policy's own "
                                              "completions (sampled as GRPO samples them), the rest from "
                                              "critic.candidate_prompts: a reward model learns the distinctions it "
                                              "will be asked to make")
    critic_policy_views: int = option(1200, "training views the policy samples num_generations completions for, "
                                            "once (cached in work)")
    critic_init: str = option("policy", "what the critic starts from: policy (the supervised VLM's weights, which "
                                        "already tell the ambiguous twins apart with the coarser view: a pretrained "
                                        "critic, as the paper's) or scratch (a fresh tiny Qwen2.5-VL)")
    critic_target: str = option("f1", "what the critic learns to answer: f1 (100 x F1 of the words vs the truth) or "
                                      "precision (a stricter critic of another kind: Figure 7's second critic)")
    # -- GRPO (trl's GRPOTrainer)
    steps_grpo: int = option(300, "GRPO optimizer steps (trl's max_steps; the paper ran about 10K)")
    prompts_per_step: int = option(4, "views per optimizer step")
    num_generations: int = option(8, "completions per view, the group (the paper's [S] 2); with 4, 42% of groups "
                                     "gave one reward to all their completions: no learning signal")
    max_completion_length: int = option(24, "new tokens per completion")
    lr_grpo: float = option(2e-4, "LoRA peak learning rate (cosine schedule)")
    beta: float = option(0.2, "KL weight to the supervised policy (the paper's is unknown); 0.04 let the policy "
                              "drift to the critic's errors")
    temperature: float = option(1.0, "sampling temperature of the completions")
    lora_r: int = option(8, "LoRA rank (the released adapter's, docs/PAPER.md §3)")
    lora_alpha: int = option(32, "LoRA alpha (the released adapter's)")
    lora_dropout: float = option(0.05, "LoRA dropout (the released adapter's)")
    save_steps: int = option(50, "a trl checkpoint every this many steps (resumable)")

    def validate(self) -> "GRPOTrainConfig":
        require_whole(self, ("samples", "val_samples", "critic_policy_views", "prompts_per_step",
                             "max_completion_length", "lora_r", "lora_alpha", "save_steps"))
        if self.num_generations < 2:
            raise ConfigError(f"num_generations must be >= 2 (GRPO compares completions within a group), "
                              f"got {self.num_generations!r}")
        from ..grpo.critic import CRITIC_TARGETS
        if self.critic_target not in CRITIC_TARGETS:
            raise ConfigError(f"critic_target must be one of {', '.join(CRITIC_TARGETS)}, got {self.critic_target!r}")
        if self.critic_init not in ("scratch", "policy"):
            raise ConfigError(f"critic_init must be scratch or policy, got {self.critic_init!r}")
        if not 0 <= self.critic_policy_share <= 1:
            raise ConfigError(f"critic_policy_share must be in [0, 1], got {self.critic_policy_share!r}")
        if self.beta < 0 or not self.temperature > 0 or not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"beta >= 0, temperature > 0 and 0 <= lora_dropout < 1, got {self.beta!r}, "
                              f"{self.temperature!r}, {self.lora_dropout!r}")
        return self


# -- the demo critic ----------------------------------------------------------------------------

def sample_completions(model, proc, image_lists: list, n: int, temperature: float, max_new_tokens: int,
                       seed: int, batch: int = 8) -> list[list[str]]:
    """``n`` completions per list of images, sampled as GRPOTrainer samples them (the multi-scale
    message, plain temperature sampling, raw text), ``batch`` image lists per generate call (a
    paper-scale VLM's memory); one list of ``n`` per image list."""
    import torch
    from ..prompts.vlm import vlm_messages
    text = proc.apply_chat_template(vlm_messages(True), add_generation_prompt=True, tokenize=False)
    torch.manual_seed(seed)
    out: list[list[str]] = []
    for i in range(0, len(image_lists), batch):
        chunk = image_lists[i:i + batch]
        inputs = proc(text=[text] * len(chunk), images=[[im.convert("RGB") for im in ims] for ims in chunk],
                      return_tensors="pt", padding=True).to(model.device)
        with torch.inference_mode():
            ids = model.generate(**inputs, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                                 max_new_tokens=max_new_tokens, num_return_sequences=n)
        texts = proc.batch_decode(ids[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        out += [texts[k * n:(k + 1) * n] for k in range(len(chunk))]
    return out


def policy_candidates(data: dict, cfg: GRPOTrainConfig, device: str, log=print) -> list[tuple[int, str]]:
    """(training view, completion) pairs: the supervised policy's own completions on
    ``cfg.critic_policy_views`` training views, the critic's on-policy material; sampled once and
    kept in ``cfg.work`` (JSON)."""
    from ..imageio import save_json
    from ..paths import resolve
    from ..prompts.vlm import load_vlm
    from ..world import RENDER_VERSION
    n_views = min(cfg.critic_policy_views, len(data["prompt"]))
    path = Path(cfg.work) / (f"policy-candidates-{n_views}x{cfg.num_generations}-t{cfg.temperature}-{cfg.seed}"
                             f"-r{RENDER_VERSION}.json")
    if path.is_file():
        return [(j, c) for j, c in json.loads(path.read_text())]
    t0 = time.perf_counter()
    model, proc = load_vlm(resolve(cfg.policy), None, device)
    views = random.Random(cfg.seed + 11).sample(range(len(data["prompt"])), n_views)
    out = []
    for i in range(0, n_views, 8):
        chunk = views[i:i + 8]
        texts = sample_completions(model, proc, [view_images(data, j) for j in chunk], cfg.num_generations,
                                   cfg.temperature, cfg.max_completion_length, cfg.seed * 1_000_003 + i)
        out += [(j, c) for j, cs in zip(chunk, texts) for c in cs]
    save_json(out, path)
    log(f"[critic] {len(out)} policy completions on {n_views} training views in {time.perf_counter() - t0:.0f} s")
    return out


def train_critic(data: dict, cfg: GRPOTrainConfig, device: str, log=print):
    """A tiny Qwen2.5-VL (``cfg.critic_init``) taught to answer truth_score (``cfg.critic_target``) of
    candidates: a share ``cfg.critic_policy_share`` of the policy's own completions, the rest
    ``critic.candidate_prompts``; returns (model, processor, stage)."""
    from ..grpo.critic import candidate_prompts, critic_messages, truth_score
    from .prompts import sft_stage
    own = policy_candidates(data, cfg, device, log) if cfg.critic_policy_share > 0 else []

    def batch(i: int):
        rng = random.Random(cfg.seed * 1_000_003 + i)
        idx, cands = [], []
        for _ in range(cfg.batch_critic):
            if own and rng.random() < cfg.critic_policy_share:
                j, c = own[rng.randrange(len(own))]
            else:
                j = rng.randrange(len(data["prompt"]))
                c = candidate_prompts(data["prompt"][j], rng, 1)[0]
            idx.append(j)
            cands.append(c)
        return ([critic_messages(c) for c in cands], [view_images(data, j) for j in idx],
                [str(round(truth_score(c, data["words"][j], cfg.critic_target))) for c, j in zip(cands, idx)])

    return sft_stage("critic", cfg.seed + 7, cfg.steps_critic, cfg.lr_critic, cfg.work, device, batch, log,
                     init=cfg.policy if cfg.critic_init == "policy" else None)


def critic_agreement(critic, data: dict, n_per_view: int = 2, seed: int = 1, target: str = "f1",
                     candidates: list[tuple[int, str]] | None = None) -> dict:
    """How well a critic's scores follow the truth on held-out views: Pearson and Spearman
    correlation with ``truth_score``, mean absolute error (0-100), share of unparsable answers; of
    ``candidates`` ((view, text) pairs, e.g. a policy's completions) or ``critic.candidate_prompts``."""
    from ..grpo.critic import candidate_prompts, truth_score
    rng = random.Random(seed)
    if candidates is None:
        candidates = [(j, c) for j in range(len(data["prompt"]))
                      for c in candidate_prompts(data["prompt"][j], rng, n_per_view)]
    pairs = [view_images(data, j) for j, _ in candidates]
    cands = [c for _, c in candidates]
    truths = [truth_score(c, data["words"][j], target) for j, c in candidates]
    scores = critic.scores(pairs, cands)
    ok = [(s, t) for s, t in zip(scores, truths) if s is not None]
    if len(ok) < 2:
        return {"n": len(scores), "unparsable": 1.0 - len(ok) / max(1, len(scores)), "pearson": math.nan,
                "spearman": math.nan, "mae": math.nan}
    s, t = np.array(ok).T
    rank = lambda a: np.argsort(np.argsort(a, kind="stable"), kind="stable").astype(float)  # noqa: E731
    corr = lambda a, b: float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else math.nan  # noqa: E731
    return {"n": len(scores), "unparsable": 1.0 - len(ok) / len(scores), "pearson": corr(s, t),
            "spearman": corr(rank(s), rank(t)), "mae": float(np.abs(s - t).mean())}


#: Ways to write the exact true words that an ideal critic scores the same (``critic_probe``).
EXACT_VARIANTS = {"as trained (lower case)": lambda w: ", ".join(w), "reversed order": lambda w: ", ".join(w[::-1]),
                  "upper case": lambda w: ", ".join(w).upper(), "capitalised": lambda w: ", ".join(x.capitalize() for x in w),
                  "with a closing period": lambda w: ", ".join(w) + "."}


def critic_probe(critic, data: dict, n: int = 40) -> list[list]:
    """[way of writing the true words, the critic's mean score, share scored below 50, the truth's score] on
    the first ``n`` held-out views: does the critic pay the exact answer however it is written?"""
    from ..grpo.critic import truth_score
    pairs = [view_images(data, j) for j in range(min(n, len(data["prompt"])))]
    words = [data["prompt"][j].split(", ") for j in range(len(pairs))]
    rows = []
    for name, write in EXACT_VARIANTS.items():
        texts = [write(w) for w in words]
        scores = [0.0 if s is None else s for s in critic.scores(pairs, texts)]
        truth = float(np.mean([truth_score(t, data["words"][j]) for j, t in enumerate(texts)]))
        rows.append([name, float(np.mean(scores)), float(np.mean([s < 50 for s in scores])), truth])
    return rows


def critic_gaps(critic, extractor, data: dict) -> list[list]:
    """[prompt, true words, critic score, truth score, critic - truth] for an extractor's prompts on
    held-out views (multi-scale: coarser and zoomed view), the largest overpayment first."""
    from ..grpo.critic import truth_score
    pairs = [view_images(data, j) for j in range(len(data["prompt"]))]
    prompts = extractor.generate(pairs)
    scores = critic.scores(pairs, prompts)
    rows = []
    for p, t, w, c in zip(prompts, data["prompt"], data["words"], scores):
        c = 0.0 if c is None else c
        f1 = truth_score(p, w)
        rows.append([p, t, round(c, 1), round(f1, 1), round(c - f1, 1)])
    return sorted(rows, key=lambda r: -r[-1])


# -- GRPO ---------------------------------------------------------------------------------------

def grpo_dataset(data: dict, n: int | None = None):
    """trl's format: a conversational "prompt" (the paper's multi-scale message) and an "images"
    column (coarser view, zoomed view), plus the truth for logging."""
    from datasets import Dataset
    from ..prompts.vlm import vlm_messages
    n = n or len(data["prompt"])
    msgs = vlm_messages(True)
    msgs = [{"role": "system", "content": [{"type": "text", "text": msgs[0]["content"]}]}, msgs[1]]
    return Dataset.from_dict({"prompt": [msgs] * n,
                              "images": [view_images(data, j) for j in range(n)],
                              "truth": data["prompt"][:n]})


def lora_config(cfg: GRPOTrainConfig):
    from peft import LoraConfig
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=LORA_TARGETS, task_type="CAUSAL_LM")


def _resumable(out_dir: Path, log=print) -> bool:
    """True when ``out_dir`` holds trl checkpoints to resume. Checkpoints marked (identity.json) with
    another world than this one (``Stage.identity``) are removed, so that a later interruption
    cannot resume from them; unmarked ones (from before the mark) are resumed."""
    import shutil
    from ..imageio import save_json
    from .loop import Stage
    marker, ident = out_dir / "identity.json", Stage.identity()
    ckpts = sorted(out_dir.glob("checkpoint-*"))
    if ckpts and marker.is_file() and json.loads(marker.read_text()) != ident:
        log(f"[grpo] {out_dir} holds checkpoints of other data ({marker.read_text().strip()}, now {ident}): "
            "starting over")
        for c in ckpts:
            shutil.rmtree(c)
        ckpts = []
    save_json(ident, marker)
    return bool(ckpts)


def train_grpo(data: dict, critic, cfg: GRPOTrainConfig, device: str, log=print):
    """trl GRPOTrainer on the supervised multi-scale VLM with a fresh LoRA; returns (trainer, history)."""
    from trl import GRPOConfig, GRPOTrainer
    from ..grpo.rewards import trainer_rewards
    from ..prompts.vlm import load_vlm
    from ..paths import resolve
    model, proc = load_vlm(resolve(cfg.policy), None, "cpu", "float32")
    cuda = device.startswith("cuda")
    rewards = trainer_rewards(critic)
    out_dir = Path(cfg.work) / "trainer"
    args = GRPOConfig(
        output_dir=str(out_dir), max_steps=cfg.steps_grpo, per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations,
        num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_length,
        learning_rate=cfg.lr_grpo, beta=cfg.beta, temperature=cfg.temperature,
        reward_weights=[w for _, w in rewards],
        logging_steps=1, save_steps=cfg.save_steps, save_total_limit=2, seed=cfg.seed, bf16=cuda,
        use_cpu=not cuda, report_to="none", disable_tqdm=True, lr_scheduler_type="cosine",
        warmup_steps=max(1, cfg.steps_grpo // 20), dataloader_num_workers=0)
    trainer = GRPOTrainer(model=model, reward_funcs=[f for f, _ in rewards],
                          args=args, train_dataset=grpo_dataset(data), processing_class=proc, peft_config=lora_config(cfg))
    resume = _resumable(out_dir, log)
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=True if resume else None)
    hist = [r for r in trainer.state.log_history if "reward" in r]
    log(f"[grpo] {cfg.steps_grpo} steps in {(time.perf_counter() - t0) / 60:.1f} min; last: "
        + json.dumps({k: round(v, 4) for k, v in hist[-1].items() if k.startswith("rewards/") or k == "reward"} if hist else {}))
    return trainer, hist


def train(cfg: GRPOTrainConfig, log=print) -> tuple[Path, Path]:
    """Critic, its agreement with the truth, GRPO, the policy before/after on held-out views; export
    the critic (a model folder) and the adapter (peft's format, as the released checkpoint) with manifests."""
    import transformers
    from ..config import check
    from ..grpo.critic import VLMCritic
    from ..imageio import atomic_dir
    from ..paths import resolve
    from ..prompts.vlm import load_vlm
    from ..runtime import resolve_device, seed_everything
    from .prompts import cached_samples, score_prompts, vlm_prompts
    from ..provenance import header, training_manifest
    check(cfg)
    from ..outputs import check_output_folders
    check_output_folders(cfg.out, cfg.critic_out, work=cfg.work)
    if not (resolve(cfg.policy) / "config.json").is_file():
        from ..errors import MissingWeightsError
        raise MissingWeightsError(f"policy {cfg.policy}: no model folder there (config.json); train it first with "
                                  f"`python -m cozlib train prompts`, or --set policy=DIR")
    transformers.utils.logging.disable_progress_bar()
    device = resolve_device(cfg.device, "--set device")
    t0 = time.perf_counter()
    seed_everything(cfg.seed)
    pcfg = PromptTrainConfig(samples=cfg.samples, val_samples=cfg.val_samples, work=cfg.data_work, seed=cfg.seed,
                             workers=1 if cfg.samples < 100 else 2)
    data = cached_samples(pcfg, "train", pcfg.samples, log)
    val = cached_samples(pcfg, "val", pcfg.val_samples, log)
    critic_model, critic_proc, cstage = train_critic(data, cfg, device, log)
    critic = VLMCritic(critic_model, critic_proc, "training")
    agreement = critic_agreement(critic, val, target=cfg.critic_target)
    log(f"[eval] critic vs truth on val: {json.dumps(agreement)}")
    before_model, before_proc = load_vlm(resolve(cfg.policy), None, device)
    first = [view_images(val, j) for j in range(min(60, len(val["prompt"])))]   # the policy's own, as GRPO samples them
    own = sample_completions(before_model, before_proc, first, cfg.num_generations, cfg.temperature,
                             cfg.max_completion_length, cfg.seed + 1)
    agreement["policy_completions"] = critic_agreement(critic, val, target=cfg.critic_target,
                                                       candidates=[(j, c) for j, cs in enumerate(own) for c in cs])
    log(f"[eval] critic vs truth on the policy's completions (first 60 val views): "
        f"{json.dumps(agreement['policy_completions'])}")
    before = score_prompts(vlm_prompts(before_model, before_proc, val, True), val)
    del before_model  # GRPO loads the policy afresh for trl; this copy would hold its memory (3B at paper scale)
    if device.startswith("cuda"):
        import torch
        torch.cuda.empty_cache()
    trainer, hist = train_grpo(data, critic, cfg, device, log)
    adapter = Path(cfg.work) / "adapter"
    trainer.model.save_pretrained(adapter)  # peft: adapter_config.json + adapter_model.safetensors
    tuned, _ = load_vlm(resolve(cfg.policy), adapter, device)  # through the same path as a released adapter
    after = score_prompts(vlm_prompts(tuned, before_proc, val, True), val)
    log(f"[eval] policy on val before GRPO: {json.dumps(before['all'])}; after: {json.dumps(after['all'])}")
    wall = time.perf_counter() - t0
    with atomic_dir(Path(cfg.critic_out), kind="weights") as tmp:
        critic_model.to("cpu").save_pretrained(tmp)
        critic_proc.save_pretrained(tmp)
        (tmp / "manifest.json").write_text(json.dumps(training_manifest(
            f"tiny Qwen2.5-VL critic, trained to answer 100 x {cfg.critic_target} of a prompt's words vs ZoomWorld truth", cfg, [cstage],
            device, wall, agreement_val=agreement), indent=1) + "\n")
    with atomic_dir(Path(cfg.out), kind="weights") as tmp:
        (tmp / "adapter_model.safetensors").write_bytes((adapter / "adapter_model.safetensors").read_bytes())
        acfg = json.loads((adapter / "adapter_config.json").read_text())
        acfg["base_model_name_or_path"] = cfg.policy  # as configured (repo-relative), not this machine's path
        (tmp / "adapter_config.json").write_text(json.dumps(acfg, indent=2) + "\n")
        (tmp / "manifest.json").write_text(json.dumps({
            "model": "GRPO LoRA adapter (peft format, as the released checkpoint-10000) on the demo multi-scale VLM",
            **header(device), "config": asdict(cfg), "wall_s_this_run": round(wall, 1), "policy": cfg.policy,
            "critic_agreement_val": agreement,
            "val_before": before, "val_after": after}, indent=1) + "\n")
        (tmp / "history.json").write_text(json.dumps(hist) + "\n")
    return Path(cfg.out), Path(cfg.critic_out)

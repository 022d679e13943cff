"""GRPO on the demo VLM (``make weights``): the demo critic, then trl's GRPOTrainer with a peft LoRA.

1. ``train_critic``: a fresh tiny Qwen2.5-VL learns to answer ``critic.truth_score`` (F1 of a
   candidate prompt's words against the truth, 0-100) for (coarser view, zoomed view, candidate)
   from ZoomWorld train views with candidates of varied quality (``critic.candidate_prompts``).
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

from .prompts import PromptTrainConfig, view_images

#: The released adapter's LoRA (PAPER.md section 3): the language model's projections only.
LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass
class GRPOTrainConfig:
    out: str = "data/weights/vlm-grpo-demo"
    critic_out: str = "data/weights/critic-demo"
    work: str = "build/train/grpo"
    policy: str = "data/weights/vlm-demo/multiscale"
    # the extractor samples: training.prompts' own (same folder and counts, so the same cache)
    data_work: str = PromptTrainConfig.work
    samples: int = PromptTrainConfig.samples
    val_samples: int = PromptTrainConfig.val_samples
    critic_steps: int = 1200
    critic_batch: int = 16
    critic_lr: float = 1e-3
    steps: int = 300
    prompts_per_step: int = 4        # views per optimizer step
    num_generations: int = 8         # the group size (the paper's [S] 2); with 4, 42% of groups got one reward for all (no signal)
    max_completion_length: int = 24
    learning_rate: float = 2e-4
    beta: float = 0.2                # KL to the supervised policy (the paper's value is unknown); 0.04 lost precision
    temperature: float = 1.0
    lora_r: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    save_steps: int = 50
    seed: int = 0
    device: str = "auto"

    @classmethod
    def smoke(cls, **kw) -> "GRPOTrainConfig":
        base = dict(critic_steps=4, critic_batch=2, steps=2, prompts_per_step=2, num_generations=2,
                    max_completion_length=6, save_steps=1, samples=24, val_samples=4)
        base.update(kw)
        return cls(**base)


# -- the demo critic ----------------------------------------------------------------------------

def train_critic(data: dict, cfg: GRPOTrainConfig, device: str, log=print):
    """A fresh tiny Qwen2.5-VL taught to answer truth_score; returns (model, processor, stage)."""
    from ..grpo.critic import candidate_prompts, critic_messages, truth_score
    from .prompts import sft_stage

    def batch(i: int):
        rng = random.Random(cfg.seed * 1_000_003 + i)
        idx = [rng.randrange(len(data["prompt"])) for _ in range(cfg.critic_batch)]
        cands = [candidate_prompts(data["prompt"][j], rng, 1)[0] for j in idx]
        return ([critic_messages(c) for c in cands], [view_images(data, j) for j in idx],
                [str(round(truth_score(c, data["words"][j]))) for c, j in zip(cands, idx)])

    return sft_stage("critic", cfg.seed + 7, cfg.critic_steps, cfg.critic_lr, cfg.work, device, batch, log)


def critic_agreement(critic, data: dict, n_per_view: int = 2, seed: int = 1) -> dict:
    """How well a critic's scores follow the truth on held-out views: Pearson and Spearman
    correlation with ``truth_score``, mean absolute error (0-100), share of unparsable answers."""
    from ..grpo.critic import candidate_prompts, truth_score
    rng = random.Random(seed)
    pairs, cands, truths = [], [], []
    for j in range(len(data["prompt"])):
        for c in candidate_prompts(data["prompt"][j], rng, n_per_view):
            pairs.append(view_images(data, j))
            cands.append(c)
            truths.append(truth_score(c, data["words"][j]))
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
    from ..grpo.rewards import WEIGHTS, critic_reward, phrase_reward, repetition_reward
    from ..prompts.vlm import load_vlm
    from ..paths import resolve
    model, proc = load_vlm(resolve(cfg.policy), None, "cpu", "float32")
    cuda = device.startswith("cuda")
    out_dir = Path(cfg.work) / "trainer"
    args = GRPOConfig(
        output_dir=str(out_dir), max_steps=cfg.steps, per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations,
        num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_length,
        learning_rate=cfg.learning_rate, beta=cfg.beta, temperature=cfg.temperature,
        reward_weights=[WEIGHTS["critic"], WEIGHTS["phrase"], WEIGHTS["repetition"]],
        logging_steps=1, save_steps=cfg.save_steps, save_total_limit=2, seed=cfg.seed, bf16=cuda,
        use_cpu=not cuda, report_to="none", disable_tqdm=True, lr_scheduler_type="cosine",
        warmup_steps=max(1, cfg.steps // 20), dataloader_num_workers=0)
    trainer = GRPOTrainer(model=model, reward_funcs=[critic_reward(critic), phrase_reward(), repetition_reward()],
                          args=args, train_dataset=grpo_dataset(data), processing_class=proc, peft_config=lora_config(cfg))
    resume = _resumable(out_dir, log)
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=True if resume else None)
    hist = [r for r in trainer.state.log_history if "reward" in r]
    log(f"[grpo] {cfg.steps} steps in {(time.perf_counter() - t0) / 60:.1f} min; last: "
        + json.dumps({k: round(v, 4) for k, v in hist[-1].items() if k.startswith("rewards/") or k == "reward"} if hist else {}))
    return trainer, hist


def train(cfg: GRPOTrainConfig, log=print) -> tuple[Path, Path]:
    """Critic, its agreement with the truth, GRPO, the policy before/after on held-out views; export
    the critic (a model folder) and the adapter (peft's format, as the released checkpoint) with manifests."""
    import platform
    import torch
    import transformers
    from ..grpo.critic import VLMCritic
    from ..imageio import atomic_dir
    from ..paths import resolve
    from ..prompts.vlm import load_vlm
    from ..runtime import resolve_device, seed_everything
    from .prompts import cached_samples, score_prompts, vlm_prompts
    from .sr import _device_name, _git_commit
    transformers.utils.logging.disable_progress_bar()
    device = resolve_device(cfg.device)
    t0 = time.perf_counter()
    seed_everything(cfg.seed)
    pcfg = PromptTrainConfig(samples=cfg.samples, val_samples=cfg.val_samples, work=cfg.data_work, seed=cfg.seed,
                             workers=1 if cfg.samples < 100 else 2)
    data = cached_samples(pcfg, "train", pcfg.samples, log)
    val = cached_samples(pcfg, "val", pcfg.val_samples, log)
    critic_model, critic_proc, cstage = train_critic(data, cfg, device, log)
    critic = VLMCritic(critic_model, critic_proc, "training")
    agreement = critic_agreement(critic, val)
    log(f"[eval] critic vs truth on val: {json.dumps(agreement)}")
    before_model, before_proc = load_vlm(resolve(cfg.policy), None, device)
    before = score_prompts(vlm_prompts(before_model, before_proc, val, True), val)
    trainer, hist = train_grpo(data, critic, cfg, device, log)
    adapter = Path(cfg.work) / "adapter"
    trainer.model.save_pretrained(adapter)  # peft: adapter_config.json + adapter_model.safetensors
    tuned, _ = load_vlm(resolve(cfg.policy), adapter, device)  # through the same path as a released adapter
    after = score_prompts(vlm_prompts(tuned, before_proc, val, True), val)
    log(f"[eval] policy on val before GRPO: {json.dumps(before['all'])}; after: {json.dumps(after['all'])}")
    wall = time.perf_counter() - t0
    common = {"code_commit": _git_commit(), "device": _device_name(device), "host": platform.node(),
              "torch": torch.__version__, "wall_s_this_run": round(wall, 1)}
    with atomic_dir(Path(cfg.critic_out)) as tmp:
        critic_model.to("cpu").save_pretrained(tmp)
        critic_proc.save_pretrained(tmp)
        (tmp / "manifest.json").write_text(json.dumps({
            "model": "tiny Qwen2.5-VL critic, trained to answer 100 x F1 of a prompt's words vs ZoomWorld truth",
            **common, "config": asdict(cfg), "steps": cfg.critic_steps, "wall_s": round(cstage.wall_s, 1),
            "final": cstage.history[-1] if cstage.history else None, "agreement_val": agreement}, indent=1) + "\n")
    with atomic_dir(Path(cfg.out)) as tmp:
        (tmp / "adapter_model.safetensors").write_bytes((adapter / "adapter_model.safetensors").read_bytes())
        acfg = json.loads((adapter / "adapter_config.json").read_text())
        acfg["base_model_name_or_path"] = cfg.policy  # as configured (repo-relative), not this machine's path
        (tmp / "adapter_config.json").write_text(json.dumps(acfg, indent=2) + "\n")
        (tmp / "manifest.json").write_text(json.dumps({
            "model": "GRPO LoRA adapter (peft format, as the released checkpoint-10000) on the demo multi-scale VLM",
            **common, "config": asdict(cfg), "policy": cfg.policy, "critic_agreement_val": agreement,
            "val_before": before, "val_after": after}, indent=1) + "\n")
        (tmp / "history.json").write_text(json.dumps(hist) + "\n")
    return Path(cfg.out), Path(cfg.critic_out)

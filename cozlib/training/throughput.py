"""Training throughput on the device at hand (notebook 04): the demo SR stages, GRPO steps, and at
paper scale one LoRA training step of SD3-medium's transformer and of Qwen2.5-VL-3B (random
weights at the published configurations: speed does not depend on the weights' values).

Each measurement returns rows {what, device, batch, steps_per_s, items_per_s, peak_mem_mb}; peak
memory is the GPU's (torch.cuda.max_memory_allocated) on CUDA and the process's resident set on
the CPU. Targets and comparisons live in bench/, not here.
"""
from __future__ import annotations

import copy
import resource
import tempfile
import time
from dataclasses import replace


def _reset_peak(device: str) -> None:
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_mb(device: str) -> float:
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _row(what: str, device: str, batch: int, steps: int, seconds: float, per_step_items: int) -> dict:
    return {"what": what, "device": device, "batch": batch, "steps_per_s": steps / seconds,
            "items_per_s": steps * per_step_items / seconds, "peak_mem_mb": _peak_mb(device)}


def sr_stages(device: str, steps: int = 20, pairs: int = 64, preset: str = "cpu") -> list[dict]:
    """The demo SR training stages (VAE, base, the one-step perceptual stage) on a small set of
    ZoomWorld pairs. Each stage runs three times from the same start: ``steps // 5`` steps to warm up
    (CUDA's first kernels, allocator), then ``steps // 5`` and ``steps // 5 + steps`` steps; the time
    is the difference of the last two, so set-up and the final checkpoint cancel out."""
    from ..config import build
    from .sr import SRTrainConfig, make_pairs, train_base, train_sr, train_vae
    from .tiny import build_pipeline
    cfg = build(SRTrainConfig, "sr", preset, dict(pairs=pairs, val_pairs=4, workers=1, device=device))
    data = make_pairs(cfg, "train", pairs, photos=False)
    pipe = build_pipeline(0)
    for enc in (pipe.text_encoder, pipe.text_encoder_2, pipe.text_encoder_3):
        enc.to(device).eval().requires_grad_(False)
    rows = []
    warm = max(1, steps // 5)
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn, batch in (("vae", train_vae, cfg.batch_vae), ("base", train_base, cfg.batch_base),
                                ("sr-perceptual", None, cfg.batch_sr)):
            walls = []
            for k, n in enumerate((warm, warm, warm + steps)):
                c = replace(cfg, work=f"{tmp}/{name}-{k}", steps_vae=n, steps_base=n, steps_sr=n,
                            steps_critic=2, steps_chain=0)  # the SR stage is timed, not its critic or chain part
                p = copy.copy(pipe)
                p.transformer, p.vae = copy.deepcopy(pipe.transformer), copy.deepcopy(pipe.vae)
                _reset_peak(device)
                if fn is None:
                    stage = train_sr(p, data, c, device, "perceptual", lambda *_: None)[2]
                else:
                    stage = fn(p, data, c, device, lambda *_: None)
                walls.append(stage.wall_s)
            rows.append(_row(f"demo SR: {name}", device, batch, steps, max(walls[2] - walls[1], 1e-9), batch))
    return rows


def grpo_steps(device: str, steps: int = 4) -> list[dict]:
    """GRPO steps (trl GRPOTrainer, demo policy, demo critic, LoRA) on a few ZoomWorld views: steps/s
    and completions/s (views x group size per step)."""
    from ..grpo.critic import load_critic
    from .grpo import GRPOTrainConfig, train_grpo
    from .prompts import PromptTrainConfig, make_samples
    critic = load_critic(None, device)
    data = make_samples(PromptTrainConfig(workers=1), "train", 16)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = GRPOTrainConfig(steps_grpo=steps, work=tmp, save_steps=10 * steps, device=device)
        _reset_peak(device)
        t = time.perf_counter()
        _, hist = train_grpo(data, critic, cfg, device, lambda *_: None)
        wall = time.perf_counter() - t
    per_step = cfg.prompts_per_step * cfg.num_generations
    times = [r["step_time"] for r in hist if "step_time" in r][1:]  # trl's own per-step time; the first step warms up
    if times:
        return [_row("demo GRPO step (generation + critic + update), steps after the first", device, per_step,
                     len(times), sum(times), per_step)]
    # an older trl logs no step_time: the whole run, loading and set-up included (a lower bound on speed)
    return [_row("demo GRPO step (generation + critic + update), whole run", device, per_step, steps, wall, per_step)]


def paper_scale_steps(device: str, steps: int = 3) -> list[dict]:
    """One LoRA training step (bf16 autocast) of SD3-medium's transformer at 512 px (64x64 latents,
    LoRA rank 4 on the AdaLayerNormZero linears) and of Qwen2.5-VL-3B on two 512 px images (LoRA
    r=8 on the language model's projections); random weights at the published sizes. CUDA only."""
    import torch
    if not device.startswith("cuda"):
        return []
    rows = [_sd3_lora_step(device, steps)]
    torch.cuda.empty_cache()
    rows.append(_qwen_lora_step(device, steps))
    return rows


# SD3-medium's transformer (its config.json) and Qwen2.5-VL-3B-Instruct's, at the published sizes
SD3_MEDIUM = dict(sample_size=128, patch_size=2, in_channels=16, num_layers=24, attention_head_dim=64,
                  num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536,
                  pooled_projection_dim=2048, out_channels=16, pos_embed_max_size=192)
QWEN25_VL_3B = dict(
    text_config=dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                     num_attention_heads=16, num_key_value_heads=2, max_position_embeddings=128000,
                     rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]}),
    vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                       fullatt_block_indexes=[7, 15, 23, 31], window_size=112), tie_word_embeddings=True)


def _sd3_lora_step(device: str, steps: int, config: dict = SD3_MEDIUM, latent: int = 64, text_tokens: int = 333) -> dict:
    """Time LoRA steps of an SD3 transformer built from ``config`` on ``device`` (bf16 autocast)."""
    import torch
    from diffusers import SD3Transformer2DModel
    from ..backbones.osediff import adaln_linear_names, add_transformer_lora
    with torch.device(device):  # built where it runs: 2B parameters initialised on the GPU, not the CPU
        tr = SD3Transformer2DModel(**config)
    tr.requires_grad_(False)
    add_transformer_lora(tr, 4, adaln_linear_names(tr))
    tr.to(device)
    opt = torch.optim.AdamW([p for p in tr.parameters() if p.requires_grad], lr=1e-5)
    z = torch.randn(1, config["in_channels"], latent, latent, device=device)
    pe = torch.randn(1, text_tokens, config["joint_attention_dim"], device=device)
    pooled = torch.randn(1, config["pooled_projection_dim"], device=device)

    def sd3_step():
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            v = tr(hidden_states=z, timestep=torch.full((1,), 999.0, device=device), encoder_hidden_states=pe,
                   pooled_projections=pooled, return_dict=False)[0]
            loss = (v.float() ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return _timed(f"paper scale: SD3-medium transformer LoRA step, {8 * latent} px", device, sd3_step, steps, 1)


def _qwen_lora_step(device: str, steps: int, config: dict = QWEN25_VL_3B, patches: int = 36) -> dict:
    """Time LoRA steps of a Qwen2.5-VL built from ``config`` on ``device`` (bf16 weights), on two
    images of ``patches`` x ``patches`` 14 px patches each (36: 504 px, Qwen's smart resize of 512)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from .grpo import LORA_TARGETS
    cfg = Qwen2_5_VLConfig(**copy.deepcopy(config))
    with torch.device(device):
        vlm = Qwen2_5_VLForConditionalGeneration(cfg).to(torch.bfloat16)
    vlm = get_peft_model(vlm, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, target_modules=LORA_TARGETS))
    opt = torch.optim.AdamW([p for p in vlm.parameters() if p.requires_grad], lr=1e-5)
    grid = torch.tensor([[1, patches, patches], [1, patches, patches]], device=device)
    n_img = int(grid.prod(-1).sum()) // 4  # the merger joins 2x2 patches into one token
    ids = torch.cat([torch.full((1, n_img), cfg.image_token_id), torch.randint(0, min(1000, cfg.text_config.vocab_size // 2), (1, 60))], 1).to(device)
    pix_dim = 3 * cfg.vision_config.temporal_patch_size * cfg.vision_config.patch_size ** 2
    pix = torch.randn(int(grid.prod(-1).sum()), pix_dim, device=device, dtype=torch.bfloat16)

    def vlm_step():
        out = vlm(input_ids=ids, pixel_values=pix, image_grid_thw=grid, labels=ids)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    return _timed(f"paper scale: Qwen2.5-VL-3B LoRA step, two {14 * patches} px images", device, vlm_step, steps, 1)


def _timed(what: str, device: str, fn, steps: int, items: int) -> dict:
    import torch
    fn()  # warm-up
    _reset_peak(device)
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return _row(what, device, 1, steps, time.perf_counter() - t, items)


#: The committed demo weights and the manifest field that records each one's training time.
TRAINED = (("osediff-demo", "train sr", "wall_s_all_stages"), ("vlm-demo", "train prompts (two VLM variants)",
           "wall_s_all_stages"), ("dape-demo", "train prompts (the tagger)", "wall_s_all_stages"),
           ("vlm-grpo-demo", "train grpo (the run that wrote the adapter; with the critic when it trained it)",
            "wall_s_this_run"),
           ("vlm-grpo-demo-critic2", "train grpo --preset critic2", "wall_s_this_run"))


def training_times(root: str = "data/weights") -> list[list]:
    """[weights folder, what trained it, device, seconds, manifest field] of every committed demo model,
    read from its manifest (a missing folder is left out)."""
    import json
    from ..paths import resolve
    rows = []
    for folder, what, field in TRAINED:
        path = resolve(root) / folder / "manifest.json"
        if path.is_file():
            m = json.loads(path.read_text())
            if m.get(field) is not None:
                rows.append([folder, what, m.get("device", "?"), float(m[field]), field])
    return rows


def beside_record(rows: list[dict], record: str = "bench/results/h200-2026-11-27-training_throughput.csv") -> list[list]:
    """[what, GPU steps/s, that machine's CPU steps/s, GPU / its CPU, this run's device and steps/s, GPU /
    this run] per measurement of the committed GPU record (``rows`` from this run; None where absent)."""
    import csv
    from ..paths import resolve
    with open(resolve(record), newline="") as f:
        rec = list(csv.DictReader(f))
    gpu = {r["what"]: float(r["steps/s"]) for r in rec if r["device"].startswith("cuda")}
    cpu = {r["what"]: float(r["steps/s"]) for r in rec if r["device"] == "cpu"}
    here = {r["what"]: (r["device"], r["steps_per_s"]) for r in rows}
    out = []
    for what, g in gpu.items():
        c, (dev, h) = cpu.get(what), here.get(what, (None, None))
        out.append([what, g, c, None if c is None else g / c, dev, h, None if h is None else g / h])
    return out

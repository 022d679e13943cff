"""The stages of the demo SR training, each a resumable ``loop.Stage``:

1. ``vae``: the tiny 16-channel AutoencoderKL reconstructs crops (L1 + a small KL); its
   ``shift_factor`` / ``scaling_factor`` are then set from its latents' mean and spread, as SD3's.
2. ``base``: the tiny SD3Transformer2DModel learns text-to-image rectified flow on those latents
   (SD3's objective, logit-normal sigmas), prompts = the views' own words: our stand-in for the
   pretrained SD3. The text encoders stay frozen at their seeded initialisation, as SD3's are frozen.
3. ``critic``: a small word classifier learns the views' words from their HR images, then stays
   frozen: the feature network of ``losses.critic_loss`` (LPIPS's VGG at paper scale).
4. ``sr-perceptual`` / ``sr-l2``: OSEDiff's one-step 4x stage, LoRA on the transformer and the VAE
   encoder, x = D(z - v(z, c)) with z = E(x_lr) (docs/PAPER.md §5); loss ``losses.sr_loss``.
5. ``sr-<variant>-chain``: the same stage goes on with a share of every batch from its own chain
   states (``chain_data``).
"""
from __future__ import annotations

import copy
import functools
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ...errors import ConfigError
from ...imageio import load_tensors
from ..loop import Stage, autocast, cosine_lr
from .config import SRTrainConfig
from .data import SR_PAIRS_SEED, batch_of, own_words, pairs_from, save_pairs, word_vector
from .losses import base_latent, flow_noise, sr_loss

#: Transformer modules given LoRA beyond the AdaLayerNormZero linears in the demo model (regexes on
#: module names, as peft takes them). At 2M parameters a rank-4 LoRA on the modulation alone cannot
#: turn a weak generator into an SR model; SD3-medium's prior is what lets the paper's do that.
DEMO_LORA = [r"transformer_blocks\.\d+\.attn\.(to_q|to_k|to_v|to_out\.0|add_q_proj|add_k_proj|add_v_proj|to_add_out)",
             r"transformer_blocks\.\d+\.ff\.net\.(0\.proj|2)", "pos_embed.proj", "proj_out"]


class PromptCache:
    """SD3's prompt encoding (``encode_prompt``), memoised per prompt text: the text encoders are
    frozen and a training set has a few hundred distinct prompts, so each is encoded once."""

    def __init__(self, pipe, device: str, max_len: int) -> None:
        self.pipe, self.device, self.max_len = pipe, device, max_len
        self.table: dict[str, tuple] = {}

    def __call__(self, prompts: list[str]):
        import torch
        new = sorted({p for p in prompts if p not in self.table})
        if new:
            with torch.no_grad():
                pe, _, pooled, _ = self.pipe.encode_prompt(prompt=new, prompt_2=None, prompt_3=None, device=self.device,
                                                           do_classifier_free_guidance=False,
                                                           max_sequence_length=self.max_len)
            self.table.update({p: (pe[i], pooled[i]) for i, p in enumerate(new)})
        rows = [self.table[p] for p in prompts]
        return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])


def text_encoders(pipe) -> list:
    """The pipeline's text encoders that are present (T5 may be dropped)."""
    return [e for e in (pipe.text_encoder, pipe.text_encoder_2, pipe.text_encoder_3) if e is not None]


def _set_lr(opt, step: int, steps: int, base: float) -> None:
    for g in opt.param_groups:
        g["lr"] = cosine_lr(step, steps, base)


def train_vae(pipe, data, cfg: SRTrainConfig, device: str, log=print) -> Stage:
    """Stage 1: L1 reconstruction + ``kl_weight`` x KL per element, on ``vae_crop`` px crops."""
    import torch
    vae = pipe.vae.to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr_vae, weight_decay=0.0)
    stage = Stage("vae", cfg.steps_vae, Path(cfg.work) / "ckpt", {"vae": vae, "opt": opt})

    def step(i: int) -> dict:
        hr, _, _ = batch_of(data, i, cfg.batch_vae, cfg.seed + 1, device)
        c = cfg.vae_crop
        if c < hr.shape[-1]:
            o = np.random.default_rng([cfg.seed, i, 5]).integers(0, hr.shape[-1] - c + 1, 2)
            hr = hr[:, :, o[0]:o[0] + c, o[1]:o[1] + c]
        _set_lr(opt, i, cfg.steps_vae, cfg.lr_vae)
        with autocast(device):
            dist = vae.encode(hr).latent_dist
            rec = vae.decode(dist.sample()).sample
            l1 = (rec.float() - hr).abs().mean()
            kl = dist.kl().mean() / hr[0].numel()
        loss = l1 + cfg.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"l1": l1.item(), "kl": kl.item()}

    stage.run(step, log)
    vae.eval()
    with torch.no_grad():  # SD3-style latent normalisation from the trained VAE's latents (deterministic)
        zs = torch.cat([vae.encode(data["hr"][i:i + 64].to(device).float() / 127.5 - 1).latent_dist.mode()
                        for i in range(0, min(len(data["prompt"]), 512), 64)])
    vae.register_to_config(shift_factor=float(zs.mean()), scaling_factor=float(1.0 / zs.std()))
    return stage


def train_base(pipe, data, cfg: SRTrainConfig, device: str, log=print) -> Stage:
    """Stage 2: SD3's rectified flow, || v(z_t, t, c) - (e - z) ||^2 with z_t = (1 - s) z + s e and
    logit-normal s, on the VAE's latents; prompts are the views' own words."""
    import torch
    from ...backbones.osediff import places
    tr, vae = pipe.transformer.to(device).train(), pipe.vae.to(device).eval()
    params = list(tr.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr_base, weight_decay=0.01)
    stage = Stage("base", cfg.steps_base, Path(cfg.work) / "ckpt", {"transformer": tr, "opt": opt})
    encode = PromptCache(pipe, device, pipe.tokenizer.model_max_length)
    own = own_words(data)
    if cfg.random_places:
        places.use_places(tr)

    def step(i: int) -> dict:
        hr, _, prompts = batch_of(own, i, cfg.batch_base, cfg.seed + 2, device, cfg.prompt_dropout_base)
        if cfg.random_places:
            tr.pos_embed.places = places.random_places(len(prompts), cfg.places_span, [cfg.seed, i, 19],
                                                       cfg.places_step)
        _set_lr(opt, i, cfg.steps_base, cfg.lr_base)
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed * 1_000_003 + i)
        with torch.no_grad():
            z = base_latent(vae, hr)
        _, e, x_t, t = flow_noise(z, torch.sigmoid(torch.randn(z.shape[0], generator=gen)), gen)  # logit-normal sigmas
        with autocast(device):
            pe, pooled = encode(prompts)
            v = tr(hidden_states=x_t, timestep=t, encoder_hidden_states=pe, pooled_projections=pooled,
                   return_dict=False)[0]
            loss = ((v.float() - (e - z)) ** 2).mean()
        if cfg.random_places:
            tr.pos_embed.places = None
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return {"flow": loss.item()}

    stage.run(step, log)
    tr.eval()
    return stage


def train_word_critic(data: dict, cfg: SRTrainConfig, device: str, log=print):
    """Stage 3: a small classifier of the views' words (the demo tagger's network), binary
    cross-entropy per vocabulary word; frozen afterwards. Its features know which texture goes with
    which word, as VGG's know ImageNet's classes for LPIPS. Returns (net, stage)."""
    import torch
    import torch.nn.functional as F
    from ...prompts.dape import make_tagger_net
    from ...world.vocab import vocabulary
    with torch.random.fork_rng(devices=[]):  # its own seed, without moving the other stages' RNG
        torch.manual_seed(cfg.seed + 11)
        net = make_tagger_net(len(vocabulary())).to(device).train()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr_critic, weight_decay=1e-4)
    stage = Stage("critic", cfg.steps_critic, Path(cfg.work) / "ckpt", {"net": net, "opt": opt})
    own = own_words(data)

    def step(i: int) -> dict:
        hr, _, prompts = batch_of(own, i, cfg.batch_critic, cfg.seed + 11, device)
        _set_lr(opt, i, cfg.steps_critic, cfg.lr_critic)
        loss = F.binary_cross_entropy_with_logits(net(hr), word_vector(prompts, device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"bce": loss.item()}

    stage.run(step, log)
    return net.eval().requires_grad_(False), stage


def sr_model(pipe, cfg: SRTrainConfig, device: str):
    """The one-step SR model to train: copies of the base transformer and VAE with fresh LoRA
    (the paper's AdaLayerNormZero linears plus ``DEMO_LORA``; the VAE encoder). Returns (model, LoRA names)."""
    import re
    from ...backbones.osediff import OSEDiffOptions, OSEDiffSD3, add_transformer_lora, add_vae_encoder_lora, adaln_linear_names
    p = copy.copy(pipe)
    p.transformer, p.vae = copy.deepcopy(pipe.transformer).to(device), copy.deepcopy(pipe.vae).to(device)
    p.transformer.requires_grad_(False)
    p.vae.requires_grad_(False)
    extra = [n for n, _ in p.transformer.named_modules() if any(re.fullmatch(x, n) for x in DEMO_LORA)]
    names = add_transformer_lora(p.transformer, cfg.lora_rank, adaln_linear_names(p.transformer) + extra)
    add_vae_encoder_lora(p.vae, cfg.vae_lora_rank)
    opts = OSEDiffOptions(lora_rank=cfg.lora_rank, vae_lora_rank=cfg.vae_lora_rank, extra_lora_targets=extra,
                          max_sequence_length=pipe.tokenizer.model_max_length,
                          latent_tile=cfg.size // 4, latent_tile_overlap=cfg.size // 16, phase_average=cfg.phase_average,
                          tile_places=cfg.random_places)
    model = OSEDiffSD3(p, opts, "osediff-demo-training", "training", device)
    model.lora_targets = names
    return model, names


def train_sr(pipe, data, cfg: SRTrainConfig, device: str, variant: str, log=print, pre_stages: list | None = None,
             critic_data: dict | None = None):
    """Stage 4 (and 4b when ``steps_chain`` > 0): OSEDiff's one-step stage of ``variant`` (perceptual
    or l2). The stages that run first (the word critic, the first part before the chain part) are
    appended to ``pre_stages``; the critic learns from ``critic_data`` (default ``data``).
    Returns (model, LoRA names, the last stage)."""
    import torch
    from ...backbones.osediff import places
    if variant not in ("perceptual", "l2"):
        raise ConfigError(f"unknown SR training variant {variant!r}; choose perceptual or l2")
    model, names = sr_model(pipe, cfg, device)
    params = [p for p in list(model.transformer.parameters()) + list(model.vae.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr_sr, weight_decay=0.0)
    mods = {"transformer": model.transformer, "vae": model.vae, "opt": opt}
    perceptual = variant == "perceptual"
    stage = Stage(f"sr-{variant}", cfg.steps_sr, Path(cfg.work) / "ckpt", mods)
    encode = PromptCache(pipe, device, pipe.tokenizer.model_max_length)
    pre = pre_stages if pre_stages is not None else []
    critic = None
    if perceptual and cfg.critic_weight > 0:
        critic, st = train_word_critic(data if critic_data is None else critic_data, cfg, device, log)
        pre.append(st)

    def rendered(i: int):
        """Step ``i``'s batch of rendered pairs."""
        return batch_of(data, i, cfg.batch_sr, cfg.seed + 3, device, cfg.prompt_dropout_sr)

    def step(i: int, draw: Callable = rendered, steps: int = cfg.steps_sr, base_lr: float = cfg.lr_sr) -> dict:
        hr, lr, prompts = draw(i)
        _set_lr(opt, i, steps, base_lr)
        pe, pooled = encode(prompts)
        if cfg.random_places:
            model.places = places.random_places(len(prompts), cfg.places_span, [cfg.seed, i, 23, steps],
                                                  cfg.places_step)
        with autocast(device):
            out = model.one_step(lr, pe, pooled).float()
            loss, row = sr_loss(out, hr, cfg, perceptual, critic)
        model.places = None
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return row

    stage.run(step, log)
    if cfg.steps_chain > 0:
        stage = chain_stage(model, mods, data, cfg, device, variant, stage, step, pre, log)
    model.transformer.eval()
    model.vae.eval()
    return model, names, stage


def weights_digest(*nets) -> str:
    """A short hash of the trainable parameters of ``nets`` (what a run's cached data depends on)."""
    import hashlib
    h = hashlib.sha256()
    for net in nets:
        for name, p in net.named_parameters():
            if p.requires_grad:
                h.update(name.encode() + p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:12]


def chain_stage(model, mods: dict, data: dict, cfg: SRTrainConfig, device: str, variant: str,
                first: Stage, step: Callable, pre: list, log=print) -> Stage:
    """Stage 4b: ``chain_data.chain_pairs`` made by the model as ``first`` left it, then
    ``steps_chain`` more steps with a ``chain_share`` of every batch from them and a fresh cosine
    schedule from ``lr_chain``. The pairs are cached in ``cfg.work`` under a hash of those weights, so
    a resumed run sees the pairs an uninterrupted one would; a finished stage just loads."""
    import torch
    from ...world import RENDER_VERSION
    from .chain_data import chain_pairs
    pre.append(first)
    stage = Stage(f"sr-{variant}-chain", cfg.steps_chain, Path(cfg.work) / "ckpt", mods)
    if stage.finished():
        return stage.run(step, log)
    path = Path(cfg.work) / (f"chain-{variant}-{cfg.chain_pairs}-{cfg.size}-{cfg.seed}-d{cfg.chain_depth}"
                             f"-c{cfg.prompt_context}-{weights_digest(model.transformer, model.vae)}-r{RENDER_VERSION}"
                             ".safetensors")
    got = load_tensors(path, log)
    if got is not None:
        chain = pairs_from(got)
    else:
        t = time.perf_counter()
        modes = [(net, net.training) for net in (model.transformer, model.vae)]
        for net, _ in modes:
            net.eval()
        chain = chain_pairs(model, cfg, cfg.chain_pairs, cfg.seed + 2 * SR_PAIRS_SEED, log)
        for net, was in modes:
            net.train(was)
        save_pairs(chain, path)
        log(f"[data] {cfg.chain_pairs} chain-state pairs made in {time.perf_counter() - t:.0f} s")
    k = int(round(cfg.batch_sr * cfg.chain_share))

    def mixed(i: int):
        """Step ``i``'s batch: ``batch_sr - k`` rendered pairs, ``k`` chain-state pairs."""
        parts = [(d, n, sd) for d, n, sd in ((data, cfg.batch_sr - k, cfg.seed + 5), (chain, k, cfg.seed + 6)) if n]
        drawn = [batch_of(d, i, n, sd, device, cfg.prompt_dropout_sr) for d, n, sd in parts]
        return torch.cat([b[0] for b in drawn]), torch.cat([b[1] for b in drawn]), [p for b in drawn for p in b[2]]

    return stage.run(functools.partial(step, draw=mixed, steps=cfg.steps_chain, base_lr=cfg.lr_chain), log)

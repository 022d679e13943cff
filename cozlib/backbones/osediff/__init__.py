"""OSEDiff on Stable Diffusion 3: one-step diffusion SR (docs/PAPER.md §5), at two scales.

The same class runs the paper's model (SD3-medium + the official SR LoRA files) and our tiny demo
model (``data/weights/osediff-demo``, trained by ``cozlib.training.sr``): both are a diffusers
folder (``StableDiffusion3Pipeline`` layout) plus two LoRA files in the official formats.

One step (``one_step``), exactly as the official inference code:

    z  = VAE.encode(x_lr).mode() * scaling      # no shift subtracted on encode (official code)
    v  = transformer(z, t=1000, prompt embeddings)   # scheduler.set_timesteps(1): sigma = 1
    z0 = z - sigma * v
    x  = VAE.decode(z0 / scaling + shift)       # ... but the shift is added on decode

The encode-without-shift detail matters: the model was trained on latents that keep the VAE's
mean offset, so subtracting it would feed it inputs it never saw. SD3's shift is 0.0609 in latent
units; our demo VAE's is set from its own latents' mean.

LoRA (peft): rank 4 on every ``nn.Linear`` inside the transformer's ``AdaLayerNormZero`` modules
(the official ``model_*.pkl``: a list ``[up_0, down_0, up_1, down_1, ...]`` in module order, scale
1) and rank 4 on the VAE encoder's conv and attention layers (the official ``vae_encoder_*.pt``:
the peft-wrapped encoder's whole state dict, adapter ``default_encoder``, lora_alpha 8).
"""
from .load import (DEMO_DIR, PAPER_LORA_FILES, SD3_REPO, demo_folder, demo_lora_files, load_osediff, lora_disabled,
                   lora_report, resolve_sd3, _osediff_demo, _osediff_demo_l2, _osediff_sd3)
from .lora import (SR_ADAPTER, VAE_ADAPTER, adaln_linear_names, add_transformer_lora, add_vae_encoder_lora,
                   load_official_lora, load_vae_encoder, save_official_lora, save_vae_encoder, vae_encoder_lora_names)
from .model import OPTIONS_FILE, OSEDiffOptions, OSEDiffSD3, set_vae_tiling

__all__ = ["DEMO_DIR", "PAPER_LORA_FILES", "SD3_REPO", "OPTIONS_FILE", "SR_ADAPTER", "VAE_ADAPTER", "OSEDiffOptions",
           "OSEDiffSD3", "set_vae_tiling", "adaln_linear_names", "vae_encoder_lora_names", "add_transformer_lora",
           "add_vae_encoder_lora", "load_official_lora", "save_official_lora", "load_vae_encoder", "save_vae_encoder",
           "resolve_sd3", "load_osediff", "demo_folder", "demo_lora_files", "lora_report", "lora_disabled",
           "_osediff_demo", "_osediff_demo_l2", "_osediff_sd3"]

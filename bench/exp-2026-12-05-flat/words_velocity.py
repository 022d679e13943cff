"""Issue 28 measurement: how far the committed model's velocity moves with the words (true vs null, true vs
another sample's words) on 64 val pairs, against its mean square: the scale the distillation's place gap is read on."""
import sys, os, json, torch, numpy as np
sys.path.insert(0, "bench/exp-2026-12-05-flat")
from pathlib import Path
from diffusers import StableDiffusion3Pipeline
from cozlib.config import build
from cozlib.runtime import set_threads
from cozlib.backbones.osediff.lora import load_official_lora, load_vae_encoder
from cozlib.training.sr import SRTrainConfig, cached_pairs, text_encoders
from cozlib.training.sr.stages import sr_model, PromptCache
from cozlib.training.sr.data import batch_of
set_threads(1)
cfg = build(SRTrainConfig, "sr", None, [], work=sys.argv[1], variants=["perceptual"], device="cpu")
src = Path("data/weights/osediff-demo")
pipe = StableDiffusion3Pipeline.from_pretrained(src, dtype=torch.float32)
m, names = sr_model(pipe, cfg, "cpu")
load_official_lora(m.transformer, src / "sr_lora.pkl", names); load_vae_encoder(m.vae, src / "vae_encoder_lora.pt")
m.transformer.eval(); m.vae.eval()
val = cached_pairs(cfg, "val", cfg.val_pairs, False)
enc = PromptCache(pipe, "cpu", pipe.tokenizer.model_max_length)
a, b, c = [], [], []
with torch.no_grad():
    for i in range(8):
        hr, lr, prompts = batch_of(val, i, 8, 99, "cpu", 0.0)
        z = m.encode(lr)
        vt = m.velocity(z, *enc(prompts)); vn = m.velocity(z, *enc([""] * 8))
        vw = m.velocity(z, *enc(prompts[1:] + prompts[:1]))
        a.append(((vt - vn) ** 2).mean().item()); b.append(((vt - vw) ** 2).mean().item()); c.append((vt ** 2).mean().item())
print("true-null", np.mean(a), "true-wrong", np.mean(b), "v^2", np.mean(c))

"""Issue 28 experiment: a short third part of the one-step stage, from the committed weights, in
which one sample of each batch is the flat colour direct SR sees at 256x (one pixel of the base
view, enlarged), with itself as the target (or the truth). The rest of each batch: the chain part's
mixture (rendered pairs + chain-state pairs the model made). Then export and measure."""
import argparse, json, os, time
from pathlib import Path
import numpy as np, torch, sys, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import places_patch
places_patch.install()

ap = argparse.ArgumentParser()
ap.add_argument("--work", required=True)
ap.add_argument("--steps", type=int, default=300)
ap.add_argument("--lr", type=float, default=1e-4)
ap.add_argument("--flat", type=int, default=1, help="flat samples per batch of 8 (0: control)")
ap.add_argument("--target", choices=("identity", "truth", "grid"), default="identity")
ap.add_argument("--flat-prompt", choices=("keep", "null"), default="keep")
ap.add_argument("--flat-grid-weight", type=float, default=1.0)
ap.add_argument("--flat-every", type=int, default=1, help="flat samples only on every n-th step")
ap.add_argument("--places", action="store_true", help="each sample at a random tile place (places_patch)")
ap.add_argument("--chain-pairs", type=int, default=2000)
args = ap.parse_args()

from diffusers import StableDiffusion3Pipeline
from cozlib.config import build
from cozlib.runtime import seed_everything, set_threads
from cozlib.provenance import print_header
from cozlib.backbones.osediff.lora import load_official_lora, load_vae_encoder
from cozlib.training.loop import Stage, autocast
from cozlib.training.sr import SRTrainConfig, cached_pairs, evaluate, export, sr_pairs, text_encoders
from cozlib.training.sr.stages import sr_model, train_word_critic, PromptCache, _set_lr
from cozlib.training.sr.data import batch_of, SR_PAIRS_SEED, pairs_from, save_pairs
from cozlib.training.sr.chain_data import chain_pairs
from cozlib.training.sr.losses import sr_loss
from cozlib.imageio import load_tensors

set_threads(2)
print_header("cpu")
work = Path(args.work)
cfg = build(SRTrainConfig, "sr", None, [], work=str(work), variants=["perceptual"], device="cpu")
print("[args]", json.dumps(vars(args)), flush=True)
seed_everything(cfg.seed)
src = Path("data/weights/osediff-demo")
pipe = StableDiffusion3Pipeline.from_pretrained(src, dtype=torch.float32)
for enc in text_encoders(pipe):
    enc.eval().requires_grad_(False)
model, names = sr_model(pipe, cfg, "cpu")
load_official_lora(model.transformer, src / "sr_lora.pkl", names)
load_vae_encoder(model.vae, src / "vae_encoder_lora.pt")
data = cached_pairs(cfg, "train", cfg.pairs, True)
own = sr_pairs(cfg)
val = cached_pairs(cfg, "val", cfg.val_pairs, False)
critic, _ = train_word_critic(data, cfg, "cpu")
print("[val before]", json.dumps(evaluate(model, val, "cpu")), flush=True)
path = work / f"chain-committed-{args.chain_pairs}.safetensors"
got = load_tensors(path)
if got is not None:
    chain = pairs_from(got)
else:
    t = time.perf_counter()
    model.transformer.eval(); model.vae.eval()
    chain = chain_pairs(model, cfg, args.chain_pairs, cfg.seed + 2 * SR_PAIRS_SEED)
    save_pairs(chain, path)
    print(f"[data] chain pairs in {time.perf_counter() - t:.0f} s", flush=True)
model.transformer.train(); model.vae.train()
params = [p for p in list(model.transformer.parameters()) + list(model.vae.parameters()) if p.requires_grad]
opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
encode = PromptCache(pipe, "cpu", pipe.tokenizer.model_max_length)
k_flat = args.flat
k_chain = 4 if k_flat == 0 else 4 - (k_flat + 1) // 2
k_rend = 8 - k_chain - k_flat

def flat_batch(i, n):
    hr, lr, prompts = batch_of(own, i, n, cfg.seed + 7, "cpu", cfg.prompt_dropout_sr)
    flat = hr.mean((2, 3), keepdim=True).expand_as(hr).contiguous()
    if args.flat_prompt == "null":
        prompts = [""] * n
    return (hr if args.target == "truth" else flat), flat, prompts

def draw(i):
    with_flat = k_flat and i % args.flat_every == 0
    kc, kr = (k_chain, k_rend) if with_flat else (4, 4)
    parts = [batch_of(own, i, kr, cfg.seed + 5, "cpu", cfg.prompt_dropout_sr),
             batch_of(chain, i, kc, cfg.seed + 6, "cpu", cfg.prompt_dropout_sr)]
    if with_flat:
        parts.append(flat_batch(i, k_flat))
    return torch.cat([b[0] for b in parts]), torch.cat([b[1] for b in parts]), [p for b in parts for p in b[2]]

t0 = time.perf_counter()
for i in range(args.steps):
    hr, lr, prompts = draw(i)
    _set_lr(opt, i, args.steps, args.lr)
    pe, pooled = encode(prompts)
    if args.places:
        g = np.random.default_rng([cfg.seed, i, 17])
        places_patch.PLACE["off"] = torch.from_numpy(2.0 * g.integers(0, 25, (len(prompts), 2))).float().repeat(4, 1)
    out = model.one_step(lr, pe, pooled).float()
    places_patch.PLACE["off"] = None
    if args.target == "grid" and k_flat:
        from cozlib.training.sr.losses import l2_loss
        from cozlib.metrics.truth import grid_peaks
        loss, row = sr_loss(out[:-k_flat], hr[:-k_flat], cfg, True, critic)
        of = out[-k_flat:]
        lf_l2, lf_grid = l2_loss(of, hr[-k_flat:], cfg.l2_lowpass), grid_peaks(of).mean()
        loss = loss + k_flat / 8 * (lf_l2 + args.flat_grid_weight * lf_grid)
        row["flat_l2"], row["flat_grid"] = lf_l2.item(), lf_grid.item()
    else:
        loss, row = sr_loss(out, hr, cfg, True, critic)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    if i % 25 == 0 or i == args.steps - 1:
        print(f"[flat] step {i} " + json.dumps({k: round(v, 4) for k, v in row.items()}) + f" {time.perf_counter() - t0:.0f} s", flush=True)
model.transformer.eval(); model.vae.eval()
metrics = evaluate(model, val, "cpu")
print("[val]", json.dumps(metrics), flush=True)
export(pipe, {"perceptual": (model, names)}, cfg, [], metrics, "cpu", time.perf_counter() - t0, work / "weights")
print("[done]", flush=True)

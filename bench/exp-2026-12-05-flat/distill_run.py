"""Issue 28 experiment: teach the committed one-step model its tiles' places by distilling it into
itself. Teacher: the committed weights, every tile at the trained place (the centre crop of the
position table), frozen. Student: the same weights, each 64 px sample at a random tile place
(places_patch), its transformer LoRA trained so that its velocity matches the teacher's on the
same latent and words. Nothing else is asked of it, so what the committed draw does with words
should stay, while a flat input (not in the data) is free to differ from tile to tile. The VAE's
LoRA is frozen (places do not concern it). Then export and measure as run_places.py does."""
import argparse, json, os, sys, time, copy
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import places_patch
places_patch.install()

ap = argparse.ArgumentParser()
ap.add_argument("--work", required=True)
ap.add_argument("--steps", type=int, default=600)
ap.add_argument("--lr", type=float, default=1e-4)
ap.add_argument("--wrong-share", type=float, default=0.2, help="samples whose words are another sample's")
ap.add_argument("--truth-weight", type=float, default=0.0, help="the training loss (sr_loss) on the student's output, added")
ap.add_argument("--chain-pairs", type=int, default=2000)
args = ap.parse_args()

from diffusers import StableDiffusion3Pipeline
from cozlib.config import build
from cozlib.runtime import seed_everything, set_threads
from cozlib.provenance import print_header
from cozlib.backbones.osediff.lora import load_official_lora, load_vae_encoder
from cozlib.training.sr import SRTrainConfig, cached_pairs, evaluate, export, sr_pairs, text_encoders
from cozlib.training.sr.stages import sr_model, PromptCache, _set_lr, train_word_critic
from cozlib.training.sr.data import batch_of, SR_PAIRS_SEED, pairs_from, save_pairs
from cozlib.training.sr.chain_data import chain_pairs
from cozlib.training.sr.losses import sr_loss
from cozlib.imageio import load_tensors

set_threads(2)
print_header("cpu")
work = Path(args.work)
work.mkdir(parents=True, exist_ok=True)
cfg = build(SRTrainConfig, "sr", None, [], work=str(work), variants=["perceptual"], device="cpu")
print("[args]", json.dumps(vars(args)), flush=True)
seed_everything(cfg.seed)
src = Path("data/weights/osediff-demo")
pipe = StableDiffusion3Pipeline.from_pretrained(src, dtype=torch.float32)
for enc in text_encoders(pipe):
    enc.eval().requires_grad_(False)


def committed():
    model, names = sr_model(pipe, cfg, "cpu")
    load_official_lora(model.transformer, src / "sr_lora.pkl", names)
    load_vae_encoder(model.vae, src / "vae_encoder_lora.pt")
    return model, names


model, names = committed()
teacher, _ = committed()
teacher.transformer.eval().requires_grad_(False)
teacher.vae.eval().requires_grad_(False)
own = sr_pairs(cfg)
val = cached_pairs(cfg, "val", cfg.val_pairs, False)
critic = train_word_critic(cached_pairs(cfg, "train", cfg.pairs, True), cfg, "cpu")[0] if args.truth_weight else None
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
model.transformer.train(); model.vae.eval().requires_grad_(False)
params = [p for p in model.transformer.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
encode = PromptCache(pipe, "cpu", pipe.tokenizer.model_max_length)
shifts = pipe.transformer.config.patch_size ** 2


def draw(i):
    """4 rendered + 4 chain-state pairs (the chain part's mixture), a share of the words swapped."""
    parts = [batch_of(own, i, 4, cfg.seed + 5, "cpu", cfg.prompt_dropout_sr),
             batch_of(chain, i, 4, cfg.seed + 6, "cpu", cfg.prompt_dropout_sr)]
    prompts = [p for b in parts for p in b[2]]
    g = np.random.default_rng([cfg.seed, i, 23])
    pool = own["prompt"]
    for j in range(len(prompts)):
        if g.random() < args.wrong_share:
            prompts[j] = pool[int(g.integers(0, len(pool)))]
    return torch.cat([b[0] for b in parts]), torch.cat([b[1] for b in parts]), prompts


def places(n, i, salt=17):
    g = np.random.default_rng([cfg.seed, i, salt])
    return torch.from_numpy(2.0 * g.integers(0, 25, (n, 2))).float()


def gap(steps=8):
    """Student (random places) vs teacher (centre) velocity, mean squared, on val pairs."""
    out = []
    with torch.no_grad():
        for i in range(steps):
            hr, lr, prompts = batch_of(val, i, 8, 99, "cpu", 0.2)
            pe, pooled = encode(prompts)
            z = teacher.encode(lr)
            vt = teacher.velocity(z, pe, pooled)
            places_patch.PLACE["off"] = places(len(prompts), i, 29).repeat(shifts, 1)
            vs = model.velocity(z, pe, pooled)
            places_patch.PLACE["off"] = None
            out.append(((vs - vt) ** 2).mean().item())
    return float(np.mean(out))


print("[gap before]", round(gap(), 5), flush=True)
t0 = time.perf_counter()
for i in range(args.steps):
    hr, lr, prompts = draw(i)
    _set_lr(opt, i, args.steps, args.lr)
    pe, pooled = encode(prompts)
    with torch.no_grad():
        z = teacher.encode(lr)
        vt = teacher.velocity(z, pe, pooled)
    places_patch.PLACE["off"] = places(len(prompts), i).repeat(shifts, 1)
    vs = model.velocity(z, pe, pooled)
    places_patch.PLACE["off"] = None
    loss = ((vs - vt) ** 2).mean()
    row = {"distill": loss.item()}
    if args.truth_weight:
        out = model.decode(z - model.sigma * vs).float()
        lt, r2 = sr_loss(out, hr, cfg, True, critic)
        loss = loss + args.truth_weight * lt
        row.update(r2)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    if i % 25 == 0 or i == args.steps - 1:
        print(f"[distill] step {i} " + json.dumps({k: round(v, 5) for k, v in row.items()})
              + f" {time.perf_counter() - t0:.0f} s", flush=True)
model.transformer.eval()
print("[gap after]", round(gap(), 5), flush=True)
metrics = evaluate(model, val, "cpu")
print("[val]", json.dumps(metrics), flush=True)
export(pipe, {"perceptual": (model, names)}, cfg, [], metrics, "cpu", time.perf_counter() - t0, work / "weights")
print("[done]", flush=True)

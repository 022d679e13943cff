"""Issue 28 experiment: a 'soup' of K one-step-stage draws on the same earlier stages. The transformer
LoRA deltas B_k A_k (scale 1) and the VAE-encoder LoRA deltas (scale alpha/r = 8/4) are averaged
exactly, written as one LoRA of rank K*r (B's concatenated / K, A's stacked; the VAE's scale 8/(4K)
does the 1/K itself)."""
import json, shutil, sys
from pathlib import Path
import torch

out, srcs = Path(sys.argv[1]), [Path(s) for s in sys.argv[2:]]
K = len(srcs)
shutil.copytree(srcs[0], out)
for f in ("sr_lora_l2.pkl", "vae_encoder_lora_l2.pt", ".cozlib"):
    (out / f).unlink(missing_ok=True)
# transformer: official list [up (out x r), down (r x in), ...]
lists = [torch.load(s / "sr_lora.pkl", weights_only=True) for s in srcs]
soup = []
for i in range(0, len(lists[0]), 2):
    soup.append(torch.cat([l[i] for l in lists], dim=1) / K)      # up: B's side by side, / K
    soup.append(torch.cat([l[i + 1] for l in lists], dim=0))      # down: A's stacked
torch.save(soup, out / "sr_lora.pkl")
# VAE encoder: state dict; lora_A.*.weight (r x ...), lora_B.*.weight (out x r x ...), the rest the frozen base
sds = [torch.load(s / "vae_encoder_lora.pt", weights_only=True) for s in srcs]
vae = {}
for k, v in sds[0].items():
    if ".lora_A." in k:
        vae[k] = torch.cat([sd[k] for sd in sds], dim=0)
    elif ".lora_B." in k:
        vae[k] = torch.cat([sd[k] for sd in sds], dim=1)
    else:
        assert all(torch.equal(sd[k], v) for sd in sds), k
        vae[k] = v
torch.save(vae, out / "vae_encoder_lora.pt")
cfg = json.loads((out / "cozlib.json").read_text())
cfg["options"]["lora_rank"] *= K
cfg["options"]["vae_lora_rank"] *= K
(out / "cozlib.json").write_text(json.dumps(cfg, indent=1))
print(f"soup of {K} -> {out}: transformer rank {cfg['options']['lora_rank']}, vae rank {cfg['options']['vae_lora_rank']}")

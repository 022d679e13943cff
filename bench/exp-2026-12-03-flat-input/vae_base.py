import json, sys, torch
sys.argv = ["x"]
src = open("/tmp/s/vae_exp.py").read().split("base = _osediff_demo")[0]
exec(src)
from diffusers import AutoencoderKL
plain = AutoencoderKL.from_pretrained("data/weights/osediff-demo/vae").float().eval()
print("committed plain VAE (no encoder LoRA)", json.dumps(measure(plain), indent=1))
v = AutoencoderKL.from_pretrained("data/weights/osediff-demo/vae").float().eval()
v.load_state_dict(torch.load("build/exp/vae-inputs.pt", weights_only=True), strict=False)

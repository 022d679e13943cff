import numpy as np, torch
torch.set_num_threads(2)
from PIL import Image
from cozlib.experiments.methods import world_inputs
from cozlib.geometry import direct_crop
from cozlib.backbones.osediff.load import _osediff_demo
from cozlib.imageio import pil_to_tensor, tensor_to_pil
from cozlib.metrics.truth import grid_score
m = _osediff_demo(device="cpu")
pe, pooled = m.encode_prompt([""])
images, _ = world_inputs([1010000 + i for i in range(18)], 256)
def per(img):
    a = np.asarray(img.convert("L"), float); ph = a.reshape(32, 8, 32, 8).mean((0, 2)); return (ph - ph.mean()).std(), a.std()
rows = []
for k in (1, 4):
    for name, x0 in images.items():
        inp = direct_crop(x0, 4, k).resize((256, 256), Image.BICUBIC)
        x = pil_to_tensor(inp); x = (x if x.dim() == 4 else x[None]) * 2 - 1
        with torch.no_grad():
            z = m.encode(x)
            rt = m.decode(z)
            out = m.decode(z - m.sigma * m.velocity(z, pe, pooled))
        ims = {"input": inp, "vae_roundtrip": tensor_to_pil(((rt + 1) / 2).clamp(0, 1)), "one_step": tensor_to_pil(((out + 1) / 2).clamp(0, 1))}
        rows.append((4 ** k, name, {n: (grid_score(im), *per(im)) for n, im in ims.items()}))
for zoom in (4, 256):
    sel = [r for z, _, r in rows if z == zoom]
    for n in ("input", "vae_roundtrip", "one_step"):
        g = np.mean([r[n][0] for r in sel]); p = np.mean([r[n][1] for r in sel]); s = np.mean([r[n][2] for r in sel])
        print(f"{zoom}x {n:14s} GRID {g:.2f}  8px-periodic rms {p:.2f}  std {s:.1f}")

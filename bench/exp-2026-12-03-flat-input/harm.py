import numpy as np, torch
torch.set_num_threads(2)
from PIL import Image
from cozlib.experiments.methods import world_inputs
from cozlib.geometry import direct_crop
from cozlib.backbones.osediff.load import _osediff_demo
from cozlib.imageio import pil_to_tensor
from cozlib.metrics.truth import grid_peaks
m = _osediff_demo(device="cpu")
pe, pooled = m.encode_prompt([""])
images, _ = world_inputs([1010000 + i for i in range(18)], 256)
xs = torch.cat([pil_to_tensor(direct_crop(x0, 4, 4).resize((256, 256), Image.BICUBIC)).reshape(1, 3, 256, 256) * 2 - 1 for x0 in images.values()])
with torch.no_grad():
    z = m.encode(xs)
    v = m.velocity(z, pe.repeat(18, 1, 1), pooled.repeat(18, 1))
    outs = {"encode-decode (LoRA encoder)": m.decode(z), "one step": m.decode(z - m.sigma * v),
            "one step, no phase averaging": None}
    m.options.phase_average = False
    outs["one step, no phase averaging"] = m.decode(z - m.sigma * m.velocity(z, pe.repeat(18, 1, 1), pooled.repeat(18, 1)))
    m.options.phase_average = True
    # velocity's own periodicity in the latent: mean over the 2x2 phase classes
    vv = v.reshape(18, v.shape[1], v.shape[2] // 2, 2, v.shape[3] // 2, 2)
    print("velocity rms %.3f, its 2x2-periodic part rms %.4f" % (v.std(), (vv.mean((2, 4)) - vv.mean((2, 3, 4, 5))[..., None, None]).std()))
ky, kx = np.meshgrid(range(8), range(8), indexing="ij")
kind = {"odd (8 px: the patch grid)": ((ky % 2 == 1) | (kx % 2 == 1)), "even (4 px / 2 px: a latent pixel)": ((ky % 2 == 0) & (kx % 2 == 0))}
for name, y in outs.items():
    y = y.clamp(-1, 1)
    p = grid_peaks(y).mean(1).mean(0).numpy()   # [63] harmonics, DC left out
    full = np.concatenate([[0.0], p]).reshape(8, 8)
    a = (y * 127.5)
    ph = a.reshape(18, 3, 32, 8, 32, 8).mean((2, 4)); per = (ph - ph.mean((-2, -1), keepdim=True)).std()
    print(f"{name:32s} GRID {p.mean():.2f}  " + "  ".join(f"{k}: {full[msk].sum() / 63:.2f}" for k, msk in kind.items()) + f"  8px-periodic rms {per:.2f} grey, spread {a.std((-2, -1)).mean():.1f}")

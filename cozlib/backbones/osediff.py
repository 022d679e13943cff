"""OSEDiff on Stable Diffusion 3: one-step diffusion SR (PAPER.md section 5), at two scales.

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
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..errors import ConfigError, MissingWeightsError
from ..imageio import save_torch
from . import register

#: The diffusers repository id of the paper's base model, looked up in the HF cache (offline).
SD3_REPO = "stabilityai/stable-diffusion-3-medium-diffusers"
#: Where the paper-scale files are looked for: $COZ_SD3 (folder or repo id) and $COZ_OSEDIFF_LORA.
PAPER_LORA_FILES = ("model_20001.pkl", "vae_encoder_20001.pt")
DEMO_DIR = "data/weights/osediff-demo"
#: The options a weights folder may fix for its model (``cozlib.json`` beside ``model_index.json``).
OPTIONS_FILE = "cozlib.json"
VAE_ADAPTER = "default_encoder"   # the official adapter name (its keys are in vae_encoder_*.pt)
SR_ADAPTER = "sr"
VAE_LORA_PATTERNS = ("conv1", "conv2", "conv_in", "conv_shortcut", "conv", "conv_out",
                     "to_k", "to_q", "to_v", "to_out.0")


# -- LoRA targets (official module selection) ----------------------------------------------------

def adaln_linear_names(transformer, ancestors: Sequence[str] = ("AdaLayerNormZero",)) -> list[str]:
    """Names of the nn.Linear layers inside every ``AdaLayerNormZero``, in module order: the order of
    the official LoRA list. Call before any LoRA is injected."""
    import torch.nn as nn
    names = []
    for name, mod in transformer.named_modules():
        if type(mod).__name__ in ancestors:
            for sub, child in mod.named_modules():
                if isinstance(child, nn.Linear):
                    names.append(f"{name}.{sub}")
    return names


def vae_encoder_lora_names(vae) -> list[str]:
    """The VAE modules the official code gives LoRA: every encoder conv/attention weight (not norms),
    and ``quant_conv`` where the VAE has one (SD3's does not)."""
    out: list[str] = []
    for n, _ in vae.named_parameters():
        if "bias" in n or "norm" in n:
            continue
        mod = n.removesuffix(".weight")
        hit = ("encoder" in n and any(p in n for p in VAE_LORA_PATTERNS)) or (
            "quant_conv" in n and "post_quant_conv" not in n)
        if hit and mod not in out:
            out.append(mod)
    return out


def add_transformer_lora(transformer, rank: int = 4, targets: Sequence[str] | None = None,
                         adapter: str = SR_ADAPTER) -> list[str]:
    """peft LoRA on the transformer (default targets: the AdaLayerNormZero linears, scale 1 as the
    official LoraInjectedLinear). Returns the target names in module order."""
    from peft import LoraConfig
    names = list(targets) if targets is not None else adaln_linear_names(transformer)
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                       target_modules=names), adapter_name=adapter)
    return names


def add_vae_encoder_lora(vae, rank: int = 4) -> list[str]:
    """peft LoRA on the VAE encoder, configured as the official code (LoraConfig defaults: alpha 8)."""
    from peft import LoraConfig
    names = vae_encoder_lora_names(vae)
    vae.add_adapter(LoraConfig(r=rank, init_lora_weights="gaussian", target_modules=names),
                    adapter_name=VAE_ADAPTER)
    return names


def _lora_pair(module, adapter: str):
    return module.lora_B[adapter].weight, module.lora_A[adapter].weight  # (up, down)


def load_official_lora(transformer, path: str | os.PathLike, names: Sequence[str],
                       adapter: str = SR_ADAPTER) -> None:
    """Load ``model_*.pkl`` (a list [up, down, ...] in module order) into the peft LoRA, shapes checked."""
    import torch
    tensors = _safe_load(path)
    if not isinstance(tensors, (list, tuple)) or not all(torch.is_tensor(t) for t in tensors):
        raise ConfigError(f"{path}: expected a list of tensors (the official SR LoRA format), got {type(tensors).__name__}")
    if len(tensors) != 2 * len(names):
        raise ConfigError(f"{path}: holds {len(tensors)} tensors, the transformer needs {2 * len(names)} "
                          f"(up and down for {len(names)} AdaLayerNormZero linears): wrong model or file")
    modules = dict(transformer.named_modules())
    with torch.no_grad():
        for i, name in enumerate(names):
            up, down = _lora_pair(modules[name], adapter)
            for dst, src, what in ((up, tensors[2 * i], "up"), (down, tensors[2 * i + 1], "down")):
                if tuple(src.shape) != tuple(dst.shape):
                    raise ConfigError(f"{path}: LoRA {what} of {name} has shape {tuple(src.shape)}, the model "
                                      f"needs {tuple(dst.shape)} (another rank or base model?)")
                dst.copy_(src.to(dst.dtype))


def save_official_lora(transformer, path: str | os.PathLike, names: Sequence[str], adapter: str = SR_ADAPTER) -> None:
    """Write the transformer LoRA as the official ``model_*.pkl`` list (atomically)."""
    modules = dict(transformer.named_modules())
    tensors = []
    for name in names:
        up, down = _lora_pair(modules[name], adapter)
        tensors += [up.detach().float().cpu().clone(), down.detach().float().cpu().clone()]
    save_torch(tensors, path)


def load_vae_encoder(vae, path: str | os.PathLike) -> None:
    """Load ``vae_encoder_*.pt`` (the LoRA-wrapped encoder's state dict), keys and shapes checked."""
    sd = _safe_load(path)
    if not isinstance(sd, dict):
        raise ConfigError(f"{path}: expected a state dict (the official VAE-encoder format), got {type(sd).__name__}")
    own = vae.encoder.state_dict()
    missing, extra = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    if missing or extra:
        raise ConfigError(f"{path}: does not match this VAE encoder with rank-{_vae_rank(vae)} LoRA: "
                          f"{len(missing)} keys missing (e.g. {missing[:2]}), {len(extra)} unexpected (e.g. {extra[:2]})")
    for k, v in sd.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ConfigError(f"{path}: {k} has shape {tuple(v.shape)}, the model needs {tuple(own[k].shape)}")
    vae.encoder.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()})


def save_vae_encoder(vae, path: str | os.PathLike) -> None:
    save_torch({k: v.detach().cpu().clone() for k, v in vae.encoder.state_dict().items()}, path)


def _vae_rank(vae) -> int | str:
    cfg = getattr(vae, "peft_config", {}).get(VAE_ADAPTER)
    return cfg.r if cfg is not None else "?"


def _safe_load(path: str | os.PathLike):
    import torch
    p = Path(path)
    if not p.is_file():
        raise MissingWeightsError(f"LoRA file not found: {p}")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle with code in it, truncated file, not a torch file
        raise ConfigError(f"{p}: cannot be read as plain tensors with torch.load(weights_only=True): {e}") from e


# -- the model ----------------------------------------------------------------------------------

@dataclass
class OSEDiffOptions:
    """Options of one OSEDiff model; a weights folder's ``cozlib.json`` may set them."""

    lora_rank: int = 4
    vae_lora_rank: int = 4
    #: Extra transformer modules with LoRA beyond the AdaLayerNormZero linears (demo model only).
    extra_lora_targets: list[str] = field(default_factory=list)
    max_sequence_length: int = 512      # T5 tokens (the official encode_prompt uses 512)
    latent_tile: int | None = None      # tile the transformer call over the latent (None: whole)
    latent_tile_overlap: int = 8
    #: Encode and decode in VAE tiles of this many pixels (diffusers' AutoencoderKL tiling: a quarter
    #: overlap, blended), the official code's ``vae_encoder_tiled_size`` / ``vae_decoder_tiled_size``.
    #: The VAE's GroupNorm normalises over the whole image, so a model trained on small crops sees
    #: other latents when a large image is encoded whole; None: whole images.
    vae_tile: int | None = None
    posterior: str = "mode"             # "mode" (deterministic; PAPER.md) or "sample" (official TEST code)

    @classmethod
    def from_folder(cls, folder: Path) -> "OSEDiffOptions":
        f = folder / OPTIONS_FILE
        if not f.is_file():
            return cls()
        data = json.loads(f.read_text())
        known = {k: v for k, v in data.get("options", {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


def set_vae_tiling(vae, tile: int) -> None:
    """Tile ``vae``'s encode and decode at ``tile`` pixels (``OSEDiffOptions.vae_tile``)."""
    down = 2 ** (len(vae.config.block_out_channels) - 1)
    if tile % down or tile < down:
        raise ConfigError(f"vae_tile {tile} must be a positive multiple of the VAE's downscale factor {down}")
    vae.enable_tiling()
    vae.tile_sample_min_size, vae.tile_latent_min_size = tile, tile // down


class OSEDiffSD3:
    """One-step SR on SD3 components (``scale = 1``: the input is the bicubic-upsampled crop)."""

    scale = 1
    uses_prompt = True

    def __init__(self, pipe, options: OSEDiffOptions, name: str, identity: str, device: str = "cpu",
                 text_device: str | None = None) -> None:
        import torch
        self.pipe, self.options, self.name, self._identity = pipe, options, name, identity
        self.device = torch.device(device)
        self.text_device = torch.device(text_device or device)
        self.transformer, self.vae = pipe.transformer, pipe.vae
        pipe.scheduler.set_timesteps(1)
        self.timestep = pipe.scheduler.timesteps[0]           # 1000
        self.sigma = float(pipe.scheduler.sigmas[0])            # 1.0
        self.lora_targets: list[str] = []                       # transformer LoRA modules, official file order
        if options.vae_tile:
            set_vae_tiling(self.vae, options.vae_tile)

    def identity(self) -> str:
        return self._identity

    # the prompt: SD3's own encoding (CLIP-L + CLIP-G hidden states padded and joined to T5's)
    def encode_prompt(self, prompts: Sequence[str]):
        """(prompt_embeds [B, 77 + T5 tokens, D], pooled [B, 2 x proj]) on the model device."""
        import torch
        with torch.no_grad():
            pe, _, pooled, _ = self.pipe.encode_prompt(
                prompt=list(prompts), prompt_2=None, prompt_3=None, device=self.text_device,
                do_classifier_free_guidance=False, max_sequence_length=self.options.max_sequence_length)
        dtype = self.transformer.dtype
        return pe.to(self.device, dtype), pooled.to(self.device, dtype)

    def encode(self, x):
        """z = VAE.encode(x).mode() * scaling: no shift on encode (the official code's convention)."""
        dist = self.vae.encode(x.to(self.device, self.vae.dtype)).latent_dist
        z = dist.mode() if self.options.posterior == "mode" else dist.sample()
        return z * self.vae.config.scaling_factor

    def decode(self, z0):
        """x = VAE.decode(z0 / scaling + shift), in [-1, 1] (unclamped)."""
        cfg = self.vae.config
        return self.vae.decode(z0.to(self.vae.dtype) / cfg.scaling_factor + (cfg.shift_factor or 0.0)).sample

    def velocity(self, z, prompt_embeds, pooled):
        """v = transformer(z, t=1000, c); tiled with Gaussian blending when ``latent_tile`` is set."""
        tile = self.options.latent_tile
        if tile is None or (z.shape[-1] <= tile and z.shape[-2] <= tile):
            return self._v(z, prompt_embeds, pooled)
        return self._v_tiled(z, prompt_embeds, pooled, tile, self.options.latent_tile_overlap)

    def _v(self, z, prompt_embeds, pooled):
        t = self.timestep.expand(z.shape[0]).to(z.device)
        return self.transformer(hidden_states=z.to(self.transformer.dtype), timestep=t,
                                encoder_hidden_states=prompt_embeds, pooled_projections=pooled,
                                return_dict=False)[0]

    def _v_tiled(self, z, prompt_embeds, pooled, tile: int, overlap: int):
        """Full-image denoising (the official TILE code): overlapping latent tiles, Gaussian-weighted mean."""
        import torch
        from ..geometry import gaussian_weights, tile_starts
        B, C, H, W = z.shape
        w = torch.from_numpy(gaussian_weights(tile)).to(z.device, z.dtype)
        ys, xs = tile_starts(H, tile, overlap), tile_starts(W, tile, overlap)
        pos = [(y, x) for y in ys for x in xs]
        acc = torch.zeros_like(z)
        norm = torch.zeros((1, 1, H, W), device=z.device, dtype=z.dtype)
        for y, x in pos:  # one call per tile position, the whole batch at once
            v = self._v(z[:, :, y:y + tile, x:x + tile], prompt_embeds, pooled).to(z.dtype)
            acc[:, :, y:y + tile, x:x + tile] += v * w
            norm[:, :, y:y + tile, x:x + tile] += w
        return acc / norm

    def one_step(self, x_lr, prompt_embeds, pooled):
        """PAPER.md section 5: x_lr [B, 3, H, W] in [-1, 1] -> x_hr in [-1, 1] (differentiable)."""
        z = self.encode(x_lr)
        z0 = z - self.sigma * self.velocity(z, prompt_embeds, pooled)
        return self.decode(z0)

    def __call__(self, x, prompts: Sequence[str]):
        """[B, 3, H, W] in [0, 1] (already at the output size) -> same shape in [0, 1]."""
        import torch
        with torch.inference_mode():
            pe, pooled = self.encode_prompt(prompts)
            y = self.one_step(x * 2 - 1, pe, pooled)
        return ((y.float() + 1) / 2).clamp(0, 1).cpu()

    def upsample(self, lr: Sequence[Image.Image], prompts: Sequence[str], size: int, *,
                 seed: int = 0) -> list[Image.Image]:
        import torch
        from .. import geometry
        from ..imageio import pil_to_tensor, tensor_to_pil
        torch.manual_seed(seed)  # only used by posterior="sample"
        out = []
        for im, prompt in zip(lr, prompts):
            if im.size != (size, size):
                im = geometry.resize(im, size, "bicubic")
            out.append(tensor_to_pil(self(pil_to_tensor(im), [prompt])))
        return out


# -- loading -------------------------------------------------------------------------------------

def resolve_sd3(source: str | os.PathLike | None) -> str:
    """A local SD3 diffusers folder, or the repo id when it is in the HF cache; else a clear error."""
    src = str(source or os.environ.get("COZ_SD3") or SD3_REPO)
    if Path(src).is_dir():
        if not (Path(src) / "model_index.json").is_file():
            raise MissingWeightsError(f"{src} is not a diffusers folder (no model_index.json); it should hold "
                                      f"{SD3_REPO}'s files: model_index.json, transformer/, vae/, text_encoder*/ ...")
        return src
    try:
        from huggingface_hub import snapshot_download
        return snapshot_download(src, local_files_only=True)
    except Exception as e:
        raise MissingWeightsError(
            f"SD3 weights not found: {src!r} is neither a folder nor in the Hugging Face cache. Put "
            f"{SD3_REPO} (diffusers layout) in a folder and pass --weights DIR or set COZ_SD3=DIR "
            f"(nothing is downloaded at run time)") from e


def load_osediff(folder: str | os.PathLike, lora: str | os.PathLike | None, vae_encoder: str | os.PathLike | None,
                 *, name: str, device: str = "auto", dtype: str = "float32", drop_t5: bool = False,
                 text_device: str | None = None, offload: bool = False,
                 options: OSEDiffOptions | None = None) -> OSEDiffSD3:
    """Build an OSEDiffSD3 from a diffusers SD3 folder and the two official-format LoRA files.

    ``dtype`` float32 or bfloat16; ``drop_t5`` leaves T5 out (zeros in its place, as diffusers does);
    ``text_device`` puts the text encoders elsewhere (e.g. ``cpu`` or ``cuda:1``: the official
    two-GPU layout); ``offload`` moves each model to the GPU only while it runs (small GPUs).
    """
    import torch
    import diffusers
    import transformers
    from diffusers import StableDiffusion3Pipeline
    from ..runtime import resolve_device
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    folder = Path(folder)
    options = options or OSEDiffOptions.from_folder(folder)
    device = resolve_device(device)
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"dtype must be float32, bfloat16 or float16, got {dtype!r}")
    torch_dtype = getattr(torch, dtype)
    kw = {"text_encoder_3": None, "tokenizer_3": None} if drop_t5 else {}
    try:
        pipe = StableDiffusion3Pipeline.from_pretrained(folder, dtype=torch_dtype, local_files_only=True, **kw)
    except (OSError, ValueError, EnvironmentError) as e:
        raise MissingWeightsError(f"cannot load the diffusers folder {folder}: {e}") from e
    pipe.set_progress_bar_config(disable=True)
    names = add_transformer_lora(pipe.transformer, options.lora_rank,
                                 adaln_linear_names(pipe.transformer) + list(options.extra_lora_targets))
    add_vae_encoder_lora(pipe.vae, options.vae_lora_rank)
    extra = []
    if lora is not None:
        load_official_lora(pipe.transformer, lora, names)
        extra.append(Path(lora))
    if vae_encoder is not None:
        load_vae_encoder(pipe.vae, vae_encoder)
        extra.append(Path(vae_encoder))
    pipe.transformer.eval().requires_grad_(False)
    pipe.vae.eval().requires_grad_(False)
    text_device = None if offload else (text_device or device)
    if offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.transformer.to(device)
        pipe.vae.to(device)
        for enc in (pipe.text_encoder, pipe.text_encoder_2, pipe.text_encoder_3):
            if enc is not None:
                enc.to(text_device)
    from ..paths import folder_hash
    ident = f"{name}:{folder_hash(folder, extra)}:{dtype}:t5={not drop_t5}:{options.posterior}"
    if options.vae_tile:
        ident += f":vae_tile={options.vae_tile}"
    model = OSEDiffSD3(pipe, options, name, ident, device, text_device)
    model.lora_targets = names
    return model


def demo_folder() -> Path:
    from ..paths import resolve
    return resolve(os.environ.get("COZ_OSEDIFF_DEMO") or DEMO_DIR)


def _demo_availability() -> str | None:
    f = demo_folder()
    need = [f / "model_index.json", f / "sr_lora.pkl", f / "vae_encoder_lora.pt"]
    missing = [str(p) for p in need if not p.is_file()]
    return None if not missing else (f"demo OSEDiff weights missing ({', '.join(missing)}); they are committed "
                                     f"in the repository; `make weights` retrains them")


def _paper_availability() -> str | None:
    try:
        resolve_sd3(None)
    except MissingWeightsError as e:
        return str(e)
    try:
        for fname in PAPER_LORA_FILES:
            _find(Path(os.environ.get("COZ_OSEDIFF_LORA", "ckpt")), fname)
    except MissingWeightsError as e:
        return str(e)
    return None


def _find(lora_dir: Path, fname: str) -> Path:
    direct = lora_dir / fname
    if direct.is_file():
        return direct
    hits = sorted(lora_dir.rglob(fname))
    if not hits:
        raise MissingWeightsError(f"{fname} not found under {lora_dir}: put the official Chain-of-Zoom LoRA files "
                                  f"there (SR_LoRA/{PAPER_LORA_FILES[0]}, SR_VAE/{PAPER_LORA_FILES[1]}) or set COZ_OSEDIFF_LORA")
    return hits[0]


def demo_lora_files(folder: Path, variant: str) -> tuple[Path, Path]:
    """(SR LoRA, VAE-encoder LoRA) of a demo variant in the official formats: the default
    'perceptual' variant without a suffix, the others as ``sr_lora_{variant}.pkl`` etc."""
    suffix = "" if variant == "perceptual" else f"_{variant}"
    return folder / f"sr_lora{suffix}.pkl", folder / f"vae_encoder_lora{suffix}.pt"


@register("osediff-demo", "OSEDiff on a tiny SD3 trained here on ZoomWorld + photo patches (committed weights)",
          availability=_demo_availability)
def _osediff_demo(device: str = "auto", weights: str | None = None, variant: str = "perceptual", **options) -> OSEDiffSD3:
    folder = Path(weights) if weights else demo_folder()
    if (msg := _demo_availability()) and not weights:
        raise MissingWeightsError(msg)
    lora, venc = demo_lora_files(folder, variant)
    for p in (lora, venc):
        if not p.is_file():
            raise MissingWeightsError(f"{p} not found (variant {variant!r}); `make weights` writes it")
    return load_osediff(folder, lora, venc, name=f"osediff-demo-{variant}", device=device, **options)


@register("osediff-demo-l2", "the demo OSEDiff's L2-only variant (same stages, pixel L2 only, no perceptual loss): blurrier",
          availability=_demo_availability)
def _osediff_demo_l2(device: str = "auto", weights: str | None = None, **options) -> OSEDiffSD3:
    return _osediff_demo(device=device, weights=weights, variant="l2", **options)


@register("osediff-sd3", "OSEDiff on SD3-medium with the official Chain-of-Zoom LoRA (paper scale, GPU)",
          availability=_paper_availability)
def _osediff_sd3(device: str = "auto", weights: str | None = None, lora_dir: str | None = None, **options) -> OSEDiffSD3:
    folder = Path(resolve_sd3(weights))
    ldir = Path(lora_dir or os.environ.get("COZ_OSEDIFF_LORA", "ckpt"))
    return load_osediff(folder, _find(ldir, PAPER_LORA_FILES[0]), _find(ldir, PAPER_LORA_FILES[1]),
                        name="osediff-sd3", device=device, **options)


# -- looking inside (notebook 06) ----------------------------------------------------------------

def lora_report(model: OSEDiffSD3) -> list[dict]:
    """Per LoRA-wrapped module kind: how many modules, LoRA parameters, and the mean relative size of
    the weight change ||scale * B @ A|| / ||W|| (what the LoRA does to the base model)."""
    import re
    groups: dict[str, dict] = {}
    for part_name, part in (("transformer", model.transformer), ("vae", model.vae)):
        for name, mod in part.named_modules():
            if not (hasattr(mod, "lora_A") and hasattr(mod, "base_layer")) or not len(mod.lora_A):
                continue
            adapter = next(iter(mod.lora_A.keys()))
            a, b = mod.lora_A[adapter].weight, mod.lora_B[adapter].weight
            w = mod.base_layer.weight
            delta = (b.flatten(1) @ a.flatten(1)) * mod.scaling[adapter]
            rel = float(delta.norm() / (w.flatten(1).norm() + 1e-12))
            kind = re.sub(r"\.\d+", "", name)
            kind = re.sub(r"^(transformer_blocks|encoder\.down_blocks|encoder\.mid_block)\.", "", kind)
            g = groups.setdefault(f"{part_name}: {kind}", {"modules": 0, "lora_params": 0, "rel": []})
            g["modules"] += 1
            g["lora_params"] += a.numel() + b.numel()
            g["rel"].append(rel)
    return [{"where": k, "modules": v["modules"], "lora_params": v["lora_params"],
             "mean_rel_change": sum(v["rel"]) / len(v["rel"])} for k, v in groups.items()]


class lora_disabled:
    """Context manager: the model without its LoRA (the base transformer and VAE encoder)."""

    def __init__(self, model: OSEDiffSD3) -> None:
        self.model = model

    def __enter__(self):
        self.model.transformer.disable_adapters()
        self.model.vae.disable_adapters()
        return self.model

    def __exit__(self, *exc) -> None:
        self.model.transformer.enable_adapters()
        self.model.vae.enable_adapters()

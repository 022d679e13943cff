"""Loading OSEDiff: the paper's SD3-medium with the official LoRA files (``osediff-sd3``), the demo
model trained here (``osediff-demo``, ``osediff-demo-l2``), their registry entries, and two looks
inside (``lora_report``, ``lora_disabled``) for notebook 06.
"""
from __future__ import annotations

import os
from pathlib import Path

from ...errors import ConfigError, MissingWeightsError
from .. import register
from .lora import (add_transformer_lora, add_vae_encoder_lora, adaln_linear_names, load_official_lora,
                   load_vae_encoder)
from .model import OSEDiffOptions, OSEDiffSD3

#: The diffusers repository id of the paper's base model, looked up in the HF cache (offline).
SD3_REPO = "stabilityai/stable-diffusion-3-medium-diffusers"
#: Where the paper-scale files are looked for: $COZ_SD3 (folder or repo id) and $COZ_OSEDIFF_LORA.
PAPER_LORA_FILES = ("model_20001.pkl", "vae_encoder_20001.pt")
DEMO_DIR = "data/weights/osediff-demo"

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
                 text_device: str | None = None, offload: bool = False, text_dtype: str | None = None,
                 memory: str | None = None, vae_tile: int | None = None,
                 options: OSEDiffOptions | None = None, speed=None) -> OSEDiffSD3:
    """Build an OSEDiffSD3 from a diffusers SD3 folder and the two official-format LoRA files.

    ``dtype`` float32, bfloat16 or float16 (transformer, VAE) and ``text_dtype`` (the text encoders;
    default ``dtype``); ``drop_t5`` leaves T5 out (zeros in its place, as diffusers does);
    ``text_device`` puts the text encoders elsewhere (e.g. ``cpu`` or ``cuda:1``: the official
    two-GPU layout); ``offload`` moves each model to the GPU only while it runs (small GPUs);
    ``memory`` a ``cozlib.memory`` profile, which sets all of these; ``vae_tile`` tiles the VAE's encode
    and decode (``OSEDiffOptions.vae_tile``); ``speed`` a ``cozlib.speed.Speed`` (parts compiled).
    """
    import torch
    import diffusers
    import transformers
    from diffusers import StableDiffusion3Pipeline
    from ...runtime import resolve_device
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    folder = Path(folder)
    options = options or OSEDiffOptions.from_folder(folder)
    if vae_tile is not None:  # the official --vae_*_tiled_size (one size for both here)
        from dataclasses import replace
        options = replace(options, vae_tile=vae_tile)
    device = resolve_device(device)
    dtype, text_dtype, drop_t5, offload = placement(dtype, text_dtype, drop_t5, offload, memory)
    if speed is not None:
        from ...speed import check_speed
        check_speed(speed, memory, device, offload)
    offload = offload and device.startswith("cuda")  # on the CPU everything already is where it runs
    torch_dtype = getattr(torch, dtype)
    kw = {"text_encoder_3": None, "tokenizer_3": None} if drop_t5 else {}
    try:
        pipe = StableDiffusion3Pipeline.from_pretrained(folder, dtype=torch_dtype, local_files_only=True, **kw)
    except (OSError, ValueError, EnvironmentError) as e:
        raise MissingWeightsError(f"cannot load the diffusers folder {folder}: {e}") from e
    pipe.set_progress_bar_config(disable=True)
    for enc in (pipe.text_encoder, pipe.text_encoder_2, pipe.text_encoder_3):
        if enc is not None and text_dtype != dtype:
            enc.to(dtype=getattr(torch, text_dtype))
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
    ident = osediff_identity(name, folder, lora, vae_encoder, dtype, drop_t5, options, text_dtype)
    model = OSEDiffSD3(pipe, options, name, ident, device, text_device)
    model.lora_targets = names
    if device == "cpu" and not offload:  # the CPU's faster convolution layout for the VAE (inference only)
        pipe.vae.to(memory_format=torch.channels_last)
        model.channels_last = True
    if speed is not None:
        from ...speed import speed_up_sr
        speed_up_sr(model, speed)
    return model


def placement(dtype: str = "float32", text_dtype: str | None = None, drop_t5: bool = False, offload: bool = False,
              memory: str | None = None) -> tuple[str, str, bool, bool]:
    """(dtype, text_dtype, drop_t5, offload) from the settings or a ``cozlib.memory`` profile, checked."""
    from ...memory import profile
    if (prof := profile(memory)) is not None:
        dtype, text_dtype, drop_t5, offload = prof.dtype, prof.text_dtype, prof.drop_t5, prof.offload
    text_dtype = text_dtype or dtype
    for what, d in (("dtype", dtype), ("text_dtype", text_dtype)):
        if d not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"{what} must be float32, bfloat16 or float16, got {d!r}")
    return dtype, text_dtype, drop_t5, offload


def osediff_identity(name: str, folder: Path, lora, vae_encoder, dtype: str = "float32", drop_t5: bool = False,
                     options: OSEDiffOptions | None = None, text_dtype: str | None = None) -> str:
    """What an OSEDiff model's outputs depend on (the chain cache's key): its files, precisions, T5, posterior."""
    from ...paths import folder_hash
    options = options or OSEDiffOptions.from_folder(Path(folder))
    extra = [Path(p) for p in (lora, vae_encoder) if p is not None]
    text = "" if text_dtype in (None, dtype) else f":text={text_dtype}"
    ident = f"{name}:{folder_hash(Path(folder), extra)}:{dtype}{text}:t5={not drop_t5}:{options.posterior}"
    return ident + (f":vae_tile={options.vae_tile}" if options.vae_tile else "") + (
        ":truncate" if options.to_8bit == "truncate" else "")


def demo_folder() -> Path:
    from ...paths import resolve
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


def _demo_files(weights: str | None, variant: str) -> tuple[Path, Path, Path]:
    """(folder, LoRA file, VAE-encoder file) of a demo variant, with the errors of missing files."""
    folder = Path(weights) if weights else demo_folder()
    if (msg := _demo_availability()) and not weights:
        raise MissingWeightsError(msg)
    if weights and not folder.is_dir():
        raise MissingWeightsError(f"--weights {weights}: no such folder; give a demo weights folder (a diffusers "
                                  f"layout with sr_lora.pkl, as `train sr` writes)")
    lora, venc = demo_lora_files(folder, variant)
    for p in (lora, venc):
        if not p.is_file():
            raise MissingWeightsError(f"{p} not found (variant {variant!r}); `python -m cozlib train sr` writes it"
                                      + ("" if weights else " (`make weights` retrains the committed folder)"))
    return folder, lora, venc


def _demo_identity(device: str = "auto", weights: str | None = None, variant: str = "perceptual", dtype: str = "float32",
                   drop_t5: bool = False, text_dtype: str | None = None, memory: str | None = None,
                   vae_tile: int | None = None, speed=None, **_) -> str:
    from dataclasses import replace
    folder, lora, venc = _demo_files(weights, variant)
    dtype, text_dtype, drop_t5, _ = placement(dtype, text_dtype, drop_t5, False, memory)
    options = OSEDiffOptions.from_folder(folder)
    options = replace(options, vae_tile=vae_tile) if vae_tile is not None else options
    ident = osediff_identity(f"osediff-demo-{variant}", folder, lora, venc, dtype, drop_t5, options, text_dtype)
    return ident + (f":{speed.tag()}" if speed is not None else "")


@register("osediff-demo", "OSEDiff on a tiny SD3 trained here on ZoomWorld + photo patches (committed weights)",
          availability=_demo_availability, identity=_demo_identity)
def _osediff_demo(device: str = "auto", weights: str | None = None, variant: str = "perceptual", **options) -> OSEDiffSD3:
    folder, lora, venc = _demo_files(weights, variant)
    return load_osediff(folder, lora, venc, name=f"osediff-demo-{variant}", device=device, **options)


@register("osediff-demo-l2", "the demo OSEDiff's L2-only variant (same stages, pixel L2 only, no perceptual loss): blurrier",
          availability=_demo_availability, identity=lambda **kw: _demo_identity(variant="l2", **kw))
def _osediff_demo_l2(device: str = "auto", weights: str | None = None, **options) -> OSEDiffSD3:
    return _osediff_demo(device=device, weights=weights, variant="l2", **options)


@register("osediff-sd3", "OSEDiff on SD3-medium with the official Chain-of-Zoom LoRA (paper scale, GPU)",
          availability=_paper_availability)
def _osediff_sd3(device: str = "auto", weights: str | None = None, lora_dir: str | None = None,
                 lora_path: str | None = None, vae_path: str | None = None, **options) -> OSEDiffSD3:
    """``lora_path`` / ``vae_path`` (the official CLI's flags) name the files themselves; otherwise
    they are found by their release names under ``lora_dir`` (or COZ_OSEDIFF_LORA, default ckpt/)."""
    from ...runtime import resolve_device
    folder = Path(resolve_sd3(weights))
    ldir = Path(lora_dir or os.environ.get("COZ_OSEDIFF_LORA", "ckpt"))
    lora = Path(lora_path) if lora_path else _find(ldir, PAPER_LORA_FILES[0])
    venc = Path(vae_path) if vae_path else _find(ldir, PAPER_LORA_FILES[1])
    chosen = {"memory", "dtype", "text_dtype", "drop_t5", "offload"} & {k for k, v in options.items() if v}
    if not chosen and resolve_device(device).startswith("cuda"):
        options["memory"] = "official"  # the official code's precisions on a GPU (fp32 SR, fp16 text encoders)
    if "options" not in options:  # states truncated to 8 bits, as the official ToPILImage does
        from dataclasses import replace
        options["options"] = replace(OSEDiffOptions.from_folder(folder), to_8bit="truncate")
    return load_osediff(folder, lora, venc, name="osediff-sd3", device=device, **options)


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

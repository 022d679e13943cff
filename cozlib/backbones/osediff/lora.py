"""OSEDiff's LoRA in the official formats (docs/PAPER.md §5): which modules get LoRA, and the release's
two files: ``model_*.pkl`` (a list ``[up_0, down_0, up_1, down_1, ...]`` over the transformer's
AdaLayerNormZero linears in module order) and ``vae_encoder_*.pt`` (the peft-wrapped encoder's whole
state dict, adapter ``default_encoder``). Files are read with ``torch.load(weights_only=True)`` and
every shape is checked.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ...errors import ConfigError, MissingWeightsError
from ...imageio import save_torch

VAE_ADAPTER = "default_encoder"   # the official adapter name (its keys are in vae_encoder_*.pt)
SR_ADAPTER = "sr"
VAE_LORA_PATTERNS = ("conv1", "conv2", "conv_in", "conv_shortcut", "conv", "conv_out",
                     "to_k", "to_q", "to_v", "to_out.0")



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



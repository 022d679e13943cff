"""The OSEDiff one-step model on diffusers' SD3 parts (docs/PAPER.md §5): ``OSEDiffOptions`` and
``OSEDiffSD3`` (prompt encoding, encode, velocity, decode, ``one_step``, the ``SRBackbone`` protocol).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from PIL import Image

from ...errors import ConfigError

#: The options a weights folder may fix for its model (``cozlib.json`` beside ``model_index.json``).
OPTIONS_FILE = "cozlib.json"


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
    posterior: str = "mode"             # "mode" (deterministic; docs/PAPER.md §5) or "sample" (official TEST code)
    to_8bit: str = "round"              # each state to 8 bits: "round", or "truncate" (the official ToPILImage)
    #: Average the velocity over the transformer's patch phases (demo model): see ``OSEDiffSD3._v``.
    phase_average: bool = False
    #: Each latent tile reads the position embedding at its place in the state (``places``; the demo
    #: model trained at random places); False: every tile the centre crop, as the official tiled code.
    tile_places: bool = False

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
        self.channels_last = False  # set by load_osediff for inference on the CPU (training keeps the default)
        self.speed_tag = ""         # set by cozlib.speed (compiled parts: outputs within bf16 noise)
        self.places = None          # [B, 2] latent offsets of the next velocity call's inputs (places.py)
        if options.tile_places:
            from .places import use_places
            use_places(self.transformer)

    def identity(self) -> str:
        return self._identity + (f":{self.speed_tag}" if self.speed_tag else "")

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
        import torch
        x = x.to(self.device, self.vae.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        dist = self.vae.encode(x).latent_dist
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
        """v = transformer(z, t=1000, c). With ``phase_average`` (the demo model), the mean over the p x p
        shifts of z against the transformer's patch grid (p = patch size; reflect-padded, shifted back):
        a one-step model asked for texture it cannot see draws the cheapest pattern, one repeated on its
        patch grid (patch 2 x VAE factor 4 = 8 px). Averaged over the grid's phases, each latent pixel's
        velocity is the mean over the p x p places it can take inside a patch, so a pattern tied to the
        grid cancels to its mean, while one that follows the input stays (a test). p x p transformer
        inputs, in one batch."""
        p = self.transformer.config.patch_size if self.options.phase_average else 1
        if p == 1:
            return self._v_once(z, prompt_embeds, pooled)
        import torch
        import torch.nn.functional as F
        B, _, H, W = z.shape
        shifts = [(dy, dx) for dy in range(p) for dx in range(p)]
        zs = torch.cat([F.pad(z, (dx, p - dx, dy, p - dy), mode="reflect") for dy, dx in shifts])
        n = len(shifts)
        v = self._v_once(zs, prompt_embeds.repeat(n, 1, 1), pooled.repeat(n, 1))
        return sum(v[k * B:(k + 1) * B, :, dy:dy + H, dx:dx + W] for k, (dy, dx) in enumerate(shifts)) / n

    def _v_once(self, z, prompt_embeds, pooled):
        t = self.timestep.expand(z.shape[0]).to(z.device)
        places = getattr(self, "places", None)
        if places is not None:  # the phase shifts repeat the batch: so do its places
            self.transformer.pos_embed.places = places.repeat(z.shape[0] // len(places), 1)
        try:
            return self.transformer(hidden_states=z.to(self.transformer.dtype), timestep=t,
                                    encoder_hidden_states=prompt_embeds, pooled_projections=pooled,
                                    return_dict=False)[0]
        finally:
            if places is not None:
                self.transformer.pos_embed.places = None

    def _v_tiled(self, z, prompt_embeds, pooled, tile: int, overlap: int, max_batch: int = 64):
        """Full-image denoising (the official TILE code): overlapping latent tiles, Gaussian-weighted mean.
        The tiles go through the transformer together, ``max_batch`` (tiles x images) at a time."""
        import torch
        from ...geometry import gaussian_weights, tile_starts
        B, C, H, W = z.shape
        w = torch.from_numpy(gaussian_weights(tile)).to(z.device, z.dtype)
        ys, xs = tile_starts(H, tile, overlap), tile_starts(W, tile, overlap)
        pos = [(y, x) for y in ys for x in xs]
        per_call = max(1, max_batch // B)
        acc = torch.zeros_like(z)
        norm = torch.zeros((1, 1, H, W), device=z.device, dtype=z.dtype)
        for i in range(0, len(pos), per_call):
            chunk = pos[i:i + per_call]
            tiles = torch.cat([z[:, :, y:y + tile, x:x + tile] for y, x in chunk])       # [len(chunk) * B, C, t, t]
            n = len(chunk)
            if self.options.tile_places:
                self.places = torch.tensor([[y, x] for y, x in chunk for _ in range(B)], dtype=torch.float32)
            try:
                v = self._v(tiles, prompt_embeds.repeat(n, 1, 1), pooled.repeat(n, 1)).to(z.dtype)
            finally:
                self.places = None
            for j, (y, x) in enumerate(chunk):
                acc[:, :, y:y + tile, x:x + tile] += v[j * B:(j + 1) * B] * w
                norm[:, :, y:y + tile, x:x + tile] += w
        return acc / norm

    def one_step(self, x_lr, prompt_embeds, pooled):
        """docs/PAPER.md §5: x_lr [B, 3, H, W] in [-1, 1] -> x_hr in [-1, 1] (differentiable)."""
        z = self.encode(x_lr)
        z0 = z - self.sigma * self.velocity(z, prompt_embeds, pooled)
        return self.decode(z0)

    def latent_tiles(self, tile: int | None = None, overlap: int | None = None) -> tuple[int, int]:
        """The full-image step's latent tile and overlap: the model's own (``latent_tile``, set for the
        demo model, which learnt on 16-latent views) or the official defaults 64 / 16; a clear error for
        a tile wider than the transformer's position embedding reaches (``pos_embed_max_size`` patches)."""
        own = self.options.latent_tile
        tile = tile if tile is not None else (own or 64)
        overlap = overlap if overlap is not None else (self.options.latent_tile_overlap if own else 16)
        cfg = self.transformer.config
        reach = (cfg.pos_embed_max_size or 0) * cfg.patch_size
        if reach and tile > reach:
            raise ConfigError(f"a latent tile of {tile} px is wider than this model's position embedding reaches "
                              f"({reach} latent px); use --latent-tiled-size {reach} or less")
        if not 0 <= overlap < tile or tile < 2:
            raise ConfigError(f"the latent tile must be >= 2 and 0 <= overlap < tile, got {tile} and {overlap}")
        return tile, overlap

    def full_image_step(self, prev: Image.Image, full: Image.Image, extractor, upscale: int, *, step: int = 1,
                        tile: int, overlap: int, user_prompt: str = "", source: dict | None = None,
                        tile_batch: int = 8) -> tuple[Image.Image, list[dict]]:
        """One step of the official full-image CoZ (``inference_coz_full.py``): the whole previous state,
        LANCZOS-enlarged ``upscale`` times, is encoded once; every ``tile``-latent tile (``overlap``
        apart, the last flush with the edge; the model's own sizes: ``latent_tiles``) is decoded as
        it is and shown to the extractor after ``full`` (the input at process size) for its own
        prompt; the tile's one step z - v is blended with Gaussian weights; the whole latent is
        decoded without the shift factor, as that code does.
        The official code does the tiles one by one; here ``tile_batch`` tiles at a time share each
        call (VAE decode, one VLM ``generate``, the text encoders, the transformer): the same prompts
        and, within float noise, the same image. Returns the new state and, per tile, its latent box
        and prompt."""
        import torch
        from ... import geometry
        from ...imageio import pil_to_tensor, tensor_to_pil
        from ...prompts import PromptContext, prompts_for
        truncate = self.options.to_8bit == "truncate"
        big = prev.resize((prev.width * upscale, prev.height * upscale), Image.LANCZOS)
        with torch.inference_mode():
            z = self.encode(pil_to_tensor(big) * 2 - 1)
            _, _, H, W = z.shape
            w = torch.from_numpy(geometry.gaussian_weights(tile)).to(z.device, z.dtype)
            acc, norm, tiles = torch.zeros_like(z), torch.zeros((1, 1, H, W), device=z.device, dtype=z.dtype), []
            boxes = [(x, y) for y in geometry.tile_starts(H, tile, overlap) for x in geometry.tile_starts(W, tile, overlap)]
            for i in range(0, len(boxes), max(1, tile_batch)):
                chunk = boxes[i:i + max(1, tile_batch)]
                patches = torch.cat([z[:, :, y:y + tile, x:x + tile] for x, y in chunk])      # [n, C, tile, tile]
                seen = ((self._decode_unshifted(patches).float() + 1) / 2).clamp(0, 1).cpu()
                windows = [(x / W, y / H, (x + tile) / W, (y + tile) / H) for x, y in chunk]
                ctxs = [PromptContext(zoomed=tensor_to_pil(seen[j], truncate), previous=full, step=step, window=win,
                                      source=dict(source or {})) for j, win in enumerate(windows)]
                prompts = prompts_for(extractor, ctxs, user_prompt)
                pe, pooled = self.encode_prompt(prompts)
                v = self._v(patches, pe, pooled).to(z.dtype)
                for j, (x, y) in enumerate(chunk):
                    acc[:, :, y:y + tile, x:x + tile] += (patches[j:j + 1] - self.sigma * v[j:j + 1]) * w
                    norm[:, :, y:y + tile, x:x + tile] += w
                    tiles.append({"box": (x, y, x + tile, y + tile), "window": windows[j], "prompt": prompts[j]})
            out = self._decode_unshifted(acc / norm)
        return tensor_to_pil(((out.float() + 1) / 2).clamp(0, 1).cpu(), truncate), tiles

    def _decode_unshifted(self, z):
        """VAE.decode(z / scaling): the official full-image code decodes without adding the shift factor."""
        return self.vae.decode(z.to(self.vae.dtype) / self.vae.config.scaling_factor).sample

    def __call__(self, x, prompts: Sequence[str]):
        """[B, 3, H, W] in [0, 1] (already at the output size) -> same shape in [0, 1]."""
        import torch
        with torch.inference_mode():
            pe, pooled = self.encode_prompt(prompts)
            y = self.one_step(x * 2 - 1, pe, pooled)
        return ((y.float() + 1) / 2).clamp(0, 1).cpu()

    def upsample(self, lr: Sequence[Image.Image], prompts: Sequence[str], size: int, *,
                 seed: int = 0) -> list[Image.Image]:
        """The SRBackbone call: every input (bicubic-resized to ``size`` if needed) in one batch."""
        import torch
        from ... import geometry
        from ...imageio import pil_to_tensor, tensor_to_pil
        torch.manual_seed(seed)  # only used by posterior="sample"
        if not lr:
            return []
        x = torch.cat([pil_to_tensor(im if im.size == (size, size) else geometry.resize(im, size, "bicubic")) for im in lr])
        y = self(x, list(prompts))
        return [tensor_to_pil(y[i], self.options.to_8bit == "truncate") for i in range(len(lr))]

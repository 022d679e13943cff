"""The fast chain at paper scale (docs/PAPER.md §9): the same models, prompts and images in less time.

Where one CoZ step's time goes on a GPU (bench/results/h200-step_parts-paper-config.csv): Qwen2.5-VL's
``generate`` takes about 0.9 s of 1.05 s, 32 decode steps of about 28 ms each, while reading the 3B
weights once takes about 2 ms. A decode step is hundreds of small kernels launched one by one from
Python against a KV cache that grows every token, so no shape is fixed and nothing can be captured.
``speed_up`` removes that overhead without changing what is computed:

* the VLM: a static KV cache (``cache_implementation="static"``: fixed shapes), with which transformers'
  ``generate`` compiles its decode step (``CompileConfig``; ``reduce-overhead`` on CUDA, i.e. CUDA graphs:
  one launch per token). Greedy decoding reads the same logits, so the prompts are the same tokens
  (tests: identical on the CPU in fp32; in bf16 kernels differ, so a near tie could flip);
* OSEDiff: the transformer, the VAE's encoder and decoder and the three text encoders compiled in
  place (``Module.compile``); attention is already SDPA (diffusers' and transformers' default) and the
  precision is the memory profile's (``fast``: bf16 throughout).

Batching is the chain's: ``chain.run_chains`` runs several images in lockstep (one ``generate`` and one
SR call per step for all: ``evaluate --batch``), and the official full-image step asks for all its tiles'
prompts in one ``generate`` (``OSEDiffSD3.full_image_step``).

The first chain at a size pays the compilation (tens of seconds); later ones reuse it. Measured by
``bench/paper_chain.py`` (the official layout, the default composition and this, in one run).
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

BACKENDS = ("inductor", "eager")


@dataclass(frozen=True)
class Speed:
    """How the paper-scale models are sped up (``speed_up``)."""

    static_cache: bool = True     # the VLM decodes into a fixed-size KV cache
    compile: bool = True          # torch.compile the VLM decode step and the SR model's parts
    backend: str = "inductor"     # torch.compile's backend ("eager": traced only, a check of the code path)

    def tag(self) -> str:
        """What the identities of sped-up models carry (their outputs may differ within bf16 noise)."""
        return "static" + (f"+compile={self.backend}" if self.compile else "")


def check_speed(speed: Speed, memory: str | None, device: str, offload: bool = False) -> None:
    """A speed-up needs the models resident: offloading (a profile's or ``--offload``) moves them between calls."""
    from .memory import profile
    if speed.backend not in BACKENDS:
        raise ConfigError(f"unknown compile backend {speed.backend!r}; choose one of {', '.join(BACKENDS)}")
    if offload and device.startswith("cuda"):
        raise ConfigError("--compile needs the models resident on the GPU: leave out --offload")
    prof = profile(memory)
    if prof is not None and (prof.offload or prof.vlm_offload) and device.startswith("cuda"):
        raise ConfigError(f"--compile needs the models resident on the GPU; memory profile {memory!r} moves them "
                          "between calls: use --memory fast (bf16) or official")


def speed_up_vlm(extractor, speed: Speed) -> None:
    """A static KV cache for the extractor's (or critic's) Qwen2.5-VL, and its decode step compiled."""
    from transformers import CompileConfig
    model = getattr(extractor, "model", None)
    if model is None or not hasattr(model, "generation_config"):
        return  # not a VLM (null, oracle, ... prompts): nothing to speed up
    if speed.static_cache:
        model.generation_config.cache_implementation = "static"
        if speed.compile:
            cuda = model.device.type == "cuda"
            cfg = CompileConfig(backend=speed.backend, mode="reduce-overhead" if cuda and speed.backend == "inductor"
                                else None)
            cfg._compile_all_devices = True  # also on the CPU (the tiny-scale test of this path)
            model.generation_config.compile_config = cfg
        else:
            model.generation_config.disable_compile = True
    extractor.speed_tag = speed.tag()


def speed_up_sr(backbone, speed: Speed) -> None:
    """The OSEDiff model's transformer, VAE encoder / decoder and text encoders compiled in place."""
    pipe = getattr(backbone, "pipe", None)
    if pipe is None:
        return  # Real-ESRGAN and the simple backbones: nothing here
    if speed.compile:
        parts = [pipe.transformer, pipe.vae.encoder, pipe.vae.decoder,
                 pipe.text_encoder, pipe.text_encoder_2, pipe.text_encoder_3]
        for module in parts:
            if module is not None:
                module.compile(backend=speed.backend, dynamic=False)
    backbone.speed_tag = speed.tag()


def speed_up(backbone, extractor, speed: Speed | None = None) -> None:
    """``speed_up_sr`` and ``speed_up_vlm`` for one chain's models (in place)."""
    speed = speed or Speed()
    if backbone is not None:
        speed_up_sr(backbone, speed)
    if extractor is not None:
        speed_up_vlm(extractor, speed)

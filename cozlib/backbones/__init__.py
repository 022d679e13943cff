"""SR backbones: a small protocol and a registry, so any SR model plugs into the chain.

A backbone turns a low-resolution crop into the next scale-state, optionally guided by a prompt
(the paper's f_theta(x_{i-1}, c_i)). The chain only knows this protocol (docs/PAPER.md §1: the
method is model-agnostic). ``scale`` tells the chain what input the model wants:

* ``None``: the raw crop, any size (the backbone resizes it itself: nearest, bicubic);
* ``k``: a ``size // k`` square; the chain BICUBIC-resizes the crop to that size first. A 4x model
  (Real-ESRGAN) has ``scale = 4``; a model that works on the bicubic-upsampled image, like OSEDiff,
  has ``scale = 1``, so its input is exactly the official protocol's SR input.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, runtime_checkable

from PIL import Image

from ..errors import ConfigError


@runtime_checkable
class SRBackbone(Protocol):
    """Image (+ prompt) -> image. ``upsample`` returns one ``size`` x ``size`` RGB image per input."""

    name: str
    scale: int | None
    uses_prompt: bool

    def identity(self) -> str:
        """A string that changes whenever the outputs would (name, weights' hash, options): the cache key."""
        ...

    def upsample(self, lr: Sequence[Image.Image], prompts: Sequence[str], size: int, *,
                 seed: int = 0) -> list[Image.Image]:
        ...


@dataclass(frozen=True)
class BackboneInfo:
    """A registry entry: how to build a backbone and how to tell whether it can be built here."""

    name: str
    summary: str
    factory: Callable[..., SRBackbone]
    availability: Callable[[], str | None]  # None when available, else why not and what to do
    identity: Callable[..., str] | None = None  # the loaded model's identity, computed without loading it
    scale: int | None = 1
    uses_prompt: bool = True


_REGISTRY: dict[str, BackboneInfo] = {}


def register(name: str, summary: str, availability: Callable[[], str | None] = lambda: None,
             identity: Callable[..., str] | None = None, scale: int | None = 1, uses_prompt: bool = True):
    """Class or function decorator adding a backbone factory to the registry; with ``identity``
    (same arguments as the factory), ``make_backbone(..., lazy=True)`` defers loading to first use."""
    def deco(factory):
        _REGISTRY[name] = BackboneInfo(name, summary, factory, availability, identity, scale, uses_prompt)
        return factory
    return deco


class LazyBackbone:
    """A backbone loaded on its first call. Its identity (the chain cache's key) needs no loading, so
    a run whose chains are all cached never loads the model (nor imports its libraries)."""

    def __init__(self, info: BackboneInfo, identity: str, device: str, options: dict) -> None:
        self.name, self.scale, self.uses_prompt = info.name, info.scale, info.uses_prompt
        self._info, self._identity, self._device, self._options = info, identity, device, options
        self._model: SRBackbone | None = None

    def identity(self) -> str:
        return self._identity

    def model(self) -> SRBackbone:
        if self._model is None:
            self._model = self._info.factory(device=self._device, **self._options)
        return self._model

    def upsample(self, lr, prompts, size, *, seed: int = 0):
        return self.model().upsample(lr, prompts, size, seed=seed)


def registry() -> dict[str, BackboneInfo]:
    """All registered backbones by name (importing the built-in modules first)."""
    from . import osediff, realesrgan, simple  # noqa: F401  (registration side effect)
    return dict(_REGISTRY)


def make_backbone(name: str, device: str = "auto", lazy: bool = False, **options) -> SRBackbone:
    """Build a backbone by registry name, or raise ConfigError listing the names there are; with
    ``lazy`` a ``LazyBackbone`` when the entry can tell its identity without loading."""
    reg = registry()
    if name not in reg:
        raise ConfigError(f"unknown backbone {name!r}; choose one of: {', '.join(sorted(reg))} "
                          f"(`python -m cozlib list` shows what each needs)")
    info = reg[name]
    if lazy and info.identity is not None:
        return LazyBackbone(info, info.identity(device=device, **options), device, options)
    return info.factory(device=device, **options)

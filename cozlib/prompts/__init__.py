"""Prompt extractors: p(c_i | x_{i-1}, x_{i-2}) as a small protocol and a registry.

The chain hands an extractor a ``PromptContext``: the zoomed SR input of this step (x_{i-1}'s
center crop, bicubic-upsampled), the coarser previous state x_{i-1} (which holds x_{i-2}'s
information through the chain, docs/PAPER.md §1), the step index and where the view sits in x_0.
Single-image extractors look only at ``zoomed``; multi-scale ones (``recursive_multiscale``) at
both, coarser first, as in the official code. A user prompt is appended as
"{extracted}, {user_prompt}," exactly like the official ``get_validation_prompt``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from PIL import Image

from ..errors import ConfigError


@dataclass
class PromptContext:
    """What an extractor may look at for step i (1-based)."""

    zoomed: Image.Image
    previous: Image.Image | None
    step: int
    window: tuple[float, float, float, float]
    source: dict[str, Any] = field(default_factory=dict)  # e.g. {"world_seed": 3} for ZoomWorld inputs


@runtime_checkable
class PromptExtractor(Protocol):
    name: str
    multiscale: bool

    def identity(self) -> str:
        ...

    def __call__(self, ctx: PromptContext) -> str:
        ...


@dataclass(frozen=True)
class ExtractorInfo:
    name: str
    summary: str
    factory: Callable[..., PromptExtractor]
    availability: Callable[[], str | None]
    takes_argument: bool = False
    options: tuple[str, ...] = ()   # keyword options the factory takes (e.g. vlm, vlm_lora)
    needs: tuple[str, ...] = ()     # "multiscale" (the coarser state: recursive_multiscale), "world" (ZoomWorld inputs)
    identity: Callable[..., str] | None = None  # the built extractor's identity, computed without loading it

    @property
    def multiscale(self) -> bool:
        """Whether it reads the coarser state too (``needs`` says so)."""
        return "multiscale" in self.needs


_REGISTRY: dict[str, ExtractorInfo] = {}
#: Why an extractor that needs ZoomWorld inputs needs them, when it is not the true words.
WORLD_ONLY = {"dape": "the demo tagger was trained on ZoomWorld only. The paper's DAPE (RAM Swin-L with SeeSR's "
                      "DAPE weights) cannot run here: its code is not installable; wrap it as prompts.dape.DapePrompt "
                      "(any object with tags(images)) in your own code, or use --prompt vlm-single / vlm / null"}


def register(name: str, summary: str, availability: Callable[[], str | None] = lambda: None,
             takes_argument: bool = False, options: tuple[str, ...] = (), needs: tuple[str, ...] = (),
             identity: Callable[..., str] | None = None):
    """Decorator adding an extractor factory ``factory(arg: str | None, device: str, **options)`` to
    the registry (``options``: the keyword options it accepts)."""
    def deco(factory):
        _REGISTRY[name] = ExtractorInfo(name, summary, factory, availability, takes_argument, options, needs, identity)
        return factory
    return deco


def registry() -> dict[str, ExtractorInfo]:
    from . import dape, oracle, simple, vlm  # noqa: F401
    return dict(_REGISTRY)


def parse_prompt_spec(spec: str) -> tuple[str, str | None]:
    """'null' -> ('null', None); 'fixed:red fur' -> ('fixed', 'red fur')."""
    name, sep, arg = spec.partition(":")
    return name.strip(), (arg if sep else None)


def check_prompt_spec(spec: str, rec_type: str | None = None, world: bool | None = None) -> ExtractorInfo:
    """The registry entry of a CLI-style spec, checked without building anything: the name, its
    argument, and (when given) whether ``rec_type`` and the inputs (``world``: all ZoomWorld) suit it."""
    name, arg = parse_prompt_spec(spec)
    reg = registry()
    if name not in reg:
        raise ConfigError(f"unknown prompt {spec!r}; choose one of: "
                          + ", ".join(f"{n}:TEXT" if i.takes_argument else n for n, i in sorted(reg.items())))
    info = reg[name]
    if info.takes_argument and not (arg or "").strip():
        raise ConfigError(f"--prompt {name} needs text: --prompt {name}:TEXT")
    if not info.takes_argument and arg is not None:
        raise ConfigError(f"--prompt {name} takes no ':' argument")
    if rec_type is not None and rec_type not in ("nearest", "bicubic"):
        if "multiscale" in info.needs and rec_type != "recursive_multiscale":
            raise ConfigError(f"--prompt {name} is multi-scale: it reads the coarser state, which only "
                              f"--rec-type recursive_multiscale gives it; use that, or --prompt vlm-single")
    if world is False and "world" in info.needs:
        raise ConfigError(f"--prompt {name} needs ZoomWorld inputs (world:SEED): " + WORLD_ONLY.get(
            name, "only there are the true words known"))
    return info


class LazyExtractor:
    """An extractor loaded on its first call; its identity (the chain cache's key) needs no loading."""

    def __init__(self, info: ExtractorInfo, identity: str, arg, device: str, options: dict) -> None:
        self.name, self.multiscale = info.name, info.multiscale
        self._info, self._identity, self._arg, self._device, self._options = info, identity, arg, device, options
        self._model: PromptExtractor | None = None

    def identity(self) -> str:
        return self._identity

    def model(self) -> PromptExtractor:
        if self._model is None:
            self._model = self._info.factory(arg=self._arg, device=self._device, **self._options)
        return self._model

    def __call__(self, ctx: PromptContext) -> str:
        return self.model()(ctx)

    def __getattr__(self, attr: str):  # batch, generate, ... of the loaded extractor
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self.model(), attr)


def make_prompt_extractor(spec: str, device: str = "auto", lazy: bool = False, **options) -> PromptExtractor:
    """Build an extractor from a CLI-style spec such as ``null`` or ``fixed:TEXT``. ``options`` (e.g.
    ``vlm=DIR``) go to the extractors that take them; None values are left out. With ``lazy``, a
    ``LazyExtractor`` when the entry can tell its identity without loading."""
    name, arg = parse_prompt_spec(spec)
    info = check_prompt_spec(spec)
    opts = {k: v for k, v in options.items() if k in info.options and v is not None}
    if lazy and info.identity is not None:
        return LazyExtractor(info, info.identity(arg=arg, device=device, **opts), arg, device, opts)
    return info.factory(arg=arg, device=device, **opts)


def extract_many(extractor: PromptExtractor, contexts: Sequence[PromptContext], batch: int = 32) -> list[str]:
    """The prompt of each context: in batches when the extractor has ``batch(contexts)`` (the VLMs
    and the tagger: one model call for many views), else one by one."""
    many = getattr(extractor, "batch", None)
    if many is None:
        return [extractor(c) for c in contexts]
    out: list[str] = []
    for i in range(0, len(contexts), batch):
        out += many(list(contexts[i:i + batch]))
    return out


def with_user_prompt(extracted: str, user_prompt: str | None, null: bool = False) -> str:
    """The official composition: "{extracted}, {user_prompt}," when a user prompt is given; with the
    null prompt source (``null``) the user prompt alone, as the official ``prompt_type null``."""
    if not user_prompt:
        return extracted
    if null:
        return user_prompt
    return f"{extracted}, {user_prompt},"


def prompts_for(extractor: PromptExtractor, contexts: Sequence[PromptContext], user_prompt: str = "") -> list[str]:
    """c_i of each context from ``extractor`` (together: ``extract_many``), with the user prompt composed
    as the official code does."""
    null = getattr(extractor, "name", "") == "null"
    return [with_user_prompt(p, user_prompt, null) for p in extract_many(extractor, contexts)]


def prompt_for(extractor: PromptExtractor, ctx: PromptContext, user_prompt: str = "") -> str:
    """``prompts_for`` of one context."""
    return prompts_for(extractor, [ctx], user_prompt)[0]

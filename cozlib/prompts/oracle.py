"""The oracle prompt: ZoomWorld's ground-truth words of the view being super-resolved.

It needs to know where the zoomed view is: the chain passes each step's window in x_0's unit
square, and ZoomWorld inputs (``world:SEED``) pass ``{"world_seed": S}`` in the context's source,
x_0 being the scene's base view. The prompt lists the words covering at least ``min_fraction``
of the view, objects first, then parts, then micro-textures.
"""
from __future__ import annotations

from ..errors import ConfigError
from . import PromptContext, register


def truth_prompt(truth: dict[str, float], min_fraction: float = 0.05) -> str:
    """The oracle's text for ground-truth words {word: area}: words covering ``min_fraction`` or
    more, objects first, then parts, then micro-textures, each by area ('cat, fur, hairs')."""
    from ..world.vocab import level_of
    order = {"object": 0, "part": 1, "micro": 2}
    words = [w for w, f in truth.items() if f >= min_fraction]
    words.sort(key=lambda w: (order[level_of(w)], -truth[w]))
    return ", ".join(words)


class OraclePrompt:
    name = "oracle"
    multiscale = False

    def __init__(self, min_fraction: float = 0.05, size: int | None = None) -> None:
        self.min_fraction = min_fraction
        self.size = size

    def identity(self) -> str:
        return f"oracle:{self.min_fraction}:{self.size}"

    def __call__(self, ctx: PromptContext) -> str:
        from ..world import in_world, window_words
        seed = ctx.source.get("world_seed")
        if seed is None:
            raise ConfigError("--prompt oracle needs a ZoomWorld input (world:SEED): only there is the truth known")
        return truth_prompt(window_words(int(seed), in_world(ctx.window, ctx.source), self.size or ctx.zoomed.size[0]),
                            self.min_fraction)


@register("oracle", "ZoomWorld's true words of the view (world:SEED inputs only)", needs=("world",))
def _oracle(arg: str | None = None, device: str = "auto") -> OraclePrompt:
    return OraclePrompt()


def wrong_word(word: str) -> str:
    """A fixed wrong word of the same level: half the level's list away (never the word itself)."""
    from ..world.vocab import level_of, levels
    words = levels()[level_of(word)]
    return words[(words.index(word) + len(words) // 2) % len(words)]


def wrong_prompt(truth: str) -> str:
    """An oracle prompt with each word swapped for ``wrong_word`` (repeats dropped)."""
    out: list[str] = []
    for w in (w for w in truth.split(", ") if w):
        x = wrong_word(w)
        out += [x] if x not in out else []
    return ", ".join(out)


class WrongPrompt(OraclePrompt):
    """The oracle's words, each swapped for another word of its level (``wrong_word``): a prompt as
    confident and as long as the truth, but about something else. For measuring what a wrong prompt
    costs (the hallucinating VLM of the paper's Figure 8)."""

    name = "wrong"

    def identity(self) -> str:
        return f"wrong:{self.min_fraction}:{self.size}"

    def __call__(self, ctx: PromptContext) -> str:
        return wrong_prompt(super().__call__(ctx))


@register("wrong", "ZoomWorld's true words, each swapped for a wrong one of the same level (world:SEED only)",
          needs=("world",))
def _wrong(arg: str | None = None, device: str = "auto") -> WrongPrompt:
    return WrongPrompt()

"""Prompt extractors that need no model: the null prompt and a fixed text."""
from __future__ import annotations

from . import PromptContext, register


class NullPrompt:
    """The empty prompt (the paper's "null" rows: the SR model gets no text)."""

    name = "null"
    multiscale = False

    def identity(self) -> str:
        return "null"

    def __call__(self, ctx: PromptContext) -> str:
        return ""


class FixedPrompt:
    """The same text at every step (a user's description of the whole image, say)."""

    name = "fixed"
    multiscale = False

    def __init__(self, text: str) -> None:
        self.text = text

    def identity(self) -> str:
        return f"fixed:{self.text}"

    def __call__(self, ctx: PromptContext) -> str:
        return self.text


@register("null", "empty prompt at every step")
def _null(arg: str | None = None, device: str = "auto") -> NullPrompt:
    return NullPrompt()


@register("fixed", "the given text at every step", takes_argument=True)
def _fixed(arg: str | None = None, device: str = "auto") -> FixedPrompt:
    return FixedPrompt(arg or "")

"""ZoomWorld's vocabulary: objects, their parts, and each part's micro-texture (three levels).

Every word is a single lowercase token, so a prompt ("a set of words") can be compared with the
truth word by word. Two pairs of micro-textures are deliberately identical in distribution
(generator, palette, scale): ``hairs`` (a cat's fur) and ``fibers`` (a log's wood), ``pits`` (a
strawberry's seeds) and ``cells`` (a leaf's blade). Seen alone at deep zoom they cannot be told
apart; the coarser view shows their parents' structure (fur locks vs wood rings; a seed's
outline on red skin vs a leaf's veinlets): the situation of the paper's Figure 8, made measurable.

Look-alike groups (BROWN, YELLOWGREEN, RED, GRAY) share a palette across different generators
(fur's hairs and bark's cracks are both brown): far from a texture's own scale only
its lead octaves show, and those are the same mottle for every texture (``scene.TEXTURE_LEAD``), so
a low-res view does not tell which kind of detail will appear when one zooms in; the words do.
This is the gap the SR backbone's prompt must fill (the paper's premise, made measurable).
"""
from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Micro:
    """A level-2 texture: generator family, palette (dark, light), first frequency (cycles per base unit)."""

    word: str
    family: str  # speckle | streak | cellular
    dark: RGB
    light: RGB
    f_lo: float
    stretch: float = 1.0


@dataclass(frozen=True)
class Part:
    word: str
    micro: str
    scale: float  # characteristic size in object units (visibility threshold)


#: Look-alike groups: micro-textures of different kinds (generator) that share a palette, so
#: from afar (where only their shared lead octaves show, ``scene.TEXTURE_LEAD``) they look alike.
BROWN = ((0.30, 0.19, 0.10), (0.62, 0.44, 0.26))
YELLOWGREEN = ((0.42, 0.50, 0.12), (0.78, 0.82, 0.38))
RED = ((0.55, 0.04, 0.06), (0.93, 0.22, 0.20))
GRAY = ((0.45, 0.50, 0.58), (0.85, 0.88, 0.92))

MICRO: dict[str, Micro] = {m.word: m for m in (
    Micro("speckles", "speckle", *RED, 1024),
    Micro("pits", "cellular", *YELLOWGREEN, 2048),
    Micro("fuzz", "streak", *YELLOWGREEN, 1024, 3.0),
    Micro("hairs", "streak", *BROWN, 2048, 6.0),
    Micro("iris", "streak", (0.45, 0.35, 0.02), (0.85, 0.70, 0.15), 1024, 4.0),
    Micro("creases", "speckle", (0.65, 0.35, 0.38), (0.95, 0.65, 0.68), 1024),
    Micro("grains", "cellular", *RED, 1024),
    Micro("grit", "speckle", *GRAY, 2048),
    Micro("cracks", "cellular", *BROWN, 512),
    Micro("fibers", "streak", *BROWN, 2048, 6.0),
    Micro("cells", "cellular", *YELLOWGREEN, 2048),
    Micro("strands", "streak", (0.55, 0.70, 0.30), (0.85, 0.95, 0.60), 1024, 8.0),
    Micro("ridges", "streak", *GRAY, 1024, 10.0),
    Micro("rays", "streak", (0.70, 0.30, 0.05), (0.98, 0.62, 0.25), 1024, 10.0),
    Micro("crumbs", "speckle", (0.22, 0.18, 0.12), (0.48, 0.40, 0.30), 1024),
    Micro("specks", "speckle", *GRAY, 2048),
)}

#: object -> parts; the first part is the object's base material, the rest are painted on it.
OBJECTS: dict[str, tuple[Part, ...]] = {
    "strawberry": (Part("skin", "speckles", 1.0), Part("seeds", "pits", 0.05), Part("calyx", "fuzz", 0.2)),
    "cat": (Part("fur", "hairs", 1.0), Part("eye", "iris", 0.08), Part("nose", "creases", 0.05)),
    "wall": (Part("bricks", "grains", 1.0), Part("mortar", "grit", 0.012)),
    "log": (Part("bark", "cracks", 1.0), Part("rings", "fibers", 0.8)),
    "leaf": (Part("blade", "cells", 1.0), Part("veins", "strands", 0.02)),
    "fish": (Part("scales", "ridges", 1.0), Part("fin", "rays", 0.3)),
    "ground": (Part("soil", "crumbs", 1.0), Part("pebbles", "specks", 0.5)),
}

#: The ambiguity pairs (same micro-texture distribution, different parents).
AMBIGUOUS_PAIRS: tuple[tuple[str, str], ...] = (("hairs", "fibers"), ("pits", "cells"))

#: Absolute size (base units) of the parents' meso-structure that separates each pair: fur locks
#: and wood ring bands; leaf veinlet spacing. Views narrower than a quarter of it are ambiguous.
MESO_PERIOD = 1.0 / 256
#: Deep zoom at which a 4x-narrower view than MESO_PERIOD / 2 falls inside one meso cell.
AMBIGUITY_ZOOM = 2048


def levels() -> dict[str, list[str]]:
    """The vocabulary by level: object, part, micro."""
    return {"object": list(OBJECTS),
            "part": [p.word for parts in OBJECTS.values() for p in parts],
            "micro": list(MICRO)}


def vocabulary() -> list[str]:
    """All words, objects first, then parts, then micro-textures (no duplicates)."""
    out: list[str] = []
    for words in levels().values():
        out += [w for w in words if w not in out]
    return out


def level_of(word: str) -> str:
    for level, words in levels().items():
        if word in words:
            return level
    raise KeyError(word)


def parent_of(word: str) -> str | None:
    """The word one level up (part -> object, micro -> part), None for objects."""
    for obj, parts in OBJECTS.items():
        for p in parts:
            if p.word == word:
                return obj
            if p.micro == word:
                return p.word
    return None

"""cozlib: the Chain-of-Zoom companion library.

Light on import: heavy libraries (torch, diffusers, transformers, pyiqa) load inside the
functions and classes that need them, so ``import cozlib`` and the CLI's ``--help`` stay fast.
See docs/ARCHITECTURE.md for the map of modules.
"""
__version__ = "0.1.0"

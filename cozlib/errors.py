"""User-facing errors: each message says what went wrong and how to fix it."""
from __future__ import annotations


class CozError(Exception):
    """An error caused by the user's input or set-up; the CLI prints it without a traceback."""


class BadImageError(CozError, ValueError):
    """The input is not an image cozlib can use (not an image, corrupt, too small, ...)."""


class ConfigError(CozError, ValueError):
    """An unknown name or an out-of-range setting (rec_type, backbone, prompt, steps, ...)."""


class MissingWeightsError(CozError, FileNotFoundError):
    """A weight file is absent; the message names the file and the folder to put it in."""

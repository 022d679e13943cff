"""User-facing errors: each message says what went wrong and how to fix it.

The command line (``cli.main``, ``notebooks.main``) prints a ``CozError`` as one line,
``error: <what>; <how to fix>``, and exits 2; ``--debug`` or ``COZ_DEBUG=1`` adds the traceback.
"""
from __future__ import annotations


class CozError(Exception):
    """An error caused by the user's input or set-up; the CLI prints it without a traceback."""


class BadImageError(CozError, ValueError):
    """The input is not an image cozlib can use (not an image, corrupt, too small, ...)."""


class ConfigError(CozError, ValueError):
    """An unknown name or an out-of-range setting (rec_type, backbone, prompt, steps, ...)."""


class MissingWeightsError(CozError, FileNotFoundError):
    """A weight file is absent; the message names the file and the folder to put it in."""


class OutputError(CozError, OSError):
    """An output cannot be written where asked (not a folder, not writable, not cozlib's to replace)."""


class Interrupted(BaseException):
    """SIGTERM (or SIGINT) arrived: raised in the main thread so every temp file is removed on the way out.

    A ``BaseException``, like ``KeyboardInterrupt``, so that ``except Exception`` blocks let it pass."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

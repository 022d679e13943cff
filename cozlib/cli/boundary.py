"""The one error boundary of every command (``python -m cozlib ...``, ``python -m cozlib.notebooks``).

- An error the user can fix (``CozError``, or an expected library error translated here: files,
  images, memory, YAML, weights) prints one line, ``error: <what>; <how to fix>``, and exits 2.
- SIGINT exits 130 and SIGTERM 143, with one line; the exception they raise runs every ``finally``
  on the way out, so temp files are removed and finished outputs stay complete.
- Anything else is a bug: its traceback is shown. ``--debug`` or ``COZ_DEBUG=1`` shows the traceback
  of translated errors too.
"""
from __future__ import annotations

import errno
import os
import signal
import sys
import traceback
from typing import Callable

from ..errors import CozError, Interrupted

#: Hints for the OS errors a user can do something about.
_ERRNO_HINTS = {
    errno.ENOSPC: "the disk is full; free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is full; free some space or write elsewhere",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.EACCES: "no permission; fix the permissions or use another path",
    errno.EPERM: "not permitted; fix the permissions or use another path",
    errno.ENOENT: "no such file or folder; check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
    errno.EISDIR: "the path is a folder where a file was expected; check the path",
    errno.ENAMETOOLONG: "the path is too long; use a shorter one",
}


def stdout():
    """The standard output a command prints its result to; an ``OutputError`` when it is closed."""
    from ..errors import OutputError
    if sys.stdout is None or getattr(sys.stdout, "closed", False):
        raise OutputError("standard output is closed, and this command prints its result there; redirect it to a "
                          "file instead (e.g. > out.txt)")
    return sys.stdout


def quiet_libraries() -> None:
    """Library chatter that is not the user's business on a command line (bitsandbytes' CPU kernel
    notice, diffusers' and transformers' load notes); errors still show."""
    import logging
    import warnings
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")      # read when each library sets up its logging
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in ("bitsandbytes", "diffusers", "transformers", "peft", "accelerate", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)   # deprecations inside the libraries


def say(text: str) -> None:
    """Print a command's result (commands that print one call ``stdout()`` before any work); a standard
    output that cannot take it is an ``OutputError`` saying so."""
    from ..errors import OutputError
    try:
        print(text, file=stdout(), flush=True)
    except OSError as e:
        raise OutputError(f"standard output cannot be written ({e.strerror or e}); redirect it to a file "
                          f"(e.g. > out.txt)") from None


def status(text: str) -> None:
    """Print a status line of a command whose result is in files: a closed or broken standard output
    loses only this line, never the finished work."""
    try:
        if sys.stdout is not None and not getattr(sys.stdout, "closed", False):
            print(text, flush=True)
    except (OSError, ValueError):
        _silence_stdout()


def debugging() -> bool:
    return os.environ.get("COZ_DEBUG", "") not in ("", "0")


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def translate(e: BaseException) -> str | None:
    """The one-line message of an expected library error, or None for a bug."""
    from PIL import Image, UnidentifiedImageError
    if isinstance(e, Image.DecompressionBombError):
        return f"{e}; if you trust the image, pass --max-pixels 0"
    if isinstance(e, UnidentifiedImageError):
        return f"{e}; give a PNG or JPEG image"
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return ("out of memory; use a smaller --process-size, fewer inputs at once, --device cpu, or a machine with "
                "more memory")
    if isinstance(e, BrokenPipeError):
        return None
    if isinstance(e, OSError):
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        hint = _ERRNO_HINTS.get(e.errno or -1, "")
        return f"{where}{e.strerror or e}" + (f"; {hint}" if hint else "")
    name = type(e).__name__
    module = type(e).__module__ or ""
    if name == "PapermillExecutionError" and getattr(e, "ename", "") in (
            "CozError", "ConfigError", "MissingWeightsError", "BadImageError", "OutputError"):
        return f"a notebook stopped at cell {getattr(e, 'exec_count', '?')}: {e.evalue}"
    if module.startswith("yaml"):
        return f"a YAML file cannot be read ({one_line(e)}); fix its syntax"
    if "No space left on device" in str(e):
        return f"the disk is full ({one_line(e)}); free some space or write elsewhere"
    if name in ("SafetensorError", "HeaderTooLarge") or module.startswith("safetensors"):
        return f"a weight file is corrupt or not a safetensors file ({one_line(e)}); restore or re-create it"
    if module.startswith("huggingface_hub"):
        return f"{one_line(e)}; nothing is downloaded at run time: put the files in a folder and pass it"
    return None


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(signum)


def guarded(run: Callable[[], int], debug: bool = False, prog: str = "cozlib") -> int:
    """``run()`` inside the error boundary; returns the exit code."""
    debug = debug or debugging()
    quiet_libraries()
    previous = {}
    if _main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, _raise_interrupted)
    try:
        return run()
    except CozError as e:
        _report(one_line(e), debug)
        return 2
    except (KeyboardInterrupt, Interrupted) as e:
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        name = signal.Signals(signum).name
        _report(f"interrupted ({name}); outputs finished before the interruption are complete, and no temporary file "
                f"was left", debug)
        return 128 + int(signum)
    except BrokenPipeError:  # `... | head`: the reader left; nothing to say
        _silence_stdout()
        return 0
    except Exception as e:  # noqa: BLE001  (translated or re-raised: a bug keeps its traceback)
        message = translate(e)
        if message is None:
            raise
        _report(one_line(message), debug)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _report(message: str, debug: bool) -> None:
    if debug:
        traceback.print_exc(file=sys.stderr)
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):
        pass
    if sys.stderr is not None:
        print(f"error: {message}", file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass

"""Command line: ``python -m cozlib {zoom, evaluate, metrics, world, train, explore, list, setup}``.

Argument names follow the official ``inference_coz.py`` (rec_type, upscale, process_size,
align_method); ``--steps`` is its ``--rec_num``. Every command checks all its arguments and inputs
before it computes anything; errors are one line (``boundary``). Each command lives in its module
(``zoom``, ``evaluate``, ``inspect``, ``world``, ``train``, ``explore``), which adds its parser and runs it.
"""
from __future__ import annotations

import argparse
import sys

from . import evaluate, explore, inspect, train, world, zoom
from .boundary import guarded

COMMANDS = (zoom, evaluate, inspect, world, train, explore)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: <what>; see ... --help``, exit 2."""

    def error(self, message: str):  # noqa: D401  (argparse's hook)
        print(f"error: {message}; see `{self.prog} --help`", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> Parser:
    p = Parser(prog="python -m cozlib", description="Chain-of-Zoom companion tools.")
    p.add_argument("--debug", action="store_true", help="show the traceback of every error (or COZ_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in COMMANDS:
        module.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        from ..runtime import set_threads
        set_threads()
        return args.run(args)
    return guarded(run, debug=args.debug)

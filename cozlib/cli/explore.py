"""``python -m cozlib explore``: the zoom explorer (notebook 90) in JupyterLab."""
from __future__ import annotations

import argparse
import os
import sys

from ..errors import ConfigError


def add_parsers(sub) -> None:
    e = sub.add_parser("explore", help="open the zoom explorer (notebook 90) in JupyterLab",
                       description="Open notebooks/90_zoom_explorer.ipynb in JupyterLab: pick a photo, a ZoomWorld "
                                   "scene or your own image, click where to zoom, compare the methods level by level.")
    e.add_argument("--port", type=int, default=None, help="JupyterLab's port (default: its own choice)")
    e.add_argument("--no-browser", action="store_true", help="do not open a browser (print the address instead)")
    e.set_defaults(run=run)


def command(args: argparse.Namespace) -> list[str]:
    """The JupyterLab command line that opens the explorer (checked: the notebook, the port, JupyterLab)."""
    import importlib.util
    from ..paths import resolve
    nb = resolve("notebooks/90_zoom_explorer.ipynb")
    if not nb.is_file():
        raise ConfigError(f"{nb} not found: run `python -m cozlib explore` from the project's clone")
    if importlib.util.find_spec("jupyterlab") is None:
        raise ConfigError("JupyterLab is not installed in this environment; run `make lab` (or pip install jupyterlab)")
    if args.port is not None and not 1 <= args.port <= 65535:
        raise ConfigError(f"--port must be from 1 to 65535, got {args.port}")
    cmd = [sys.executable, "-m", "jupyterlab", str(nb), f"--ServerApp.root_dir={resolve('.')}"]
    if args.port is not None:
        cmd += [f"--port={args.port}", "--ServerApp.port_retries=0"]  # the port asked for, or an error
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # JupyterLab refuses root without it (containers run as root)
    return cmd


def run(args: argparse.Namespace) -> int:
    cmd = command(args)
    print("opening the zoom explorer in JupyterLab (Ctrl-C twice to stop it):", " ".join(cmd[1:3]), cmd[3], file=sys.stderr)
    os.execv(cmd[0], cmd)  # JupyterLab takes over this process (and its Ctrl-C)
    return 0

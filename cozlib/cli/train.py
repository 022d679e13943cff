"""``python -m cozlib train sr | prompts | grpo``: train a demo-scale model from a preset and overrides."""
from __future__ import annotations

import argparse
import sys

#: {what: (summary, the config class's import path)}.
TRAINERS = {"sr": ("the OSEDiff-SD3 demo backbone (VAE, base model, word critic, one-step SR in two variants)",
                   "cozlib.training.sr.config:SRTrainConfig"),
            "prompts": ("the demo VLM (multi-scale and single-image) and the DAPE-like tagger",
                        "cozlib.training.prompts:PromptTrainConfig"),
            "grpo": ("the demo critic and the GRPO LoRA adapter of the multi-scale VLM (needs `train prompts` first)",
                     "cozlib.training.grpo:GRPOTrainConfig")}


def add_parsers(sub) -> None:
    from ..config import presets
    t = sub.add_parser("train", help="train a demo-scale model (writes weights with a manifest)",
                       description="Train a demo-scale model: settings from a preset file (params/train/WHAT-PRESET.yaml) "
                                   "and --set overrides; `train WHAT --help` lists every setting.")
    tsub = t.add_subparsers(dest="what", required=True)
    for what, (summary, cls) in TRAINERS.items():
        q = tsub.add_parser(what, help=summary, description=summary, epilog=_config_help(cls),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        q.add_argument("--preset", default="auto",
                       help="a preset name (params/train/%s-NAME.yaml: %s) or a YAML file; auto = cuda when CUDA is "
                            "visible and such a preset exists, else cpu" % (what, ", ".join(presets(what))))
        q.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                       help="override settings (values read as YAML), e.g. --set steps_sr=100 device=cpu")
        if what == "sr":
            q.add_argument("--minutes", type=float, default=None,
                           help="fit the step counts to this many minutes of training (measured on this device first)")
        q.set_defaults(run=run)


def _load(spec: str):
    import importlib
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def _config_help(spec: str) -> str:
    """The settings' help for ``train WHAT --help``, built only when asked (the imports are heavy)."""
    if not any(a in ("-h", "--help") for a in sys.argv[1:]):
        return ""
    from ..config import help_text
    return help_text(_load(spec))


def run(args: argparse.Namespace) -> int:
    from ..config import build, presets
    from ..runtime import resolve_device
    cls = _load(TRAINERS[args.what][1])
    preset = args.preset
    if preset == "auto":
        device = build(cls, args.what, None, args.overrides).device
        preset = "cuda" if resolve_device(device, "--set device").startswith("cuda") and "cuda" in presets(args.what) else "cpu"
    cfg = build(cls, args.what, preset, args.overrides)
    if args.what == "sr":
        from ..training.sr import train
        train(cfg, minutes=args.minutes)
    elif args.what == "prompts":
        from ..training.prompts import train
        train(cfg)
    else:
        from ..training.grpo import train
        train(cfg)
    return 0

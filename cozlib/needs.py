"""What a notebook's parameters need before it can run: the weights, data and device they name.

``missing(section)`` reads one params section (``params/*.yaml``) and returns, for each thing that is
not there, one line saying what to put where; nothing is loaded. ``python -m cozlib.notebooks`` skips
a notebook whose needs are missing and prints them, so that ``--params params/paper.yaml`` on a
machine with some of the paper's weights runs the notebooks those weights allow.
"""
from __future__ import annotations

from .errors import CozError

#: Extractors that read the ``vlm`` parameter (a Qwen2.5-VL folder) when it is given.
VLM_EXTRACTORS = ("vlm", "vlm-single", "vlm-grpo")


def _cuda(device: object) -> str | None:
    if not isinstance(device, str) or not device.startswith("cuda"):
        return None
    import torch
    return None if torch.cuda.is_available() else f"a CUDA GPU (device: {device}); or set device: cpu"


def _backbone(name: object) -> str | None:
    from .backbones import registry
    reg = registry()
    if not isinstance(name, str) or name not in reg:
        return None  # an unknown name is the notebook's own error, with the choices
    why = reg[name].availability()
    return f"backbone {name}: {why}" if why else None


def _extractor(name: str, has_vlm: bool) -> str | None:
    from .prompts import parse_prompt_spec, registry
    base = parse_prompt_spec(name)[0]
    reg = registry()
    if base not in reg or (has_vlm and base in VLM_EXTRACTORS):
        return None
    why = reg[base].availability()
    return f"prompt source {base}: {why}" if why else None


def _folder(what: str, path: object, marker: str, fix: str) -> str | None:
    from .paths import resolve
    if not path:
        return None
    return None if (resolve(str(path)) / marker).is_file() else f"{what} {path}: no {marker} there; {fix}"


def _resolved(what: str, fn, source: object) -> str | None:
    if not source:
        return None
    try:
        fn(source)
    except CozError as e:
        return f"{what}: {e}"
    return None


def missing(section: dict) -> list[str]:
    """One line per thing ``section`` names that is not on this machine (empty: it can run)."""
    from .prompts.vlm import resolve_vlm
    out = [_cuda(section.get("device"))]
    out += [_backbone(section.get(k)) for k in ("backbone", "l2_backbone")]
    out += [_extractor(e, bool(section.get("vlm"))) for e in section.get("extractors") or () if isinstance(e, str)]
    out += [_resolved("vlm", resolve_vlm, section.get("vlm")), _resolved("critic", resolve_vlm, section.get("critic")),
            _folder("vlm_lora", section.get("vlm_lora"), "adapter_config.json",
                    "give the GRPO adapter folder (the release's ckpt/VLM_LoRA/checkpoint-10000)"),
            _folder("second_run", section.get("second_run"), "history.json", "run `make weights` (or set it to null)")]
    dataset = section.get("dataset")
    if dataset in ("div2k", "div8k"):
        from .data import dataset_images
        out.append(_resolved(f"dataset {dataset}", lambda name: dataset_images(name, limit=1), dataset))
    return [m for m in out if m]


def report(stem: str, needs: list[str]) -> str:
    """The lines printed for a skipped notebook."""
    return f"[notebooks] {stem} skipped; it needs:\n" + "\n".join(f"    - {n}" for n in needs)

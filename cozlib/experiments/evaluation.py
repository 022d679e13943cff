"""Table 1 over a folder of images (docs/PAPER.md §6), sharded over processes with accelerate and resumable.

``evaluate`` runs every method's chain on every image, scores each state with no-reference metrics and
writes one record per image (``OUT/images/<stem>.json``, atomically) as soon as the image is done; the
images are split over the processes of ``accelerate launch`` / ``torchrun`` (``PartialState``: one per GPU,
or gloo on the CPU). A rerun skips every image whose record exists, so a killed run loses at most the
images in flight. When all processes are done, the main one merges the records into ``OUT/table1.csv``
(Table 1's layout, ``experiments.table1``). ``OUT/evaluate.json`` holds the settings: a rerun with other
settings into the same folder is refused.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from ..chain import ChainConfig
from ..errors import ConfigError

SETTINGS = "evaluate.json"


def check_out(out: Path, settings: dict) -> None:
    """``out`` is new, empty, or an earlier evaluation with the same settings (which is resumed)."""
    path = out / SETTINGS
    if path.is_file():
        earlier = json.loads(path.read_text())
        if earlier != settings:
            changed = sorted(k for k in set(earlier) | set(settings) if earlier.get(k) != settings.get(k))
            raise ConfigError(f"{out} holds an evaluation with other settings ({', '.join(changed)}); resume it with "
                              f"the same settings, or give another --out")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an evaluation folder of cozlib (no {SETTINGS}); give a new --out")


def shard(items: Sequence, index: int, count: int) -> list:
    """The items of process ``index`` of ``count`` (every ``count``-th, so each process gets a mix)."""
    return list(items[index::count])


def group_rows(items, methods, config: ChainConfig, metrics: Sequence[str], scorer, models) -> dict[str, list[dict]]:
    """Rows {image, method, k, magnification, metric, value} per image of ``items`` (run together:
    ``run_methods`` batches them): each method's chain, every state scored."""
    from .methods import run_methods
    results = run_methods({i.stem: i.image for i in items}, methods, config, None,
                          sources={i.stem: i.source for i in items}, models=models, progress=False, batch=len(items))
    rows: dict[str, list[dict]] = {i.stem: [] for i in items}
    for (img, label), res in results.items():
        for metric in metrics:
            values = scorer.score(metric, res.states)
            rows[img] += [{"image": img, "method": label, "k": k, "magnification": res.magnifications[k],
                           "metric": metric, "value": values[k]} for k in range(1, len(res.states))]
    models.forget_outputs()
    return rows


def evaluate(items, methods, config: ChainConfig, metrics: Sequence[str], out: Path, device: str = "auto",
             prompt_options: dict | None = None, backbone_options: dict | None = None, log=print,
             batch: int = 1) -> Path | None:
    """Run this process's share of ``items`` (``data.InputItem``), skipping recorded images, ``batch``
    images at a time (their chains in lockstep); the main process then merges every record into
    ``out/table1.csv`` (returned there; None elsewhere)."""
    from accelerate import PartialState
    from ..figures import save_table
    from ..imageio import save_json
    from ..metrics import Scorer
    from .methods import MethodModels
    from .tables import table1
    state = PartialState(cpu=device == "cpu")
    records = out / "images"
    if state.is_main_process:
        records.mkdir(parents=True, exist_ok=True)
        save_json(settings(methods, config, metrics, [i.stem for i in items]), out / SETTINGS)
    state.wait_for_everyone()
    dev = str(state.device) if device == "auto" else device
    models, scorer = MethodModels(dev, prompt_options, backbone_options), Scorer(dev)
    mine = [i for i in shard(items, state.process_index, state.num_processes) if not (records / f"{i.stem}.json").is_file()]
    log(f"[evaluate] process {state.process_index + 1}/{state.num_processes}: {len(mine)} image(s) to do")
    for i in range(0, len(mine), max(1, batch)):
        group = mine[i:i + max(1, batch)]
        for stem, rows in group_rows(group, methods, config, metrics, scorer, models).items():
            save_json({"image": stem, "rows": rows}, records / f"{stem}.json")
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    rows = [r for i in items for r in json.loads((records / f"{i.stem}.json").read_text())["rows"]]
    mags = [config.upscale ** k for k in range(1, config.steps + 1)]
    header, table = table1(rows, [m.label for m in methods], list(metrics), mags)
    save_table(header, table, "table1", out, {"config": asdict(config), "methods": [m.label for m in methods]},
               note=f"{len(items)} images; mean over images per method, metric and magnification "
                    f"(`python -m cozlib evaluate`).")
    return out / "table1.csv"


def settings(methods, config: ChainConfig, metrics: Sequence[str], stems: Sequence[str]) -> dict:
    """What ``OUT/evaluate.json`` records (and a resume must match)."""
    return {"methods": [m.label for m in methods], "metrics": list(metrics), "config": asdict(config),
            "images": list(stems)}

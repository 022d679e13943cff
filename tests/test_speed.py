"""The fast chain (cozlib/speed.py, chain.run_chains, batched full-image tiles; issue 27) gives the
prompts and images of the plain path, at tiny scale on the CPU; bench/paper_chain.py runs its three layouts."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from cozlib.chain import ChainConfig, run_chain, run_chains
from cozlib.errors import ConfigError

def _diff(a, b) -> int:
    return int(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).max())


@pytest.fixture(scope="module")
def scenes():
    from cozlib.experiments import world_inputs
    images, sources = world_inputs([1, 2, 3], 64)
    return list(images.values()), list(sources.values())


def test_static_cache_and_compiled_decoding_give_the_same_greedy_prompts(scenes):
    from cozlib.prompts.vlm import make_vlm_prompt
    from cozlib.speed import Speed
    plain = make_vlm_prompt(True, device="cpu")
    fast = make_vlm_prompt(True, device="cpu", speed=Speed(backend="eager"))
    assert fast.model.generation_config.cache_implementation == "static"
    assert fast.identity() == plain.identity() + ":static+compile=eager"   # never mixed in a chain cache
    cfg = ChainConfig(steps=2, process_size=64)
    for image, source in zip(*scenes):
        assert run_chain(image, cfg, _bicubic(), fast, source=source).prompts == \
            run_chain(image, cfg, _bicubic(), plain, source=source).prompts


def _bicubic():
    from cozlib.backbones import make_backbone
    return make_backbone("bicubic", device="cpu")


def test_chains_in_lockstep_are_the_single_chains(scenes):
    """run_chains (one generate and one SR call per step for all images) against run_chain per image:
    the same prompts and keys; the first state within 1/255 (batched convolutions round differently),
    later ones within 4/255 (a flipped level is fed to the next step)."""
    from cozlib.backbones import make_backbone
    from cozlib.prompts import make_prompt_extractor
    sr, vlm = make_backbone("osediff-demo", device="cpu"), make_prompt_extractor("vlm", device="cpu")
    cfg = ChainConfig(steps=3, process_size=64)
    images, sources = scenes
    many = run_chains(images, cfg, sr, vlm, sources=sources)
    for image, source, b in zip(images, sources, many):
        a = run_chain(image, cfg, sr, vlm, source=source)
        assert a.prompts == b.prompts and a.key == b.key and b.timings[0]["batch"] == 3
        diffs = [_diff(x, y) for x, y in zip(a.states, b.states)]
        assert diffs[0] == 0 and diffs[1] <= 1 and max(diffs) <= 4, diffs


def test_full_image_tiles_in_batches_are_the_tiles_one_by_one(scenes):
    from cozlib.backbones import make_backbone
    from cozlib.prompts import make_prompt_extractor
    sr, vlm = make_backbone("osediff-demo", device="cpu"), make_prompt_extractor("vlm", device="cpu", max_new_tokens=16)
    prev = scenes[0][0]
    one, tiles_one = sr.full_image_step(prev, prev, vlm, 4, tile=16, overlap=4, tile_batch=1)
    many, tiles_many = sr.full_image_step(prev, prev, vlm, 4, tile=16, overlap=4, tile_batch=8)
    assert len(tiles_one) == 25 and [t["prompt"] for t in tiles_one] == [t["prompt"] for t in tiles_many]
    assert _diff(one, many) <= 1


def test_compile_refuses_offloading_and_chains_without_a_model_to_speed_up(tmp_path):
    from cozlib.speed import Speed, check_speed
    with pytest.raises(ConfigError, match="--memory fast"):
        check_speed(Speed(), "24gb", "cuda")
    with pytest.raises(ConfigError, match="backend"):
        check_speed(Speed(backend="tvm"), None, "cpu")
    from cozlib.cli import main
    assert main(["zoom", "world:1", "--out", str(tmp_path / "z"), "--compile", "--process-size", "64"]) == 2
    assert main(["evaluate", "world:1", "--out", str(tmp_path / "e"), "--batch", "0"]) == 2
    assert not (tmp_path / "z").exists() and not (tmp_path / "e").exists()


def test_the_paper_chain_bench_runs_its_three_layouts_at_tiny_sizes(tmp_path):
    spec = importlib.util.spec_from_file_location("paper_chain", Path(__file__).parents[1] / "bench" / "paper_chain.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--tiny", "--device", "cpu", "--backend", "eager", "--steps", "2", "--repeats", "1",
                       "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]) == 0
    rows = json.loads((tmp_path / "out" / "cpu-paper_chain-tiny.json").read_text())
    assert [r["layout"] for r in rows] == ["official", "default", "ours"]
    ours = rows[2]
    assert ours["prompts_match_default"] is True and ours["max_diff_vs_default"] <= 1
    assert ours["speed"] == "static+compile=eager" and ours["chain_s"] > 0 and "speedup_vs_default" in ours
    assert all(r["vlm_ms"] > 0 and r["transformer_ms"] > 0 for r in rows)

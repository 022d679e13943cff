"""ZoomWorld: determinism, window consistency across zooms, words consistent across scales,
new detail at every zoom, bad arguments, the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from cozlib import world
from cozlib.errors import ConfigError
from cozlib.imageio import pil_to_tensor
from cozlib.world import vocab


def test_vocabulary_has_three_levels_and_single_lowercase_tokens():
    v = world.vocabulary()
    assert len(v) >= 30 and len(set(v)) == len(v)
    assert all(w.isalpha() and w.islower() for w in v)
    lv = world.levels()
    assert set(lv) == {"object", "part", "micro"} and all(len(ws) >= 5 for ws in lv.values())
    for a, b in vocab.AMBIGUOUS_PAIRS:  # identical micro-texture distributions, different parents
        ma, mb = vocab.MICRO[a], vocab.MICRO[b]
        assert (ma.family, ma.dark, ma.light, ma.f_lo, ma.stretch) == (mb.family, mb.dark, mb.light, mb.f_lo, mb.stretch)
        assert vocab.parent_of(a) != vocab.parent_of(b)


def test_render_is_deterministic_by_seed():
    a = world.render_view(5, (0.4, 0.6), 64, 48)
    b = world.render_view(5, (0.4, 0.6), 64, 48)
    c = world.render_view(6, (0.4, 0.6), 64, 48)
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()


@pytest.mark.parametrize("seed,center,zoom", [(1, (0.5, 0.5), 1.0), (2, (0.3, 0.6), 16.0), (3, (0.25, 0.28), 512.0)])
def test_window_consistency_high_res_downsampled_matches_low_res(seed, center, zoom):
    """A 4x box-downsampled 256 px render matches the 64 px render of the same window (the band
    limits differ slightly, so not exactly), far better than the render of a shifted window."""
    def psnr(a, b):
        return 10 * np.log10(1 / max(float(((a - b) ** 2).mean()), 1e-12))
    down = torch.nn.functional.avg_pool2d(pil_to_tensor(world.render_view(seed, center, zoom, 256)), 4)
    lo = pil_to_tensor(world.render_view(seed, center, zoom, 64))
    shifted = pil_to_tensor(world.render_view(seed, (center[0] + 0.3 / zoom, center[1]), zoom, 64))
    same, other = psnr(down, lo), psnr(down, shifted)
    assert same > 24 and same > other + 3, f"same window {same:.1f} dB, shifted window {other:.1f} dB"


def test_zoomed_words_are_true_for_the_coarser_region():
    """Every word of a zoomed view (covering >= 10% of it) is a word of the 4x coarser view seen
    with 4x the pixels (same pixel size, so the same words are resolvable)."""
    sc = world.scene(3)
    for o in sc.objects[:3]:
        for zoom in (4, 16, 64, 256):
            fine = world.window_words(3, world.view_window((o.cx, o.cy), zoom), 128)
            coarse = world.window_words(3, world.view_window((o.cx, o.cy), zoom / 4), 512)
            strong = {w for w, f in fine.items() if f >= 0.1}
            assert strong <= set(coarse), (o.kind, zoom, strong - set(coarse))


def test_words_fractions_sum_to_one_per_level():
    words = world.view_words(4, (0.5, 0.5), 1.0)
    objects = sum(f for w, f in words.items() if vocab.level_of(w) == "object")
    assert objects == pytest.approx(1.0, abs=0.03)


def test_deep_zoom_keeps_high_frequency_energy():
    """No blur floor: detail energy (bands of 2-8 px) at 1024x is of the order of the base view's,
    and does not decay deeper (4096x, 16384x: below every part's and meso-structure's scale)."""
    from cozlib.world.energy import band_energy
    o = world.scene(3).objects[0]
    base = np.mean([band_energy(world.render_view(s, (0.5, 0.5), 1, 128)) for s in (1, 2, 3)])
    at = {z: np.mean([band_energy(world.render_view(3, (o.cx + d, o.cy), z, 128)) for d in (0, 0.3 / z, 0.6 / z)])
          for z in (1024, 4096, 16384)}
    assert at[1024] > 0.1 * base, (at, base)
    assert at[4096] > 0.5 * at[1024] and at[16384] > 0.5 * at[1024], at


@pytest.mark.parametrize("kwargs,match", [
    ({"zoom": 0}, "zoom must be a number"), ({"zoom": -2}, "zoom must be a number"),
    ({"zoom": float("inf")}, "zoom must be a number"), ({"zoom": 4.0 ** 21}, "zoom must be a number"),
    ({"center": (1.5, 0.5)}, "outside the base view"), ({"size": 0}, "size must be a whole number"),
    ({"size": 10 ** 5}, "size must be a whole number"), ({"seed": -1}, "seed is a whole number"),
])
def test_bad_arguments(kwargs, match):
    args = {"seed": 1, "center": (0.5, 0.5), "zoom": 1.0, "size": 32} | kwargs
    with pytest.raises(ConfigError, match=match):
        world.render_view(args["seed"], args["center"], args["zoom"], args["size"])


def test_oracle_prompt_and_truth_metrics():
    from cozlib.chain import ChainConfig, run_chain
    from cozlib.backbones.simple import InterpolationBackbone
    from cozlib.metrics.truth import score_prompt, texture_distance
    from cozlib.prompts import make_prompt_extractor
    x0 = world.render_view(3, (0.5, 0.5), 1, 64)
    res = run_chain(x0, ChainConfig(rec_type="recursive_multiscale", steps=2, process_size=64),
                    backbone=InterpolationBackbone("bicubic"), extractor=make_prompt_extractor("oracle"),
                    source={"world_seed": 3})
    for k in (1, 2):
        truth = world.window_words(3, res.windows[k], 64)
        s = score_prompt(res.prompts[k - 1], truth, world.vocabulary())
        assert s.precision == 1.0 and s.hallucination == 0.0
    wrong = score_prompt("hairs, strawberry, banana", {"fibers": 1.0, "log": 1.0}, world.vocabulary())
    assert wrong.precision == 0.0 and wrong.recall == 0.0 and wrong.n_unknown == 1
    a = world.render_view(3, (0.25, 0.28), 256, 64)
    b = world.render_view(3, (0.252, 0.28), 256, 64)  # same texture, other phase
    from PIL import ImageFilter
    blurred = a.filter(ImageFilter.GaussianBlur(3))
    assert texture_distance(a, b) < texture_distance(a, blurred)
    with pytest.raises(ConfigError, match="world:SEED"):
        run_chain(x0, ChainConfig(rec_type="recursive", steps=1, process_size=64),
                  backbone=InterpolationBackbone("bicubic"), extractor=make_prompt_extractor("oracle"))


def cozlib(*args):
    return subprocess.run([sys.executable, "-m", "cozlib", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ, COZ_THREADS="1"), timeout=300)


def test_world_cli(tmp_path):
    r = cozlib("world", "vocab")
    assert r.returncode == 0 and json.loads(r.stdout) == world.vocabulary()
    r = cozlib("world", "words", "--seed", 3, "--center", 0.25, 0.28, "--zoom", 64)
    assert r.returncode == 0 and json.loads(r.stdout) == world.view_words(3, (0.25, 0.28), 64)
    r = cozlib("world", "render", "--seed", 3, "--center", 0.5, 0.5, "--zoom", 4, "--size", 40, "--out", tmp_path / "v.png")
    assert r.returncode == 0 and (tmp_path / "v.png").is_file()
    r = cozlib("world", "render", "--seed", 3, "--zoom", 0, "--out", tmp_path / "bad.png")
    assert r.returncode == 2 and "zoom must be a number" in r.stderr and not (tmp_path / "bad.png").exists()


def test_zoom_on_world_input_writes_truth(tmp_path):
    r = cozlib("zoom", "world:7", "--out", tmp_path, "--rec-type", "recursive_multiscale", "--backbone", "bicubic",
               "--prompt", "oracle", "--steps", 2, "--process-size", 48)
    assert r.returncode == 0, r.stderr
    d = tmp_path / "world-7"
    assert (d / "truth" / "scale2.png").is_file() and (d / "scale2.png").is_file()
    words = json.loads((d / "truth" / "words.json").read_text())
    prompts = json.loads((d / "prompts.json").read_text())
    assert len(words) == 3 and len(prompts) == 2
    assert all(w in words[k + 1] for k, p in enumerate(prompts) for w in p.split(", ") if w)


def test_dataset_splits_are_disjoint_and_written_whole(tmp_path):
    from cozlib.world.datasets import SPLITS, split_of, write_dataset
    assert split_of(5) == "train" and split_of(SPLITS["test"][0]) == "test"
    n = write_dataset(tmp_path, "val", 3, zooms=[16], size=32)
    rows = [json.loads(l) for l in (tmp_path / "val" / "index.jsonl").read_text().splitlines()]
    assert n == 3 and len(rows) == 3 and all(split_of(r["seed"]) == "val" for r in rows)
    assert (tmp_path / "val" / "000002_lr.png").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_a_batch_of_windows_renders_like_each_window_alone():
    sc = world.scene(3)
    windows = [world.view_window((0.2 + 0.1 * i, 0.3), 16) for i in range(4)]
    batch = sc.render(windows, 48)
    alone = torch.cat([sc.render([w], 48) for w in windows])
    assert batch.shape == (4, 3, 48, 48) and torch.equal(batch, alone)


def test_ambiguity_probe_takes_a_pair_and_a_shallow_zoom():
    """bench/ambiguity_zoom.py's use: hairs / fibers at 16x (the seeds' pits have no pure views there)."""
    from cozlib.world import ambiguity
    z, c, y = ambiguity.build("test", 2, zoom=16, size=16, classes=("hairs", "fibers"))
    assert z.shape == c.shape == (4, 3, 16, 16) and y.tolist() == [0, 0, 1, 1]
    res = ambiguity.train_probe(z, y, z, y, epochs=1, classes=("hairs", "fibers"))
    assert res.confusion.shape == (2, 2) and res.confusion.sum() == 4 and res.classes == ["hairs", "fibers"]
    with pytest.raises(RuntimeError, match="pure pits views"):
        ambiguity.build("test", 2, zoom=16, size=16)

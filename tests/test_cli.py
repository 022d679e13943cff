"""The CLI contract: `python -m cozlib zoom | metrics | list` (issue: foundation, item 6)."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from PIL import Image


def cozlib(*args, cwd=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1", COZ_THREADS="1")
    return subprocess.run([sys.executable, "-m", "cozlib", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


@pytest.fixture
def photo_file(tmp_path, random_image):
    p = tmp_path / "inputs" / "scene.png"
    p.parent.mkdir()
    random_image(90, 70, seed=2).save(p)
    return p


def test_zoom_writes_states_prompts_and_strip(tmp_path, photo_file):
    out = tmp_path / "out"
    r = cozlib("zoom", photo_file, "--out", out, "--rec-type", "recursive", "--backbone", "realesrgan",
               "--prompt", "fixed:red brick", "--steps", 2, "--process-size", 32, "--seed", 3, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    d = out / "scene"
    assert sorted(p.name for p in d.iterdir()) == [".cozlib", "chain.json", "chain.png", "prompts.json",
                                                   "scale0.png", "scale1.png", "scale2.png"]
    assert json.loads((d / "prompts.json").read_text()) == ["red brick", "red brick"]
    assert Image.open(d / "scale2.png").size == (32, 32)
    assert "zoom" in r.stderr  # the progress bar
    umask = os.umask(0)
    os.umask(umask)
    assert d.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700
    assert (d / "prompts.json").stat().st_mode & 0o777 == 0o666 & ~umask
    again = cozlib("zoom", photo_file, "--out", out, "--rec-type", "recursive", "--steps", 2,
                   "--process-size", 32, "--seed", 3, "--device", "cpu", "--prompt", "fixed:red brick")
    assert again.returncode == 0
    assert (d / "scale2.png").read_bytes() == (out / "scene" / "scale2.png").read_bytes()
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_zoom_is_byte_identical_across_runs(tmp_path, photo_file):
    outs = []
    for run in ("a", "b"):
        r = cozlib("zoom", photo_file, "--out", tmp_path / run, "--rec-type", "onestep", "--steps", 2,
                   "--process-size", 32, "--device", "cpu")
        assert r.returncode == 0, r.stderr
        outs.append([(tmp_path / run / "scene" / f"scale{k}.png").read_bytes() for k in range(3)])
    assert outs[0] == outs[1]


@pytest.mark.parametrize("args,message", [
    (["--backbone", "esrgan9"], "unknown backbone"),
    (["--prompt", "telepathy"], "unknown prompt"),
    (["--steps", "0"], "steps must be a whole number"),
    (["--steps", "5", "--rec-type", "onestep"], "not a multiple of 1024"),
])
def test_zoom_bad_settings_exit_2_with_message(tmp_path, photo_file, args, message):
    r = cozlib("zoom", photo_file, "--out", tmp_path / "o", "--process-size", 64, *args)
    assert r.returncode == 2 and message in r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_rec_type_is_rejected_by_the_parser(tmp_path, photo_file):
    r = cozlib("zoom", photo_file, "--out", tmp_path / "o", "--rec-type", "zigzag")
    assert r.returncode == 2 and "invalid choice: 'zigzag'" in r.stderr


def test_bad_input_writes_nothing(tmp_path, photo_file):
    bad = tmp_path / "inputs" / "broken.png"
    bad.write_bytes(photo_file.read_bytes()[:60])
    out = tmp_path / "out"
    r = cozlib("zoom", photo_file, bad, "--out", out, "--backbone", "bicubic", "--process-size", 32)
    assert r.returncode == 2 and "broken.png" in r.stderr and "corrupt or truncated" in r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_metrics_prints_csv(tmp_path, photo_file):
    out = tmp_path / "out"
    assert cozlib("zoom", photo_file, "--out", out, "--rec-type", "bicubic", "--steps", 1,
                  "--process-size", 96).returncode == 0
    r = cozlib("metrics", out, "--metrics", "piqe,psnr", "--reference", out)
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == ["path", "metric", "value"]
    names = {(os.path.basename(p), m) for p, m, _ in rows[1:]}
    assert names == {(f"scale{k}.png", m) for k in (0, 1) for m in ("piqe", "psnr")}  # the strip is skipped
    assert all(float(v) > 0 for _, m, v in rows[1:])


def test_metrics_skips_missing_weights_with_a_message(tmp_path, photo_file):
    env_home = tmp_path / "torchhome"
    r = subprocess.run([sys.executable, "-m", "cozlib", "metrics", str(photo_file), "--metrics", "piqe,musiq"],
                       capture_output=True, text=True, env=dict(os.environ, TORCH_HOME=str(env_home)))
    assert r.returncode == 0
    assert "skipping musiq: needs musiq_koniq_ckpt-e95806b9.pth in" in r.stderr
    assert len(r.stdout.strip().splitlines()) == 2


def test_list_names_everything_and_what_is_missing(tmp_path):
    r = subprocess.run([sys.executable, "-m", "cozlib", "list"], capture_output=True, text=True,
                       env=dict(os.environ, TORCH_HOME=str(tmp_path)))
    assert r.returncode == 0
    for name in ("realesrgan", "nearest", "bicubic", "null", "fixed:TEXT", "niqe", "piqe", "musiq", "clipiqa",
                 "vlm ", "vlm-single", "vlm-grpo", "dape", "oracle"):
        assert name in r.stdout
    assert "MISSING" in r.stdout and "niqe_modelparameters.mat" in r.stdout  # TORCH_HOME moved: niqe too


def test_zoom_full_image_writes_growing_states_and_tile_prompts(tmp_path, photo_file):
    import json
    r = cozlib("zoom", photo_file, "--out", tmp_path / "out", "--backbone", "bicubic", "--full-image",
               "--steps", "1", "--process-size", "48", "--prompt", "fixed:sand")
    assert r.returncode == 0, r.stderr
    d = tmp_path / "out" / "scene"
    assert Image.open(d / "scale1.png").size == (192, 192)
    tiles = json.loads((d / "tiles.json").read_text())
    assert len(tiles) == 1 and all(t["prompt"] == "sand" for t in tiles[0])


def test_zoom_world_with_the_vlm_prompt(tmp_path):
    """The demo VLM from a fresh clone's committed weights, through the CLI, on a ZoomWorld input."""
    r = cozlib("zoom", "world:1010000", "--out", tmp_path / "out", "--backbone", "osediff-demo", "--prompt", "vlm",
               "--rec-type", "recursive_multiscale", "--steps", "2", "--process-size", "64", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    prompts = json.loads((tmp_path / "out" / "world-1010000" / "prompts.json").read_text())
    assert len(prompts) == 2 and all(isinstance(p, str) for p in prompts)


@pytest.mark.parametrize("prompt, rec_type", [("vlm-single", "recursive"), ("vlm-grpo", "recursive_multiscale"),
                                              ("dape", "recursive_multiscale")])
def test_each_learned_prompt_source_runs_in_a_chain(prompt, rec_type):
    """The other committed extractors in process (the CLI path is the same registry)."""
    from cozlib import experiments
    from cozlib.chain import ChainConfig, run_chain
    from cozlib.backbones import make_backbone
    from cozlib.prompts import make_prompt_extractor
    from cozlib.world.vocab import vocabulary
    images, sources = experiments.world_inputs([1010000], 64)
    res = run_chain(images["world-1010000"], ChainConfig(rec_type=rec_type, steps=2, process_size=64),
                    make_backbone("osediff-demo", device="cpu"), make_prompt_extractor(prompt, device="cpu"),
                    source=sources["world-1010000"])
    assert len(res.prompts) == 2 and len(res.states) == 3
    words = {w for p in res.prompts for w in p.split(", ") if w}
    assert words <= set(vocabulary()) or prompt != "dape"  # the tagger names vocabulary words only

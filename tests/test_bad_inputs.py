"""Bad inputs and faults, table-driven: each gives exit 2 (130/143 for signals) and one line
``error: ...`` with no traceback, before any work; nothing partial or temporary is left, nothing the
user owns is deleted, and no file can run code. In-process through ``cli.main`` (fast), with real
subprocesses for signals and concurrent runs."""
from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _png_header_only(path: Path, w: int, h: int) -> None:
    """A PNG whose header claims w x h (a decompression bomb's shape) with one tiny IDAT."""
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working folder with a few files a user might have."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)).save("good.png")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save("small.png")
    Image.new("L", (64, 64), 128).save("gray.png")
    Path("notes.png").write_text("not pixels")
    _png_header_only(tmp_path / "bomb.png", 14000, 14000)
    Path("afile").write_text("mine")
    Path("empty").mkdir()
    Path("user/good/important").mkdir(parents=True)
    Path("user/good/important/thesis.txt").write_text("t")
    Path("out").mkdir()
    Path("out/good").write_text("a file where a folder would go")
    Path("userpic.png").write_bytes(Path("small.png").read_bytes())
    os.symlink(tmp_path / "empty", tmp_path / "linkdir")
    Path("out2").mkdir()
    os.symlink(tmp_path / "empty", tmp_path / "out2" / "good")
    Path("dir.png").mkdir()
    Path("weights/good").mkdir(parents=True)                 # another command's output (kind: weights)
    Path("weights/good/.cozlib").write_text('{"kind": "weights", "written_by": "cozlib"}')
    Path("weights/good/model.bin").write_bytes(b"weights")
    Path("mixed").mkdir()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save("mixed/a.png")
    Path("mixed/b.png").write_bytes(Path("good.png").read_bytes()[:200])  # truncated
    os.mkfifo("pipe.png")
    os.mkfifo("pipe.yaml")
    Path("fifo-dir").mkdir()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save("fifo-dir/a.png")
    os.mkfifo("fifo-dir/b.png")
    Path("ours/good").mkdir(parents=True)                    # a zoom output of cozlib's with a file of the user's
    Path("ours/good/scale0.png").write_bytes(b"x")
    from cozlib.outputs import seal
    seal(Path("ours/good"), "zoom")
    Path("ours/good/notes.txt").write_text("mine")
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (folders: None), to compare before and after."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else p.stat().st_mode)
            for p in sorted(root.rglob("*"))}


Z = ["zoom", "good.png", "--backbone", "bicubic", "--steps", "2", "--process-size", "64"]

#: (id, argv, pattern the one error line must match)
CASES = [
    ("zoom-user-folder-kept", ["zoom", "good.png", "--out", "user", "--backbone", "bicubic", "--steps", "2",
                               "--process-size", "64"], r"user/good exists and was not written by cozlib"),
    ("zoom-out-stem-is-file", Z + ["--out", "out"], r"out/good exists and is a file"),
    ("zoom-out-stem-is-link", Z + ["--out", "out2"], r"symbolic link"),
    ("zoom-out-is-file", Z + ["--out", "afile"], r"is a file, not a folder"),
    ("zoom-out-empty", Z + ["--out", ""], r"--out is empty"),
    ("zoom-out-proc", Z + ["--out", "/proc/cozlib-out"], r"kernel file system"),
    ("zoom-out-under-file", Z + ["--out", "afile/sub"], r"afile is a file"),
    ("zoom-seed-huge", Z + ["--out", "o", "--seed", "99999999999999999999"], r"seed must be a whole number"),
    ("zoom-seed-negative", Z + ["--out", "o", "--seed", "-1"], r"seed must be a whole number"),
    ("zoom-steps-zero", Z[:4] + ["--steps", "0", "--out", "o"], r"steps must be a whole number"),
    ("zoom-world-steps-30", ["zoom", "world:3", "--steps", "30", "--out", "o", "--backbone", "bicubic"],
     r"Use at most --steps 20"),
    ("zoom-steps-100", ["zoom", "good.png", "--steps", "100", "--out", "o"], r"steps must be a whole number from 1 to 64"),
    ("zoom-process-size-7", ["zoom", "good.png", "--process-size", "7", "--out", "o"], r"process_size must be"),
    ("zoom-process-size-63", ["zoom", "good.png", "--process-size", "63", "--out", "o"], r"not a multiple of 4"),
    ("zoom-process-size-100000", ["zoom", "good.png", "--process-size", "100000", "--out", "o"], r"from 8 to 4096"),
    ("zoom-onestep-crop-fraction", ["zoom", "good.png", "--rec-type", "onestep", "--process-size", "200", "--out", "o"],
     r"not a multiple of 256"),
    ("zoom-upscale-1", Z + ["--upscale", "1", "--out", "o"], r"upscale must be"),
    ("zoom-max-new-tokens-0", Z + ["--out", "o", "--max-new-tokens", "0"], r"--max-new-tokens"),
    ("zoom-vlm-needs-multiscale", Z + ["--out", "o", "--prompt", "vlm", "--rec-type", "recursive"], r"multi-scale"),
    ("zoom-oracle-needs-world", Z + ["--out", "o", "--prompt", "oracle"], r"needs ZoomWorld inputs"),
    ("zoom-fixed-without-text", Z + ["--out", "o", "--prompt", "fixed:"], r"needs text"),
    ("zoom-unknown-prompt", Z + ["--out", "o", "--prompt", "gpt"], r"unknown prompt"),
    ("zoom-unknown-backbone", ["zoom", "good.png", "--backbone", "sd9", "--out", "o"], r"unknown backbone"),
    ("zoom-weights-wrong-backbone", ["zoom", "good.png", "--weights", "x", "--out", "o"], r"apply to the osediff"),
    ("zoom-missing-input", ["zoom", "nope.png", "--out", "o", "--backbone", "bicubic"], r"no such file"),
    ("zoom-not-an-image", ["zoom", "notes.png", "--out", "o", "--backbone", "bicubic"], r"not an image file"),
    ("zoom-decompression-bomb", ["zoom", "bomb.png", "--out", "o", "--backbone", "bicubic"], r"--max-pixels"),
    ("zoom-grayscale", ["zoom", "gray.png", "--out", "o", "--backbone", "bicubic"], r"grayscale.*--convert"),
    ("zoom-same-stem", ["zoom", "good.png", "good.png", "--out", "o", "--backbone", "bicubic"], r"share an output folder"),
    ("zoom-unknown-photo", ["zoom", "photo:mona", "--out", "o", "--backbone", "bicubic"], r"unknown photo"),
    ("zoom-world-negative", ["zoom", "world:-1", "--out", "o", "--backbone", "bicubic"], r"seed must be"),
    ("zoom-world-text", ["zoom", "world:abc", "--out", "o", "--backbone", "bicubic"], r"integer seed"),
    ("zoom-overlap-without-full-image", Z + ["--out", "o", "--tile-overlap", "8"], r"--full-image only"),
    ("zoom-latent-tile-without-full-image", Z + ["--out", "o", "--latent-tiled-size", "16"], r"--full-image only"),
    ("zoom-latent-tile-with-pixel-blend", ["zoom", "good.png", "--full-image", "--steps", "1", "--out", "o",
                                          "--backbone", "bicubic", "--latent-tiled-size", "16"], r"latent blend's"),
    ("zoom-full-image-too-large", ["zoom", "good.png", "--full-image", "--steps", "4", "--out", "o",
                                   "--backbone", "bicubic"], r"limit 16384"),
    ("zoom-max-pixels-negative", Z + ["--out", "o", "--max-pixels", "-1"], r"--max-pixels must be"),
    ("zoom-cache-is-file", Z + ["--out", "o", "--cache", "afile"], r"--cache afile is a file"),
    ("zoom-unknown-flag", Z + ["--out", "o", "--zoomz", "2"], r"unrecognized arguments"),
    ("zoom-into-another-kind", Z + ["--out", "weights"], r"another kind \(weights, not zoom\)"),
    ("zoom-backbone-with-nearest", ["zoom", "good.png", "--rec-type", "nearest", "--backbone", "realesrgan", "--out", "o"],
     r"not used by --rec-type nearest"),
    ("zoom-prompt-with-bicubic", ["zoom", "good.png", "--rec-type", "bicubic", "--prompt", "dape", "--out", "o"],
     r"not used by --rec-type bicubic"),
    ("zoom-device-bogus", Z + ["--out", "o", "--device", "gpu9"], r"is not a device"),
    ("zoom-device-cuda-missing", Z + ["--out", "o", "--device", "cuda:7"], r"CUDA|only"),
    ("zoom-vlm-lora-without-vlm", Z + ["--out", "o", "--vlm-lora", "empty"], r"--vlm-lora applies to --prompt vlm"),
    ("zoom-vlm-lora-missing", Z + ["--out", "o", "--prompt", "vlm", "--vlm-lora", "nowhere"], r"no such folder"),
    ("zoom-fixed-blank", Z + ["--out", "o", "--prompt", "fixed:   "], r"needs text"),
    ("zoom-fifo", ["zoom", "pipe.png", "--out", "o", "--backbone", "bicubic"], r"not a regular file"),
    ("zoom-max-pixels-small", Z + ["--out", "o", "--max-pixels", "100"], r"12,000 px, over the limit of 100 px"),
    ("zoom-demo-weights-missing", ["zoom", "good.png", "--backbone", "osediff-demo", "--weights", "nowhere", "--out", "o"],
     r"--weights nowhere: no such folder"),
    ("metrics-truncated-among-good", ["metrics", "mixed", "--metrics", "piqe"], r"b.png: the image is corrupt"),
    ("metrics-device-bogus", ["metrics", "good.png", "--device", "tpu"], r"is not a device"),
    ("zoom-device-mps", Z + ["--out", "o", "--device", "mps"], r"MPS"),
    ("zoom-out-inside-weights", Z + ["--out", "weights/good"], r"inside .*cozlib output \(weights\)"),
    ("zoom-user-file-inside-own-output", Z + ["--out", "ours"], r"files cozlib did not write"),
    ("zoom-user-prompt-with-nearest", ["zoom", "good.png", "--rec-type", "nearest", "--user-prompt", "a cat", "--out", "o"],
     r"--user-prompt is not used"),
    ("zoom-align-with-bicubic", ["zoom", "good.png", "--rec-type", "bicubic", "--align-method", "wavelet", "--out", "o"],
     r"--align-method is not used"),
    ("zoom-cache-with-full-image", ["zoom", "good.png", "--full-image", "--steps", "1", "--process-size", "64",
                                    "--backbone", "bicubic", "--cache", "c", "--out", "o"], r"not cached"),
    ("metrics-fifo-among-images", ["metrics", "fifo-dir", "--metrics", "piqe"], r"not a regular file"),
    ("metrics-reference-fifo", ["metrics", "good.png", "--metrics", "psnr", "--reference", "pipe.png"],
     r"not a regular file"),
    ("world-render-device-mps", ["world", "render", "--seed", "3", "--device", "mps", "--out", "v.png"], r"MPS"),
    ("train-preset-fifo", ["train", "sr", "--preset", "pipe.yaml"], r"not a regular file"),
    ("train-outputs-overlap", ["train", "prompts", "--preset", "smoke", "--set", "out_vlm=x", "out_dape=x", "work=wk"],
     r"two output folders overlap"),
    ("train-grpo-outputs-overlap", ["train", "grpo", "--preset", "smoke", "--set", "out=x", "critic_out=x/c", "work=wk"],
     r"two output folders overlap"),
    ("train-device-mps", ["train", "sr", "--preset", "smoke", "--set", "device=mps", "out=w", "work=wk"], r"MPS"),
    ("metrics-empty-folder", ["metrics", "empty"], r"no images there"),
    ("metrics-niqe-too-small", ["metrics", "small.png"], r"too small for niqe.*--metrics piqe"),
    ("metrics-psnr-needs-reference", ["metrics", "good.png", "--metrics", "psnr"], r"need --reference"),
    ("metrics-reference-missing-file", ["metrics", "good.png", "--metrics", "psnr", "--reference", "empty"],
     r"no reference image"),
    ("metrics-missing-folder", ["metrics", "nowhere"], r"no such file or folder"),
    ("metrics-unknown-metric", ["metrics", "good.png", "--metrics", "lpips"], r"unknown metric"),
    ("metrics-no-metric", ["metrics", "good.png", "--metrics", ","], r"no metric named"),
    ("metrics-bomb", ["metrics", "bomb.png", "--metrics", "piqe"], r"--max-pixels"),
    ("world-render-zoom-inf", ["world", "render", "--seed", "3", "--zoom", "inf", "--out", "v.png"], r"zoom must be"),
    ("world-render-zoom-1e17", ["world", "render", "--seed", "3", "--zoom", "1e17", "--out", "v.png"], r"zoom must be"),
    ("world-words-zoom-nan", ["world", "words", "--seed", "3", "--zoom", "nan"], r"zoom must be"),
    ("world-words-zoom-1e17", ["world", "words", "--seed", "3", "--zoom", "1e17"], r"zoom must be"),
    ("world-render-size-huge", ["world", "render", "--seed", "3", "--size", "100000", "--out", "v.png"], r"size must be"),
    ("world-render-seed-negative", ["world", "render", "--seed", "-1", "--out", "v.png"], r"seed is a whole number"),
    ("world-render-out-folder", ["world", "render", "--seed", "3", "--size", "16", "--out", "dir.png"], r"is a folder"),
    ("world-render-out-user-file", ["world", "render", "--seed", "3", "--size", "16", "--out", "userpic.png"],
     r"was not written by cozlib"),
    ("world-render-out-not-png", ["world", "render", "--seed", "3", "--out", "v.jpg"], r"ending in .png"),
    ("world-render-center-outside", ["world", "render", "--seed", "3", "--center", "2", "0.5", "--out", "v.png"],
     r"outside the base view"),
    ("world-dataset-upscale-0", ["world", "dataset", "--split", "val", "--n", "2", "--upscale", "0", "--out", "ds"],
     r"--upscale must be"),
    ("world-dataset-zoom-inf", ["world", "dataset", "--split", "val", "--n", "2", "--zoom", "inf", "--out", "ds"],
     r"--zoom values"),
    ("world-dataset-n-0", ["world", "dataset", "--split", "val", "--n", "0", "--out", "ds"], r"--n must be"),
    ("train-steps-negative", ["train", "sr", "--preset", "smoke", "--set", "steps_sr=-1"], r"steps_sr must be"),
    ("train-unknown-setting", ["train", "sr", "--set", "stpes_sr=1"], r"unknown SRTrainConfig field"),
    ("train-unknown-preset", ["train", "sr", "--preset", "gpu"], r"unknown preset"),
    ("train-minutes-zero", ["train", "sr", "--preset", "smoke", "--minutes", "0", "--set", "out=w", "work=wk"],
     r"--minutes must be"),
    ("train-out-user-folder", ["train", "sr", "--preset", "smoke", "--set", "out=user", "work=wk"],
     r"user exists and was not written by cozlib"),
    ("train-bad-yaml-value", ["train", "prompts", "--set", "steps_vlm=ten"], r"steps_vlm must be int"),
    ("train-grpo-group-of-one", ["train", "grpo", "--set", "num_generations=1"], r"num_generations"),
    ("train-out-equals-work", ["train", "sr", "--preset", "smoke", "--set", "out=w", "work=w"], r"overlap"),
    ("train-device-missing", ["train", "sr", "--preset", "smoke", "--set", "device=cuda:3", "out=w", "work=wk"],
     r"--set device"),
    ("world-render-out-fifo", ["world", "render", "--seed", "3", "--size", "16", "--out", "pipe.png"],
     r"not a regular file \(a pipe"),
    ("train-seed-negative", ["train", "sr", "--preset", "smoke", "--set", "seed=-1", "out=w", "work=wk"],
     r"seed must be a whole number from 0"),
    ("train-seed-huge", ["train", "prompts", "--preset", "smoke", "--set", "seed=99999999999999999999999"],
     r"seed must be a whole number from 0"),
    ("zoom-memory-and-dtype", Z[:2] + ["--backbone", "osediff-demo", "--out", "o", "--memory", "24gb", "--dtype",
                                       "bfloat16"], r"--memory sets the precision"),
    ("zoom-lora-path-missing", Z[:2] + ["--backbone", "osediff-sd3", "--out", "o", "--lora-path", "nope.pkl"],
     r"--lora-path nope.pkl: no such file"),
    ("zoom-lora-path-demo", Z[:2] + ["--backbone", "osediff-demo", "--out", "o", "--vae-path", "good.png"],
     r"--vae-path applies to --backbone osediff-sd3"),
    ("zoom-vlm-lora-on-base", Z + ["--out", "o", "--prompt", "vlm", "--rec-type", "recursive_multiscale",
                                   "--vlm-lora", "."], r"--vlm-lora applies to --prompt vlm-grpo"),
    ("zoom-text-device-absent", Z[:2] + ["--backbone", "osediff-demo", "--out", "o", "--text-device", "cuda:7"],
     r"--text-device"),
    ("zoom-vae-tiled-size-tiny", Z[:2] + ["--backbone", "osediff-demo", "--out", "o", "--vae-tiled-size", "3"],
     r"--vae-tiled-size must be"),
    ("zoom-dape-on-a-photo", Z + ["--out", "o", "--prompt", "dape"], r"demo tagger was trained on ZoomWorld only"),
    ("train-grpo-no-policy", ["train", "grpo", "--preset", "smoke", "--set", "policy=nowhere", "out=g", "critic_out=c",
                              "work=gw"], r"policy nowhere: no model folder"),
]


def call(argv: list[str]) -> int:
    """``python -m cozlib ARGV`` in this process: its exit code (argparse's errors exit through SystemExit)."""
    from cozlib.cli import main
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_bad_input_gives_one_error_line_and_leaves_everything(place, capsys, case):
    _, argv, pattern = case
    before = snapshot(place)
    code = call(argv)
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.lstrip("\r").startswith("zoom")]
    assert code == 2, (code, err)
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert re.search(pattern, err[0]), err[0]
    assert snapshot(place) == before  # nothing written, nothing deleted, no temp file


def test_the_users_folder_survives_and_a_marked_folder_is_replaced(place, capsys):
    """The reported data loss: OUT/<stem> of the user's is never removed; cozlib's own is replaced whole."""
    from cozlib.cli import main
    assert main(Z + ["--out", "user"]) == 2
    assert Path("user/good/important/thesis.txt").read_text() == "t"
    assert main(Z + ["--out", "mine"]) == 0 and Path("mine/good/.cozlib").is_file()
    first = Path("mine/good/scale2.png").read_bytes()
    assert main(Z + ["--out", "mine", "--seed", "7"]) == 0          # cozlib's own folder: replaced whole
    assert Path("mine/good/scale2.png").read_bytes() == first        # bicubic: the same pixels
    assert sorted(p.name for p in Path("mine").iterdir()) == ["good"]  # no temp or old copies left
    assert main(["world", "dataset", "--split", "val", "--n", "1", "--size", "16", "--zoom", "4", "--out", "user"]) == 0
    assert Path("user/val/.cozlib").is_file() and Path("user/good/important/thesis.txt").read_text() == "t"


def test_a_closed_standard_output_is_an_error_not_a_traceback(place, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdout", None)
    for argv in (["metrics", "good.png", "--metrics", "piqe"], ["world", "words", "--seed", "3"], ["list"]):
        assert call(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all("standard output is closed" in line for line in err), err


def test_exif_orientation_is_honoured(tmp_path):
    from cozlib.imageio import load_image
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = 255                                   # left half white
    exif = Image.Exif()
    exif[0x0112] = 6                                  # rotate 90 degrees clockwise to view
    Image.fromarray(a).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    im = load_image(tmp_path / "phone.jpg")
    assert im.size == (20, 40)                        # upright: tall
    top, bottom = np.asarray(im)[:5].mean(), np.asarray(im)[-5:].mean()
    assert top > 200 and bottom < 50                  # the white half is on top after the turn


def test_a_corrupt_chain_cache_is_rebuilt_with_a_warning(place, capsys):
    from cozlib.cli import main
    args = Z + ["--out", "o", "--cache", "cache"]
    assert main(args) == 0
    (entry,) = [p for p in Path("cache").iterdir() if not p.name.startswith(".")]
    good = (entry / "scale2.png").read_bytes()
    from cozlib.chain import CHAIN_FORMAT
    for breakage in ("{not json", json.dumps({"format": CHAIN_FORMAT})):   # broken JSON, a missing key
        (entry / "meta.json").write_text(breakage)
        capsys.readouterr()
        assert main(args) == 0
        err = capsys.readouterr().err
        assert "warning: chain cache entry" in err and "Traceback" not in err
        assert (entry / "scale2.png").read_bytes() == good and json.loads((entry / "meta.json").read_text())["format"] == CHAIN_FORMAT


def test_no_file_can_run_code_every_torch_load_is_weights_only(tmp_path):
    """A pickle in a training work folder that would run code is refused; the stage starts over."""
    import torch
    from cozlib.training.loop import Stage
    flag = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {flag}",))
    (tmp_path / "ckpt").mkdir()
    torch.save({"step": 3, "state": Evil()}, tmp_path / "ckpt" / "toy.pt")
    net = torch.nn.Linear(2, 1)
    lines = []
    Stage("toy", 2, tmp_path / "ckpt", {"net": net}, log_every=1).run(lambda i: {"l": 0.0}, lines.append)
    assert not flag.exists() and "cannot be read" in lines[0]
    offenders = [f"{p}:{i}" for p in [*ROOT.glob("cozlib/**/*.py"), *ROOT.glob("bench/*.py"), *ROOT.glob("tests/*.py")]
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if "torch.load(" in line and "weights_only=True" not in line]
    assert not offenders, offenders


def test_notebook_runner_refuses_bad_params_before_running(tmp_path, capsys):
    from cozlib.notebooks import main
    bad = {"unknown key": "00_quickstart:\n  stpes: 2\n", "wrong type": "00_quickstart:\n  steps: two\n",
           "malformed": "00_quickstart: [\n", "no notebook": "07_nothing:\n  steps: 2\n"}
    for name, text in bad.items():
        p = tmp_path / f"{name.replace(' ', '_')}.yaml"
        p.write_text(text)
        assert main(["--params", str(p), "--out", str(tmp_path / "nb"), "00"]) == 2, name
    assert main(["--params", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "nb")]) == 2
    assert main(["--params", "params/smoke.yaml", "--out", str(tmp_path / "nb"), "08"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 6 and all(line.startswith("error: ") for line in err), err
    assert "stpes" in err[0] and "steps" in err[0] and "unknown notebook" in err[5]
    assert not (tmp_path / "nb").exists()


def _cli(*args, cwd, **kw) -> subprocess.Popen:
    """``python -m cozlib ARGS`` as a user starts it from a terminal: SIGINT at its default even when the
    tests themselves run in the background (a shell starts background jobs with SIGINT ignored, and a
    child inherits that; Python then installs no KeyboardInterrupt)."""
    env = {**os.environ, "COZ_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    then = kw.pop("preexec_fn", None)

    def start() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if then is not None:
            then()
    return subprocess.Popen([sys.executable, "-m", "cozlib", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=start, **kw)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signals_stop_cleanly_and_leave_finished_outputs_whole(tmp_path, signum, code):
    photos = ["photo:astronaut", "photo:coffee", "photo:chelsea", "photo:rocket", "photo:hubble", "photo:grace_hopper"]
    p = _cli("zoom", *photos, "--out", "o", "--backbone", "realesrgan", "--rec-type", "recursive",
             "--process-size", "256", "--steps", "3", cwd=tmp_path)
    deadline = time.time() + 120
    while not (tmp_path / "o" / "astronaut").exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    p.send_signal(signum)
    _, err = p.communicate(timeout=120)
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.lstrip().startswith("zoom")]
    assert p.returncode == code, err
    assert len(lines) == 1 and lines[0].startswith("error: interrupted") and "Traceback" not in err, err
    done = [d for d in (tmp_path / "o").iterdir()]
    assert all(not d.name.startswith(".") for d in done), done               # no temp folder left
    for d in done:                                                            # every finished one is whole
        assert {"scale0.png", "scale3.png", "chain.json", "prompts.json", "chain.png", ".cozlib"} <= {f.name for f in d.iterdir()}


def test_a_signal_stops_a_training_and_its_render_workers_within_seconds(tmp_path):
    p = _cli("train", "prompts", "--set", "samples=4000", "val_samples=8", "workers=2", f"out_vlm={tmp_path}/v",
             f"out_dape={tmp_path}/d", f"work={tmp_path}/w", "device=cpu", cwd=tmp_path)
    time.sleep(8)                                             # the samples are being rendered by two workers
    sent = time.time()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and time.time() - sent < 10, (p.returncode, time.time() - sent, err[-500:])
    assert err.strip().splitlines()[-1].startswith("error: interrupted (SIGTERM)") and "Traceback" not in err
    assert not (tmp_path / "v").exists() and not (tmp_path / "d").exists()


def test_concurrent_runs_into_one_folder_all_finish(tmp_path):
    args = ("zoom", "photo:astronaut", "photo:coffee", "--out", "o", "--backbone", "bicubic", "--steps", "2",
            "--process-size", "64")
    procs = [_cli(*args, cwd=tmp_path) for _ in range(3)]
    results = [p.communicate(timeout=180) for p in procs]
    errors = [[line for line in r[1].replace("\r", "\n").splitlines() if line and not line.startswith("zoom")]
              for r in results]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert sorted(d.name for d in (tmp_path / "o").iterdir()) == ["astronaut", "coffee"]
    for d in (tmp_path / "o").iterdir():
        assert (d / "scale2.png").is_file() and (d / ".cozlib").is_file()


@pytest.mark.parametrize("module, argv, pattern", [
    ("results", ["--figures", "{p}/badfigs", "--out", "{p}/R.md", "--readme", ""], r"MANIFEST.json is not valid JSON"),
    ("results", ["--bogus"], r"unrecognized arguments"),
    ("book", ["--executed", "{p}/badnbs", "--site", "{p}/site", "--markdown", ""], r"00_bad.ipynb is not a notebook"),
    ("notebooks", ["--out", "", "00"], r"--out is empty"),
], ids=["results-corrupt-manifest", "results-unknown-flag", "book-corrupt-notebook", "notebooks-empty-out"])
def test_the_make_figures_steps_give_one_error_line(place, capsys, module, argv, pattern):
    """``python -m cozlib.results|book|notebooks``: the same boundary as the command line."""
    import importlib
    Path("badfigs").mkdir()
    Path("badfigs/MANIFEST.json").write_text("{")
    Path("badnbs").mkdir()
    Path("badnbs/00_bad.ipynb").write_text("not json")
    before = snapshot(place)
    try:
        code = importlib.import_module(f"cozlib.{module}").main([a.format(p=place) for a in argv])  # their paths are the project's
    except SystemExit as e:
        code = int(e.code)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and re.search(pattern, err[0]), (code, err)
    assert snapshot(place) == before


def test_a_closed_standard_output_loses_only_the_status_line(tmp_path):
    """``zoom ... >&-``: the chain is written and the command succeeds (its result is the files)."""
    import subprocess
    import sys
    out = tmp_path / "o"
    proc = subprocess.run([sys.executable, "-m", "cozlib", "zoom", "photo:astronaut", "--backbone", "bicubic",
                           "--process-size", "64", "--steps", "1", "--out", str(out)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120,
                          preexec_fn=lambda: __import__("os").close(1))
    assert proc.returncode == 0, proc.stderr
    assert (out / "astronaut" / "chain.json").is_file()

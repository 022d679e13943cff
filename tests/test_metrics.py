"""Metrics: our pyiqa set-up reproduces pyiqa's published calibration values on its calibration images;
the tables built from per-scene metric rows."""
from __future__ import annotations

import csv

import pytest
from PIL import Image

from cozlib.assets import calibration_dir
from cozlib.errors import ConfigError, MissingWeightsError
from cozlib.metrics import Scorer, availability, parse_metric_list

IMAGES = ["I03.bmp", "I04.bmp", "I06.bmp", "I08.bmp", "I19.bmp"]


@pytest.fixture(scope="module")
def calibration():
    d = calibration_dir()
    if not (d / "calibration_summary.csv").is_file():
        pytest.fail(f"{d} is missing: run `python -m cozlib setup` (make does it when it creates .venv)")
    rows = {r[0]: r[1:] for r in csv.reader(open(d / "calibration_summary.csv"))}
    assert rows["Method"] == IMAGES
    dist = [Image.open(d / "dist_dir" / f).convert("RGB") for f in IMAGES]
    ref = [Image.open(d / "ref_dir" / f).convert("RGB") for f in IMAGES]
    return rows, dist, ref


@pytest.fixture(scope="module")
def scorer():
    return Scorer("cpu")


@pytest.mark.parametrize("name,rel,abs_", [
    # NIQE: |ours - published| is 0.0020 on I03 (a score of 15.65) and <= 0.0005 elsewhere with
    # torch 2.14 here: a relative 1e-3 holds everywhere, an absolute 1e-3 on four of five images.
    ("niqe", 1e-3, 0.0),
    ("piqe", 0.0, 1e-3),
    ("psnr", 0.0, 1e-3),
    ("ssim", 0.0, 1e-3),
])
def test_reproduces_pyiqa_calibration(calibration, scorer, name, rel, abs_):
    rows, dist, ref = calibration
    published = [float(v) for v in rows[f"{name}(ours)"]]
    ours = scorer.score(name, dist, ref if name in ("psnr", "ssim") else None)
    for f, o, p in zip(IMAGES, ours, published):
        assert o == pytest.approx(p, rel=rel, abs=abs_ + 5e-5), f"{name} on {f}: {o:.4f} vs published {p}"


def test_weight_needing_metrics_name_file_and_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import torch.hub
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    why = availability("musiq")
    assert "musiq_koniq_ckpt-e95806b9.pth" in why and str(tmp_path / "hub" / "pyiqa") in why
    assert "RN50.pt" in availability("clipiqa")
    ok, skipped = Scorer("cpu").usable(["piqe", "musiq", "maniqa-pipal"])
    assert ok == ["piqe"] and set(skipped) == {"musiq", "maniqa-pipal"}
    with pytest.raises(MissingWeightsError, match="MANIQA_PIPAL"):
        Scorer("cpu").metric("maniqa-pipal")


def test_unknown_metric_and_missing_reference(scorer):
    with pytest.raises(ConfigError, match="unknown metric"):
        parse_metric_list("niqe,sharpness")
    with pytest.raises(ConfigError, match="full-reference"):
        scorer.score("psnr", [Image.new("RGB", (8, 8))])


def test_prompt_orderings_counts_scenes_per_zoom():
    from cozlib.experiments import prompt_orderings
    values = {"a": {"oracle": 0.5, "null": 0.7, "wrong": 0.6}, "b": {"oracle": 0.9, "null": 0.8, "wrong": 1.0}}
    rows = [{"image": img, "method": f"CoZ {p} (OSEDiff)", "metric": "texture", "magnification": 64, "value": v}
            for img, d in values.items() for p, v in d.items()]
    rows.append({"image": "a", "method": "CoZ oracle (OSEDiff)", "metric": "niqe", "magnification": 64, "value": 9.0})
    header, table = prompt_orderings(rows, [64])
    assert header == ["zoom", "oracle", "null", "wrong", "oracle < null", "null < wrong"]
    assert table[0][0] == "64x" and table[0][1:4] == pytest.approx([0.7, 0.75, 0.8])
    assert table[0][4:] == ["1/2", "1/2"]   # a: oracle < null, null > wrong; b: the reverse
    with pytest.raises(ValueError, match="no CoZ oracle"):
        prompt_orderings(rows, [256])


def test_paired_extractors_differences_views_that_both_score():
    from cozlib.experiments import paired_difference, paired_extractors
    nan = float("nan")
    multi = [0.0, 0.5, nan, 0.0]
    single = [0.5, 0.5, 0.25, 0.25]
    rows = [{"extractor": e, "zoom": z, "hallucination": v}
            for e, vals in (("vlm", multi), ("vlm-single", single)) for z, v in zip((16, 16, 16, 64), vals)]
    header, table = paired_extractors(rows)
    assert header[3] == "vlm - vlm-single"
    assert table[0][:4] == ["16x", pytest.approx(1.25 / 3), pytest.approx(0.25), pytest.approx(-0.25)]  # each mean over its own views; the difference over both
    assert table[0][6] == 2 and table[0][4] <= -0.25 <= table[0][5]
    assert table[1][3] == pytest.approx(-0.25) and table[1][4] == table[1][5] == pytest.approx(-0.25)  # one view: no spread
    assert paired_difference([nan], [1.0])[3] == 0
    with pytest.raises(ValueError, match="same views"):
        paired_extractors(rows[:3])


def test_critic_scores_pay_each_rows_prompt_with_its_views_crops():
    from cozlib.experiments import critic_scores, paired_extractors
    views = [{"coarse": f"c{i}", "zoomed": f"z{i}"} for i in range(3)]
    rows = [{"extractor": e, "zoom": 4, "prompt": f"{e} {i}"} for e in ("vlm", "vlm-grpo") for i in range(3)]
    seen = []

    class Critic:   # pays 90 for the tuned prompts, 60 for the others; None (unparsable) for view 2 of vlm
        def scores(self, pairs, prompts):
            seen.append((pairs, prompts))
            return [90.0 if p.startswith("vlm-grpo") else (None if p.endswith("2") else 60.0) for p in prompts]
    critic_scores(rows, views, Critic())
    assert [r["critic"] for r in rows] == [0.6, 0.6, 0.0, 0.9, 0.9, 0.9]     # / 100; unparsable pays 0, as in GRPO
    assert seen[0][0] == [["c0", "z0"], ["c1", "z1"], ["c2", "z2"]] and len(seen) == 2   # one call per extractor
    table = paired_extractors(rows, "vlm-grpo", "vlm", metric="critic")[1]
    assert table[0][3] == pytest.approx(0.5) and table[0][6] == 3

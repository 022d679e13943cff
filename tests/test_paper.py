"""The paper figure by figure (issue 25): the measurements behind Figures 2-4, 7, Table 2, the appendix
tables, the user-study proxy, and docs/PAPER_MAP.md's verdicts."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from cozlib.chain import ChainConfig
from cozlib.full_image import run_full_image
from cozlib.experiments import detail, runtime, tiling, user_study
from cozlib.experiments.tables import PAPER_TABLE2, table2
from cozlib.paper_map import ENTRIES, NOT_RUN, Verdict, paper_map_markdown, verdict
from cozlib.paths import resolve


def _rows(method, metric, values, image="a"):
    return [{"image": image, "method": method, "k": k + 1, "magnification": 4 ** (k + 1), "metric": metric, "value": v}
            for k, v in enumerate(values)]


def test_seam_ratio_sees_a_border_and_not_a_smooth_ramp():
    ramp = np.tile(np.linspace(0, 255, 64, dtype=np.float32), (64, 1))
    smooth = Image.fromarray(ramp.astype(np.uint8)).convert("RGB")
    assert tiling.seam_ratio(smooth, [32]) == pytest.approx(1.0, abs=0.2)
    step = ramp.copy()
    step[:, 32:] += 40
    seam = Image.fromarray(np.clip(step, 0, 255).astype(np.uint8)).convert("RGB")
    assert tiling.seam_ratio(seam, [32]) > 5


def test_full_image_records_how_overlapping_tiles_disagree():
    from cozlib.backbones import make_backbone
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    cfg = ChainConfig(steps=1, upscale=4, process_size=32)
    bic = make_backbone("bicubic", device="cpu")
    none = run_full_image(img, cfg, bic, overlap=0)
    some = run_full_image(img, cfg, bic, overlap=8)
    assert math.isnan(none.disagreement[0])            # no pixel is covered twice
    assert 0.0 <= some.disagreement[0] < 255.0
    rows = tiling.overlap_rows(img, cfg, bic, None, [0, 8])
    assert [r[0] for r in rows] == [0, 8] and rows[1][1] > rows[0][1]   # more tiles with overlap


def test_detail_and_onestep_tables():
    energy = _rows("m", "energy", [3e-3, 2e-3]) + _rows("a", "energy", [3e-3, 3e-3]) + _rows(detail.TRUTH, "energy", [4e-3, 4e-3])
    truth = _rows("m", "texture", [0.5, 0.9]) + _rows("a", "texture", [0.5, 0.6])
    header, table = detail.detail_table(energy, truth, "m", "a", [4, 16])
    assert header[4] == "Markov / truth" and table[1][4] == pytest.approx(0.5) and table[1][5] == pytest.approx(0.75)
    truth = _rows("d", "texture", [1.0, 1.2], "s1") + _rows("c", "texture", [0.5, 0.6], "s1") \
        + _rows("d", "texture", [1.1, 1.3], "s2") + _rows("c", "texture", [0.6, 0.7], "s2")
    header, table = detail.onestep_table(truth, "d", "c", [16])
    assert table[0][0] == "16x" and table[0][3] == pytest.approx(-0.6) and table[0][-1] == 2


def test_table2_keeps_the_papers_rows_empty():
    rows = _rows("CoZ (Real-ESRGAN)", "texture", [0.4, 0.5])
    header, table = table2(rows, ["CoZ (Real-ESRGAN)"], ["texture"], [4, 16])
    assert header[:2] == ["method", "source"]
    assert [r[0] for r in table[:len(PAPER_TABLE2)]] == list(PAPER_TABLE2)
    assert all(v is None for r in table[:len(PAPER_TABLE2)] for v in r[2:])
    assert table[-1][1:] == ["measured here", 0.4, 0.5] and table[0][1].startswith("paper")


def test_runtime_table_and_the_gpu_record():
    record = runtime.read_record(resolve("bench/results/h200-step_parts-paper-config.csv"))
    assert set(record) == set(runtime.PARTS)
    cols = {"cpu": {"vlm": 0.3, "text_encoders": 0.1, "vae_encode": 0.05, "transformer": 0.1, "vae_decode": 0.05},
            "gpu": record}
    header, table = runtime.runtime_table(cols)
    assert header[-1] == "paper" and all(r[-1] is None for r in table)
    assert table[-1][1] == pytest.approx(600.0) and table[0][2] == pytest.approx(0.5)
    assert runtime.vlm_share(cols)["gpu"] > 0.5


def test_user_study_proxy_ranks_sources_per_case():
    src = list(user_study.SOURCES)
    rows = []
    for k in (1, 2):
        for i, s in enumerate(src):
            rows += [{"image": "a", "source": s, "k": k, "panel": "(a)", "judge": "truth", "value": 1.0 - 0.1 * i},
                     {"image": "a", "source": s, "k": k, "panel": "(a)", "judge": "critic", "value": 50.0 + i},
                     {"image": "a", "source": s, "k": k, "panel": "(b)", "judge": "truth", "value": 10.0 * i},
                     {"image": "a", "source": s, "k": k, "panel": "(b)", "judge": "critic", "value": 60.0 - i}]
    header, table = user_study.proxy_table(rows)
    assert header[2] == "paper MOS (1-5)" and [r[2] for r in table] == [2.96, 3.56, 3.86, 2.30, 2.70, 4.24]
    assert table[2][6] == 1.0                      # GRPO closest to the truth in every case of panel (a)
    truth_a = [r[5] for r in table if r[0] == "(a)"]
    assert user_study.same_order(truth_a, user_study.lower_is_better("(a)", "truth"))
    critic_b = [r[3] for r in table if r[0] == "(b)"]
    assert not user_study.same_order(critic_b, user_study.lower_is_better("(b)", "critic"))


def test_grpo_pipeline_spec_is_the_trainers_rewards():
    from cozlib.grpo.pipeline import pipeline_spec
    from cozlib.grpo.rewards import WEIGHTS
    from cozlib.training.grpo import GRPOTrainConfig

    class Critic:
        weights_id = "abc"
    spec = pipeline_spec(GRPOTrainConfig(), Critic())
    assert {r["name"]: r["weight"] for r in spec["rewards"]} == WEIGHTS
    assert spec["lora_r"] == 8 and "q_proj" in spec["lora_targets"] and "second image" in spec["message"]


def test_precision_critic_target():
    from cozlib.grpo.critic import truth_score
    truth = {"cat": 0.5, "fur": 0.3, "hairs": 0.2}
    assert truth_score("cat", truth, "precision") == pytest.approx(100.0)
    assert truth_score("cat", truth) < 100.0


def test_the_map_names_every_figure_and_table_and_judges_the_committed_figures():
    items = [e.item for e in ENTRIES]
    for want in [f"Figure {i}" for i in range(1, 9)] + ["Table 1", "Table 2", "User study"]:
        assert want in items
    assert sum(i.startswith("Appendix") for i in items) >= 4
    figures = resolve("figures")
    for e in ENTRIES:
        v = verdict(e.judge, figures)
        assert isinstance(v, Verdict) and v.status != NOT_RUN, (e.item, v)
        assert all((figures / f).is_file() for f in e.files), e.item
    assert "**not run**" in paper_map_markdown(resolve("tests"))   # no tables there: each says what is missing


def test_user_study_proxy_shares_a_tied_first_place():
    rows = [{"image": "a", "source": s, "k": 1, "panel": "(a)", "judge": "critic", "value": 80.0}
            for s in user_study.SOURCES]
    _, table = user_study.proxy_table(rows)
    shares = [r[4] for r in table if r[0] == "(a)"]
    assert shares == [pytest.approx(1 / 3)] * 3        # three equal scores: no source wins outright


def test_energy_verdict_reads_whether_the_markov_chain_loses_detail():
    from cozlib.experiments.detail import energy_verdict
    # zoom, energies (Markov, AR-2, truth), Markov / truth, AR-2 / truth, textures
    rising = [["4x", 1.0, 1.2, 1.4, 0.75, 0.89, 0.5, 0.5], ["256x", 0.8, 0.5, 0.86, 0.94, 0.62, 0.7, 0.5]]
    assert energy_verdict(rising, 8).startswith("- **does not hold**") and "0.75 at 4x -> 0.94 at 256x" in energy_verdict(rising, 8)
    falling = [rising[0], ["256x", 0.3, 0.5, 0.86, 0.35, 0.62, 0.7, 0.5]]
    assert energy_verdict(falling, 8).startswith("- **holds**")

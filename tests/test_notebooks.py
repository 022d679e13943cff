"""Notebook hygiene and a papermill run of every notebook with params/smoke.yaml."""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from cozlib.notebooks import _side_by_side, kernel_threads, load_params, notebook_paths, run_all, runs_alone

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = notebook_paths()


def parameters_cell(nb) -> list:
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def parameter_names(nb) -> set[str]:
    import ast
    tree = ast.parse(parameters_cell(nb)[0].source)
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}


def test_there_are_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= {"00_quickstart", "01_ar2_scale_states", "02_prompt_extraction",
                                          "05_zoomworld_ground_truth",
                                          "06_sr_backbone", "07_paper_figures", "90_zoom_explorer"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_stripped_and_one_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    assert len(parameters_cell(nb)) == 1
    for c in nb.cells:
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None, f"{path.name}: outputs committed"


@pytest.mark.parametrize("params_file", ["params/demo.yaml", "params/smoke.yaml", "params/paper.yaml", "params/full.yaml"])
def test_every_params_key_exists_in_its_notebook(params_file):
    from cozlib.notebooks import check_section
    params = load_params(ROOT / params_file)
    stems = {p.stem for p in NOTEBOOKS}
    for path in NOTEBOOKS:
        check_section(path, params.get(path.stem, {}))   # the runner's own check: names and kinds
    assert set(params) <= stems, f"{params_file} names notebooks that do not exist"
    for path in NOTEBOOKS:
        if path.stem in params:
            missing = set(params[path.stem]) - parameter_names(nbformat.read(path, as_version=4))
            assert not missing, f"{params_file}: {path.stem} has no parameter(s) {missing}"


def test_kernels_side_by_side_share_the_cores(monkeypatch):
    monkeypatch.setenv("COZ_THREADS", "3")
    assert kernel_threads(2) == 3                      # an explicit thread count wins
    monkeypatch.delenv("COZ_THREADS")
    monkeypatch.setattr("os.sched_getaffinity", lambda _: set(range(8)), raising=False)
    assert [kernel_threads(w) for w in (1, 2, 3, 16)] == [8, 4, 2, 1]


def test_kernels_side_by_side_get_their_threads_and_the_timing_notebooks_run_alone(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("COZ_THREADS", "1")
    seen = []
    got = _side_by_side(lambda nb: (seen.append(os.environ.get("OMP_NUM_THREADS")), (nb.name, 1.0))[1],
                        NOTEBOOKS[:3], 2)
    assert seen == ["1"] * 3 and got == [(p.name, 1.0) for p in NOTEBOOKS[:3]]
    assert "OMP_NUM_THREADS" not in os.environ        # given back: the notebooks run alone next get theirs
    monkeypatch.setenv("OMP_NUM_THREADS", "5")         # a user's own setting wins
    _side_by_side(lambda nb: (seen.append(os.environ["OMP_NUM_THREADS"]), (nb.name, 1.0))[1], NOTEBOOKS[:1], 2)
    assert seen[-1] == "5"
    assert {p.stem for p in NOTEBOOKS if runs_alone(p)} == {"00_quickstart", "04_training_on_cuda", "07_paper_figures"}


@pytest.mark.notebooks
def test_notebooks_execute_with_smoke_params(tmp_path):
    figures = tmp_path / "figures"
    run_all("params/smoke.yaml", str(tmp_path / "executed"),  # two kernels: the machine's 2 cores
            extra={"figures_dir": str(figures), "cache_dir": str(tmp_path / "cache")}, workers=2)
    executed = sorted(p.name for p in (tmp_path / "executed").glob("*.ipynb"))
    assert executed == sorted(p.name for p in NOTEBOOKS)
    manifest = json.loads((figures / "MANIFEST.json").read_text())
    smoke = load_params(ROOT / "params/smoke.yaml")
    for name, notebook in (("table1_photos.csv", "01_ar2_scale_states"), ("table1_photos.md", "01_ar2_scale_states"),
                           ("fig5_photos_chelsea.png", "01_ar2_scale_states"),
                           ("fig5_photos_chelsea.pdf", "01_ar2_scale_states"),
                           ("metrics_per_scale_photos.png", "01_ar2_scale_states"),
                           ("protocol_step.png", "01_ar2_scale_states"),
                           ("zoom_explorer_astronaut.png", "90_zoom_explorer")):
        assert (figures / name).is_file(), name
        # each figure records the parameters of the notebook that drew it, and the commit
        assert manifest[name]["parameters"]["process_size"] == smoke[notebook]["process_size"], name
        assert manifest[name]["git_commit"], name
    for name in ("table1_zoomworld.csv", "zoomworld_ambiguity.csv", "zoomworld_energy.csv",
                 "zoomworld_truth_chain.png", "fig5_zoomworld.png", "osediff_one_step.png", "osediff_lora.md",
                 "osediff_training.png", "table1_zoomworld_osediff.csv", "osediff_prompts_matter.csv",
                 "fig5_zoomworld_osediff.png", "osediff_words_kind.csv", "prompt_hallucination.csv", "prompt_hallucination_paired.csv", "table1_prompts_zoomworld.csv",
                 "prompt_hallucination_chains.csv", "grpo_reward_trends.csv", "figure8_zoomworld.png", "vlm_training.png"):
        assert (figures / name).is_file(), name
    from cozlib.paper_map import ENTRIES, NOT_RUN, verdict
    for e in ENTRIES:  # every file docs/PAPER_MAP.md names is regenerated, and its verdict computed
        assert all((figures / f).is_file() for f in e.files), (e.item, e.files)
        v = verdict(e.judge, figures)
        assert v.status != NOT_RUN and v.numbers, (e.item, v)
    written = {p.name for p in figures.iterdir() if p.is_file() and not p.name.startswith(".")} - {"MANIFEST.json"}
    assert written <= set(manifest), f"figures missing from the manifest: {sorted(written - set(manifest))}"
    halluc = (figures / "prompt_hallucination.csv").read_text().splitlines()
    assert halluc[0] == "extractor,precision 4x,precision 64x,recall 4x,recall 64x,hallucination 4x,hallucination 64x"
    assert [r.split(",")[0] for r in halluc[1:]] == ["null", "dape", "vlm-single", "vlm", "oracle"]
    osediff = (figures / "table1_zoomworld_osediff.csv").read_text().splitlines()
    assert osediff[0].startswith("method,PIQE 4x") and len(osediff) == 8
    table = (figures / "table1_photos.csv").read_text().splitlines()
    assert table[0].startswith("method,source,NIQE 4x") and len(table) == 1 + 5 + 4   # the paper's rows, then ours
    assert all(cell for row in table[6:] for cell in row.split(","))  # every measured cell has a number
    assert all(set(row.split(",")[2:]) == {""} for row in table[1:6])  # the paper's cells: empty, never invented


def test_the_book_leaves_out_library_warnings_and_machine_paths():
    """``book.published``: a package's warning (with this machine's path) and its source line go; the
    notebook's own lines stay, with the project's path written as '.' and the home folder as '~'."""
    from cozlib.book import published
    from cozlib.paths import project_root
    home = str(Path.home())
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", name="stderr", text=(
            f"{home}/env/lib/python3.11/site-packages/pkg/mod.py:12: FutureWarning: `a` is deprecated\n"
            "  warnings.warn(\n"
            f"skipped musiq: needs a file in {home}/.cache/torch\n")),
        nbformat.v4.new_output("stream", name="stderr", text=(
            "/x/site-packages/pyiqa/f.py:173: UserWarning: cov(): degrees of freedom\n"
            "  return torch.cov(t)\n")),
        nbformat.v4.new_output("stream", name="stdout", text=f"wrote {project_root()}/figures/a.png\n")])])
    outs = published(nb).cells[0].outputs
    assert [o.text for o in outs] == ["skipped musiq: needs a file in ~/.cache/torch\n", "wrote ./figures/a.png\n"]


def test_paper_params_without_weights_run_nothing_and_say_what_each_notebook_needs(tmp_path, monkeypatch, capsys):
    """Issue 26: `python -m cozlib.notebooks --params params/paper.yaml` on a machine without the paper's
    weights, data or GPU skips every notebook, each with what it needs and where to put it."""
    from cozlib.needs import missing
    monkeypatch.setenv("COZ_DATA", str(tmp_path / "no-data"))
    for var in ("COZ_SD3", "COZ_VLM", "COZ_CRITIC", "COZ_OSEDIFF_LORA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # the release's ckpt/ folder is looked for here
    done = run_all("params/paper.yaml", str(tmp_path / "out"))
    assert sorted(name for name, _ in done) == sorted(p.name for p in NOTEBOOKS)
    assert all(took is None for _, took in done) and not (tmp_path / "out").exists()
    said = capsys.readouterr().out
    assert said.count("skipped; it needs:") == len(NOTEBOOKS)
    assert "COZ_SD3" in said and "DIV2K" in said and "adapter_config.json" in said
    # the demo sections need nothing that is not committed
    demo = load_params(ROOT / "params/demo.yaml")
    assert {stem: missing({**section, "device": "cpu"}) for stem, section in demo.items()} == {s: [] for s in demo}

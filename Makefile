# Chain-of-Zoom companion. The two commands: `make figures` (every result) and `make test`.
# The first use of either creates .venv from requirements/lock.txt (exact pins) and provisions
# the offline files pyiqa needs (`python -m cozlib setup`).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: figures test test-fast lab clean lock env weights

env: $(STAMP)

$(STAMP): requirements/lock.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "cozlib needs Python 3.11+"'
	@$(PYTHON) -c 'import shutil; free = shutil.disk_usage(".").free / 2**30; \
	  free < 10 and print(f"warning: {free:.1f} GiB free here; .venv takes about 7.3 GiB (torch is a CUDA build) and pip needs room for the downloads too")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-cache-dir --upgrade "pip>=23.2"
	$(PY) -m pip install --quiet --no-cache-dir -r requirements/lock.txt
	$(PY) -m pip install --quiet --no-cache-dir --no-deps --no-build-isolation -e .
	$(PY) -m cozlib setup
	touch $(STAMP)

## Every notebook with params/demo.yaml -> build/notebooks/ (executed copies) and figures/; then
## docs/RESULTS.md and the README's headline table from figures/ (python -m cozlib.results), and
## the book: build/book/ (a static site) and docs/notebooks/ (the published copy; python -m cozlib.book).
## Two kernels side by side, the cores shared between them (FIGURE_WORKERS=1: one at a time).
FIGURE_WORKERS ?= 2
figures: $(STAMP)
	$(PY) -m cozlib.notebooks --params params/demo.yaml --out build/notebooks --workers $(FIGURE_WORKERS)
	$(PY) -m cozlib.results
	$(PY) -m cozlib.book

## Retrain the committed demo weights (data/weights/; CUDA when present, else the CPU); resumable.
## Settings: params/train/*.yaml presets, `python -m cozlib train sr --help`.
weights: $(STAMP)
	$(PY) -m cozlib train sr
	$(PY) -m cozlib train prompts
	$(PY) -m cozlib train grpo
	$(PY) -m cozlib train grpo --preset critic2

## Unit tests, a papermill run of every notebook with params/smoke.yaml and the zoom explorer in a
## headless browser (one torch thread per process; TEST_WORKERS pytest-xdist workers, whole files
## each, so a file's fixtures are built once).
TEST_WORKERS ?= 2
test: $(STAMP)
	COZ_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

## Unit tests only (skips the notebook execution and the browser test).
test-fast: $(STAMP)
	COZ_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not notebooks and not browser"

## JupyterLab on the project's environment (ipywidgets work there).
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

## Executed notebooks, caches and smoke outputs (figures/ is kept: it is committed).
clean:
	rm -rf build .pytest_cache

## Re-resolve requirements/base.in into requirements/lock.txt in a scratch environment.
lock:
	rm -rf build/lockenv && $(PYTHON) -m venv build/lockenv
	build/lockenv/bin/pip install --quiet -r requirements/base.in
	{ echo "# Exact pins of every package (generated from requirements/base.in by 'make lock')."; \
	  echo "# Both the Makefile (pip) and environment.yml (conda's pip section) install from this file."; \
	  build/lockenv/bin/pip freeze | grep -v -E '^(-e |cozlib)' \
	  | sed -E 's/^((nvidia-[^=]+|triton)==[^ ]+)$$/\1 ; sys_platform == "linux" and platform_machine == "x86_64"/'; \
	  build/lockenv/bin/pip freeze --all | grep '^setuptools=='; } > requirements/lock.txt

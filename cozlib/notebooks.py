"""Running the numbered notebooks with papermill (``make figures`` and the notebook tests).

Each notebook has one cell tagged ``parameters``; ``params/*.yaml`` holds one section per notebook
(its file stem). Before any notebook runs, every section is checked against its notebook's
parameters cell: unknown keys, values of another type, unknown notebook names and unreadable files
are errors naming the valid choices. A notebook whose weights, data or GPU are not on this machine
(``needs``) is skipped, with what it needs and where to put it. Executed copies go to an output folder,
never over the source: each is written to a temp file and renamed when papermill finishes.
"""
from __future__ import annotations

import ast
import os
import sys
import time
from pathlib import Path

from .errors import ConfigError
from .paths import resolve


def notebook_paths(names: list[str] | None = None) -> list[Path]:
    """The numbered notebooks, or those named (by stem or number); an unknown name is an error."""
    nbs = sorted(resolve("notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return nbs
    known = {p.stem for p in nbs} | {p.stem.split("_", 1)[0] for p in nbs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown notebook(s) {unknown}; choose from {', '.join(p.stem for p in nbs)} "
                          f"(or their numbers)")
    return [p for p in nbs if p.stem in names or p.stem.split("_", 1)[0] in names]


def load_params(params_file: str | os.PathLike) -> dict[str, dict]:
    """The sections of a params file (keys starting with '_' are YAML anchors, left out)."""
    import yaml
    from .paths import locate
    path = locate(params_file)
    if path.exists() and not path.is_file():
        from .imageio import kind_of
        raise ConfigError(f"params file {params_file} is not a regular file ({kind_of(path)}); give a YAML file")
    if not path.is_file():
        raise ConfigError(f"params file {params_file} not found (looked in the current folder and the project root); "
                          f"give a file, or one of params/{{{','.join(p.stem for p in sorted(resolve('params').glob('*.yaml')))}}}.yaml")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{params_file}: not valid YAML ({' '.join(str(e).split())}); fix its syntax") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for k, v in data.items() if not str(k).startswith("_")):
        raise ConfigError(f"{params_file}: expected one mapping of parameters per notebook stem")
    return {k: v for k, v in data.items() if not str(k).startswith("_")}


def notebook_defaults(nb: Path) -> dict[str, object]:
    """{name: default value} of a notebook's ``parameters`` cell (literals only)."""
    import json
    cells = json.loads(nb.read_text())["cells"]
    cell = next((c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        raise ConfigError(f"{nb.name} has no cell tagged 'parameters'")
    out = {}
    for node in ast.parse("".join(cell["source"])).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                out[node.targets[0].id] = None  # an expression (e.g. list(range(...))): any value of the right kind
    return out


def _same_kind(value: object, default: object) -> bool:
    """Whether a params value may replace a default: None defaults take anything; numbers take numbers."""
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and (isinstance(default, float) or isinstance(value, int))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def check_section(nb: Path, section: dict) -> None:
    """Every key of a params section names a parameter of ``nb``, with a value of its default's kind."""
    defaults = notebook_defaults(nb)
    unknown = [k for k in section if k not in defaults]
    if unknown:
        raise ConfigError(f"{nb.stem}: unknown parameter(s) {unknown}; its parameters are {', '.join(defaults)}")
    for k, v in section.items():
        if not _same_kind(v, defaults[k]):
            raise ConfigError(f"{nb.stem}: parameter {k} = {v!r} is a {type(v).__name__}, but its default "
                              f"{defaults[k]!r} is a {type(defaults[k]).__name__}; fix the params file")


#: The environment of the kernels ``make figures`` starts: no progress bars (frozen at "0%" in a saved
#: notebook, they read as a hang) and no library deprecation chatter in the published pages.
KERNEL_ENV = {"TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore::FutureWarning"}


def run_notebook(nb: Path, parameters: dict, out_dir: Path) -> Path:
    import papermill as pm
    for k, v in KERNEL_ENV.items():   # kernels inherit this process's environment
        os.environ.setdefault(k, v)
    from .outputs import remove_stale_temps
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / nb.name
    remove_stale_temps(out_dir, f".{nb.stem}.")
    tmp = out_dir / f".{nb.stem}.{os.getpid()}-run.tmp.ipynb"  # papermill wants the .ipynb suffix
    try:
        # no cwd=: papermill would chdir the whole process (a race with kernels side by side); the
        # notebooks resolve every path against the project root (paths.resolve)
        pm.execute_notebook(str(nb), str(tmp), parameters=parameters,  # a progress bar over the cells
                            kernel_name="python3", progress_bar=sys.stderr.isatty(), log_output=False)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    return final


def kernel_threads(workers: int) -> int:
    """torch threads for each of ``workers`` kernels side by side: $COZ_THREADS when set, else this
    machine's cores shared out. torch's default, every core in every kernel, oversubscribes them: the
    kernels' thread pools then wait on each other (docs/lab/2026-12-03-make-test-threads.md)."""
    from .runtime import coz_threads
    if (n := coz_threads()) > 0:
        return n
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def run_all(params_file: str, out_dir: str, names: list[str] | None = None,
            extra: dict | None = None, workers: int = 1) -> list[tuple[str, float]]:
    """Execute every notebook (or the named ones) with its section of ``params_file`` (and ``extra``,
    for the notebooks that have those parameters); with ``workers`` > 1, that many kernels side by
    side, each at ``kernel_threads`` torch threads (the notebooks do not read each other's output),
    then the notebooks that time steps (``runs_alone``) one at a time. Every section is checked
    before the first notebook starts; a notebook whose weights, data or GPU are missing (``needs.missing``) is
    skipped with what it needs printed (returned with time None)."""
    from .needs import missing, report
    params = load_params(params_file)
    paths = notebook_paths(names)
    stems = [p.stem for p in notebook_paths()]
    unused = [k for k in params if k not in stems]
    if unused:
        raise ConfigError(f"{params_file}: section(s) {unused} name no notebook; the sections are notebook stems: "
                          f"{', '.join(stems)}")
    sections = {}
    for nb in paths:  # ``extra`` (e.g. figures_dir) goes to the notebooks that have such a parameter
        declared = notebook_defaults(nb)
        sections[nb] = {**params.get(nb.stem, {}), **{k: v for k, v in (extra or {}).items() if k in declared}}
        check_section(nb, sections[nb])
    skipped = {nb: need for nb in paths if (need := missing(sections[nb]))}
    for nb, need in skipped.items():
        print(report(nb.stem, need), flush=True)
    paths = [nb for nb in paths if nb not in skipped]

    def one(nb: Path) -> tuple[str, float]:
        t0 = time.perf_counter()
        print(f"[notebooks] {nb.name} ...", flush=True)
        run_notebook(nb, sections[nb], resolve(out_dir))
        took = time.perf_counter() - t0
        print(f"[notebooks] {nb.name} done in {took:.0f} s", flush=True)
        return nb.name, took
    alone = [nb for nb in paths if workers > 1 and runs_alone(nb)]
    done = dict(_side_by_side(one, [nb for nb in paths if nb not in alone], workers))
    done.update(_side_by_side(one, alone, 1))  # after the others, one at a time
    return [(nb.name, done[nb.name]) for nb in paths] + [(nb.name, None) for nb in skipped]


def runs_alone(nb: Path) -> bool:
    """Whether a notebook runs by itself when others run side by side: its metadata
    ``cozlib.run_alone`` (the notebooks that time steps on this machine)."""
    import json
    return bool(json.loads(nb.read_text()).get("metadata", {}).get("cozlib", {}).get("run_alone"))


def _side_by_side(one, paths: list[Path], workers: int) -> list[tuple[str, float]]:
    """``one`` over ``paths`` in ``workers`` kernels side by side, the cores shared among them
    (``kernel_threads``; the kernels inherit this process's environment, restored afterwards)."""
    from concurrent.futures import ThreadPoolExecutor, as_completed
    set_here = "OMP_NUM_THREADS" not in os.environ   # a user's own setting wins
    if set_here:
        os.environ["OMP_NUM_THREADS"] = str(kernel_threads(workers))
    pool = ThreadPoolExecutor(max(1, workers))
    futures = [pool.submit(one, nb) for nb in paths]
    try:
        for f in as_completed(futures):
            f.result()  # the first failure stops the run: notebooks not started yet are cancelled
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if set_here:
            os.environ.pop("OMP_NUM_THREADS", None)
    return [f.result() for f in futures]


def main(argv: list[str] | None = None) -> int:
    from .cli import Parser
    from .cli.boundary import guarded
    ap = Parser(prog="python -m cozlib.notebooks")
    ap.add_argument("--params", default="params/demo.yaml")
    ap.add_argument("--out", default="build/notebooks")
    ap.add_argument("--workers", type=int, default=1, help="kernels side by side (default 1)")
    ap.add_argument("--debug", action="store_true", help="show the traceback of every error")
    ap.add_argument("names", nargs="*", help="notebook stems or numbers (default: all)")
    a = ap.parse_args(argv)

    def run() -> int:
        from .outputs import check_writable_dir
        if not a.out.strip():
            raise ConfigError("--out is empty; give the folder for the executed notebooks (default build/notebooks)")
        if not 1 <= a.workers <= 8:
            raise ConfigError(f"--workers must be 1 to 8, got {a.workers}")
        check_writable_dir(resolve(a.out))
        t0 = time.perf_counter()
        done = run_all(a.params, a.out, a.names or None, workers=a.workers)
        skipped = [name for name, took in done if took is None]
        print(f"[notebooks] {len(done) - len(skipped)} ran in {time.perf_counter() - t0:.0f} s"
              + (f"; {len(skipped)} skipped for missing weights, data or GPU (listed above)" if skipped else ""))
        return 0
    return guarded(run, debug=a.debug)


if __name__ == "__main__":
    sys.exit(main())

"""The book of the executed notebooks, built by ``make figures`` (``python -m cozlib.book``):

- ``build/book/``: a static site, an index page and one HTML page per notebook with every output,
  figure and table (nbconvert's HTML export; images inline);
- ``docs/notebooks/``: the published copy kept in the repository, one Markdown page per notebook
  with its outputs and its images as PNG files beside it (readable on the repository page, small
  enough to diff; at most ``MAX_BYTES`` in all).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from .errors import ConfigError
from .paths import resolve

#: The published copy's size limit (docs/notebooks/, every file).
MAX_BYTES = 15 * 2 ** 20


def titles(executed: Path) -> list[tuple[Path, str]]:
    """(executed notebook, its title) in notebook order."""
    out = []
    for nb in sorted(executed.glob("[0-9][0-9]_*.ipynb")):
        try:
            cells = json.loads(nb.read_text())["cells"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
            raise ConfigError(f"{nb} is not a notebook ({type(e).__name__}: {e}); run the notebooks again "
                              f"(make figures)") from None
        first = "".join(cells[0]["source"]).splitlines()[0] if cells else nb.stem
        out.append((nb, first.lstrip("# ").strip()))
    return out


#: A warning raised inside an installed package, as Python prints it: ``<path>/site-packages/<file>:<line>:
#: <Category>Warning: <text>``; the next line is the source line that raised it.
_LIBRARY_WARNING = re.compile(r"^\s*\S*site-packages/\S+:\d+: \w*Warning: ")


def published(node):
    """The notebook as the book shows it: libraries' warnings (deprecations, numerical notes printed
    by the packages, with this machine's paths in them) left out of the standard-error streams; the
    project's own path written as ``.``, the home folder as ``~``. The executed notebook itself is not changed."""
    from .paths import project_root
    root = str(project_root())
    for cell in node.cells:
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                lines, text, skip = [], out["text"].splitlines(keepends=True), False
                for line in text:
                    if _LIBRARY_WARNING.match(line):
                        skip = True                      # the warning, then its source line
                        continue
                    if skip and line.startswith((" ", "\t")):
                        skip = False
                        continue
                    skip = False
                    lines.append(line)
                out["text"] = "".join(lines)
                if not out["text"].strip():
                    continue
            if "text" in out and isinstance(out["text"], str):
                out["text"] = out["text"].replace(root, ".").replace(str(Path.home()), "~")
            kept.append(out)
        if "outputs" in cell:
            cell["outputs"] = kept
    return node


def _exported(nb: Path, exporter, files_dir: str | None = None) -> tuple[str, dict]:
    """A notebook through an nbconvert exporter (as ``published`` shows it); extracted images named
    under ``files_dir``."""
    import nbformat
    resources = {"output_files_dir": files_dir} if files_dir else None
    return exporter.from_notebook_node(published(nbformat.read(nb, as_version=4)), resources=resources)


def build_site(executed: Path, out: Path) -> Path:
    """``out/index.html`` and ``out/NN_name.html`` (nbconvert's HTML, images inline); atomically."""
    from nbconvert import HTMLExporter
    from .outputs import atomic_dir
    exporter = HTMLExporter(template_name="lab")
    pages = titles(executed)
    with atomic_dir(out, kind="book") as tmp:
        items = []
        for nb, title in pages:
            body, _ = _exported(nb, exporter)
            (tmp / f"{nb.stem}.html").write_text(body)
            items.append(f'<li><a href="{nb.stem}.html">{title}</a></li>')
        first = ""
        paper_map = resolve("docs/PAPER_MAP.md")
        if paper_map.is_file():  # the first page: the paper figure by figure, then the notebooks
            import mistune
            first = mistune.html(paper_map.read_text())
        (tmp / "index.html").write_text(
            "<!doctype html><html><head><meta charset='utf-8'><title>Chain-of-Zoom, runnable</title>"
            "<style>table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:4px;"
            "vertical-align:top}</style></head>"
            "<body style='font-family:sans-serif;max-width:75em;margin:2em auto'>"
            f"{first}<h1>Chain-of-Zoom, runnable: the executed notebooks</h1>"
            "<p>Built by <code>make figures</code>; every output below comes from that run.</p>"
            f"<ol>{''.join(items)}</ol></body></html>\n")
    return out


def build_markdown(executed: Path, out: Path) -> Path:
    """``out/README.md`` (the index) and ``out/NN_name.md`` with ``out/NN_name_files/*.png``; atomically,
    refused when over ``MAX_BYTES``."""
    from nbconvert import MarkdownExporter
    from .outputs import atomic_dir
    exporter = MarkdownExporter()
    pages = titles(executed)
    with atomic_dir(out, kind="notebook pages") as tmp:
        lines = ["# The notebooks, executed", "",
                 "Written by `make figures` (`python -m cozlib.book`) from the executed notebooks; do not edit. "
                 "Each page is a notebook with its outputs; run it yourself with `make lab`. Start with "
                 "[the paper, figure by figure](../PAPER_MAP.md): each figure and table with its notebook and verdict.", ""]
        for nb, title in pages:
            body, resources = _exported(nb, exporter, f"{nb.stem}_files")
            for name, data in resources.get("outputs", {}).items():  # the images, beside the page
                target = tmp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            (tmp / f"{nb.stem}.md").write_text(body)
            lines.append(f"- [{title}]({nb.stem}.md)")
        (tmp / "README.md").write_text("\n".join(lines) + "\n")
        total = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        if total > MAX_BYTES:
            raise ConfigError(f"the published notebooks would take {total / 2 ** 20:.1f} MB, over the "
                              f"{MAX_BYTES / 2 ** 20:.0f} MB limit; make the figures smaller")
    return out


def main(argv: list[str] | None = None) -> int:
    from .cli import Parser
    from .cli.boundary import guarded
    ap = Parser(prog="python -m cozlib.book", description=__doc__.splitlines()[0])
    ap.add_argument("--executed", default="build/notebooks", help="the executed notebooks (make figures writes them)")
    ap.add_argument("--site", default="build/book", help="the static site")
    ap.add_argument("--markdown", default="docs/notebooks", help="the published copy ('' for none)")
    a = ap.parse_args(argv)

    def run() -> int:
        for flag, value in (("--executed", a.executed), ("--site", a.site)):
            if not value.strip():
                raise ConfigError(f"{flag} is empty; give a folder")
        executed = resolve(a.executed)
        if not titles(executed):
            raise ConfigError(f"no executed notebooks in {executed}: run the notebooks first (make figures)")
        build_site(executed, resolve(a.site))
        if a.markdown:
            build_markdown(executed, resolve(a.markdown))
        print(f"wrote {a.site}/index.html" + (f" and {a.markdown}/" if a.markdown else ""))
        return 0
    return guarded(run)


if __name__ == "__main__":
    sys.exit(main())

"""The zoom explorer in a real browser: JupyterLab on localhost, headless Chromium driven by
Playwright. Open notebook 90, run it, click a zoom point, move the slider, switch to ZoomWorld;
the panels must change and show prompts, truth and scores. Screenshots go to build/browser/.

Chromium comes from Debian's ``chromium`` package (``.ci/run`` installs it); Playwright's own
browser download cannot run here. Without a browser the test is skipped, saying why."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: The explorer's parameters for this test (as papermill would inject them): small states, so that a
#: click's chains take seconds on two CPU cores.
PARAMS = {"process_size": 128, "steps": 3, "photos": ["astronaut", "coffee"], "static_photo": "astronaut"}

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here: install Debian's chromium package "
                                                          "(.ci/run does) to run the browser test")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook_copy(folder: Path) -> Path:
    """Notebook 90 with the test's parameters in its parameters cell (the repository's copy stays clean)."""
    nb = json.loads((ROOT / "notebooks" / "90_zoom_explorer.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    params = {**PARAMS, "figures_dir": str(folder / "figures")}  # never the project's committed figures/
    cell["source"] = "".join(cell["source"]) + "".join(f"{k} = {v!r}\n" for k, v in params.items())
    path = folder / "90_zoom_explorer.ipynb"
    path.write_text(json.dumps(nb))
    return path


@pytest.fixture
def jupyterlab(tmp_path):
    pytest.importorskip("playwright.sync_api", reason="playwright (PyPI) is not installed")
    port, token = _free_port(), "cozlib-browser-test"
    _notebook_copy(tmp_path)
    env = {**os.environ, "COZ_CHAIN_CACHE": str(tmp_path / "cache"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "HF_HUB_OFFLINE": "1"}
    env.pop("COZ_THREADS", None)  # the kernel uses both cores
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--ServerApp.ip=127.0.0.1",
                             "--allow-root", "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run commands
                             "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield base, token
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


#: The notebook's kernel is connected and idle (JupyterLab's own objects; the app is exposed by
#: ``--LabApp.expose_app_in_browser``).
KERNEL_READY = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""
#: Every cell has run and the kernel is idle again.
NOTEBOOK_DONE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  const queued = [...document.querySelectorAll('.jp-InputPrompt')].some(e => e.innerText.includes('*'));
  return !!k && k.status === 'idle' && !queued;
}"""
#: A cell has started or finished running (its prompt shows [*] or [n]).
RUNNING = "() => [...document.querySelectorAll('.jp-InputPrompt')].some(e => /\\[(\\*|\\d+)\\]/.test(e.innerText))"


def _status(page) -> str:
    return page.locator(".coz-status").inner_text()


def _wait_done(page, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = _status(page)
        if text.startswith("done"):
            return
        assert "error" not in text, text
        time.sleep(0.5)
    raise AssertionError(f"the explorer did not finish: {_status(page)!r}")


def _panel_sources(page) -> list[str]:
    return page.eval_on_selector_all(".coz-panel img", "els => els.map(e => e.src)")


def test_the_explorer_zooms_where_clicked_and_slides_through_levels(jupyterlab):
    from playwright.sync_api import sync_playwright
    base, token = jupyterlab
    SHOTS.mkdir(parents=True, exist_ok=True)
    committed = ROOT / "figures" / "MANIFEST.json"
    committed_before = committed.stat().st_mtime_ns if committed.exists() else None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1700, "height": 1300})
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        try:
            _explore(page, base, token)
        except Exception:
            page.screenshot(path=str(SHOTS / "failure.png"), full_page=True)  # what the browser showed
            (SHOTS / "failure-console.txt").write_text("\n".join(console))
            raise
        finally:
            browser.close()
    assert (SHOTS / "explorer_photo.png").stat().st_size > 10_000 and (SHOTS / "explorer_world.png").stat().st_size > 10_000
    assert (committed.stat().st_mtime_ns if committed.exists() else None) == committed_before, \
        "the test wrote into the project's figures/"


def _explore(page, base: str, token: str) -> None:
    """Run notebook 90, click, slide, switch to ZoomWorld; assert the panels follow."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    page.goto(f"{base}/lab/tree/90_zoom_explorer.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook", timeout=120_000)
    page.wait_for_function(KERNEL_READY, timeout=120_000)
    for _ in range(3):  # Run > Run All Cells, as the menu does it; again if the kernel did not take it
        # not awaited: the command's promise settles only when every cell has run
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        try:
            page.wait_for_function(RUNNING, timeout=30_000)
            break
        except PlaywrightTimeout:
            continue
    page.wait_for_selector(".coz-panel img", timeout=240_000)
    _wait_done(page)
    # the widget's events reach the kernel between cells: wait until the notebook's cells have all run
    page.wait_for_function(NOTEBOOK_DONE, timeout=300_000)
    first = _panel_sources(page)
    assert len(first) == 4  # nearest, bicubic, direct SR, CoZ

    overview = page.locator(".coz-overview")
    overview.scroll_into_view_if_needed()  # a mouse click lands where the page shows it
    box = overview.bounding_box()
    page.mouse.click(box["x"] + 0.30 * box["width"], box["y"] + 0.40 * box["height"])  # a zoom point
    page.wait_for_function("() => !document.querySelector('.coz-status').innerText.startsWith('done')",
                           timeout=30_000)
    _wait_done(page)
    clicked = _panel_sources(page)
    assert clicked != first, "clicking a new point did not change the panels"

    page.locator(".coz-zoom .noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")                                        # one level deeper
    page.wait_for_function("src => JSON.stringify([...document.querySelectorAll('.coz-panel img')]"
                           ".map(e => e.src)) !== src", arg=json.dumps(clicked), timeout=30_000)
    page.screenshot(path=str(SHOTS / "explorer_photo.png"), full_page=True)

    page.locator(".widget-toggle-buttons button", has_text="ZoomWorld").click()
    page.wait_for_function("() => document.querySelector('.coz-panel') && "
                           "[...document.querySelectorAll('.coz-panel')].some(e => e.innerText.includes('Truth'))",
                           timeout=300_000)
    _wait_done(page)
    texts = page.locator(".coz-panel").all_inner_texts()
    assert any("true words:" in t for t in texts), texts
    assert any("prompt:" in t and "CoZ VLM" in t for t in texts), texts          # each panel's prompt shown
    assert any("texture distance" in t for t in texts), texts                   # scored against the truth
    before = _panel_sources(page)
    page.locator(".coz-zoom .noUi-handle").first.focus()
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("src => JSON.stringify([...document.querySelectorAll('.coz-panel img')]"
                           ".map(e => e.src)) !== src", arg=json.dumps(before), timeout=30_000)
    page.screenshot(path=str(SHOTS / "explorer_world.png"), full_page=True)

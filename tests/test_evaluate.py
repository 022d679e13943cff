"""`python -m cozlib evaluate` (issue 27): Table 1 over images, split over processes by accelerate
(two gloo processes on the CPU), the same CSV as one process, and a killed run resumed without redoing
any finished image."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ARGS = ["world:1", "world:2", "world:3", "world:4", "--methods", "Nearest", "Bicubic", "CoZ", "--metrics", "piqe",
        "--steps", "2", "--process-size", "64", "--device", "cpu"]
ENV = {**os.environ, "COZ_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(out: Path) -> subprocess.Popen:
    """Two processes through `accelerate launch` (torchrun underneath; gloo on the CPU), in their own group."""
    accelerate = Path(sys.executable).parent / "accelerate"
    return subprocess.Popen([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                             "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
                             "-m", "cozlib", "evaluate", *ARGS, "--out", str(out)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _kill_all(out: Path) -> None:
    """SIGKILL every process whose command line names ``out`` (unique to this test), as a crash would."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(out).encode() in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers to kill through /proc")
def test_two_processes_give_one_process_csv_and_a_killed_run_resumes(tmp_path):
    one = subprocess.run([sys.executable, "-m", "cozlib", "evaluate", *ARGS, "--out", str(tmp_path / "one")], env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    expected = (tmp_path / "one" / "table1.csv").read_text()
    assert expected.splitlines()[0] == "method,PIQE 4x,PIQE 16x" and len(expected.splitlines()) == 4
    batched = subprocess.run([sys.executable, "-m", "cozlib", "evaluate", *ARGS, "--batch", "3", "--out",
                              str(tmp_path / "batched")], env=ENV, capture_output=True, text=True, timeout=300)
    assert batched.returncode == 0, batched.stderr      # chains of 3 images in lockstep: the same table
    assert (tmp_path / "batched" / "table1.csv").read_text() == expected

    out = tmp_path / "two"
    p = _launch(out)
    deadline = time.time() + 240
    while not any((out / "images").glob("*.json")) and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    _kill_all(out)                     # the launcher and its workers (torchrun starts them in their own session)
    p.communicate(timeout=60)
    done = {f.name: f.stat().st_mtime_ns for f in (out / "images").glob("*.json")}
    assert done and not (out / "table1.csv").exists()
    p = _launch(out)
    log, _ = p.communicate(timeout=300)
    assert p.returncode == 0, log
    assert (out / "table1.csv").read_text() == expected
    records = {f.name: f.stat().st_mtime_ns for f in (out / "images").glob("*.json")}
    assert sorted(records) == [f"world-{i}.json" for i in range(1, 5)]
    assert all(records[n] == t for n, t in done.items())   # finished before the kill: never redone
    assert not list(out.rglob("*.tmp*"))                    # nothing half-written


def test_a_folder_of_other_settings_is_refused(tmp_path, capsys):
    from cozlib.cli import main
    out = tmp_path / "e"
    assert main(["evaluate", "world:1", "--methods", "Nearest", "--metrics", "piqe", "--steps", "1",
                 "--process-size", "64", "--device", "cpu", "--out", str(out)]) == 0
    assert main(["evaluate", "world:1", "--methods", "Bicubic", "--metrics", "piqe", "--steps", "1",
                 "--process-size", "64", "--device", "cpu", "--out", str(out)]) == 2
    assert "other settings (methods)" in capsys.readouterr().err
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("mine")
    assert main(["evaluate", "world:1", "--metrics", "piqe", "--out", str(tmp_path / "user")]) == 2

"""`healthivert view` stops its Streamlit server when it is stopped: by SIGTERM to its PID (a
supervisor, a batch script) or by Ctrl-C (SIGINT to the terminal's process group)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.review.results_fixture import minimal_result

ROOT = Path(__file__).resolve().parents[2]
START_S, STOP_S = 90, 15


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"viewer did not start: {log.read_text()[-2000:]}")


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "to_group"), [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["SIGTERM to the PID", "Ctrl-C"])
def test_stopping_the_viewer_stops_its_server(tmp_path: Path, signum: int, to_group: bool) -> None:
    (tmp_path / "results" / "sub-a").mkdir(parents=True)
    (tmp_path / "results" / "sub-a" / "result.json").write_text(minimal_result("sub-a"))
    port, log = _free_port(), tmp_path / "viewer.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "healthivert.cli", "view", str(tmp_path / "results"), "--port", str(port),
             "--db", f"sqlite:///{tmp_path / 'r.sqlite'}"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc, log)
        server = psutil.Process(proc.pid).children(recursive=True)
        assert server, "the viewer started no server process"
        if to_group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        proc.wait(STOP_S)
        _, alive = psutil.wait_procs(server, timeout=STOP_S)
        assert alive == [], f"still running after {STOP_S} s: {[p.pid for p in alive]}"
        assert proc.returncode in (0, 128 + signum), proc.returncode
        assert "Traceback" not in log.read_text()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # only the group this test started
        except ProcessLookupError:
            pass
        proc.wait(STOP_S)


STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)")
LAUNCHER = ("import os, sys; from healthivert.review.launch import run_viewer; "
            "sys.exit(run_viewer([sys.executable, '-c', sys.argv[1]], dict(os.environ), grace_s=1.0))")


def test_a_server_that_ignores_the_stop_is_killed_after_the_grace_period() -> None:
    """run_viewer on a stand-in server that ignores SIGTERM: killed 1 s after it was asked to stop."""
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, STUBBORN], stdout=subprocess.PIPE, text=True,
                            start_new_session=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "ready"
        server = psutil.Process(proc.pid).children()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(STOP_S) == 128 + signal.SIGKILL
        _, alive = psutil.wait_procs(server, timeout=STOP_S)
        assert alive == []
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(STOP_S)

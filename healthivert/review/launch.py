"""How ``healthivert view`` starts the Streamlit viewer (the package's ``healthivert/viewer/app.py``),
and stops it: a SIGTERM or SIGINT sent to ``healthivert view`` is passed on to the server."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from healthivert.errors import InputError

ENV_RESULTS, ENV_DB, ENV_REVIEWER = "HEALTHIVERT_RESULTS", "HEALTHIVERT_DB", "HEALTHIVERT_REVIEWER"
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
STOP_GRACE_S = 10.0  # how long the server may take to stop before it is killed
_POLL_S = 0.2


def app_script() -> Path:
    """The viewer's Streamlit script, ``healthivert/viewer/app.py`` of the installed package
    (found without importing it: importing it loads Streamlit).

    Raises:
        InputError: the installation lacks the viewer.
    """
    try:
        spec = importlib.util.find_spec("healthivert.viewer.app")
    except ModuleNotFoundError:  # no healthivert.viewer at all
        spec = None
    path = Path(spec.origin) if spec is not None and spec.origin else None
    if path is None or not path.is_file():
        raise InputError("the viewer (healthivert.viewer.app) is not installed; reinstall healthivert")
    return path


def viewer_command(port: int = 8501, address: str = "127.0.0.1") -> list[str]:
    """The ``streamlit run`` command line (headless; no usage statistics)."""
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1-65535; got {port}")
    return [sys.executable, "-m", "streamlit", "run", str(app_script()),
            "--server.headless", "true", "--server.port", str(port), "--server.address", address,
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--client.toolbarMode", "viewer"]


def viewer_env(results: str | Path, db_url: str | None = None, reviewer: str | None = None) -> dict[str, str]:
    """The environment that tells the app its results folder, database and reviewer (a database
    URL may hold a password, so it goes in the environment, not on the command line)."""
    env = dict(os.environ)
    env[ENV_RESULTS] = str(Path(results).resolve())
    for key, value in ((ENV_DB, db_url), (ENV_REVIEWER, reviewer)):
        if value:
            env[key] = value
        else:
            env.pop(key, None)
    return env


def viewer_url(port: int = 8501, address: str = "127.0.0.1") -> str:
    host = "localhost" if address in ("0.0.0.0", "::") else address
    return f"http://{host}:{port}"


def run_viewer(command: list[str], env: dict[str, str], grace_s: float = STOP_GRACE_S) -> int:
    """Run the viewer server until it exits, passing on SIGTERM and SIGINT.

    A stop signal sent to this process (a supervisor's SIGTERM, Ctrl-C) goes to the server too;
    a server still running ``grace_s`` later is killed. Call from the main thread.

    Returns:
        The server's exit status; 128 + N when signal N ended it.
    """
    stops: list[float] = []  # when stop signals came
    children: list[subprocess.Popen] = []

    def forward(signum: int, _frame) -> None:
        stops.append(time.monotonic())
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in STOP_SIGNALS}
    try:
        children.append(subprocess.Popen(command, env=env))
        if stops:  # stopped while it was being started
            children[0].terminate()
        return _exit_status(_wait(children[0], stops, grace_s))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait(child: subprocess.Popen, stops: list[float], grace_s: float) -> int:
    """The child's return code; killed when it outlives the first stop signal by ``grace_s``."""
    while True:
        try:
            return child.wait(timeout=_POLL_S)
        except subprocess.TimeoutExpired:
            if stops and time.monotonic() - stops[0] > grace_s:
                child.kill()


def _exit_status(returncode: int) -> int:
    """A shell's exit status for a return code (a negative one is the signal that ended it)."""
    return 128 - returncode if returncode < 0 else returncode

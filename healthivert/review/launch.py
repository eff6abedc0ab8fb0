"""How ``healthivert view`` starts the Streamlit viewer (app/main.py of the source tree)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import healthivert
from healthivert.errors import InputError

ENV_RESULTS, ENV_DB = "HEALTHIVERT_RESULTS", "HEALTHIVERT_DB"


def app_script() -> Path:
    """``app/main.py`` next to the package in the repository.

    Raises:
        InputError: the package was installed without its source tree.
    """
    path = Path(healthivert.__file__).resolve().parent.parent / "app" / "main.py"
    if not path.is_file():
        raise InputError(f"the viewer app is not at {path}; run from a source checkout (pip install -e .)")
    return path


def viewer_command(port: int = 8501, address: str = "127.0.0.1") -> list[str]:
    """The ``streamlit run`` command line (headless; no usage statistics)."""
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1-65535; got {port}")
    return [sys.executable, "-m", "streamlit", "run", str(app_script()),
            "--server.headless", "true", "--server.port", str(port), "--server.address", address,
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--client.toolbarMode", "viewer"]


def viewer_env(results: str | Path, db_url: str | None = None) -> dict[str, str]:
    """The environment that tells the app its results folder and database (a database URL may
    hold a password, so it goes in the environment, not on the command line)."""
    env = dict(os.environ)
    env[ENV_RESULTS] = str(Path(results).resolve())
    if db_url:
        env[ENV_DB] = db_url
    else:
        env.pop(ENV_DB, None)
    return env


def viewer_url(port: int = 8501, address: str = "127.0.0.1") -> str:
    host = "localhost" if address in ("0.0.0.0", "::") else address
    return f"http://{host}:{port}"

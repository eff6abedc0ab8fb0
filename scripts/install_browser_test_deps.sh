#!/usr/bin/env bash
# Dependencies of the viewer's real-browser test (tests/app/test_browser.py), installed only
# when missing: Debian's chromium (apt) and Playwright for Python (pip, pinned).
# Playwright's own browser download (`playwright install`) is never used: the test drives
# /usr/bin/chromium through executable_path.
# Usage: scripts/install_browser_test_deps.sh [PYTHON]   (default: .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
PLAYWRIGHT_VERSION="1.65.2"

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; else SUDO=""; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if ! "$PY" -c "import playwright.sync_api" 2>/dev/null; then
    "$PY" -m pip install --quiet "playwright==${PLAYWRIGHT_VERSION}"
fi
/usr/bin/chromium --version
"$PY" -c "import importlib.metadata as m; print('playwright', m.version('playwright'))"

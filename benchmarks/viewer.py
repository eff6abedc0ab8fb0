"""How fast the review viewer switches vertebra, in a real browser (issue #27: <= 1 s).

    .venv/bin/python benchmarks/viewer.py [--results RESULTS] [--study sub-demo] [--switches 14]

Without ``--results`` it writes ``healthivert demo`` (phantom T10-L4, seed 7) into a temporary
folder. It starts ``healthivert view`` on it (a temporary review database: nothing is written
to the results), opens the study in headless Chromium (Debian's ``/usr/bin/chromium``, driven
by Playwright: ``scripts/install_browser_test_deps.sh``), and clicks the next vertebra's row in
the vertebra table, round the study, ``--switches`` times. Each switch is timed from the click
until the new vertebra's page is drawn: its review form and explanation headings shown, every
image (the three CT planes, the straightened crops, the height profile and the loss map) loaded,
and the app idle again. The first visit of a vertebra draws its planes and figures (unless they
were drawn ahead while its neighbour was shown); a revisit finds them in the viewer's cache.
Prints a markdown table (median, p90, max) and the machine's load. ``--pause S`` waits S
seconds after each page is shown before the next click, as a reader looking at it would: the
viewer draws the neighbouring vertebrae ahead in that time.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: the vertebra's page is drawn: the run that opened it has finished, its headings are there, images loaded
SHOWN_JS = """(name) => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    const heads = [...document.querySelectorAll('h3')].map(h => h.innerText.trim());
    if (!heads.some(t => t.startsWith('Review ' + name))) return false;
    if (!heads.some(t => t.startsWith(name + ': '))) return false;
    // the clickable planes are images inside components' frames (same origin)
    const docs = [document, ...[...document.querySelectorAll('iframe')].map(f => {
        try { return f.contentDocument; } catch (e) { return null; } }).filter(d => d)];
    const imgs = docs.flatMap(d => [...d.querySelectorAll('img')]);
    return imgs.length >= 6 && imgs.every(i => i.complete && i.naturalWidth > 0);
}"""
ROW_PX = 35  # the vertebra table's header and row height (Streamlit's dataframe)


@contextmanager
def study_page(url: str, study: str, viewport: tuple[int, int] = (1500, 1100), timeout_ms: int = 30_000):
    """A headless Chromium page (Debian's, through Playwright) on ``study`` in the viewer at ``url``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.set_default_timeout(timeout_ms)
            page.goto(f"{url}/?study={study}")
            yield page
        finally:
            browser.close()


def idle(page, timeout_ms: int = 120_000) -> None:
    """Wait until the app's script run has finished."""
    page.wait_for_function("""() => document.querySelector('[data-testid="stApp"]')
        ?.getAttribute('data-test-script-state') === 'notRunning'""", timeout=timeout_ms)


def vertebra_shown(page, name: str, timeout_ms: int = 120_000) -> None:
    """Wait until vertebra ``name``'s page is drawn (``SHOWN_JS``)."""
    page.wait_for_function(SHOWN_JS, arg=name, timeout=timeout_ms)


def choose(page, label: str, option: str, timeout_ms: int = 120_000) -> None:
    """Pick ``option`` in the selectbox labelled ``label``. Its list closes when the app's pane
    scrolls, and a click on a widget the running script redraws can be lost: open it again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator("div[data-testid='stSelectbox']").filter(has=page.get_by_text(label, exact=True))
    choice = page.get_by_role("option", name=option, exact=True)
    for attempt in range(6):
        idle(page, timeout_ms)
        box.scroll_into_view_if_needed()
        box.get_by_role("button", name="Open").click()
        try:
            choice.wait_for(state="visible", timeout=3000)
            break
        except PlaywrightTimeout:
            if attempt == 5:
                raise
    choice.click()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_viewer(results: Path, db_url: str, log: Path, reviewer: str = "benchmark") -> tuple[subprocess.Popen, str]:
    """``healthivert view`` on a free port, in a session of its own; returns it and its URL once healthy."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "healthivert.cli", "view", str(results), "--port", str(port), "--db", db_url,
         "--reviewer", reviewer],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.3)
    stop_viewer(proc)
    raise SystemExit(f"the viewer did not start: {log.read_text()[-2000:]}")


def stop_viewer(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)  # the viewer and its streamlit child, which we started
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def demo_results(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "healthivert.cli", "demo", "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return out / "results"


def vertebra_names(results: Path, study: str) -> list[str]:
    from healthivert.report.contract import read_result

    return [v.name for v in read_result(results / study)["vertebrae"]]


def time_switches(url: str, study: str, names: list[str], switches: int,
                  pause: float = 0.0) -> list[tuple[str, bool, float]]:
    """(vertebra, first visit, seconds) per switch: click its table row, wait until it is drawn;
    ``pause`` seconds between a page shown and the next click (a reader looking at it)."""
    timings = []
    with study_page(url, study, (1500, 1100)) as page:
        page.get_by_role("heading", name=f"Study {study}").wait_for(timeout=120_000)
        shown = page.locator("h3", has_text="Review ").first
        shown.wait_for(timeout=120_000)
        current = shown.inner_text().strip().removeprefix("Review ").split()[0]
        page.wait_for_function(SHOWN_JS, arg=current, timeout=120_000)
        seen = {current}
        table = page.locator("[data-testid='stDataFrame']").first
        for k in range(switches):
            target = names[(names.index(current) + 1) % len(names)]
            table.scroll_into_view_if_needed()
            time.sleep(pause)
            start = time.perf_counter()
            table.click(position={"x": 18, "y": ROW_PX * (names.index(target) + 1) + ROW_PX // 2})
            page.wait_for_function(SHOWN_JS, arg=target, timeout=60_000, polling="raf")
            timings.append((target, target not in seen, time.perf_counter() - start))
            print(f"switch {k + 1}: {current} -> {target} {timings[-1][2]:.2f} s", file=sys.stderr)
            seen.add(target)
            current = target
    return timings


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.9 * len(ordered) + 0.5) - 1))]


def table(timings: list[tuple[str, bool, float]]) -> str:
    lines = ["| switches | n | median (s) | p90 (s) | max (s) |", "|---|---|---|---|---|"]
    for what, rows in (("first visit", [t for _, first, t in timings if first]),
                       ("revisit", [t for _, first, t in timings if not first]),
                       ("all", [t for _, _, t in timings])):
        if rows:
            lines.append(f"| {what} | {len(rows)} | {statistics.median(rows):.2f} | {p90(rows):.2f} | "
                         f"{max(rows):.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="results folder (default: a fresh healthivert demo)")
    parser.add_argument("--study", default="sub-demo")
    parser.add_argument("--switches", type=int, default=14, help="vertebra switches to time (default 14)")
    parser.add_argument("--pause", type=float, default=0.0,
                        help="seconds between a vertebra shown and the next click (default 0: at once)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hv_viewer_bench_") as tmp:
        tmp = Path(tmp)
        results = args.results or demo_results(tmp / "demo")
        names = vertebra_names(results, args.study)
        load_before = os.getloadavg()
        proc, url = start_viewer(results, f"sqlite:///{tmp / 'reviews.sqlite'}", tmp / "viewer.log")
        try:
            timings = time_switches(url, args.study, names, args.switches, args.pause)
        finally:
            stop_viewer(proc)
        load_after = os.getloadavg()
    print(f"Vertebra switch in the browser (click on the table row until planes, crops, maps and explanation "
          f"are drawn; {args.pause:g} s between a page shown and the next click), study {args.study}, "
          f"{len(names)} vertebrae, {os.cpu_count()} CPUs, load average "
          f"{load_before[0]:.1f} before / {load_after[0]:.1f} after:\n")
    print(table(timings))


if __name__ == "__main__":
    main()

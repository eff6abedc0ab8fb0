"""The viewer in a real browser: `healthivert view --reviewer` serving, headless Chromium (Debian's
package) driven by Playwright, override a grade, reload, and find it persisted with its audit;
then the keyboard: N opens the next unreviewed vertebra and A accepts it. The whole loop: pick a
vertebra from the table and accept it (2 actions), override another (grade + comment), switch
vertebra and back, and find in the database exactly what the reviewer chose.

Setup: scripts/install_browser_test_deps.sh (run here when chromium or playwright is missing).
The study view's screenshot is kept in tests/app/artifacts/.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from benchmarks.viewer import CHROMIUM, choose, idle, study_page, vertebra_shown
from healthivert.review import ReviewStore
from tests.review.results_fixture import CT_STUDY, algorithm_grades

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("HEALTHIVERT_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))
pytestmark = pytest.mark.slow


def _playwright_importable() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


#: how long an assertion waits for the page: the viewer reruns its script on every click, and on
#: the 2-core CI machine with the suite's other workers busy a rerun took over Playwright's 5 s
EXPECT_TIMEOUT_MS = 30_000


@pytest.fixture(scope="session")
def browser_deps() -> None:
    """Install chromium (apt) and playwright (pip) when missing; skip only when that fails."""
    if CHROMIUM.exists() and _playwright_importable():
        _patient_expect()
        return
    script = ROOT / "scripts" / "install_browser_test_deps.sh"
    proc = subprocess.run(["bash", str(script), sys.executable], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not CHROMIUM.exists() or not _playwright_importable():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        pytest.skip(f"chromium / playwright could not be installed by {script.name}: {' | '.join(tail)}")
    _patient_expect()


def _patient_expect() -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def viewer(results):
    """`healthivert view` on the results folder, on a free port; yields its URL."""
    port = _free_port()
    log = open(results.root.parent / "viewer.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "healthivert.cli", "view", str(results.root), "--port", str(port),
         "--db", results.db_url, "--reviewer", "Dr Browser"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"viewer did not start: {(results.root.parent / 'viewer.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the viewer and its streamlit child, which we started
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    out = (results.root.parent / "viewer.log").read_text()
    assert f"open {url}" in out


def test_override_in_the_browser(browser_deps, viewer: str, results) -> None:
    from playwright.sync_api import expect

    grades = algorithm_grades(results.root, CT_STUDY)
    new = (grades["L1"] + 1) % 4
    names = {0: "normal", 1: "mild", 2: "moderate", 3: "severe"}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with study_page(viewer, CT_STUDY, (1500, 1100), 30_000) as page:
        # the first run of a fresh server imports the library (scikit-learn with the graders): seconds
        expect(page.get_by_role("heading", name=f"Study {CT_STUDY}")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Review L1")).to_be_visible()  # the worst vertebra is selected first
        # the axial plane, crops, map, profile; the sagittal and coronal planes in clickable frames
        expect(page.locator("img")).to_have_count(4, timeout=60_000)
        expect(page.frame_locator("iframe").nth(0).locator("img")).to_be_visible()
        expect(page.get_by_text("reviewer: Dr Browser")).to_be_visible()  # from --reviewer, not typed
        page.get_by_text("override", exact=True).click()
        page.get_by_label("comment (required for an override)").fill("posterior wall displaced")
        page.get_by_label("comment (required for an override)").press("Tab")
        page.locator("div[data-testid='stSelectbox']").filter(has_text="reviewed grade").click()
        page.get_by_role("option", name=f"{new} {names[new]}").click()
        page.wait_for_timeout(500)
        page.get_by_role("button", name="Save review").click()
        expect(page.get_by_text(f"saved: L1 grade {new} (override) by Dr Browser")).to_be_visible()

        page.reload()
        expect(page.get_by_role("heading", name=f"Study {CT_STUDY}")).to_be_visible()
        expect(page.get_by_text(f"Current review: {new} (override) by Dr Browser")).to_be_visible()
        expect(page.get_by_text("audit trail (append-only)")).to_be_visible()
        expect(page.locator("img")).to_have_count(4, timeout=60_000)
        page.set_viewport_size({"width": 1500, "height": 3600})  # the app scrolls inside its own pane
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "viewer_study.png"), full_page=True)

        page.get_by_role("heading", name=f"Study {CT_STUDY}").click()  # no text field has the focus
        page.keyboard.press("n")  # the next unreviewed vertebra after L1: L2
        expect(page.get_by_text("Review L2")).to_be_visible()
        page.keyboard.press("a")
        expect(page.get_by_text(f"saved: L2 grade {grades['L2']} (accept) by Dr Browser")).to_be_visible()
    store = ReviewStore(results.db_url)
    review = store.review(CT_STUDY, 20)
    assert (review.reviewed_grade, review.reviewer, review.comment) == (new, "Dr Browser", "posterior wall displaced")
    assert [(a.action, a.old_grade, a.new_grade, a.reviewer) for a in store.audit(CT_STUDY, 20)] == [
        ("override", grades["L1"], new, "Dr Browser")]
    accepted = store.review(CT_STUDY, 21)
    assert (accepted.action, accepted.reviewed_grade, accepted.reviewer) == ("accept", grades["L2"], "Dr Browser")
    assert store.review(CT_STUDY, 19) is None
    store.dispose()


def _idle(page) -> None:
    idle(page, timeout_ms=60_000)


def _vertebra_shown(page, name: str) -> None:
    """Wait until the script run that opened vertebra ``name`` has finished and its page is drawn:
    its review form and explanation headings, every image loaded, the app idle."""
    vertebra_shown(page, name, timeout_ms=60_000)


def _choose(page, label: str, option: str) -> None:
    choose(page, label, option, timeout_ms=60_000)


def _pick_vertebra(page, name: str) -> None:
    _choose(page, "vertebra", name)
    _vertebra_shown(page, name)


def test_review_loop_in_the_browser(browser_deps, viewer: str, results) -> None:
    """The whole loop: open a study; accept T12 picked from the table (2 actions: the row, A);
    override L2 (grade + comment); switch vertebra and back; the database holds exactly that."""
    from playwright.sync_api import expect

    grades = algorithm_grades(results.root, CT_STUDY)
    labels = {"T12": 19, "L1": 20, "L2": 21}
    new = (grades["L2"] + 2) % 4
    names = {0: "normal", 1: "mild", 2: "moderate", 3: "severe"}
    comment = "endplate depression larger than measured"
    actions: list[str] = []  # the reviewer's inputs from seeing the study to T12's accept being saved
    with study_page(viewer, CT_STUDY, (1500, 1100), 30_000) as page:
        expect(page.get_by_role("heading", name=f"Study {CT_STUDY}")).to_be_visible(timeout=60_000)
        _vertebra_shown(page, "L1")  # the worst vertebra first

        # accept T12: pick its row in the vertebra table (one click), press A
        table = page.locator("[data-testid='stDataFrame']").first
        table.scroll_into_view_if_needed()
        row = list(labels).index("T12")
        actions.append("click the T12 row of the table")
        table.click(position={"x": 18, "y": 35 * (row + 1) + 17})
        _vertebra_shown(page, "T12")
        actions.append("press A")  # straight after the click: the table does not keep the key
        page.keyboard.press("a")
        expect(page.get_by_text(f"saved: T12 grade {grades['T12']} (accept) by Dr Browser")).to_be_visible()
        assert len(actions) <= 2, actions

        # override L2: its form starts at its own state (accept), not T12's
        _pick_vertebra(page, "L2")
        expect(page.get_by_text("Current review:")).to_have_count(0)
        expect(page.get_by_role("radio", name=f"accept grade {grades['L2']}")).to_be_checked()
        page.get_by_role("heading", name=f"Study {CT_STUDY}").click()
        page.keyboard.press("o")
        expect(page.get_by_role("radio", name="override")).to_be_checked()
        _choose(page, "reviewed grade", f"{new} {names[new]}")
        field = page.get_by_label("comment (required for an override)")
        field.fill(comment)
        field.press("Tab")
        page.get_by_role("button", name="Save review").click()
        expect(page.get_by_text(f"saved: L2 grade {new} (override) by Dr Browser")).to_be_visible()

        # switch away and back: each vertebra shows its own saved state
        _pick_vertebra(page, "T12")
        expect(page.get_by_text(f"Current review: {grades['T12']} (accept) by Dr Browser")).to_be_visible()
        _pick_vertebra(page, "L1")
        expect(page.get_by_text("Current review:")).to_have_count(0)
        expect(page.get_by_text("audit trail (append-only)")).to_have_count(0)
        _pick_vertebra(page, "L2")
        expect(page.get_by_text(f"Current review: {new} (override) by Dr Browser")).to_be_visible()
        expect(page.get_by_role("radio", name="override")).to_be_checked()
    store = ReviewStore(results.db_url)
    try:
        reviews = store.reviews()
        assert sorted(reviews) == [(CT_STUDY, labels["T12"]), (CT_STUDY, labels["L2"])]
        t12, l2 = reviews[(CT_STUDY, labels["T12"])], reviews[(CT_STUDY, labels["L2"])]
        assert (t12.name, t12.action, t12.algorithm_grade, t12.reviewed_grade, t12.reviewer, t12.comment) == (
            "T12", "accept", grades["T12"], grades["T12"], "Dr Browser", "")
        assert (l2.name, l2.action, l2.algorithm_grade, l2.reviewed_grade, l2.reviewer, l2.comment) == (
            "L2", "override", grades["L2"], new, "Dr Browser", comment)
        assert [(a.label, a.action, a.outcome, a.old_grade, a.new_grade, a.reviewer, a.comment)
                for a in sorted(store.audit(), key=lambda a: a.label)] == [
            (labels["T12"], "accept", "saved", grades["T12"], grades["T12"], "Dr Browser", ""),
            (labels["L2"], "override", "saved", grades["L2"], new, "Dr Browser", comment)]
        assert store.label_shifts() == []
    finally:
        store.dispose()


def test_pick_a_vertebra_by_clicking_the_plane_in_the_browser(browser_deps, viewer: str, results) -> None:
    """A click on T12's body in the sagittal plane (a component's frame) opens T12; A then accepts it."""
    from playwright.sync_api import expect

    from healthivert.review import ResultsFolder
    from healthivert.review.render import focus_on, label_centres, load_study_images, plane_view
    from healthivert.review.studies import Study
    from healthivert.viewer.ui_study import PLANE_WIDTH_PX

    images = load_study_images(Study.load(ResultsFolder.open(results.root), CT_STUDY))
    centres = label_centres(images)
    view = plane_view(images, "sagittal", int(round(centres[20][0])), PLANE_WIDTH_PX["sagittal"])  # through L1
    px, py = view.to_px(*focus_on(images, "sagittal", centres[19]))
    with study_page(viewer, CT_STUDY, (1500, 1100), 30_000) as page:
        expect(page.get_by_role("heading", name=f"Study {CT_STUDY}")).to_be_visible(timeout=60_000)
        _vertebra_shown(page, "L1")
        plane = page.frame_locator("iframe").first.locator("img")
        box = plane.bounding_box()
        plane.click(position={"x": px / view.size_px[0] * box["width"], "y": py / view.size_px[1] * box["height"]})
        _vertebra_shown(page, "T12")
        expect(page.get_by_text("Review T12")).to_be_visible()
        page.keyboard.press("a")  # the page's keys still act after a click in the plane's frame
        expect(page.get_by_text("saved: T12")).to_be_visible(timeout=10_000)

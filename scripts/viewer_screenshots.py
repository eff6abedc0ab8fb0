"""Screenshots of the review viewer for docs/viewer.md (docs/images/viewer_*.png), regenerable.

    .venv/bin/python scripts/viewer_screenshots.py [--results RESULTS] [--out docs/images]

Without ``--results`` it writes ``healthivert demo`` (phantom T10-L4, seed 7: T12 wedge, L1
crush, L3 biconcave) into a temporary folder. It starts ``healthivert view`` on it with a
temporary review database, and in headless Chromium (Playwright; scripts/install_browser_test_deps.sh)
reviews as a reader would: accepts L2, overrides L3 to grade 1 with a comment, opens L1 (the
crush fracture); then saves the study page in two parts (planes and table; L1's explanation,
straightened crops with the pseudo-healthy outline, height-loss map and review form) and the HTML
report downloaded from the page. Each PNG is reduced to a palette (and scaled down if needed)
to stay under ``--max-kb``.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from viewer import (  # noqa: E402
    SHOWN_JS,
    choose,
    demo_results,
    start_viewer,
    stop_viewer,
    study_page,
)

STUDY = "sub-demo"


def small_png(png: bytes, path: Path, max_kb: int) -> None:
    """Write ``png`` as a 256-colour PNG, scaled down by steps until it is under ``max_kb``."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    scale = 1.0
    while True:
        size = (round(image.width * scale), round(image.height * scale))
        shown = image if scale == 1.0 else image.resize(size, Image.LANCZOS)
        buf = io.BytesIO()
        shown.quantize(256, method=Image.MEDIANCUT, dither=Image.NONE).save(buf, "PNG", optimize=True)
        if buf.tell() <= max_kb * 1024 or scale < 0.5:
            path.write_bytes(buf.getvalue())
            print(f"{path}: {size[0]}x{size[1]}, {buf.tell() // 1024} KB")
            return
        scale *= 0.9


def open_vertebra(page, name: str) -> None:
    choose(page, "vertebra", name)
    page.wait_for_function(SHOWN_JS, arg=name, timeout=120_000)


def shoot(url: str, out: Path, max_kb: int, tmp: Path) -> None:
    with study_page(url, STUDY, (1400, 1000), 60_000) as page:
        page.wait_for_function(SHOWN_JS, arg="L1", timeout=180_000)  # the worst vertebra opens first

        open_vertebra(page, "L2")
        page.get_by_role("heading", name=f"Study {STUDY}").click()  # no field has the focus
        page.keyboard.press("a")
        page.get_by_text("saved: L2 grade 0 (accept)").wait_for()
        open_vertebra(page, "L3")
        page.get_by_role("heading", name=f"Study {STUDY}").click()
        page.keyboard.press("o")
        choose(page, "reviewed grade", "1 mild")
        field = page.get_by_label("comment (required for an override)")
        field.fill("biconcave: middle height lost, 19 % by RHLV; the SVM's 0 is not credible")
        field.press("Tab")
        page.get_by_role("button", name="Save review").click()
        page.get_by_text("saved: L3 grade 1 (override)").wait_for()
        open_vertebra(page, "L1")

        # the app scrolls inside its own pane: a viewport as tall as the page shows all of it
        height = page.evaluate("""() => Math.max(...[...document.querySelectorAll('*')]
            .map(e => e.scrollHeight))""")
        page.set_viewport_size({"width": 1400, "height": min(int(height) + 100, 6000)})
        page.wait_for_function(SHOWN_JS, arg="L1")
        top = page.get_by_role("heading", name="Vertebrae").bounding_box()
        table = page.locator("[data-testid='stDataFrame']").first.bounding_box()
        why = page.get_by_role("heading", name="L1: why grade 3").bounding_box()
        review_end = page.get_by_role("button", name="Save review").bounding_box()
        assert top and table and why and review_end
        png = page.screenshot(full_page=True)
        from PIL import Image

        whole = Image.open(io.BytesIO(png))
        parts = {"viewer_study.png": (0, table["y"] + table["height"] + 60),
                 "viewer_vertebra.png": (why["y"] - 20, review_end["y"] + review_end["height"] + 20)}
        for name, (y0, y1) in parts.items():
            buf = io.BytesIO()
            whole.crop((0, int(y0), whole.width, int(y1))).save(buf, "PNG")
            small_png(buf.getvalue(), out / name, max_kb)

        page.get_by_text("prepare HTML report").click()
        with page.expect_download() as download:
            page.get_by_role("button", name="HTML report").click()
        report = tmp / "report.html"
        download.value.save_as(report)
        page.set_viewport_size({"width": 1250, "height": 1000})
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        small_png(page.screenshot(full_page=True), out / "viewer_report.png", max_kb)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="a healthivert demo's results folder (default: a fresh one)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--max-kb", type=int, default=400)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hv_viewer_shots_") as tmp:
        tmp = Path(tmp)
        results = args.results or demo_results(tmp / "demo")
        proc, url = start_viewer(results, f"sqlite:///{tmp / 'reviews.sqlite'}", tmp / "viewer.log",
                                 reviewer="Dr Demo")
        try:
            shoot(url, args.out, args.max_kb, tmp)
        finally:
            stop_viewer(proc)


if __name__ == "__main__":
    main()

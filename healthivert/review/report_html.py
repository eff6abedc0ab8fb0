"""A one-page HTML report of a study (A4, prints well): key images embedded as base64 PNG."""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime

from healthivert import __version__
from healthivert.models import models_summary
from healthivert.review.render import GRADE_COLOURS, StudyImages, default_slices, figure_png, slice_figure
from healthivert.review.studies import GRADE_NAMES, Study

_CSS = """
@page { size: A4; margin: 12mm; }
body { font: 10pt/1.3 "DejaVu Sans", Arial, sans-serif; color: #111; max-width: 186mm; margin: 0 auto; }
h1 { font-size: 15pt; margin: 0 0 2mm; } h2 { font-size: 11pt; margin: 3mm 0 1mm; }
.meta { color: #555; font-size: 8.5pt; margin-bottom: 2mm; }
.top { display: flex; gap: 4mm; align-items: flex-start; }
.top img { width: 62mm; flex: none; }
table { border-collapse: collapse; font-size: 8pt; width: 100%; }
th, td { border: 1px solid #bbb; padding: 0.6mm 1.2mm; text-align: right; white-space: nowrap; }
td.t { white-space: normal; }
th { background: #eee; } td.t { text-align: left; }
.g { font-weight: bold; color: #fff; text-align: center; border-radius: 2px; }
.maps { display: flex; flex-wrap: wrap; gap: 2mm; } .maps figure { margin: 0; width: 91mm; }
.maps img { width: 100%; } figcaption { font-size: 8pt; color: #333; }
.note { font-size: 7.5pt; color: #555; margin-top: 2mm; }
img, table, figure { page-break-inside: avoid; break-inside: avoid; }
@media print { body { max-width: none; } .noprint { display: none; } }
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _grade_cell(grade: int | None) -> str:
    if grade is None:
        return "<td>-</td>"
    return (f'<td class="g" style="background:{GRADE_COLOURS[int(grade)]}" '
            f'title="{GRADE_NAMES[int(grade)]}">{int(grade)}</td>')


def _pct(v) -> str:
    return "-" if v is None else f"{100 * float(v):.0f}"


def _mm(v) -> str:
    return "-" if v is None else f"{float(v):.1f}"


def _table(rows: list[dict]) -> str:
    head = ("<tr><th>vertebra</th><th>algorithm</th><th>reviewed</th><th>RHLV ant %</th><th>mid %</th>"
            "<th>post %</th><th>H ant mm</th><th>H mid mm</th><th>H post mm</th><th>reviewer</th>"
            "<th>comment / status</th></tr>")
    body = []
    for r in rows:
        heights = [f"{_mm(r[f'height_{s}_mm'])} / {_mm(r[f'healthy_height_{s}_mm'])}"
                   for s in ("anterior", "middle", "posterior")]
        note = r["comment"] if r["comment"] else (r["status"] or "")
        body.append(
            f"<tr><td class='t'>{html.escape(str(r['name']))}</td>{_grade_cell(r['algorithm_grade'])}"
            f"{_grade_cell(r['reviewed_grade'])}"
            + "".join(f"<td>{_pct(r[f'rhlv_{s}'])}</td>" for s in ("anterior", "middle", "posterior"))
            + "".join(f"<td>{h}</td>" for h in heights)
            + f"<td class='t'>{html.escape(r['reviewer'] or '')}</td><td class='t'>{html.escape(note)}</td></tr>"
        )
    return f"<table id='vertebrae'>{head}{''.join(body)}</table>"


def study_report_html(study: Study, rows: list[dict], images: StudyImages | None,
                      max_maps: int = 4) -> str:
    """The report page: mid-sagittal image with labels, the vertebra table and the height-loss maps
    of the vertebrae with the worst final grades (fractured ones first).

    Args:
        study: the study.
        rows: its :func:`~healthivert.review.tables.vertebra_rows`.
        images: its CT / mask (None or empty: no slice image).
        max_maps: at most this many maps, so the page stays one A4 page.
    """
    parts = []
    if images is not None and images.display is not None:
        grades = {int(r["label"]): r["final_grade"] for r in rows}
        fig = slice_figure(images, "sagittal", default_slices(images)["sagittal"], "bone", grades=grades,
                           size_in=3.2)
        parts.append(_img(figure_png(fig, dpi=110), f"{study.study_id} mid-sagittal with labels"))
    ranked = sorted((r for r in rows if r["final_grade"] is not None),
                    key=lambda r: (-int(r["final_grade"]), -(r["rhlv_whole"] or 0)))
    maps = []
    for r in ranked[:max_maps]:
        png = study.loss_map(str(r["name"]), "png")
        if png is not None:
            caption = f"{r['name']}: final grade {r['final_grade']} ({GRADE_NAMES[int(r['final_grade'])]})"
            maps.append(f"<figure>{_img(png.read_bytes(), caption)}<figcaption>{html.escape(caption)}"
                        "</figcaption></figure>")
    res = study.result
    esc = {k: html.escape(str(res.get(k, "?"))) for k in ("software_version", "grader", "synthesizer")}
    meta = (f"software {esc['software_version']} · grader {esc['grader']} · pseudo-healthy {esc['synthesizer']}"
            f" · report {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · healthivert {__version__}")
    if "models" in res:
        meta += f"<br>{html.escape(models_summary(res['models']))}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>HealthiVert report {html.escape(study.study_id)}</title>
<style>{_CSS}</style></head><body>
<h1>Vertebral fracture report: {html.escape(study.study_id)}</h1>
<div class="meta">{meta}</div>
<div class="top">{''.join(parts)}<div>
<h2>Vertebrae</h2>{_table(rows)}
<div class="note">Genant grades: 0 normal, 1 mild (20-25 % height loss), 2 moderate (25-40 %), 3 severe (&gt; 40 %).
RHLV = (H<sub>pseudo-healthy</sub> − H<sub>original</sub>) / H<sub>pseudo-healthy</sub>; heights measured /
pseudo-healthy in mm. Algorithm grades are the software's; reviewed grades are the clinician's.</div>
</div></div>
<h2>Height-loss maps</h2>
<div class="maps">{''.join(maps) or '<p>No height-loss maps.</p>'}</div>
</body></html>
"""

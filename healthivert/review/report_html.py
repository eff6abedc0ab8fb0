"""An HTML report of a study (A4, prints well): key images embedded as base64 PNG, the vertebra
table, the height-loss maps, and the review audit trail (with any relabelling of the levels)."""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime

from healthivert import __version__
from healthivert.models import models_summary
from healthivert.review.relabel import shift_text
from healthivert.review.render import (
    GRADE_COLOURS,
    StudyImages,
    default_slices,
    figure_png,
    loss_map_figure,
    render_slice,
)
from healthivert.review.studies import GRADE_NAMES, Study

UNANCHORED_WARNING = ("labels unanchored: no sacrum or 12th rib found in view (or the two disagree, or a "
                      "vertebra counted from one may hold two); "
                      "check the level names, relabel if needed")

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
.warn { border: 2px solid #c62828; background: #fdecea; color: #8e0000; padding: 1.5mm 2mm; margin: 2mm 0;
        font-weight: bold; }
.info { border: 1px solid #1565c0; background: #e3f2fd; padding: 1mm 2mm; margin: 2mm 0; }
table.audit td { text-align: left; }
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
        name = str(r["name"]) + (f" (algorithm: {r['algorithm_name']})" if r["name"] != r["algorithm_name"] else "")
        if r.get("gan_refused"):
            name += " †"
        body.append(
            f"<tr><td class='t'>{html.escape(name)}</td>{_grade_cell(r['algorithm_grade'])}"
            f"{_grade_cell(r['reviewed_grade'])}"
            + "".join(f"<td>{_pct(r[f'rhlv_{s}'])}</td>" for s in ("anterior", "middle", "posterior"))
            + "".join(f"<td>{h}</td>" for h in heights)
            + f"<td class='t'>{html.escape(r['reviewer'] or '')}</td><td class='t'>{html.escape(note)}</td></tr>"
        )
    return f"<table id='vertebrae'>{head}{''.join(body)}</table>"


def _map_png(study: Study, algorithm_name: str) -> bytes | None:
    """A vertebra's height-loss map: re-rendered from its NIfTI (scales centred on zero, mm and %),
    else the PNG the pipeline wrote."""
    fig = loss_map_figure(study, algorithm_name)
    if fig is not None:
        return figure_png(fig, dpi=90)
    png = study.loss_map(algorithm_name, "png")
    return None if png is None else png.read_bytes()


def _maps(study: Study, rows: list[dict], max_maps: int) -> list[str]:
    ranked = sorted((r for r in rows if r["final_grade"] is not None),
                    key=lambda r: (-int(r["final_grade"]), -(r["rhlv_whole"] or 0)))
    maps = []
    for r in ranked[:max_maps]:
        png = _map_png(study, str(r["algorithm_name"]))
        if png is not None:
            caption = f"{r['name']}: final grade {r['final_grade']} ({GRADE_NAMES[int(r['final_grade'])]})"
            maps.append(f"<figure>{_img(png, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>")
    return maps


def _study_metadata(study: Study) -> str:
    """The study's DICOM header (or that the input was not DICOM), as HTML."""
    fields, notes = study.metadata
    line = " · ".join(f"{html.escape(k)}: <b>{html.escape(v)}</b>" for k, v in fields)
    return f"<div class='meta' id='study'>{line}{''.join(f'<br>⚠ {html.escape(n)}' for n in notes)}</div>"


def _labels_notes(study: Study, relabels: list[dict]) -> str:
    """The unanchored-labels warning and the reviewers' relabelling, as HTML."""
    out = []
    if study.labels_anchored is False:
        anchor = html.escape(str(study.labels.get("anchor", "")))
        out.append(f"<div class='warn' id='labels-unanchored'>{UNANCHORED_WARNING}. Anchor: {anchor}.</div>")
    if relabels:
        last = relabels[-1]
        out.append(f"<div class='info' id='relabelled'>Level names shifted by {shift_text(last['shift'])} from the "
                   f"algorithm's by {html.escape(last['reviewer'])}, {last['at'][:16].replace('T', ' ')} UTC"
                   f"{': ' + html.escape(last['comment']) if last['comment'] else ''} (the algorithm's names are "
                   "given beside the shifted ones; result.json keeps the algorithm's).</div>")
    return "".join(out)


def _audit_table(audit: list[dict], relabels: list[dict], names: dict[int, str]) -> str:
    """The review audit trail and the relabellings, oldest first (times in UTC)."""
    if not audit and not relabels:
        return "<p>No reviews yet.</p>"
    head = ("<tr><th>when (UTC)</th><th>reviewer</th><th>vertebra</th><th>action</th><th>outcome</th>"
            "<th>old</th><th>new</th><th>comment</th></tr>")
    entries = [(a["at"], html.escape(a["reviewer"]), html.escape(names.get(a["label"], a["name"])), a["action"],
                a["outcome"], "-" if a["old_grade"] is None else a["old_grade"], a["new_grade"],
                html.escape(a["comment"])) for a in audit]
    entries += [(r["at"], html.escape(r["reviewer"]), "all (levels)", "relabel", "saved",
                 f"{r['previous_shift']:+d}", f"{r['shift']:+d}", html.escape(r["comment"])) for r in relabels]
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in (e[0][:19].replace("T", " "), *e[1:])) + "</tr>"
                   for e in sorted(entries, key=lambda e: e[0]))
    return f"<table class='audit' id='audit'>{head}{body}</table>"


def study_report_html(study: Study, rows: list[dict], images: StudyImages | None, max_maps: int = 4,
                      audit: list[dict] | None = None, relabels: list[dict] | None = None) -> str:
    """The report: mid-sagittal image with labels, the vertebra table, the height-loss maps of the
    vertebrae with the worst final grades (fractured ones first), and the review audit trail.

    Args:
        study: the study.
        rows: its :func:`~healthivert.review.tables.vertebra_rows` (names after any relabelling).
        images: its CT / mask (None or empty: no slice image).
        max_maps: at most this many maps, so the first page stays one A4 page.
        audit: the study's review audit entries (``AuditEntry.as_dict``), oldest first.
        relabels: the study's relabellings (``LabelShift.as_dict``), oldest first.
    """
    audit, relabels = audit or [], relabels or []
    names = {int(r["label"]): str(r["name"]) for r in rows}
    parts = []
    if images is not None and images.display is not None:
        grades = {int(r["label"]): r["final_grade"] for r in rows}
        plane = render_slice(images, "sagittal", default_slices(images)["sagittal"], "bone", grades=grades,
                             names=names, width_px=360)
        parts.append(_img(plane.png, f"{study.study_id} mid-sagittal with labels"))
    maps = _maps(study, rows, max_maps)
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
{_study_metadata(study)}
{_labels_notes(study, relabels)}
<div class="top">{''.join(parts)}<div>
<h2>Vertebrae</h2>{_table(rows)}
<div class="note">Genant grades: 0 normal, 1 mild (20-25 % height loss), 2 moderate (25-40 %), 3 severe (&gt; 40 %).
RHLV = (H<sub>pseudo-healthy</sub> − H<sub>original</sub>) / H<sub>pseudo-healthy</sub>; heights measured /
pseudo-healthy in mm. Algorithm grades are the software's; reviewed grades are the clinician's.
† pseudo-healthy body from the prior: the GAN's disagreed with the neighbours'.</div>
</div></div>
<h2>Height-loss maps</h2>
<div class="maps">{''.join(maps) or '<p>No height-loss maps.</p>'}</div>
<h2>Review audit trail</h2>
{_audit_table(audit, relabels, names)}
<div class="note">Every save attempt, append-only; <i>refused</i>: saved from a page that showed an older review
than the current one, not applied. Vertebrae are named as shown to the reviewer now.</div>
</body></html>
"""

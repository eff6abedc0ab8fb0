"""Text for a batch's progress line and summary (the CLI prints them; nothing here prints)."""

from __future__ import annotations

from healthivert.batch.runner import BatchProgress, BatchSummary

BAR_WIDTH = 24


def format_duration(seconds: float | None) -> str:
    """``1h02m``, ``4m05s``, ``12s``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def format_progress(p: BatchProgress) -> str:
    """One line: a bar, counts, throughput and ETA, and the study that just finished."""
    filled = int(BAR_WIDTH * p.finished / p.total) if p.total else BAR_WIDTH
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    ran = p.done + p.failed
    rate = f"{60 * ran / p.elapsed_s:.1f}/min" if ran and p.elapsed_s > 0 else "-/min"
    line = (f"batch [{bar}] {p.finished}/{p.total}  done {p.done}  skipped {p.skipped}  failed {p.failed}  "
            f"{rate}  elapsed {format_duration(p.elapsed_s)}  ETA {format_duration(p.eta_s if ran else None)}")
    if p.study_id:
        line += f"  ({p.study_id} {p.status})"
    return line


def format_summary(s: BatchSummary) -> str:
    """The closing lines: counts, where the tables are, and the failed studies."""
    lines = [f"{s.total} studies: {s.done} done, {s.skipped} skipped (done before), {s.failed} failed "
             f"in {format_duration(s.elapsed_s)}",
             f"results: {s.out / 'studies'}/<study_id>/, cohort table {s.out / 'cohort.csv'}, "
             f"log {s.out / 'batch.log'}"]
    if s.uncertain_labels:
        ids = s.uncertain_labels
        lines.append(f"labels uncertain ({len(ids)}: no sacrum or 12th rib found in view, they disagree or a "
                     f"vertebra may hold two; column labels_anchor): {', '.join(ids[:10])}"
                     + (" ..." if len(ids) > 10 else ""))
    if s.failed:
        lines.append(f"failed ({s.failed}, reasons in {s.out / 'failed.csv'}): {', '.join(s.failed_ids[:10])}"
                     + (" ..." if s.failed > 10 else ""))
    return "\n".join(lines)

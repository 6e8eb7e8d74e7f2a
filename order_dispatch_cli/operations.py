"""How the operators' commands show things to people: dead letters and timelines as tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from order_dispatch.contract import EventStatus
from order_dispatch.timeline import TimelineEntry
from order_dispatch_ops.actions import DeadLetter, JobTimeline

#: Longest error or detail shown in a table cell (``--json`` has them whole).
CELL_CHARS = 80


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]).rstrip()
        for r in [header, *rows]
    )


def when(at: datetime | None) -> str:
    """A time in UTC to the second, ``-`` for none."""
    return at.strftime("%Y-%m-%d %H:%M:%SZ") if at is not None else "-"


def cut(text: str | None, limit: int = CELL_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def dead_letters_table(dead: Sequence[DeadLetter]) -> str:
    """``dlq list`` for people."""
    rows = [
        [
            when(d.at),
            d.status,
            d.vendor,
            d.account,
            d.order_id,
            f"{d.run}/{d.attempt or '-'}",
            d.job_id,
            cut(d.error),
        ]
        for d in dead
    ]
    header = ["AT (UTC)", "STATUS", "VENDOR", "ACCOUNT", "ORDER", "RUN/ATT", "JOB", "ERROR"]
    return table(header, rows)


def _detail(entry: TimelineEntry) -> str:
    parts: list[str] = []
    if entry.detail:
        parts.append(entry.detail)
    if entry.error is not None:
        parts.append(f"{entry.error.kind.value}: {entry.error.message}")
    if entry.vendor_order_id:
        parts.append(f"vendor order {entry.vendor_order_id}")
    if entry.retry_in_s is not None:
        parts.append(f"next in {entry.retry_in_s:g} s")
    if entry.reconciled:
        parts.append("found by lookup")
    if entry.note:
        parts.append(f"note: {entry.note}")
    if not entry.recorded:
        parts.append("NOT RECORDED: its run had already ended or been replayed")
    return "; ".join(parts)


def _what(entry: TimelineEntry) -> str:
    if entry.action is None or entry.status in (EventStatus.REPLAYED, EventStatus.PURGED):
        return entry.action or entry.status.value
    return f"{entry.action}: {entry.status.value}"


def timeline_table(timeline: JobTimeline) -> str:
    """``timeline`` for people: one line per entry, the vendor's answer indented below it."""
    head = f"job {timeline.job_id}: run {timeline.run}, {timeline.state or 'no attempt yet'}"
    if not timeline.entries:
        return f"{head}\nno entries yet"
    rows: list[list[str]] = []
    for e in timeline.entries:
        by = f"operator {e.operator}" if e.action else (e.worker or "-")
        rows.append(
            [
                when(e.at),
                str(e.run),
                str(e.attempt),
                _what(e),
                by,
                e.request or "-",
                str(e.http_status or "-"),
                cut(_detail(e), 2 * CELL_CHARS),
            ]
        )
    header = ["AT (UTC)", "RUN", "ATT", "WHAT", "BY", "REQUEST", "HTTP", "DETAIL"]
    lines = table(header, rows).splitlines()
    out = [head, lines[0]]
    for line, e in zip(lines[1:], timeline.entries, strict=True):
        out.append(line)
        if e.response:
            out.append(f"    response: {cut(e.response, 2 * CELL_CHARS)}")
    return "\n".join(out)

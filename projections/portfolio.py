"""The morning page: one self-contained HTML page for a head of unit, as known at an instant.

Four sections, each with a chart and the table behind it, every figure from the stored read
models (``projections.store``) through the same calls as the portfolio queries:
- the backlog: open referrals per unit by age band (``backlog``; as ``refledger backlog``);
- the running gaps: referrals open with no owner, as bars on a time axis (``audit gaps``);
- everything overdue, by rule and by unit (``audit overdue``);
- late entries awaiting attestation (``audit late-entries``).
Charts are inline SVG drawn here; the page has no scripts, fonts or links.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from markupsafe import Markup, escape

from ledger.values import days, iso
from projections.backlog import AGE_BUCKETS, OBLIGATION_RULES, UNOWNED, BacklogRow, backlog
from projections.late_entries import LateEntry
from projections.store import GapRow, ListedReferral, OverdueRow, ReadModels

__all__ = ["MorningPage", "morning_page", "morning_summary", "render_morning"]

#: one colour per age band, young to old (light to dark)
AGE_COLOURS: Final = ("#9ecae1", "#6baed6", "#3182bd", "#08519c", "#08306b")
_WIDTH: Final = 960
_LEFT: Final = 190
_RIGHT: Final = 930
_ROW: Final = 24
_CHAR: Final = 6.4
#: bars drawn at most per chart (the longest); the table under it lists every row
CHART_ROWS: Final = 30


@dataclass(frozen=True)
class MorningPage:
    at: datetime
    generated_at: datetime
    policy: str
    backlog: list[BacklogRow]
    open_referrals: list[ListedReferral]
    running_gaps: list[GapRow]
    overdue: list[OverdueRow]
    awaiting_attestation: list[LateEntry]

    @property
    def overdue_by_rule(self) -> dict[str, int]:
        counts = Counter(row.rule for row in self.overdue)
        return {rule: counts[rule] for rule in OBLIGATION_RULES if counts[rule]}

    @property
    def overdue_by_unit(self) -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = {}
        for row in self.overdue:
            unit = row.owner_unit or f"{UNOWNED} (held by {row.custodian_unit or '?'})"
            found.setdefault(unit, {}).setdefault(row.rule, 0)
            found[unit][row.rule] += 1
        return dict(sorted(found.items()))


def morning_page(models: ReadModels, at: datetime, generated_at: datetime) -> MorningPage:
    """Everything on the page, as known at ``at`` (only events recorded by then count)."""
    listed = models.referrals(at)
    late = [entry for entry in models.late_entries() if entry.needs_attestation and entry.recorded_at <= at]
    return MorningPage(
        at=at,
        generated_at=generated_at,
        policy=models.policy.version,
        backlog=backlog(models.backlog(at), at),
        open_referrals=sorted((row for row in listed if row.status == "open"), key=lambda row: (-row.age_days, row.referral)),
        running_gaps=[gap for gap in models.gaps(now=at, as_known_at=at) if gap.end is None or gap.end > at],
        overdue=models.overdue(at),
        awaiting_attestation=late,
    )


def morning_summary(page: MorningPage) -> dict[str, Any]:
    """The headline numbers (what the command prints, and what the tests compare)."""
    return {
        "at": iso(page.at),
        "policy": page.policy,
        "open_referrals": len(page.open_referrals),
        "unowned": sum(1 for row in page.open_referrals if row.owner_unit is None),
        "running_gaps": len(page.running_gaps),
        "overdue": len(page.overdue),
        "overdue_by_rule": page.overdue_by_rule,
        "awaiting_attestation": len(page.awaiting_attestation),
    }


# --- charts (inline SVG) --------------------------------------------------------------------------


def _text(x: float, y: float, text: str, anchor: str = "start", css: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{css}">{escape(text)}</text>'


def _svg(height: float, body: list[str], label: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {height:.0f}" width="100%" role="img" aria-label="{escape(label)}">'
        + "".join(body)
        + "</svg>"
    )


def _empty(label: str, message: str) -> Markup:
    return _svg(40, [_text(_LEFT, 25, message, css="none")], label)


def _unit_label(row: BacklogRow) -> str:
    return row.owner_unit if row.custodian_unit is None else f"unowned, held by {row.custodian_unit}"


def backlog_chart(rows: Sequence[BacklogRow]) -> Markup:
    """One stacked bar per unit: its open referrals by age band."""
    label = "Open referrals per unit by age band"
    if not rows:
        return _empty(label, "No open referrals.")
    most = max(row.open_referrals for row in rows) or 1
    scale = (_RIGHT - _LEFT - 40) / most
    body = []
    for number, (name, _low, _high) in enumerate(AGE_BUCKETS):
        key_x = _LEFT + number * 120
        body.append(f'<rect x="{key_x}" y="4" width="12" height="12" fill="{AGE_COLOURS[number]}"/>')
        body.append(_text(key_x + 17, 14, name.replace("d", " days").replace(" days+", "+ days")))
    for index, row in enumerate(rows):
        y = 30 + index * _ROW
        body.append(_text(_LEFT - 8, y + 15, _unit_label(row), "end", "unit"))
        x = float(_LEFT)
        for number, (name, _low, _high) in enumerate(AGE_BUCKETS):
            count = row.age.get(name, 0)
            if not count:
                continue
            width = count * scale
            body.append(
                f'<rect x="{x:.1f}" y="{y + 2}" width="{width:.1f}" height="{_ROW - 6}" fill="{AGE_COLOURS[number]}">'
                f"<title>{escape(_unit_label(row))}: {count} aged {name}</title></rect>"
            )
            if width >= 16:
                body.append(_text(x + width / 2, y + 16, str(count), "middle", "in"))
            x += width
        body.append(_text(x + 6, y + 16, str(row.open_referrals), css="total"))
    return _svg(36 + len(rows) * _ROW, body, label)


def _ticks(start: datetime, end: datetime) -> list[datetime]:
    span = (end - start).days
    step = 1 if span <= 14 else 7 if span <= 90 else 30 if span <= 730 else 365
    tick = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    found = []
    while tick < end:
        found.append(tick)
        tick += timedelta(days=step)
    return found[:: -(-len(found) // 7) or 1]  # at most 7 dates: each label needs about 80 px


def gaps_chart(gaps: Sequence[GapRow], at: datetime) -> Markup:
    """One bar per running gap, from when the referral lost (or never had) an owner to ``at``."""
    label = "Running gaps in ownership on a time axis"
    if not gaps:
        return _empty(label, "No referral is without an owner.")
    shown = sorted(gaps, key=lambda gap: (gap.start, gap.referral))[:CHART_ROWS]
    start = min(gap.start for gap in shown)
    total = max((at - start).total_seconds(), 1.0)

    def x(instant: datetime) -> float:
        return _LEFT + (instant - start).total_seconds() / total * (_RIGHT - _LEFT - 70)

    height = 30 + len(shown) * _ROW
    body = (
        []
        if len(shown) == len(gaps)
        else [_text(_LEFT, height + 12, f"The {len(shown)} longest of {len(gaps)} running gaps; the table lists them all.", css="tick")]
    )
    for tick in _ticks(start, at):
        body.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="4" y2="{height - 20}" class="grid"/>')
        body.append(_text(x(tick), height - 6, tick.strftime("%d %b %Y"), "middle", "tick"))
    body.append(f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="0" y2="{height - 20}" class="now"/>')
    for index, gap in enumerate(shown):
        y = 6 + index * _ROW
        body.append(_text(_LEFT - 8, y + 15, gap.referral, "end", "unit"))
        x1, x2 = x(gap.start), x(at)
        body.append(
            f'<rect x="{x1:.1f}" y="{y + 2}" width="{max(x2 - x1, 2):.1f}" height="{_ROW - 6}" class="gap">'
            f"<title>{escape(gap.referral)}: unowned since {iso(gap.start)}</title></rect>"
        )
        body.append(_text(x2 + 6, y + 16, f"{days(at - gap.start):.1f} days", css="total"))
    return _svg(height + (0 if len(shown) == len(gaps) else 18), body, label)


def _bars(label: str, counts: dict[str, int], css: str, empty: str) -> Markup:
    if not counts:
        return _empty(label, empty)
    most = max(counts.values()) or 1
    scale = (_RIGHT - _LEFT - 50) / most
    body = []
    for index, (name, count) in enumerate(counts.items()):
        y = 4 + index * _ROW
        body.append(_text(_LEFT - 8, y + 15, name, "end", "unit"))
        body.append(
            f'<rect x="{_LEFT}" y="{y + 2}" width="{max(count * scale, 2):.1f}" height="{_ROW - 6}" class="{css}"><title>{escape(name)}: {count}</title></rect>'
        )
        body.append(_text(_LEFT + count * scale + 6, y + 16, str(count), css="total"))
    return _svg(10 + len(counts) * _ROW, body, label)


def overdue_chart(page: MorningPage) -> Markup:
    return _bars("Open and overdue obligations by rule", page.overdue_by_rule, "overdue", "Nothing is overdue.")


def late_chart(entries: Sequence[LateEntry]) -> Markup:
    """Late entries awaiting attestation: how late each was entered, in days."""
    label = "Late entries awaiting attestation: days between the event and its entry"
    if not entries:
        return _empty(label, "No late entry awaits attestation.")
    every = len(entries)
    entries = sorted(entries, key=lambda entry: entry.occurred_at - entry.recorded_at)[:CHART_ROWS]
    counts = {f"{entry.referral}{'/' + entry.subject if entry.subject else ''} v{entry.version}": 0 for entry in entries}
    most = max(days(entry.lag) for entry in entries) or 1
    scale = (_RIGHT - _LEFT - 80) / most
    body = []
    for index, (name, entry) in enumerate(zip(counts, entries, strict=True)):
        y = 4 + index * _ROW
        lag = days(entry.lag)
        body.append(_text(_LEFT - 8, y + 15, name, "end", "unit"))
        body.append(
            f'<rect x="{_LEFT}" y="{y + 2}" width="{max(lag * scale, 2):.1f}" height="{_ROW - 6}" class="late"><title>{escape(name)}: {lag:.2f} days late</title></rect>'
        )
        body.append(_text(_LEFT + lag * scale + 6, y + 16, f"{lag:.1f} days", css="total"))
    if every > len(entries):
        body.append(
            _text(
                _LEFT,
                22 + len(entries) * _ROW,
                f"The {len(entries)} most delayed of {every} entries; the table lists them all.",
                css="tick",
            )
        )
    return _svg(10 + len(entries) * _ROW + (18 if every > len(entries) else 0), body, label)


def render_morning(page: MorningPage) -> str:
    from projections.report import _environment  # one Jinja environment and its filters

    return (
        _environment()
        .get_template("morning.html.j2")
        .render(
            page=page,
            summary=morning_summary(page),
            age_buckets=[name for name, _low, _high in AGE_BUCKETS],
            charts={
                "backlog": backlog_chart(page.backlog),
                "gaps": gaps_chart(page.running_gaps, page.at),
                "overdue": overdue_chart(page),
                "late": late_chart(page.awaiting_attestation),
            },
        )
    )

"""The investigator's case file: one referral as at an instant, in one self-contained document.

Investigators and panels read; they do not run queries. ``case_file`` gathers everything an
inquiry asks of one referral into a plain data model, from the same folds the CLI answers
with (nothing here decides a rule):

- who owned and who held it, gaps and disputed claims: ``projections.ownership``;
- what the policy asked and whether it was done: ``projections.obligations``;
- late entries: ``projections.late_entries``; every event with both clocks:
  ``projections.timeline``; where each subject is: ``projections.subjects``;
- whether the ledger verified, and against which checkpoint: ``ledger.verification`` (the caller
  runs the verification, which reads the database, and hands the result in).

One knowledge basis for the whole document: the events recorded by ``as_known_at`` (all of
them when None), judged at ``at``. So the summary equals ``owner --at T --as-known-at K``,
``history --at T --as-known-at K`` and, for obligations, ``obligations --at T --as-known-now``
(with K None) or ``obligations --at T`` (with K = T).

``render_html`` and ``render_markdown`` turn the model into text through Jinja2 templates
(``projections/templates``). The HTML is one file with inline CSS and an inline SVG chart:
it makes no request of any kind, so it opens offline and can be attached to an inquiry
file. ``print_to_pdf`` prints it with headless Chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import jinja2
from markupsafe import Markup, escape

from ledger.canonical import event_hash
from ledger.checkpointing import StoredCheckpoint
from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.knowledge import known
from ledger.policy import DEFAULT_POLICY, RULE_IDS, Policy
from ledger.referral import LedgerEvent, Referral, business_order
from ledger.values import days, iso
from ledger.verification import Verification
from projections.accountable import AccountableSpan, Directory, accountable_spans
from projections.findings import ReviewFinding, review_findings
from projections.late_entries import LateEntry, late_entries
from projections.obligations import BREACHED, DISCHARGED, MET, OVERDUE, PENDING, STATUSES, Obligation, obligations_at
from projections.ownership import Gap, OwnerAnswer, OwnershipHistory, event_ref, owner_at, ownership_history, words
from projections.subjects import SubjectPosition, subject_positions
from projections.timeline import TimelineRow, timeline

__all__ = [
    "HTML",
    "MARKDOWN",
    "Bar",
    "CaseFile",
    "Chart",
    "ChromiumMissing",
    "IntegrityStatement",
    "RuleTally",
    "case_file",
    "case_file_summary",
    "find_chromium",
    "integrity_statement",
    "ownership_chart",
    "print_to_pdf",
    "render",
    "render_html",
    "render_markdown",
    "screenshot",
]

HTML: Final = "html"
MARKDOWN: Final = "md"
FORMATS: Final = (HTML, MARKDOWN)

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"

_ZERO: Final = timedelta(0)


# --- integrity ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointStatement:
    """The checkpoint the ledger was checked against, as a reader needs it."""

    #: "file" (a checkpoint the auditor kept, given on the command line) or "database"
    source: str
    size: int
    root: str
    time: str
    signed: bool
    #: valid · not-pinned (holds for the key it names) · unsigned · invalid · wrong-key
    signature: str
    public_key: str | None
    #: the ledger still extends it: nothing it covers was altered, removed or reordered
    holds: bool


@dataclass(frozen=True)
class IntegrityStatement:
    """Whether the ledger verified when the report was made, and against what."""

    checked: bool
    sound: bool | None
    events: int | None
    streams: int | None
    root: str | None
    findings_total: int
    first_problem: str | None
    checkpoint: CheckpointStatement | None
    stored_checked: int
    stored_matching: int
    notes: tuple[str, ...]
    #: hash of the referral's newest event: pins which record this report was made from
    referral_head: str
    referral_events: int


def integrity_statement(
    verification: Verification | None,
    latest: StoredCheckpoint | None,
    referral_events: Sequence[LedgerEvent],
    public_key: bytes | None = None,
) -> IntegrityStatement:
    """What the report says about integrity.

    ``verification`` is ``ledger.verification.verify_ledger``'s result (None: not checked). The
    checkpoint named is the file the verification was given, else the newest one stored in
    the database (``latest``).
    """
    newest = max(referral_events, key=lambda event: event.originator_version)
    head = event_hash(newest)
    if verification is None:
        return IntegrityStatement(False, None, None, None, None, 0, None, None, 0, 0, (), head, len(referral_events))
    checkpoint: CheckpointStatement | None = None
    if verification.checkpoint is not None:
        found = verification.checkpoint
        point = found.checkpoint
        checkpoint = CheckpointStatement(
            "file", point.size, point.root, point.time, point.signature is not None, found.signature, point.public_key, found.extends
        )
    elif latest is not None:
        point = latest.checkpoint
        # the stored checkpoints are checked together; a sound verification means every one held
        holds = verification.sound or verification.stored_matching == verification.stored_checked
        checkpoint = CheckpointStatement(
            "database",
            point.size,
            point.root,
            point.time,
            point.signature is not None,
            point.signature_status(public_key),
            point.public_key,
            holds,
        )
    first = verification.first_bad
    return IntegrityStatement(
        checked=True,
        sound=verification.sound,
        events=verification.events,
        streams=verification.streams,
        root=verification.root,
        findings_total=verification.findings_total,
        first_problem=first.describe() if first is not None else None,
        checkpoint=checkpoint,
        stored_checked=verification.stored_checked,
        stored_matching=verification.stored_matching,
        notes=verification.notes,
        referral_head=head,
        referral_events=len(referral_events),
    )


# --- the case file ------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleTally:
    """One rule's obligations by status, and the worst lateness among them."""

    rule: str
    met: int
    #: stopped by closure, rejection or withdrawal before its due instant (not done, not late)
    discharged: int
    breached: int
    overdue: int
    pending: int
    worst_days_late: float | None

    @property
    def failures(self) -> int:
        return self.breached + self.overdue


@dataclass(frozen=True)
class Receipt:
    """What arrived, from whom, and how it was assessed (as at the report's instant)."""

    originator: str
    channel: str
    originator_reference: str | None
    claimed_subject_count: int | None
    grading: dict[str, str] | None
    handling_conditions: tuple[str, ...]
    package_hash: str | None
    immediate_risk: bool
    risk_band: str | None
    assessed_at: datetime | None


@dataclass(frozen=True)
class Span:
    """A row of the ownership table: an owner's interval, a gap, or a custodian's interval."""

    kind: str  # owner · gap · custody
    unit: str | None
    person: str | None
    start: datetime
    end: datetime | None
    days: float
    began_with: str | None
    ended_by: str | None


@dataclass(frozen=True)
class CaseFile:
    """Everything the case file shows, computed; the templates only lay it out."""

    reference: str
    at: datetime
    as_known_at: datetime | None
    generated_at: datetime
    policy: str
    receipt: Receipt
    owner: OwnerAnswer
    history: OwnershipHistory
    spans: tuple[Span, ...]
    obligations: tuple[Obligation, ...]
    tallies: tuple[RuleTally, ...]
    late: tuple[LateEntry, ...]
    timeline: tuple[TimelineRow, ...]
    subjects: tuple[SubjectPosition, ...]
    integrity: IntegrityStatement | None
    chart: Chart
    #: events of the referral and its subjects the report was made from (as known at K)
    events: int
    open_days: float
    owned_days: float
    unowned_days: float
    longest_gap: Gap | None
    findings: tuple[str, ...] = ()
    #: reviews that confirmed an owner the events do not show at their instant
    review_findings: tuple[ReviewFinding, ...] = ()
    #: "Accountable people" (empty when no staff directory was given)
    accountable: tuple[AccountableSpan, ...] = ()

    @property
    def status_counts(self) -> dict[str, int]:
        return {status: sum(1 for o in self.obligations if o.status == status) for status in STATUSES}

    @property
    def failed_tallies(self) -> tuple[RuleTally, ...]:
        return tuple(tally for tally in self.tallies if tally.failures)

    @property
    def needing_attestation(self) -> int:
        return sum(1 for entry in self.late if entry.needs_attestation)

    @property
    def knowledge(self) -> str:
        return "as known now" if self.as_known_at is None else f"as known at {iso(self.as_known_at)}"


def case_file(
    referral_events: Sequence[LedgerEvent],
    subject_events: Mapping[str, Sequence[LedgerEvent]],
    *,
    at: datetime,
    as_known_at: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
    integrity: IntegrityStatement | None = None,
    generated_at: datetime | None = None,
    directory: Directory | None = None,
) -> CaseFile:
    """The case file of one referral at ``at``, from the events recorded by ``as_known_at``."""
    if not referral_events:
        raise NotFound("no events: the referral is not in the ledger")
    history = ownership_history(referral_events, as_known_at=as_known_at, until=at)
    owner = owner_at(referral_events, at, as_known_at)
    # the record as it stood at K (amendments included: the folds apply them, late entries list them)
    recorded = known(referral_events, as_known_at, recorded_only=True)
    recorded_subjects = {subject: known(events, as_known_at, recorded_only=True) for subject, events in subject_events.items()}
    # as known at K (or now), judged at T: the obligations see exactly the events the rest sees
    obligations = obligations_at(recorded, recorded_subjects, at, policy=policy, as_known_now=True)
    late = [entry for entry in late_entries(recorded, recorded_subjects, policy=policy) if entry.occurred_at <= at]
    rows = [
        row
        for row in timeline(
            referral_events,
            subject_events,
            as_known_at=as_known_at,
            late_after=policy.late_entry_threshold(),
            attestation_after=policy.attestation_threshold(),
        )
        if row.occurred_at <= at
    ]
    subjects = subject_positions(referral_events, subject_events, at, as_known_at) if subject_events else []
    in_force = [event for event in business_order(known(recorded)) if event.occurred_at <= at]
    longest = max(history.gaps, key=lambda gap: gap.duration(at), default=None)
    accountable = () if directory is None else tuple(accountable_spans(directory, referral_events, obligations, at, policy))
    case = CaseFile(
        reference=history.reference,
        at=at,
        as_known_at=as_known_at,
        generated_at=generated_at or datetime.now(UTC),
        policy=policy.version,
        receipt=_receipt(in_force),
        owner=owner,
        history=history,
        spans=tuple(_spans(history, in_force, at)),
        obligations=tuple(obligations),
        tallies=tuple(_tallies(obligations)),
        late=tuple(late),
        timeline=tuple(rows),
        subjects=tuple(subjects),
        integrity=integrity,
        chart=ownership_chart(history, in_force, rows, obligations, at=at, as_known_at=as_known_at, accountable=accountable),
        events=len(recorded) + sum(len(events) for events in recorded_subjects.values()),
        open_days=days(history.open_time(at)),
        owned_days=days(history.owned_time(at)),
        unowned_days=days(history.unowned_time(at)),
        longest_gap=longest,
        review_findings=tuple(f for f in review_findings(referral_events, as_known_at) if f.occurred_at <= at),
        accountable=accountable,
    )
    return _with_findings(case)


def _receipt(events: Sequence[LedgerEvent]) -> Receipt:
    received = events[0]
    if not isinstance(received, Referral.Received):
        raise InvalidInput("these events are not a referral's: the first is not a receipt")
    assessed = [event for event in events if isinstance(event, Referral.Assessed)]
    latest = assessed[-1] if assessed else None
    return Receipt(
        originator=received.originator,
        channel=received.channel,
        originator_reference=received.originator_reference,
        claimed_subject_count=received.claimed_subject_count,
        grading=received.grading,
        handling_conditions=tuple(received.handling_conditions),
        package_hash=received.package_hash,
        immediate_risk=received.immediate_risk or any(event.immediate_risk for event in assessed),
        risk_band=latest.risk_band if latest is not None else None,
        assessed_at=latest.occurred_at if latest is not None else None,
    )


def _label(ref: dict[str, Any] | None) -> str | None:
    if ref is None:
        return None
    line = f", line {ref['line']}" if ref.get("line") is not None else ""
    return f"v{ref['version']} {words(ref['type'])}{line}"


def _spans(history: OwnershipHistory, events: Sequence[LedgerEvent], at: datetime) -> Iterable[Span]:
    """Owners and gaps in time order, then custodians: the rows of ``history``, measured to ``at``."""
    by_version = {event.originator_version: event for event in events}

    def ref(version: int | None) -> str | None:
        return _label(event_ref(None if version is None else by_version.get(version)))

    owned: list[Span] = [
        Span("owner", i.unit, i.person, i.start, i.end, days(i.duration(at)), ref(i.opened_by), ref(i.closed_by)) for i in history.ownership
    ]
    owned += [Span("gap", None, None, g.start, g.end, days(g.duration(at)), ref(g.opened_by), ref(g.closed_by)) for g in history.gaps]
    owned.sort(key=lambda span: span.start)
    yield from owned
    for interval in history.custody:
        yield Span(
            "custody",
            interval.unit,
            None,
            interval.start,
            interval.end,
            days(interval.duration(at)),
            ref(interval.opened_by),
            ref(interval.closed_by),
        )


def _tallies(obligations: Sequence[Obligation]) -> Iterable[RuleTally]:
    for rule in RULE_IDS:
        mine = [o for o in obligations if o.rule == rule]
        if not mine:
            continue
        lateness = [o.days_late for o in mine if o.days_late is not None and o.status in (BREACHED, OVERDUE)]
        yield RuleTally(
            rule=rule,
            met=sum(1 for o in mine if o.status == MET),
            discharged=sum(1 for o in mine if o.status == DISCHARGED),
            breached=sum(1 for o in mine if o.status == BREACHED),
            overdue=sum(1 for o in mine if o.status == OVERDUE),
            pending=sum(1 for o in mine if o.status == PENDING),
            worst_days_late=max(lateness, default=None),
        )


#: up to this many disputed claims are spelled out one by one among the findings
_CLAIMS_SPELLED_OUT: Final = 2


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _with_findings(case: CaseFile) -> CaseFile:
    """The summary in sentences, built from the numbers the document shows."""
    found: list[str] = []
    gaps = case.history.gaps
    if gaps and case.longest_gap is not None:
        longest = case.longest_gap
        until = iso(longest.end) if longest.end is not None else f"{iso(case.at)} (still running)"
        found.append(
            f"Nobody owned {case.reference} for {case.unowned_days:.2f} days in {_plural(len(gaps), 'gap', 'gaps')}; "
            f"the longest ran {days(longest.duration(case.at)):.2f} days, from {iso(longest.start)} to {until}."
        )
    else:
        found.append(f"{case.reference} had an owner for the whole time it was open.")
    counts = case.status_counts
    if counts[BREACHED] or counts[OVERDUE]:
        rules = ", ".join(tally.rule for tally in case.failed_tallies)
        found.append(
            f"{_plural(counts[BREACHED], 'obligation was', 'obligations were')} met late and "
            f"{_plural(counts[OVERDUE], 'was', 'were')} still open and overdue at {iso(case.at)} ({rules})."
        )
    elif counts[DISCHARGED]:
        found.append(f"No obligation due by {iso(case.at)} was late, but not every one was met.")
    else:
        found.append(f"Every obligation due by {iso(case.at)} was met on time.")
    if counts[DISCHARGED]:
        discharged = sorted({o.rule for o in case.obligations if o.status == DISCHARGED}, key=RULE_IDS.index)
        found.append(
            f"{_plural(counts[DISCHARGED], 'obligation was', 'obligations were')} discharged without being done "
            f"(ended by a closure, rejection or withdrawal before its due instant): {', '.join(discharged)}."
        )
    if case.late:
        found.append(
            f"{_plural(len(case.late), 'entry was', 'entries were')} recorded late; "
            f"{_plural(case.needing_attestation, 'needs', 'need')} a supervisor's attestation."
        )
    found += [finding.sentence() for finding in case.review_findings]
    claims = case.history.disputed_claims
    if len(claims) > _CLAIMS_SPELLED_OUT:
        found.append(f"{len(claims)} notes claim what the events do not show (see Disputed claims).")
    else:
        found += [
            f"A note of {iso(claim.occurred_at)} claims {words(str(claim.claim.get('type')))} by {claim.claim.get('unit')}; "
            "the events do not show it."
            for claim in claims
        ]
    integrity = case.integrity
    if integrity is not None and integrity.checked:
        if integrity.sound:
            point = integrity.checkpoint
            against = (
                f" and still extends the checkpoint of {point.size} events of {point.time}" if point is not None and point.holds else ""
            )
            found.append(f"The ledger verified ({integrity.events} events){against}.")
        else:
            found.append(f"The ledger did NOT verify: {integrity.first_problem}.")
    return replace(case, findings=tuple(found))


# --- the JSON summary -------------------------------------------------------------------------


def _time(instant: datetime | None) -> str | None:
    return None if instant is None else iso(instant)


def case_file_summary(case: CaseFile) -> dict[str, Any]:
    """The numbers of the summary, JSON-ready (``report --json`` prints them)."""
    owner = case.owner.owner
    integrity = case.integrity
    verification: dict[str, Any] | None = None
    if integrity is not None:
        point = integrity.checkpoint
        verification = {
            "checked": integrity.checked,
            "ok": integrity.sound,
            "events": integrity.events,
            "root": integrity.root,
            "findings_total": integrity.findings_total,
            "first_problem": integrity.first_problem,
            "checkpoint": None
            if point is None
            else {
                "source": point.source,
                "size": point.size,
                "root": point.root,
                "time": point.time,
                "signed": point.signed,
                "signature_status": point.signature,
                "holds": point.holds,
            },
            "referral_head": integrity.referral_head,
        }
    return {
        "referral": case.reference,
        "at": iso(case.at),
        "as_known_at": _time(case.as_known_at),
        "policy": case.policy,
        "status": case.history.status,
        "owner": None if owner is None else {"unit": owner.unit, "person": owner.person, "since": iso(owner.start)},
        "custodian": {"unit": case.owner.custodian.unit, "since": iso(case.owner.custodian.start)},
        "open_days": case.open_days,
        "owned_days": case.owned_days,
        "unowned_days": case.unowned_days,
        "gaps": len(case.history.gaps),
        "longest_gap_days": None if case.longest_gap is None else days(case.longest_gap.duration(case.at)),
        "obligations": case.status_counts,
        "breaches_by_rule": {t.rule: {"breached": t.breached, "open-overdue": t.overdue} for t in case.failed_tallies},
        "late_entries": len(case.late),
        "needing_attestation": case.needing_attestation,
        "disputed_claims": len(case.history.disputed_claims),
        "events": case.events,
        "subjects": len(case.subjects),
        "verification": verification,
    }


# --- the ownership and custody chart ----------------------------------------------------------

#: the SVG's coordinate system (it scales to the page width)
CHART_WIDTH: Final = 1000
PLOT_LEFT: Final = 112
PLOT_RIGHT: Final = 984
_LANE_HEIGHT: Final = 26
_MARKER_ROW: Final = 16
_LAG_ROW: Final = 13
_OVERDUE_ROW: Final = 17
_MAX_MARKER_ROWS: Final = 4
_MAX_LAG_ROWS: Final = 6
_MAX_OVERDUE_ROWS: Final = 8
#: an approximate advance per character of the chart's 10.5 px labels
_CHAR: Final = 6.1
#: units take these colours in the order they first hold the referral (owner and custodian alike)
PALETTE: Final = ("#3565a8", "#4f8a3a", "#7d4f9c", "#a86b1f", "#2a8580", "#a33f63", "#5d5fa6", "#74752f")
#: when the report's instant lies far beyond the last event, the chart stops this far after it
_TAIL_SHARE: Final = 0.12
_MIN_TAIL: Final = timedelta(days=14)
_LEAD_SHARE: Final = 0.012
#: room kept free of tick labels at the right edge for "continues to …"
_CONTINUES_ROOM: Final = 150


@dataclass(frozen=True)
class Bar:
    """A bar of the owner or custodian lane: an owner's interval, a gap, a custodian's interval."""

    kind: str  # owner · gap · custody
    unit: str | None
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str
    title: str
    #: still running at the report's instant and beyond the chart's right edge
    continues: bool


@dataclass(frozen=True)
class Marker:
    """An event on the events lane (or a disputed claim on the owner lane)."""

    kind: str
    x: float
    y: float
    title: str
    version: int


@dataclass(frozen=True)
class Lag:
    """A late entry: from when it happened to when it was recorded."""

    x1: float
    x2: float
    y: float
    attest: bool
    label: str
    label_x: float
    title: str


@dataclass(frozen=True)
class OverdueSpan:
    """An obligation of the referral past its due: until it was met, or to the report's instant."""

    x: float
    y: float
    width: float
    still_open: bool
    label: str
    label_x: float
    #: the label sits inside the span (it is wide enough)
    label_inside: bool
    title: str


@dataclass(frozen=True)
class PersonBar:
    """On the accountable lane: a person in an accountable role while their unit owned (or, in a
    gap, held) the referral."""

    #: owner · gap (the span the person answered for)
    kind: str
    person: str
    x: float
    y: float
    width: float
    label: str
    label_x: float
    label_inside: bool
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Lane:
    name: str
    y: float
    height: float
    empty: str = ""


@dataclass(frozen=True)
class Instant:
    """A vertical line: the report's instant, or the as-known-at instant."""

    x: float
    label: str
    kind: str


@dataclass(frozen=True)
class Chart:
    """The chart's geometry; the template draws it as SVG."""

    width: int
    height: float
    left: float
    right: float
    start: datetime
    end: datetime
    #: the report's instant lies beyond the right edge (the chart stops after the last event)
    clipped: bool
    ticks: tuple[Tick, ...]
    lanes: tuple[Lane, ...]
    bars: tuple[Bar, ...]
    markers: tuple[Marker, ...]
    claims: tuple[Marker, ...]
    lags: tuple[Lag, ...]
    overdue: tuple[OverdueSpan, ...]
    instants: tuple[Instant, ...]
    #: overdue obligations left off the chart for room (the obligations table lists them all)
    overdue_hidden: int
    #: late entries left off the chart for room (the timeline flags them all)
    lags_hidden: int
    units: tuple[tuple[str, str], ...] = field(default=())
    #: the accountable people beside the units (empty without a staff directory)
    people: tuple[PersonBar, ...] = field(default=())
    #: accountable people left off the chart for room (the "Accountable people" table lists them all)
    people_hidden: int = 0

    def bars_of(self, kind: str) -> tuple[Bar, ...]:
        return tuple(bar for bar in self.bars if bar.kind == kind)

    @property
    def shown(self) -> frozenset[str]:
        """What the chart draws, by legend key: marker kinds, ``gap``, ``claim``, ``lag``,
        ``overdue-met``, ``overdue-open``, ``person`` (the legend lists only these)."""
        kinds = {"closure" if m.kind == "reopening" else m.kind for m in self.markers}
        kinds |= {"gap"} if self.bars_of("gap") else set()
        kinds |= {"claim"} if self.claims else set()
        kinds |= {"lag"} if self.lags else set()
        kinds |= {"overdue-open" if o.still_open else "overdue-met" for o in self.overdue}
        kinds |= {"person"} if self.people else set()
        return frozenset(kinds)


class _Scale:
    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start
        self.end = end
        self.seconds = max((end - start).total_seconds(), 1.0)

    def x(self, instant: datetime) -> float:
        share = (instant - self.start).total_seconds() / self.seconds
        return round(PLOT_LEFT + min(max(share, 0.0), 1.0) * (PLOT_RIGHT - PLOT_LEFT), 2)


def _chart_end(start: datetime, last: datetime, at: datetime, closed_at: datetime | None) -> tuple[datetime, bool]:
    """Where the time axis stops: at the report's instant, unless that lies far beyond the story.

    A case file asked for today about a referral last touched years ago would otherwise spend
    most of its width on years where nothing changed, and squeeze the gap it exists to show.
    """
    story_end = closed_at if closed_at is not None else last
    tail = max((story_end - start) * _TAIL_SHARE, _MIN_TAIL)
    if at - story_end <= tail * 2:
        return max(at, start + timedelta(days=1)), False
    stop = story_end + tail
    return datetime(stop.year, stop.month, stop.day, tzinfo=UTC) + timedelta(days=1), True


_EVENT_MARKERS: Final[dict[type[LedgerEvent], str]] = {
    Referral.OwnershipOffered: "offer",
    Referral.OwnershipDeclined: "decline",
    Referral.OfferWithdrawn: "withdrawal",
    Referral.EscalationRaised: "escalation",
    Referral.DecisionRecorded: "decision",
    Referral.ReviewRecorded: "review",
    Referral.ExternalRequestReceived: "request",
    Referral.ExternalReplySent: "reply",
    Referral.Closed: "closure",
    Referral.Reopened: "reopening",
}

#: marker kinds in legend order, with what they mean
MARKER_KINDS: Final = (
    ("offer", "offer of ownership"),
    ("decline", "offer declined"),
    ("withdrawal", "offer withdrawn"),
    ("escalation", "escalation"),
    ("decision", "decision"),
    ("defer", "decision DEFER"),
    ("review", "supervisory review"),
    ("request", "external request"),
    ("reply", "external reply"),
    ("closure", "closed / reopened"),
)


def _stack(extents: Sequence[tuple[float, float]], max_rows: int, gap: float = 4.0, *, share: bool = True) -> list[int]:
    """A row for each (left, right) extent so that extents in a row do not overlap.

    Out of rows, an extent shares the row that frees up first (``share``), or gets row
    ``max_rows``, which the caller leaves off the chart.
    """
    ends: list[float] = []
    rows: list[int] = []
    for left, right in extents:
        for row, end in enumerate(ends):
            if end + gap <= left:
                ends[row] = right
                rows.append(row)
                break
        else:
            if len(ends) < max_rows:
                ends.append(right)
                rows.append(len(ends) - 1)
            elif not share:
                rows.append(max_rows)
            else:  # out of room: share the row that frees up first
                row = min(range(len(ends)), key=lambda r: ends[r])
                ends[row] = max(ends[row], right)
                rows.append(row)
    return rows


def _ticks(start: datetime, end: datetime, scale: _Scale) -> tuple[Tick, ...]:
    """Calendar ticks: days, weeks, months, quarters or years, whichever gives at most 10."""
    span = end - start
    for step_days in (1, 2, 7, 14):
        if span / timedelta(days=step_days) <= 10:
            first = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=1)
            instants = []
            instant = first
            while instant <= end:
                instants.append(instant)
                instant += timedelta(days=step_days)
            return tuple(Tick(scale.x(i), i.strftime("%d %b %Y") if step_days >= 7 else i.strftime("%d %b")) for i in instants)
    for months in (1, 2, 3, 6, 12, 24, 60, 120):
        if span.days / (30.44 * months) <= 10:
            break
    year, month = start.year, start.month
    found = []
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        if (year * 12 + month - 1) % months:
            continue
        instant = datetime(year, month, 1, tzinfo=UTC)
        if instant > end:
            break
        found.append(instant)
    label = "%Y" if months >= 12 else "%b %Y"
    return tuple(Tick(scale.x(instant), instant.strftime(label)) for instant in found)


def _unit_colours(history: OwnershipHistory) -> dict[str, str]:
    colours: dict[str, str] = {}
    for interval in sorted((*history.ownership, *history.custody), key=lambda i: i.start):
        if interval.unit not in colours:
            colours[interval.unit] = PALETTE[len(colours) % len(PALETTE)]
    return colours


@dataclass(frozen=True)
class _Placed:
    """Where a span's label goes: inside it, after it, or before it; and what the two take up."""

    text: str
    x: float
    inside: bool
    left: float
    right: float


def _place_label(x1: float, x2: float, text: str, *, inside: bool) -> _Placed:
    width = len(text) * _CHAR
    if inside and width + 10 <= x2 - x1:
        return _Placed(text, round(x1 + 5, 2), True, x1, x2)
    if x2 + 4 + width <= PLOT_RIGHT:
        return _Placed(text, round(x2 + 4, 2), False, x1, x2 + 4 + width)
    left = max(x1 - 4 - width, float(PLOT_LEFT) + 2)
    return _Placed(text, round(left, 2), False, left, x2)


def _fits(text: str, width: float) -> bool:
    return len(text) * _CHAR + 10 <= width


def ownership_chart(
    history: OwnershipHistory,
    events: Sequence[LedgerEvent],
    rows: Sequence[TimelineRow],
    obligations: Sequence[Obligation],
    *,
    at: datetime,
    as_known_at: datetime | None = None,
    accountable: Sequence[AccountableSpan] = (),
) -> Chart:
    """An SVG Gantt of one referral: an owner lane (gaps in a warning colour), a custodian lane,
    the accountable people (with a staff directory), and lanes of events, late entries and
    overdue obligations (the referral's and its subjects'), over a shared time axis.

    ``events`` are the referral's events in business order that occurred by ``at``, ``rows``
    its timeline up to ``at`` and ``obligations`` those judged at ``at``.
    """
    start = history.received_at
    last = max((event.occurred_at for event in events), default=start)
    end, clipped = _chart_end(start, last, at, history.closed_at)
    # a little room before the receipt, so a marker on it is not cut in half
    scale = _Scale(start - (end - start) * _LEAD_SHARE, end)
    colours = _unit_colours(history)

    def duration(begin: datetime, finish: datetime | None) -> str:
        return f"{days((finish or at) - begin):.2f} days"

    def until(finish: datetime | None) -> str:
        return iso(finish) if finish is not None else f"{iso(at)} (running)"

    # -- owner and custodian lanes
    y = 30.0
    owner_lane = Lane("Owner", y, _LANE_HEIGHT)
    custody_lane = Lane("Custodian", y + _LANE_HEIGHT + 8, _LANE_HEIGHT)
    bars: list[Bar] = []

    def bar(kind: str, unit: str | None, begin: datetime, finish: datetime | None, lane: Lane, colour: str, label: str, title: str) -> Bar:
        x1 = scale.x(begin)
        x2 = scale.x(finish or at)
        width = max(x2 - x1, 1.5)  # a moment-long interval still shows
        shown = label if _fits(label, width) else ""
        return Bar(kind, unit, x1, lane.y, round(width, 2), lane.height, colour, shown, title, finish is None and clipped)

    for interval in history.ownership:
        person = f" ({interval.person})" if interval.person else ""
        title = f"Owner {interval.unit}{person}: {iso(interval.start)} to {until(interval.end)}, {duration(interval.start, interval.end)}"
        bars.append(bar("owner", interval.unit, interval.start, interval.end, owner_lane, colours[interval.unit], interval.unit, title))
    for gap in history.gaps:
        length = days(gap.duration(at))
        title = f"NO OWNER: {iso(gap.start)} to {until(gap.end)}, {length:.2f} days"
        label = f"NO OWNER · {length:.2f} days"
        if not _fits(label, scale.x(gap.end or at) - scale.x(gap.start)):
            label = f"{length:.0f} d"
        bars.append(bar("gap", None, gap.start, gap.end, owner_lane, "", label, title))
    for interval in history.custody:
        title = f"Custodian {interval.unit}: {iso(interval.start)} to {until(interval.end)}, {duration(interval.start, interval.end)}"
        bars.append(bar("custody", interval.unit, interval.start, interval.end, custody_lane, colours[interval.unit], interval.unit, title))

    claims = tuple(
        Marker(
            "claim",
            scale.x(claim.occurred_at),
            owner_lane.y + owner_lane.height / 2,
            _claim_title(claim.claim, claim.occurred_at),
            claim.version,
        )
        for claim in history.disputed_claims
        if claim.occurred_at <= at
    )

    people_lane, people, people_hidden = _people_lane(accountable, scale, custody_lane.y + custody_lane.height + 8, at, end)

    # -- events lane
    summaries = {row.version: row.summary for row in rows if row.subject is None}
    marked = [(event, _marker_kind(event)) for event in events if type(event) in _EVENT_MARKERS]
    xs = [scale.x(event.occurred_at) for event, _ in marked]
    marker_rows = _stack([(x - 6, x + 6) for x in xs], _MAX_MARKER_ROWS, gap=1.0)
    above = people_lane if people_lane is not None else custody_lane
    events_y = above.y + above.height + 12
    events_height = _MARKER_ROW * max(1, max(marker_rows, default=0) + 1)
    events_lane = Lane("Events", events_y, events_height, "" if marked else "none")
    markers = tuple(
        Marker(
            kind,
            x,
            events_y + _MARKER_ROW * row + _MARKER_ROW / 2,
            f"{iso(event.occurred_at)} · {summaries.get(event.originator_version, kind)}",
            event.originator_version,
        )
        for (event, kind), x, row in zip(marked, xs, marker_rows, strict=True)
    )

    # -- late entries lane
    late_rows = [row for row in rows if row.late]
    placed_lags = []
    for row in late_rows:
        x1 = scale.x(row.occurred_at)
        x2 = max(scale.x(min(row.recorded_at, end)), x1 + 3)
        placed_lags.append((row, x1, x2, _place_label(x1 - 4, x2 + 6, _lag_label(row), inside=False)))
    lag_rows = _stack([(place.left, place.right) for *_, place in placed_lags], _MAX_LAG_ROWS, share=False)
    lags_hidden = sum(1 for row in lag_rows if row >= _MAX_LAG_ROWS)
    late_y = events_lane.y + events_lane.height + 8
    late_lane = Lane(
        "Late entries", late_y, _LAG_ROW * max(1, min(max(lag_rows, default=0), _MAX_LAG_ROWS - 1) + 1), "" if late_rows else "none"
    )
    lags = tuple(
        Lag(
            x1,
            x2,
            late_y + _LAG_ROW * lane_row + _LAG_ROW / 2,
            row.needs_attestation,
            place.text,
            place.x,
            f"{row.summary}: occurred {iso(row.occurred_at)}, recorded {iso(row.recorded_at)} ({days(row.lag):.2f} days late"
            + ("; needs attestation" if row.needs_attestation else "")
            + ")",
        )
        for (row, x1, x2, place), lane_row in zip(placed_lags, lag_rows, strict=True)
        if lane_row < _MAX_LAG_ROWS
    )

    # -- overdue lane: the obligations of the referral and of its subjects that ran past their due
    # (the referral's own first: when rows run out, subjects' are the ones left off)
    late_obligations = sorted(
        (o for o in obligations if o.status in (BREACHED, OVERDUE)),
        key=lambda o: (o.subject is not None, o.due, RULE_IDS.index(o.rule), o.subject or ""),
    )
    placed: list[tuple[Obligation, float, float, _Placed]] = []
    for obligation in late_obligations:
        x1 = scale.x(obligation.due)
        x2 = max(scale.x(obligation.satisfied_at or at), x1 + 2)
        placed.append((obligation, x1, x2, _place_label(x1, x2, _overdue_label(obligation), inside=True)))
    overdue_rows = _stack([(place.left, place.right) for *_, place in placed], _MAX_OVERDUE_ROWS, share=False)
    overdue_y = late_lane.y + late_lane.height + 8
    overdue: list[OverdueSpan] = []
    hidden = 0
    for (obligation, x1, x2, place), lane_row in zip(placed, overdue_rows, strict=True):
        if lane_row >= _MAX_OVERDUE_ROWS:
            hidden += 1
            continue
        satisfied = f", met late at {iso(obligation.satisfied_at)}" if obligation.satisfied_at is not None else f", still open at {iso(at)}"
        overdue.append(
            OverdueSpan(
                x1,
                overdue_y + _OVERDUE_ROW * lane_row + 2.5,
                round(x2 - x1, 2),
                obligation.status == OVERDUE,
                place.text,
                place.x,
                place.inside,
                f"{_whose(obligation)}{obligation.rule}: due {iso(obligation.due)}{satisfied} ({obligation.days_late or 0:.2f} days late)",
            )
        )
    used_rows = max((int((o.y - overdue_y) // _OVERDUE_ROW) for o in overdue), default=0) + 1
    overdue_lane = Lane("Overdue", overdue_y, _OVERDUE_ROW * used_rows, "" if overdue else "none")

    lanes = (owner_lane, custody_lane, *([people_lane] if people_lane is not None else []), events_lane, late_lane, overdue_lane)
    bottom = overdue_lane.y + overdue_lane.height + 6
    instants = []
    if at <= end:
        instants.append(Instant(scale.x(at), "report instant", "at"))
    if as_known_at is not None and start <= as_known_at <= end:
        instants.append(Instant(scale.x(as_known_at), "as known at", "known"))
    return Chart(
        width=CHART_WIDTH,
        height=round(bottom + 4, 2),
        left=PLOT_LEFT,
        right=PLOT_RIGHT,
        start=start,
        end=end,
        clipped=clipped,
        ticks=tuple(tick for tick in _ticks(start, end, scale) if not clipped or tick.x < PLOT_RIGHT - _CONTINUES_ROOM),
        lanes=lanes,
        bars=tuple(bars),
        markers=markers,
        claims=claims,
        lags=lags,
        overdue=tuple(overdue),
        instants=tuple(instants),
        overdue_hidden=hidden,
        lags_hidden=lags_hidden,
        units=tuple(colours.items()),
        people=people,
        people_hidden=people_hidden,
    )


def _whose(obligation: Obligation) -> str:
    return f"{obligation.subject} " if obligation.subject else ""


def _overdue_label(obligation: Obligation) -> str:
    """An overdue bar's label: whose (a subject's, or the referral's), which rule, how late."""
    still_open = "" if obligation.status == BREACHED else ", open"
    return f"{_whose(obligation)}{obligation.rule} {obligation.days_late or 0:.2f} d{still_open}"


_PERSON_ROW: Final = 15
_MAX_PERSON_ROWS: Final = 4


def _people_lane(
    accountable: Sequence[AccountableSpan], scale: _Scale, y: float, at: datetime, end: datetime
) -> tuple[Lane | None, tuple[PersonBar, ...], int]:
    """The accountable people lane: one bar per person and stretch, under the unit's bar, labelled
    with the pseudonymous staff id and role (None without a staff directory)."""
    if not accountable:
        return None, (), 0
    found: list[tuple[str, dict[str, Any], float, float, _Placed]] = []
    for span in accountable:
        for person in span.people:
            x1 = scale.x(person["from"])
            x2 = max(scale.x(min(person["to"] or at, end)), x1 + 2)
            label = f"{person['person']} {person['role']}"
            found.append((span.kind, person, x1, x2, _place_label(x1, x2, label, inside=True)))
    found.sort(key=lambda item: item[2])
    rows = _stack([(place.left, place.right) for *_, place in found], _MAX_PERSON_ROWS, share=False)
    bars = []
    for (kind, person, x1, x2, place), row in zip(found, rows, strict=True):
        if row >= _MAX_PERSON_ROWS:
            continue
        until = iso(person["to"]) if person["to"] is not None else f"{iso(at)} (running)"
        seconded = f", seconded to {person['seconded_to']}" if person["seconded_to"] else ""
        answered = "owner" if kind == "owner" else "custodian while nobody owned it"
        bars.append(
            PersonBar(
                kind,
                person["person"],
                x1,
                y + _PERSON_ROW * row + 2,
                round(x2 - x1, 2),
                place.text,
                place.x,
                place.inside,
                f"{person['person']}, {person['role']} ({person['employer']}{seconded}), accountable for the {answered}: "
                f"{iso(person['from'])} to {until}",
            )
        )
    used = max(min(max(rows, default=0), _MAX_PERSON_ROWS - 1) + 1, 1)
    lane = Lane("Accountable", y, _PERSON_ROW * used + 2, "" if bars else "nobody in an accountable role")
    return lane, tuple(bars), sum(1 for row in rows if row >= _MAX_PERSON_ROWS)


def _marker_kind(event: LedgerEvent) -> str:
    if isinstance(event, Referral.DecisionRecorded) and event.outcome == "DEFER":
        return "defer"
    return _EVENT_MARKERS[type(event)]


def _claim_title(claim: Mapping[str, str], when: datetime) -> str:
    return f"Disputed claim, {iso(when)}: a note claims {words(str(claim.get('type')))} by {claim.get('unit')}; the events do not show it"


def _lag_label(row: TimelineRow) -> str:
    who = f"{row.subject} " if row.subject else ""
    return f"{who}{words(row.type)} +{days(row.lag):.2f} d"


# --- rendering --------------------------------------------------------------------------------


def _days_filter(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _iso_filter(value: datetime | None) -> str:
    return "" if value is None else iso(value)


def _date_filter(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%d %b %Y")


def _cell_filter(value: object) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def _actor_filter(actor: Mapping[str, str]) -> str:
    return f"{actor['person']}:{actor['role']}@{actor['unit']}"


def obligation_detail(obligation: Obligation) -> str:
    """The detail column of an obligation: band, review cycles missed, the rule's own facts, in words."""
    parts = [f"band {obligation.band}"] if obligation.band else []
    if obligation.cycles_missed:
        parts.append(_plural(obligation.cycles_missed, "review cycle missed", "review cycles missed"))
    parts += [f"{words(key)} {value}" for key, value in obligation.detail.items() if str(value).strip()]
    return "; ".join(parts)


def accountable_person(person: Mapping[str, Any]) -> str:
    """One accountable person of the "Accountable people" table: id, role, employer, secondment, when."""
    seconded = f", seconded to {person['seconded_to']}" if person.get("seconded_to") else ""
    until = iso(person["to"]) if person.get("to") is not None else "running"
    return f"{person['person']} {person['role']} ({person['employer']}{seconded}) {iso(person['from'])} to {until}"


def breach_text(obligation: Obligation) -> str:
    """A breach under an accountable person: the rule, whose (a subject's), when it fell due."""
    whose = f" ({obligation.subject})" if obligation.subject else ""
    return f"{obligation.rule}{whose} due {iso(obligation.due)}"


#: a code with a hyphen in it: a unit (U-OPSB), a person (P-042), a reference, a rule id, an instant
_HYPHENATED: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9:.+@_]*(?:-[A-Za-z0-9:.+@_]+)+")


def _nobreak_filter(value: object) -> Markup:
    """HTML text in which no code breaks at its hyphen (each is kept on one line: ``span.nb``)."""
    escaped = str(escape("" if value is None else str(value)))
    return Markup(_HYPHENATED.sub(lambda found: f'<span class="nb">{found.group(0)}</span>', escaped))


def _stamp_filter(value: datetime | None) -> Markup:
    """An instant in a table with a wide free-text column: the date and the time each kept whole,
    allowed onto two lines at the "T" when the page is narrow (print)."""
    if value is None:
        return Markup("")
    date, _, time = iso(value).partition("T")
    return Markup(f'<span class="nb">{escape(date)}</span><wbr><span class="nb">T{escape(time)}</span>')


def _actor_html_filter(actor: Mapping[str, str]) -> Markup:
    """PERSON:ROLE@UNIT with each part kept whole, allowed onto the next line after ":" and before "@"."""
    person, role, unit = (_nobreak_filter(actor[key]) for key in ("person", "role", "unit"))
    return Markup(f'<span class="nb">{person}</span>:<wbr><span class="nb">{role}</span><wbr>@<span class="nb">{unit}</span>')


def _css_string_filter(value: object) -> Markup:
    """A CSS string literal (for the printed page's running header): anything but plain
    characters is written as a CSS escape, so no value can end the string or the rule."""
    text = "" if value is None else str(value)
    safe = "".join(c if c.isalnum() or c in " -_:.,@()" else f"\\{ord(c):x} " for c in text)
    return Markup(f'"{safe}"')


def markdown_safe(value: object) -> object:
    """Every value the Markdown case file prints: HTML a Markdown viewer would run is escaped,
    and so are control characters (the one filter, applied to each ``{{ … }}``)."""
    if not isinstance(value, str):
        return value
    text = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join(c if c >= " " or c == "\n" else f"\\u{ord(c):04x}" for c in text)


@lru_cache(maxsize=2)
def _environment(markdown: bool = False) -> jinja2.Environment:
    environment = jinja2.Environment(
        finalize=markdown_safe if markdown else None,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(days=_days_filter, iso=_iso_filter, date=_date_filter, cell=_cell_filter, actor=_actor_filter)
    environment.filters.update(
        nb=_nobreak_filter,
        stamp=_stamp_filter,
        actor_html=_actor_html_filter,
        css_string=_css_string_filter,
        words=words,
        detail=obligation_detail,
        accountable_person=accountable_person,
        breach_text=breach_text,
    )
    return environment


def _context(case: CaseFile) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        made_by = f"refledger {version('referral-ledger')}"
    except PackageNotFoundError:
        made_by = "refledger"
    return {
        "case": case,
        "chart": case.chart,
        "summary": case_file_summary(case),
        "marker_kinds": MARKER_KINDS,
        "statuses": STATUSES,
        "made_by": made_by,
    }


def render_html(case: CaseFile) -> str:
    """The case file as one self-contained HTML document (inline CSS and SVG, no requests)."""
    return _environment().get_template("case_file.html.j2").render(_context(case))


def render_markdown(case: CaseFile) -> str:
    """The case file as Markdown (plain text: the chart becomes its table of intervals)."""
    return _environment(markdown=True).get_template("case_file.md.j2").render(_context(case))


def render(case: CaseFile, fmt: str) -> str:
    if fmt == HTML:
        return render_html(case)
    if fmt == MARKDOWN:
        return render_markdown(case)
    raise InvalidInput(f"unknown report format {fmt!r} (expected one of: {', '.join(FORMATS)})")


# --- headless Chromium ---------------------------------------------------------------------

#: an explicit Chromium binary; else the first of CHROMIUM_NAMES on the PATH
CHROMIUM_ENV: Final = "REFLEDGER_CHROMIUM"
CHROMIUM_NAMES: Final = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: a page this size is A4 at 150 dots per inch
SCREEN_SIZE: Final = (1240, 1754)
_CHROMIUM_TIMEOUT_S: Final = 120


class ChromiumMissing(LedgerError):
    """PDF output needs headless Chromium, and none was found."""


def find_chromium() -> str | None:
    """The Chromium binary to print with, or None when there is none."""
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return explicit if shutil.which(explicit) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _chromium(page: Path, *output: str) -> None:
    binary = find_chromium()
    if binary is None:
        raise ChromiumMissing(
            "PDF output needs headless Chromium and none was found: install it (Debian: apt-get install chromium) "
            f"or set {CHROMIUM_ENV} to its path"
        )
    with tempfile.TemporaryDirectory(prefix="refledger-chromium-") as profile:
        command = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            *output,
            page.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=_CHROMIUM_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise LedgerError(f"Chromium did not finish within {_CHROMIUM_TIMEOUT_S} s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip() and "dbus" not in line.lower()]
        raise LedgerError(f"Chromium failed (exit {done.returncode}): {lines[-1] if lines else 'no message'}")


def print_to_pdf(page: Path, pdf: Path) -> None:
    """Print an HTML file to PDF with headless Chromium (the page's own @page rules set A4)."""
    target = pdf.resolve()
    _chromium(page, f"--print-to-pdf={target}", "--no-pdf-header-footer")
    if not target.exists() or target.stat().st_size == 0:
        raise LedgerError(f"Chromium wrote no PDF to {pdf}")


def screenshot(page: Path, png: Path, size: tuple[int, int] = SCREEN_SIZE, scale: float = 1.0) -> None:
    """A PNG of an HTML file as headless Chromium shows it: ``size`` CSS pixels, times ``scale`` device pixels."""
    target = png.resolve()
    _chromium(
        page, f"--screenshot={target}", f"--window-size={size[0]},{size[1]}", f"--force-device-scale-factor={scale:g}", "--hide-scrollbars"
    )
    if not target.exists() or target.stat().st_size == 0:
        raise LedgerError(f"Chromium wrote no screenshot to {png}")

"""A referral's events as timeline rows: business order, both clocks, lateness, one-line summaries.

Rows come in business order (``occurred_at``, ties by recording order) across the referral's
own stream and its subjects' streams. Each row carries both clocks and the lag between them,
whether the entry was late (and late enough to need a supervisor's attestation), who acted,
and what the event did in a sentence.

A late entry can make an earlier-recorded event impossible in hindsight (a withdrawal of an
offer that a late acceptance had already closed): such an event stays on the timeline, marked
**superseded** with the rule that stops it, because the ledger never hides what was recorded;
it just changes nothing.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledger.authority import fixed_breach
from ledger.knowledge import CORRECTION, RETRACTION, amendment_kind, known
from ledger.records import Disposed, HoldPlaced, HoldReleased
from ledger.referral import LedgerEvent, Referral, business_order
from ledger.subject import Subject, SubjectState
from ledger.values import ATTESTATION_AFTER, LATE_AFTER, days, iso
from projections.ownership import EVENT_TYPES, Superseded, event_type, ownership_history, source_line, words

__all__ = ["CSV_COLUMNS", "EVENT_TYPES", "TimelineRow", "event_type", "timeline", "timeline_document"]

APPLIED = "applied"
SUPERSEDED = "superseded"

#: summaries are one line; longer free text is cut here.
SUMMARY_TEXT_LIMIT = 100


@dataclass(frozen=True)
class TimelineRow:
    """One event as an investigator reads it."""

    subject: str | None  # None: the referral's own stream
    version: int
    type: str
    occurred_at: datetime
    recorded_at: datetime
    ingested_at: datetime
    late: bool
    needs_attestation: bool
    late_reason: str | None
    line: int | None
    actor: dict[str, str]
    summary: str
    superseded: Superseded | None = None
    #: the login that inserted the event (None on events recorded before logins were kept)
    login: str | None = None

    @property
    def lag(self) -> timedelta:
        return self.recorded_at - self.occurred_at

    @property
    def lag_days(self) -> float:
        return days(self.lag)

    @property
    def effect(self) -> str:
        return APPLIED if self.superseded is None else SUPERSEDED

    def document(self) -> dict[str, Any]:
        return {
            "occurred_at": iso(self.occurred_at),
            "recorded_at": iso(self.recorded_at),
            "ingested_at": iso(self.ingested_at),
            "lag_days": self.lag_days,
            "late": self.late,
            "needs_attestation": self.needs_attestation,
            "late_reason": self.late_reason,
            "subject": self.subject,
            "version": self.version,
            "type": self.type,
            "actor": dict(self.actor),
            "login": self.login,
            "summary": self.summary,
            "effect": self.effect,
            "why": None if self.superseded is None else f"{self.superseded.reason} (rule: {self.superseded.rule})",
            "line": self.line,
        }


CSV_COLUMNS = (
    "occurred_at",
    "recorded_at",
    "lag_days",
    "late",
    "needs_attestation",
    "subject",
    "version",
    "type",
    "actor",
    "login",
    "summary",
    "effect",
    "why",
    "late_reason",
    "line",
)


def timeline(
    events: Sequence[LedgerEvent],
    subject_events: Mapping[str, Sequence[LedgerEvent]] | None = None,
    *,
    records_events: Sequence[LedgerEvent] = (),
    as_known_at: datetime | None = None,
    late_after: timedelta = LATE_AFTER,
    attestation_after: timedelta = ATTESTATION_AFTER,
) -> list[TimelineRow]:
    """Every event of the referral (and of its subjects, and its records file: holds and
    disposal, shown as ``RECORDS_FILE``), recorded by ``as_known_at``, in business order."""
    history = ownership_history(events, as_known_at=as_known_at)
    superseded = {s.version: s for s in history.superseded}
    disputed = {claim.version for claim in history.disputed_claims}
    streams: list[list[_Entry]] = [
        [
            (0, event, None, superseded.get(event.originator_version))
            for event in business_order(known(events, as_known_at, recorded_only=True))
        ]
    ]
    notes = _amendment_notes(None, streams[0])
    for reference, stream in [*(subject_events or {}).items(), (RECORDS_FILE, records_events)]:
        recorded = known(stream, as_known_at, recorded_only=True)
        if recorded:
            streams.append(_subject_stream(len(streams), reference, recorded))
            notes.update(_amendment_notes(reference, streams[-1]))
    rows = []
    # Each stream is already in business order; on a tie across streams the referral comes first.
    for _rank, event, subject, stopped in heapq.merge(*streams, key=_merge_key):
        lag = event.recorded_at - event.occurred_at
        said, about = notes.get((subject, event.originator_version), (None, ()))
        text = said or summary(event, subject, disputed=event.originator_version in disputed and subject is None)
        if about:
            text += " [" + "; ".join(about) + "]"
        rows.append(
            TimelineRow(
                subject=subject,
                version=event.originator_version,
                type=event_type(event),
                occurred_at=event.occurred_at,
                recorded_at=event.recorded_at,
                ingested_at=event.timestamp,
                late=lag > late_after,
                needs_attestation=lag > attestation_after and not any(note.startswith("attested") for note in about),
                late_reason=event.late_reason,
                line=source_line(event),
                actor=dict(event.actor),
                summary=text,
                superseded=stopped,
                login=event.inserted_by,
            )
        )
    return rows


#: (stream rank, event, subject reference or None, why it was superseded or None)
_Entry = tuple[int, LedgerEvent, str | None, Superseded | None]


def _amendment_notes(subject: str | None, stream: Sequence[_Entry]) -> dict[tuple[str | None, int], tuple[str | None, tuple[str, ...]]]:
    """(subject, version) → (the summary of an amendment, or None; notes on an amended entry).

    The original and its correction both stay on the record, so both are shown: the
    amendment says what it changed, and the entry says what amended it.
    """
    by_version = {entry[1].originator_version: entry[1] for entry in stream}
    said: dict[int, str] = {}
    about: dict[int, list[str]] = {}
    for _rank, event, _subject, _stopped in stream:
        kind = amendment_kind(event)
        if kind is None:
            continue
        version: int = getattr(event, "target_version")  # noqa: B009
        target = by_version.get(version)
        what = f"v{version} ({event_type(target) if target is not None else '?'})"
        prefix = f"{subject}: " if subject is not None else ""
        if kind == CORRECTION:
            corrected: dict[str, Any] = getattr(event, "corrected")  # noqa: B009
            changes = ", ".join(f"{name} {_shown(getattr(target, name, None))} -> {_shown(value)}" for name, value in corrected.items())
            said[event.originator_version] = f"{prefix}Corrects {what}: {changes}{_because(getattr(event, 'reason'))}"  # noqa: B009
            about.setdefault(version, []).append(f"corrected by v{event.originator_version}")
        elif kind == RETRACTION:
            said[event.originator_version] = f"{prefix}Retracts {what}, made in error{_because(getattr(event, 'reason'))}"  # noqa: B009
            about.setdefault(version, []).append(f"retracted by v{event.originator_version}: no effect")
        else:
            by = event.actor
            said[event.originator_version] = f"{prefix}Attests late entry {what}: {getattr(event, 'statement')}"  # noqa: B009
            about.setdefault(version, []).append(f"attested by {by['person']}:{by['role']} at {iso(event.recorded_at)}")
    versions = set(said) | set(about)
    return {(subject, v): (said.get(v), tuple(about.get(v, ()))) for v in versions}


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


def _merge_key(entry: _Entry) -> tuple[datetime, datetime, int]:
    return entry[1].occurred_at, entry[1].recorded_at, entry[0]


def _subject_stream(rank: int, subject: str, events: Sequence[LedgerEvent]) -> list[_Entry]:
    ordered = business_order(events)
    first = ordered[0]
    if not isinstance(first, Subject.Extracted):
        return [(rank, event, subject, None) for event in ordered]
    state = SubjectState(first.referral, first.subject, first.category, first.occurred_at)
    entries: list[_Entry] = [(rank, first, subject, None)]
    for event in ordered[1:]:
        refusal = state.refusal(type(event)) or fixed_breach(type(event).TOPIC, event.actor_unit, force=state.force)
        stopped = None if state.apply(event) else Superseded(event.originator_version, *(refusal or ("not-applicable", "")))
        entries.append((rank, event, subject, stopped))
    return entries


def timeline_document(reference: str, rows: Iterable[TimelineRow], as_known_at: datetime | None) -> dict[str, Any]:
    """The ``timeline --json`` answer."""
    return {
        "referral": reference,
        "as_known_at": None if as_known_at is None else iso(as_known_at),
        "events": [row.document() for row in rows],
    }


# --- one-line summaries -------------------------------------------------------------------


def _short(text: str | None) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= SUMMARY_TEXT_LIMIT else line[: SUMMARY_TEXT_LIMIT - 1].rstrip() + "…"


def _due(label: str, instant: datetime | None) -> str:
    return "" if instant is None else f", {label} {iso(instant)}"


def _because(reason: str | None) -> str:
    return f": {_short(reason)}" if reason else ""


def _received(e: Any) -> str:
    risk = ", immediate risk" if e.immediate_risk else ""
    count = f", {e.claimed_subject_count} subjects claimed" if e.claimed_subject_count is not None else ""
    return f"Received from {e.originator} by {e.channel}{count}{risk}; custodian {e.custodian_unit}"


def _assessed(e: Any) -> str:
    risk = ", immediate risk" if e.immediate_risk else ""
    lead = f"; recommended lead {e.recommended_lead_unit}" if e.recommended_lead_unit else ""
    return f"Assessed {e.risk_band}{risk}{lead}"


def _decision(e: Any) -> str:
    return f"Decision {e.outcome}{_due('revisit by', e.revisit_by)}{_because(e.rationale)}"


def _review(e: Any) -> str:
    return f"Supervisory review, owner confirmed {e.owner_confirmed}{_due('next by', e.next_review_by)}{_because(e.progress)}"


def _note(e: Any) -> str:
    return f"Note{_because(e.text)}"


#: how the rows of a referral's records file (holds, disposal) are labelled in its timeline
RECORDS_FILE = "records file"

_SUMMARIES: dict[type[LedgerEvent], Callable[[Any], str]] = {
    HoldPlaced: lambda e: f"Legal hold placed{_because(e.reason)}",
    HoldReleased: lambda e: f"Legal hold released{_because(e.reason)}",
    Disposed: lambda e: f"Free text disposed of (data key destroyed){_because(e.reason)}",
    Referral.Received: _received,
    Referral.Assessed: _assessed,
    Referral.OwnershipOffered: lambda e: f"Ownership offered to {e.to_unit}{_due('reply due', e.reply_due)}",
    Referral.OwnershipAccepted: lambda e: f"{e.actor['unit']} ({e.actor['person']}) accepted ownership",
    Referral.OwnershipDeclined: lambda e: f"{e.actor['unit']} declined ownership{_because(e.reason)}",
    Referral.OfferWithdrawn: lambda e: f"Open offer withdrawn{_because(e.reason)}",
    Referral.OwnershipReleased: lambda e: f"{e.actor['unit']} released ownership{_because(e.reason)}",
    Referral.CustodyTransferred: lambda e: f"Custody moved from {e.actor['unit']} to {e.to_unit}",
    Referral.EscalationRaised: lambda e: f"Escalated to {e.to_role}{_due('decision due', e.decision_due)}{_because(e.issue)}",
    Referral.DecisionRecorded: _decision,
    Referral.ReviewRecorded: _review,
    Referral.ExternalRequestReceived: lambda e: f"Request from {e.requester}{_because(e.summary)}",
    Referral.ExternalReplySent: lambda e: f"Reply sent to {e.reply_to}",
    Referral.NoteAdded: _note,
    Referral.Closed: lambda e: f"Closed{_because(e.reason)}",
    Referral.Reopened: lambda e: f"Reopened{_because(e.reason)}",
    Subject.Extracted: lambda e: f"Subject {e.subject} added ({e.category})",
    Subject.Triaged: lambda e: (
        f"Triaged {e.band} with {e.risk_tool} {e.risk_tool_version}" + (f", for {e.target_force}" if e.target_force else "")
    ),
    Subject.Disseminated: lambda e: f"Sent to {e.to_force}, authorised by {e.authorised_by}",
    Subject.ForceAcknowledged: lambda e: f"{e.actor['unit']} acknowledged it",
    Subject.ForceRejected: lambda e: f"{e.actor['unit']} rejected it{_because(e.reason)}",
    Subject.ForceActionRecorded: lambda e: f"{e.actor['unit']} acted{_because(e.action)}",
    Subject.Closed: lambda e: f"Subject closed {e.outcome}{_because(e.rationale)}",
}


def summary(event: LedgerEvent, subject: str | None = None, *, disputed: bool = False) -> str:
    """What the event did, in one line (subject events start with the subject's reference)."""
    describe = _SUMMARIES.get(type(event))
    text = describe(event) if describe is not None else event_type(event)
    if isinstance(event, Referral.NoteAdded) and event.claim:
        claim = event.claim
        verdict = "disputed, the events do not show it" if disputed else "the events agree"
        text += f" (claims {words(str(claim.get('type')))} by {claim.get('unit')}: {verdict})"
    if subject is not None and not isinstance(event, Subject.Extracted):
        text = f"{subject}: {text}"
    return text

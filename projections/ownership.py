"""Who owned a referral, who held it, and when: ownership and custody intervals, gaps.

A pure fold over one referral's events (docs/DOMAIN.md §3–4). The rules themselves live in
``ledger.referral.ReferralState``; this module only walks that state through the events in
business order and writes down where ownership, custody and status change:

- an **ownership interval** runs from an acceptance to the release, closure or next
  acceptance that ends it;
- a **custody interval** runs from receipt or a custody transfer to the next transfer (a
  referral always has a custodian, closed or not);
- a **gap** is a stretch of time while the referral is open and nobody owns it;
- a **disputed claim** is a note claiming something (an acceptance) the events do not show.

Intervals are half-open, [start, end): at the instant of an acceptance the accepting unit
owns the referral. ``end`` None means "still running" (at ``until``, or now). Ownership
intervals and gaps together tile every open period of the referral without overlap.

As known at K (bitemporal): the events are read through ``ledger.knowledge.known``: only
those recorded at or before K take part, corrections recorded by K in place, retractions
recorded by K left out. So a late entry or a correction changes the answer "as known now" but
not the answer "as known at" an instant before it was recorded. Events that cannot apply in business order (a withdrawal of an offer that a late
acceptance had already closed, say) change nothing and are listed as superseded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledger.authority import fixed_breach
from ledger.errors import InvalidInput, NotFound
from ledger.knowledge import known
from ledger.referral import OPEN, LedgerEvent, Offer, Referral, ReferralState, business_order
from ledger.staff import STAFF_EVENT_TYPES
from ledger.subject import Subject
from ledger.values import days, iso

__all__ = [
    "DisputedClaim",
    "Gap",
    "Interval",
    "Offer",
    "OpenPeriod",
    "OwnerAnswer",
    "OwnershipHistory",
    "Superseded",
    "answer_document",
    "event_ref",
    "event_type",
    "history_document",
    "owner_at",
    "ownership_history",
    "source_line",
    "words",
]

#: claim types whose truth the events can show; any other claim is reported as disputed.
OWNERSHIP_CLAIM = "ownership_accepted"
CUSTODY_CLAIM = "custody_transferred"

_ZERO = timedelta(0)

#: each event class → its name in the import format (docs/DOMAIN.md §8), the vocabulary of every answer.
EVENT_TYPES: dict[type[LedgerEvent], str] = {
    Referral.Received: "received",
    Referral.Assessed: "assessed",
    Referral.OwnershipOffered: "ownership_offered",
    Referral.OwnershipAccepted: "ownership_accepted",
    Referral.OwnershipDeclined: "ownership_declined",
    Referral.OfferWithdrawn: "offer_withdrawn",
    Referral.OwnershipReleased: "ownership_released",
    Referral.CustodyTransferred: "custody_transferred",
    Referral.EscalationRaised: "escalation_raised",
    Referral.DecisionRecorded: "decision_recorded",
    Referral.ReviewRecorded: "review_recorded",
    Referral.ExternalRequestReceived: "external_request_received",
    Referral.ExternalReplySent: "external_reply_sent",
    Referral.NoteAdded: "note_added",
    Referral.Closed: "closed",
    Referral.Reopened: "reopened",
    Subject.Extracted: "subject_extracted",
    Subject.Triaged: "subject_triaged",
    Subject.Disseminated: "subject_disseminated",
    Subject.ForceAcknowledged: "force_acknowledged",
    Subject.ForceRejected: "force_rejected",
    Subject.ForceActionRecorded: "force_action_recorded",
    Subject.Closed: "subject_closed",
    Referral.EntryCorrected: "entry_corrected",
    Referral.EntryRetracted: "entry_retracted",
    Referral.EntryAttested: "entry_attested",
    Subject.EntryCorrected: "entry_corrected",
    Subject.EntryRetracted: "entry_retracted",
    Subject.EntryAttested: "entry_attested",
    **STAFF_EVENT_TYPES,
}


def words(name: str) -> str:
    """An event type or rule read as words: ``ownership_accepted`` → ``ownership accepted``."""
    return name.replace("_", " ")


def event_type(event: LedgerEvent) -> str:
    """The event's type in the import format (``ownership_accepted``, …)."""
    return EVENT_TYPES.get(type(event), type(event).__name__)


class _Stretch:
    """[start, end) on the business clock; ``end`` is None while it runs."""

    start: datetime
    end: datetime | None

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant and (self.end is None or instant < self.end)

    def duration(self, until: datetime) -> timedelta:
        """Length up to its end, or up to ``until`` while it runs."""
        return max((self.end or until) - self.start, _ZERO)


@dataclass(frozen=True)
class Interval(_Stretch):
    """A unit (and, for ownership, the accepting person) holding the referral over [start, end)."""

    unit: str
    person: str | None
    start: datetime
    end: datetime | None
    #: stream version of the event that began it (acceptance, receipt, custody transfer).
    opened_by: int
    #: stream version of the event that ended it; None while it runs.
    closed_by: int | None


@dataclass(frozen=True)
class Gap(_Stretch):
    """A stretch of time while the referral was open and nobody owned it, [start, end)."""

    start: datetime
    end: datetime | None
    #: the receipt, release or reopening that made it unowned.
    opened_by: int
    #: the acceptance or closure that ended it; None while it runs.
    closed_by: int | None


@dataclass(frozen=True)
class OpenPeriod(_Stretch):
    """A stretch of time while the referral was open: receipt or reopening to closure."""

    start: datetime
    end: datetime | None
    opened_by: int
    closed_by: int | None


@dataclass(frozen=True)
class DisputedClaim:
    """A note's claim that the events do not show; it never changes ownership."""

    claim: dict[str, str]
    occurred_at: datetime
    recorded_at: datetime
    by: dict[str, str]
    version: int
    #: line of the import file the note came from, if it was imported.
    line: int | None = None


@dataclass(frozen=True)
class Superseded:
    """An event that could not apply in business order, and the rule that stopped it."""

    version: int
    rule: str
    reason: str


@dataclass(frozen=True)
class OwnershipHistory:
    """Everything the fold found, up to ``until`` (all events when None), as known at ``as_known_at``."""

    reference: str
    received_at: datetime
    status: str
    closed_at: datetime | None
    ownership: tuple[Interval, ...]
    custody: tuple[Interval, ...]
    gaps: tuple[Gap, ...]
    open_offer: Offer | None
    disputed_claims: tuple[DisputedClaim, ...]
    open_periods: tuple[OpenPeriod, ...] = ()
    superseded: tuple[Superseded, ...] = ()
    as_known_at: datetime | None = None
    until: datetime | None = None

    def ownership_at(self, instant: datetime) -> Interval | None:
        return _containing(self.ownership, instant)

    def custody_at(self, instant: datetime) -> Interval | None:
        return _containing(self.custody, instant)

    def gap_at(self, instant: datetime) -> Gap | None:
        for gap in reversed(self.gaps):
            if gap.contains(instant):
                return gap
        return None

    def claims_at(self, instant: datetime) -> tuple[DisputedClaim, ...]:
        """Disputed claims shown at ``instant``: those made (occurred) at or before it."""
        return tuple(claim for claim in self.disputed_claims if claim.occurred_at <= instant)

    def owned_time(self, until: datetime) -> timedelta:
        return sum((interval.duration(until) for interval in self.ownership), _ZERO)

    def unowned_time(self, until: datetime) -> timedelta:
        return sum((gap.duration(until) for gap in self.gaps), _ZERO)

    def open_time(self, until: datetime) -> timedelta:
        return sum((period.duration(until) for period in self.open_periods), _ZERO)


def _containing(intervals: Sequence[Interval], instant: datetime) -> Interval | None:
    # Latest first: the running interval is the one most often asked about.
    for interval in reversed(intervals):
        if interval.contains(instant):
            return interval
    return None


def _received(ordered: Sequence[LedgerEvent]) -> Referral.Received:
    first = ordered[0]
    if not isinstance(first, Referral.Received):
        raise InvalidInput("these events are not a referral's: the first is not a receipt")
    return first


def ownership_history(
    events: Sequence[LedgerEvent], *, as_known_at: datetime | None = None, until: datetime | None = None
) -> OwnershipHistory:
    """Fold one referral's events (any order) into ownership, custody, gaps and claims.

    Only events recorded by ``as_known_at`` count; only events that occurred by ``until``
    are folded, so what still runs at ``until`` has ``end`` None.
    """
    if not events:
        raise NotFound("no events: the referral is not in the ledger")
    seen = known(events, as_known_at)
    if not seen:
        raise NotFound(_not_yet_known(events, as_known_at))
    ordered = business_order(seen)
    receipt = _received(ordered)
    if until is not None and until < receipt.occurred_at:
        raise InvalidInput(f"{receipt.reference} was received at {iso(receipt.occurred_at)}; {iso(until)} is before that")
    state = ReferralState.received(receipt)
    start, first_version = receipt.occurred_at, receipt.originator_version

    ownership: list[Interval] = []
    custody: list[Interval] = []
    gaps: list[Gap] = []
    periods: list[OpenPeriod] = []
    superseded: list[Superseded] = []
    notes: list[Referral.NoteAdded] = []
    # What is running now: (unit, person, since, opened_by) and (since, opened_by).
    owner: tuple[str, str | None, datetime, int] | None = None
    custodian: tuple[str, datetime, int] = (state.custodian_unit, start, first_version)
    gap: tuple[datetime, int] | None = (start, first_version)
    period: tuple[datetime, int] | None = (start, first_version)

    for event in ordered[1:]:
        at = event.occurred_at
        if until is not None and at > until:
            break
        owner_before, since_before = state.owner_unit, state.owner_since
        custodian_before, status_before = state.custodian_unit, state.status
        if not state.apply(event):
            superseded.append(_superseded(state, event))
            continue
        if type(event) is Referral.NoteAdded and event.claim:
            notes.append(event)
        if (
            state.owner_since is since_before
            and state.owner_unit is owner_before
            and state.custodian_unit is custodian_before
            and state.status is status_before
        ):
            continue  # most events (assessments, reviews, notes, offers) move none of these
        version = event.originator_version
        if state.owner_unit != owner_before or state.owner_since != since_before:
            if owner is not None:
                ownership.append(Interval(owner[0], owner[1], owner[2], at, owner[3], version))
            owner = None if state.owner_unit is None else (state.owner_unit, state.owner_person, at, version)
        if state.custodian_unit != custodian_before:
            custody.append(Interval(custodian[0], None, custodian[1], at, custodian[2], version))
            custodian = (state.custodian_unit, at, version)
        if state.status != status_before:
            if period is not None:
                periods.append(OpenPeriod(period[0], at, period[1], version))
            period = (at, version) if state.status == OPEN else None
        unowned = state.status == OPEN and state.owner_unit is None
        if gap is not None and not unowned:
            if at > gap[0]:  # a gap that ends as it starts is no gap
                gaps.append(Gap(gap[0], at, gap[1], version))
            gap = None
        elif gap is None and unowned:
            gap = (at, version)

    if owner is not None:
        ownership.append(Interval(owner[0], owner[1], owner[2], None, owner[3], None))
    custody.append(Interval(custodian[0], None, custodian[1], None, custodian[2], None))
    if gap is not None:
        gaps.append(Gap(gap[0], None, gap[1], None))
    if period is not None:
        periods.append(OpenPeriod(period[0], None, period[1], None))
    owned = tuple(ownership)
    custodies = tuple(custody)
    return OwnershipHistory(
        reference=receipt.reference,
        received_at=receipt.occurred_at,
        status=state.status,
        closed_at=state.closed_at,
        ownership=owned,
        custody=custodies,
        gaps=tuple(gaps),
        open_offer=state.open_offer,
        disputed_claims=tuple(_disputed(notes, owned, custodies)),
        open_periods=tuple(periods),
        superseded=tuple(superseded),
        as_known_at=as_known_at,
        until=until,
    )


def _superseded(state: ReferralState, event: LedgerEvent) -> Superseded:
    refusal = state.refusal(type(event), getattr(event, "to_unit", None)) or fixed_breach(type(event).TOPIC, event.actor_unit, state)
    rule, reason = refusal if refusal is not None else ("not-applicable", "it could not apply")
    return Superseded(event.originator_version, rule, reason)


def _disputed(notes: Iterable[Referral.NoteAdded], ownership: Sequence[Interval], custody: Sequence[Interval]) -> Iterable[DisputedClaim]:
    for note in notes:
        claim = note.claim or {}
        unit, kind = claim.get("unit"), claim.get("type")
        if kind == OWNERSHIP_CLAIM:
            held = _containing(ownership, note.occurred_at)
        elif kind == CUSTODY_CLAIM:
            held = _containing(custody, note.occurred_at)
        else:
            held = None  # nothing in the ledger can show a claim of another kind
        if held is not None and held.unit == unit:
            continue
        yield DisputedClaim(dict(claim), note.occurred_at, note.recorded_at, dict(note.actor), note.originator_version, source_line(note))


def source_line(event: LedgerEvent) -> int | None:
    """The import-file line an event came from; None if it was recorded by a command."""
    source = event.source
    line = source.get("line") if isinstance(source, dict) else None
    return line if isinstance(line, int) else None


def _not_yet_known(events: Sequence[LedgerEvent], as_known_at: datetime | None) -> str:
    first = min(events, key=lambda event: event.recorded_at)
    name = first.reference if isinstance(first, Referral.Received) else "the referral"
    when = iso(as_known_at) if as_known_at is not None else "now"
    return f"{name} was not in the ledger as known at {when} (first recorded at {iso(first.recorded_at)})"


# --- the owner question ------------------------------------------------------------------


@dataclass(frozen=True)
class OwnerAnswer:
    """Who owned the referral at ``at``, who held it, and what else an investigator must see."""

    reference: str
    at: datetime
    as_known_at: datetime | None
    status: str
    closed_at: datetime | None
    #: the running ownership interval (``start`` is "since"); None when nobody owned it.
    owner: Interval | None
    custodian: Interval
    open_offer: Offer | None
    #: start of the running gap; None when owned or closed.
    unowned_since: datetime | None
    disputed_claims: tuple[DisputedClaim, ...]

    @property
    def unowned_for(self) -> timedelta | None:
        return None if self.unowned_since is None else self.at - self.unowned_since


def owner_at(events: Sequence[LedgerEvent], at: datetime, as_known_at: datetime | None = None) -> OwnerAnswer:
    """Who owned the referral at ``at``, from the events recorded by ``as_known_at`` (all if None).

    Read off the intervals of the history up to ``at``: the ownership interval, custody
    interval and gap that contain ``at``.
    """
    history = ownership_history(events, as_known_at=as_known_at, until=at)
    custodian = history.custody_at(at)
    if custodian is None:  # a referral has a custodian from its receipt on
        raise InvalidInput(f"{history.reference} was received at {iso(history.received_at)}; {iso(at)} is before that")
    gap = history.gap_at(at)
    return OwnerAnswer(
        reference=history.reference,
        at=at,
        as_known_at=as_known_at,
        status=history.status,
        closed_at=history.closed_at,
        owner=history.ownership_at(at),
        custodian=custodian,
        open_offer=history.open_offer,
        unowned_since=None if gap is None else gap.start,
        disputed_claims=history.claims_at(at),
    )


# --- documents (the JSON answers) ----------------------------------------------------------


def _time(instant: datetime | None) -> str | None:
    return None if instant is None else iso(instant)


def claim_document(claim: DisputedClaim) -> dict[str, Any]:
    return {
        "claim": dict(claim.claim),
        "occurred_at": iso(claim.occurred_at),
        "recorded_at": iso(claim.recorded_at),
        "by": dict(claim.by),
        "version": claim.version,
        "line": claim.line,
    }


def offer_document(offer: Offer | None) -> dict[str, Any] | None:
    if offer is None:
        return None
    return {
        "to_unit": offer.to_unit,
        "offered_at": iso(offer.offered_at),
        "reply_due": _time(offer.reply_due),
        "offered_by": dict(offer.offered_by),
    }


def answer_document(answer: OwnerAnswer) -> dict[str, Any]:
    """The ``owner --json`` answer."""
    owner = answer.owner
    unowned_for = answer.unowned_for
    return {
        "referral": answer.reference,
        "at": iso(answer.at),
        "as_known_at": _time(answer.as_known_at),
        "status": answer.status,
        "closed_at": _time(answer.closed_at),
        "owner": None if owner is None else {"unit": owner.unit, "person": owner.person, "since": iso(owner.start)},
        "custodian": {"unit": answer.custodian.unit, "since": iso(answer.custodian.start)},
        "open_offer": offer_document(answer.open_offer),
        "unowned_since": _time(answer.unowned_since),
        "unowned_days": None if unowned_for is None else days(unowned_for),
        "disputed_claims": [claim_document(claim) for claim in answer.disputed_claims],
    }


def event_ref(event: LedgerEvent | None) -> dict[str, Any] | None:
    """How an answer points at an event: its stream version, type and import line."""
    if event is None:
        return None
    return {"version": event.originator_version, "type": event_type(event), "line": source_line(event), "login": event.inserted_by}


def history_document(history: OwnershipHistory, events: Sequence[LedgerEvent], now: datetime) -> dict[str, Any]:
    """The ``history --json`` answer; running intervals are measured up to ``now``."""
    by_version = {event.originator_version: event for event in events}

    def ref(version: int | None) -> dict[str, Any] | None:
        return event_ref(None if version is None else by_version.get(version))

    def span(start: datetime, end: datetime | None, opened_by: int, closed_by: int | None) -> dict[str, Any]:
        return {
            "start": iso(start),
            "end": _time(end),
            "days": days(max((end or now) - start, _ZERO)),
            "opened_by": ref(opened_by),
            "closed_by": ref(closed_by),
        }

    return {
        "referral": history.reference,
        "as_known_at": _time(history.as_known_at),
        "at": iso(now),
        "status": history.status,
        "received_at": iso(history.received_at),
        "closed_at": _time(history.closed_at),
        "ownership": [{"unit": i.unit, "person": i.person, **span(i.start, i.end, i.opened_by, i.closed_by)} for i in history.ownership],
        "gaps": [span(g.start, g.end, g.opened_by, g.closed_by) for g in history.gaps],
        "custody": [{"unit": i.unit, **span(i.start, i.end, i.opened_by, i.closed_by)} for i in history.custody],
        "open_offer": offer_document(history.open_offer),
        "disputed_claims": [claim_document(claim) for claim in history.disputed_claims],
        "superseded": [{"event": ref(s.version), "rule": s.rule, "reason": s.reason} for s in history.superseded],
        "totals": {
            "open_days": days(history.open_time(now)),
            "owned_days": days(history.owned_time(now)),
            "unowned_days": days(history.unowned_time(now)),
        },
    }

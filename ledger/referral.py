"""The Referral aggregate: one intake item, its events, and the rules of ownership and custody.

``ReferralState`` is the one place where the ownership and custody rules live. The aggregate
uses it to judge a new event at its ``occurred_at`` against everything recorded before it;
the read side folds the same state over a referral's events to answer "who owned it when".
Who may record what is ``ledger.authority``: a live entry carries the rules it is judged by.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from datetime import datetime
from types import UnionType
from typing import TYPE_CHECKING, Any, ClassVar, Union, get_args, get_origin, get_type_hints
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger import authority, knowledge
from ledger.canonical import GENESIS, event_hash
from ledger.errors import InvalidInput, RuleViolation
from ledger.values import DECISION_OUTCOMES, FUTURE_SKEW, LATE_AFTER, RISK_BANDS, Entry, iso, parse_instant

OPEN = "open"
CLOSED = "closed"


class LedgerEvent(Aggregate.Event):
    """Fields every ledger event carries: business time, actor, provenance, chain link.

    ``timestamp`` (from the library) is when this ledger took the event in. ``recorded_at``
    is that, unless a historical import carried the source system's recording time.
    """

    occurred_at: datetime
    actor: dict[str, str]
    late_reason: str | None
    source_recorded_at: datetime | None
    source: dict[str, Any] | None
    prev_hash: str
    #: the login that inserted it (absent on events recorded before logins were kept)
    inserted_by: str | None = dataclass_field(default=None, kw_only=True)

    TOPIC: ClassVar[str]

    @property
    def recorded_at(self) -> datetime:
        return self.source_recorded_at or self.timestamp

    @property
    def actor_unit(self) -> str:
        return self.actor["unit"]

    def apply(self, aggregate: Any) -> None:
        aggregate.remember(self)


#: fields that say when something is due: each must lie after the event that states it.
DUE_FIELDS = ("reply_due", "decision_due", "revisit_by", "next_review_by")


def refuse_due_at_or_before(name: str, occurred_at: datetime, fields: dict[str, Any]) -> None:
    """Rule ``due-after-event``: a due time at or before the event itself cannot be meant."""
    for field in DUE_FIELDS:
        due = fields.get(field)
        if isinstance(due, datetime) and due <= occurred_at:
            raise RuleViolation(
                "due-after-event",
                f"{name}: {field} {iso(due)} is at or before the event itself ({iso(occurred_at)}); a due time must be later",
            )


class Amendable:
    """Corrections, retractions and attestations of an earlier entry of the same stream.

    Each is a new event naming the entry by its stream version; the entry itself is never
    touched (``ledger.knowledge`` decides what folds read). Who may amend is one rule here:
    the entry's own actor (same person) or a supervisory role; an attestation needs a
    supervisory role. A historical import records what the source says even when that rule
    is not met; ``audit corrections`` reports it.
    """

    history: list[LedgerEvent]
    Corrected: ClassVar[type[LedgerEvent]]
    Retracted: ClassVar[type[LedgerEvent]]
    Attested: ClassVar[type[LedgerEvent]]

    if TYPE_CHECKING:  # provided by the aggregate (Referral, Subject) it is mixed into

        def stream_name(self) -> str: ...

        def head_hash(self) -> str: ...

        def sealing_reference(self) -> str: ...

        def trigger_event(self, event_class: Any, **kwargs: Any) -> None: ...

    def correct(self, entry: Entry, version: int, fields: dict[str, Any], reason: str, supervisory_roles: Sequence[str]) -> None:
        target = self._amendable(entry, version, supervisory_roles)
        if not fields:
            raise InvalidInput(f"{self.stream_name()}: say which fields the correction supersedes (--field NAME=VALUE)")
        hints = correctable_fields(type(target))
        values: dict[str, Any] = {}
        for name, value in fields.items():
            if name not in hints:
                allowed = ", ".join(sorted(hints)) or "none"
                raise RuleViolation(
                    "correctable-fields", f"{self.stream_name()}: version {version} has no correctable field {name!r} (it has: {allowed})"
                )
            values[name] = _coerce(name, hints[name], value)
        merged = {name: getattr(target, name) for name in hints} | values
        refuse_due_at_or_before(self.stream_name(), target.occurred_at, merged)
        if isinstance(target, Referral.DecisionRecorded) and (merged["outcome"] == "DEFER") != (merged["revisit_by"] is not None):
            raise RuleViolation(
                "defer-needs-revisit", f"{self.stream_name()}: a DEFER decision, and only a DEFER, says when it is revisited"
            )
        self._amend(self.Corrected, entry, version, corrected=values, reason=reason)

    def retract(self, entry: Entry, version: int, reason: str, supervisory_roles: Sequence[str]) -> None:
        self._amendable(entry, version, supervisory_roles)
        if version == 1:
            raise RuleViolation(
                "first-entry-stays", f"{self.stream_name()}: the first entry (receipt or extraction) cannot be retracted; correct it"
            )
        self._amend(self.Retracted, entry, version, reason=reason)

    def attest(self, entry: Entry, version: int, statement: str, supervisory_roles: Sequence[str]) -> None:
        target = self._amendable(entry, version, (), attest=True)
        if entry.actor.role not in supervisory_roles and entry.source_recorded_at is None:
            raise RuleViolation(
                "attest-supervisory-role",
                f"{self.stream_name()}: only a supervisory role ({', '.join(supervisory_roles)}) attests, not {entry.actor.role}",
            )
        if target.recorded_at - target.occurred_at <= LATE_AFTER:
            raise RuleViolation(
                "attest-late-entries", f"{self.stream_name()}: version {version} was not recorded late; there is nothing to attest"
            )
        if any(knowledge.amendment_kind(e) == knowledge.ATTESTATION and getattr(e, "target_version") == version for e in self.history):  # noqa: B009
            raise RuleViolation("attested-once", f"{self.stream_name()}: version {version} is already attested")
        self._amend(self.Attested, entry, version, statement=statement)

    def _amendable(self, entry: Entry, version: int, supervisory_roles: Sequence[str], *, attest: bool = False) -> LedgerEvent:
        name = self.stream_name()
        check_clocks(name, entry, earliest=self.history[0].occurred_at, last_recorded=self.history[-1].recorded_at)
        if not 1 <= version <= len(self.history):
            raise RuleViolation("amend-known-entry", f"{name} has no version {version} (it has 1 to {len(self.history)})")
        target = self.history[version - 1]
        if knowledge.amendment_kind(target) is not None:
            raise RuleViolation("amend-known-entry", f"{name}: version {version} is itself a correction, retraction or attestation")
        if version not in {e.originator_version for e in knowledge.known(self.history)}:
            raise RuleViolation("retracted-entry", f"{name}: version {version} was retracted; it cannot be amended")
        if not attest and entry.source_recorded_at is None:
            by = target.actor
            if entry.actor.person != by["person"] and entry.actor.role not in supervisory_roles:
                raise RuleViolation(
                    "amend-authority",
                    f"{name}: only {by['person']} (who recorded version {version}) or a supervisory role "
                    f"({', '.join(supervisory_roles)}) may correct or retract it, not {entry.actor}",
                )
        return target

    def _amend(self, event_class: type[LedgerEvent], entry: Entry, version: int, **fields: Any) -> None:
        own = entry.sealed(self.sealing_reference(), fields)
        self.trigger_event(
            event_class, timestamp=entry.ingested_at, prev_hash=self.head_hash(), target_version=version, **entry_fields(entry), **own
        )


_COMMON_FIELDS: frozenset[str] = frozenset()


def correctable_fields(event_class: type[Any]) -> dict[str, Any]:
    """The fields an entry of ``event_class`` states itself (not its clocks, actor or chain link)."""
    global _COMMON_FIELDS
    if not _COMMON_FIELDS:
        _COMMON_FIELDS = frozenset(get_type_hints(LedgerEvent)) | {
            "originator_id",
            "originator_version",
            "originator_topic",
            "timestamp",
            "prev_hash",
            # what names the stream is not a statement that can be wrong
            "reference",
            "referral",
            "subject",
        }
    return {name: hint for name, hint in get_type_hints(event_class).items() if name not in _COMMON_FIELDS and name != "TOPIC"}


_CHOICES = {"risk_band": RISK_BANDS, "band": RISK_BANDS, "outcome": DECISION_OUTCOMES}


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """A corrected value as the field's type: typed JSON (an import line) or text (the command line)."""
    args = get_args(hint)
    optional = get_origin(hint) in (UnionType, Union) and type(None) in args
    base = next(a for a in args if a is not type(None)) if optional else hint
    if value is None or (optional and value == ""):
        if optional:
            return None
        raise InvalidInput(f"{name} cannot be empty")
    origin = get_origin(base) or base
    if origin in (list, dict) and isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [part.strip() for part in value.split(",") if part.strip()] if origin is list else value
    if origin is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise InvalidInput(f"{name} must be true or false")
        return value
    if origin is int:
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"{name} must be a whole number, 0 or more")
        return value
    if origin is datetime:
        return parse_instant(value if isinstance(value, str) else "", name)
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise InvalidInput(f"{name} must be a list of non-empty strings")
        return [v.strip() for v in value]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise InvalidInput(f"{name} must be a JSON object of strings")
        return dict(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} must be a non-empty string")
    text = value.strip()
    if name in _CHOICES and text not in _CHOICES[name]:
        raise InvalidInput(f"{name} must be one of {', '.join(_CHOICES[name])}")
    return text


class Referral(Amendable, Aggregate, created_event_name="Received"):
    """One intake item (a bulk foreign package, a single report), named by its reference."""

    TOPIC = "refledger:Referral"

    class Event(LedgerEvent):
        TOPIC = "refledger:Referral.Event"

    class Received(Event, Aggregate.Created):
        """The package arrived: who sent it, how, what it claims, and which unit holds it."""

        TOPIC = "refledger:Referral.Received"
        reference: str
        originator: str
        channel: str
        originator_reference: str | None
        claimed_subject_count: int | None
        grading: dict[str, str] | None
        handling_conditions: list[str]
        package_hash: str | None
        custodian_unit: str
        immediate_risk: bool

    Created = Received

    class Assessed(Event):
        """Initial assessment: risk band, immediate risk, grading, recommended lead unit."""

        TOPIC = "refledger:Referral.Assessed"
        risk_band: str
        immediate_risk: bool
        grading: dict[str, str] | None
        recommended_lead_unit: str | None
        rationale: str

    class OwnershipOffered(Event):
        """Ownership was offered to a unit; it passes only if that unit accepts."""

        TOPIC = "refledger:Referral.OwnershipOffered"
        to_unit: str
        reply_due: datetime | None

    class OwnershipAccepted(Event):
        """The offered unit accepted ownership (the actor's unit becomes owner)."""

        TOPIC = "refledger:Referral.OwnershipAccepted"
        reason: str | None

    class OwnershipDeclined(Event):
        """The offered unit declined; the current state (owner or none) stays."""

        TOPIC = "refledger:Referral.OwnershipDeclined"
        reason: str

    class OfferWithdrawn(Event):
        """The open offer was withdrawn before an answer."""

        TOPIC = "refledger:Referral.OfferWithdrawn"
        reason: str | None

    class OwnershipReleased(Event):
        """The owning unit gave ownership up; the referral is unowned from now."""

        TOPIC = "refledger:Referral.OwnershipReleased"
        reason: str

    class CustodyTransferred(Event):
        """The package physically moved to another unit (custody, not ownership)."""

        TOPIC = "refledger:Referral.CustodyTransferred"
        to_unit: str

    class EscalationRaised(Event):
        """An issue was put to a role for decision, optionally by a due time."""

        TOPIC = "refledger:Referral.EscalationRaised"
        to_role: str
        issue: str
        decision_due: datetime | None

    class DecisionRecorded(Event):
        """A decision (ASSIGN_OWNER, DEFER, REJECT, NO_FURTHER_ACTION, CLOSE) and why."""

        TOPIC = "refledger:Referral.DecisionRecorded"
        outcome: str
        rationale: str
        options_considered: list[str]
        revisit_by: datetime | None

    class ReviewRecorded(Event):
        """A supervisory review: progress, the owner confirmed (or "unowned"), next review."""

        TOPIC = "refledger:Referral.ReviewRecorded"
        progress: str
        owner_confirmed: str
        next_review_by: datetime | None

    class ExternalRequestReceived(Event):
        """Someone outside (e.g. the originating force) asked for an update."""

        TOPIC = "refledger:Referral.ExternalRequestReceived"
        requester: str
        summary: str

    class ExternalReplySent(Event):
        """A reply went out to an external requester."""

        TOPIC = "refledger:Referral.ExternalReplySent"
        reply_to: str

    class NoteAdded(Event):
        """A note; a ``claim`` in it (e.g. "U-X accepted") never changes ownership."""

        TOPIC = "refledger:Referral.NoteAdded"
        text: str
        claim: dict[str, str] | None

    class Closed(Event):
        """The referral was closed: ownership and every clock end."""

        TOPIC = "refledger:Referral.Closed"
        reason: str

    class Reopened(Event):
        """A closed referral was reopened; it starts unowned."""

        TOPIC = "refledger:Referral.Reopened"
        reason: str

    class EntryCorrected(Event):
        """Fields of an earlier entry (``target_version``) were wrong; these values supersede them."""

        TOPIC = "refledger:Referral.EntryCorrected"
        target_version: int
        corrected: dict[str, Any]
        reason: str

    class EntryRetracted(Event):
        """An earlier entry was made in error; folds ignore it from this recording on."""

        TOPIC = "refledger:Referral.EntryRetracted"
        target_version: int
        reason: str

    class EntryAttested(Event):
        """A supervisor attests a late entry: it is what happened, recorded late for the reason given."""

        TOPIC = "refledger:Referral.EntryAttested"
        target_version: int
        statement: str

    def __init__(self) -> None:
        self.history: list[LedgerEvent] = []
        self._state: ReferralState | None = None
        self._latest_occurred: datetime | None = None
        self._head_hash: tuple[int, str] | None = None

    # --- applying facts (replayed on every load: no checks here) -------------------------

    def remember(self, event: LedgerEvent) -> None:
        if not self.history:
            assert isinstance(event, Referral.Received)
            # asked for by every command: kept here, not read from the first event each time
            self._reference, self._received_at = event.reference, event.occurred_at
        self.history.append(event)
        if knowledge.amendment_kind(event) is not None:
            self._state = None  # what earlier entries say changed: recompute on demand
            return
        if self._latest_occurred is None or event.occurred_at >= self._latest_occurred:
            self._latest_occurred = event.occurred_at
            if isinstance(event, Referral.Received):
                self._state = ReferralState.received(event)
            elif self._state is not None:
                self._state.apply(event)
        else:
            self._state = None  # a back-dated event: recompute on demand

    # --- queries the commands use -----------------------------------------------------

    @property
    def reference(self) -> str:
        return self._reference

    @property
    def received_at(self) -> datetime:
        return self._received_at

    def stream_name(self) -> str:
        return self.reference

    def sealing_reference(self) -> str:
        return self.reference

    def state_at(self, instant: datetime) -> ReferralState:
        """The state at ``instant`` from everything recorded so far."""
        if self._latest_occurred is not None and instant >= self._latest_occurred:
            if self._state is None:
                self._state = fold_state(self.history)
            return self._state
        return fold_state(self.history, until=instant)

    def head_hash(self) -> str:
        if self._head_hash is None or self._head_hash[0] != self.version:
            self._head_hash = (self.version, event_hash(self.history[-1]))
        return self._head_hash[1]

    # --- commands -------------------------------------------------------------------

    @classmethod
    def receive(
        cls,
        entry: Entry,
        referral_id: UUID,
        reference: str,
        *,
        originator: str,
        channel: str,
        custodian_unit: str,
        originator_reference: str | None = None,
        claimed_subject_count: int | None = None,
        grading: dict[str, str] | None = None,
        handling_conditions: Sequence[str] = (),
        package_hash: str | None = None,
        immediate_risk: bool = False,
    ) -> Referral:
        check_clocks(reference, entry, earliest=None, last_recorded=None)
        return cls._create(
            cls.Received,
            id=referral_id,
            timestamp=entry.ingested_at,
            reference=reference,
            prev_hash=GENESIS,
            originator=originator,
            channel=channel,
            custodian_unit=custodian_unit,
            originator_reference=originator_reference,
            claimed_subject_count=claimed_subject_count,
            grading=grading,
            handling_conditions=list(handling_conditions),
            package_hash=package_hash,
            immediate_risk=immediate_risk,
            **entry_fields(entry),
        )

    def assess(self, entry: Entry, **fields: Any) -> None:
        self._record(self.Assessed, entry, **fields)

    def offer(self, entry: Entry, to_unit: str, reply_due: datetime | None) -> None:
        refuse_due_at_or_before(self.reference, entry.occurred_at, {"reply_due": reply_due})
        self._record(self.OwnershipOffered, entry, to_unit=to_unit, reply_due=reply_due)

    def accept(self, entry: Entry, reason: str | None) -> None:
        self._record(self.OwnershipAccepted, entry, reason=reason)

    def decline(self, entry: Entry, reason: str) -> None:
        self._record(self.OwnershipDeclined, entry, reason=reason)

    def withdraw_offer(self, entry: Entry, reason: str | None) -> None:
        self._record(self.OfferWithdrawn, entry, reason=reason)

    def release(self, entry: Entry, reason: str) -> None:
        self._record(self.OwnershipReleased, entry, reason=reason)

    def transfer_custody(self, entry: Entry, to_unit: str) -> None:
        self._record(self.CustodyTransferred, entry, to_unit=to_unit)

    def escalate(self, entry: Entry, to_role: str, issue: str, decision_due: datetime | None) -> None:
        refuse_due_at_or_before(self.reference, entry.occurred_at, {"decision_due": decision_due})
        self._record(self.EscalationRaised, entry, to_role=to_role, issue=issue, decision_due=decision_due)

    def decide(self, entry: Entry, **fields: Any) -> None:
        if fields["outcome"] == "DEFER" and fields.get("revisit_by") is None:
            raise RuleViolation(
                "defer-needs-revisit", f"{self.reference}: a DEFER decision must say when it will be revisited (revisit_by)"
            )
        if fields["outcome"] != "DEFER" and fields.get("revisit_by") is not None:
            raise RuleViolation("revisit-only-for-defer", f"{self.reference}: revisit_by belongs to DEFER decisions only")
        refuse_due_at_or_before(self.reference, entry.occurred_at, fields)
        self._record(self.DecisionRecorded, entry, **fields)

    def review(self, entry: Entry, progress: str, owner_confirmed: str, next_review_by: datetime | None) -> None:
        refuse_due_at_or_before(self.reference, entry.occurred_at, {"next_review_by": next_review_by})
        self._record(self.ReviewRecorded, entry, progress=progress, owner_confirmed=owner_confirmed, next_review_by=next_review_by)

    def receive_external_request(self, entry: Entry, requester: str, summary: str) -> None:
        self._record(self.ExternalRequestReceived, entry, requester=requester, summary=summary)

    def send_external_reply(self, entry: Entry, reply_to: str) -> None:
        self._record(self.ExternalReplySent, entry, reply_to=reply_to)

    def add_note(self, entry: Entry, text: str, claim: dict[str, str] | None) -> None:
        self._record(self.NoteAdded, entry, text=text, claim=claim)

    def close(self, entry: Entry, reason: str) -> None:
        self._record(self.Closed, entry, reason=reason)

    def reopen(self, entry: Entry, reason: str) -> None:
        self._record(self.Reopened, entry, reason=reason)

    def check_open_at(self, entry: Entry) -> ReferralState:
        """For events recorded on the referral's subjects: the referral must be open then (its state then)."""
        check_clocks(self.reference, entry, earliest=self.received_at, last_recorded=None)
        state = self.state_at(entry.occurred_at)
        if state.status == CLOSED:
            closed = iso(state.closed_at) if state.closed_at is not None else "an earlier time"
            raise RuleViolation("closed-referral", f"{self.reference} was closed at {closed}; reopen it first ({iso(entry.occurred_at)})")
        return state

    def _record(self, event_class: type[LedgerEvent], entry: Entry, **fields: Any) -> None:
        check_clocks(self.reference, entry, earliest=self.received_at, last_recorded=self.history[-1].recorded_at)
        state = self.state_at(entry.occurred_at)
        refusal = state.refusal(event_class, fields.get("to_unit"))
        if refusal is None and entry.authority is not None:
            refusal = entry.authority.breach(event_class.TOPIC, entry.actor, state)
        if refusal is not None:
            raise RuleViolation(refusal[0], f"{self.reference}: {refusal[1]} at {iso(entry.occurred_at)}")
        own = entry.sealed(self.reference, fields)
        self.trigger_event(event_class, timestamp=entry.ingested_at, prev_hash=self.head_hash(), **entry_fields(entry), **own)


def entry_fields(entry: Entry) -> dict[str, Any]:
    return {
        "occurred_at": entry.occurred_at,
        "actor": entry.actor.as_dict(),
        "late_reason": entry.late_reason,
        "source_recorded_at": entry.source_recorded_at,
        "source": entry.source,
        "inserted_by": entry.login,
    }


def check_clocks(name: str, entry: Entry, earliest: datetime | None, last_recorded: datetime | None) -> None:
    """The two-clock invariants every event must satisfy (docs/DOMAIN.md §3, §6)."""
    if entry.source_recorded_at is not None and entry.source_recorded_at > entry.ingested_at + FUTURE_SKEW:
        raise RuleViolation("not-in-future", f"{name}: recorded_at {iso(entry.source_recorded_at)} is in the future")
    if entry.occurred_at > entry.recorded_at + FUTURE_SKEW:
        raise RuleViolation(
            "not-in-future", f"{name}: occurred_at {iso(entry.occurred_at)} is after its recording time {iso(entry.recorded_at)}"
        )
    if earliest is not None and entry.occurred_at < earliest:
        raise RuleViolation("not-before-receipt", f"{name}: occurred_at {iso(entry.occurred_at)} is before receipt at {iso(earliest)}")
    if last_recorded is not None and entry.recorded_at < last_recorded:
        raise RuleViolation(
            "recording-order", f"{name}: recorded_at {iso(entry.recorded_at)} is before the previous recorded event ({iso(last_recorded)})"
        )
    if entry.recorded_at - entry.occurred_at > LATE_AFTER and not (entry.late_reason or "").strip():
        raise RuleViolation(
            "late-needs-reason", f"{name}: recorded more than 24 h after it occurred ({iso(entry.occurred_at)}); give a late reason"
        )


@dataclass(frozen=True)
class Offer:
    """An open offer of ownership."""

    to_unit: str
    offered_at: datetime
    reply_due: datetime | None
    offered_by: dict[str, str]


@dataclass
class ReferralState:
    """Ownership, custody and status at one instant; evolves one event at a time.

    ``refusal`` says why an event cannot happen in this state (the invariants), and
    ``apply`` skips such events, so a fold over a history whose late entries landed out of
    order stays well defined.
    """

    reference: str
    received_at: datetime
    custodian_unit: str
    custodian_since: datetime
    status: str = OPEN
    owner_unit: str | None = None
    owner_person: str | None = None
    owner_since: datetime | None = None
    unowned_since: datetime | None = None
    open_offer: Offer | None = None
    closed_at: datetime | None = None
    #: the roles the escalations still awaiting a decision were raised to (a DEFER keeps them open)
    escalated_to: tuple[str, ...] = ()

    @property
    def offered_unit(self) -> str | None:
        return None if self.open_offer is None else self.open_offer.to_unit

    @classmethod
    def received(cls, event: Referral.Received) -> ReferralState:
        return cls(
            reference=event.reference,
            received_at=event.occurred_at,
            custodian_unit=event.custodian_unit,
            custodian_since=event.occurred_at,
            unowned_since=event.occurred_at,
        )

    def copy(self) -> ReferralState:
        return replace(self)

    def refusal(self, kind: type[LedgerEvent], to_unit: str | None = None) -> tuple[str, str] | None:
        """(rule id, reason) if an event of ``kind`` is not allowed now (who may record it is
        ``ledger.authority``)."""
        if kind is Referral.Received:
            return ("received-once", "the referral was already received")
        if self.status == CLOSED:
            if kind in (Referral.Reopened, Referral.NoteAdded):
                return None
            closed = f" at {iso(self.closed_at)}" if self.closed_at is not None else ""
            return ("closed-referral", f"the referral was closed{closed}; only a reopening or a note can be recorded")
        if kind is Referral.Reopened:
            return ("reopen-closed-only", "the referral is not closed")
        if kind is Referral.OwnershipOffered:
            if self.open_offer is not None:
                return ("one-open-offer", f"an offer to {self.open_offer.to_unit} is still open; it must be answered or withdrawn first")
            if to_unit == self.owner_unit:
                return ("offer-to-other-unit", f"{to_unit} already owns the referral")
        elif kind in (Referral.OwnershipAccepted, Referral.OwnershipDeclined, Referral.OfferWithdrawn):
            if self.open_offer is None:
                return ("open-offer-required", "no offer of ownership was open")
        elif kind is Referral.OwnershipReleased and self.owner_unit is None:
            return ("owned-to-release", "nobody owned the referral")
        elif kind is Referral.CustodyTransferred and to_unit == self.custodian_unit:
            return ("custody-to-other-unit", f"{to_unit} already holds custody")
        return None

    def apply(self, event: LedgerEvent) -> bool:
        """Evolve by one event; False (and no change) if the event cannot apply here."""
        kind = type(event)
        if kind in _NO_EFFECT:  # most of a history: decisions, reviews, notes, requests
            if self.status != OPEN:
                return kind is Referral.NoteAdded
            if isinstance(event, Referral.EscalationRaised):
                self.escalated_to = (*self.escalated_to, event.to_role)
            elif isinstance(event, Referral.DecisionRecorded) and self.escalated_to and event.outcome != "DEFER":
                self.escalated_to = ()
            return True
        if self.refusal(kind, getattr(event, "to_unit", None)) is not None:
            return False
        # an answer, release or transfer by a unit its (fixed) authority rule does not allow
        # (only history can hold one, listed by `audit authority`) moves nothing
        if authority.fixed_breach(kind.TOPIC, event.actor_unit, self) is not None:
            return False
        at = event.occurred_at
        if isinstance(event, Referral.OwnershipOffered):
            self.open_offer = Offer(event.to_unit, at, event.reply_due, event.actor)
        elif isinstance(event, Referral.OwnershipAccepted):
            self.owner_unit, self.owner_person, self.owner_since = event.actor_unit, event.actor["person"], at
            self.unowned_since = None
            self.open_offer = None
        elif isinstance(event, Referral.OwnershipDeclined | Referral.OfferWithdrawn):
            self.open_offer = None
        elif isinstance(event, Referral.OwnershipReleased):
            self._unown(at)
        elif isinstance(event, Referral.CustodyTransferred):
            self.custodian_unit, self.custodian_since = event.to_unit, at
        elif isinstance(event, Referral.Closed):
            self._unown(at)
            self.unowned_since = None
            self.open_offer = None
            self.escalated_to = ()
            self.status, self.closed_at = CLOSED, at
        elif isinstance(event, Referral.Reopened):
            self.status, self.closed_at, self.unowned_since = OPEN, None, at
        return True

    def _unown(self, at: datetime) -> None:
        self.owner_unit = self.owner_person = self.owner_since = None
        self.unowned_since = at


#: events that change neither ownership, custody nor status (refused only on a closed referral)
_NO_EFFECT = frozenset(
    {
        Referral.Assessed,
        Referral.EscalationRaised,
        Referral.DecisionRecorded,
        Referral.ReviewRecorded,
        Referral.ExternalRequestReceived,
        Referral.ExternalReplySent,
        Referral.NoteAdded,
    }
)


def business_order(events: Iterable[LedgerEvent]) -> list[LedgerEvent]:
    """Events by ``occurred_at``, ties broken by recording order (stream version)."""
    return sorted(events, key=lambda e: (e.occurred_at, e.recorded_at, e.originator_version))


def fold_state(history: Sequence[LedgerEvent], until: datetime | None = None) -> ReferralState:
    """The state after every event of ``history`` that occurred at or before ``until``.

    ``history`` is read as known now (``ledger.knowledge.known``): corrected, retractions left out.
    """
    ordered = business_order(knowledge.known(history))
    first = ordered[0]
    assert isinstance(first, Referral.Received)
    state = ReferralState.received(first)
    for event in ordered[1:]:
        if until is not None and event.occurred_at > until:
            break
        state.apply(event)
    return state


knowledge.register(knowledge.CORRECTION, Referral.EntryCorrected)
knowledge.register(knowledge.RETRACTION, Referral.EntryRetracted)
knowledge.register(knowledge.ATTESTATION, Referral.EntryAttested)
Referral.Corrected, Referral.Retracted, Referral.Attested = Referral.EntryCorrected, Referral.EntryRetracted, Referral.EntryAttested

"""The Subject aggregate: one person of interest inside a referral, tracked to the forces.

A bulk referral names thousands of subjects; each is its own stream so that recording on
one never replays the others. Personal data is never held in clear text here: a subject is
a pseudonymous reference and a category.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, DomainEvent
from eventsourcing.utils import register_topic

from ledger import authority, knowledge
from ledger.canonical import GENESIS, event_hash
from ledger.errors import RuleViolation
from ledger.referral import Amendable, LedgerEvent, business_order, check_clocks, entry_fields
from ledger.values import Entry, iso

WITH_REFERRAL_OWNER = "with_referral_owner"
IN_TRANSIT = "in_transit"
WITH_FORCE = "with_force"
ACTIONED = "actioned"
CLOSED = "closed"
SUBJECT_STATES = (WITH_REFERRAL_OWNER, IN_TRANSIT, WITH_FORCE, ACTIONED, CLOSED)


class Subject(Amendable, Aggregate, created_event_name="Extracted"):
    """A person of interest inside a referral (pseudonymous reference and category)."""

    TOPIC = "refledger:Subject"

    class Event(LedgerEvent):
        TOPIC = "refledger:Subject.Event"

    class Extracted(Event, Aggregate.Created):
        """The subject was identified in the package: referral, pseudonymous ref, category."""

        TOPIC = "refledger:Subject.Extracted"
        referral: str
        subject: str
        category: str

    Created = Extracted

    class Triaged(Event):
        """Risk-assessed with a named tool and version: band, drivers, target force."""

        TOPIC = "refledger:Subject.Triaged"
        risk_tool: str
        risk_tool_version: str
        band: str
        drivers: list[str]
        target_force: str | None

    class Disseminated(Event):
        """Sent to a force: who authorised it, grading, consent reference."""

        TOPIC = "refledger:Subject.Disseminated"
        to_force: str
        authorised_by: str
        grading: dict[str, str] | None
        consent_reference: str | None

    class ForceAcknowledged(Event):
        """The force acknowledged the latest dissemination: the subject is with it."""

        TOPIC = "refledger:Subject.ForceAcknowledged"

    class ForceRejected(Event):
        """The force rejected the latest dissemination: back with the referral owner."""

        TOPIC = "refledger:Subject.ForceRejected"
        reason: str

    class ForceActionRecorded(Event):
        """The force acted on the latest dissemination (arrest, warrant, interview…)."""

        TOPIC = "refledger:Subject.ForceActionRecorded"
        action: str

    class Closed(Event):
        """The subject's handling ended (NFA, RETURNED_TO_ORIGINATOR, …) and why."""

        TOPIC = "refledger:Subject.Closed"
        outcome: str
        rationale: str

    class EntryCorrected(Event):
        """Fields of an earlier entry of this subject (``target_version``) are superseded."""

        TOPIC = "refledger:Subject.EntryCorrected"
        target_version: int
        corrected: dict[str, Any]
        reason: str

    class EntryRetracted(Event):
        """An earlier entry of this subject was made in error; folds ignore it from now on."""

        TOPIC = "refledger:Subject.EntryRetracted"
        target_version: int
        reason: str

    class EntryAttested(Event):
        """A supervisor attests a late entry of this subject."""

        TOPIC = "refledger:Subject.EntryAttested"
        target_version: int
        statement: str

    def __init__(self) -> None:
        self.history: list[LedgerEvent] = []
        self._head_hash: tuple[int, str] | None = None

    def remember(self, event: LedgerEvent) -> None:
        self.history.append(event)

    @property
    def name(self) -> str:
        first = self.history[0]
        assert isinstance(first, Subject.Extracted)
        return f"{first.referral}/{first.subject}"

    def stream_name(self) -> str:
        return self.name

    def sealing_reference(self) -> str:
        first = self.history[0]
        assert isinstance(first, Subject.Extracted)
        return first.referral

    def state_at(self, instant: datetime) -> SubjectState:
        return fold_subject(self.history, until=instant)

    def head_hash(self) -> str:
        if self._head_hash is None or self._head_hash[0] != self.version:
            self._head_hash = (self.version, event_hash(self.history[-1]))
        return self._head_hash[1]

    @classmethod
    def extract(cls, entry: Entry, subject_id: UUID, referral: str, subject: str, category: str) -> Subject:
        return cls._create(
            cls.Extracted,
            id=subject_id,
            timestamp=entry.ingested_at,
            prev_hash=GENESIS,
            referral=referral,
            subject=subject,
            category=category,
            **entry_fields(entry),
        )

    def triage(self, entry: Entry, **fields: Any) -> None:
        self._record(self.Triaged, entry, **fields)

    def disseminate(self, entry: Entry, **fields: Any) -> None:
        self._record(self.Disseminated, entry, **fields)

    def acknowledge(self, entry: Entry) -> None:
        self._record(self.ForceAcknowledged, entry)

    def reject(self, entry: Entry, reason: str) -> None:
        self._record(self.ForceRejected, entry, reason=reason)

    def record_action(self, entry: Entry, action: str) -> None:
        self._record(self.ForceActionRecorded, entry, action=action)

    def close(self, entry: Entry, outcome: str, rationale: str) -> None:
        self._record(self.Closed, entry, outcome=outcome, rationale=rationale)

    def _record(self, event_class: type[LedgerEvent], entry: Entry, **fields: Any) -> None:
        first = self.history[0]
        check_clocks(self.name, entry, earliest=first.occurred_at, last_recorded=self.history[-1].recorded_at)
        state = self.state_at(entry.occurred_at)
        refusal = state.refusal(event_class)
        judge = entry.authority
        if refusal is None and judge is not None and judge.referral is not None:
            refusal = judge.breach(event_class.TOPIC, entry.actor, judge.referral, state.force)
        if refusal is not None:
            raise RuleViolation(refusal[0], f"{self.name}: {refusal[1]} at {iso(entry.occurred_at)}")
        own = entry.sealed(self.sealing_reference(), fields)
        self.trigger_event(event_class, timestamp=entry.ingested_at, prev_hash=self.head_hash(), **entry_fields(entry), **own)


class SubjectListed(DomainEvent):
    """A subject was added to its referral's subject directory (an index, not a decision).

    The directory is one short stream per referral, written in the same transaction as the
    subject's first event, so the subjects of a referral are found without a scan. Its
    entries are hash-chained like every other stream (``prev_hash``: the previous entry's
    hash, GENESIS for the first), so a removed or changed entry shows in ``verify``.
    """

    TOPIC = "refledger:SubjectDirectory.SubjectListed"
    subject: str
    prev_hash: str
    inserted_by: str | None = field(default=None, kw_only=True)


register_topic(SubjectListed.TOPIC, SubjectListed)


def directory_id(reference: str) -> UUID:
    return uuid5(NAMESPACE_URL, "subject-directory/" + reference)


@dataclass
class SubjectState:
    """Where a subject is at one instant, and what its latest triage and dissemination were."""

    referral: str
    subject: str
    category: str
    extracted_at: datetime
    state: str = WITH_REFERRAL_OWNER
    band: str | None = None
    target_force: str | None = None
    force: str | None = None
    disseminated_at: datetime | None = None
    answered_at: datetime | None = None
    outcome: str | None = None

    def refusal(self, kind: type[LedgerEvent]) -> tuple[str, str] | None:
        """(rule id, reason) if an event of ``kind`` cannot happen in this state."""
        if kind is Subject.Extracted:
            return ("extracted-once", "the subject was already extracted")
        if self.state == CLOSED:
            return ("closed-subject", "the subject is closed")
        if kind is Subject.Disseminated and self.state == IN_TRANSIT:
            return ("answer-before-resend", f"it is in transit to {self.force}; record that force's acknowledgement or rejection first")
        if kind in (Subject.ForceAcknowledged, Subject.ForceRejected) and self.state != IN_TRANSIT:
            return ("dissemination-required", "it is not awaiting a force's answer (no unanswered dissemination)")
        if kind is Subject.ForceActionRecorded and self.state not in (WITH_FORCE, ACTIONED):
            # an action answers an acknowledged dissemination: record the acknowledgement first
            return ("acknowledgement-required", "no force has acknowledged it (not disseminated, awaiting an answer, or rejected)")
        return None

    def apply(self, event: LedgerEvent) -> bool:
        if self.refusal(type(event)) is not None:
            return False
        # an answer by someone not of the force it was sent to (only history can hold one,
        # listed by `audit authority`) moves nothing
        if self.force is not None and authority.fixed_breach(type(event).TOPIC, event.actor_unit, force=self.force) is not None:
            return False
        at = event.occurred_at
        if isinstance(event, Subject.Triaged):
            self.band, self.target_force = event.band, event.target_force
        elif isinstance(event, Subject.Disseminated):
            self.state, self.force, self.disseminated_at, self.answered_at = IN_TRANSIT, event.to_force, at, None
        elif isinstance(event, Subject.ForceAcknowledged):
            self.state, self.answered_at = WITH_FORCE, at
        elif isinstance(event, Subject.ForceRejected):
            self.state, self.answered_at = WITH_REFERRAL_OWNER, at
        elif isinstance(event, Subject.ForceActionRecorded):
            self.state = ACTIONED
        elif isinstance(event, Subject.Closed):
            self.state, self.outcome = CLOSED, event.outcome
        return True


def fold_subject(history: Sequence[LedgerEvent], until: datetime | None = None) -> SubjectState:
    """A subject's state after every event of ``history`` that occurred by ``until`` (as known now)."""
    ordered = business_order(knowledge.known(history))
    first = ordered[0]
    assert isinstance(first, Subject.Extracted)
    state = SubjectState(first.referral, first.subject, first.category, first.occurred_at)
    for event in ordered[1:]:
        if until is not None and event.occurred_at > until:
            break
        state.apply(event)
    return state


knowledge.register(knowledge.CORRECTION, Subject.EntryCorrected)
knowledge.register(knowledge.RETRACTION, Subject.EntryRetracted)
knowledge.register(knowledge.ATTESTATION, Subject.EntryAttested)
Subject.Corrected, Subject.Retracted, Subject.Attested = Subject.EntryCorrected, Subject.EntryRetracted, Subject.EntryAttested

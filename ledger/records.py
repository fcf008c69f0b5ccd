"""Records management of a referral: legal holds, retention review, disposal, consultations.

Each referral has two short streams of its own beside its referral stream, so that the
ownership, custody and obligations folds never see these events:

- its records file (``records_stream``): ``HoldPlaced``, ``HoldReleased``, ``Disposed``;
- its consultation log (``consultation_stream``): ``Consulted``, one per reading of its
  free text, when the policy asks for the log.

Both are chains of plain ledger events (no aggregate, like the migration stream), in the
Merkle tree like every other event. Their own fields are never sealed: a disposal must
still say who disposed of what, when and why after the referral's key is gone.

The rules, each in one function: ``review_due`` (when a referral's retention review falls),
``disposal_refusal`` (why it cannot be disposed of now).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.utils import register_topic

from ledger.canonical import GENESIS, event_hash
from ledger.referral import CLOSED, LedgerEvent, ReferralState, entry_fields
from ledger.values import Entry, iso


def records_stream(reference: str) -> UUID:
    return uuid5(NAMESPACE_URL, "records/" + reference)


def consultation_stream(reference: str) -> UUID:
    return uuid5(NAMESPACE_URL, "consultations/" + reference)


#: the topics of the records files and consultation logs (read models leave them out)
RECORDS_TOPIC_PREFIXES = ("refledger:Records.", "refledger:Consultation.")


class RecordsEvent(LedgerEvent):
    TOPIC = "refledger:Records.Event"
    reference: str


class HoldPlaced(RecordsEvent):
    """A legal hold: the referral may not be disposed of until it is released."""

    TOPIC = "refledger:Records.HoldPlaced"
    reason: str


class HoldReleased(RecordsEvent):
    """The hold in force was released."""

    TOPIC = "refledger:Records.HoldReleased"
    reason: str


class Disposed(RecordsEvent):
    """The referral's free text was disposed of: its data key was destroyed."""

    TOPIC = "refledger:Records.Disposed"
    reason: str
    key_id: str


class Consulted(LedgerEvent):
    """Someone read the referral's free text (what: timeline, show, report, export)."""

    TOPIC = "refledger:Consultation.Consulted"
    reference: str
    what: str


for _event_class in (RecordsEvent, HoldPlaced, HoldReleased, Disposed, Consulted):
    register_topic(_event_class.TOPIC, _event_class)


def next_event(events: Sequence[LedgerEvent], stream: UUID, event_class: type[LedgerEvent], entry: Entry, **fields: Any) -> LedgerEvent:
    """The next event of a records or consultation stream, chained to its last."""
    last = events[-1] if events else None
    return event_class(  # type: ignore[call-arg]  # the fields come from LedgerEvent
        originator_id=stream,
        originator_version=1 if last is None else last.originator_version + 1,
        timestamp=entry.ingested_at,
        prev_hash=GENESIS if last is None else event_hash(last),
        **entry_fields(entry),
        **fields,
    )


@dataclass(frozen=True)
class RecordsState:
    """What a referral's records file says now."""

    hold: HoldPlaced | None
    disposed: Disposed | None
    events: tuple[RecordsEvent, ...]

    @classmethod
    def of(cls, events: Iterable[Any]) -> RecordsState:
        hold: HoldPlaced | None = None
        disposed: Disposed | None = None
        mine = tuple(e for e in events if isinstance(e, RecordsEvent))
        for event in mine:
            if isinstance(event, HoldPlaced):
                hold = event
            elif isinstance(event, HoldReleased):
                hold = None
            elif isinstance(event, Disposed):
                disposed = event
        return cls(hold, disposed, mine)

    def disposal_note(self) -> str | None:
        """How a disposed referral's free text reads: "[disposed 2032-05-01 by …]"."""
        if self.disposed is None:
            return None
        by = self.disposed.actor
        return f"[disposed {self.disposed.occurred_at.astimezone(UTC).date().isoformat()} by {by['person']}:{by['role']}@{by['unit']}]"


def review_due(state: ReferralState, review_after_years: int) -> datetime | None:
    """The retention rule: a closed referral is reviewed ``review_after_years`` after its
    closure; an open one never (None)."""
    if state.status != CLOSED or state.closed_at is None:
        return None
    closed = state.closed_at
    try:
        return closed.replace(year=closed.year + review_after_years)
    except ValueError:  # 29 February
        return closed.replace(year=closed.year + review_after_years, day=28)


def hold_refusal(records: RecordsState, placing: bool) -> tuple[str, str] | None:
    if records.disposed is not None:
        return ("disposed-once", f"it was disposed of at {iso(records.disposed.occurred_at)}")
    if placing and records.hold is not None:
        return ("one-hold", f"a hold is already in force since {iso(records.hold.occurred_at)} ({records.hold.actor['person']})")
    if not placing and records.hold is None:
        return ("hold-in-force", "no hold is in force")
    return None


def disposal_refusal(state: ReferralState, records: RecordsState) -> tuple[str, str] | None:
    """(rule id, reason) why the referral cannot be disposed of now (None: it can).

    Only a closed referral, with no hold in force, once. Who may dispose is an authority rule
    (``authority-dispose`` in ``ledger.authority``).
    """
    if records.disposed is not None:
        return ("disposed-once", f"it was already disposed of at {iso(records.disposed.occurred_at)}")
    if state.status != CLOSED:
        return ("dispose-closed-only", "it is open; only a closed referral can be disposed of")
    if records.hold is not None:
        return ("dispose-not-on-hold", f"a hold is in force since {iso(records.hold.occurred_at)}: {records.hold.reason}")
    return None

"""The migration of a ledger: historical imports, recorded as events, and the rule that closes it.

``import --historical`` takes the source system's recording times (``recorded_at``) at its
word, so it can say what "the ledger knew" before the ledger existed. That is what a
migration is for, and also the one way to backdate. The rule (one place, ``migration_refusal``
and ``backfill_refusal``):

- history is imported only for referrals that are not in the ledger yet: all of a referral's
  history comes in one import, before anything is recorded on it;
- each historical import is itself an event of the migration stream (file hash, lines,
  referrals, who, when), chained and in the Merkle tree like every other event;
- the migration closes for good, explicitly (``refledger migration close``) or at the ledger's
  first live event; from then on ``--historical`` is refused.

The migration stream is one chain of plain ledger events (no aggregate: its two kinds of
event only ever append).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from eventsourcing.utils import register_topic

from ledger.canonical import GENESIS, event_hash
from ledger.referral import LedgerEvent
from ledger.values import Entry, iso

MIGRATION_STREAM = uuid5(NAMESPACE_URL, "migration")
MIGRATION_TOPIC_PREFIX = "refledger:Migration."
#: why a migration closed
CLOSED_BY_COMMAND = "closed by command"
CLOSED_BY_LIVE_EVENT = "first live event"


class MigrationEvent(LedgerEvent):
    TOPIC = "refledger:Migration.Event"


class HistoryImported(MigrationEvent):
    """A file of history was imported with the source system's recording times."""

    TOPIC = "refledger:Migration.HistoryImported"
    file_sha256: str
    lines: int
    referrals: int
    #: the source system's earliest and latest recorded_at in the file
    source_from: datetime | None
    source_to: datetime | None


class MigrationClosed(MigrationEvent):
    """No more history may be imported: from here on everything is recorded live."""

    TOPIC = "refledger:Migration.Closed"
    reason: str


for _event_class in (MigrationEvent, HistoryImported, MigrationClosed):
    register_topic(_event_class.TOPIC, _event_class)


@dataclass(frozen=True)
class MigrationState:
    """What the migration stream says: its imports and, once closed, when and why."""

    imports: tuple[HistoryImported, ...]
    closed: MigrationClosed | None
    last: LedgerEvent | None

    @classmethod
    def of(cls, events: Iterable[Any]) -> MigrationState:
        mine = [e for e in events if isinstance(e, MigrationEvent)]
        closed = next((e for e in mine if isinstance(e, MigrationClosed)), None)
        return cls(tuple(e for e in mine if isinstance(e, HistoryImported)), closed, mine[-1] if mine else None)

    @property
    def next_version(self) -> int:
        return 1 if self.last is None else self.last.originator_version + 1

    @property
    def ended_at(self) -> datetime | None:
        """When the ledger's own clock took over from the source systems' (None: still open)."""
        return None if self.closed is None else self.closed.timestamp

    def new_event(self, event_class: type[MigrationEvent], entry: Entry, **fields: Any) -> MigrationEvent:
        return event_class(  # type: ignore[call-arg]  # the fields come from LedgerEvent
            originator_id=MIGRATION_STREAM,
            originator_version=self.next_version,
            timestamp=entry.ingested_at,
            occurred_at=entry.ingested_at,
            actor=entry.actor.as_dict(),
            late_reason=None,
            source_recorded_at=None,
            source=None,
            inserted_by=entry.login,
            prev_hash=GENESIS if self.last is None else event_hash(self.last),
            **fields,
        )


def migration_refusal(state: MigrationState, has_events: bool) -> str | None:
    """Why ``import --historical`` is refused on this ledger now (None: allowed)."""
    if state.closed is not None:
        how = "explicitly" if state.closed.reason == CLOSED_BY_COMMAND else "by its first live event"
        return (
            f"the migration of this ledger was closed {how} at {iso(state.closed.timestamp)}; history can no longer be "
            "imported: record what happened live, with --at and --late-reason"
        )
    if has_events and not state.imports:
        return "this ledger already holds events recorded outside a migration, so its migration is over: record what happened live, with --at and --late-reason"
    return None


def backfill_refusal(reference: str, existing: Sequence[LedgerEvent]) -> str | None:
    """Why history cannot be imported for this referral (None: it is new to the ledger)."""
    if not existing:
        return None
    first = existing[0]
    return (
        f"{reference} is already in the ledger (since {iso(first.timestamp)}); a referral's history is imported once, "
        "in one file: record what happened since live, with --at and --late-reason"
    )


def source_clock_caveat(events: Sequence[LedgerEvent], as_known_at: datetime | None) -> str | None:
    """Said with an "as known at K" answer that counts migrated events: K rests on their clocks."""
    if as_known_at is None:
        return None
    migrated = [e for e in events if e.source_recorded_at is not None and e.source_recorded_at <= as_known_at]
    if not migrated:
        return None
    return (
        f"{len(migrated)} of the events it counts were migrated: what was known at {iso(as_known_at)} rests on the "
        "source system's recording times, not on this ledger's clock (refledger audit migrations)"
    )

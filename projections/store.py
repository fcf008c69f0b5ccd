"""Stored read models: portfolio tables in the ledger's own database, kept up by a batched catch-up.

Per-referral questions replay one referral through the pure folds. Portfolio questions (every
gap, everything overdue, the backlog per unit) read tables built by the **same folds**
(``projections.ownership``, ``projections.obligations``, ``projections.late_entries``), one
referral at a time, and stored as ``rm_*`` tables beside the events (the SQLite file, or the
PostgreSQL schema of the URL). ``rm_tracking`` holds the **position**: the log position
(SQLite rowid / PostgreSQL notification_id) of the last event folded into the tables. It is
written in the same transaction as the rows, so the tables never claim more than they hold.

Tables (times are whole microseconds since 1970-01-01 UTC, columns ``*_us``)
-----------------------------------------------------------------------------
- ``rm_tracking``: one row: position, table layout, policy version the rows were judged by.
- ``rm_streams``: stream id → referral (and subject): how a subject's event finds its referral.
- ``rm_referrals``: per referral, as known now: receipt, status, owner, custodian, counts.
- ``rm_intervals``: ownership (``owner``), custody (``custody``), open periods (``open``)
  and gaps (``gap``), from ``ownership_history``.
- ``rm_obligations``: every clock ``obligations_at`` starts, with its due instant and the
  event that satisfied it (``detail`` as JSON).
- ``rm_subjects``: when each subject was extracted and, if so, closed.
- ``rm_late_entries``: every entry recorded an hour or more after it occurred.
- ``rm_windows``: back-dating windows (below).
- ``rm_actors``: the actor index: every entry as known now (``known``: corrected values in
  place, retracted entries and amendments left out) by the person who recorded it, with its
  clocks, role and unit; the staff directory's own entries too (``referral`` NULL), so that
  ``refledger person`` lists everything an officer recorded without reading the log.

Catch-up
--------
``ReadModels.catch_up()`` reads the log after the position in pages of thousands
(``Ledger.notifications``), decodes each entry with the ledger's mapper, groups events by
referral (subject events through the stream → referral map, ``rm_streams``), re-folds each
touched referral from its **full** history and replaces that referral's rows. Directory
entries (``SubjectDirectory.SubjectListed``) repeat what ``Subject.Extracted`` says and are
skipped by topic; any other entry that is not a ledger event, or a ledger event on a stream
no receipt or extraction introduced, stops the catch-up with an error: nothing is dropped.

A round reads up to ``round_events`` entries (``ROUND_EVENTS``), folds each touched referral
once, and commits all its rows with the new position in one transaction. During one catch-up, histories stay
in memory, so a fresh build of a million events reads the log once and folds each referral
once per round. A referral seen before the round is re-read from its streams.

Never skipping an event: the position only moves to the id of an entry actually read, and
the next read asks for entries strictly after it. SQLite has one writer at a time, so
rowids are handed out in commit order (stored events are never deleted); PostgreSQL's
recorder inserts under an EXCLUSIVE table lock, so ids become visible in commit order and
an id below a committed one can never commit later. A rolled-back save
burns ids for good (a permanent gap), and "strictly after the last id read" steps over such
gaps without waiting for them or skipping a committed entry.

Two catch-ups at once (two commands, two machines) are safe: each round commits with a
compare-and-set on the position (and on the layout and policy versions); the loser rolls
back and starts again from the winner's position. On SQLite a round's commit holds the
database's write lock while it writes, which is why rounds are smaller there.

The tables are judged by one policy. A catch-up under another policy (``--policy``) empties
them and folds the log again, as ``rebuild`` does, so no answer mixes two rule sets.

Bitemporal answers from stored rows
-----------------------------------
Every stored interval and obligation keeps the occurred and recorded instants of the event
that started it and of the event that ended (satisfied) it. As known at K, a row counts if
its start was recorded by K, and its end only if that was recorded by K. This reproduces
the folds exactly when the events known at K are a prefix of the referral's business order
(everything that occurred before a known event is known too). A **back-dated** entry (one
recorded after an event that occurred at or after it) breaks that between its occurrence
and its recording: ``rm_windows`` keeps those stretches, and a query at an instant inside a
referral's window answers for that referral from the per-referral folds instead. So stored
answers equal the folds' answers at every instant, and the folds run only for the few
referrals with a back-dated entry in flight at that instant.
"""

from __future__ import annotations

import gc
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from types import MappingProxyType
from typing import Any, Final, NamedTuple
from uuid import UUID

import orjson
from eventsourcing.persistence import PersistenceError

from ledger.application import Ledger
from ledger.errors import LedgerError, NotFound
from ledger.knowledge import ATTESTATION, CORRECTION, RETRACTION, amendment_kind, known
from ledger.migration import MIGRATION_TOPIC_PREFIX
from ledger.policy import DEFAULT_POLICY, LATE_ENTRY_ATTESTATION, SUPERVISORY_REVIEW, Policy
from ledger.records import RECORDS_TOPIC_PREFIXES
from ledger.referral import OPEN, LedgerEvent, Referral, business_order
from ledger.staff import STAFF_TOPIC_PREFIXES
from ledger.storage import read_streams
from ledger.subject import Subject, SubjectListed, SubjectState
from ledger.values import FUTURE_SKEW, days, iso
from projections.backlog import OpenReferral
from projections.late_entries import Attestation, LateEntry, attestations, late_entry_of
from projections.obligations import DISCHARGED, OVERDUE, Obligation, judged_status, obligations_at
from projections.ownership import Gap, OpenPeriod, event_type, ownership_history, source_line

__all__ = [
    "LATE_FLOOR",
    "LAYOUT",
    "PAGE_SIZE",
    "ROUND_EVENTS",
    "TABLES",
    "ActorRow",
    "CatchUp",
    "GapRow",
    "HeldReferral",
    "ListedReferral",
    "OverdueRow",
    "ProjectionStopped",
    "ReadModels",
    "ReadModelsUnavailable",
    "ReferralRows",
    "StoreStatus",
    "WindowRow",
    "actor_row",
    "back_dating_windows",
    "cycles_missed",
    "from_us",
    "referral_rows",
    "subject_row",
    "to_us",
]

#: the layout of the rm_* tables and the meaning of their rows; a store built with another
#: layout is dropped and rebuilt on its next catch-up.
LAYOUT: Final = "5"

#: entries recorded at least this long after they occurred are kept in rm_late_entries; a
#: late-entry threshold below it is answered by reading the whole log.
LATE_FLOOR: Final = timedelta(hours=1)

#: log entries read per query while catching up.
PAGE_SIZE: Final = 10_000
#: log entries folded and committed per round (one transaction), per backend. A round's
#: commit holds SQLite's write lock (about 2.5 s for 250,000 entries), and recording
#: commands wait for it at most LOCK_TIMEOUT_SECONDS (10 s); PostgreSQL writers never wait
#: for it, so there a round is as large as memory comfortably allows (about 3 GB).
ROUND_EVENTS: Final[Mapping[str, int]] = MappingProxyType({"sqlite": 250_000, "postgres": 1_000_000})
#: a catch-up of this many entries refreshes PostgreSQL's statistics of the tables.
_ANALYZE_AFTER: Final = 50_000
#: events kept in memory between rounds of one catch-up before the histories are dropped.
CACHE_EVENTS: Final = 1_500_000

_TRACKING_NAME: Final = "ledger"
_DIRECTORY_TOPIC: Final = SubjectListed.TOPIC

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_DAY_US: Final = 86_400_000_000
#: stands for "no upper bound" in range filters (within int64, valid on both backends).
_NO_UPPER: Final = 2**62

OWNER, CUSTODY, OPEN_PERIOD, GAP = "owner", "custody", "open", "gap"


def to_us(instant: datetime) -> int:
    """An instant as whole microseconds since 1970-01-01 UTC (how the tables store time)."""
    return (instant - _EPOCH) // _MICROSECOND


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _us_or_none(instant: datetime | None) -> int | None:
    return None if instant is None else to_us(instant)


class ReadModelsUnavailable(LedgerError):
    """The ledger's storage cannot hold read-model tables (only SQLite and PostgreSQL can)."""


class ProjectionStopped(LedgerError):
    """The catch-up met an entry it cannot place; it stops rather than skip it."""


# --- the rows, one NamedTuple per table (field order = column order) ----------------------


class StreamRow(NamedTuple):
    stream_id: str
    referral: str
    subject: str | None


class ReferralRow(NamedTuple):
    referral: str
    stream_id: str
    received_us: int
    received_recorded_us: int
    status: str
    owner_unit: str | None
    custodian_unit: str
    subjects: int
    events: int
    last_recorded_us: int
    originator: str


class IntervalRow(NamedTuple):
    referral: str
    kind: str
    seq: int
    unit: str | None
    person: str | None
    start_us: int
    start_recorded_us: int
    end_us: int | None
    end_recorded_us: int | None
    opened_by: int
    closed_by: int | None


class ObligationRow(NamedTuple):
    referral: str
    seq: int
    rule: str
    subject: str | None
    started_us: int
    started_recorded_us: int
    started_by: int
    due_us: int
    satisfied_us: int | None
    satisfied_recorded_us: int | None
    satisfied_by: int | None
    band: str | None
    cadence_us: int | None
    detail: str
    #: 1: stopped without the thing being done, by its due instant (the fold's "discharged")
    discharged: int


class SubjectRow(NamedTuple):
    referral: str
    subject: str
    stream_id: str
    extracted_us: int
    extracted_recorded_us: int
    closed_us: int | None
    closed_recorded_us: int | None


class LateEntryRow(NamedTuple):
    stream_id: str
    version: int
    referral: str
    subject: str | None
    type: str
    occurred_us: int
    recorded_us: int
    late_reason: str | None
    #: who attested it (PERSON:ROLE@UNIT) and when that was recorded; None until attested
    attested_by: str | None
    attested_us: int | None


class ActorRow(NamedTuple):
    stream_id: str
    version: int
    person: str
    referral: str | None
    subject: str | None
    type: str
    role: str
    unit: str
    occurred_us: int
    recorded_us: int
    line: int | None


class WindowRow(NamedTuple):
    referral: str
    from_us: int
    until_us: int


@dataclass(frozen=True)
class _Table:
    name: str
    row: type[NamedTuple]
    types: tuple[str, ...]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.row._fields)

    def create(self, qualified: str) -> list[str]:
        columns = ", ".join(f"{name} {kind}" for name, kind in zip(self.columns, self.types, strict=True))
        statements = [f"CREATE TABLE IF NOT EXISTS {qualified} ({columns}, PRIMARY KEY ({', '.join(self.key)}))"]
        for number, index in enumerate(self.indexes, start=1):
            statements.append(f"CREATE INDEX IF NOT EXISTS {self.name}_i{number} ON {qualified} ({', '.join(index)})")
        return statements


_T, _N, _NN, _R = "TEXT", "BIGINT", "BIGINT NOT NULL", "DOUBLE PRECISION"
_TN = "TEXT NOT NULL"

STREAMS = _Table("rm_streams", StreamRow, (_TN, _TN, _T), ("stream_id",), (("referral",),))
REFERRALS = _Table("rm_referrals", ReferralRow, (_TN, _TN, _NN, _NN, _TN, _T, _TN, _NN, _NN, _NN, _TN), ("referral",))
# No index but the key: lookups "this referral's owner at T" must use it (an index on
# (kind, start_us) tempts SQLite's planner into scanning every owner interval per row).
INTERVALS = _Table("rm_intervals", IntervalRow, (_TN, _TN, _NN, _T, _T, _NN, _NN, _N, _N, _NN, _N), ("referral", "kind", "seq"))
# No index on due_us: "due before T" matches most rows for any T worth asking about, and a
# full scan of the table is five times faster than walking such an index.
OBLIGATIONS = _Table(
    "rm_obligations", ObligationRow, (_TN, _NN, _TN, _T, _NN, _NN, _NN, _NN, _N, _N, _N, _T, _N, _TN, _NN), ("referral", "seq")
)
SUBJECTS = _Table("rm_subjects", SubjectRow, (_TN, _TN, _TN, _NN, _NN, _N, _N), ("referral", "subject"))
LATE_ENTRIES = _Table(
    "rm_late_entries", LateEntryRow, (_TN, _NN, _TN, _T, _TN, _NN, _NN, _T, _T, _N), ("stream_id", "version"), (("referral",),)
)
WINDOWS = _Table("rm_windows", WindowRow, (_TN, _NN, _NN), ("referral", "from_us"), (("from_us",),))
ACTORS = _Table(
    "rm_actors",
    ActorRow,
    (_TN, _NN, _TN, _T, _T, _TN, _TN, _TN, _NN, _NN, _N),
    ("stream_id", "version"),
    (("person", "occurred_us"), ("referral",)),
)

#: every table of rows keyed by referral, in the order they are written.
_PER_REFERRAL: Final = (REFERRALS, INTERVALS, OBLIGATIONS, SUBJECTS, LATE_ENTRIES, WINDOWS, ACTORS)
#: every rm_* table but the tracking row, as ``projections status`` counts them.
TABLES: Final = (STREAMS, *_PER_REFERRAL)
_TRACKING_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS {table} (name TEXT PRIMARY KEY, position BIGINT NOT NULL, "
    "layout TEXT NOT NULL, policy TEXT NOT NULL, updated_at TEXT)"
)


# --- from events to rows (pure) -------------------------------------------------------------


@dataclass(frozen=True)
class ReferralRows:
    """Everything the tables hold about one referral, folded from its full history."""

    referral: ReferralRow
    intervals: list[IntervalRow]
    obligations: list[ObligationRow]
    subjects: list[SubjectRow]
    late_entries: list[LateEntryRow]
    windows: list[WindowRow]
    actors: list[ActorRow] = field(default_factory=list)


def referral_rows(
    referral_events: Sequence[LedgerEvent],
    subject_events: Mapping[str, Sequence[LedgerEvent]],
    policy: Policy = DEFAULT_POLICY,
) -> ReferralRows:
    """The rows of one referral: the folds run once over its whole history, as known now."""
    history = ownership_history(referral_events)
    reference = history.reference
    recorded = {event.originator_version: to_us(event.recorded_at) for event in referral_events}

    def ended(version: int | None) -> int | None:
        return None if version is None else recorded[version]

    intervals: list[IntervalRow] = []
    for kind, spans in ((OWNER, history.ownership), (CUSTODY, history.custody)):
        intervals.extend(
            IntervalRow(
                reference,
                kind,
                seq,
                span.unit,
                span.person,
                to_us(span.start),
                recorded[span.opened_by],
                _us_or_none(span.end),
                ended(span.closed_by),
                span.opened_by,
                span.closed_by,
            )
            for seq, span in enumerate(spans)
        )
    stretched: tuple[tuple[str, Sequence[OpenPeriod | Gap]], ...] = ((OPEN_PERIOD, history.open_periods), (GAP, history.gaps))
    for kind, stretches in stretched:
        intervals.extend(
            IntervalRow(
                reference,
                kind,
                seq,
                None,
                None,
                to_us(stretch.start),
                recorded[stretch.opened_by],
                _us_or_none(stretch.end),
                ended(stretch.closed_by),
                stretch.opened_by,
                stretch.closed_by,
            )
            for seq, stretch in enumerate(stretches)
        )

    every = [*referral_events, *(event for events in subject_events.values() for event in events)]
    last_recorded = max(event.recorded_at for event in every)
    latest = max(last_recorded, max(event.occurred_at for event in every))
    obligations = [
        ObligationRow(
            reference,
            seq,
            found.rule,
            found.subject,
            to_us(found.started_at),
            to_us(found.started_recorded_at),
            found.started_by,
            to_us(found.due),
            _us_or_none(found.satisfied_at),
            _us_or_none(found.satisfied_recorded_at),
            found.satisfied_by,
            found.band,
            _cadence_us(found.rule, found.band, policy),
            orjson.dumps(found.detail, option=orjson.OPT_SORT_KEYS).decode(),
            int(found.status == DISCHARGED),
        )
        for seq, found in enumerate(obligations_at(referral_events, subject_events, latest, policy=policy, as_known_now=True))
    ]
    owner = history.ownership[-1] if history.ownership and history.ownership[-1].end is None else None
    summary = ReferralRow(
        referral=reference,
        stream_id=str(referral_events[0].originator_id),
        received_us=to_us(history.received_at),
        received_recorded_us=_received_recorded_us(referral_events),
        status=history.status,
        owner_unit=None if owner is None else owner.unit,
        custodian_unit=history.custody[-1].unit,
        subjects=len(subject_events),
        events=len(every),
        last_recorded_us=to_us(last_recorded),
        originator=_receipt(referral_events).originator,
    )
    return ReferralRows(
        referral=summary,
        intervals=intervals,
        obligations=obligations,
        subjects=[row for subject, events in subject_events.items() if (row := subject_row(reference, subject, events)) is not None],
        late_entries=_late_entry_rows(reference, referral_events, subject_events),
        windows=_merged_windows(
            reference,
            [*back_dating_windows(reference, every), *amendment_windows(reference, [referral_events, *subject_events.values()])],
        ),
        actors=[
            actor
            for stream_subject, events in ((None, referral_events), *subject_events.items())
            for event in known(events)
            if (actor := actor_row(event, reference, stream_subject)) is not None
        ],
    )


def actor_row(event: LedgerEvent, referral: str | None, subject: str | None) -> ActorRow | None:
    """The actor index's row of one entry (None for an entry without a named person)."""
    actor = event.actor
    person = actor.get("person") if isinstance(actor, dict) else None
    if not person:
        return None
    return ActorRow(
        str(event.originator_id),
        event.originator_version,
        person,
        referral,
        subject,
        event_type(event),
        str(actor.get("role", "")),
        str(actor.get("unit", "")),
        to_us(event.occurred_at),
        to_us(event.recorded_at),
        source_line(event),
    )


def _receipt(referral_events: Sequence[LedgerEvent]) -> Referral.Received:
    for event in referral_events:
        if isinstance(event, Referral.Received):
            return event
    raise ProjectionStopped("a referral's stream has no receipt")


def _received_recorded_us(referral_events: Sequence[LedgerEvent]) -> int:
    return to_us(_receipt(referral_events).recorded_at)


def _cadence_us(rule: str, band: str | None, policy: Policy) -> int | None:
    # The exact cadence (the fold reports it rounded), so cycles missed come out as the fold's.
    if rule != SUPERVISORY_REVIEW:
        return None
    return _review_cadence_us(policy, band)


@lru_cache(maxsize=64)
def _review_cadence_us(policy: Policy, band: str | None) -> int:
    return policy.supervisory_review(band) // _MICROSECOND


def subject_row(referral: str, subject: str, events: Sequence[LedgerEvent]) -> SubjectRow | None:
    """When a subject was extracted and when (if ever) its closure applied; None if not extracted."""
    ordered = business_order(known(events))
    if not ordered or not isinstance(ordered[0], Subject.Extracted):
        return None
    first = ordered[0]
    state = SubjectState(first.referral, first.subject, first.category, first.occurred_at)
    closed: LedgerEvent | None = None
    for event in ordered[1:]:
        if state.apply(event) and isinstance(event, Subject.Closed):
            closed = event
            break
    return SubjectRow(
        referral,
        subject,
        str(first.originator_id),
        to_us(first.occurred_at),
        to_us(first.recorded_at),
        None if closed is None else to_us(closed.occurred_at),
        None if closed is None else to_us(closed.recorded_at),
    )


def _late_entry_rows(
    referral: str, referral_events: Sequence[LedgerEvent], subject_events: Mapping[str, Sequence[LedgerEvent]]
) -> list[LateEntryRow]:
    streams: list[tuple[str | None, Sequence[LedgerEvent]]] = [(None, referral_events), *subject_events.items()]
    rows: list[LateEntryRow] = []
    for subject, events in streams:
        late = [event for event in events if event.recorded_at - event.occurred_at >= LATE_FLOOR]
        attested = attestations(events) if late else {}
        for event in late:
            attestation = attested.get(event.originator_version)
            rows.append(
                LateEntryRow(
                    str(event.originator_id),
                    event.originator_version,
                    referral,
                    subject,
                    event_type(event),
                    to_us(event.occurred_at),
                    to_us(event.recorded_at),
                    event.late_reason,
                    None if attestation is None else attestation.by,
                    None if attestation is None else to_us(attestation.at),
                )
            )
    return rows


def back_dating_windows(referral: str, events: Iterable[LedgerEvent]) -> list[WindowRow]:
    """The stretches of time in which the referral's known events are not a business-order prefix.

    An event A recorded after some event B that occurred at or after A is back-dated: from
    B's occurrence (at the earliest A's occurrence minus the clock skew the ledger accepts)
    until A is recorded, a view "as known at" an instant in between holds B but not A. The
    stored rows cannot reproduce the folds there; outside every window they can.
    """
    by_recording = sorted(events, key=_recorded)
    if all(earlier.occurred_at < later.occurred_at for earlier, later in pairwise(by_recording)):
        return []  # recorded in business order, as almost every referral is
    spans: list[tuple[datetime, datetime]] = []
    latest_occurred: datetime | None = None
    index = 0
    while index < len(by_recording):
        # events recorded at the same instant become known together: judge them as a group
        end = index
        recorded = by_recording[index].recorded_at
        while end < len(by_recording) and by_recording[end].recorded_at == recorded:
            end += 1
        group = by_recording[index:end]
        if latest_occurred is not None:
            spans.extend((event.occurred_at - FUTURE_SKEW, recorded) for event in group if event.occurred_at <= latest_occurred)
        group_latest = max(event.occurred_at for event in group)
        latest_occurred = group_latest if latest_occurred is None else max(latest_occurred, group_latest)
        index = end
    return [WindowRow(referral, to_us(start), to_us(until)) for start, until in _merged(spans)]


def amendment_windows(referral: str, streams: Iterable[Sequence[LedgerEvent]]) -> list[WindowRow]:
    """From an amended entry's occurrence until its correction or retraction is recorded.

    The stored rows hold the corrected record (as known now); as known at an instant in such
    a stretch the original still counts, so answers there come from the folds.
    """
    spans: list[tuple[datetime, datetime]] = []
    for events in streams:
        by_version: dict[int, LedgerEvent] | None = None
        for event in events:
            if amendment_kind(event) in (CORRECTION, RETRACTION):
                if by_version is None:
                    by_version = {e.originator_version: e for e in events}
                target = by_version[getattr(event, "target_version")]  # noqa: B009
                spans.append((target.occurred_at - FUTURE_SKEW, event.recorded_at))
    return [WindowRow(referral, to_us(start), to_us(until)) for start, until in _merged(spans)]


def _merged_windows(referral: str, windows: list[WindowRow]) -> list[WindowRow]:
    if not windows:
        return windows
    spans = [(from_us(w.from_us), from_us(w.until_us)) for w in windows]
    return [WindowRow(referral, to_us(start), to_us(until)) for start, until in _merged(spans)]


def _recorded(event: LedgerEvent) -> datetime:
    return event.recorded_at


def _merged(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, until in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], until))
        else:
            merged.append((start, until))
    return merged


# --- answers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GapRow:
    """A stretch while a referral was open and unowned; ``end`` None: still running."""

    referral: str
    start: datetime
    end: datetime | None
    #: up to ``end``, or up to the instant asked about while it runs
    days: float

    def as_row(self) -> dict[str, Any]:
        return {
            "referral": self.referral,
            "start": iso(self.start),
            "end": None if self.end is None else iso(self.end),
            "days": self.days,
        }


@dataclass(frozen=True)
class OverdueRow:
    """An obligation open and overdue at the instant asked about, and who answered for it then."""

    referral: str
    subject: str | None
    rule: str
    started_at: datetime
    due: datetime
    days_overdue: float
    cycles_missed: int | None
    owner_unit: str | None
    custodian_unit: str | None

    def as_row(self) -> dict[str, Any]:
        return {
            "referral": self.referral,
            "subject": self.subject,
            "rule": self.rule,
            "started_at": iso(self.started_at),
            "due": iso(self.due),
            "days_overdue": self.days_overdue,
            "cycles_missed": self.cycles_missed,
            "owner_unit": self.owner_unit,
            "custodian_unit": self.custodian_unit,
        }


@dataclass(frozen=True)
class CatchUp:
    """What one catch-up (or rebuild) did."""

    position: int
    head: int
    #: log entries read (directory entries included)
    entries: int
    referrals_folded: int
    rounds: int
    seconds: float
    #: why the tables were emptied first, if they were (rebuild, layout or policy change)
    reset: str | None = None

    @property
    def entries_per_second(self) -> float:
        return self.entries / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class StoreStatus:
    position: int
    head: int
    layout: str | None
    policy: str | None
    tables: dict[str, int]

    @property
    def lag(self) -> int:
        return max(self.head - self.position, 0)

    def as_document(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "head": self.head,
            "lag": self.lag,
            "layout": self.layout,
            "policy": self.policy,
            "tables": dict(self.tables),
        }


# --- the store ------------------------------------------------------------------------------


class _PositionMoved(Exception):
    """Another catch-up committed first; this round is rolled back and redone from there."""


@dataclass(frozen=True)
class _Tracking:
    position: int
    layout: str
    policy: str


class _History:
    """One referral's events held in memory: its own stream and each subject's, in version order."""

    __slots__ = ("last", "referral", "size", "subjects")

    def __init__(self) -> None:
        self.referral: list[LedgerEvent] = []
        self.subjects: dict[str, list[LedgerEvent]] = {}
        self.last: dict[UUID, int] = {}
        self.size = 0

    def add(self, subject: str | None, event: LedgerEvent) -> None:
        stream = event.originator_id
        # the same event can come from the log and from a stream read: keep it once
        if event.originator_version <= self.last.get(stream, 0):
            return
        self.last[stream] = event.originator_version
        (self.referral if subject is None else self.subjects.setdefault(subject, [])).append(event)
        self.size += 1


@dataclass
class _Round:
    """Log entries (start, end] grouped by referral."""

    start: int
    end: int
    entries: int = 0
    touched: dict[str, list[tuple[str | None, LedgerEvent]]] = field(default_factory=dict)
    #: referrals whose receipt is in this round (nothing of them is stored yet)
    received: set[str] = field(default_factory=set)
    streams: list[StreamRow] = field(default_factory=list)
    #: the actor index's rows of the staff directory's entries read in this round
    staff_actors: list[ActorRow] = field(default_factory=list)


_PARAM = re.compile(r"(?<![:\w]):([a-z_]+)")


@dataclass(frozen=True)
class ListedReferral:
    """One row of ``refledger referrals``: a referral as known at the instant asked about."""

    referral: str
    originator: str
    status: str
    owner_unit: str | None
    custodian_unit: str
    received_at: datetime
    age_days: float
    days_unowned: float
    overdue: int

    @property
    def unowned(self) -> bool:
        return self.status == OPEN and self.owner_unit is None

    def as_row(self) -> dict[str, Any]:
        return {
            "referral": self.referral,
            "status": self.status,
            "owner_unit": self.owner_unit,
            "custodian_unit": self.custodian_unit,
            "originator": self.originator,
            "received_at": self.received_at,
            "age_days": self.age_days,
            "days_unowned": self.days_unowned,
            "overdue": self.overdue,
        }


class ReadModels:
    """The rm_* tables of one ledger: catch-up, rebuild, status and the portfolio queries.

    Every query catches up first, so an answer covers every event in the log when it was
    asked. ``policy`` is the rule set obligations are judged by; tables built under another
    policy are rebuilt on the next catch-up.
    """

    def __init__(self, ledger: Ledger, policy: Policy = DEFAULT_POLICY) -> None:
        self.ledger = ledger
        self.policy = policy
        recorder: Any = ledger.recorder
        # Judged by the library's datastore, not the recorder: storage may subclass the recorder.
        backend = _backend_of(getattr(recorder, "datastore", None))
        if backend is None:
            raise ReadModelsUnavailable("stored read models need a SQLite or PostgreSQL ledger")
        self.backend = backend
        self._prefix = f'"{recorder.datastore.schema}".' if backend == "postgres" else ""
        self._datastore: Any = recorder.datastore
        self._streams: dict[UUID, tuple[str, str | None]] = {}
        self._ready = False
        #: False when the ledger cannot be written and the tables live in a temporary store
        self.stored = True
        self._temporary: Any = None
        if backend == "sqlite" and _opened_read_only(recorder.datastore):
            self._use_temporary_store()

    def _use_temporary_store(self) -> None:
        """Keep the tables in a temporary SQLite file: the ledger itself cannot be written.

        The same catch-up fills them from the same log, so the answers are the same; they
        are thrown away when the process ends (a file, not memory: a big ledger's tables
        need not fit in memory).
        """
        import tempfile

        from eventsourcing.sqlite import SQLiteDatastore

        self._temporary = tempfile.TemporaryDirectory(prefix="refledger-rm-")
        self._datastore = SQLiteDatastore(f"{self._temporary.name}/read-models.sqlite")
        self.backend, self._prefix, self._ready, self.stored = "sqlite", "", False, False

    # --- plumbing ------------------------------------------------------------------------

    def _table(self, name: str) -> str:
        return self._prefix + name

    def _sql(self, text: str) -> str:
        """Write statements with ?-placeholders or :names; PostgreSQL's driver wants %s / %(name)s."""
        if self.backend == "sqlite":
            return text
        return _PARAM.sub(r"%(\1)s", text.replace("?", "%s"))

    @contextmanager
    def _transaction(self, *, commit: bool) -> Iterator[Any]:
        with self._datastore.transaction(commit=commit) as cursor:
            yield cursor

    def _select(self, text: str, params: Mapping[str, Any] | Sequence[Any] = ()) -> list[Any]:
        with self._transaction(commit=False) as cursor:
            cursor.execute(self._sql(text), params)
            return list(cursor.fetchall())

    def _insert(self, cursor: Any, table: _Table, rows: Sequence[NamedTuple]) -> None:
        if not rows:
            return
        columns = ", ".join(table.columns)
        if self.backend == "postgres":
            # COPY is an order of magnitude faster than INSERTs over a network round trip
            with cursor.copy(f"COPY {self._table(table.name)} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" for _ in table.columns)
        cursor.executemany(f"INSERT INTO {table.name} ({columns}) VALUES ({marks})", rows)

    def _delete_referrals(self, cursor: Any, table: _Table, referrals: Sequence[str]) -> None:
        if not referrals:
            return
        if self.backend == "postgres":
            cursor.execute(f"DELETE FROM {self._table(table.name)} WHERE referral = ANY(%s)", (list(referrals),))
        else:
            cursor.executemany(f"DELETE FROM {table.name} WHERE referral = ?", [(referral,) for referral in referrals])

    def _ensure_tables(self) -> None:
        if self._ready:
            return
        if not self._tracking_exists():
            try:
                self._create_tables()
            except PersistenceError:
                # PostgreSQL refuses a CREATE TABLE racing another one for the same name;
                # the other process has created them all (one transaction) by the time it does.
                if not self._tracking_exists():
                    raise
        tracking = self._read_tracking()
        if tracking.layout != LAYOUT:
            self._drop_tables()
            self._create_tables()
        self._ready = True

    def _tracking_exists(self) -> bool:
        if self.backend == "sqlite":
            return bool(self._select("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'rm_tracking'"))
        found = self._select("SELECT to_regclass(?) AS found", (self._table("rm_tracking"),))
        return found[0]["found"] is not None

    def _create_tables(self) -> None:
        statements = [_TRACKING_DDL.format(table=self._table("rm_tracking"))]
        for table in TABLES:
            statements.extend(table.create(self._table(table.name)))
        with self._transaction(commit=True) as cursor:
            for statement in statements:
                cursor.execute(statement)
            cursor.execute(
                self._sql(
                    f"INSERT INTO {self._table('rm_tracking')} (name, position, layout, policy, updated_at) "
                    "VALUES (:name, 0, :layout, :policy, :now) ON CONFLICT (name) DO NOTHING"
                ),
                {"name": _TRACKING_NAME, "layout": LAYOUT, "policy": self.policy.version, "now": iso(self.ledger.clock())},
            )

    def _drop_tables(self) -> None:
        with self._transaction(commit=True) as cursor:
            for table in TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {self._table(table.name)}")
            cursor.execute(f"DROP TABLE IF EXISTS {self._table('rm_tracking')}")

    def _read_tracking(self) -> _Tracking:
        rows = self._select(
            f"SELECT position, layout, policy FROM {self._table('rm_tracking')} WHERE name = :name", {"name": _TRACKING_NAME}
        )
        if not rows:
            return _Tracking(0, "", "")
        return _Tracking(int(rows[0]["position"]), str(rows[0]["layout"]), str(rows[0]["policy"]))

    def _reset(self, tracking: _Tracking) -> None:
        """Empty every table and set the position to 0, in one transaction (if nobody moved it)."""
        with self._transaction(commit=True) as cursor:
            self._claim(cursor, tracking, 0)
            if self.backend == "postgres":
                # TRUNCATE leaves no dead rows behind for the next scans to wade through
                cursor.execute(f"TRUNCATE {', '.join(self._table(table.name) for table in TABLES)}")
            else:
                for table in TABLES:
                    cursor.execute(f"DELETE FROM {self._table(table.name)}")

    def _claim(self, cursor: Any, tracking: _Tracking, position: int) -> None:
        """Compare-and-set the tracking row: move it to ``position`` only if it is still ``tracking``."""
        cursor.execute(
            self._sql(
                f"UPDATE {self._table('rm_tracking')} SET position = :new, layout = :layout, policy = :policy, updated_at = :now "
                "WHERE name = :name AND position = :old AND layout = :old_layout AND policy = :old_policy RETURNING position"
            ),
            {
                "new": position,
                "layout": LAYOUT,
                "policy": self.policy.version,
                "now": iso(self.ledger.clock()),
                "name": _TRACKING_NAME,
                "old": tracking.position,
                "old_layout": tracking.layout,
                "old_policy": tracking.policy,
            },
        )
        if cursor.fetchone() is None:
            raise _PositionMoved

    # --- catch-up -----------------------------------------------------------------------

    def catch_up(
        self,
        *,
        round_events: int | None = None,
        page_size: int = PAGE_SIZE,
        progress: Callable[[int, int], None] | None = None,
    ) -> CatchUp:
        """Fold every log entry after the position into the tables, up to the head seen at the start.

        ``progress(position, head)`` is called after each page read.
        """
        return self._run(None, round_events or ROUND_EVENTS[self.backend], page_size, progress)

    def rebuild(self, *, progress: Callable[[int, int], None] | None = None) -> CatchUp:
        """Empty the tables and fold the whole log again (the answer must be the same tables)."""
        return self._run("rebuild asked for", ROUND_EVENTS[self.backend], PAGE_SIZE, progress)

    def _run(self, reset: str | None, round_events: int, page_size: int, progress: Callable[[int, int], None] | None) -> CatchUp:
        # A catch-up allocates millions of short-lived, acyclic objects while holding
        # millions more; the cyclic collector would rescan the held ones again and again
        # (a third of the time on a fresh build). Reference counting frees everything here.
        collecting = gc.isenabled()
        gc.disable()
        try:
            try:
                return self._catch_up(reset, round_events, page_size, progress)
            except PersistenceError as error:
                if not self.stored or not _write_refused(error):
                    raise
                # a SELECT-only login (or a file that turned read-only): same answer, kept apart
                self._use_temporary_store()
                return self._catch_up(reset, ROUND_EVENTS[self.backend], page_size, progress)
        finally:
            if collecting:
                gc.enable()

    def _catch_up(self, reset: str | None, round_events: int, page_size: int, progress: Callable[[int, int], None] | None) -> CatchUp:
        began = time.perf_counter()
        self._ensure_tables()
        target = self.ledger.head()
        cache: dict[str, _History] = {}
        entries = folded = rounds = 0
        pending_reset, done_reset = reset, None
        while True:
            tracking = self._read_tracking()
            if pending_reset is None and tracking.policy != self.policy.version:
                pending_reset = f"the tables were built under policy {tracking.policy}"
            if pending_reset is not None:
                try:
                    self._reset(tracking)
                except _PositionMoved:
                    continue
                pending_reset, done_reset = None, pending_reset
                continue
            if tracking.position >= target:
                if entries >= _ANALYZE_AFTER:
                    self._analyze()
                return CatchUp(tracking.position, target, entries, folded, rounds, time.perf_counter() - began, done_reset)
            batch = self._read_round(tracking.position, round_events, page_size, target, progress)
            histories = self._histories(batch, cache)
            rows = [referral_rows(history.referral, history.subjects, self.policy) for history in histories.values()]
            try:
                self._commit_round(tracking, batch, rows)
            except _PositionMoved:
                continue  # someone else committed first: start again from their position
            entries += batch.entries
            folded += len(rows)
            rounds += 1
            if sum(history.size for history in cache.values()) > CACHE_EVENTS:
                cache.clear()

    def _analyze(self) -> None:
        """Fresh planner statistics after a big build: PostgreSQL plans the queries from them."""
        if self.backend != "postgres":
            return  # SQLite's plans for these queries come from the keys alone
        with self._transaction(commit=True) as cursor:
            for table in TABLES:
                cursor.execute(f"ANALYZE {self._table(table.name)}")

    def _read_round(self, after: int, limit: int, page_size: int, target: int, progress: Callable[[int, int], None] | None) -> _Round:
        batch = _Round(start=after, end=after)
        while batch.entries < limit and batch.end < target:
            page = self.ledger.notifications(batch.end, min(page_size, limit - batch.entries))
            if not page:
                break
            self._take_page(page, batch)
            if progress is not None:
                progress(batch.end, target)
        return batch

    def _take_page(self, page: Sequence[Any], batch: _Round) -> None:
        mapper = self.ledger.mapper
        decoded: list[tuple[int, LedgerEvent]] = []
        for notification in page:
            if notification.topic == _DIRECTORY_TOPIC:
                continue  # the directory repeats what Subject.Extracted says
            if notification.topic.startswith(STAFF_TOPIC_PREFIXES):
                # the staff directory is read from its own streams; only its actors are indexed
                staff_event = mapper.to_domain_event(notification)
                if isinstance(staff_event, LedgerEvent) and (row := actor_row(staff_event, None, None)) is not None:
                    batch.staff_actors.append(row)
                continue
            if notification.topic.startswith(MIGRATION_TOPIC_PREFIX):
                continue  # the migration's own record (`audit migrations` reads its stream)
            if notification.topic.startswith(RECORDS_TOPIC_PREFIXES):
                continue  # holds, disposals and consultations change no owner, gap or obligation
            event = mapper.to_domain_event(notification)
            if not isinstance(event, LedgerEvent):
                raise ProjectionStopped(
                    f"read models stopped at log position {notification.id}: {notification.topic} is not a ledger event they know"
                )
            decoded.append((notification.id, event))
            if isinstance(event, Referral.Received):
                self._introduce(batch, event.originator_id, event.reference, None)
                batch.received.add(event.reference)
            elif isinstance(event, Subject.Extracted):
                self._introduce(batch, event.originator_id, event.referral, event.subject)
        unknown = {event.originator_id for _, event in decoded if event.originator_id not in self._streams}
        if unknown:
            self._streams.update(self._stored_streams(unknown))
        for position, event in decoded:
            place = self._streams.get(event.originator_id)
            if place is None:
                raise ProjectionStopped(
                    f"read models stopped at log position {position}: stream {event.originator_id} was not introduced "
                    "by a receipt or a subject extraction"
                )
            referral, subject = place
            batch.touched.setdefault(referral, []).append((subject, event))
        batch.end = page[-1].id
        batch.entries += len(page)

    def _introduce(self, batch: _Round, stream: UUID, referral: str, subject: str | None) -> None:
        self._streams[stream] = (referral, subject)
        batch.streams.append(StreamRow(str(stream), referral, subject))

    def _stored_streams(self, streams: Iterable[UUID]) -> dict[UUID, tuple[str, str | None]]:
        found: dict[UUID, tuple[str, str | None]] = {}
        wanted = [str(stream) for stream in streams]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self._select(
                f"SELECT stream_id, referral, subject FROM {self._table('rm_streams')} WHERE stream_id IN ({marks})", chunk
            ):
                found[UUID(row["stream_id"])] = (row["referral"], row["subject"])
        return found

    def _histories(self, batch: _Round, cache: dict[str, _History]) -> dict[str, _History]:
        """The full history of every referral the round touched (from memory, else its streams)."""
        missing = [referral for referral in batch.touched if referral not in cache and referral not in batch.received]
        self._load_streams_of(missing)
        for referral, history in self._load_histories(missing).items():
            cache[referral] = history
        touched: dict[str, _History] = {}
        for referral, events in batch.touched.items():
            history = cache.setdefault(referral, _History())
            for subject, event in events:
                history.add(subject, event)
            touched[referral] = history
        return touched

    def _load_histories(self, referrals: Sequence[str]) -> dict[str, _History]:
        """Read the streams of referrals stored before this round (one query per few hundred streams)."""
        if not referrals:
            return {}
        wanted = set(referrals)
        members = [(stream, place) for stream, place in self._streams.items() if place[0] in wanted]
        # the referral's own stream first, so a history starts with its receipt
        members.sort(key=lambda member: member[1][1] is not None)
        events = read_streams(self.ledger, [stream for stream, _ in members])
        histories = {referral: _History() for referral in referrals}
        for stream, (referral, subject) in members:
            for event in events[stream]:
                if isinstance(event, LedgerEvent):
                    histories[referral].add(subject, event)
        return histories

    def _commit_round(self, tracking: _Tracking, batch: _Round, rows: Sequence[ReferralRows]) -> None:
        stored_before = [found.referral.referral for found in rows if found.referral.referral not in batch.received]
        by_table: dict[str, list[NamedTuple]] = {
            REFERRALS.name: [found.referral for found in rows],
            INTERVALS.name: [row for found in rows for row in found.intervals],
            OBLIGATIONS.name: [row for found in rows for row in found.obligations],
            SUBJECTS.name: [row for found in rows for row in found.subjects],
            LATE_ENTRIES.name: [row for found in rows for row in found.late_entries],
            WINDOWS.name: [row for found in rows for row in found.windows],
            ACTORS.name: [*batch.staff_actors, *(row for found in rows for row in found.actors)],
        }
        with self._transaction(commit=True) as cursor:
            self._claim(cursor, tracking, batch.end)
            for table in _PER_REFERRAL:
                self._delete_referrals(cursor, table, stored_before)
            self._insert(cursor, STREAMS, batch.streams)
            for table in _PER_REFERRAL:
                self._insert(cursor, table, by_table[table.name])

    def _load_streams_of(self, referrals: Iterable[str]) -> None:
        """Make sure the in-memory stream map knows every stored stream of these referrals."""
        wanted = sorted(set(referrals))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self._select(
                f"SELECT stream_id, referral, subject FROM {self._table('rm_streams')} WHERE referral IN ({marks})", chunk
            ):
                self._streams[UUID(row["stream_id"])] = (row["referral"], row["subject"])

    # --- status -------------------------------------------------------------------------

    def position(self) -> int:
        """The log position the tables hold everything up to (0 before the first catch-up)."""
        return self._read_tracking().position if self._tracking_exists() else 0

    def status(self) -> StoreStatus:
        """Position, head and row counts, without catching up (lag > 0 means work is pending)."""
        head = self.ledger.head()
        if not self._tracking_exists():
            return StoreStatus(0, head, None, None, {table.name: 0 for table in TABLES})
        tracking = self._read_tracking()
        counts = {table.name: int(self._select(f"SELECT COUNT(*) AS n FROM {self._table(table.name)}")[0]["n"]) for table in TABLES}
        return StoreStatus(tracking.position, head, tracking.layout, tracking.policy, counts)

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every rm_* table, sorted (to compare two stores)."""
        return {
            table.name: sorted(
                (tuple(row[column] for column in table.columns) for row in self._select(f"SELECT * FROM {self._table(table.name)}")),
                key=repr,
            )
            for table in TABLES
        }

    # --- queries ------------------------------------------------------------------------

    def windows(self) -> list[WindowRow]:
        """Every back-dating window: when a referral's answers come from its folds, not its rows."""
        rows = self._select(f"SELECT referral, from_us, until_us FROM {self._table('rm_windows')} ORDER BY referral, from_us")
        return [WindowRow(row["referral"], int(row["from_us"]), int(row["until_us"])) for row in rows]

    def back_dated_at(self, instant: datetime) -> set[str]:
        """Referrals with a back-dated entry in flight at ``instant``: answered from the folds there."""
        return self._ambiguous(instant)

    def _ambiguous(self, instant: datetime) -> set[str]:
        """Referrals with a back-dated entry in flight at ``instant``: answer those from the folds."""
        rows = self._select(
            f"SELECT DISTINCT referral FROM {self._table('rm_windows')} WHERE from_us <= :t AND until_us > :t", {"t": to_us(instant)}
        )
        return {row["referral"] for row in rows}

    def _fold_histories(self, referrals: set[str]) -> dict[str, _History]:
        """The full histories of a few referrals, read in bulk, for answering from the folds."""
        if not referrals:
            return {}
        self._load_streams_of(referrals)
        return self._load_histories(sorted(referrals))

    def gaps(
        self,
        *,
        now: datetime,
        as_known_at: datetime | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        min_days: float | None = None,
        exact: bool = True,
    ) -> list[GapRow]:
        """Every gap that overlaps [start, end], as known now or at ``as_known_at``.

        A running gap is measured up to ``now`` (or ``as_known_at``). ``exact=False`` answers
        from the stored rows alone, even inside back-dating windows (tests use it to show
        where the windows matter).
        """
        self.catch_up()
        until = as_known_at or now
        known = to_us(as_known_at) if as_known_at is not None else _NO_UPPER
        rows = self._select(
            f"SELECT referral, start_us, end_us, end_recorded_us FROM {self._table('rm_intervals')} "
            "WHERE kind = :kind AND start_recorded_us <= :known AND start_us <= :upper",
            {"kind": GAP, "known": known, "upper": to_us(end) if end is not None else _NO_UPPER},
        )
        skip = self._ambiguous(as_known_at) if as_known_at is not None and exact else set()
        found: list[tuple[str, datetime, datetime | None]] = []
        for row in rows:
            if row["referral"] in skip:
                continue
            ended = row["end_us"] if row["end_us"] is not None and row["end_recorded_us"] <= known else None
            found.append((row["referral"], from_us(row["start_us"]), None if ended is None else from_us(ended)))
        for referral, history in self._fold_histories(skip).items():
            try:
                folded = ownership_history(history.referral, as_known_at=as_known_at)
            except NotFound:
                continue  # not yet recorded at ``as_known_at``
            found.extend((referral, gap.start, gap.end) for gap in folded.gaps if end is None or gap.start <= end)
        answers = [
            GapRow(referral, gap_start, gap_end, days(max((gap_end or until) - gap_start, timedelta(0))))
            for referral, gap_start, gap_end in found
            if start is None or gap_end is None or gap_end > start
        ]
        if min_days is not None:
            answers = [gap for gap in answers if gap.days >= min_days]
        answers.sort(key=lambda gap: (gap.referral, gap.start))
        return answers

    def referrals_of_units(self, units: set[str], start: datetime | None, end: datetime | None) -> list[str]:
        """Referrals owned or held by one of ``units`` at some time in [start, end) (as known now)."""
        self.catch_up()
        if not units:
            return []
        names = {_name(i): unit for i, unit in enumerate(sorted(units))}
        rows = self._select(
            f"SELECT DISTINCT referral FROM {self._table('rm_intervals')} "
            f"WHERE kind IN ('{OWNER}', '{CUSTODY}') AND unit IN ({', '.join(':' + k for k in names)}) "
            "AND start_us < :upper AND (end_us IS NULL OR end_us > :lower)",
            {**names, "upper": to_us(end) if end is not None else _NO_UPPER, "lower": to_us(start) if start is not None else -_NO_UPPER},
        )
        return sorted(row["referral"] for row in rows)

    def recorded_by(
        self, person: str, *, start: datetime | None = None, end: datetime | None = None, as_known_at: datetime | None = None
    ) -> list[ActorRow]:
        """Every entry ``person`` recorded that occurred in [start, end), as known at K (now if None).

        From the actor index; a referral with a back-dated or amended entry in flight at K is
        read from its streams through ``known`` instead.
        """
        self.catch_up()
        lower = to_us(start) if start is not None else -_NO_UPPER
        upper = to_us(end) if end is not None else _NO_UPPER
        rows = self._select(
            f"SELECT {', '.join(ACTORS.columns)} FROM {self._table('rm_actors')} "
            "WHERE person = :person AND occurred_us >= :lower AND occurred_us < :upper AND recorded_us <= :known",
            {"person": person, "lower": lower, "upper": upper, "known": _known_us(as_known_at)},
        )
        skip = self._ambiguous(as_known_at) if as_known_at is not None else set()
        found = [ActorRow(*(row[column] for column in ACTORS.columns)) for row in rows]
        found = [row for row in found if row.referral is None or row.referral not in skip]
        for referral, history in self._fold_histories(skip).items():
            for subject, events in ((None, history.referral), *history.subjects.items()):
                found.extend(
                    row
                    for event in known(events, as_known_at)
                    if (row := actor_row(event, referral, subject)) is not None
                    and row.person == person
                    and lower <= row.occurred_us < upper
                )
        found.sort(key=lambda row: (row.occurred_us, row.referral or "", row.type, row.stream_id, row.version))
        return found

    def held_referrals(
        self, units: set[str], start: datetime | None, end: datetime | None, *, as_known_at: datetime | None, until: datetime
    ) -> list[HeldReferral]:
        """Referrals owned or held by one of ``units`` in [start, end): their owners, custodians,
        gaps and obligations as known at K (now if None), judged at ``until`` (the folds'
        ``ownership_history(..., until=until)`` and ``obligations_at(..., until, as_known_now=True)``
        over the events known at K). Inside a back-dating window at K, from the folds.
        """
        referrals = self.referrals_of_units(units, start, end)
        skip = (self._ambiguous(as_known_at) & set(referrals)) if as_known_at is not None else set()
        known_us, until_us = _known_us(as_known_at), to_us(until)
        spans: dict[str, dict[str, list[tuple[str | None, datetime, datetime | None]]]] = {}
        obligations: dict[str, list[Obligation]] = {}
        stored = [referral for referral in referrals if referral not in skip]
        for first in range(0, len(stored), 500):
            chunk = stored[first : first + 500]
            names = {_name(n): referral for n, referral in enumerate(chunk)}
            marks = ", ".join(":" + name for name in names)
            params = {**names, "until": until_us, "known": known_us}
            for row in self._select(
                f"SELECT referral, kind, seq, unit, start_us, end_us, end_recorded_us FROM {self._table('rm_intervals')} "
                f"WHERE referral IN ({marks}) AND kind IN ('{OWNER}', '{CUSTODY}', '{GAP}') "
                "AND start_us <= :until AND start_recorded_us <= :known ORDER BY referral, kind, seq",
                params,
            ):
                ended = row["end_us"] is not None and row["end_us"] <= until_us and row["end_recorded_us"] <= known_us
                spans.setdefault(row["referral"], {}).setdefault(row["kind"], []).append(
                    (row["unit"], from_us(row["start_us"]), from_us(row["end_us"]) if ended else None)
                )
            for row in self._select(
                "SELECT referral, seq, rule, subject, started_us, started_recorded_us, started_by, due_us, satisfied_us, "
                f"satisfied_recorded_us, satisfied_by, band, cadence_us, detail, discharged FROM {self._table('rm_obligations')} "
                f"WHERE referral IN ({marks}) AND started_us <= :until AND started_recorded_us <= :known ORDER BY referral, seq",
                params,
            ):
                obligations.setdefault(row["referral"], []).append(_obligation_at(row, until, until_us, known_us))
        found = [
            HeldReferral(
                referral,
                tuple(spans.get(referral, {}).get(OWNER, ())),
                tuple(spans.get(referral, {}).get(CUSTODY, ())),
                tuple((start, end) for _, start, end in spans.get(referral, {}).get(GAP, ())),
                tuple(obligations.get(referral, ())),
            )
            for referral in stored
            if referral in spans
        ]
        for referral, history in self._fold_histories(skip).items():
            held = _held_from_folds(referral, history, as_known_at, until, self.policy)
            if held is not None:
                found.append(held)
        found.sort(key=lambda held: held.referral)
        return found

    def _contains(self, alias: str, as_known_now: bool) -> str:
        """SQL: interval ``alias`` holds instant :t (as known at :t unless ``as_known_now``)."""
        if as_known_now:
            return f"{alias}.start_us <= :t AND ({alias}.end_us IS NULL OR {alias}.end_us > :t)"
        return (
            f"{alias}.start_us <= :t AND {alias}.start_recorded_us <= :t "
            f"AND ({alias}.end_us IS NULL OR {alias}.end_us > :t OR {alias}.end_recorded_us > :t)"
        )

    def _holders(self, base: str, as_known_now: bool) -> str:
        """SQL joins ``ow`` (owner) and ``cu`` (custody): the intervals of ``base``'s referral holding :t.

        At most one of each holds an instant (the intervals of one referral do not overlap, and
        as known at :t only the last one known is still open), so the joins add no rows.
        """
        intervals = self._table("rm_intervals")
        return "".join(
            f" LEFT JOIN {intervals} {alias} ON {alias}.referral = {base}.referral AND {alias}.kind = '{kind}' "
            f"AND {self._contains(alias, as_known_now)}"
            for alias, kind in (("ow", OWNER), ("cu", CUSTODY))
        )

    def overdue(
        self, at: datetime, *, as_known_now: bool = False, unit: str | None = None, rule: str | None = None, exact: bool = True
    ) -> list[OverdueRow]:
        """Obligations open and overdue at ``at`` (as known then, or now), with owner and custodian at ``at``.

        ``unit`` keeps the rows its unit answered for: it owned the referral, or held it while
        nobody owned it.
        """
        self.catch_up()
        skip = self._ambiguous(at) if exact and not as_known_now else set()
        found = self._overdue(at, as_known_now, rule, skip, self._fold_histories(skip))
        if unit is not None:
            found = [row for row in found if _answers_for(row.owner_unit, row.custodian_unit) == unit]
        return found

    def _overdue(
        self, at: datetime, as_known_now: bool, rule: str | None, skip: set[str], histories: Mapping[str, _History]
    ) -> list[OverdueRow]:
        known = "" if as_known_now else "AND o.started_recorded_us <= :t "
        satisfied = "o.satisfied_us > :t" if as_known_now else "o.satisfied_us > :t OR o.satisfied_recorded_us > :t"
        rows = self._select(
            "SELECT o.referral, o.subject, o.rule, o.started_us, o.due_us, o.cadence_us, ow.unit AS owner_unit, cu.unit AS custodian_unit "
            f"FROM {self._table('rm_obligations')} o{self._holders('o', as_known_now)} "
            f"WHERE o.due_us < :t AND o.started_us <= :t {known}"
            f"AND (o.satisfied_us IS NULL OR {satisfied})" + (" AND o.rule = :rule" if rule is not None else ""),
            {"t": to_us(at), "rule": rule},
        )
        found = [
            _overdue_row(row["referral"], row["subject"], row["rule"], row["started_us"], row["due_us"], row["cadence_us"], at, row)
            for row in rows
            if row["referral"] not in skip
        ]
        for referral, history in histories.items():
            found.extend(row for row in self._overdue_from_folds(referral, history, at) if rule is None or row.rule == rule)
        found.sort(key=lambda row: (row.due, row.referral, row.subject or "", row.rule))
        return found

    def _overdue_from_folds(self, referral: str, history: _History, at: datetime) -> list[OverdueRow]:
        owner, custodian = _holders_at(history.referral, at)
        return [
            OverdueRow(
                referral,
                found.subject,
                found.rule,
                found.started_at,
                found.due,
                days(at - found.due),
                found.cycles_missed,
                owner,
                custodian,
            )
            for found in obligations_at(history.referral, history.subjects, at, policy=self.policy)
            if found.status == OVERDUE
        ]

    def late_entries(self, *, min_lag: timedelta | None = None) -> list[LateEntry]:
        """Every entry recorded more than the late-entry threshold (or ``min_lag``) after it occurred."""
        threshold = self.policy.late_entry_threshold() if min_lag is None else min_lag
        attestation_after = self.policy.attestation_threshold()
        if threshold < LATE_FLOOR:
            return self._late_entries_from_log(threshold, attestation_after)
        self.catch_up()
        rows = self._select(
            "SELECT referral, subject, type, version, occurred_us, recorded_us, late_reason, attested_by, attested_us "
            f"FROM {self._table('rm_late_entries')} WHERE recorded_us - occurred_us > :threshold",
            {"threshold": threshold // _MICROSECOND},
        )
        due_after = self.policy.attestation_due_after() if self.policy.enabled(LATE_ENTRY_ATTESTATION) else None
        now = self.ledger.clock()
        found = []
        for row in rows:
            needs = (row["recorded_us"] - row["occurred_us"]) > attestation_after // _MICROSECOND
            attested = None if row["attested_by"] is None else Attestation(row["attested_by"], from_us(row["attested_us"]))
            recorded = from_us(row["recorded_us"])
            due = recorded + due_after if needs and due_after is not None else None
            found.append(
                LateEntry(
                    referral=row["referral"],
                    subject=row["subject"],
                    type=row["type"],
                    version=int(row["version"]),
                    occurred_at=from_us(row["occurred_us"]),
                    recorded_at=recorded,
                    late_reason=row["late_reason"],
                    needs_attestation=needs and attested is None,
                    attested=attested,
                    attestation_due=due,
                    attestation_overdue=due is not None and attested is None and due < now,
                )
            )
        found.sort(key=_late_order)
        return found

    def _late_entries_from_log(self, threshold: timedelta, attestation_after: timedelta) -> list[LateEntry]:
        # Shorter delays than LATE_FLOOR are not stored: read every entry of the log once.
        self.catch_up()
        late: list[LedgerEvent] = []
        attested: dict[tuple[UUID, int], Attestation] = {}
        position = 0
        while page := self.ledger.notifications(position, PAGE_SIZE):
            position = page[-1].id
            events = [self.ledger.mapper.to_domain_event(n) for n in page if n.topic != _DIRECTORY_TOPIC]
            for event in events:
                if not isinstance(event, LedgerEvent):
                    continue
                if event.recorded_at - event.occurred_at > threshold:
                    late.append(event)
                if amendment_kind(event) == ATTESTATION:
                    attested[event.originator_id, getattr(event, "target_version")] = Attestation.of(event)  # noqa: B009
        unknown = {event.originator_id for event in late if event.originator_id not in self._streams}
        if unknown:
            self._streams.update(self._stored_streams(unknown))
        due_after = self.policy.attestation_due_after() if self.policy.enabled(LATE_ENTRY_ATTESTATION) else None
        now = self.ledger.clock()
        found = [
            late_entry_of(
                event,
                *self._streams[event.originator_id],
                attestation_after,
                attested.get((event.originator_id, event.originator_version)),
                due_after=due_after,
                now=now,
            )
            for event in late
        ]
        found.sort(key=_late_order)
        return found

    def streams_with(self, topics: Iterable[str]) -> dict[UUID, tuple[str, str | None]]:
        """Every stream holding an entry of one of ``topics`` → (referral, subject), in log order.

        Reads the log's topics once, decoding nothing: for the audits that look for a kind
        of entry (corrections, reviews) anywhere in the ledger.
        """
        self.catch_up()
        wanted = set(topics)
        found: dict[UUID, None] = {}
        position = 0
        while page := self.ledger.notifications(position, PAGE_SIZE):
            position = page[-1].id
            found.update((UUID(str(n.originator_id)), None) for n in page if n.topic in wanted)
        unknown = {stream for stream in found if stream not in self._streams}
        if unknown:
            self._streams.update(self._stored_streams(unknown))
        return {stream: self._streams[stream] for stream in found}

    def backlog(self, at: datetime, *, as_known_now: bool = False, exact: bool = True) -> list[OpenReferral]:
        """Every referral open at ``at`` with its owner, custodian, open subjects and overdue counts.

        ``projections.backlog.backlog(referrals, at)`` groups them per unit.
        """
        self.catch_up()
        t = {"t": to_us(at)}
        open_rows = self._select(
            "SELECT p.referral, r.received_us, ow.unit AS owner_unit, cu.unit AS custodian_unit "
            f"FROM {self._table('rm_intervals')} p JOIN {self._table('rm_referrals')} r ON r.referral = p.referral"
            f"{self._holders('p', as_known_now)} WHERE p.kind = '{OPEN_PERIOD}' AND {self._contains('p', as_known_now)}",
            t,
        )
        subject_known = "" if as_known_now else "AND s.extracted_recorded_us <= :t "
        subject_closed = "s.closed_us > :t" if as_known_now else "s.closed_us > :t OR s.closed_recorded_us > :t"
        subject_rows = self._select(
            f"SELECT s.referral, COUNT(*) AS n FROM {self._table('rm_subjects')} s WHERE s.extracted_us <= :t {subject_known}"
            f"AND (s.closed_us IS NULL OR {subject_closed}) GROUP BY s.referral",
            t,
        )
        skip = self._ambiguous(at) if exact and not as_known_now else set()
        histories = self._fold_histories(skip)
        subjects = {row["referral"]: int(row["n"]) for row in subject_rows}
        overdue: dict[str, dict[str, int]] = {}
        for row in self._overdue(at, as_known_now, None, skip, histories):
            counts = overdue.setdefault(row.referral, {})
            counts[row.rule] = counts.get(row.rule, 0) + 1
        found = [
            OpenReferral(
                referral=row["referral"],
                received_at=from_us(row["received_us"]),
                owner_unit=row["owner_unit"],
                custodian_unit=row["custodian_unit"],
                open_subjects=subjects.get(row["referral"], 0),
                overdue=overdue.get(row["referral"], {}),
            )
            for row in open_rows
            if row["referral"] not in skip
        ]
        for referral, history in histories.items():
            exact_row = _open_from_folds(referral, history, at, overdue.get(referral, {}))
            if exact_row is not None:
                found.append(exact_row)
        found.sort(key=lambda item: item.referral)
        return found

    def referrals(self, at: datetime, *, exact: bool = True) -> list[ListedReferral]:
        """Every referral received by ``at``, as known at ``at``: status, holders, age, days unowned, overdue.

        Days unowned add up the gaps up to ``at`` (a running gap counts to ``at``); overdue
        counts the obligations open and overdue at ``at``, judged as ``audit overdue`` judges them.
        """
        self.catch_up()
        t = {"t": to_us(at)}
        base = self._select(
            f"SELECT referral, originator, received_us FROM {self._table('rm_referrals')} "
            "WHERE received_us <= :t AND received_recorded_us <= :t",
            t,
        )
        holding: dict[str, dict[str, str | None]] = {}
        for row in self._select(
            f"SELECT i.referral, i.kind, i.unit FROM {self._table('rm_intervals')} i "
            f"WHERE i.kind IN ('{OWNER}', '{CUSTODY}', '{OPEN_PERIOD}') AND {self._contains('i', False)}",
            t,
        ):
            holding.setdefault(row["referral"], {})[row["kind"]] = row["unit"]
        unowned_us: dict[str, int] = {}
        for row in self._select(
            f"SELECT referral, start_us, end_us, end_recorded_us FROM {self._table('rm_intervals')} "
            "WHERE kind = :kind AND start_us <= :t AND start_recorded_us <= :t",
            {**t, "kind": GAP},
        ):
            end = row["end_us"] if row["end_us"] is not None and row["end_recorded_us"] <= t["t"] else t["t"]
            unowned_us[row["referral"]] = unowned_us.get(row["referral"], 0) + max(min(end, t["t"]) - row["start_us"], 0)
        skip = self._ambiguous(at) if exact else set()
        histories = self._fold_histories(skip)
        overdue: dict[str, int] = {}
        for found in self._overdue(at, False, None, skip, histories):
            overdue[found.referral] = overdue.get(found.referral, 0) + 1
        listed = []
        for row in base:
            referral = row["referral"]
            if referral in skip:
                continue
            held = holding.get(referral, {})
            listed.append(
                ListedReferral(
                    referral=referral,
                    originator=row["originator"],
                    status=OPEN if OPEN_PERIOD in held else "closed",
                    owner_unit=held.get(OWNER),
                    custodian_unit=held.get(CUSTODY) or "",
                    received_at=from_us(row["received_us"]),
                    age_days=days(at - from_us(row["received_us"])),
                    days_unowned=days(unowned_us.get(referral, 0) * _MICROSECOND),
                    overdue=overdue.get(referral, 0),
                )
            )
        for referral, history in histories.items():
            try:
                folded = ownership_history(history.referral, as_known_at=at, until=at)
            except LedgerError:
                continue  # not yet received, or not yet recorded, at ``at``
            owner, custodian = folded.ownership_at(at), folded.custody_at(at)
            listed.append(
                ListedReferral(
                    referral=referral,
                    originator=_receipt(history.referral).originator,
                    status=folded.status,
                    owner_unit=None if owner is None else owner.unit,
                    custodian_unit="" if custodian is None else custodian.unit,
                    received_at=folded.received_at,
                    age_days=days(at - folded.received_at),
                    days_unowned=days(sum((gap.duration(at) for gap in folded.gaps), timedelta(0))),
                    overdue=overdue.get(referral, 0),
                )
            )
        listed.sort(key=lambda item: item.referral)
        return listed


@dataclass(frozen=True)
class HeldReferral:
    """Who owned and who held one referral, its gaps and its obligations (``ReadModels.held_referrals``)."""

    referral: str
    #: (unit, start, end): end None while it runs at the instant judged
    ownership: tuple[tuple[str | None, datetime, datetime | None], ...]
    custody: tuple[tuple[str | None, datetime, datetime | None], ...]
    gaps: tuple[tuple[datetime, datetime | None], ...]
    obligations: tuple[Obligation, ...]


def _name(number: int) -> str:
    """A query parameter's name for the ``number``-th value of a list (letters only: see ``_PARAM``)."""
    return "v_" + "_".join("abcdefghij"[int(digit)] for digit in str(number))


def _known_us(as_known_at: datetime | None) -> int:
    return to_us(as_known_at) if as_known_at is not None else _NO_UPPER


def _obligation_at(row: Any, until: datetime, until_us: int, known_us: int) -> Obligation:
    """A stored obligation as the fold judges it at ``until``, its end counted only if known by then."""
    ended = row["satisfied_us"] is not None and row["satisfied_us"] <= until_us and row["satisfied_recorded_us"] <= known_us
    due = from_us(row["due_us"])
    status, late = judged_status(due, from_us(row["satisfied_us"]) if ended else None, bool(row["discharged"]), until)
    detail = orjson.loads(row["detail"])
    if not ended:
        detail.pop("ended_by", None)
    cadence = row["cadence_us"]
    return Obligation(
        rule=row["rule"],
        referral=row["referral"],
        subject=row["subject"],
        started_at=from_us(row["started_us"]),
        started_by=int(row["started_by"]),
        started_recorded_at=from_us(row["started_recorded_us"]),
        due=due,
        satisfied_at=from_us(row["satisfied_us"]) if ended else None,
        satisfied_by=int(row["satisfied_by"]) if ended else None,
        satisfied_recorded_at=from_us(row["satisfied_recorded_us"]) if ended else None,
        status=status,
        days_late=late,
        band=row["band"],
        cadence_days=None if cadence is None else days(cadence * _MICROSECOND),
        cycles_missed=None if cadence is None or late is None else cycles_missed(late, cadence),
        detail=detail,
    )


def _held_from_folds(
    referral: str, history: _History, as_known_at: datetime | None, until: datetime, policy: Policy
) -> HeldReferral | None:
    events = known(history.referral, as_known_at)
    if not events:
        return None
    try:
        folded = ownership_history(events, until=until)
    except LedgerError:
        return None  # not yet received, as known at K
    subjects = {subject: known(stream, as_known_at) for subject, stream in history.subjects.items()}
    return HeldReferral(
        referral,
        tuple((o.unit, o.start, o.end) for o in folded.ownership),
        tuple((c.unit, c.start, c.end) for c in folded.custody),
        tuple((g.start, g.end) for g in folded.gaps),
        tuple(obligations_at(events, subjects, until, policy=policy, as_known_now=True)),
    )


def _open_from_folds(referral: str, history: _History, at: datetime, overdue: Mapping[str, int]) -> OpenReferral | None:
    """The backlog facts of one referral at ``at`` as known then, from its folds."""
    try:
        folded = ownership_history(history.referral, as_known_at=at, until=at)
    except LedgerError:
        return None  # not yet received, or not yet recorded, at ``at``
    if folded.status != OPEN:
        return None
    owner, custodian = folded.ownership_at(at), folded.custody_at(at)
    open_subjects = 0
    for subject, events in history.subjects.items():
        row = subject_row(referral, subject, known(events, at))
        if row is not None and _subject_open(row, to_us(at)):
            open_subjects += 1
    return OpenReferral(
        referral=referral,
        received_at=folded.received_at,
        owner_unit=None if owner is None else owner.unit,
        custodian_unit="" if custodian is None else custodian.unit,
        open_subjects=open_subjects,
        overdue=dict(overdue),
    )


def _opened_read_only(datastore: Any) -> bool:
    """Whether the library's SQLite datastore was opened read-only (see ledger.storage)."""
    name = str(getattr(getattr(datastore, "pool", None), "db_name", ""))
    return name.startswith("file:") and ("mode=ro" in name or "immutable=1" in name)


#: how the databases word a refused write: SQLite's read-only file, PostgreSQL's missing privilege
_REFUSED_WRITE = ("readonly database", "read-only", "permission denied", "must be owner")


def _write_refused(error: BaseException) -> bool:
    text = str(error).lower()
    return any(words in text for words in _REFUSED_WRITE)


def _backend_of(datastore: object) -> str | None:
    """ "sqlite" or "postgres" for the library's datastores (and subclasses); None otherwise."""
    for kind in type(datastore).__mro__:
        if kind.__module__ == "eventsourcing.sqlite":
            return "sqlite"
        if kind.__module__ == "eventsourcing.postgres":
            return "postgres"
    return None


def _subject_open(row: SubjectRow, t: int) -> bool:
    # events recorded after ``t`` are already left out of ``row``
    return row.extracted_us <= t and (row.closed_us is None or row.closed_us > t)


def _holders_at(referral_events: Sequence[LedgerEvent], at: datetime) -> tuple[str | None, str | None]:
    """Owner and custodian units at ``at``, as known at ``at``."""
    try:
        history = ownership_history(referral_events, as_known_at=at, until=at)
    except LedgerError:
        return None, None  # not yet received, or not yet recorded, at ``at``
    owner, custodian = history.ownership_at(at), history.custody_at(at)
    return (None if owner is None else owner.unit), (None if custodian is None else custodian.unit)


def _overdue_row(
    referral: str, subject: str | None, rule: str, started_us: int, due_us: int, cadence_us: int | None, at: datetime, units: Any
) -> OverdueRow:
    due = from_us(due_us)
    late = days(at - due)
    return OverdueRow(
        referral,
        subject,
        rule,
        from_us(started_us),
        due,
        late,
        None if cadence_us is None else cycles_missed(late, cadence_us),
        units["owner_unit"],
        units["custodian_unit"],
    )


def cycles_missed(days_overdue: float, cadence_us: int) -> int:
    """Review cycles missed, counted as the obligations fold counts them (on the rounded days)."""
    return max(1, math.ceil(days_overdue / (cadence_us / _DAY_US) - 1e-9))


def _answers_for(owner_unit: str | None, custodian_unit: str | None) -> str | None:
    return owner_unit if owner_unit is not None else custodian_unit


def _late_order(entry: LateEntry) -> tuple[str, datetime, datetime, str, int]:
    return (entry.referral, entry.recorded_at, entry.occurred_at, entry.subject or "", entry.version)

"""The Ledger application: command methods (get → command → save), the clock, batching.

Commands take and return simple values (references, stamps, datetimes), never aggregates.
``batch()`` groups many commands into one atomic save: an import is all or nothing and is
not one transaction per event.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    EventSourcedLog,
    ProcessingEvent,
    project_aggregate,
)
from eventsourcing.domain import Aggregate, DomainEvent, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import IntegrityError, Mapper, Notification, PersistenceError, Recording, Transcoder

from ledger.authority import AGENCY_UNIT, Judge
from ledger.canonical import GENESIS, event_hash
from ledger.errors import InvalidInput, LedgerError, NotFound, RuleViolation
from ledger.identity import Signer, checked_public_key, key_refusal, os_login
from ledger.migration import CLOSED_BY_COMMAND, CLOSED_BY_LIVE_EVENT, MIGRATION_STREAM, HistoryImported, MigrationClosed, MigrationState
from ledger.policy import DEFAULT_POLICY, SUPERVISORY_ROLES, Policy
from ledger.records import (
    Consulted,
    Disposed,
    HoldPlaced,
    HoldReleased,
    RecordsState,
    consultation_stream,
    disposal_refusal,
    hold_refusal,
    next_event,
    records_stream,
)
from ledger.referral import Amendable, LedgerEvent, Referral, fold_state
from ledger.sealing import Seals
from ledger.staff import (
    DIRECTORY_STREAM,
    INDEX_STREAM,
    UNIT_KINDS,
    Person,
    PersonState,
    StaffDirectory,
    StaffListed,
    Unit,
    UnitState,
    actor_refusal,
    person_stream,
    unit_stream,
)
from ledger.subject import Subject, SubjectListed, directory_id
from ledger.transcoder import LedgerMapper, OrjsonTranscoder
from ledger.values import Actor, Entry, Stamp, iso, referral_id, subject_id, utcnow

A = TypeVar("A", bound=Aggregate)
L = TypeVar("L", bound=DomainEvent)
#: reads the events of many streams (each in version order) in one go: (application, stream ids) → events
StreamReader = Callable[[Application[UUID], Sequence[UUID]], dict[UUID, list[DomainEventProtocol[UUID]]]]
C = TypeVar("C", bound=Callable[..., Any])

#: a command beaten by another recording on the same stream is re-run, after a jittered,
#: growing pause, until this many seconds have passed since it began
RETRY_BUDGET_SECONDS = 5.0
#: the first pause, and the most any pause grows to (seconds)
RETRY_FIRST_PAUSE, RETRY_LONGEST_PAUSE = 0.005, 0.25


class ConcurrentUpdate(LedgerError):
    """Someone else recorded on the same referral at the same moment, repeatedly."""


def retried(command: C) -> C:
    """Re-run a command from a fresh read when another recording got there first.

    Each command reads its aggregate, judges the event against it and saves; on a version
    conflict nothing was saved, so running it again judges it against the newer history.
    Inside a batch the conflict is reported instead (the whole batch is refused).
    """

    @wraps(command)
    def run(self: Ledger, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + RETRY_BUDGET_SECONDS
        pause = RETRY_FIRST_PAUSE
        while True:
            if self._batch is None:
                self._live_entry = None
            try:
                return command(self, *args, **kwargs)
            except ConcurrentUpdate:
                if self._batch is not None or time.monotonic() >= deadline:
                    raise
            # "full jitter": writers that collided pick different moments to try again
            time.sleep(min(random.uniform(0, pause), max(deadline - time.monotonic(), 0)))
            pause = min(pause * 2, RETRY_LONGEST_PAUSE)

    return cast(C, run)


def _read_one_by_one(application: Application[UUID], stream_ids: Sequence[UUID]) -> dict[UUID, list[DomainEventProtocol[UUID]]]:
    return {i: list(application.events.get(i)) for i in stream_ids}


class _Loaded:
    """Inside a batch: the aggregates read or written so far, least recently written first.

    It counts the events their histories hold as they come and go, and notes which ones
    commands wrote since the last flush, so that a flush of a long import costs what it
    saves, not what the batch holds.
    """

    def __init__(self) -> None:
        self._aggregates: dict[UUID, Aggregate] = {}
        self._sizes: dict[UUID, int] = {}
        self._written: dict[UUID, Aggregate] = {}
        #: events held by the loaded histories
        self.held = 0

    def __contains__(self, aggregate_id: object) -> bool:
        return aggregate_id in self._aggregates

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        return self._aggregates.get(aggregate_id)

    def values(self) -> Iterable[Aggregate]:
        return self._aggregates.values()

    def read(self, aggregate: Aggregate) -> None:
        """An aggregate as read from the store."""
        self._aggregates[aggregate.id] = aggregate
        self._count(aggregate)

    def written(self, aggregate: Aggregate) -> None:
        """An aggregate a command changed (its new events are pending)."""
        self._aggregates[aggregate.id] = aggregate
        self._written[aggregate.id] = aggregate

    def take_written(self) -> list[Aggregate]:
        """The aggregates written since the last call, now the most recently written."""
        written = [aggregate for aggregate in self._written.values() if aggregate.pending_events]
        self._written = {}
        for aggregate in written:
            self._aggregates[aggregate.id] = self._aggregates.pop(aggregate.id)
            self._count(aggregate)
        return written

    def forget_beyond(self, keep_events: int) -> None:
        """Forget the least recently written aggregates until the rest hold ``keep_events``
        events at most (those with unsaved events stay)."""
        if self.held <= keep_events:
            return
        for aggregate_id in list(self._aggregates):
            if self._aggregates[aggregate_id].pending_events:
                continue
            del self._aggregates[aggregate_id]
            self._written.pop(aggregate_id, None)
            self.held -= self._sizes.pop(aggregate_id, 0)
            if self.held <= keep_events:
                break

    def _count(self, aggregate: Aggregate) -> None:
        size = len(getattr(aggregate, "history", ()))
        self.held += size - self._sizes.get(aggregate.id, 0)
        self._sizes[aggregate.id] = size


def _next_entry(last: DomainEventProtocol[UUID] | None) -> tuple[int, str]:
    """The version and predecessor hash of the entry after ``last`` in an index log."""
    return (1, GENESIS) if last is None else (last.originator_version + 1, event_hash(last))


class Ledger(Application[UUID]):
    """Records every action on referrals and their subjects as immutable events."""

    name = "Ledger"

    def __init__(
        self, env: dict[str, str] | None = None, clock: Callable[[], datetime] = utcnow, stream_reader: StreamReader | None = None
    ) -> None:
        super().__init__(env)
        self.clock = clock
        #: reads many streams at once; the wiring gives the database's bulk reader
        self._read_streams: StreamReader = stream_reader or _read_one_by_one
        self._batch: _Loaded | None = None
        self._batch_logged: list[DomainEvent] = []
        self._directory_next: dict[str, tuple[int, str]] = {}
        #: streams looked up and found empty during the open batch (saves a query per new stream)
        self._batch_absent: set[UUID] = set()
        #: the entry of the live event being recorded (it closes an open migration)
        self._live_entry: Entry | None = None
        self._judge: Judge | None = None
        #: the migration as last read (kept once closed: it never reopens; per batch otherwise)
        self._migration: MigrationState | None = None
        #: who may attest late entries and correct or retract another's entry (policy [directory])
        self.supervisory_roles: tuple[str, ...] = SUPERVISORY_ROLES
        #: the policy whose authority rules judge live entries (read on first use: the session sets it)
        self.policy_source: Callable[[], Policy] = lambda: DEFAULT_POLICY
        #: the login every event this ledger records carries (``inserted_by``): the wiring sets
        #: the database's own answer (PostgreSQL's session_user); by default the OS account
        self.login: str | None = os_login()
        #: signs every event recorded (the key must be registered for the event's person)
        self.signer: Signer | None = None
        self._signing_checked: set[str] = set()
        #: topics whose live events must be signed (policy [signatures])
        self.signatures_required: frozenset[str] = frozenset()
        #: gives ``signatures_required`` when the first save needs it (the policy is read then)
        self.signature_policy: Callable[[], frozenset[str]] | None = None
        #: reading free text records a consultation (policy [records] consultation_log)
        self.consultation_log = False
        #: the sealing of free text (``ledger.sealing``); None: a ledger without a key table
        self.seals: Seals | None = None
        self._sealing_checked = False

    def _sign_all(self, events: Sequence[DomainEventProtocol[UUID]]) -> None:
        """Sign each event with the recording person's key (when one is given) and refuse a
        live event the policy requires signed but no key signs (rule ``signature-required``)."""
        if self.signature_policy is not None:
            self.signatures_required, self.signature_policy = self.signature_policy(), None
        if self.signer is not None or self.signatures_required:
            for event in events:
                if isinstance(event, LedgerEvent):
                    self._sign(event)

    def _sign(self, event: LedgerEvent) -> None:
        person = event.actor["person"]
        if event.source_recorded_at is not None:
            return  # a historical line: its actor did not record it here, so nobody signs for them
        if self.signer is None:
            if type(event).TOPIC in self.signatures_required:
                raise RuleViolation(
                    "signature-required",
                    f"the policy requires {type(event).TOPIC.removeprefix('refledger:')} events to be signed: "
                    "give the person's key (--signing-key or REFLEDGER_SIGNING_KEY)",
                )
            return
        if person not in self._signing_checked:
            state = self.person_state(person)
            refusal = key_refusal(person, state.keys if state else (), self.signer.public_key)
            if refusal is not None:
                raise RuleViolation(*refusal)
            self._signing_checked.add(person)
        object.__setattr__(event, "signature", self.signer.sign(event_hash(event)))

    def save(self, *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's save, collecting the ledger's own aggregates and events directly.

        The library tells aggregates from events with runtime Protocol checks, two per
        object, which cost more than inserting the event; a step of an import saves
        thousands of aggregates. Anything else goes through the library's own collection.
        """
        if self.seals is not None:
            self.seals.before_saving()
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        events, aggregates = processing_event.events, processing_event.aggregates
        for obj in objs:
            if isinstance(obj, Aggregate):
                events.extend(obj.collect_events())
                aggregates[obj.id] = obj
            elif isinstance(obj, DomainEvent):
                events.append(obj)
            else:
                processing_event.collect_events(obj)
        self._sign_all(events)
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # the library's deprecated hook, as its save calls it
        return recordings

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()

    def construct_mapper(self) -> Mapper[UUID]:
        # through the factory, so a cipher or compressor set in the environment still applies
        return self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=LedgerMapper)

    # --- the shape every command shares -------------------------------------------

    def _entry(self, stamp: Stamp) -> Entry:
        now = self.clock()
        seal = None
        if self.seals is not None:
            if not self._sealing_checked:
                self.seals.before_recording(ledger_is_empty=self.head() == 0)
                self._sealing_checked = True
            if self.seals.sealed_ledger:
                seal = self._seal
        if stamp.source_recorded_at is not None:  # a historical line is kept, and judged by `audit actors` and `audit authority`
            self._check_migration_open()
            return Entry.resolve(stamp, now, self.login, seal=seal)
        agency = self._check_actor(stamp.actor, stamp.occurred_at or now, now)
        rules, judge = self.policy_source().authority_rules(), self._judge
        if judge is None or judge.authority is not rules or judge.agency is not agency:
            judge = self._judge = Judge(rules, agency)  # the same for every line of a batch, as a rule
        self._live_entry = Entry.resolve(stamp, now, self.login, authority=judge, seal=seal)
        return self._live_entry

    def _seal(self, reference: str, fields: dict[str, Any]) -> dict[str, Any]:
        assert self.seals is not None
        return self.seals.seal_fields(referral_id(reference), fields)

    def _check_actor(self, actor: Actor, occurred_at: datetime, recorded_at: datetime) -> bool | None:
        """Once the directory is in force, a live event's actor must hold that role there then.

        Returns whether the actor's unit is an agency unit (the authority rules' role-level
        part), or None while the directory is not in force.
        """
        in_force_from = self.directory_in_force_from()
        if in_force_from is None or recorded_at < in_force_from:
            return None
        unit = self.unit_state(actor.unit)
        refusal = actor_refusal(actor, self.person_state(actor.person), unit, occurred_at, recorded_at)
        if refusal is not None:
            raise RuleViolation(refusal[0], f"the directory is in force since {iso(in_force_from)}: {refusal[1]}")
        return unit is not None and unit.kind == AGENCY_UNIT

    def _get(self, cls: type[A], aggregate_id: UUID, name: str) -> A:
        found = None if self._batch is None else self._batch.get(aggregate_id)
        if found is None:
            if self._batch is not None and aggregate_id in self._batch_absent:
                raise NotFound(f"{name} is not in the ledger")
            try:
                found = self.repository.get(aggregate_id)
            except AggregateNotFoundError:
                if self._batch is not None:
                    self._batch_absent.add(aggregate_id)
                raise NotFound(f"{name} is not in the ledger") from None
            if self._batch is not None:
                # later commands of the batch continue from this copy (saved at the end)
                self._batch.read(found)
        if not isinstance(found, cls):
            raise NotFound(f"{name} is not a {cls.__name__.lower()}")
        return found

    def _exists(self, aggregate_id: UUID) -> bool:
        if self._batch is not None:
            if aggregate_id in self._batch:
                return True
            if aggregate_id in self._batch_absent:
                return False
        found = bool(self.recorder.select_events(aggregate_id, limit=1))
        if not found and self._batch is not None:
            self._batch_absent.add(aggregate_id)
        return found

    def loaded_history(self, stream_id: UUID) -> list[LedgerEvent]:
        """The events of a stream as this ledger (or the open batch) holds them; [] if none."""
        try:
            found = self._get(Aggregate, stream_id, str(stream_id))
        except NotFound:
            return []
        return list(getattr(found, "history", []))

    def preload(self, stream_ids: Sequence[UUID], *, directories: Sequence[str] = ()) -> None:
        """Inside a batch: load many streams' aggregates in one read, and note the empty ones;
        with them, the subject directories of the referrals ``directories`` names, whose next
        entries are then counted on without a query each.

        A bulk file touches thousands of subjects; loading each on first use would cost a
        round trip per subject.
        """
        if self._batch is None:
            raise RuntimeError("preload works inside batch() only")
        wanted = [i for i in dict.fromkeys(stream_ids) if i not in self._batch and i not in self._batch_absent]
        logs = {directory_id(reference): reference for reference in dict.fromkeys(directories) if reference not in self._directory_next}
        for stream_id, events in self._read_streams(self, [*wanted, *logs]).items():
            if stream_id in logs:
                self._directory_next[logs[stream_id]] = _next_entry(events[-1] if events else None)
                continue
            aggregate = project_aggregate(None, events) if events else None
            if isinstance(aggregate, Aggregate):
                self._batch.read(aggregate)
            else:
                self._batch_absent.add(stream_id)

    def referral(self, reference: str) -> Referral:
        return self._get(Referral, referral_id(reference), f"referral {reference}")

    def subject(self, reference: str, subject: str) -> Subject:
        return self._get(Subject, subject_id(reference, subject), f"subject {subject} of {reference}")

    def _keep(self, *aggregates: Aggregate, logged: Sequence[DomainEvent] = ()) -> None:
        if self._batch is None:
            closing = self._migration_closing()
            try:
                self.save(*aggregates, *logged, *closing)
            except IntegrityError:
                raise ConcurrentUpdate("another recording on the same referral got there first; run the command again") from None
        else:
            for aggregate in aggregates:
                self._batch.written(aggregate)
            self._batch_logged.extend(logged)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Record many commands, then save them all in one transaction (or none of them)."""
        if self._batch is not None:
            raise RuntimeError("batches do not nest")
        self._batch, self._batch_logged, self._directory_next, self._batch_absent = _Loaded(), [], {}, set()
        self._live_entry, self._migration = None, None if self._migration is None or self._migration.closed is None else self._migration
        try:
            yield
            pending: list[Aggregate | DomainEvent] = [*self._batch.values(), *self._batch_logged, *self._migration_closing()]
        except BaseException:
            if self.seals is not None:
                self.seals.forget()
            raise
        finally:
            self._batch, self._batch_logged, self._directory_next, self._batch_absent = None, [], {}, set()
            self._live_entry = None
            if self._migration is not None and self._migration.closed is None:
                self._migration = None
        self._save_batch(pending)

    def _save_batch(self, pending: Sequence[Aggregate | DomainEvent]) -> None:
        try:
            self.save(*pending)
        except IntegrityError:
            raise ConcurrentUpdate(
                "another recording touched the same referrals during this batch; nothing was saved, run it again"
            ) from None

    # --- the migration (ledger.migration holds the rule) ---------------------------

    def migration(self) -> MigrationState:
        """The migration stream as stored (read once per batch; kept for good once closed)."""
        if self._migration is None or (self._batch is None and self._migration.closed is None):
            self._migration = MigrationState.of(self.events.get(MIGRATION_STREAM))
        return self._migration

    def _check_migration_open(self) -> None:
        closed = self.migration().closed
        if closed is not None:
            raise RuleViolation("migration-closed", f"history can no longer be imported: the migration closed at {iso(closed.timestamp)}")

    def _migration_closing(self) -> list[DomainEvent]:
        """The closing event an open migration needs when a live event is saved ([] if none)."""
        entry, self._live_entry = self._live_entry, None
        if entry is None:
            return []
        state = self.migration()
        if state.closed is not None or state.last is None or any(isinstance(e, HistoryImported) for e in self._batch_logged):
            return []
        return [state.new_event(MigrationClosed, entry, reason=CLOSED_BY_LIVE_EVENT)]

    def record_history_import(
        self, stamp: Stamp, file_sha256: str, lines: int, referrals: int, source_range: tuple[datetime, datetime] | None
    ) -> None:
        """Inside the import's batch: the import itself, as an event of the migration stream."""
        if self._batch is None:
            raise RuntimeError("a history import is recorded inside its batch")
        self._check_migration_open()
        first, last = source_range or (None, None)
        event = self.migration().new_event(
            HistoryImported,
            Entry.resolve(stamp, self.clock(), self.login),
            file_sha256=file_sha256,
            lines=lines,
            referrals=referrals,
            source_from=first,
            source_to=last,
        )
        self._batch_logged.append(event)

    @retried
    def close_migration(self, stamp: Stamp) -> MigrationClosed:
        """Close the migration explicitly: from now on ``import --historical`` is refused."""
        state = self.migration()
        if state.closed is not None:
            raise RuleViolation("migration-closed", f"the migration already closed at {iso(state.closed.timestamp)}")
        event = state.new_event(MigrationClosed, Entry.resolve(stamp, self.clock(), self.login), reason=CLOSED_BY_COMMAND)
        try:
            self.save(event)
        except IntegrityError:
            raise ConcurrentUpdate("another recording on the migration got there first; run the command again") from None
        self._migration = None
        assert isinstance(event, MigrationClosed)
        return event

    def flush(self, *, keep_events: int = 0) -> None:
        """Inside a batch: save what it holds so far (memory stays bounded).

        Only within ``ledger.storage.held_transaction``, so that the batch stays one
        transaction: all of it or none of it. The aggregates stay loaded while their
        histories hold at most ``keep_events`` events in all; beyond that they are
        forgotten, and later commands read their streams again (and see what was saved).
        """
        if self._batch is None:
            raise RuntimeError("flush works inside batch() only")
        changed = self._batch.take_written()
        self._save_batch([*changed, *self._batch_logged])
        # the streams just saved exist now, whatever an earlier look-up found
        self._batch_absent.difference_update([*(a.id for a in changed), *(e.originator_id for e in self._batch_logged)])
        self._batch_logged = []
        # least recently written first: a file's next lines mostly continue the streams its
        # last lines wrote, so the streams left alone longest are forgotten first
        self._batch.forget_beyond(keep_events)

    # --- referral commands ------------------------------------------------------

    @retried
    def receive(self, reference: str, stamp: Stamp, **fields: Any) -> UUID:
        rid = referral_id(reference)
        if self._exists(rid):
            raise RuleViolation("received-once", f"{reference} was already received")
        entry = self._entry(stamp)
        referral = Referral.receive(entry, rid, reference, **entry.sealed(reference, fields))
        self._keep(referral)
        return rid

    @retried
    def assess(self, reference: str, stamp: Stamp, **fields: Any) -> None:
        referral = self.referral(reference)
        referral.assess(self._entry(stamp), **fields)
        self._keep(referral)

    @retried
    def offer_ownership(self, reference: str, stamp: Stamp, to_unit: str, reply_due: datetime | None = None) -> None:
        referral = self.referral(reference)
        referral.offer(self._entry(stamp), to_unit, reply_due)
        self._keep(referral)

    @retried
    def accept_ownership(self, reference: str, stamp: Stamp, reason: str | None = None) -> None:
        referral = self.referral(reference)
        referral.accept(self._entry(stamp), reason)
        self._keep(referral)

    @retried
    def decline_ownership(self, reference: str, stamp: Stamp, reason: str) -> None:
        referral = self.referral(reference)
        referral.decline(self._entry(stamp), reason)
        self._keep(referral)

    @retried
    def withdraw_offer(self, reference: str, stamp: Stamp, reason: str | None = None) -> None:
        referral = self.referral(reference)
        referral.withdraw_offer(self._entry(stamp), reason)
        self._keep(referral)

    @retried
    def release_ownership(self, reference: str, stamp: Stamp, reason: str) -> None:
        referral = self.referral(reference)
        referral.release(self._entry(stamp), reason)
        self._keep(referral)

    @retried
    def transfer_custody(self, reference: str, stamp: Stamp, to_unit: str) -> None:
        referral = self.referral(reference)
        referral.transfer_custody(self._entry(stamp), to_unit)
        self._keep(referral)

    @retried
    def escalate(self, reference: str, stamp: Stamp, to_role: str, issue: str, decision_due: datetime | None = None) -> None:
        referral = self.referral(reference)
        referral.escalate(self._entry(stamp), to_role, issue, decision_due)
        self._keep(referral)

    @retried
    def decide(self, reference: str, stamp: Stamp, **fields: Any) -> None:
        referral = self.referral(reference)
        referral.decide(self._entry(stamp), **fields)
        self._keep(referral)

    @retried
    def review(self, reference: str, stamp: Stamp, progress: str, owner_confirmed: str, next_review_by: datetime | None = None) -> None:
        referral = self.referral(reference)
        referral.review(self._entry(stamp), progress, owner_confirmed, next_review_by)
        self._keep(referral)

    @retried
    def receive_external_request(self, reference: str, stamp: Stamp, requester: str, summary: str) -> None:
        referral = self.referral(reference)
        referral.receive_external_request(self._entry(stamp), requester, summary)
        self._keep(referral)

    @retried
    def send_external_reply(self, reference: str, stamp: Stamp, reply_to: str) -> None:
        referral = self.referral(reference)
        referral.send_external_reply(self._entry(stamp), reply_to)
        self._keep(referral)

    @retried
    def add_note(self, reference: str, stamp: Stamp, text: str, claim: dict[str, str] | None = None) -> None:
        referral = self.referral(reference)
        referral.add_note(self._entry(stamp), text, claim)
        self._keep(referral)

    @retried
    def close_referral(self, reference: str, stamp: Stamp, reason: str) -> None:
        referral = self.referral(reference)
        referral.close(self._entry(stamp), reason)
        self._keep(referral)

    @retried
    def reopen_referral(self, reference: str, stamp: Stamp, reason: str) -> None:
        referral = self.referral(reference)
        referral.reopen(self._entry(stamp), reason)
        self._keep(referral)

    # --- subject commands ---------------------------------------------------------

    @retried
    def extract_subject(self, reference: str, stamp: Stamp, subject: str, category: str) -> UUID:
        entry = self._entry(stamp)
        self.referral(reference).check_open_at(entry)
        sid = subject_id(reference, subject)
        if self._exists(sid):
            raise RuleViolation("extracted-once", f"subject {subject} of {reference} was already extracted")
        self._keep(Subject.extract(entry, sid, reference, subject, category), logged=[self._list_subject(reference, subject)])
        return sid

    def _directory(self, reference: str) -> EventSourcedLog[SubjectListed]:
        return EventSourcedLog(self.events, directory_id(reference), SubjectListed)

    def _list_subject(self, reference: str, subject: str) -> SubjectListed:
        return self._log_entry(self._directory(reference), reference, subject=subject)

    def _log_entry(self, log: EventSourcedLog[L], key: str, **fields: Any) -> L:
        """The next entry of an index log, chained to the log's previous entry like every
        other stream (inside a batch, counted on from the batch's entries)."""
        if self._batch is None or key not in self._directory_next:
            next_version, prev_hash = _next_entry(log.get_last())
        else:
            next_version, prev_hash = self._directory_next[key]
        entry = log.trigger_event(next_originator_version=next_version, prev_hash=prev_hash, inserted_by=self.login, **fields)
        if self._batch is not None:
            self._directory_next[key] = (next_version + 1, event_hash(entry))
        return entry

    def subject_refs(self, reference: str) -> list[str]:
        """The subjects of a referral, in the order they were added."""
        return [listed.subject for listed in self._directory(reference).get()]

    def subject_events(self, reference: str) -> dict[str, list[LedgerEvent]]:
        """Each subject of a referral → its events in recording order (one query for them all)."""
        subjects = {subject_id(reference, subject): subject for subject in self.subject_refs(reference)}
        streams = self._read_streams(self, list(subjects))
        return {subject: [e for e in streams[sid] if isinstance(e, LedgerEvent)] for sid, subject in subjects.items()}

    def subject_events_of(self, references: Sequence[str]) -> dict[str, dict[str, list[LedgerEvent]]]:
        """``subject_events`` for many referrals in two queries (their directories, then every subject)."""
        directories = self._read_streams(self, [directory_id(reference) for reference in references])
        listed = {
            reference: [e.subject for e in directories[directory_id(reference)] if isinstance(e, SubjectListed)] for reference in references
        }
        streams = self._read_streams(self, [subject_id(r, s) for r, subjects in listed.items() for s in subjects])
        return {
            r: {s: [e for e in streams[subject_id(r, s)] if isinstance(e, LedgerEvent)] for s in subjects} for r, subjects in listed.items()
        }

    def _subject_command(self, reference: str, stamp: Stamp, subject: str, command: Callable[..., None], **fields: Any) -> None:
        entry = self._entry(stamp)
        state = self.referral(reference).check_open_at(entry)
        if entry.authority is not None:  # the subject rules read the referral's owner and custodian then
            entry = replace(entry, authority=replace(entry.authority, referral=state))
        found = self.subject(reference, subject)
        command(found, entry, **fields)
        self._keep(found)

    @retried
    def triage_subject(self, reference: str, stamp: Stamp, subject: str, **fields: Any) -> None:
        self._subject_command(reference, stamp, subject, Subject.triage, **fields)

    @retried
    def disseminate_subject(self, reference: str, stamp: Stamp, subject: str, **fields: Any) -> None:
        self._subject_command(reference, stamp, subject, Subject.disseminate, **fields)

    @retried
    def acknowledge_subject(self, reference: str, stamp: Stamp, subject: str) -> None:
        self._subject_command(reference, stamp, subject, Subject.acknowledge)

    @retried
    def reject_subject(self, reference: str, stamp: Stamp, subject: str, reason: str) -> None:
        self._subject_command(reference, stamp, subject, Subject.reject, reason=reason)

    @retried
    def record_force_action(self, reference: str, stamp: Stamp, subject: str, action: str) -> None:
        self._subject_command(reference, stamp, subject, Subject.record_action, action=action)

    @retried
    def close_subject(self, reference: str, stamp: Stamp, subject: str, outcome: str, rationale: str) -> None:
        self._subject_command(reference, stamp, subject, Subject.close, outcome=outcome, rationale=rationale)

    # --- amendments of an earlier entry (a referral's, or with ``subject`` a subject's) ------

    def _amendable(self, reference: str, subject: str | None) -> Amendable:
        return self.subject(reference, subject) if subject else self.referral(reference)

    @retried
    def correct_entry(
        self, reference: str, stamp: Stamp, version: int, fields: dict[str, Any], reason: str, subject: str | None = None
    ) -> None:
        found = self._amendable(reference, subject)
        found.correct(self._entry(stamp), version, fields, reason, self.supervisory_roles)
        self._keep(cast(Aggregate, found))

    @retried
    def retract_entry(self, reference: str, stamp: Stamp, version: int, reason: str, subject: str | None = None) -> None:
        found = self._amendable(reference, subject)
        found.retract(self._entry(stamp), version, reason, self.supervisory_roles)
        self._keep(cast(Aggregate, found))

    @retried
    def attest_entry(self, reference: str, stamp: Stamp, version: int, statement: str, subject: str | None = None) -> None:
        found = self._amendable(reference, subject)
        found.attest(self._entry(stamp), version, statement, self.supervisory_roles)
        self._keep(cast(Aggregate, found))

    # --- staff directory commands ---------------------------------------------------

    def directory_in_force_from(self) -> datetime | None:
        if not self._exists(DIRECTORY_STREAM):
            return None
        return self._get(StaffDirectory, DIRECTORY_STREAM, "the directory").in_force_from

    def unit_state(self, unit: str) -> UnitState | None:
        """The unit's story as recorded so far (None: never registered)."""
        if not self._exists(unit_stream(unit)):
            return None
        return self._get(Unit, unit_stream(unit), f"unit {unit}").state()

    def person_state(self, person: str) -> PersonState | None:
        if not self._exists(person_stream(person)):
            return None
        return self._get(Person, person_stream(person), f"person {person}").state()

    def _unit_at(self, unit: str, at: datetime, what: str = "") -> Unit:
        found = self._get(Unit, unit_stream(unit), f"unit {unit}")
        if not found.state().exists_at(at):
            raise RuleViolation("unit-exists", f"unit {unit}{what} is not open at {iso(at)}")
        return found

    def _person_at(self, person: str, at: datetime) -> Person:
        found = self._get(Person, person_stream(person), f"person {person}")
        if not found.state().on_staff_at(at):
            raise RuleViolation("person-exists", f"{person} is not on the staff at {iso(at)}")
        return found

    def _list_staff(self, kind: str, name: str) -> StaffListed:
        # counted beside the subject directories, under a key no referral reference can be
        return self._log_entry(EventSourcedLog(self.events, INDEX_STREAM, StaffListed), "\0staff", kind=kind, name=name)

    def staff_index(self) -> list[StaffListed]:
        """Every unit and person of the directory, in the order they were registered."""
        return list(EventSourcedLog(self.events, INDEX_STREAM, StaffListed).get())

    @retried
    def register_unit(self, stamp: Stamp, unit: str, name: str, kind: str, parent: str | None = None) -> None:
        entry = self._entry(stamp)
        if kind not in UNIT_KINDS:
            raise RuleViolation("unit-kind", f"unit kind {kind!r} is not one of {', '.join(UNIT_KINDS)}")
        if self._exists(unit_stream(unit)):
            raise RuleViolation("registered-once", f"unit {unit} is already registered")
        if parent is not None:
            if parent == unit:
                raise RuleViolation("unit-exists", f"unit {unit} cannot be its own parent")
            self._unit_at(parent, entry.occurred_at, " (the parent)")
        self._keep(Unit.register(entry, unit, name, kind, parent), logged=[self._list_staff("unit", unit)])

    @retried
    def rename_unit(self, stamp: Stamp, unit: str, name: str) -> None:
        found = self._get(Unit, unit_stream(unit), f"unit {unit}")
        found.record(Unit.Renamed, self._entry(stamp), name=name)
        self._keep(found)

    @retried
    def close_unit(self, stamp: Stamp, unit: str, reason: str | None = None) -> None:
        found = self._get(Unit, unit_stream(unit), f"unit {unit}")
        found.record(Unit.Closed, self._entry(stamp), reason=reason)
        self._keep(found)

    @retried
    def register_person(self, stamp: Stamp, person: str, employer: str, login: str | None = None) -> None:
        entry = self._entry(stamp)
        if self._exists(person_stream(person)):
            raise RuleViolation("registered-once", f"person {person} is already registered")
        self._keep(Person.register(entry, person, employer, login), logged=[self._list_staff("person", person)])

    @retried
    def person_left(self, stamp: Stamp, person: str, reason: str | None = None) -> None:
        found = self._get(Person, person_stream(person), f"person {person}")
        found.record(Person.Left, self._entry(stamp), reason=reason)
        self._keep(found)

    @retried
    def assign_role(self, stamp: Stamp, person: str, role: str, unit: str, acting: bool = False) -> None:
        entry = self._entry(stamp)
        self._person_at(person, entry.occurred_at)
        found = self._get(Unit, unit_stream(unit), f"unit {unit}")
        found.record(Unit.RoleAssigned, entry, person=person, role=role, acting=acting)
        self._keep(found)

    @retried
    def end_role(self, stamp: Stamp, person: str, role: str, unit: str, reason: str | None = None) -> None:
        entry = self._entry(stamp)
        self._get(Person, person_stream(person), f"person {person}")
        found = self._get(Unit, unit_stream(unit), f"unit {unit}")
        found.record(Unit.RoleEnded, entry, person=person, role=role, reason=reason)
        self._keep(found)

    @retried
    def start_secondment(self, stamp: Stamp, person: str, to_organisation: str) -> None:
        found = self._get(Person, person_stream(person), f"person {person}")
        found.record(Person.SecondmentStarted, self._entry(stamp), to_organisation=to_organisation)
        self._keep(found)

    @retried
    def end_secondment(self, stamp: Stamp, person: str) -> None:
        found = self._get(Person, person_stream(person), f"person {person}")
        found.record(Person.SecondmentEnded, self._entry(stamp))
        self._keep(found)

    @retried
    def register_key(self, stamp: Stamp, person: str, public_key: str) -> None:
        """From now ``public_key`` (Ed25519, hex) signs the events ``person`` records."""
        found = self._get(Person, person_stream(person), f"person {person}")
        found.record(Person.KeyRegistered, self._entry(stamp), person=person, public_key=checked_public_key(public_key))
        self._keep(found)

    @retried
    def revoke_key(self, stamp: Stamp, person: str, public_key: str, reason: str | None = None) -> None:
        found = self._get(Person, person_stream(person), f"person {person}")
        found.record(Person.KeyRevoked, self._entry(stamp), person=person, public_key=checked_public_key(public_key), reason=reason)
        self._keep(found)

    @retried
    def enforce_directory(self, stamp: Stamp, in_force_from: datetime) -> None:
        """Put the directory in force: from ``in_force_from`` every live event's actor is checked."""
        entry = self._entry(stamp)
        if self._exists(DIRECTORY_STREAM):
            since = self.directory_in_force_from()
            assert since is not None
            raise RuleViolation("enforced-once", f"the directory is already in force from {iso(since)}")
        refusal = actor_refusal(entry.actor, self.person_state(entry.actor.person), self.unit_state(entry.actor.unit), entry.occurred_at)
        if refusal is not None:
            raise RuleViolation(refusal[0], f"who puts the directory in force must check out against it: {refusal[1]}")
        self._keep(StaffDirectory.enforce(entry, in_force_from))

    # --- records management: holds, disposal, consultations (ledger.records holds the rules) ---

    def records(self, reference: str) -> RecordsState:
        return RecordsState.of(self.stream_events(records_stream(reference)))

    def _append(self, stream: Any, event: LedgerEvent) -> None:
        if self._batch is not None:
            raise RuntimeError("records events are recorded one at a time")
        closing = self._migration_closing()
        try:
            self.save(event, *closing)
        except IntegrityError:
            raise ConcurrentUpdate(f"another recording on {stream} got there first; run the command again") from None

    @retried
    def place_hold(self, reference: str, stamp: Stamp, reason: str) -> None:
        self._records_event(reference, stamp, HoldPlaced, placing=True, reason=reason)

    @retried
    def release_hold(self, reference: str, stamp: Stamp, reason: str) -> None:
        self._records_event(reference, stamp, HoldReleased, placing=False, reason=reason)

    def _records_event(self, reference: str, stamp: Stamp, event_class: type[LedgerEvent], placing: bool, reason: str) -> None:
        self.referral_events(reference)  # NotFound
        entry = self._entry(stamp)
        events = self.stream_events(records_stream(reference))
        refusal = hold_refusal(RecordsState.of(events), placing)
        if refusal is not None:
            raise RuleViolation(refusal[0], f"{reference}: {refusal[1]}")
        self._append(reference, next_event(events, records_stream(reference), event_class, entry, reference=reference, reason=reason))

    @retried
    def dispose(self, reference: str, stamp: Stamp, reason: str) -> Disposed:
        """Dispose of a referral's free text: record the disposal, then destroy its data key."""
        history = self.referral_events(reference)
        entry = self._entry(stamp)
        if entry.source_recorded_at is not None:
            raise RuleViolation("dispose-live-only", f"{reference}: a disposal is recorded live, not imported")
        events = self.stream_events(records_stream(reference))
        records = RecordsState.of(events)
        rid = referral_id(reference)
        if records.disposed is not None and self.seals is not None and self.seals.store is not None and self.seals.store.get(rid.hex):
            self.seals.destroy(rid)  # a disposal recorded before its key could be destroyed: finish it
            return records.disposed
        state = fold_state(history)
        refusal = disposal_refusal(state, records)
        if refusal is None and entry.authority is not None:
            refusal = entry.authority.breach(Disposed.TOPIC, entry.actor, state)
        if refusal is not None:
            raise RuleViolation(refusal[0], f"{reference} cannot be disposed of: {refusal[1]}")
        if self.seals is None or not self.seals.sealed_ledger:
            raise RuleViolation(
                "dispose-sealed-only", f"{reference}: this ledger does not seal its free text, so disposal could not remove it"
            )
        if self.seals.ledger_key is None:
            raise RuleViolation("data-key-required", f"{reference}: disposal destroys the referral's data key; give the ledger's data key")
        event = next_event(events, records_stream(reference), Disposed, entry, reference=reference, reason=reason, key_id=rid.hex)
        self._append(reference, event)
        self.seals.destroy(rid)
        assert isinstance(event, Disposed)
        return event

    def read_free_text(self, reference: str, streams: Sequence[Sequence[LedgerEvent]], reader: Any, what: str) -> list[list[LedgerEvent]]:
        """The one place free text is read: ``streams`` (the referral's and its subjects'
        events) with their sealed values opened (or read as withheld or disposed), and,
        when the policy keeps a consultation log, who read it recorded first.

        ``reader`` is the actor (``--as``) reading; a ledger that cannot be written cannot
        record a consultation, so it gives no free text where the log is kept.
        """
        records = self.records(reference)
        if self.consultation_log and records.disposed is None:
            self._consulted(reference, reader, what)
        if self.seals is None:
            return [list(events) for events in streams]
        note = records.disposal_note()
        return [self.seals.opened(events, note) for events in streams]

    def _consulted(self, reference: str, reader: Any, what: str) -> None:
        if reader is None:
            raise InvalidInput(f"this ledger keeps a consultation log: say who is reading {reference} (--as PERSON:ROLE@UNIT)")
        stream = consultation_stream(reference)
        for _attempt in range(5):
            entry = Entry.resolve(Stamp(actor=reader), self.clock(), self.login)
            self._check_actor(entry.actor, entry.occurred_at, entry.recorded_at)
            events = self.stream_events(stream)
            try:
                self.save(next_event(events, stream, Consulted, entry, reference=reference, what=what))
                return
            except IntegrityError:
                continue
            except PersistenceError as error:
                cause = (str(error).strip() or type(error).__name__).splitlines()[0]
                raise LedgerError(
                    f"this ledger keeps a consultation log and cannot record one here ({cause}): the free text of {reference} is not shown"
                ) from None
        raise ConcurrentUpdate(f"others were reading {reference} at the same moment; run the command again")

    def consultations(self, reference: str) -> list[Consulted]:
        self.referral_events(reference)  # NotFound
        return [e for e in self.stream_events(consultation_stream(reference)) if isinstance(e, Consulted)]

    # --- reading ---------------------------------------------------------------

    def referral_events(self, reference: str) -> list[LedgerEvent]:
        """Every event of one referral's stream, in recording order (no aggregate replay)."""
        events = [e for e in self.events.get(referral_id(reference)) if isinstance(e, LedgerEvent)]
        if not events:
            raise NotFound(f"referral {reference} is not in the ledger")
        return events

    def stream_events(self, stream_id: UUID) -> list[LedgerEvent]:
        return [e for e in self.events.get(stream_id) if isinstance(e, LedgerEvent)]

    def events_of_topics(self, topics: Sequence[str]) -> Iterator[LedgerEvent]:
        """Every event of these topics, in log order."""
        position = 0
        while page := self.recorder.select_notifications(start=position, limit=10_000, topics=topics, inclusive_of_start=False):
            position = page[-1].id
            for notification in page:
                event = self.mapper.to_domain_event(notification)
                if isinstance(event, LedgerEvent):
                    yield event

    def head(self) -> int:
        """The id of the newest entry in the log (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    def notifications(self, after: int, limit: int) -> Sequence[Notification]:
        return self.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)

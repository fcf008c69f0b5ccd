"""The Ledger application: command methods (get → command → save), the clock, batching.

Commands take and return simple values (references, stamps, datetimes), never aggregates.
``batch()`` groups many commands into one atomic save: an import is all or nothing and is
not one transaction per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, EventSourcedLog, project_aggregate
from eventsourcing.domain import Aggregate, DomainEvent
from eventsourcing.persistence import IntegrityError, Mapper, Notification, Transcoder

from ledger.errors import LedgerError, NotFound, RuleViolation
from ledger.referral import LedgerEvent, Referral
from ledger.subject import Subject, SubjectListed, directory_id
from ledger.transcoder import LedgerMapper, OrjsonTranscoder
from ledger.values import Entry, Stamp, referral_id, subject_id, utcnow

A = TypeVar("A", bound=Aggregate)
C = TypeVar("C", bound=Callable[..., Any])

#: how often a command is re-run when another recording got to the same stream first
ATTEMPTS = 3


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
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return command(self, *args, **kwargs)
            except ConcurrentUpdate:
                if self._batch is not None or attempt == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    return cast(C, run)


class Ledger(Application[UUID]):
    """Records every action on referrals and their subjects as immutable events."""

    name = "Ledger"

    def __init__(self, env: dict[str, str] | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(env)
        self.clock = clock
        self._batch: dict[UUID, Aggregate] | None = None
        self._batch_logged: list[DomainEvent] = []
        self._directory_next: dict[str, int] = {}
        #: streams looked up and found empty during the open batch (saves a query per new stream)
        self._batch_absent: set[UUID] = set()

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()

    def construct_mapper(self) -> Mapper[UUID]:
        # through the factory, so a cipher or compressor set in the environment still applies
        return self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=LedgerMapper)

    # --- the shape every command shares -------------------------------------------

    def _entry(self, stamp: Stamp) -> Entry:
        return Entry.resolve(stamp, self.clock())

    def _get(self, cls: type[A], aggregate_id: UUID, name: str) -> A:
        if self._batch is not None and aggregate_id in self._batch:
            found = self._batch[aggregate_id]
        else:
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
                self._batch[aggregate_id] = found
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

    def preload(self, stream_ids: Sequence[UUID]) -> None:
        """Inside a batch: load many streams' aggregates in one read, and note the empty ones.

        A bulk file touches thousands of subjects; loading each on first use would cost a
        round trip per subject.
        """
        if self._batch is None:
            raise RuntimeError("preload works inside batch() only")
        from ledger.storage import read_streams  # storage builds Ledgers, so it imports this module

        wanted = [i for i in dict.fromkeys(stream_ids) if i not in self._batch and i not in self._batch_absent]
        for stream_id, events in read_streams(self, wanted).items():
            aggregate = project_aggregate(None, events) if events else None
            if isinstance(aggregate, Aggregate):
                self._batch[stream_id] = aggregate
            else:
                self._batch_absent.add(stream_id)

    def referral(self, reference: str) -> Referral:
        return self._get(Referral, referral_id(reference), f"referral {reference}")

    def subject(self, reference: str, subject: str) -> Subject:
        return self._get(Subject, subject_id(reference, subject), f"subject {subject} of {reference}")

    def _keep(self, *aggregates: Aggregate, logged: Sequence[DomainEvent] = ()) -> None:
        if self._batch is None:
            try:
                self.save(*aggregates, *logged)
            except IntegrityError:
                raise ConcurrentUpdate("another recording on the same referral got there first; run the command again") from None
        else:
            for aggregate in aggregates:
                self._batch[aggregate.id] = aggregate
            self._batch_logged.extend(logged)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Record many commands, then save them all in one transaction (or none of them)."""
        if self._batch is not None:
            raise RuntimeError("batches do not nest")
        self._batch, self._batch_logged, self._directory_next, self._batch_absent = {}, [], {}, set()
        try:
            yield
            pending: list[Aggregate | DomainEvent] = [*self._batch.values(), *self._batch_logged]
        finally:
            self._batch, self._batch_logged, self._directory_next, self._batch_absent = None, [], {}, set()
        self._save_batch(pending)

    def _save_batch(self, pending: Sequence[Aggregate | DomainEvent]) -> None:
        try:
            self.save(*pending)
        except IntegrityError:
            raise ConcurrentUpdate(
                "another recording touched the same referrals during this batch; nothing was saved, run it again"
            ) from None

    def flush(self, *, keep_events: int = 0) -> None:
        """Inside a batch: save what it holds so far (memory stays bounded).

        Only within ``ledger.storage.held_transaction``, so that the batch stays one
        transaction: all of it or none of it. The aggregates stay loaded while their
        histories hold at most ``keep_events`` events in all; beyond that they are
        forgotten, and later commands read their streams again (and see what was saved).
        """
        if self._batch is None:
            raise RuntimeError("flush works inside batch() only")
        changed = [aggregate for aggregate in self._batch.values() if aggregate.pending_events]
        self._save_batch([*changed, *self._batch_logged])
        self._batch_logged = []
        if self._held_events(self._batch.values()) > keep_events:
            # forget the streams this step left alone first: a file's next lines mostly
            # continue the streams its last lines wrote
            self._batch = {aggregate.id: aggregate for aggregate in changed}
            self._batch_absent.clear()
            if self._held_events(changed) > keep_events:
                self._batch.clear()

    @staticmethod
    def _held_events(aggregates: Iterable[Aggregate]) -> int:
        return sum(len(getattr(aggregate, "history", ())) for aggregate in aggregates)

    # --- referral commands ------------------------------------------------------

    @retried
    def receive(self, reference: str, stamp: Stamp, **fields: Any) -> UUID:
        rid = referral_id(reference)
        if self._exists(rid):
            raise RuleViolation("received-once", f"{reference} was already received")
        referral = Referral.receive(self._entry(stamp), rid, reference, **fields)
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
        directory = self._directory(reference)
        if self._batch is None or reference not in self._directory_next:
            last = directory.get_last()
            next_version = 1 if last is None else last.originator_version + 1
        else:
            next_version = self._directory_next[reference]
        if self._batch is not None:
            self._directory_next[reference] = next_version + 1
        return directory.trigger_event(next_originator_version=next_version, subject=subject)

    def subject_refs(self, reference: str) -> list[str]:
        """The subjects of a referral, in the order they were added."""
        return [listed.subject for listed in self._directory(reference).get()]

    def subject_events(self, reference: str) -> dict[str, list[LedgerEvent]]:
        """Each subject of a referral → its events in recording order (one query for them all)."""
        from ledger.storage import read_streams  # storage builds Ledgers, so it imports this module

        subjects = {subject_id(reference, subject): subject for subject in self.subject_refs(reference)}
        streams = read_streams(self, list(subjects))
        return {subject: [e for e in streams[sid] if isinstance(e, LedgerEvent)] for sid, subject in subjects.items()}

    def _subject_command(self, reference: str, stamp: Stamp, subject: str, command: Callable[..., None], **fields: Any) -> None:
        entry = self._entry(stamp)
        self.referral(reference).check_open_at(entry)
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

    # --- reading ---------------------------------------------------------------

    def referral_events(self, reference: str) -> list[LedgerEvent]:
        """Every event of one referral's stream, in recording order (no aggregate replay)."""
        events = [e for e in self.events.get(referral_id(reference)) if isinstance(e, LedgerEvent)]
        if not events:
            raise NotFound(f"referral {reference} is not in the ledger")
        return events

    def stream_events(self, stream_id: UUID) -> list[LedgerEvent]:
        return [e for e in self.events.get(stream_id) if isinstance(e, LedgerEvent)]

    def head(self) -> int:
        """The id of the newest entry in the log (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    def notifications(self, after: int, limit: int) -> Sequence[Notification]:
        return self.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)

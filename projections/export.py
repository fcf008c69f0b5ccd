"""Stored events back in the import format, so that a ledger can be moved or copied.

Each ledger event becomes one record of ``ledger.importing``: ``type``, ``referral``,
``occurred_at``, ``actor``, ``late_reason``, ``recorded_at`` (the recording time the ledger
judged it by) and the fields of its type. The fields come from the one import-format table
(``RECORD_TYPES``), so every type the import accepts is exported with exactly the fields the
import reads back. Records come in log order, which is recording order on every stream, so
``import --historical`` of the output rebuilds a ledger that gives the same answers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from ledger.application import Ledger
from ledger.errors import LedgerError, NotFound
from ledger.importing import RECORD_TYPE, RecordType
from ledger.migration import MigrationEvent
from ledger.records import Consulted, RecordsEvent
from ledger.referral import LedgerEvent, Referral
from ledger.staff import Person, StaffDirectory, StaffListed, Unit
from ledger.subject import Subject, SubjectListed
from ledger.values import iso
from projections.ownership import EVENT_TYPES

__all__ = ["PAGE", "ExportError", "export_record", "export_records"]

#: log entries read per query
PAGE: Final = 10_000


class ExportError(LedgerError):
    """An event the import format cannot express (a programming error, never silently dropped)."""


#: import-format field → the event attribute that keeps it, where the two names differ (the
#: amendments keep the version they amend as ``target_version``, a correction's fields as
#: ``corrected``). A required field found under neither name stops the export.
_EVENT_ATTRIBUTE: Final = {"version": "target_version", "fields": "corrected"}


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    return value


def record_type_of(event: LedgerEvent) -> RecordType:
    name = EVENT_TYPES.get(type(event))
    if name is None or name not in RECORD_TYPE:
        raise ExportError(f"{type(event).TOPIC} has no type in the import format")
    return RECORD_TYPE[name]


def export_record(
    event: LedgerEvent, referral: str | None, subject: str | None = None, *, owner: dict[str, str] | None = None
) -> dict[str, Any]:
    """One stored event as a line of ``import --historical`` (``referral`` None: a staff directory record).

    ``owner`` names the unit or person whose stream a directory event is on.
    """
    kind = record_type_of(event)
    record: dict[str, Any] = {
        "type": kind.type,
        **({"referral": referral} if referral is not None else {}),
        "occurred_at": iso(event.occurred_at),
        "recorded_at": iso(event.recorded_at),
        "actor": dict(event.actor),
    }
    if event.late_reason is not None:
        record["late_reason"] = event.late_reason
    for field in kind.fields:
        if field.name == "reference":
            continue  # the referral itself
        value = subject if field.name == "subject" and subject is not None else getattr(event, field.parameter, None)
        if value is None:
            value = getattr(event, _EVENT_ATTRIBUTE.get(field.name, field.name), None)
        if value is None and owner is not None:
            value = owner.get(field.name)
        if value is None and field.required:
            raise ExportError(f"{type(event).TOPIC} keeps no {field.name}, which the import format requires")
        if value is None or value == [] or (field.kind == "bool" and value is False and not field.required):
            continue  # what the import reads for a missing field
        record[field.name] = _value(value)
    return record


def export_records(ledger: Ledger, referrals: Collection[str] = (), reader: Any = None) -> Iterator[dict[str, Any]]:
    """Every ledger event in recording order (only those of ``referrals`` when given), as import records.

    Free text is read as every reader reads it (``Ledger.read_free_text``: opened, withheld
    without the data key, or the disposal note), once per referral, by ``reader``.
    """
    rows = list(_ledger_events(ledger, referrals))
    by_referral: dict[str, list[LedgerEvent]] = {}
    for _, event, referral, _, _ in rows:
        if referral is not None:
            by_referral.setdefault(referral, []).append(event)
    opened: dict[tuple[UUID, int], LedgerEvent] = {}
    for reference, events in by_referral.items():
        for original, readable in zip(events, ledger.read_free_text(reference, [events], reader, "export")[0], strict=True):
            opened[(original.originator_id, original.originator_version)] = readable
    found: list[tuple[datetime, int, dict[str, Any]]] = []
    for position, event, referral, subject, owner in rows:
        readable = opened.get((event.originator_id, event.originator_version), event)
        found.append((event.recorded_at, position, export_record(readable, referral, subject, owner=owner)))
    found.sort(key=lambda item: (item[0], item[1]))
    for _, _, record in found:
        yield record


_SKIPPED_TOPICS: Final = (SubjectListed.TOPIC, StaffListed.TOPIC)  # indexes that repeat what a registration says


def _ledger_events(
    ledger: Ledger, referrals: Collection[str]
) -> Iterator[tuple[int, LedgerEvent, str | None, str | None, dict[str, str] | None]]:
    wanted = set(referrals)
    for reference in sorted(wanted):
        ledger.referral_events(reference)  # NotFound: "referral … is not in the ledger"
    streams: dict[UUID, tuple[str, str | None]] = {}
    owners: dict[UUID, dict[str, str]] = {}
    position = 0
    while page := ledger.notifications(position, PAGE):
        position = page[-1].id
        for notification in page:
            if notification.topic in _SKIPPED_TOPICS:
                continue  # the directories repeat what Subject.Extracted and the registrations say
            event = ledger.mapper.to_domain_event(notification)
            if not isinstance(event, LedgerEvent):
                continue  # checkpoints and other non-event entries are not history
            if isinstance(event, StaffDirectory.Event):
                continue  # putting the directory in force is a command of its own, not an import line
            if isinstance(event, MigrationEvent):
                continue  # the migration's own record: importing the export records a new one
            if isinstance(event, RecordsEvent | Consulted):
                continue  # holds, disposals and consultations are this ledger's own records management
            if isinstance(event, Unit.Registered):
                owners[event.originator_id] = {"unit": event.unit}
            elif isinstance(event, Person.Registered):
                owners[event.originator_id] = {"person": event.person}
            if event.originator_id in owners:
                if not wanted:
                    yield notification.id, event, None, None, owners[event.originator_id]
                continue
            if isinstance(event, Referral.Received):
                streams[event.originator_id] = (event.reference, None)
            elif isinstance(event, Subject.Extracted):
                streams[event.originator_id] = (event.referral, event.subject)
            found = streams.get(event.originator_id)
            if found is None:
                raise NotFound(f"event {event.originator_id} v{event.originator_version} belongs to no referral")
            if not wanted or found[0] in wanted:
                yield notification.id, event, found[0], found[1], None

"""Late entries: events recorded long after they happened (docs/DOMAIN.md §3, rule late-entry).

A pure fold over one referral's events and its subjects' events. An entry is **late** when
recorded − occurred exceeds the policy's late-entry threshold (24 h by default); it then had
to carry a ``late_reason``. Beyond the attestation threshold (7 days by default) a
supervisor must attest it (``refledger attest``): until then it ``needs_attestation``, and
rule ``late-entry-attestation`` makes it overdue some days after it was recorded. For
``import --historical`` lines, ``recorded_at`` is the source
system's recording time (``LedgerEvent.recorded_at``), so lateness is judged as it was then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledger.knowledge import ATTESTATION, amendment_kind
from ledger.policy import DEFAULT_POLICY, LATE_ENTRY_ATTESTATION, Policy
from ledger.referral import LedgerEvent, Referral
from ledger.subject import Subject
from ledger.values import days, iso
from projections.ownership import event_type

__all__ = ["COLUMNS", "Attestation", "LateEntry", "attestations", "late_entries", "late_entry_of"]

#: the columns of ``LateEntry.as_row()`` (a CSV header), in the order answers print them.
COLUMNS = (
    "referral",
    "subject",
    "type",
    "occurred_at",
    "recorded_at",
    "version",
    "lag_days",
    "needs_attestation",
    "attestation_due",
    "attestation_overdue",
    "attested_by",
    "attested_at",
    "late_reason",
)


@dataclass(frozen=True)
class Attestation:
    """Who attested a late entry, and when that was recorded."""

    by: str
    at: datetime

    @classmethod
    def of(cls, event: LedgerEvent) -> Attestation:
        actor = event.actor
        return cls(f"{actor['person']}:{actor['role']}@{actor['unit']}", event.recorded_at)


@dataclass(frozen=True)
class LateEntry:
    """One event recorded more than the threshold after it occurred."""

    referral: str
    #: the subject's reference for a subject event; None for the referral's own stream
    subject: str | None
    #: the event type in the import format (``note_added``, ``ownership_accepted``, …)
    type: str
    #: stream version of the event (in the referral's or the subject's stream)
    version: int
    occurred_at: datetime
    recorded_at: datetime
    late_reason: str | None
    #: late beyond the attestation threshold and not (yet) attested
    needs_attestation: bool
    attested: Attestation | None = None
    #: when an attestation is due (rule late-entry-attestation), for entries that need one
    attestation_due: datetime | None = None
    #: needs attestation and its due instant has passed (judged now)
    attestation_overdue: bool = False

    @property
    def lag(self) -> timedelta:
        return self.recorded_at - self.occurred_at

    def as_row(self) -> dict[str, Any]:
        """A flat, JSON-ready row (times ISO 8601 with Z, lag in days to 2 decimals)."""
        return {
            "referral": self.referral,
            "subject": self.subject,
            "type": self.type,
            "occurred_at": iso(self.occurred_at),
            "recorded_at": iso(self.recorded_at),
            "version": self.version,
            "lag_days": days(self.lag),
            "needs_attestation": self.needs_attestation,
            "attestation_due": None if self.attestation_due is None else iso(self.attestation_due),
            "attestation_overdue": self.attestation_overdue,
            "attested_by": None if self.attested is None else self.attested.by,
            "attested_at": None if self.attested is None else iso(self.attested.at),
            "late_reason": self.late_reason,
        }


def late_entry_of(
    event: LedgerEvent,
    referral: str,
    subject: str | None,
    attestation_after: timedelta,
    attested: Attestation | None = None,
    *,
    due_after: timedelta | None = None,
    now: datetime | None = None,
) -> LateEntry:
    """``event`` described as a late entry (the caller has judged that it is one).

    ``due_after`` (the late-entry-attestation period) and ``now`` say when an attestation
    is due and whether it is overdue.
    """
    needs = event.recorded_at - event.occurred_at > attestation_after
    due = event.recorded_at + due_after if needs and due_after is not None else None
    return LateEntry(
        referral=referral,
        subject=subject,
        type=event_type(event),
        version=event.originator_version,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        late_reason=event.late_reason,
        needs_attestation=needs and attested is None,
        attested=attested,
        attestation_due=due,
        attestation_overdue=due is not None and attested is None and now is not None and due < now,
    )


def attestations(events: Iterable[LedgerEvent]) -> dict[int, Attestation]:
    """Stream version → its attestation, for one stream's events."""
    return {
        getattr(event, "target_version"): Attestation.of(event)  # noqa: B009
        for event in events
        if amendment_kind(event) == ATTESTATION
    }


def late_entries(
    referral_events: Sequence[LedgerEvent],
    subject_events: Mapping[str, Sequence[LedgerEvent]],
    *,
    policy: Policy = DEFAULT_POLICY,
    min_lag: timedelta | None = None,
    now: datetime | None = None,
) -> list[LateEntry]:
    """The late entries of a referral and its subjects, in recording order.

    ``min_lag`` replaces the policy's late-entry threshold (to look for shorter or only
    longer delays); whether an entry needs attestation always follows the policy.
    """
    threshold = policy.late_entry_threshold() if min_lag is None else min_lag
    attestation_after = policy.attestation_threshold()
    reference = _reference(referral_events, subject_events)
    due_after = policy.attestation_due_after() if policy.enabled(LATE_ENTRY_ATTESTATION) else None
    found: list[LateEntry] = []
    for subject, events in _streams(referral_events, subject_events):
        attested = attestations(events)
        found.extend(
            late_entry_of(
                event, reference, subject, attestation_after, attested.get(event.originator_version), due_after=due_after, now=now
            )
            for event in events
            if event.recorded_at - event.occurred_at > threshold
        )
    found.sort(key=lambda entry: (entry.recorded_at, entry.occurred_at, entry.subject or "", entry.version))
    return found


def _streams(
    referral_events: Sequence[LedgerEvent], subject_events: Mapping[str, Sequence[LedgerEvent]]
) -> Iterable[tuple[str | None, Sequence[LedgerEvent]]]:
    yield None, referral_events
    yield from subject_events.items()


def _reference(referral_events: Sequence[LedgerEvent], subject_events: Mapping[str, Sequence[LedgerEvent]]) -> str:
    for event in referral_events:
        if isinstance(event, Referral.Received):
            return event.reference
    for events in subject_events.values():
        for event in events:
            if isinstance(event, Subject.Extracted):
                return event.referral
    raise ValueError("these events name no referral: neither a receipt nor a subject extraction is among them")

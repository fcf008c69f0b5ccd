"""What an inquiry looks for in the record itself: reviews that confirmed the wrong owner, and
every correction and retraction with what it changed.

Pure folds over one stream's events (and, for reviews, the referral's ownership fold). A
review is recorded as the reviewer said it; whether the owner it confirmed is the owner the
events show at that instant (as known now) is reported here, never refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.knowledge import CORRECTION, RETRACTION, amendment_kind, known
from ledger.referral import LedgerEvent, Referral
from ledger.values import iso
from projections.ownership import event_type, ownership_history, source_line

__all__ = ["AMENDMENT_COLUMNS", "FINDING_COLUMNS", "Amendment", "ReviewFinding", "amendments", "review_findings"]

#: what ``owner_confirmed`` says when the reviewer found nobody owning the referral
UNOWNED = "unowned"

FINDING_COLUMNS = ("kind", "referral", "version", "occurred_at", "recorded_at", "by", "owner_confirmed", "owner_shown", "line")


@dataclass(frozen=True)
class ReviewFinding:
    """A supervisory review confirmed an owner the events do not show at its instant."""

    referral: str
    version: int
    occurred_at: datetime
    recorded_at: datetime
    by: dict[str, str]
    owner_confirmed: str
    #: the owning unit the ownership fold shows at the review's instant, or "unowned"
    owner_shown: str
    line: int | None

    def as_row(self) -> dict[str, Any]:
        return {
            "kind": "review-confirmed-wrong-owner",
            "referral": self.referral,
            "version": self.version,
            "occurred_at": iso(self.occurred_at),
            "recorded_at": iso(self.recorded_at),
            "by": f"{self.by['person']}:{self.by['role']}@{self.by['unit']}",
            "owner_confirmed": self.owner_confirmed,
            "owner_shown": self.owner_shown,
            "line": self.line,
        }

    def sentence(self) -> str:
        return (
            f"The review of {iso(self.occurred_at)} by {self.by['person']} ({self.by['role']}) confirmed "
            f"{self.owner_confirmed} as owner; the events show {self.owner_shown} then."
        )


def review_findings(referral_events: Sequence[LedgerEvent], as_known_at: datetime | None = None) -> list[ReviewFinding]:
    """Reviews whose ``owner_confirmed`` differs from the owner the fold computes at that instant."""
    reviews = [e for e in known(referral_events, as_known_at) if isinstance(e, Referral.ReviewRecorded)]
    if not reviews:
        return []
    history = ownership_history(referral_events, as_known_at=as_known_at)
    found = []
    for review in reviews:
        interval = history.ownership_at(review.occurred_at)
        shown = UNOWNED if interval is None else interval.unit
        confirmed = review.owner_confirmed.strip()
        if confirmed.lower() == UNOWNED:
            confirmed = UNOWNED
        if confirmed != shown:
            found.append(
                ReviewFinding(
                    history.reference,
                    review.originator_version,
                    review.occurred_at,
                    review.recorded_at,
                    dict(review.actor),
                    review.owner_confirmed,
                    shown,
                    source_line(review),
                )
            )
    return found


AMENDMENT_COLUMNS = (
    "referral",
    "subject",
    "version",
    "kind",
    "entry_version",
    "entry_type",
    "field",
    "original",
    "corrected",
    "reason",
    "by",
    "recorded_at",
    "by_entry_actor",
    "line",
)


@dataclass(frozen=True)
class Amendment:
    """One corrected field (or one retraction) of an earlier entry, and who amended it."""

    referral: str
    subject: str | None
    version: int
    kind: str
    entry_version: int
    entry_type: str
    field: str | None
    original: Any
    corrected: Any
    reason: str
    by: dict[str, str]
    recorded_at: datetime
    #: made by the person who recorded the entry (otherwise by a supervisory role, or, for
    #: history imported as the source system had it, by whoever the source names)
    by_entry_actor: bool
    line: int | None

    def as_row(self) -> dict[str, Any]:
        return {
            "referral": self.referral,
            "subject": self.subject,
            "version": self.version,
            "kind": self.kind,
            "entry_version": self.entry_version,
            "entry_type": self.entry_type,
            "field": self.field,
            "original": _plain(self.original),
            "corrected": _plain(self.corrected),
            "reason": self.reason,
            "by": f"{self.by['person']}:{self.by['role']}@{self.by['unit']}",
            "recorded_at": iso(self.recorded_at),
            "by_entry_actor": self.by_entry_actor,
            "line": self.line,
        }


def amendments(referral: str, subject: str | None, events: Sequence[LedgerEvent]) -> list[Amendment]:
    """Every correction (one row per field) and retraction of one stream, in recording order."""
    by_version = {event.originator_version: event for event in events}
    found: list[Amendment] = []
    for event in events:
        kind = amendment_kind(event)
        if kind not in (CORRECTION, RETRACTION):
            continue
        version: int = getattr(event, "target_version")  # noqa: B009
        target = by_version[version]
        common = {
            "referral": referral,
            "subject": subject,
            "version": event.originator_version,
            "kind": kind,
            "entry_version": version,
            "entry_type": event_type(target),
            "reason": getattr(event, "reason"),  # noqa: B009
            "by": dict(event.actor),
            "recorded_at": event.recorded_at,
            "by_entry_actor": event.actor["person"] == target.actor["person"],
            "line": source_line(event),
        }
        if kind == RETRACTION:
            found.append(Amendment(field=None, original=None, corrected=None, **common))
            continue
        corrected: dict[str, Any] = getattr(event, "corrected")  # noqa: B009
        found.extend(
            Amendment(field=name, original=getattr(target, name, None), corrected=value, **common) for name, value in corrected.items()
        )
    return found


def _plain(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value

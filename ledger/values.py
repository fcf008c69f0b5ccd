"""Small values shared by the domain: actors, instants and who-did-what-when stamps."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid5

from ledger.errors import InvalidInput

if TYPE_CHECKING:
    from ledger.authority import Judge

#: recorded − occurred beyond this makes an entry late; it must then carry a reason.
LATE_AFTER = timedelta(hours=24)
#: late beyond this needs a supervisor's attestation.
ATTESTATION_AFTER = timedelta(days=7)
#: clocks of different machines disagree a little; this much "future" is tolerated.
FUTURE_SKEW = timedelta(minutes=5)

RISK_BANDS = ("LOW", "MEDIUM", "HIGH", "VERY_HIGH")
DECISION_OUTCOMES = ("ASSIGN_OWNER", "DEFER", "REJECT", "NO_FURTHER_ACTION", "CLOSE")

_ACTOR_KEYS = frozenset({"person", "role", "unit"})
_ACTOR_PARTS = "actor person, role and unit must be non-empty strings"
_ACTOR = re.compile(r"^(?P<person>[^:@\s]+):(?P<role>[^:@\s]+)@(?P<unit>[^:@\s]+)$")


@dataclass(frozen=True)
class Actor:
    """Who did something: a pseudonymous staff id, their role and their unit."""

    person: str
    role: str
    unit: str

    @classmethod
    def parse(cls, text: str) -> Actor:
        match = _ACTOR.match(text.strip())
        if match is None:
            raise InvalidInput(f"actor {text!r} is not of the form PERSON:ROLE@UNIT")
        return cls(match["person"], match["role"], match["unit"])

    @classmethod
    def from_dict(cls, value: Any) -> Actor:
        if not isinstance(value, dict) or value.keys() != _ACTOR_KEYS:
            raise InvalidInput("actor must be an object with exactly person, role and unit")
        try:
            return _known_actor(value["person"], value["role"], value["unit"])
        except TypeError:  # a list or an object as a part cannot even be looked up
            raise InvalidInput(_ACTOR_PARTS) from None

    def as_dict(self) -> dict[str, str]:
        return {"person": self.person, "role": self.role, "unit": self.unit}

    def __str__(self) -> str:
        return f"{self.person}:{self.role}@{self.unit}"


@lru_cache(maxsize=4096)
def _known_actor(person: str, role: str, unit: str) -> Actor:
    """One Actor per person, role and unit (an import names the same few thousand again and
    again): checked once, shared after."""
    for part in (person, role, unit):
        if not isinstance(part, str) or not part.strip():
            raise InvalidInput(_ACTOR_PARTS)
    return Actor(person, role, unit)


@dataclass(frozen=True)
class Stamp:
    """Who records an event, when it happened, and (for migrations) when and where it
    was first recorded. ``occurred_at`` None means "now"."""

    actor: Actor
    occurred_at: datetime | None = None
    late_reason: str | None = None
    #: the source system's recording time, carried by ``import --historical`` only.
    source_recorded_at: datetime | None = None
    #: provenance of imported events: {"file": sha256, "line": n}.
    source: dict[str, Any] | None = None


@dataclass(frozen=True)
class Entry:
    """A stamp resolved against the ledger's clock: every instant is known."""

    actor: Actor
    occurred_at: datetime
    #: when the ledger took the event in (the library's event timestamp).
    ingested_at: datetime
    late_reason: str | None
    source_recorded_at: datetime | None
    source: dict[str, Any] | None
    #: the authority rules a live entry is judged by (None: a historical line, never refused for authority)
    authority: Judge | None = None
    #: the login that records it: the database's session user (PostgreSQL) or the
    #: operating-system account (SQLite); None when unknown
    login: str | None = None
    #: seals an event's fields for a referral (``ledger.sealing``; None: recorded as given)
    seal: Callable[[str, dict[str, Any]], dict[str, Any]] | None = field(default=None, compare=False, repr=False)

    @property
    def recorded_at(self) -> datetime:
        return self.source_recorded_at or self.ingested_at

    def sealed(self, reference: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The event's own fields as stored: free text sealed under the referral's key."""
        return fields if self.seal is None else self.seal(reference, fields)

    @classmethod
    def resolve(
        cls,
        stamp: Stamp,
        now: datetime,
        login: str | None = None,
        *,
        authority: Judge | None = None,
        seal: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Entry:
        return cls(
            actor=stamp.actor,
            occurred_at=stamp.occurred_at or now,
            ingested_at=now,
            late_reason=stamp.late_reason,
            source_recorded_at=stamp.source_recorded_at,
            source=stamp.source,
            authority=authority,
            login=login,
            seal=seal,
        )


def utcnow() -> datetime:
    return datetime.now(UTC)


#: every instant the ledger takes in lies in [EARLIEST, LATEST): far-off years are typing
#: mistakes, and arithmetic on them (a gap to year 1, a due time past 9999) overflows
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def parse_instant(text: str, what: str = "time") -> datetime:
    """An ISO 8601 instant with a zone (``2024-03-11T08:40:00Z``), as UTC, in 1900–2199.

    A bare date (``2024-03-11``) means its start, UTC, for convenience on the command line.
    """
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        if len(value) != 10:
            raise InvalidInput(f"{what} {text!r} has no time zone (add Z for UTC)")
        parsed = parsed.replace(tzinfo=UTC)
    try:
        instant = parsed.astimezone(UTC)
    except OverflowError:
        instant = EARLIEST - timedelta(days=1)  # beyond datetime's own range: out of ours too
    if not EARLIEST <= instant < LATEST:
        raise InvalidInput(f"{what} {text!r} is outside the years {EARLIEST.year}–{LATEST.year - 1}")
    return instant


def iso(instant: datetime) -> str:
    """ISO 8601 UTC with ``Z``; seconds precision unless there are microseconds."""
    # isoformat is several times faster than strftime; answers print hundreds of thousands
    if instant.tzinfo is not UTC:
        instant = instant.astimezone(UTC)
    return instant.isoformat()[:-6] + "Z"


#: a hundredth of a day, in microseconds: the unit ``days`` rounds to.
_CENTIDAY_US = 864_000_000


def days(delta: timedelta) -> float:
    """Elapsed days (86,400 s) to two decimals, rounding half away from zero (27 h is 1.13).

    The one rounding of days for every answer. Worked on whole microseconds, so a half is a
    half exactly (``round`` on the float would round 1.125 to even, 1.12).
    """
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    hundredths, rest = divmod(abs(micros), _CENTIDAY_US)
    if 2 * rest >= _CENTIDAY_US:
        hundredths += 1
    return (hundredths if micros >= 0 else -hundredths) / 100


@lru_cache(maxsize=65536)
def referral_id(reference: str) -> UUID:
    return uuid5(NAMESPACE_URL, "referral/" + reference)


@lru_cache(maxsize=65536)
def subject_id(reference: str, subject: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"subject/{reference}/{subject}")

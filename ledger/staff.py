"""The staff directory, recorded in the ledger: units, people, the roles they hold, secondments.

Streams (each a chain of ``LedgerEvent``\\ s, in the Merkle tree like every other stream):

- one **unit** stream per unit: registered (name, kind, parent), renamed, closed, and every
  role held in it (assigned, ended). "Who was accountable for U at T" reads one stream, and
  assigning a role in one unit never replays another.
- one **person** stream per person: registered (employer, login), left, secondments.
- one **staff directory** stream: the directory put in force, from an instant (an auditable
  fact, not a setting), and an index of the units and people registered (entries that list a
  stream, like a referral's subject directory), so the whole directory is found without a scan.

Everything is bitemporal: a fold takes only the events recorded by K (``as_known_at``) and
walks them in business order (``occurred_at``), so a late entry changes "as known now" and
never "as known then". Holdings and secondments are half-open intervals, [start, end).

``actor_refusal`` is the one place that says whether an actor (PERSON:ROLE@UNIT) checks out
against the directory at an instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, DomainEvent
from eventsourcing.utils import register_topic

from ledger.canonical import GENESIS, event_hash
from ledger.errors import RuleViolation
from ledger.knowledge import known
from ledger.referral import LedgerEvent, business_order, check_clocks, entry_fields
from ledger.values import Actor, Entry, iso

UNIT_KINDS = ("agency-unit", "force", "partner")
#: topic prefixes of the directory's streams (the read models of referrals skip them)
STAFF_TOPIC_PREFIXES = ("refledger:Unit.", "refledger:Person.", "refledger:StaffDirectory.", "refledger:StaffIndex.")


def unit_stream(unit: str) -> UUID:
    return uuid5(NAMESPACE_URL, "unit/" + unit)


def person_stream(person: str) -> UUID:
    return uuid5(NAMESPACE_URL, "person/" + person)


DIRECTORY_STREAM = uuid5(NAMESPACE_URL, "staff-directory")
INDEX_STREAM = uuid5(NAMESPACE_URL, "staff-directory/index")


class _Chained(Aggregate):
    """What the directory's aggregates share: their history and its chain head."""

    def __init__(self) -> None:
        self.history: list[LedgerEvent] = []
        self._head_hash: tuple[int, str] | None = None

    def remember(self, event: LedgerEvent) -> None:
        self.history.append(event)

    def head_hash(self) -> str:
        if self._head_hash is None or self._head_hash[0] != self.version:
            self._head_hash = (self.version, event_hash(self.history[-1]))
        return self._head_hash[1]

    def _trigger(
        self, stream_name: str, event_class: type[LedgerEvent], entry: Entry, refusal: tuple[str, str] | None, /, **fields: Any
    ) -> None:
        check_clocks(stream_name, entry, earliest=None, last_recorded=self.history[-1].recorded_at)
        if refusal is not None:
            raise RuleViolation(refusal[0], f"{stream_name} at {iso(entry.occurred_at)}: {refusal[1]}")
        self.trigger_event(event_class, timestamp=entry.ingested_at, prev_hash=self.head_hash(), **entry_fields(entry), **fields)


class Unit(_Chained, created_event_name="Registered"):
    """A unit of the agency, an external force or a partner, and the roles held in it."""

    TOPIC = "refledger:Unit"

    class Event(LedgerEvent):
        TOPIC = "refledger:Unit.Event"

    class Registered(Event, Aggregate.Created):
        """The unit exists from occurred_at: its name, kind and (optional) parent unit."""

        TOPIC = "refledger:Unit.Registered"
        unit: str
        name: str
        kind: str
        parent: str | None

    Created = Registered

    class Renamed(Event):
        TOPIC = "refledger:Unit.Renamed"
        name: str

    class Closed(Event):
        TOPIC = "refledger:Unit.Closed"
        reason: str | None

    class RoleAssigned(Event):
        """A person took a role in this unit from occurred_at (acting, if so)."""

        TOPIC = "refledger:Unit.RoleAssigned"
        person: str
        role: str
        acting: bool

    class RoleEnded(Event):
        """A person gave the role up at occurred_at."""

        TOPIC = "refledger:Unit.RoleEnded"
        person: str
        role: str
        reason: str | None

    @property
    def unit(self) -> str:
        first = self.history[0]
        assert isinstance(first, Unit.Registered)
        return first.unit

    def state(self) -> UnitState:
        return fold_unit(self.history)

    @classmethod
    def register(cls, entry: Entry, unit: str, name: str, kind: str, parent: str | None) -> Unit:
        check_clocks(unit, entry, earliest=None, last_recorded=None)
        return cls._create(
            cls.Registered,
            id=unit_stream(unit),
            timestamp=entry.ingested_at,
            prev_hash=GENESIS,
            unit=unit,
            name=name,
            kind=kind,
            parent=parent,
            **entry_fields(entry),
        )

    def record(self, event_class: type[LedgerEvent], entry: Entry, **fields: Any) -> None:
        refusal = self.state().refusal(event_class, entry.occurred_at, fields)
        self._trigger(self.unit, event_class, entry, refusal, **fields)


class Person(_Chained, created_event_name="Registered"):
    """A member of staff (a pseudonymous id), their employer, login and secondments."""

    TOPIC = "refledger:Person"

    class Event(LedgerEvent):
        TOPIC = "refledger:Person.Event"

    class Registered(Event, Aggregate.Created):
        """The person is on the staff from occurred_at, employed by ``employer``."""

        TOPIC = "refledger:Person.Registered"
        person: str
        employer: str
        login: str | None

    Created = Registered

    class Left(Event):
        TOPIC = "refledger:Person.Left"
        reason: str | None

    class SecondmentStarted(Event):
        """From occurred_at the person works for ``to_organisation`` (still employed by theirs)."""

        TOPIC = "refledger:Person.SecondmentStarted"
        to_organisation: str

    class SecondmentEnded(Event):
        TOPIC = "refledger:Person.SecondmentEnded"

    class KeyRegistered(Event):
        """From now the person may sign the events they record with this Ed25519 key."""

        TOPIC = "refledger:Person.KeyRegistered"
        person: str
        public_key: str  # the raw 32-byte public key, hex

    class KeyRevoked(Event):
        """From now the key no longer signs for the person (what it signed before stays valid)."""

        TOPIC = "refledger:Person.KeyRevoked"
        person: str
        public_key: str
        reason: str | None

    @property
    def person(self) -> str:
        first = self.history[0]
        assert isinstance(first, Person.Registered)
        return first.person

    def state(self) -> PersonState:
        return fold_person(self.history)

    @classmethod
    def register(cls, entry: Entry, person: str, employer: str, login: str | None) -> Person:
        check_clocks(person, entry, earliest=None, last_recorded=None)
        return cls._create(
            cls.Registered,
            id=person_stream(person),
            timestamp=entry.ingested_at,
            prev_hash=GENESIS,
            person=person,
            employer=employer,
            login=login,
            **entry_fields(entry),
        )

    def record(self, event_class: type[LedgerEvent], entry: Entry, **fields: Any) -> None:
        refusal = self.state().refusal(event_class, entry.occurred_at, fields)
        self._trigger(self.person, event_class, entry, refusal, **fields)


class StaffDirectory(_Chained, created_event_name="Enforced"):
    """The directory's standing: in force (actors checked) from an instant."""

    TOPIC = "refledger:StaffDirectory"

    class Event(LedgerEvent):
        TOPIC = "refledger:StaffDirectory.Event"

    class Enforced(Event, Aggregate.Created):
        """From ``in_force_from`` every new event's actor must check out against the directory."""

        TOPIC = "refledger:StaffDirectory.Enforced"
        in_force_from: datetime

    Created = Enforced

    @property
    def in_force_from(self) -> datetime:
        first = self.history[0]
        assert isinstance(first, StaffDirectory.Enforced)
        return first.in_force_from

    @classmethod
    def enforce(cls, entry: Entry, in_force_from: datetime) -> StaffDirectory:
        check_clocks("the directory", entry, earliest=None, last_recorded=None)
        return cls._create(
            cls.Enforced,
            id=DIRECTORY_STREAM,
            timestamp=entry.ingested_at,
            prev_hash=GENESIS,
            in_force_from=in_force_from,
            **entry_fields(entry),
        )


class StaffListed(DomainEvent):
    """A unit or person was added to the directory's index (an index, not a fact of its own)."""

    TOPIC = "refledger:StaffIndex.Listed"
    kind: str  # "unit" | "person"
    name: str
    prev_hash: str  # chained like every stream: the previous entry's hash, GENESIS for the first
    inserted_by: str | None = field(default=None, kw_only=True)


register_topic(StaffListed.TOPIC, StaffListed)


#: each directory event class → its type in the import format
STAFF_EVENT_TYPES: dict[type[LedgerEvent], str] = {
    Unit.Registered: "unit_registered",
    Unit.Renamed: "unit_renamed",
    Unit.Closed: "unit_closed",
    Unit.RoleAssigned: "role_assigned",
    Unit.RoleEnded: "role_ended",
    Person.Registered: "person_registered",
    Person.Left: "person_left",
    Person.SecondmentStarted: "secondment_started",
    Person.SecondmentEnded: "secondment_ended",
    Person.KeyRegistered: "key_registered",
    Person.KeyRevoked: "key_revoked",
    StaffDirectory.Enforced: "directory_enforced",
}


# --- the folds: what the events say, as known at K -----------------------------------------


@dataclass
class Holding:
    """A role held by a person in a unit, [start, end)."""

    person: str
    role: str
    unit: str
    start: datetime
    acting: bool
    end: datetime | None = None

    def covers(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


@dataclass
class UnitState:
    unit: str
    name: str
    kind: str
    parent: str | None
    registered_at: datetime
    closed_at: datetime | None = None
    names: list[tuple[datetime, str]] = field(default_factory=list)
    holdings: list[Holding] = field(default_factory=list)

    def exists_at(self, at: datetime) -> bool:
        return self.registered_at <= at and (self.closed_at is None or at < self.closed_at)

    def name_at(self, at: datetime) -> str:
        name = self.name
        for since, renamed in self.names:
            if since <= at:
                name = renamed
        return name

    def holders(self, at: datetime, roles: Iterable[str] | None = None) -> list[Holding]:
        wanted = None if roles is None else set(roles)
        return [h for h in self.holdings if h.covers(at) and (wanted is None or h.role in wanted)]

    def refusal(self, kind: type[LedgerEvent], at: datetime, fields: dict[str, Any]) -> tuple[str, str] | None:
        """(rule id, reason) if an event of ``kind`` cannot happen to this unit at ``at``."""
        if kind is Unit.Registered:
            return ("registered-once", f"unit {self.unit} is already registered")
        if at < self.registered_at:
            return ("unit-exists", f"unit {self.unit} was registered only at {iso(self.registered_at)}")
        if self.closed_at is not None and at >= self.closed_at:
            return ("unit-exists", f"unit {self.unit} was closed at {iso(self.closed_at)}")
        if kind is Unit.RoleAssigned:
            for held in self._same(fields):
                if held.end is None or held.end > at:
                    until = "open-ended" if held.end is None else f"until {iso(held.end)}"
                    return (
                        "no-overlapping-holdings",
                        f"{held.person} already holds {held.role} here from {iso(held.start)} ({until})",
                    )
        elif kind is Unit.RoleEnded:
            open_holdings = [h for h in self._same(fields) if h.end is None]
            if not open_holdings:
                return ("role-ended-was-held", f"{fields['person']} does not hold {fields['role']} here")
            if open_holdings[-1].start >= at:
                return (
                    "role-ends-after-start",
                    f"{fields['person']}'s {fields['role']} began at {iso(open_holdings[-1].start)}: it cannot be ended",
                )
        return None

    def _same(self, fields: dict[str, Any]) -> list[Holding]:
        return [h for h in self.holdings if h.person == fields["person"] and h.role == fields["role"]]

    def apply(self, event: LedgerEvent) -> None:
        if isinstance(event, Unit.Renamed):
            self.names.append((event.occurred_at, event.name))
        elif isinstance(event, Unit.Closed):
            self.closed_at = event.occurred_at
            for held in self.holdings:
                if held.end is None:
                    held.end = event.occurred_at
        elif isinstance(event, Unit.RoleAssigned):
            self.holdings.append(Holding(event.person, event.role, self.unit, event.occurred_at, event.acting))
        elif isinstance(event, Unit.RoleEnded):
            next(h for h in reversed(self._same({"person": event.person, "role": event.role})) if h.end is None).end = event.occurred_at


@dataclass
class Secondment:
    to_organisation: str
    start: datetime
    end: datetime | None = None


@dataclass
class PersonState:
    person: str
    employer: str
    login: str | None
    registered_at: datetime
    left_at: datetime | None = None
    secondments: list[Secondment] = field(default_factory=list)
    #: the public keys (hex) that sign for the person, in force now (registered, not revoked)
    keys: list[str] = field(default_factory=list)

    def on_staff_at(self, at: datetime) -> bool:
        return self.registered_at <= at and (self.left_at is None or at < self.left_at)

    def seconded_to(self, at: datetime) -> str | None:
        for secondment in self.secondments:
            if secondment.start <= at and (secondment.end is None or at < secondment.end):
                return secondment.to_organisation
        return None

    def refusal(self, kind: type[LedgerEvent], at: datetime, fields: dict[str, Any]) -> tuple[str, str] | None:
        if kind is Person.Registered:
            return ("registered-once", f"person {self.person} is already registered")
        if not self.on_staff_at(at):
            return ("person-exists", f"{self.person} is not on the staff then ({self._span()})")
        if kind is Person.SecondmentStarted:
            if fields["to_organisation"] == self.employer:
                return ("secondment-elsewhere", f"{self.person} is employed by {self.employer}; a secondment goes to another organisation")
            open_ones = [s for s in self.secondments if s.end is None or s.end > at]
            if open_ones:
                return (
                    "one-secondment",
                    f"{self.person} is already seconded to {open_ones[-1].to_organisation} from {iso(open_ones[-1].start)}",
                )
        elif kind is Person.KeyRegistered:
            if fields["public_key"] in self.keys:
                return ("key-registered-once", f"the key {fields['public_key'][:16]}… is already registered for {self.person}")
        elif kind is Person.KeyRevoked:
            if fields["public_key"] not in self.keys:
                return ("key-revoked-was-registered", f"the key {fields['public_key'][:16]}… is not a key of {self.person} in force")
        elif kind is Person.SecondmentEnded:
            open_ones = [s for s in self.secondments if s.end is None]
            if not open_ones:
                return ("secondment-ended-was-started", f"{self.person} is not on a secondment")
            if open_ones[-1].start >= at:
                return ("secondment-ends-after-start", f"the secondment began at {iso(open_ones[-1].start)}: it cannot be ended")
        return None

    def _span(self) -> str:
        left = f", left {iso(self.left_at)}" if self.left_at else ""
        return f"registered {iso(self.registered_at)}{left}"

    def apply(self, event: LedgerEvent) -> None:
        if isinstance(event, Person.Left):
            self.left_at = event.occurred_at
        elif isinstance(event, Person.SecondmentStarted):
            self.secondments.append(Secondment(event.to_organisation, event.occurred_at))
        elif isinstance(event, Person.SecondmentEnded):
            next(s for s in reversed(self.secondments) if s.end is None).end = event.occurred_at
        elif isinstance(event, Person.KeyRegistered):
            self.keys.append(event.public_key)
        elif isinstance(event, Person.KeyRevoked):
            self.keys.remove(event.public_key)


def fold_unit(history: Sequence[LedgerEvent], as_known_at: datetime | None = None) -> UnitState:
    """A unit's whole story from the events recorded by ``as_known_at`` (all, if None)."""
    ordered = business_order(known(history, as_known_at))
    first = history[0]
    assert isinstance(first, Unit.Registered)
    state = UnitState(first.unit, first.name, first.kind, first.parent, first.occurred_at)
    for event in ordered:
        if event is first:
            continue
        if state.refusal(type(event), event.occurred_at, vars(event)) is None:  # a late entry that no longer fits changes nothing
            state.apply(event)
    return state


def fold_person(history: Sequence[LedgerEvent], as_known_at: datetime | None = None) -> PersonState:
    ordered = business_order(known(history, as_known_at))
    first = history[0]
    assert isinstance(first, Person.Registered)
    state = PersonState(first.person, first.employer, first.login, first.occurred_at)
    for event in ordered:
        if event is first:
            continue
        if state.refusal(type(event), event.occurred_at, vars(event)) is None:
            state.apply(event)
    return state


# --- the one rule: does this actor hold this role here then ---------------------------------


def actor_refusal(
    actor: Actor, person: PersonState | None, unit: UnitState | None, occurred_at: datetime, recorded_at: datetime | None = None
) -> tuple[str, str] | None:
    """(rule id, reason) unless ``actor`` is a registered person holding that role in that unit.

    Held at ``occurred_at``, or (for a late entry: the recorder states their current post) at
    ``recorded_at``. ``person`` and ``unit`` are the directory's states (None: not registered).
    """
    if person is None:
        return ("actor-in-directory", f"{actor.person} is not a registered person")
    if unit is None:
        return ("actor-in-directory", f"{actor.unit} is not a registered unit")
    instants = [occurred_at] + ([recorded_at] if recorded_at is not None and recorded_at != occurred_at else [])
    for at in instants:
        if person.on_staff_at(at) and any(h.person == actor.person and h.role == actor.role for h in unit.holders(at)):
            return None
    when = iso(occurred_at) + ("" if len(instants) == 1 else f" or {iso(instants[1])}")
    return ("actor-holds-role", f"{actor.person} did not hold {actor.role} in {actor.unit} at {when}")

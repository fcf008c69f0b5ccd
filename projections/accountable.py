"""People and accountability: who answered for a referral at T, an officer's record, the directory at T.

Read from the staff directory's own streams (``ledger.staff``) and a referral's events, as
known now or at K (only events recorded by K count). Which roles make someone accountable
for a unit is the policy's ``[directory]`` table (``policy.directory.accountable_roles``).

- ``accountable_at``: the JSON contract of ``refledger accountable``.
- ``person_record``: an officer's roles, stretches of accountability, obligations, events;
  the stretches, obligations and events come from the stored read models
  (``ReadModels.held_referrals`` and the actor index, ``ReadModels.recorded_by``), as known at K.
- ``directory_at``: units, people and roles in force at T.
- ``actor_findings``: every event whose actor does not check out (``audit actors``), judged
  by ``ledger.staff.actor_refusal``, the one rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.application import Ledger
from ledger.errors import NotFound
from ledger.knowledge import known
from ledger.migration import MIGRATION_TOPIC_PREFIX
from ledger.policy import DEFAULT_POLICY, Policy
from ledger.referral import LedgerEvent
from ledger.staff import (
    Holding,
    Person,
    PersonState,
    Unit,
    UnitState,
    actor_refusal,
    fold_person,
    fold_unit,
    person_stream,
    unit_stream,
)
from ledger.storage import read_streams
from ledger.values import Actor, days, iso
from projections.obligations import BREACHED, OVERDUE, PENDING, Obligation, obligations_at
from projections.ownership import event_type, owner_at, ownership_history, source_line
from projections.store import ActorRow, ReadModels, from_us


@dataclass
class Directory:
    """The staff directory as known at K (None: now), read stream by stream on demand."""

    ledger: Ledger
    as_known_at: datetime | None = None
    _units: dict[str, UnitState | None] = field(default_factory=dict)
    _people: dict[str, PersonState | None] = field(default_factory=dict)
    _listed: list[tuple[str, str]] | None = None
    #: the events read, per stream (as stored; the states above are folded as known at K)
    histories: dict[str, list[LedgerEvent]] = field(default_factory=dict)

    def load(self, units: Iterable[str] = (), people: Iterable[str] = ()) -> None:
        """Read the streams of these units and people in one query (those not read yet)."""
        wanted = {unit_stream(u): ("unit", u) for u in units if u not in self._units}
        wanted |= {person_stream(p): ("person", p) for p in people if p not in self._people}
        if not wanted:
            return
        for stream, events in read_streams(self.ledger, list(wanted)).items():
            kind, name = wanted[stream]
            history = [e for e in events if isinstance(e, LedgerEvent)]
            self.histories[f"{kind}/{name}"] = history
            if kind == "unit":
                self._units[name] = self._fold(history, Unit.Registered, fold_unit)
            else:
                self._people[name] = self._fold(history, Person.Registered, fold_person)
        for kind, name in wanted.values():
            (self._units if kind == "unit" else self._people).setdefault(name, None)

    def _fold(self, history: list[LedgerEvent], first: type, fold: Any) -> Any:
        if not history or not isinstance(history[0], first):
            return None
        if self.as_known_at is not None and history[0].recorded_at > self.as_known_at:
            return None  # not yet registered, as known at K
        return fold(history, self.as_known_at)

    def load_all(self, people: bool = True) -> None:
        """Read every unit (and, unless ``people`` is False, every person) of the directory."""
        if self._listed is None:
            self._listed = [(e.kind, e.name) for e in self.ledger.staff_index()]
        self.load(
            [name for kind, name in self._listed if kind == "unit"], [name for kind, name in self._listed if kind == "person" and people]
        )

    def unit(self, unit: str) -> UnitState | None:
        self.load(units=[unit])
        return self._units[unit]

    def person(self, person: str) -> PersonState | None:
        self.load(people=[person])
        return self._people[person]

    @property
    def units(self) -> list[UnitState]:
        self.load_all(people=False)
        return sorted((u for u in self._units.values() if u is not None), key=lambda u: u.unit)

    @property
    def people(self) -> list[PersonState]:
        self.load_all()
        return sorted((p for p in self._people.values() if p is not None), key=lambda p: p.person)

    def holders(self, unit: str | None, at: datetime, roles: Iterable[str] | None) -> list[Holding]:
        """Holdings of ``roles`` (any, if None) in ``unit`` (every unit, if None) at ``at``, by people on the staff then."""
        units = self.units if unit is None else [u for u in [self.unit(unit)] if u is not None]
        found = [h for u in units for h in u.holders(at, roles)]
        self.load(people=[h.person for h in found])
        return [h for h in found if (p := self._people.get(h.person)) is not None and p.on_staff_at(at)]

    def described(self, holdings: Iterable[Holding], at: datetime) -> list[dict[str, Any]]:
        """The contract's P: person, role, unit, since, employer, seconded_to (at ``at``)."""
        rows = []
        for held in sorted(holdings, key=lambda h: (h.unit, h.role, h.start, h.person)):
            person = self.person(held.person)
            assert person is not None
            rows.append(
                {
                    "person": held.person,
                    "role": held.role,
                    "unit": held.unit,
                    "since": iso(held.start),
                    "employer": person.employer,
                    "seconded_to": person.seconded_to(at),
                }
            )
        return rows

    def accountable(self, unit: str | None, at: datetime, policy: Policy) -> list[dict[str, Any]]:
        if unit is None:
            return []
        return self.described(self.holders(unit, at, policy.directory.accountable_roles), at)


# --- refledger accountable -----------------------------------------------------------------


def accountable_at(
    ledger: Ledger, reference: str, at: datetime, as_known_at: datetime | None = None, policy: Policy = DEFAULT_POLICY
) -> dict[str, Any]:
    """Who answered for ``reference`` at ``at``: owner, custodian, while unowned, awaited answers."""
    events = ledger.referral_events(reference)
    answer = owner_at(events, at, as_known_at)
    directory = Directory(ledger, as_known_at)
    custodian = answer.custodian.unit
    owner = answer.owner
    directory.load(
        units=[u for u in (custodian, owner.unit if owner else None, answer.open_offer.to_unit if answer.open_offer else None) if u]
    )
    custodian_accountable = directory.accountable(custodian, at, policy)
    awaiting: list[dict[str, Any]] = []
    if answer.open_offer is not None:
        unit = answer.open_offer.to_unit
        awaiting.append({"kind": "offer", "unit": unit, "role": None, "holders": directory.accountable(unit, at, policy)})
    for obligation in _open_decisions(events, at, as_known_at, policy):
        if obligation.rule == "escalation-decided":
            role = obligation.detail["to_role"]
            awaiting.append(
                {"kind": "escalation", "unit": None, "role": role, "holders": directory.described(directory.holders(None, at, [role]), at)}
            )
        else:
            decider = next(e for e in events if e.originator_version == obligation.started_by).actor
            holders = directory.described(directory.holders(decider["unit"], at, [decider["role"]]), at)
            awaiting.append({"kind": "deferred-decision", "unit": decider["unit"], "role": decider["role"], "holders": holders})
    unowned = owner is None and answer.closed_at is None
    return {
        "referral": reference,
        "at": iso(at),
        "as_known_at": None if as_known_at is None else iso(as_known_at),
        "owner": None
        if owner is None
        else {"unit": owner.unit, "person": owner.person, "accountable": directory.accountable(owner.unit, at, policy)},
        "custodian": {"unit": custodian, "accountable": custodian_accountable},
        "answering_while_unowned": custodian_accountable if unowned else [],
        "awaiting": awaiting,
    }


def _open_decisions(events: Sequence[LedgerEvent], at: datetime, as_known_at: datetime | None, policy: Policy) -> list[Obligation]:
    """Open escalations and deferred decisions at ``at`` (the obligations fold's clocks)."""
    recorded = known(events, as_known_at)
    return [
        o
        for o in obligations_at(recorded, {}, at, policy=policy, as_known_now=True)
        if o.rule in ("escalation-decided", "deferred-revisit") and o.status in (OVERDUE, PENDING)
    ]


# --- refledger directory show ---------------------------------------------------------------


def directory_at(ledger: Ledger, at: datetime, as_known_at: datetime | None = None) -> dict[str, Any]:
    directory = Directory(ledger, as_known_at)
    units = [
        {"unit": u.unit, "name": u.name_at(at), "kind": u.kind, "parent": u.parent, "since": iso(u.registered_at)}
        for u in directory.units
        if u.exists_at(at)
    ]
    people = [
        {
            "person": p.person,
            "employer": p.employer,
            "login": p.login,
            "seconded_to": p.seconded_to(at),
            "since": iso(p.registered_at),
        }
        for p in directory.people
        if p.on_staff_at(at)
    ]
    holdings = sorted(directory.holders(None, at, None), key=lambda h: (h.unit, h.role, h.start, h.person))
    roles = [{**row, "acting": held.acting} for held, row in zip(holdings, directory.described(holdings, at), strict=True)]
    return {
        "at": iso(at),
        "as_known_at": None if as_known_at is None else iso(as_known_at),
        "in_force_from": _in_force(ledger),
        "units": units,
        "people": people,
        "roles": roles,
    }


def _in_force(ledger: Ledger) -> str | None:
    since = ledger.directory_in_force_from()
    return None if since is None else iso(since)


# --- refledger person --------------------------------------------------------------------


def _clip(start: datetime, end: datetime | None, lower: datetime | None, upper: datetime | None) -> tuple[datetime, datetime | None] | None:
    if lower is not None and end is not None and end <= lower:
        return None
    if upper is not None and start >= upper:
        return None
    clipped_start = max(start, lower) if lower is not None else start
    clipped_end = end if upper is None else (upper if end is None else min(end, upper))
    return clipped_start, clipped_end


def _overlap(a: tuple[datetime, datetime | None], b: tuple[datetime, datetime | None]) -> tuple[datetime, datetime | None] | None:
    return _clip(a[0], a[1], b[0], b[1])


def person_record(
    ledger: Ledger,
    person: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    as_known_at: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
    now: datetime,
) -> dict[str, Any]:
    """What an inquiry prepares for one officer, over [start, end)."""
    directory = Directory(ledger, as_known_at)
    found = directory.person(person)
    if found is None:
        raise NotFound(f"person {person} is not in the directory")
    holdings = [h for u in directory.units for h in u.holdings if h.person == person]
    roles = []
    for held in sorted(holdings, key=lambda h: (h.start, h.unit, h.role)):
        span = _clip(held.start, held.end, start, end)
        if span is not None:
            accountable = held.role in policy.directory.accountable_roles
            roles.append(
                {
                    "role": held.role,
                    "unit": held.unit,
                    "start": iso(held.start),
                    "end": _iso(held.end),
                    "acting": held.acting,
                    "accountable": accountable,
                }
            )
    accountable_spans = [
        (h.unit, span)
        for h in holdings
        if h.role in policy.directory.accountable_roles and (span := _clip(h.start, h.end, start, end)) is not None
    ]
    judged_at = end or as_known_at or now
    models = ReadModels(ledger, policy)
    units = {unit for unit, _ in accountable_spans}
    lower = min((span[0] for _, span in accountable_spans), default=None)
    ends = [span[1] for _, span in accountable_spans]
    upper = max((e for e in ends if e is not None), default=None) if None not in ends else None
    stretches: list[dict[str, Any]] = []
    for referral in models.held_referrals(units, lower, upper, as_known_at=as_known_at, until=judged_at):
        # owned by their unit, or held (custody) by it while nobody owned the referral
        unowned_custody = [
            (unit, piece)
            for unit, custody_start, custody_end in referral.custody
            for gap in referral.gaps
            if (piece := _overlap((custody_start, custody_end), gap)) is not None
        ]
        pieces = [("owned", unit, (owned_start, owned_end)) for unit, owned_start, owned_end in referral.ownership]
        pieces += [("held", unit, piece) for unit, piece in unowned_custody]
        for kind, holder, interval in pieces:
            for unit, span in accountable_spans:
                if holder == unit and (piece := _overlap(interval, span)) is not None:
                    stretches.append(_stretch(referral.referral, kind, unit, piece, referral.obligations, judged_at))
    recorded = [_recorded_row(row) for row in models.recorded_by(person, start=start, end=end, as_known_at=as_known_at)]
    stretches.sort(key=lambda s: (s["start"], s["referral"], s["kind"]))
    return {
        "person": person,
        "employer": found.employer,
        "login": found.login,
        "registered_at": iso(found.registered_at),
        "left_at": _iso(found.left_at),
        "secondments": [{"to_organisation": s.to_organisation, "start": iso(s.start), "end": _iso(s.end)} for s in found.secondments],
        "from": _iso(start),
        "to": _iso(end),
        "as_known_at": _iso(as_known_at),
        "roles": roles,
        "stretches": stretches,
        "events": recorded,
    }


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else iso(instant)


def _recorded_row(row: ActorRow) -> dict[str, Any]:
    """An entry of the actor index as ``person`` lists it."""
    return {
        "occurred_at": iso(from_us(row.occurred_us)),
        "recorded_at": iso(from_us(row.recorded_us)),
        "referral": row.referral,
        "subject": row.subject,
        "type": row.type,
        "as": f"{row.role}@{row.unit}",
        "line": row.line,
    }


def _stretch(
    reference: str, kind: str, unit: str, span: tuple[datetime, datetime | None], obligations: Sequence[Obligation], judged_at: datetime
) -> dict[str, Any]:
    lower, upper = span
    stop = upper or judged_at
    fell_due = [o for o in obligations if lower <= o.due < stop]
    left_open = [o for o in obligations if o.started_at < stop and o.due >= stop and (o.satisfied_at is None or o.satisfied_at >= stop)]
    return {
        "referral": reference,
        "kind": kind,
        "unit": unit,
        "start": iso(lower),
        "end": _iso(upper),
        "days": days(stop - lower),
        "fell_due": len(fell_due),
        "breached": [_obligation(o) for o in fell_due if o.status in (BREACHED, OVERDUE)],
        "left_open": [_obligation(o) for o in left_open],
    }


def _obligation(o: Obligation) -> dict[str, Any]:
    return {"rule": o.rule, "subject": o.subject, "due": iso(o.due), "status": o.status, "days_late": o.days_late}


# --- refledger audit actors ------------------------------------------------------------------


@dataclass(frozen=True)
class ActorFinding:
    stream: str
    version: int
    referral: str | None
    type: str
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    rule: str
    problem: str
    line: int | None

    def as_row(self) -> dict[str, Any]:
        return {
            "referral": self.referral,
            "type": self.type,
            "occurred_at": iso(self.occurred_at),
            "recorded_at": iso(self.recorded_at),
            "actor": self.actor,
            "rule": self.rule,
            "problem": self.problem,
            "line": self.line,
            "stream": self.stream,
            "version": self.version,
        }


def actor_findings(ledger: Ledger, page: int = 5000) -> list[ActorFinding]:
    """Every event in the ledger whose actor does not check out against the directory (as known now)."""
    directory = Directory(ledger)
    directory.load_all()
    findings = []
    after = 0
    mapper = ledger.mapper
    referral_of: dict[Any, str] = {}
    while True:
        notifications = ledger.notifications(after, page)
        if not notifications:
            break
        for notification in notifications:
            if not notification.topic.startswith("refledger:") or ".Listed" in notification.topic:
                continue
            if notification.topic.startswith(MIGRATION_TOPIC_PREFIX):
                continue  # who ran an import is listed by `audit migrations`, not judged as a referral's actor
            event = mapper.to_domain_event(notification)
            if not isinstance(event, LedgerEvent):
                continue
            if event.originator_version == 1 and (reference := getattr(event, "reference", None) or getattr(event, "referral", None)):
                referral_of[event.originator_id] = reference
            actor = Actor.from_dict(event.actor)
            refusal = actor_refusal(actor, directory.person(actor.person), directory.unit(actor.unit), event.occurred_at, event.recorded_at)
            if refusal is not None:
                findings.append(
                    ActorFinding(
                        str(event.originator_id),
                        event.originator_version,
                        referral_of.get(event.originator_id),
                        event_type(event),
                        event.occurred_at,
                        event.recorded_at,
                        str(actor),
                        refusal[0],
                        refusal[1],
                        source_line(event),
                    )
                )
        after = notifications[-1].id
    return findings


def actor_counts(findings: Sequence[ActorFinding]) -> list[dict[str, Any]]:
    """Findings counted per actor (person, role, unit) and rule."""
    counts: dict[tuple[str, str], int] = {}
    for finding in findings:
        key = (finding.actor, finding.rule)
        counts[key] = counts.get(key, 0) + 1
    rows = []
    for (actor, rule), count in sorted(counts.items()):
        parsed = Actor.parse(actor)
        rows.append({"person": parsed.person, "role": parsed.role, "unit": parsed.unit, "rule": rule, "events": count})
    return rows


# --- the case file's "Accountable people" ----------------------------------------------------


@dataclass(frozen=True)
class AccountableSpan:
    """An ownership interval, or a gap while a custodian held the referral, and who answered for it."""

    kind: str  # owner · gap
    unit: str
    start: datetime
    end: datetime | None
    #: person, role, from, to (clipped to the span), employer, seconded_to (at the span's start)
    people: tuple[dict[str, Any], ...]
    #: obligations that fell due in the span and were breached (or are overdue)
    breached: tuple[Obligation, ...]


def accountable_spans(
    directory: Directory, events: Sequence[LedgerEvent], obligations: Sequence[Obligation], at: datetime, policy: Policy = DEFAULT_POLICY
) -> list[AccountableSpan]:
    """Per ownership interval and per gap (by custodian), the accountable people and the breaches under them."""
    history = ownership_history(events, as_known_at=directory.as_known_at, until=at)
    pieces: list[tuple[str, str, tuple[datetime, datetime | None]]] = [
        ("owner", o.unit, (o.start, o.end)) for o in history.ownership if o.unit
    ]
    pieces += [
        ("gap", c.unit, piece)
        for c in history.custody
        for g in history.gaps
        if c.unit and (piece := _overlap((c.start, c.end), (g.start, g.end))) is not None
    ]
    directory.load(units=[unit for _, unit, _ in pieces])
    spans = []
    for kind, unit, (start, end) in sorted(pieces, key=lambda p: p[2][0]):
        state = directory.unit(unit)
        holdings = [
            h
            for h in (state.holdings if state else [])
            if h.role in policy.directory.accountable_roles and _overlap((h.start, h.end), (start, end)) is not None
        ]
        directory.load(people=[h.person for h in holdings])
        people = []
        for held in sorted(holdings, key=lambda h: (h.start, h.role, h.person)):
            clipped = _overlap((held.start, held.end), (start, end))
            person = directory.person(held.person)
            assert clipped is not None and person is not None
            people.append(
                {
                    "person": held.person,
                    "role": held.role + (" (acting)" if held.acting else ""),
                    "from": clipped[0],
                    "to": clipped[1],
                    "employer": person.employer,
                    "seconded_to": person.seconded_to(clipped[0]),
                }
            )
        stop = end or at
        breached = tuple(o for o in obligations if start <= o.due < stop and o.status in (BREACHED, OVERDUE))
        spans.append(AccountableSpan(kind, unit, start, end, tuple(people), breached))
    return spans

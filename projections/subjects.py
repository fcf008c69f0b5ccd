"""Where each subject of a referral is at an instant, and the package it belongs to.

Pure folds over a referral's events and its subjects' events (docs/DOMAIN.md §4): a subject is
with the referral's owner (its custodian while unowned) until disseminated, in transit to a
force until that force acknowledges or rejects (the owner still answers for it), with the
force after an acknowledgement, back with the owner after a rejection, and closed after
``subject_closed``. The rules of what may happen when are not repeated here: the subject's
own ``SubjectState`` and the referral's ``ReferralState`` (ledger/) decide, and these folds
only read the result.

A force action does not move a subject (the force still holds it), so ``state`` is where the
subject is and ``actioned`` says whether the force holding it has acted on it.

Knowledge: every fold takes ``as_known_at``. ``None`` means as known now (all events);
an instant K keeps only the events recorded by K, which is what the ledger showed at K
(``ledger.knowledge.known``, with the corrections and retractions recorded by then).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from ledger.errors import NotFound
from ledger.knowledge import known
from ledger.policy import DEFAULT_POLICY, DISSEMINATION, FORCE_ACKNOWLEDGEMENT, FORCE_ACTION, Policy
from ledger.referral import LedgerEvent, Referral, ReferralState, business_order, fold_state
from ledger.subject import ACTIONED, CLOSED, IN_TRANSIT, WITH_FORCE, WITH_REFERRAL_OWNER, Subject, SubjectState
from ledger.values import days, iso
from projections.obligations import STATUSES, Obligation, obligations_at

#: where a subject can be, in the order a subject normally moves through them.
POSITIONS: tuple[str, ...] = (WITH_REFERRAL_OWNER, IN_TRANSIT, WITH_FORCE, CLOSED)
#: what ``--state`` accepts: a position, or ``actioned`` (a force has acted on it).
STATE_FILTERS: tuple[str, ...] = (*POSITIONS, ACTIONED)

#: the obligations that concern one subject (docs/DOMAIN.md §7), in the order a subject meets them.
SUBJECT_RULES: tuple[str, ...] = (DISSEMINATION, FORCE_ACKNOWLEDGEMENT, FORCE_ACTION)

OWNER, CUSTODIAN, FORCE = "owner", "custodian", "force"


@dataclass(frozen=True)
class SubjectPosition:
    """One subject at one instant: where it is, who answers for it, and how it got there."""

    subject: str
    category: str
    #: one of POSITIONS
    state: str
    #: the unit that answers for the subject now: the referral's owner (its custodian while
    #: unowned) until a force acknowledges, then that force; None once closed.
    responsible_unit: str | None
    #: OWNER, CUSTODIAN or FORCE (None once closed)
    responsible_as: str | None
    #: the referral's owning unit at the instant (None while unowned)
    owner: str | None
    #: the force of the latest dissemination, while the subject is in transit to it or with it
    force: str | None
    #: the force holding it (or sent it) has recorded an action on the latest dissemination
    actioned: bool
    band: str | None
    target_force: str | None
    extracted_at: datetime
    first_disseminated_at: datetime | None
    #: the latest dissemination (a rejected subject may be sent again)
    disseminated_at: datetime | None
    disseminations: int
    #: when the force acknowledged the latest dissemination
    acknowledged_at: datetime | None
    #: the force that rejected the latest dissemination, while the subject is back with the owner
    rejected_by: str | None
    rejected_at: datetime | None
    #: the first force action on the latest dissemination
    actioned_at: datetime | None
    closed_at: datetime | None
    outcome: str | None

    def as_row(self) -> dict[str, object]:
        """Plain values (instants as ISO 8601 UTC), in ROW_COLUMNS order."""
        return {name: _plain(getattr(self, name)) for name in ROW_COLUMNS}

    def matches(self, state: str | None = None, force: str | None = None) -> bool:
        """Whether the subject is in ``state`` (a position, or ACTIONED) and sent to / with ``force``."""
        if state == ACTIONED and not self.actioned:
            return False
        if state not in (None, ACTIONED) and self.state != state:
            return False
        return force is None or self.force == force


ROW_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SubjectPosition))


def referral_state_at(referral_events: Sequence[LedgerEvent], at: datetime, as_known_at: datetime | None = None) -> ReferralState:
    """The referral's ownership and custody at ``at`` (ReferralState is the one place for those rules)."""
    events = known(referral_events, as_known_at)
    if not events:
        first = referral_events[0] if referral_events else None
        name = f"referral {first.reference}" if isinstance(first, Referral.Received) else "the referral"
        raise NotFound(f"{name} was not yet recorded at {iso(as_known_at)}" if as_known_at else f"{name} has no events")
    return fold_state(events, until=at)


def subject_position(history: Sequence[LedgerEvent], referral: ReferralState, at: datetime) -> SubjectPosition | None:
    """Where the subject of ``history`` is at ``at``, or None if it was not yet extracted.

    ``referral`` is the referral's state at the same instant (it names the holder while the
    subject is with the referral's owner). The subject's own rules decide which events apply:
    an event its state refuses (a late entry that no longer fits) changes nothing.
    """
    ordered = business_order(history)
    if not ordered or ordered[0].occurred_at > at:
        return None
    first = ordered[0]
    if not isinstance(first, Subject.Extracted):
        raise ValueError(f"a subject's history starts with its extraction, not {type(first).__name__}")
    state = SubjectState(first.referral, first.subject, first.category, first.occurred_at)
    progress = _Progress()
    for event in ordered[1:]:
        if event.occurred_at > at:
            break
        if state.apply(event):
            progress.note(event)
    return _position(state, progress, referral)


@dataclass
class _Progress:
    """What SubjectState does not keep: first dissemination, count, rejection, action, closure."""

    first_disseminated_at: datetime | None = None
    disseminations: int = 0
    acknowledged_at: datetime | None = None
    rejected_by: str | None = None
    rejected_at: datetime | None = None
    actioned_at: datetime | None = None
    closed_at: datetime | None = None
    _force: str | None = None

    def note(self, event: LedgerEvent) -> None:
        """Track an event the subject's state has just accepted."""
        at = event.occurred_at
        if isinstance(event, Subject.Disseminated):
            self.first_disseminated_at = self.first_disseminated_at or at
            self.disseminations += 1
            self._force = event.to_force
            self.acknowledged_at = self.rejected_by = self.rejected_at = self.actioned_at = None
        elif isinstance(event, Subject.ForceAcknowledged):
            self.acknowledged_at = at
        elif isinstance(event, Subject.ForceRejected):
            self.rejected_by, self.rejected_at = self._force, at
        elif isinstance(event, Subject.ForceActionRecorded):
            self.actioned_at = self.actioned_at or at
        elif isinstance(event, Subject.Closed):
            self.closed_at = at


def _position(state: SubjectState, progress: _Progress, referral: ReferralState) -> SubjectPosition:
    actioned = state.state == ACTIONED
    if state.state == CLOSED:
        where, responsible, responsible_as = CLOSED, None, None
    elif state.state in (WITH_FORCE, ACTIONED):  # an action does not move a subject
        where, responsible, responsible_as = WITH_FORCE, state.force, FORCE
    else:
        # with the owner, or in transit: until the force answers, the referral's owner
        # (its custodian while unowned) must chase
        where = IN_TRANSIT if state.state == IN_TRANSIT else WITH_REFERRAL_OWNER
        if referral.owner_unit is not None:
            responsible, responsible_as = referral.owner_unit, OWNER
        else:
            responsible, responsible_as = referral.custodian_unit, CUSTODIAN
    return SubjectPosition(
        subject=state.subject,
        category=state.category,
        state=where,
        responsible_unit=responsible,
        responsible_as=responsible_as,
        owner=referral.owner_unit,
        force=state.force if where in (IN_TRANSIT, WITH_FORCE) else None,
        band=state.band,
        target_force=state.target_force,
        extracted_at=state.extracted_at,
        first_disseminated_at=progress.first_disseminated_at,
        disseminated_at=state.disseminated_at,
        disseminations=progress.disseminations,
        acknowledged_at=progress.acknowledged_at,
        rejected_by=progress.rejected_by if where == WITH_REFERRAL_OWNER else None,
        rejected_at=progress.rejected_at if where == WITH_REFERRAL_OWNER else None,
        actioned=actioned,
        actioned_at=progress.actioned_at if actioned else None,
        closed_at=progress.closed_at,
        outcome=state.outcome,
    )


def subject_positions(
    referral_events: Sequence[LedgerEvent],
    subject_events: Mapping[str, Sequence[LedgerEvent]],
    at: datetime,
    as_known_at: datetime | None = None,
) -> list[SubjectPosition]:
    """Every subject extracted by ``at`` (as known at ``as_known_at``), in directory order."""
    return _positions(referral_state_at(referral_events, at, as_known_at), subject_events, at, as_known_at)


def _positions(
    referral: ReferralState, subject_events: Mapping[str, Sequence[LedgerEvent]], at: datetime, as_known_at: datetime | None
) -> list[SubjectPosition]:
    positions = []
    for history in subject_events.values():
        position = subject_position(known(history, as_known_at), referral, at)
        if position is not None:
            positions.append(position)
    return positions


@dataclass(frozen=True)
class PackageSummary:
    """A bulk package at one instant: its subjects by state, its disseminations, its obligations."""

    referral: str
    at: datetime
    as_known_at: datetime | None
    received_at: datetime
    claimed_subject_count: int | None
    #: the referral's owning unit and its custodian at the instant
    owner: str | None
    custodian: str
    subjects: int
    #: position → subjects (every position present, zeros included; they sum to ``subjects``)
    by_state: dict[str, int]
    #: subjects a force has acted on (in transit or with that force)
    actioned: int
    triaged: int
    #: force → subjects in transit to it / with it / actioned by it
    by_force: dict[str, dict[str, int]]
    #: every dissemination that occurred by the instant, re-sends included
    disseminations: int
    first_dissemination: datetime | None
    last_dissemination: datetime | None
    #: days from receipt to the first dissemination (None until there is one)
    days_to_first_dissemination: float | None
    #: rule → status → count, for the subject rules; None when not evaluated
    obligations: dict[str, dict[str, int]] | None = None
    #: the policy version the obligations were evaluated with
    policy: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {name: _plain(getattr(self, name)) for name in (f.name for f in fields(self))}


def package_summary(
    referral_events: Sequence[LedgerEvent],
    subject_events: Mapping[str, Sequence[LedgerEvent]],
    at: datetime,
    as_known_at: datetime | None = None,
    *,
    obligations: Iterable[Obligation] | None = None,
    policy: str | None = None,
) -> PackageSummary:
    """A package's subjects by state at ``at``, its disseminations and, given the obligations
    evaluated for the same instant and knowledge, the subject obligations by status."""
    referral = referral_state_at(referral_events, at, as_known_at)
    received = referral_events[0]
    positions = _positions(referral, subject_events, at, as_known_at)
    by_state = Counter(p.state for p in positions)
    by_force: dict[str, Counter[str]] = {}
    for position in positions:
        if position.force is not None:
            counts = by_force.setdefault(position.force, Counter())
            counts[position.state] += 1
            counts[ACTIONED] += position.actioned
    sent = sorted(
        e.occurred_at
        for history in subject_events.values()
        for e in known(history, as_known_at)
        if isinstance(e, Subject.Disseminated) and e.occurred_at <= at
    )
    first = sent[0] if sent else None
    return PackageSummary(
        referral=referral.reference,
        at=at,
        as_known_at=as_known_at,
        received_at=referral.received_at,
        claimed_subject_count=received.claimed_subject_count if isinstance(received, Referral.Received) else None,
        owner=referral.owner_unit,
        custodian=referral.custodian_unit,
        subjects=len(positions),
        by_state={s: by_state[s] for s in POSITIONS},
        actioned=sum(p.actioned for p in positions),
        triaged=sum(p.band is not None for p in positions),
        by_force={f: {s: c[s] for s in (IN_TRANSIT, WITH_FORCE, ACTIONED)} for f, c in sorted(by_force.items())},
        disseminations=len(sent),
        first_dissemination=first,
        last_dissemination=sent[-1] if sent else None,
        days_to_first_dissemination=days(first - referral.received_at) if first else None,
        obligations=None if obligations is None else count_subject_obligations(obligations),
        policy=policy,
    )


def count_subject_obligations(rows: Iterable[Obligation]) -> dict[str, dict[str, int]]:
    """rule → status → count over the subject rules (referral-level rows are left out)."""
    counts = {rule: dict.fromkeys(STATUSES, 0) for rule in SUBJECT_RULES}
    for row in rows:
        if row.subject is not None and row.rule in counts:
            counts[row.rule][row.status] = counts[row.rule].get(row.status, 0) + 1
    return counts


def _plain(value: object) -> object:
    return iso(value) if isinstance(value, datetime) else value


def evaluate_package(
    referral_events: Sequence[LedgerEvent],
    subject_events: Mapping[str, Sequence[LedgerEvent]],
    at: datetime,
    as_known_at: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> PackageSummary:
    """``package_summary`` with the subject obligations evaluated by the obligations fold.

    One knowledge basis for the whole answer: the obligations see exactly the events the
    positions see (all of them, or those recorded by ``as_known_at``), so the counts of an
    answer always agree with each other.
    """
    seen = {subject: known(history, as_known_at) for subject, history in subject_events.items()}
    rows = obligations_at(known(referral_events, as_known_at), seen, at, policy=policy, as_known_now=True)
    return package_summary(referral_events, subject_events, at, as_known_at, obligations=rows, policy=policy.version)

"""What the policy asked of a referral and its subjects at an instant, and whether it was done.

A pure fold (docs/DOMAIN.md §7 and §7.1): events in, one ``Obligation`` per clock the rules start out.
Each obligation has a clock start, a due instant and, once something satisfies it, the event
that did; judged at the instant ``at`` it is met (satisfied by its due instant, exactly on
time included), breached (satisfied later), open and overdue (unsatisfied, due before ``at``)
or open and not yet due.

Evaluated at ``at``, only events that occurred by ``at`` and were recorded by ``at`` count
(``ledger.knowledge.known``: corrections and retractions recorded by then applied): what a
manager could have seen that day. ``as_known_now`` drops the second condition
(hindsight), so a late entry can turn an overdue obligation into a breached or met one.

Which events are valid is decided by ``ledger.referral.ReferralState`` and
``ledger.subject.SubjectState`` walked in business order; an event they refuse there (an
acceptance of an offer that a back-dated withdrawal had already closed, say) starts and
satisfies nothing. The rule semantics, per rule id:

- owner-accepted: per ``received``, ``ownership_released`` and ``reopened``; satisfied by the
  first valid ``ownership_accepted`` after it.
- initial-assessment: from ``received``, 1 day when it carries immediate risk, else 7;
  satisfied by the first ``assessed``.
- offer-reply: per offer, due at the earlier of its ``reply_due`` and the default; satisfied by
  the offered unit's acceptance or decline, or a withdrawal.
- escalation-decided: per escalation, due at the earlier of ``decision_due`` and the default;
  satisfied by the first decision that is not DEFER, or by closure.
- deferred-revisit: per DEFER, due at its ``revisit_by``; satisfied by the next decision.
- supervisory-review: starts at the first ``assessed``, restarts at every review (and at a
  reopening of an assessed referral); the cadence follows the latest band assessed at or
  before the clock start; a review's ``next_review_by`` brings the due forward when earlier.
- external-reply: per request; requests and replies are matched first in, first out.
- dissemination: per ``subject_triaged`` and per ``force_rejected``; satisfied by the next
  dissemination or by ``subject_closed``.
- force-acknowledgement / force-action: per dissemination, band from the latest triage.
  Acknowledgement is satisfied by ``force_acknowledged``, ``force_rejected`` or a force
  action (a force that acted had the subject); action by ``force_action_recorded``, and it
  ends with a rejection or with a new dissemination (actions refer to the latest one).
- ``closed`` ends every open clock of the referral and of its subjects (subject events cannot
  be recorded on a closed referral, so their clocks could otherwise never end);
  ``subject_closed`` ends every open clock of that subject.

Met or discharged: a clock stopped by something other than doing the thing it asks for (the
referral or the subject closed, a force's rejection ending the wait for its action, a new
dissemination replacing the one awaiting action, an offer withdrawn) is **discharged**, never
met: nobody did the work, the reason to do it went away. Such rows carry ``ended_by`` in
``detail``, naming the event type that discharged them, and ``satisfied_at``/``satisfied_by``
point at it. A clock already overdue when discharged stays **breached** (it was late before
the reason went away). One exception is a decision: a subject closed with an outcome (NFA,
returned to the originator) decides what becomes of an undisseminated subject, so it
**meets** ``dissemination`` (still with ``ended_by`` = ``subject_closed``); the force's
clocks it ends are discharged.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from ledger.knowledge import known
from ledger.policy import (
    DEFAULT_POLICY,
    DEFERRED_REVISIT,
    DISSEMINATION,
    ESCALATION_DECIDED,
    EXTERNAL_REPLY,
    FORCE_ACKNOWLEDGEMENT,
    FORCE_ACTION,
    INITIAL_ASSESSMENT,
    OFFER_REPLY,
    OWNER_ACCEPTED,
    RISK_BANDS,
    RULE_IDS,
    SUPERVISORY_REVIEW,
    Policy,
)
from ledger.referral import LedgerEvent, Referral, ReferralState, business_order
from ledger.subject import Subject, SubjectState
from ledger.values import days, iso

__all__ = [
    "BREACHED",
    "COLUMNS",
    "DETAIL_KEYS",
    "DISCHARGED",
    "MET",
    "OVERDUE",
    "PENDING",
    "STATUSES",
    "Obligation",
    "judged_status",
    "obligations_at",
]

MET: Final = "met"
#: stopped by something other than doing the thing (closure, rejection, withdrawal), by its due instant.
DISCHARGED: Final = "discharged"
BREACHED: Final = "breached"
OVERDUE: Final = "open-overdue"
PENDING: Final = "open-not-due"
STATUSES: Final = (MET, DISCHARGED, BREACHED, OVERDUE, PENDING)

#: every key ``Obligation.detail`` may hold, in the order answers print them.
DETAIL_KEYS: Final = ("to_unit", "to_role", "from", "to_force", "ended_by")

#: the columns of ``Obligation.as_row()`` (a CSV header), detail keys last.
COLUMNS: Final = (
    "rule",
    "referral",
    "subject",
    "status",
    "started_at",
    "due",
    "satisfied_at",
    "days_late",
    "band",
    "cadence_days",
    "cycles_missed",
    "started_by",
    "started_recorded_at",
    "satisfied_by",
    "satisfied_recorded_at",
    *DETAIL_KEYS,
)

_RULE_ORDER: Final = {rule: index for index, rule in enumerate(RULE_IDS)}

# A ratio of two rounded day counts can land a hair above a whole number (1.1 / 0.1).
_EPSILON: Final = 1e-9
_DAY: Final = timedelta(days=1)


@dataclass(frozen=True)
class Obligation:
    """One clock a rule started, its due instant, and how it stood at the instant judged."""

    rule: str
    referral: str
    subject: str | None
    started_at: datetime
    started_by: int
    started_recorded_at: datetime
    due: datetime
    satisfied_at: datetime | None
    satisfied_by: int | None
    satisfied_recorded_at: datetime | None
    status: str
    days_late: float | None
    band: str | None = None
    cadence_days: float | None = None
    cycles_missed: int | None = None
    detail: dict[str, str] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        """A flat, JSON-ready row (times ISO 8601 with Z), ``detail`` keys alongside."""

        def instant(value: datetime | None) -> str | None:
            return None if value is None else iso(value)

        row: dict[str, Any] = {
            "rule": self.rule,
            "referral": self.referral,
            "subject": self.subject,
            "status": self.status,
            "started_at": iso(self.started_at),
            "due": iso(self.due),
            "satisfied_at": instant(self.satisfied_at),
            "days_late": self.days_late,
            "band": self.band,
            "cadence_days": self.cadence_days,
            "cycles_missed": self.cycles_missed,
            "started_by": self.started_by,
            "started_recorded_at": iso(self.started_recorded_at),
            "satisfied_by": self.satisfied_by,
            "satisfied_recorded_at": instant(self.satisfied_recorded_at),
        }
        row.update(self.detail)
        return row


def obligations_at(
    referral_events: Sequence[LedgerEvent],
    subject_events: Mapping[str, Sequence[LedgerEvent]],
    at: datetime,
    *,
    policy: Policy = DEFAULT_POLICY,
    as_known_now: bool = False,
) -> list[Obligation]:
    """Every obligation of a referral and its subjects, judged at ``at``.

    ``referral_events`` and each list of ``subject_events`` are streams in recording order
    (``Ledger.referral_events`` / ``Ledger.subject_events``). Rows come ordered by clock
    start, then rule (in ``ledger.policy.RULE_IDS`` order), then subject.
    """
    periods = _periods(policy)
    referral = _ReferralClocks(periods)
    referral.fold(_known(referral_events, at, as_known_now))
    reference = referral.reference
    clocks: list[tuple[str | None, _Clock]] = [(None, clock) for clock in referral.clocks]
    closed_at = [closure.occurred_at for closure in referral.closures]
    for subject, events in subject_events.items():
        subject_clocks = _SubjectClocks(periods)
        subject_clocks.fold(_known(events, at, as_known_now))
        if reference is None:
            reference = subject_clocks.referral
        if closed_at:
            _end_at_closures(subject_clocks.clocks, referral.closures, closed_at)
        clocks.extend((subject, clock) for clock in subject_clocks.clocks)
    if reference is None:  # nothing known yet at ``at``
        return []
    obligations = [_judged(clock, reference, subject, at) for subject, clock in clocks]
    obligations.sort(key=lambda o: (o.started_at, _RULE_ORDER[o.rule], o.subject or "", o.started_by))
    return obligations


# --- the clocks --------------------------------------------------------------------------


class _Clock:
    """A running obligation while the fold walks the events."""

    __slots__ = ("band", "cadence", "detail", "discharged", "due", "end", "ended_by", "next_review_by", "rule", "start")

    def __init__(
        self,
        rule: str,
        start: LedgerEvent,
        due: datetime,
        *,
        band: str | None = None,
        cadence: timedelta | None = None,
        detail: dict[str, str] | None = None,
    ) -> None:
        self.rule = rule
        self.start = start
        self.due = due
        self.band = band
        self.cadence = cadence
        self.detail = detail
        self.next_review_by: datetime | None = None
        self.end: LedgerEvent | None = None
        self.ended_by: str | None = None
        self.discharged = False

    def satisfy(self, event: LedgerEvent) -> None:
        """The thing asked for was done by ``event``."""
        if self.end is None:
            self.end = event

    def discharge(self, event: LedgerEvent, ended_by: str, *, decided: bool = False) -> None:
        """``event`` (of type ``ended_by``) stopped the clock without the thing being done.

        ``decided``: the event is itself a decision that answers the rule (it meets it).
        """
        if self.end is None:
            self.end, self.ended_by, self.discharged = event, ended_by, not decided


@dataclass(frozen=True)
class _Periods:
    """A policy's numbers looked up once, not once per event."""

    enabled: frozenset[str]
    owner_accepted: timedelta
    initial_assessment: timedelta
    initial_assessment_immediate: timedelta
    offer_reply: timedelta
    escalation_decided: timedelta
    external_reply: timedelta
    review: Mapping[str | None, timedelta]
    dissemination: Mapping[str, timedelta]
    force_acknowledgement: Mapping[str, timedelta]
    force_action: Mapping[str, timedelta]


@lru_cache(maxsize=16)
def _periods(policy: Policy) -> _Periods:
    return _Periods(
        enabled=frozenset(rule for rule in RULE_IDS if policy.enabled(rule)),
        owner_accepted=policy.owner_accepted(),
        initial_assessment=policy.initial_assessment(immediate_risk=False),
        initial_assessment_immediate=policy.initial_assessment(immediate_risk=True),
        offer_reply=policy.offer_reply(),
        escalation_decided=policy.escalation_decided(),
        external_reply=policy.external_reply(),
        review={band: policy.supervisory_review(band) for band in (None, *RISK_BANDS)},
        dissemination={band: policy.dissemination(band) for band in RISK_BANDS},
        force_acknowledgement={band: policy.force_acknowledgement(band) for band in RISK_BANDS},
        force_action={band: policy.force_action(band) for band in RISK_BANDS},
    )


def _known(events: Sequence[LedgerEvent], at: datetime, as_known_now: bool) -> list[LedgerEvent]:
    """The events that count at ``at`` (as known then, or now), in business order."""
    return business_order([e for e in known(events, None if as_known_now else at) if e.occurred_at <= at])


def _earlier(default: datetime, stated: datetime | None) -> datetime:
    return default if stated is None or default <= stated else stated


class _ReferralClocks:
    """The referral's own rules, walked with ReferralState deciding what is valid."""

    def __init__(self, periods: _Periods) -> None:
        self.periods = periods
        self.on = periods.enabled
        self.reference: str | None = None
        self.clocks: list[_Clock] = []
        #: valid closures, in business order: they also end subject clocks.
        self.closures: list[LedgerEvent] = []
        self.owner: _Clock | None = None
        self.assessment: _Clock | None = None
        self.offer: _Clock | None = None
        self.escalations: list[_Clock] = []
        self.deferrals: list[_Clock] = []
        self.requests: deque[_Clock] = deque()
        self.review: _Clock | None = None
        #: the latest band assessed so far; None until the first assessment.
        self.band: str | None = None
        self.handlers: dict[type[LedgerEvent], Callable[[Any], None]] = {
            Referral.Assessed: self.assessed,
            Referral.OwnershipOffered: self.offered,
            Referral.OwnershipAccepted: self.accepted,
            Referral.OwnershipDeclined: self.answered,
            Referral.OfferWithdrawn: self.answered,
            Referral.OwnershipReleased: self.unowned,
            Referral.EscalationRaised: self.escalated,
            Referral.DecisionRecorded: self.decided,
            Referral.ReviewRecorded: self.reviewed,
            Referral.ExternalRequestReceived: self.requested,
            Referral.ExternalReplySent: self.replied,
            Referral.Closed: self.closed,
            Referral.Reopened: self.reopened,
        }

    def fold(self, ordered: Sequence[LedgerEvent]) -> None:
        state: ReferralState | None = None
        handlers = self.handlers
        for event in ordered:
            if state is None:
                if isinstance(event, Referral.Received):
                    state = ReferralState.received(event)
                    self.received(event)
                continue
            # A refused event changes nothing, so it can neither start nor satisfy a clock.
            if not state.apply(event):
                continue
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)

    def start(self, rule: str, event: LedgerEvent, due: datetime, **extra: Any) -> _Clock | None:
        if rule not in self.on:
            return None
        clock = _Clock(rule, event, due, **extra)
        self.clocks.append(clock)
        return clock

    def received(self, event: Referral.Received) -> None:
        self.reference = event.reference
        self.unowned(event)
        period = self.periods.initial_assessment_immediate if event.immediate_risk else self.periods.initial_assessment
        self.assessment = self.start(INITIAL_ASSESSMENT, event, event.occurred_at + period)

    def unowned(self, event: LedgerEvent) -> None:
        self.owner = self.start(OWNER_ACCEPTED, event, event.occurred_at + self.periods.owner_accepted)

    def assessed(self, event: Referral.Assessed) -> None:
        if self.assessment is not None:
            self.assessment.satisfy(event)
            self.assessment = None
        first = self.band is None
        self.band = event.risk_band
        if first:
            self.start_review(event, None)
        elif self.review is not None and self.review.start.occurred_at == event.occurred_at:
            # Assessed at the very instant the clock started (recorded after it): the band
            # "assessed at or before the clock start" is this one.
            self.set_review_period(self.review)

    def start_review(self, event: LedgerEvent, next_review_by: datetime | None) -> None:
        self.review = self.start(SUPERVISORY_REVIEW, event, event.occurred_at)
        if self.review is not None:
            self.review.next_review_by = next_review_by
            self.set_review_period(self.review)

    def set_review_period(self, clock: _Clock) -> None:
        cadence = self.periods.review[self.band]
        clock.band, clock.cadence = self.band, cadence
        clock.due = _earlier(clock.start.occurred_at + cadence, clock.next_review_by)

    def offered(self, event: Referral.OwnershipOffered) -> None:
        due = _earlier(event.occurred_at + self.periods.offer_reply, event.reply_due)
        self.offer = self.start(OFFER_REPLY, event, due, detail={"to_unit": event.to_unit})

    def accepted(self, event: Referral.OwnershipAccepted) -> None:
        if self.owner is not None:
            self.owner.satisfy(event)
            self.owner = None
        self.answered(event)

    def answered(self, event: LedgerEvent) -> None:
        if self.offer is not None:
            if isinstance(event, Referral.OfferWithdrawn):
                self.offer.discharge(event, "offer_withdrawn")
            else:
                self.offer.satisfy(event)
            self.offer = None

    def escalated(self, event: Referral.EscalationRaised) -> None:
        due = _earlier(event.occurred_at + self.periods.escalation_decided, event.decision_due)
        clock = self.start(ESCALATION_DECIDED, event, due, detail={"to_role": event.to_role})
        if clock is not None:
            self.escalations.append(clock)

    def decided(self, event: Referral.DecisionRecorded) -> None:
        for deferral in self.deferrals:
            deferral.satisfy(event)
        self.deferrals.clear()
        if event.outcome != "DEFER":
            for escalation in self.escalations:
                escalation.satisfy(event)
            self.escalations.clear()
        elif event.revisit_by is not None:
            clock = self.start(DEFERRED_REVISIT, event, event.revisit_by)
            if clock is not None:
                self.deferrals.append(clock)

    def reviewed(self, event: Referral.ReviewRecorded) -> None:
        if self.band is None:
            return  # the review cycle starts at the first assessment
        if self.review is not None:
            self.review.satisfy(event)
        self.start_review(event, event.next_review_by)

    def requested(self, event: Referral.ExternalRequestReceived) -> None:
        clock = self.start(EXTERNAL_REPLY, event, event.occurred_at + self.periods.external_reply, detail={"from": event.requester})
        if clock is not None:
            self.requests.append(clock)

    def replied(self, event: Referral.ExternalReplySent) -> None:
        if self.requests:
            self.requests.popleft().satisfy(event)

    def closed(self, event: Referral.Closed) -> None:
        for clock in (self.owner, self.assessment, self.offer, self.review, *self.escalations, *self.deferrals, *self.requests):
            if clock is not None:
                clock.discharge(event, "closed")
        self.owner = self.assessment = self.offer = self.review = None
        self.escalations.clear()
        self.deferrals.clear()
        self.requests.clear()
        self.closures.append(event)

    def reopened(self, event: Referral.Reopened) -> None:
        self.unowned(event)
        if self.band is not None:
            # A live referral is supervised again; without this a reopened referral would
            # need no review until someone happened to record one.
            self.start_review(event, None)


class _SubjectClocks:
    """One subject's rules, walked with SubjectState deciding what is valid."""

    def __init__(self, periods: _Periods) -> None:
        self.periods = periods
        self.on = periods.enabled
        self.referral: str | None = None
        self.clocks: list[_Clock] = []

    def start(self, rule: str, event: LedgerEvent, period: timedelta, band: str, detail: dict[str, str] | None = None) -> _Clock | None:
        if rule not in self.on:
            return None
        clock = _Clock(rule, event, event.occurred_at + period, band=band, detail=detail)
        self.clocks.append(clock)
        return clock

    def fold(self, ordered: Sequence[LedgerEvent]) -> None:
        periods = self.periods
        state: SubjectState | None = None
        undisseminated: list[_Clock] = []
        acknowledgement: _Clock | None = None
        action: _Clock | None = None
        for event in ordered:
            if state is None:
                if isinstance(event, Subject.Extracted):
                    state = SubjectState(event.referral, event.subject, event.category, event.occurred_at)
                    self.referral = event.referral
                continue
            if not state.apply(event):
                continue
            band = state.band  # the latest triage's band, this event applied
            if isinstance(event, Subject.Triaged):
                clock = self.start(DISSEMINATION, event, periods.dissemination[event.band], event.band)
                if clock is not None:
                    undisseminated.append(clock)
            elif isinstance(event, Subject.Disseminated):
                for clock in undisseminated:
                    clock.satisfy(event)
                undisseminated.clear()
                if action is not None:
                    action.discharge(event, "subject_disseminated")
                acknowledgement = action = None
                if band is not None:  # an untriaged subject has no band, hence no period
                    to_force = {"to_force": event.to_force}
                    acknowledgement = self.start(FORCE_ACKNOWLEDGEMENT, event, periods.force_acknowledgement[band], band, to_force)
                    action = self.start(FORCE_ACTION, event, periods.force_action[band], band, dict(to_force))
            elif isinstance(event, Subject.ForceAcknowledged):
                if acknowledgement is not None:
                    acknowledgement.satisfy(event)
                acknowledgement = None
            elif isinstance(event, Subject.ForceRejected):
                if acknowledgement is not None:
                    acknowledgement.satisfy(event)
                if action is not None:
                    action.discharge(event, "force_rejected")
                acknowledgement = action = None
                if band is not None:
                    clock = self.start(DISSEMINATION, event, periods.dissemination[band], band)
                    if clock is not None:
                        undisseminated.append(clock)
            elif isinstance(event, Subject.ForceActionRecorded):
                # the subject rules admit an action only after an acknowledgement
                if action is not None:
                    action.satisfy(event)
                action = None
            elif isinstance(event, Subject.Closed):
                # closing with an outcome decides what becomes of an unsent subject (met);
                # the force's clocks it ends were not answered (discharged)
                for clock in undisseminated:
                    clock.discharge(event, "subject_closed", decided=True)
                for open_clock in (acknowledgement, action):
                    if open_clock is not None:
                        open_clock.discharge(event, "subject_closed")
                undisseminated.clear()
                acknowledgement = action = None


def _end_at_closures(clocks: Sequence[_Clock], closures: Sequence[LedgerEvent], closed_at: Sequence[datetime]) -> None:
    """A referral's closure ends each subject clock still running at that instant."""
    for clock in clocks:
        index = bisect_left(closed_at, clock.start.occurred_at)
        if index == len(closed_at):
            continue
        closure = closures[index]
        if clock.end is None or clock.end.occurred_at > closure.occurred_at:
            clock.end, clock.ended_by, clock.discharged = closure, "closed", True


def judged_status(due: datetime, ended_at: datetime | None, discharged: bool, at: datetime) -> tuple[str, float | None]:
    """A clock's status at ``at`` and its days late: the one judgment of met, discharged, breached,
    overdue and pending (``ended_at``: when it was met or stopped, None while it runs at ``at``)."""
    if ended_at is not None:
        if ended_at <= due:
            return (DISCHARGED if discharged else MET), None
        return BREACHED, days(ended_at - due)
    if due < at:
        return OVERDUE, days(at - due)
    return PENDING, None


def _judged(clock: _Clock, referral: str, subject: str | None, at: datetime) -> Obligation:
    end, due = clock.end, clock.due
    status, late = judged_status(due, None if end is None else end.occurred_at, clock.discharged, at)
    cadence_days = cycles = None
    if clock.cadence is not None:
        cadence_days = days(clock.cadence)
        if late is not None:
            # Counted on the reported (rounded) figures, so an answer agrees with itself;
            # any lateness at all misses at least the cycle that was due.
            cycles = max(1, math.ceil(late / (clock.cadence / _DAY) - _EPSILON))
    detail = dict(clock.detail) if clock.detail else {}
    if clock.ended_by is not None:
        detail["ended_by"] = clock.ended_by
    return Obligation(
        rule=clock.rule,
        referral=referral,
        subject=subject,
        started_at=clock.start.occurred_at,
        started_by=clock.start.originator_version,
        started_recorded_at=clock.start.recorded_at,
        due=due,
        satisfied_at=None if end is None else end.occurred_at,
        satisfied_by=None if end is None else end.originator_version,
        satisfied_recorded_at=None if end is None else end.recorded_at,
        status=status,
        days_late=late,
        band=clock.band,
        cadence_days=cadence_days,
        cycles_missed=cycles,
        detail=detail,
    )

"""``refledger audit authority``: every event recorded outside the authority rules.

Live recording refuses such an event; ``import --historical`` keeps it (a migration keeps the
real history), and this lists it. Each event is judged by the same rules
(``ledger.authority``, as the policy sets them), at its ``occurred_at``, against everything
recorded before it (its referral's and subject's events earlier in the log, read through
``ledger.knowledge.known`` by the folds), exactly as a live recording would have been. The
role-level part of a rule applies to the events recorded once the directory was in force,
like the actor check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.application import Ledger
from ledger.authority import AGENCY_UNIT
from ledger.knowledge import amendment_kind
from ledger.policy import DEFAULT_POLICY, Policy
from ledger.referral import LedgerEvent, Referral, fold_state
from ledger.subject import Subject, fold_subject
from ledger.values import Actor, iso, referral_id
from projections.accountable import Directory
from projections.ownership import event_type, source_line

COLUMNS = ("rule", "referral", "subject", "version", "type", "actor", "occurred_at", "recorded_at", "reason", "line")


@dataclass(frozen=True)
class AuthorityFinding:
    """One event recorded outside an authority rule."""

    rule: str
    referral: str
    subject: str | None
    version: int
    type: str
    actor: str
    occurred_at: datetime
    recorded_at: datetime
    reason: str
    line: int | None

    def as_row(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "referral": self.referral,
            "subject": self.subject,
            "version": self.version,
            "type": self.type,
            "actor": self.actor,
            "occurred_at": iso(self.occurred_at),
            "recorded_at": iso(self.recorded_at),
            "reason": self.reason,
            "line": self.line,
        }


def authority_findings(
    ledger: Ledger,
    policy: Policy = DEFAULT_POLICY,
    *,
    at: datetime | None = None,
    as_known_at: datetime | None = None,
    page: int = 5000,
) -> list[AuthorityFinding]:
    """Every referral and subject event outside its authority rule, in log order.

    ``at``: only events that occurred by then; ``as_known_at``: only events recorded by then.
    """
    rules = policy.authority_rules()
    in_force_from = ledger.directory_in_force_from()
    directory = Directory(ledger)
    agency_of: dict[str, bool] = {}
    referrals: dict[UUID, list[LedgerEvent]] = {}
    subjects: dict[UUID, list[LedgerEvent]] = {}
    found: list[AuthorityFinding] = []
    after = 0
    while notifications := ledger.notifications(after, page):
        after = notifications[-1].id
        for notification in notifications:
            topic = notification.topic
            if not (topic.startswith("refledger:Referral.") or topic.startswith("refledger:Subject.")):
                continue
            event = ledger.mapper.to_domain_event(notification)
            if not isinstance(event, LedgerEvent):
                continue
            if isinstance(event, Referral.Event):
                history = referrals.setdefault(event.originator_id, [])
                subject_history: list[LedgerEvent] | None = None
            else:
                subject_history = subjects.setdefault(event.originator_id, [])
                first = subject_history[0] if subject_history else event
                history = referrals.get(referral_id(first.referral), []) if isinstance(first, Subject.Extracted) else []
            breach = None
            wanted = (at is None or event.occurred_at <= at) and (as_known_at is None or event.recorded_at <= as_known_at)
            if wanted and amendment_kind(event) is None and history:
                actor = Actor.from_dict(event.actor)
                agency = None
                if in_force_from is not None and event.recorded_at >= in_force_from:
                    if actor.unit not in agency_of:
                        unit = directory.unit(actor.unit)
                        agency_of[actor.unit] = unit is not None and unit.kind == AGENCY_UNIT
                    agency = agency_of[actor.unit]
                referral_state = fold_state(history, until=event.occurred_at)
                force = None
                if subject_history:
                    force = fold_subject(subject_history, until=event.occurred_at).force
                breach = rules.breach(type(event).TOPIC, actor, referral_state, force=force, agency=agency)
            if breach is not None:
                subject_name = getattr(subject_history[0], "subject", None) if subject_history else None
                found.append(
                    AuthorityFinding(
                        breach[0],
                        _referral_name(history),
                        subject_name,
                        event.originator_version,
                        event_type(event),
                        str(Actor.from_dict(event.actor)),
                        event.occurred_at,
                        event.recorded_at,
                        breach[1],
                        source_line(event),
                    )
                )
            (history if subject_history is None else subject_history).append(event)
    return found


def _referral_name(history: list[LedgerEvent]) -> str:
    first = history[0] if history else None
    return first.reference if isinstance(first, Referral.Received) else "?"

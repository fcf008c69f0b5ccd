"""Each authority rule (ledger/authority.py, docs/DOMAIN.md §6.1), given/when/then on each backend:
a live recording by the wrong actor is refused naming the rule and records nothing; the right
actor's is recorded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.errors import RuleViolation
from ledger.importing import parse_record
from ledger.values import Actor, Stamp
from ledger.wiring import open_ledger

HR = "P-900:hr-officer@U-HR"
REGISTRY = "P-101:registry-officer@U-INTAKE"
TRIAGE_ANALYST = "P-102:analyst@U-TRIAGE"
TRIAGE_MANAGER = "P-103:team-manager@U-TRIAGE"
TASKING = "P-111:head-of-tasking@U-TASKING"
OPS1_MANAGER = "P-104:team-manager@U-OPS1"
OPS1_ANALYST = "P-113:analyst@U-OPS1"
OPS1_DI = "P-105:detective-inspector@U-OPS1"
OPS2_MANAGER = "P-106:team-manager@U-OPS2"
OPS2_ANALYST = "P-130:analyst@U-OPS2"
DUTY_OFFICER = "P-140:duty-officer@U-OPS2"
NORTH = "P-201:force-liaison@F-NORTH"
EAST = "P-202:force-liaison@F-EAST"
STAFF = (HR, REGISTRY, TRIAGE_ANALYST, TRIAGE_MANAGER, TASKING, OPS1_MANAGER, OPS1_ANALYST, OPS1_DI, OPS2_MANAGER, OPS2_ANALYST)
STAFF += (DUTY_OFFICER, NORTH, EAST)
T0 = datetime(2024, 1, 2, 9, tzinfo=UTC)


class Desk:
    """A ledger recorded live, one command after another, ten minutes apart."""

    def __init__(self, url: str, *, directory: bool) -> None:
        self.now = T0
        self.ledger, _ = open_ledger(url, clock=lambda: self.now)
        if directory:
            for actor in STAFF:
                unit = Actor.parse(actor).unit
                if self.ledger.unit_state(unit) is None:
                    kind = "force" if unit.startswith("F-") else "agency-unit"
                    self._run({"type": "unit_registered", "unit": unit, "name": unit, "kind": kind, "actor": self._actor(HR)})
            for actor in STAFF:
                who = Actor.parse(actor)
                self._run({"type": "person_registered", "person": who.person, "employer": "NCA", "actor": self._actor(HR)})
                self._run({"type": "role_assigned", "person": who.person, "role": who.role, "unit": who.unit, "actor": self._actor(HR)})
            self.ledger.enforce_directory(Stamp(actor=Actor.parse(HR)), T0)
        self.now = datetime(2024, 3, 1, 9, tzinfo=UTC)

    @staticmethod
    def _actor(actor: str) -> dict[str, str]:
        return Actor.parse(actor).as_dict()

    def _run(self, record: dict[str, Any]) -> None:
        self.now += timedelta(minutes=10)
        parse_record(record, occurred_now_if_missing=True).run(self.ledger)

    def record(self, kind: str, actor: str, **fields: Any) -> None:
        self._run({"type": kind, "referral": "R-1", "actor": self._actor(actor), **fields})

    def refused(self, rule: str, kind: str, actor: str, **fields: Any) -> str:
        before = self.ledger.head()
        with pytest.raises(RuleViolation) as refusal:
            self.record(kind, actor, **fields)
        assert refusal.value.rule == rule, str(refusal.value)
        assert self.ledger.head() == before
        return str(refusal.value)

    def owner(self) -> str | None:
        return self.ledger.referral("R-1").state_at(self.now).owner_unit

    # --- the usual givens ---

    def received(self) -> Desk:
        self.record("received", REGISTRY, originator="X-ESP", channel="portal", custodian_unit="U-INTAKE")
        return self

    def owned_by_ops1(self) -> Desk:
        self.received()
        self.record("ownership_offered", TRIAGE_MANAGER, to_unit="U-OPS1")
        self.record("ownership_accepted", OPS1_MANAGER)
        return self

    def with_subject(self) -> Desk:
        self.owned_by_ops1()
        self.record("subject_extracted", OPS1_ANALYST, subject="S-1", category="suspect")
        return self


@pytest.fixture
def desk(database_url: str) -> Iterator[Desk]:
    """The directory in force from the start."""
    found = Desk(database_url, directory=True)
    yield found
    found.ledger.close()


@pytest.fixture
def bare(database_url: str) -> Iterator[Desk]:
    """No directory: only the unit-level parts of the rules apply."""
    found = Desk(database_url, directory=False)
    yield found
    found.ledger.close()


def test_authority_answer_offer_only_the_offered_unit(desk: Desk) -> None:
    desk.received().record("ownership_offered", TRIAGE_MANAGER, to_unit="U-OPS1")
    assert "the open offer is to U-OPS1; U-OPS2 cannot answer it" in desk.refused(
        "authority-answer-offer", "ownership_accepted", OPS2_MANAGER
    )
    desk.refused("authority-answer-offer", "ownership_declined", OPS2_MANAGER, reason="no")
    desk.record("ownership_accepted", OPS1_MANAGER)
    assert desk.owner() == "U-OPS1"


def test_authority_offer_by_the_owning_unit(desk: Desk) -> None:
    desk.owned_by_ops1()
    assert "only the owner U-OPS1" in desk.refused("authority-offer", "ownership_offered", TASKING, to_unit="U-OPS2")
    desk.refused("authority-offer", "ownership_offered", NORTH, to_unit="U-OPS2")
    desk.record("ownership_offered", OPS1_MANAGER, to_unit="U-OPS2")
    desk.refused("authority-offer", "offer_withdrawn", OPS2_MANAGER)
    desk.record("offer_withdrawn", OPS1_MANAGER)


def test_authority_offer_while_unowned_by_the_custodian_or_an_agency_role(desk: Desk) -> None:
    desk.received()
    desk.refused("authority-offer", "ownership_offered", NORTH, to_unit="U-OPS1")  # a force, never
    line = desk.refused("authority-offer", "ownership_offered", TRIAGE_ANALYST, to_unit="U-OPS1")
    assert "custodian U-INTAKE or an agency unit's accountable, supervisory or tasking role" in line
    desk.record("ownership_offered", REGISTRY, to_unit="U-OPS1")  # the custodian's intake team
    desk.refused("authority-offer", "offer_withdrawn", NORTH)
    desk.record("offer_withdrawn", TASKING)  # a tasking role of the agency
    desk.record("ownership_offered", TRIAGE_MANAGER, to_unit="U-OPS2")  # an accountable role


def test_authority_escalate_as_for_an_offer(desk: Desk) -> None:
    desk.received()
    desk.refused("authority-escalate", "escalation_raised", NORTH, to_role="head-of-tasking", issue="who leads?")
    desk.record("escalation_raised", TRIAGE_MANAGER, to_role="head-of-tasking", issue="who leads?")
    desk.record("ownership_offered", TRIAGE_MANAGER, to_unit="U-OPS1")
    desk.record("ownership_accepted", OPS1_MANAGER)
    desk.refused("authority-escalate", "escalation_raised", TRIAGE_MANAGER, to_role="head-of-tasking", issue="again")
    desk.record("escalation_raised", OPS1_ANALYST, to_role="head-of-tasking", issue="capacity")


def test_authority_release_by_the_owning_unit(desk: Desk) -> None:
    desk.owned_by_ops1()
    assert "only the owner U-OPS1 can release it, not U-OPS2" in desk.refused(
        "authority-release", "ownership_released", OPS2_MANAGER, reason="not ours"
    )
    desk.record("ownership_released", OPS1_MANAGER, reason="outside remit")
    assert desk.owner() is None


def test_authority_custody_by_the_custodian_unit(desk: Desk) -> None:
    desk.owned_by_ops1()
    desk.refused("authority-custody", "custody_transferred", OPS1_MANAGER, to_unit="U-OPS1")
    desk.record("custody_transferred", REGISTRY, to_unit="U-OPS1")


def test_authority_review_needs_a_supervisory_role(desk: Desk) -> None:
    desk.owned_by_ops1()
    review = {"progress": "on track", "owner_confirmed": "U-OPS1"}
    desk.refused("authority-review", "review_recorded", OPS1_ANALYST, **review)
    desk.refused("authority-review", "review_recorded", NORTH, **review)
    desk.record("review_recorded", OPS1_DI, **review)


def test_authority_decide_by_the_escalated_role_or_a_decision_role(desk: Desk) -> None:
    desk.received().record("escalation_raised", TRIAGE_MANAGER, to_role="duty-officer", issue="who leads?")
    decision = {"rationale": "ops 1 leads", "options_considered": []}
    line = desk.refused("authority-decide", "decision_recorded", OPS1_ANALYST, outcome="ASSIGN_OWNER", **decision)
    assert "(or duty-officer)" in line
    desk.record("decision_recorded", DUTY_OFFICER, outcome="DEFER", revisit_by="2024-03-10T09:00:00Z", **decision)
    desk.record("decision_recorded", DUTY_OFFICER, outcome="ASSIGN_OWNER", **decision)  # a DEFER keeps it open
    desk.refused("authority-decide", "decision_recorded", DUTY_OFFICER, outcome="REJECT", **decision)  # decided: no longer open
    desk.record("decision_recorded", TASKING, outcome="REJECT", **decision)


def test_authority_close_and_reopen_by_the_owning_unit_or_a_decision_role(desk: Desk) -> None:
    desk.owned_by_ops1()
    desk.refused("authority-close", "closed", NORTH, reason="done")
    desk.refused("authority-close", "closed", OPS2_MANAGER, reason="done")
    desk.record("closed", OPS1_MANAGER, reason="done")
    desk.refused("authority-close", "reopened", OPS2_ANALYST, reason="more")
    desk.record("reopened", TASKING, reason="more")


def test_authority_subject_by_the_owning_unit_or_a_supervisory_role(desk: Desk) -> None:
    desk.with_subject()
    triage = {"subject": "S-1", "risk_tool": "RPT", "risk_tool_version": "3", "band": "HIGH", "drivers": []}
    desk.refused("authority-subject", "subject_triaged", OPS2_ANALYST, **triage)
    desk.record("subject_triaged", OPS1_ANALYST, **triage)
    sent = {"subject": "S-1", "to_force": "F-NORTH", "authorised_by": "P-104"}
    desk.refused("authority-subject", "subject_disseminated", NORTH, **sent)
    desk.refused("authority-subject", "subject_disseminated", OPS2_ANALYST, **sent)
    desk.record("subject_disseminated", OPS1_ANALYST, **sent)
    desk.record("force_rejected", NORTH, subject="S-1", reason="not our area")
    closing = {"subject": "S-1", "outcome": "NFA", "rationale": "victim"}
    desk.refused("authority-subject", "subject_closed", OPS2_ANALYST, **closing)
    desk.record("subject_closed", TRIAGE_MANAGER, **closing)  # a supervisory role of the agency


def test_authority_force_answer_only_by_the_force_it_was_sent_to(desk: Desk) -> None:
    desk.with_subject()
    desk.record("subject_disseminated", OPS1_ANALYST, subject="S-1", to_force="F-NORTH", authorised_by="P-104")
    desk.refused("authority-force-answer", "force_acknowledged", EAST, subject="S-1")
    desk.refused("authority-force-answer", "force_acknowledged", OPS1_DI, subject="S-1")
    desk.record("force_acknowledged", NORTH, subject="S-1")
    desk.refused("authority-force-answer", "force_action_recorded", EAST, subject="S-1", action="arrest")
    desk.record("force_action_recorded", NORTH, subject="S-1", action="arrest")


def test_without_the_directory_the_unit_level_rules_hold_and_the_role_level_wait(bare: Desk) -> None:
    bare.with_subject()
    bare.record("subject_disseminated", OPS1_ANALYST, subject="S-1", to_force="F-NORTH", authorised_by="P-104")
    bare.refused("authority-force-answer", "force_acknowledged", EAST, subject="S-1")
    bare.refused("authority-offer", "ownership_offered", TASKING, to_unit="U-OPS2")
    bare.refused("authority-release", "ownership_released", OPS2_MANAGER, reason="x")
    # which units are forces, and who holds a role, only the directory knows
    bare.record("review_recorded", NORTH, progress="x", owner_confirmed="U-OPS1")
    bare.record("closed", NORTH, reason="done")

"""The obligations fold, rule by rule: given recorded events, then what is met, breached or open.

Events go through the real Ledger (in memory) in the import format; freezegun pins the
recording clock, so each event's recorded_at is exactly the instant the test says.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from ledger.application import Ledger
from ledger.importing import parse_record
from ledger.policy import DEFAULT_POLICY, Policy
from ledger.values import iso
from projections.obligations import BREACHED, COLUMNS, DISCHARGED, MET, OVERDUE, PENDING, Obligation, obligations_at

T0 = datetime(2024, 1, 8, 9, 0, tzinfo=UTC)
REF = "R-TEST-1"


def day(n: float) -> datetime:
    """T0 plus ``n`` days."""
    return T0 + timedelta(days=n)


class Story:
    """One referral told event by event: ``given(type, occurred, **fields)``, then judge."""

    def __init__(self, frozen: FrozenDateTimeFactory) -> None:
        self.frozen = frozen
        self.ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

    def given(
        self, type_name: str, occurred: datetime, *, recorded: datetime | None = None, unit: str = "U-INTAKE", **fields: Any
    ) -> Story:
        recorded = recorded or occurred
        record: dict[str, Any] = {
            "type": type_name,
            "referral": REF,
            "occurred_at": iso(occurred),
            "actor": {"person": "P-1", "role": "officer", "unit": unit},
            **{name: iso(value) if isinstance(value, datetime) else value for name, value in fields.items()},
        }
        if recorded - occurred > timedelta(hours=24):
            record["late_reason"] = "entered from the paper file"
        self.frozen.move_to(recorded)
        parse_record(record).run(self.ledger)
        return self

    def received(self, occurred: datetime = T0, immediate_risk: bool = False) -> Story:
        return self.given(
            "received", occurred, originator="X-FORCE", channel="liaison", custodian_unit="U-INTAKE", immediate_risk=immediate_risk
        )

    def assessed(self, occurred: datetime, band: str = "MEDIUM", **kw: Any) -> Story:
        return self.given("assessed", occurred, risk_band=band, immediate_risk=False, rationale="seen", unit="U-TRIAGE", **kw)

    def offered(self, occurred: datetime, to_unit: str = "U-OPS1", **kw: Any) -> Story:
        return self.given("ownership_offered", occurred, to_unit=to_unit, **kw)

    def accepted(self, occurred: datetime, unit: str = "U-OPS1", **kw: Any) -> Story:
        return self.given("ownership_accepted", occurred, unit=unit, **kw)

    def decided(self, occurred: datetime, outcome: str, **kw: Any) -> Story:
        return self.given("decision_recorded", occurred, outcome=outcome, rationale="because", unit="U-INTAKE", **kw)

    def reviewed(self, occurred: datetime, **kw: Any) -> Story:
        return self.given("review_recorded", occurred, progress="checked", owner_confirmed="unowned", **kw)

    def subject(self, occurred: datetime, subject: str = "S-1") -> Story:
        return self.given("subject_extracted", occurred, subject=subject, category="payer")

    def triaged(self, occurred: datetime, band: str, subject: str = "S-1") -> Story:
        return self.given("subject_triaged", occurred, subject=subject, risk_tool="RPT", risk_tool_version="3", band=band)

    def disseminated(self, occurred: datetime, to_force: str = "F-NORTH", subject: str = "S-1") -> Story:
        return self.given("subject_disseminated", occurred, subject=subject, to_force=to_force, authorised_by="P-9")

    def obligations(self, at: datetime, *, as_known_now: bool = False, policy: Policy = DEFAULT_POLICY) -> list[Obligation]:
        return obligations_at(
            self.ledger.referral_events(REF), self.ledger.subject_events(REF), at, policy=policy, as_known_now=as_known_now
        )

    def only(self, rule: str, at: datetime, *, subject: str | None = None, **kw: Any) -> Obligation:
        """The single obligation of ``rule`` (for ``subject``) at ``at``."""
        found = [o for o in self.obligations(at, **kw) if o.rule == rule and o.subject == subject]
        assert len(found) == 1, found
        return found[0]

    def every(self, rule: str, at: datetime, **kw: Any) -> list[Obligation]:
        return [o for o in self.obligations(at, **kw) if o.rule == rule]


@pytest.fixture
def story() -> Iterator[Story]:
    # ledger.canonical rebuilds plain datetimes from test-clock ones; left unpatched, its
    # ``datetime`` stays the real class.
    with freeze_time(T0) as frozen:
        yield Story(frozen)


def judged(obligation: Obligation) -> tuple[str, float | None]:
    return obligation.status, obligation.days_late


# --- owner-accepted ------------------------------------------------------------------


def test_owner_accepted_is_due_two_days_after_receipt(story: Story) -> None:
    story.received()
    assert judged(story.only("owner-accepted", day(1))) == (PENDING, None)
    assert judged(story.only("owner-accepted", day(2))) == (PENDING, None)  # due, not yet overdue
    overdue = story.only("owner-accepted", day(3.5))
    assert judged(overdue) == (OVERDUE, 1.5)
    assert (overdue.started_at, overdue.due, overdue.started_by) == (T0, day(2), 1)


def test_owner_accepted_met_by_the_first_valid_acceptance(story: Story) -> None:
    story.received().offered(day(0.5)).accepted(day(1))
    met = story.only("owner-accepted", day(10))
    assert judged(met) == (MET, None)
    assert (met.satisfied_at, met.satisfied_by, met.satisfied_recorded_at) == (day(1), 3, day(1))


def test_owner_accepted_exactly_on_time_is_met(story: Story) -> None:
    story.received().offered(day(1)).accepted(day(2))
    assert judged(story.only("owner-accepted", day(10))) == (MET, None)


def test_owner_accepted_breached_by_a_late_acceptance(story: Story) -> None:
    story.received().offered(day(1)).accepted(day(3.25))
    assert judged(story.only("owner-accepted", day(10))) == (BREACHED, 1.25)


def test_offers_decisions_and_notes_never_satisfy_owner_accepted(story: Story) -> None:
    story.received().offered(day(0.5)).decided(day(0.6), "ASSIGN_OWNER")
    story.given("note_added", day(0.7), text="U-OPS1 said yes", claim={"type": "ownership_accepted", "unit": "U-OPS1"})
    assert judged(story.only("owner-accepted", day(3))) == (OVERDUE, 1.0)


def test_a_release_and_a_reopening_each_start_an_owner_accepted_clock(story: Story) -> None:
    story.received().offered(day(0.5)).accepted(day(1))
    story.given("ownership_released", day(4), unit="U-OPS1", reason="not ours")
    story.given("closed", day(5), reason="duplicate")
    story.given("reopened", day(8), reason="not a duplicate after all")
    clocks = story.every("owner-accepted", day(11))
    assert [(o.started_at, o.due, o.status, o.days_late) for o in clocks] == [
        (T0, day(2), MET, None),
        (day(4), day(6), DISCHARGED, None),  # the closure at day 5 ended it before its due: nobody accepted
        (day(8), day(10), OVERDUE, 1.0),
    ]
    assert clocks[1].detail == {"ended_by": "closed"}


def test_an_acceptance_made_invalid_by_a_back_dated_withdrawal_satisfies_nothing(story: Story) -> None:
    # Accepted on day 1 against the open offer; on day 4 a withdrawal is entered that took
    # effect on day 0.8, so in business order the acceptance answered no open offer.
    story.received().offered(day(0.5)).accepted(day(1))
    story.given("offer_withdrawn", day(0.8), recorded=day(4), reason="sent in error")
    assert judged(story.only("owner-accepted", day(3))) == (MET, None)  # as known on day 3
    assert judged(story.only("owner-accepted", day(5))) == (OVERDUE, 3.0)
    offer = story.only("offer-reply", day(5))
    assert (offer.status, offer.satisfied_at, offer.detail["ended_by"]) == (DISCHARGED, day(0.8), "offer_withdrawn")


# --- initial-assessment -----------------------------------------------------------------


def test_initial_assessment_seven_days_met_by_the_first_assessment(story: Story) -> None:
    story.received()
    assert judged(story.only("initial-assessment", day(7.5))) == (OVERDUE, 0.5)
    story.assessed(day(8)).assessed(day(9), band="HIGH")
    breached = story.only("initial-assessment", day(10))
    assert (breached.status, breached.days_late, breached.satisfied_at) == (BREACHED, 1.0, day(8))


def test_initial_assessment_one_day_when_received_with_immediate_risk(story: Story) -> None:
    story.received(immediate_risk=True)
    assessment = story.only("initial-assessment", day(1.5))
    assert (assessment.due, assessment.status, assessment.days_late) == (day(1), OVERDUE, 0.5)


# --- offer-reply -----------------------------------------------------------------------


def test_offer_reply_due_at_the_earlier_of_reply_due_and_five_days(story: Story) -> None:
    story.received().offered(day(1), reply_due=day(2))
    assert story.only("offer-reply", day(1)).due == day(2)
    story.given("offer_withdrawn", day(1.5), reason="wrong unit").offered(day(2), to_unit="U-OPS2", reply_due=day(30))
    later = [o for o in story.every("offer-reply", day(8)) if o.detail["to_unit"] == "U-OPS2"]
    assert [(o.due, o.status, o.days_late) for o in later] == [(day(7), OVERDUE, 1.0)]


def test_offer_reply_satisfied_by_decline_or_withdrawal(story: Story) -> None:
    story.received().offered(day(1)).given("ownership_declined", day(2), unit="U-OPS1", reason="no capacity")
    story.offered(day(3), to_unit="U-OPS2").given("offer_withdrawn", day(9), reason="no answer")
    offers = story.every("offer-reply", day(10))
    assert [(o.detail["to_unit"], o.status, o.days_late, o.satisfied_at) for o in offers] == [
        ("U-OPS1", MET, None, day(2)),
        ("U-OPS2", BREACHED, 1.0, day(9)),
    ]


# --- escalation-decided and deferred-revisit ------------------------------------------------


def test_escalation_due_at_the_earlier_of_decision_due_and_seven_days(story: Story) -> None:
    story.received().given("escalation_raised", day(1), to_role="head-of-tasking", issue="no lead", decision_due=day(3))
    story.given("escalation_raised", day(2), to_role="head-of-tasking", issue="second", decision_due=day(20))
    assert [(o.due, o.detail) for o in story.every("escalation-decided", day(2))] == [
        (day(3), {"to_role": "head-of-tasking"}),
        (day(9), {"to_role": "head-of-tasking"}),
    ]


def test_a_defer_postpones_an_escalation_and_the_next_real_decision_settles_it(story: Story) -> None:
    story.received().given("escalation_raised", day(1), to_role="head-of-tasking", issue="no lead", decision_due=day(3))
    story.decided(day(2), "DEFER", revisit_by=day(6))
    assert judged(story.only("escalation-decided", day(4))) == (OVERDUE, 1.0)
    assert judged(story.only("deferred-revisit", day(4))) == (PENDING, None)
    story.decided(day(5), "ASSIGN_OWNER")
    assert judged(story.only("escalation-decided", day(6))) == (BREACHED, 2.0)
    revisit = story.only("deferred-revisit", day(6))
    assert (revisit.started_at, revisit.due, revisit.status, revisit.satisfied_at) == (day(2), day(6), MET, day(5))


def test_a_deferred_revisit_is_met_by_another_defer_which_starts_its_own(story: Story) -> None:
    story.received().decided(day(1), "DEFER", revisit_by=day(3)).decided(day(4), "DEFER", revisit_by=day(6))
    revisits = story.every("deferred-revisit", day(7))
    assert [(o.due, o.status, o.days_late) for o in revisits] == [(day(3), BREACHED, 1.0), (day(6), OVERDUE, 1.0)]


def test_closure_discharges_an_open_escalation_nobody_decided(story: Story) -> None:
    story.received().given("escalation_raised", day(1), to_role="head-of-tasking", issue="no lead")
    story.given("closed", day(3), reason="withdrawn by the originator")
    escalation = story.only("escalation-decided", day(20))
    assert (escalation.status, escalation.satisfied_at, escalation.detail["ended_by"]) == (DISCHARGED, day(3), "closed")


# --- supervisory-review ---------------------------------------------------------------------


@pytest.mark.parametrize(("band", "cadence"), [("VERY_HIGH", 7), ("HIGH", 14), ("MEDIUM", 28), ("LOW", 28)])
def test_review_clock_starts_at_the_first_assessment_with_the_band_cadence(story: Story, band: str, cadence: int) -> None:
    story.received().assessed(day(1), band=band)
    review = story.only("supervisory-review", day(1))
    assert (review.started_at, review.due, review.band, review.cadence_days, review.status) == (
        day(1),
        day(1 + cadence),
        band,
        cadence,
        PENDING,
    )


def test_every_review_restarts_the_clock_and_an_earlier_next_review_by_brings_it_forward(story: Story) -> None:
    story.received().assessed(day(1), band="HIGH")  # 14-day cadence
    story.reviewed(day(10), next_review_by=day(12))  # earlier than day 24: due day 12
    story.reviewed(day(12), next_review_by=day(40))  # later than day 26: ignored
    reviews = story.every("supervisory-review", day(30))
    assert [(o.started_at, o.due, o.status, o.days_late) for o in reviews] == [
        (day(1), day(15), MET, None),
        (day(10), day(12), MET, None),  # exactly on time
        (day(12), day(26), OVERDUE, 4.0),
    ]


def test_the_cadence_follows_the_band_in_force_at_the_clock_start(story: Story) -> None:
    story.received().assessed(day(1), band="LOW").assessed(day(5), band="VERY_HIGH")
    story.reviewed(day(20))
    reviews = story.every("supervisory-review", day(40))
    assert [(o.band, o.cadence_days, o.due) for o in reviews] == [("LOW", 28, day(29)), ("VERY_HIGH", 7, day(27))]


def test_cycles_missed_round_up_whole_cadences(story: Story) -> None:
    story.received().assessed(day(1), band="VERY_HIGH")  # due day 8
    assert story.only("supervisory-review", day(8.5)).cycles_missed == 1
    assert story.only("supervisory-review", day(15)).cycles_missed == 1
    overdue = story.only("supervisory-review", day(23))
    assert (overdue.status, overdue.days_late, overdue.cycles_missed) == (OVERDUE, 15.0, 3)
    story.reviewed(day(24))
    breached = story.every("supervisory-review", day(24))[0]
    assert (breached.status, breached.days_late, breached.cycles_missed) == (BREACHED, 16.0, 3)


def test_reviews_before_the_first_assessment_start_no_clock(story: Story) -> None:
    story.received().reviewed(day(1))
    assert story.every("supervisory-review", day(60)) == []


def test_a_reopened_assessed_referral_is_under_review_again(story: Story) -> None:
    story.received().assessed(day(1), band="HIGH").given("closed", day(2), reason="done")
    assert story.only("supervisory-review", day(20)).detail == {"ended_by": "closed"}
    story.given("reopened", day(20), reason="new intelligence")
    reopened = story.every("supervisory-review", day(40))[-1]
    assert (reopened.started_at, reopened.due, reopened.band, reopened.status) == (day(20), day(34), "HIGH", OVERDUE)


# --- external-reply -------------------------------------------------------------------------


def test_external_requests_and_replies_match_first_in_first_out(story: Story) -> None:
    story.received().given("external_reply_sent", day(0.5), reply_to="X-FORCE")  # answers nothing
    story.given("external_request_received", day(1), **{"from": "X-FORCE"}, summary="update?")
    story.given("external_request_received", day(2), **{"from": "X-AGENCY"}, summary="update?")
    story.given("external_reply_sent", day(7), reply_to="X-AGENCY")  # reply_to is free text: FIFO decides
    replies = story.every("external-reply", day(8))
    assert [(o.detail["from"], o.due, o.status, o.days_late) for o in replies] == [
        ("X-FORCE", day(6), BREACHED, 1.0),
        ("X-AGENCY", day(7), OVERDUE, 1.0),
    ]


# --- subjects: dissemination, force-acknowledgement, force-action --------------------------------


@pytest.mark.parametrize(("band", "period"), [("VERY_HIGH", 1), ("HIGH", 3), ("MEDIUM", 7), ("LOW", 14)])
def test_dissemination_due_by_the_triage_band(story: Story, band: str, period: int) -> None:
    story.received().subject(day(1)).triaged(day(2), band)
    clock = story.only("dissemination", day(2), subject="S-1")
    assert (clock.due, clock.band, clock.status) == (day(2 + period), band, PENDING)
    assert judged(story.only("dissemination", day(3 + period), subject="S-1")) == (OVERDUE, 1.0)


def test_an_untriaged_subject_has_no_clock(story: Story) -> None:
    story.received().subject(day(1))
    assert [o for o in story.obligations(day(60)) if o.subject is not None] == []


def test_dissemination_met_by_sending_or_by_closing_the_subject_before_due(story: Story) -> None:
    story.received().subject(day(1), "S-1").subject(day(1), "S-2").triaged(day(2), "MEDIUM", "S-1").triaged(day(2), "MEDIUM", "S-2")
    story.disseminated(day(10), subject="S-1")
    story.given("subject_closed", day(3), subject="S-2", outcome="NFA", rationale="victim, not suspect", recorded=day(10))
    sent = story.only("dissemination", day(11), subject="S-1")
    closed = story.only("dissemination", day(11), subject="S-2")
    assert (sent.status, sent.days_late) == (BREACHED, 1.0)
    assert (closed.status, closed.satisfied_at, closed.detail) == (MET, day(3), {"ended_by": "subject_closed"})


def test_force_clocks_start_at_dissemination_with_the_triage_band(story: Story) -> None:
    story.received().subject(day(1)).triaged(day(2), "HIGH").disseminated(day(3), to_force="F-EAST")
    acknowledgement = story.only("force-acknowledgement", day(5), subject="S-1")
    action = story.only("force-action", day(5), subject="S-1")
    assert (acknowledgement.due, acknowledgement.status, acknowledgement.days_late, acknowledgement.detail) == (
        day(4),
        OVERDUE,
        1.0,
        {"to_force": "F-EAST"},
    )
    assert (action.due, action.status, action.band) == (day(10), PENDING, "HIGH")
    story.given("force_acknowledged", day(6), subject="S-1", unit="F-EAST")
    story.given("force_action_recorded", day(9), subject="S-1", action="arrested", unit="F-EAST")
    assert judged(story.only("force-acknowledgement", day(9), subject="S-1")) == (BREACHED, 2.0)
    assert judged(story.only("force-action", day(9), subject="S-1")) == (MET, None)


def test_a_rejection_answers_ends_the_action_clock_and_restarts_dissemination(story: Story) -> None:
    story.received().subject(day(1)).triaged(day(2), "MEDIUM").disseminated(day(3), to_force="F-EAST")
    story.given("force_rejected", day(4), subject="S-1", reason="moved away", unit="F-EAST")
    found = [(o.rule, o.started_at, o.due, o.status, o.detail) for o in story.obligations(day(12)) if o.subject == "S-1"]
    assert found == [
        ("dissemination", day(2), day(9), MET, {}),
        ("force-acknowledgement", day(3), day(6), MET, {"to_force": "F-EAST"}),
        ("force-action", day(3), day(17), DISCHARGED, {"to_force": "F-EAST", "ended_by": "force_rejected"}),
        ("dissemination", day(4), day(11), OVERDUE, {}),  # same band, from the rejection
    ]


def test_closing_the_referral_ends_every_clock_of_it_and_its_subjects(story: Story) -> None:
    story.received().assessed(day(1), band="LOW").subject(day(1)).triaged(day(2), "LOW").disseminated(day(3))
    story.given("closed", day(20), reason="all done")
    after = story.obligations(day(100))
    assert [o for o in after if o.status in (OVERDUE, PENDING)] == []
    by_rule = {(o.rule, o.subject): (o.status, o.days_late, o.detail.get("ended_by")) for o in after}
    assert by_rule[("owner-accepted", None)] == (BREACHED, 18.0, "closed")
    assert by_rule[("force-acknowledgement", "S-1")] == (BREACHED, 14.0, "closed")
    assert by_rule[("force-action", "S-1")] == (DISCHARGED, None, "closed")


def test_as_known_at_the_instant_differs_from_hindsight_when_an_entry_is_late(story: Story) -> None:
    story.received().offered(day(0.5)).accepted(day(1), recorded=day(5))
    then = story.only("owner-accepted", day(4))
    now = story.only("owner-accepted", day(4), as_known_now=True)
    assert (then.status, then.days_late) == (OVERDUE, 2.0)
    assert (now.status, now.satisfied_at, now.satisfied_recorded_at) == (MET, day(1), day(5))


def test_nothing_is_due_before_anything_is_known(story: Story) -> None:
    story.received(day(1))
    assert story.obligations(day(0.5)) == []


def test_a_policy_file_sets_the_periods_and_can_switch_rules_off(story: Story) -> None:
    story.received().assessed(day(1), band="MEDIUM")
    policy = Policy(name="strict", rules={"owner-accepted": {"days": 1}, "supervisory-review": {"enabled": False}})
    found = story.obligations(day(3), policy=policy)
    assert {o.rule for o in found} == {"owner-accepted", "initial-assessment"}
    assert story.only("owner-accepted", day(3), policy=policy).due == day(1)


def test_rows_are_flat_and_iso(story: Story) -> None:
    story.received().offered(day(1))
    row = story.only("offer-reply", day(7)).as_row()
    assert set(row) <= set(COLUMNS)
    assert row == {
        "rule": "offer-reply",
        "referral": REF,
        "subject": None,
        "status": OVERDUE,
        "started_at": "2024-01-09T09:00:00Z",
        "due": "2024-01-14T09:00:00Z",
        "satisfied_at": None,
        "days_late": 1.0,
        "band": None,
        "cadence_days": None,
        "cycles_missed": None,
        "started_by": 2,
        "started_recorded_at": "2024-01-09T09:00:00Z",
        "satisfied_by": None,
        "satisfied_recorded_at": None,
        "to_unit": "U-OPS1",
    }


def test_obligations_come_in_clock_start_order(story: Story) -> None:
    story.received().assessed(day(1)).offered(day(2))
    assert [o.rule for o in story.obligations(day(3))] == ["owner-accepted", "initial-assessment", "supervisory-review", "offer-reply"]


def test_an_assessment_at_the_same_instant_as_a_review_sets_that_clock_band(story: Story) -> None:
    story.received().assessed(day(1), band="LOW")
    story.reviewed(day(10)).assessed(day(10), band="VERY_HIGH", recorded=day(10.1))
    latest = story.every("supervisory-review", day(11))[-1]
    assert (latest.started_at, latest.band, latest.due) == (day(10), "VERY_HIGH", day(17))

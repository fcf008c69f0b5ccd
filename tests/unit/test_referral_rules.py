"""The invariants of docs/DOMAIN.md §4 and §6, one rule per test: given events, when a command, then."""

from __future__ import annotations

from tests.scenario import at, given, rec, received, state

OFFER = rec("ownership_offered", at(2), "U-TRIAGE", to_unit="U-OPS1")


def test_receipt_sets_the_custodian_and_nobody_owns_it() -> None:
    ledger = given().when(received()).then("Received")
    now = state(ledger, at(1, 10))
    assert (now.custodian_unit, now.owner_unit, now.status) == ("U-INTAKE", None, "open")


def test_a_referral_is_received_once() -> None:
    given(received()).when(received(at(2))).raises("received-once")


def test_nothing_is_recorded_before_receipt() -> None:
    given(received(at(5))).when(rec("note_added", at(4), "U-TRIAGE", recorded=at(5, 10), text="x")).raises("not-before-receipt")


def test_an_offer_does_not_transfer_ownership() -> None:
    ledger = given(received()).when(OFFER).then("OwnershipOffered")
    now = state(ledger, at(3))
    assert now.owner_unit is None
    assert now.open_offer is not None and now.open_offer.to_unit == "U-OPS1"


def test_only_the_offered_unit_can_accept() -> None:
    given(received(), OFFER).when(rec("ownership_accepted", at(3), "U-OPS2"), live=True).raises("authority-answer-offer")
    # history keeps such an answer (audit authority lists it), and it makes nobody owner
    ledger = given(received(), OFFER).when(rec("ownership_accepted", at(3), "U-OPS2")).then("OwnershipAccepted")
    assert state(ledger, at(4)).owner_unit is None


def test_acceptance_needs_an_open_offer() -> None:
    given(received()).when(rec("ownership_accepted", at(3), "U-OPS1")).raises("open-offer-required")


def test_acceptance_by_the_offered_unit_transfers_ownership() -> None:
    ledger = given(received(), OFFER).when(rec("ownership_accepted", at(3), "U-OPS1")).then("OwnershipAccepted")
    now = state(ledger, at(4))
    assert (now.owner_unit, now.owner_person, now.open_offer) == ("U-OPS1", "P-U-OPS1", None)


def test_one_offer_open_at_a_time() -> None:
    given(received(), OFFER).when(rec("ownership_offered", at(3), "U-TRIAGE", to_unit="U-OPS2")).raises("one-open-offer")


def test_a_withdrawal_frees_the_way_for_another_offer() -> None:
    given(received(), OFFER, rec("offer_withdrawn", at(3), "U-TRIAGE")).when(
        rec("ownership_offered", at(4), "U-TRIAGE", to_unit="U-OPS2")
    ).then("OwnershipOffered")


def test_a_decline_closes_the_offer_and_leaves_the_owner() -> None:
    ledger = (
        given(received(), OFFER, rec("ownership_accepted", at(3), "U-OPS1"), rec("ownership_offered", at(4), "U-OPS1", to_unit="U-OPS2"))
        .when(rec("ownership_declined", at(5), "U-OPS2", reason="No capacity"))
        .then("OwnershipDeclined")
    )
    now = state(ledger, at(6))
    assert (now.owner_unit, now.open_offer) == ("U-OPS1", None)


def test_the_owner_keeps_ownership_while_an_offer_is_open() -> None:
    ledger = (
        given(received(), OFFER, rec("ownership_accepted", at(3), "U-OPS1"))
        .when(rec("ownership_offered", at(4), "U-OPS1", to_unit="U-OPS2"))
        .then("OwnershipOffered")
    )
    assert state(ledger, at(5)).owner_unit == "U-OPS1"


def test_only_the_owner_unit_can_release() -> None:
    given(received(), OFFER, rec("ownership_accepted", at(3), "U-OPS1")).when(
        rec("ownership_released", at(4), "U-OPS2", reason="not ours"), live=True
    ).raises("authority-release")
    given(received()).when(rec("ownership_released", at(4), "U-INTAKE", reason="not ours")).raises("owned-to-release")


def test_release_makes_the_referral_unowned() -> None:
    ledger = (
        given(received(), OFFER, rec("ownership_accepted", at(3), "U-OPS1"))
        .when(rec("ownership_released", at(4), "U-OPS1", reason="Outside remit"))
        .then("OwnershipReleased")
    )
    now = state(ledger, at(5))
    assert (now.owner_unit, now.unowned_since.isoformat()) == (None, "2024-03-04T09:00:00+00:00")


def test_only_the_custodian_unit_transfers_custody() -> None:
    given(received()).when(rec("custody_transferred", at(2), "U-OPS1", to_unit="U-OPS1"), live=True).raises("authority-custody")
    ledger = given(received()).when(rec("custody_transferred", at(2), "U-INTAKE", to_unit="U-OPS1")).then("CustodyTransferred")
    assert state(ledger, at(3)).custodian_unit == "U-OPS1"


def test_a_closed_referral_takes_only_notes_and_reopening() -> None:
    closed = (received(), rec("closed", at(2), "U-INTAKE", reason="done"))
    given(*closed).when(OFFER | {"occurred_at": at(3), "recorded_at": at(3)}).raises("closed-referral")
    given(*closed).when(rec("note_added", at(3), "U-TRIAGE", text="Filed")).then("NoteAdded")
    ledger = given(*closed).when(rec("reopened", at(3), "U-INTAKE", reason="New intelligence")).then("Reopened")
    assert state(ledger, at(4)).status == "open"


def test_closing_ends_ownership() -> None:
    ledger = (
        given(received(), OFFER, rec("ownership_accepted", at(3), "U-OPS1"))
        .when(rec("closed", at(4), "U-OPS1", reason="done"))
        .then("Closed")
    )
    now = state(ledger, at(5))
    assert (now.status, now.owner_unit, now.custodian_unit) == ("closed", None, "U-INTAKE")


def test_a_defer_must_say_when_it_is_revisited() -> None:
    given(received()).when(rec("decision_recorded", at(2), "U-TRIAGE", outcome="DEFER", rationale="wait")).raises("defer-needs-revisit")
    given(received()).when(rec("decision_recorded", at(2), "U-TRIAGE", outcome="DEFER", rationale="wait", revisit_by=at(9))).then(
        "DecisionRecorded"
    )


def test_a_late_entry_needs_a_reason() -> None:
    late = rec("note_added", at(2), "U-TRIAGE", recorded=at(3, 10), text="Minutes")
    given(received()).when(late).raises("late-needs-reason")
    given(received()).when(late | {"late_reason": "Typed up late"}).then("NoteAdded")


def test_nothing_occurs_after_it_is_recorded() -> None:
    given(received()).when(rec("note_added", at(3), "U-TRIAGE", recorded=at(2), text="x")).raises("not-in-future")


def test_history_is_imported_in_recording_order() -> None:
    given(received(), rec("note_added", at(3), "U-TRIAGE", text="x")).when(
        rec("note_added", at(2), "U-TRIAGE", recorded=at(2, 12), text="y")
    ).raises("recording-order")


def test_a_late_acceptance_is_judged_at_the_time_it_claims() -> None:
    """docs/DOMAIN.md §6: valid if the offer to that unit was open then, even if it was withdrawn since."""
    withdrawn = (received(), OFFER, rec("offer_withdrawn", at(5), "U-TRIAGE"))
    late = rec("ownership_accepted", at(4), "U-OPS1", recorded=at(6), late_reason="Accepted by e-mail; entered late")
    ledger = given(*withdrawn).when(late).then("OwnershipAccepted")
    assert state(ledger, at(4, 12)).owner_unit == "U-OPS1"
    given(*withdrawn).when(late | {"occurred_at": at(5, 12)}).raises("open-offer-required")


def test_a_note_claiming_acceptance_changes_nothing() -> None:
    ledger = (
        given(received(), OFFER)
        .when(rec("note_added", at(3), "U-TRIAGE", text="OPS2 said yes", claim={"type": "ownership_accepted", "unit": "U-OPS2"}))
        .then("NoteAdded")
    )
    now = state(ledger, at(4))
    assert now.owner_unit is None and now.open_offer is not None


SUBJECT = {"subject": "SUBJ-1"}
BULK = (received(), rec("subject_extracted", at(2), "U-TRIAGE", category="suspect", **SUBJECT))


def test_a_force_answers_only_a_dissemination() -> None:
    given(*BULK).when(rec("force_acknowledged", at(3), "F-NORTH", **SUBJECT)).raises("dissemination-required")


def test_a_subject_in_transit_is_not_sent_again_before_an_answer() -> None:
    sent = rec("subject_disseminated", at(3), "U-OPS1", to_force="F-NORTH", authorised_by="P-1", **SUBJECT)
    given(*BULK, sent).when(sent | {"occurred_at": at(4), "recorded_at": at(4), "to_force": "F-EAST"}).raises("answer-before-resend")
    rejected = rec("force_rejected", at(4), "F-NORTH", reason="Not our area", **SUBJECT)
    given(*BULK, sent, rejected).when(sent | {"occurred_at": at(5), "recorded_at": at(5), "to_force": "F-EAST"}).then("Disseminated")


def test_subjects_of_a_closed_referral_take_no_events() -> None:
    given(*BULK, rec("closed", at(3), "U-INTAKE", reason="done")).when(
        rec("subject_triaged", at(4), "U-TRIAGE", risk_tool="RPT", risk_tool_version="3", band="HIGH", **SUBJECT)
    ).raises("closed-referral")


def test_a_subject_is_extracted_once() -> None:
    given(*BULK).when(BULK[1] | {"occurred_at": at(3), "recorded_at": at(3)}).raises("extracted-once")


def test_a_force_acts_only_on_an_acknowledged_dissemination() -> None:
    sent = rec("subject_disseminated", at(3), "U-OPS1", to_force="F-NORTH", authorised_by="P-1", **SUBJECT)
    action = rec("force_action_recorded", at(4, 12), "F-NORTH", action="Arrested", **SUBJECT)
    given(*BULK, sent).when(action).raises("acknowledgement-required")
    given(*BULK, sent, rec("force_acknowledged", at(4), "F-NORTH", **SUBJECT)).when(action).then("ForceActionRecorded")

"""Ownership, custody and gaps, one rule per test: given a story, when asked, then the answer."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from ledger.errors import InvalidInput, NotFound
from ledger.knowledge import known as visible
from ledger.referral import CLOSED, OPEN, Referral
from projections.ownership import (
    DisputedClaim,
    Gap,
    Interval,
    answer_document,
    owner_at,
    ownership_history,
)
from tests.unit.test_ownership_story import REFERENCE, T0, Story, at

CLAIM_OPSB = {"type": "ownership_accepted", "unit": "U-OPSB"}


def owned_by(story: Story, when: datetime, as_known_at: datetime | None = None) -> str | None:
    answer = owner_at(story.events, when, as_known_at)
    return None if answer.owner is None else answer.owner.unit


# --- offers, acceptances, declines ------------------------------------------------------


def test_an_offer_does_not_transfer_ownership() -> None:
    story = Story().offer("U-OPSA", at(hours=1))

    answer = owner_at(story.events, at(hours=2))

    assert answer.owner is None
    assert answer.unowned_since == T0
    assert answer.open_offer is not None and answer.open_offer.to_unit == "U-OPSA"
    assert answer.custodian.unit == "U-INTAKE"


def test_acceptance_by_the_offered_unit_transfers_ownership_at_its_occurred_at() -> None:
    story = Story().offer("U-OPSA", at(hours=1)).accept("P-7@U-OPSA", at(hours=2))

    answer = owner_at(story.events, at(hours=2))

    assert answer.owner == Interval("U-OPSA", "P-7", at(hours=2), None, story.version_of(Referral.OwnershipAccepted), None)
    assert answer.open_offer is None
    assert answer.unowned_since is None
    assert owned_by(story, at(hours=2) - timedelta(seconds=1)) is None


def test_the_current_owner_keeps_ownership_while_an_offer_is_open() -> None:
    story = Story().offer("U-OPSA", at(hours=1)).accept("U-OPSA", at(hours=2)).offer("U-OPSB", at(days=1), by="U-OPSA")

    answer = owner_at(story.events, at(days=2))

    assert answer.owner is not None and answer.owner.unit == "U-OPSA"
    assert answer.open_offer is not None and answer.open_offer.to_unit == "U-OPSB"


def test_a_decline_leaves_the_referral_unowned_when_nobody_owned_it() -> None:
    story = Story().offer("U-OPSA", at(hours=1)).decline("U-OPSA", at(hours=3))

    answer = owner_at(story.events, at(hours=4))

    assert answer.owner is None
    assert answer.open_offer is None
    assert answer.unowned_since == T0


def test_a_decline_leaves_the_current_owner_in_place() -> None:
    story = (
        Story()
        .offer("U-OPSA", at(hours=1))
        .accept("U-OPSA", at(hours=2))
        .offer("U-OPSB", at(days=1), by="U-OPSA")
        .decline("U-OPSB", at(days=2))
    )

    history = ownership_history(story.events)

    assert [(i.unit, i.start, i.end) for i in history.ownership] == [("U-OPSA", at(hours=2), None)]
    assert history.open_offer is None


def test_acceptance_from_the_owner_hands_over_without_a_gap() -> None:
    story = (
        Story()
        .offer("U-OPSA", at(hours=1))
        .accept("U-OPSA", at(hours=2))
        .offer("U-OPSB", at(days=1), by="U-OPSA")
        .accept("U-OPSB", at(days=2))
    )

    history = ownership_history(story.events)

    second = story.version_of(Referral.OwnershipAccepted, 2)
    assert [(i.unit, i.start, i.end, i.closed_by) for i in history.ownership] == [
        ("U-OPSA", at(hours=2), at(days=2), second),
        ("U-OPSB", at(days=2), None, None),
    ]
    assert history.gaps == (Gap(T0, at(hours=2), 1, story.version_of(Referral.OwnershipAccepted)),)


# --- release, closure, reopening --------------------------------------------------------


def test_a_release_opens_a_gap() -> None:
    story = Story().offer("U-OPSA", at(hours=1)).accept("U-OPSA", at(hours=2)).release("U-OPSA", at(days=3))

    history = ownership_history(story.events)
    answer = owner_at(story.events, at(days=4))

    release = story.version_of(Referral.OwnershipReleased)
    assert history.ownership[-1].end == at(days=3)
    assert history.gaps[-1] == Gap(at(days=3), None, release, None)
    assert answer.owner is None
    assert answer.unowned_since == at(days=3)
    assert answer.unowned_for == timedelta(days=1)


def test_closing_ends_ownership_and_the_gap_but_not_custody() -> None:
    story = (
        Story()
        .offer("U-OPSA", at(hours=1))
        .accept("U-OPSA", at(hours=2))
        .transfer("U-OPSA", at(hours=3), by="U-INTAKE")
        .close("U-OPSA", at(days=5))
    )

    history = ownership_history(story.events)
    answer = owner_at(story.events, at(days=6))

    closed = story.version_of(Referral.Closed)
    assert history.ownership[-1] == Interval("U-OPSA", "P-U-OPSA", at(hours=2), at(days=5), 3, closed)
    assert (history.status, history.closed_at) == (CLOSED, at(days=5))
    assert history.custody[-1].end is None
    assert (answer.status, answer.owner, answer.unowned_since) == (CLOSED, None, None)
    assert answer.custodian.unit == "U-OPSA"


def test_closing_an_unowned_referral_ends_its_gap() -> None:
    story = Story().close("U-INTAKE", at(days=2))

    history = ownership_history(story.events)

    assert history.gaps == (Gap(T0, at(days=2), 1, 2),)
    assert history.unowned_time(at(days=10)) == timedelta(days=2)


def test_a_reopened_referral_starts_unowned() -> None:
    story = Story().close("U-INTAKE", at(days=2)).reopen("U-INTAKE", at(days=5))

    history = ownership_history(story.events)
    answer = owner_at(story.events, at(days=6))

    assert history.gaps[-1] == Gap(at(days=5), None, 3, None)
    assert (answer.status, answer.unowned_since) == (OPEN, at(days=5))
    assert history.open_time(at(days=6)) == timedelta(days=3)


def test_custody_moves_only_by_a_transfer() -> None:
    story = Story().offer("U-OPSA", at(hours=1)).accept("U-OPSA", at(hours=2))

    assert owner_at(story.events, at(days=1)).custodian == Interval("U-INTAKE", None, T0, None, 1, None)

    story.transfer("U-OPSA", at(days=2), by="U-INTAKE")
    history = ownership_history(story.events)

    assert [(i.unit, i.start, i.end) for i in history.custody] == [("U-INTAKE", T0, at(days=2)), ("U-OPSA", at(days=2), None)]


def test_a_gap_that_ends_as_it_starts_is_no_gap() -> None:
    story = Story().offer("U-OPSA", T0).accept("U-OPSA", T0)

    history = ownership_history(story.events)

    assert history.gaps == ()
    assert history.ownership[0].start == T0


# --- ordering and the two clocks --------------------------------------------------------


def test_ties_in_business_time_follow_recording_order() -> None:
    story = Story().offer("U-OPSA", at(hours=1)).accept("U-OPSA", at(hours=2)).release("U-OPSA", at(hours=2))

    history = ownership_history(story.events)

    assert [(i.unit, i.start, i.end) for i in history.ownership] == [("U-OPSA", at(hours=2), at(hours=2))]
    assert owned_by(story, at(hours=2)) is None


def test_a_late_acceptance_changes_as_known_now_but_not_as_known_before_it_was_recorded() -> None:
    recorded = at(days=10)
    story = Story().offer("U-OPSA", at(hours=1)).accept("U-OPSA", at(days=1), recorded=recorded)

    now = owner_at(story.events, at(days=2))
    before = owner_at(story.events, at(days=2), as_known_at=recorded - timedelta(seconds=1))
    once = owner_at(story.events, at(days=2), as_known_at=recorded)

    assert now.owner is not None and now.owner.unit == "U-OPSA"
    assert before.owner is None and before.open_offer is not None and before.unowned_since == T0
    assert once.owner == now.owner


def test_a_late_release_leaves_the_earlier_answer_standing_as_known_then() -> None:
    story = Story().offer("U-OPSA", at(hours=1)).accept("U-OPSA", at(hours=2)).release("U-OPSA", at(days=2), recorded=at(days=2, hours=15))

    assert owned_by(story, at(days=2, hours=1), as_known_at=at(days=2, hours=14)) == "U-OPSA"
    assert owned_by(story, at(days=2, hours=1), as_known_at=at(days=2, hours=15)) is None


def test_visible_keeps_events_recorded_at_or_before_k() -> None:
    story = Story().offer("U-OPSA", at(hours=1))
    offer = story.events[1]

    assert visible(story.events, offer.recorded_at) == story.events
    assert visible(story.events, offer.recorded_at - timedelta(microseconds=1)) == story.events[:1]
    assert visible(story.events, None) == story.events


def test_an_event_made_impossible_by_a_late_entry_is_superseded() -> None:
    # The offer was withdrawn (recorded at once); the acceptance it had already received
    # was recorded only later. In business order the acceptance closed the offer first.
    story = Story().offer("U-OPSA", at(hours=1)).withdraw(at(days=2)).accept("U-OPSA", at(days=1), recorded=at(days=3))

    history = ownership_history(story.events)
    earlier = ownership_history(story.events, as_known_at=at(days=2, hours=12))

    withdrawal = story.version_of(Referral.OfferWithdrawn)
    assert [(s.version, s.rule) for s in history.superseded] == [(withdrawal, "open-offer-required")]
    assert history.ownership[0].unit == "U-OPSA"
    assert earlier.superseded == ()
    assert earlier.ownership == ()


# --- notes and claims -------------------------------------------------------------------


def test_a_note_claiming_an_acceptance_is_disputed_and_changes_nothing() -> None:
    story = Story().note(at(days=1), claim=CLAIM_OPSB)

    answer = owner_at(story.events, at(days=2))

    assert answer.owner is None
    assert answer.unowned_since == T0
    note = story.events[-1]
    assert answer.disputed_claims == (
        DisputedClaim(CLAIM_OPSB, at(days=1), note.recorded_at, {"person": "P-9", "role": "team-manager", "unit": "U-TRIAGE"}, 2),
    )


def test_a_disputed_claim_shows_from_its_occurred_at_as_known_once_recorded() -> None:
    story = Story().note(at(days=1), claim=CLAIM_OPSB, recorded=at(days=3))

    assert owner_at(story.events, at(days=1) - timedelta(seconds=1)).disputed_claims == ()
    assert len(owner_at(story.events, at(days=1)).disputed_claims) == 1
    assert owner_at(story.events, at(days=2), as_known_at=at(days=2, hours=23)).disputed_claims == ()
    assert len(owner_at(story.events, at(days=2), as_known_at=at(days=3)).disputed_claims) == 1


def test_a_claim_the_events_confirm_is_not_disputed() -> None:
    story = Story().offer("U-OPSB", at(hours=1)).accept("U-OPSB", at(hours=2)).note(at(days=1), claim=CLAIM_OPSB)

    assert ownership_history(story.events).disputed_claims == ()


def test_a_note_without_a_claim_is_no_claim() -> None:
    story = Story().note(at(days=1))

    assert ownership_history(story.events).disputed_claims == ()


def test_a_claim_of_a_kind_the_events_cannot_show_is_disputed() -> None:
    story = Story().note(at(days=1), claim={"type": "promised_review", "unit": "U-OPSB"})

    assert len(ownership_history(story.events).disputed_claims) == 1


# --- edges and refusals -----------------------------------------------------------------


def test_asking_about_an_instant_before_receipt_is_refused() -> None:
    story = Story()

    with pytest.raises(InvalidInput, match=f"{REFERENCE} was received at 2024-03-01T09:00:00Z"):
        owner_at(story.events, T0 - timedelta(days=1))


def test_as_known_before_the_referral_was_recorded_it_is_not_found() -> None:
    story = Story()

    with pytest.raises(NotFound, match="not in the ledger as known at"):
        owner_at(story.events, at(days=1), as_known_at=T0)


def test_no_events_is_not_found() -> None:
    with pytest.raises(NotFound):
        ownership_history([])


def test_history_until_an_instant_leaves_what_runs_then_open() -> None:
    story = Story().offer("U-OPSA", at(hours=1)).accept("U-OPSA", at(hours=2)).release("U-OPSA", at(days=3))

    history = ownership_history(story.events, until=at(days=1))

    assert [(i.unit, i.end) for i in history.ownership] == [("U-OPSA", None)]
    assert replace(history, until=None) != ownership_history(story.events)


# --- the owner answer as JSON -----------------------------------------------------------


def test_owner_answer_document() -> None:
    story = (
        Story()
        .note(at(hours=1), claim=CLAIM_OPSB)
        .offer("U-OPSA", at(hours=2), reply_due=at(days=2))
        .transfer("U-OPSA", at(hours=3), by="U-INTAKE")
    )

    document = answer_document(owner_at(story.events, at(days=1), as_known_at=at(days=5)))

    assert document == {
        "referral": REFERENCE,
        "at": "2024-03-02T09:00:00Z",
        "as_known_at": "2024-03-06T09:00:00Z",
        "status": "open",
        "closed_at": None,
        "owner": None,
        "custodian": {"unit": "U-OPSA", "since": "2024-03-01T12:00:00Z"},
        "open_offer": {
            "to_unit": "U-OPSA",
            "offered_at": "2024-03-01T11:00:00Z",
            "reply_due": "2024-03-03T09:00:00Z",
            "offered_by": {"person": "P-U-INTAKE", "role": "team-manager", "unit": "U-INTAKE"},
        },
        "unowned_since": "2024-03-01T09:00:00Z",
        "unowned_days": 1.0,
        "disputed_claims": [
            {
                "claim": CLAIM_OPSB,
                "occurred_at": "2024-03-01T10:00:00Z",
                "recorded_at": "2024-03-01T10:01:00Z",
                "by": {"person": "P-9", "role": "team-manager", "unit": "U-TRIAGE"},
                "version": 2,
                "line": None,
            }
        ],
    }


def test_owner_answer_document_when_owned() -> None:
    story = Story().offer("U-OPSA", at(hours=1)).accept("P-7@U-OPSA", at(hours=2))

    document = answer_document(owner_at(story.events, at(days=1)))

    assert document["owner"] == {"unit": "U-OPSA", "person": "P-7", "since": "2024-03-01T11:00:00Z"}
    assert (document["unowned_since"], document["unowned_days"], document["as_known_at"]) == (None, None, None)

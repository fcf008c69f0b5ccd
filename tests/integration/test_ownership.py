"""Ownership answers from events stored and read back, on each backend.

The events are recorded through the Ledger's commands with an injected clock (their
recording time), read back with ``referral_events`` and folded: what the database returns
must give the same answers as the events did when they were recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.errors import NotFound
from ledger.values import Actor, Stamp
from projections.ownership import owner_at, ownership_history
from projections.timeline import timeline

REF = "R-2024-0900"


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def stamp(who: str, occurred: str, late_reason: str | None = None) -> Stamp:
    return Stamp(actor=Actor.parse(who), occurred_at=t(occurred), late_reason=late_reason)


def receive(ledger: Ledger, clock: Any, when: str) -> None:
    clock.set(when + "+00:00")
    ledger.receive(
        REF,
        stamp("P-1:registry@U-INTAKE", when),
        originator="X-FORCE",
        channel="liaison",
        custodian_unit="U-INTAKE",
    )


@pytest.fixture
def late_acceptance(ledger: Ledger, clock: Any) -> Ledger:
    """Received, offered to U-OPSA, a note claiming U-OPSB took it, and U-OPSA's acceptance of
    12 March recorded only on 20 March."""
    receive(ledger, clock, "2024-03-11T08:40:00")
    clock.set("2024-03-11T09:01:00+00:00")
    ledger.offer_ownership(REF, stamp("P-2:manager@U-INTAKE", "2024-03-11T09:00:00"), to_unit="U-OPSA")
    clock.set("2024-03-11T10:05:00+00:00")
    ledger.add_note(
        REF, stamp("P-3:analyst@U-TRIAGE", "2024-03-11T10:00:00"), "U-OPSB will take it", {"type": "ownership_accepted", "unit": "U-OPSB"}
    )
    clock.set("2024-03-12T11:00:00+00:00")
    ledger.transfer_custody(REF, stamp("P-1:registry@U-INTAKE", "2024-03-12T11:00:00"), to_unit="U-OPSA")
    clock.set("2024-03-20T09:00:00+00:00")
    ledger.accept_ownership(REF, stamp("P-7:manager@U-OPSA", "2024-03-12T09:00:00", late_reason="Accepted by e-mail"))
    return ledger


def test_a_late_acceptance_read_back_answers_both_ways(late_acceptance: Ledger) -> None:
    events = late_acceptance.referral_events(REF)

    now = owner_at(events, t("2024-03-13T12:00:00"))
    then = owner_at(events, t("2024-03-13T12:00:00"), as_known_at=t("2024-03-19T12:00:00"))

    assert now.owner is not None and (now.owner.unit, now.owner.person, now.owner.start) == ("U-OPSA", "P-7", t("2024-03-12T09:00:00"))
    assert now.custodian.unit == "U-OPSA"
    assert then.owner is None and then.unowned_since == t("2024-03-11T08:40:00")
    assert then.open_offer is not None and then.open_offer.to_unit == "U-OPSA"
    assert [c.claim["unit"] for c in now.disputed_claims] == [c.claim["unit"] for c in then.disputed_claims] == ["U-OPSB"]


def test_gaps_end_at_the_acceptances_occurred_at_not_its_recording(late_acceptance: Ledger) -> None:
    events = late_acceptance.referral_events(REF)

    history = ownership_history(events)
    before = ownership_history(events, as_known_at=t("2024-03-19T12:00:00"))

    assert [(g.start, g.end) for g in history.gaps] == [(t("2024-03-11T08:40:00"), t("2024-03-12T09:00:00"))]
    assert [(g.start, g.end) for g in before.gaps] == [(t("2024-03-11T08:40:00"), None)]


def test_events_read_back_equal_a_fresh_ledger_s_view(late_acceptance: Ledger, open_at: Callable[..., Ledger]) -> None:
    reopened = open_at()

    assert ownership_history(reopened.referral_events(REF)) == ownership_history(late_acceptance.referral_events(REF))


def test_a_withdrawal_overtaken_by_a_late_acceptance_is_superseded(ledger: Ledger, clock: Any) -> None:
    receive(ledger, clock, "2024-03-11T08:40:00")
    clock.set("2024-03-11T09:01:00+00:00")
    ledger.offer_ownership(REF, stamp("P-2:manager@U-INTAKE", "2024-03-11T09:00:00"), to_unit="U-OPSA")
    clock.set("2024-03-13T09:01:00+00:00")
    ledger.withdraw_offer(REF, stamp("P-2:manager@U-INTAKE", "2024-03-13T09:00:00"))
    clock.set("2024-03-15T09:00:00+00:00")
    ledger.accept_ownership(REF, stamp("P-7:manager@U-OPSA", "2024-03-12T09:00:00", late_reason="Accepted by e-mail"))

    rows = timeline(ledger.referral_events(REF))

    assert [(r.type, r.effect) for r in rows] == [
        ("received", "applied"),
        ("ownership_offered", "applied"),
        ("ownership_accepted", "applied"),
        ("offer_withdrawn", "superseded"),
    ]
    assert owner_at(ledger.referral_events(REF), t("2024-03-14T00:00:00")).owner is not None


def test_subject_events_join_the_timeline(ledger: Ledger, clock: Any) -> None:
    receive(ledger, clock, "2024-03-11T08:40:00")
    clock.set("2024-03-11T12:00:00+00:00")
    ledger.extract_subject(REF, stamp("P-3:analyst@U-TRIAGE", "2024-03-11T11:00:00"), "SUBJ-01", "payer")
    clock.advance(minutes=5)
    ledger.add_note(REF, stamp("P-3:analyst@U-TRIAGE", "2024-03-11T11:30:00"), "Checked")

    rows = timeline(ledger.referral_events(REF), ledger.subject_events(REF))

    assert [(r.subject, r.type) for r in rows] == [(None, "received"), ("SUBJ-01", "subject_extracted"), (None, "note_added")]
    assert rows[1].lag == timedelta(hours=1)


def test_an_unknown_referral_is_not_found(ledger: Ledger) -> None:
    with pytest.raises(NotFound, match="referral R-NONE is not in the ledger"):
        ledger.referral_events("R-NONE")

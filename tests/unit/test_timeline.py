"""Timeline rows: business order across streams, both clocks, late flags, summaries, superseded events."""

from __future__ import annotations

import inspect
from datetime import timedelta

from ledger.importing import RECORD_TYPES
from ledger.referral import LedgerEvent, Referral
from ledger.staff import Person, StaffDirectory, Unit
from ledger.subject import Subject
from projections.timeline import CSV_COLUMNS, EVENT_TYPES, timeline, timeline_document
from tests.unit.test_ownership_story import REFERENCE, T0, Story, at

CLAIM = {"type": "ownership_accepted", "unit": "U-OPSB"}


def test_rows_come_in_business_order_with_both_clocks() -> None:
    story = (
        Story()
        .offer("U-OPSA", at(hours=1))
        .transfer("U-OPSA", at(hours=3), by="U-INTAKE")
        .accept("P-7@U-OPSA", at(hours=2), recorded=at(hours=4))
    )

    rows = timeline(story.events)

    assert [(r.type, r.version, r.occurred_at, r.recorded_at) for r in rows] == [
        ("received", 1, T0, at(minutes=1)),
        ("ownership_offered", 2, at(hours=1), at(hours=1, minutes=1)),
        ("ownership_accepted", 4, at(hours=2), at(hours=4)),
        ("custody_transferred", 3, at(hours=3), at(hours=3, minutes=1)),
    ]
    assert rows[2].lag == timedelta(hours=2)
    assert rows[2].summary == "U-OPSA (P-7) accepted ownership"
    assert rows[3].summary == "Custody moved from U-INTAKE to U-OPSA"


def test_late_means_over_24_hours_and_attestation_over_7_days() -> None:
    story = (
        Story()
        .note(at(days=1), recorded=at(days=2))
        .note(at(days=2), recorded=at(days=3, minutes=1))
        .note(at(days=3), recorded=at(days=10))
        .note(at(days=4), recorded=at(days=11, minutes=1))
    )

    flags = [(r.late, r.needs_attestation) for r in timeline(story.events)[1:]]

    assert flags == [(False, False), (True, False), (True, False), (True, True)]


def test_an_event_made_impossible_by_a_late_entry_stays_on_the_timeline_as_superseded() -> None:
    story = Story().offer("U-OPSA", at(hours=1)).withdraw(at(days=2)).accept("U-OPSA", at(days=1), recorded=at(days=3))

    rows = {row.type: row for row in timeline(story.events)}
    then = {row.type: row for row in timeline(story.events, as_known_at=at(days=2, hours=12))}

    withdrawal = rows["offer_withdrawn"]
    assert withdrawal.effect == "superseded"
    assert withdrawal.superseded is not None and withdrawal.superseded.rule == "open-offer-required"
    assert withdrawal.document()["why"] == "no offer of ownership was open (rule: open-offer-required)"
    assert rows["ownership_accepted"].effect == "applied"
    assert then["offer_withdrawn"].effect == "applied"
    assert "ownership_accepted" not in then


def test_as_known_at_leaves_out_what_was_recorded_later() -> None:
    story = Story().note(at(days=1)).note(at(hours=2), recorded=at(days=5))

    assert len(timeline(story.events, as_known_at=at(days=4))) == 2
    assert len(timeline(story.events)) == 3


def test_a_note_claim_is_summarised_with_its_verdict() -> None:
    disputed = Story().note(at(hours=1), claim=CLAIM)
    confirmed = Story().offer("U-OPSB", at(hours=1)).accept("U-OPSB", at(hours=2)).note(at(hours=3), claim=CLAIM)

    assert timeline(disputed.events)[-1].summary == (
        "Note: Minutes of the tasking meeting (claims ownership accepted by U-OPSB: disputed, the events do not show it)"
    )
    assert timeline(confirmed.events)[-1].summary.endswith("(claims ownership accepted by U-OPSB: the events agree)")


def test_subject_events_are_merged_in_business_order_and_named() -> None:
    story = Story().offer("U-OPSA", at(hours=1)).accept("U-OPSA", at(hours=2))
    story.subject("SUBJ-01", at(hours=3))
    story.note(at(hours=4))
    story.on_subject(
        "SUBJ-01", "disseminate", "U-OPSA", at(hours=5), to_force="F-NORTH", authorised_by="P-7", grading=None, consent_reference=None
    )
    story.on_subject("SUBJ-01", "acknowledge", "P-20@F-NORTH", at(hours=6))

    rows = timeline(story.events, story.subject_events)

    assert [(r.subject, r.type) for r in rows[-4:]] == [
        ("SUBJ-01", "subject_extracted"),
        (None, "note_added"),
        ("SUBJ-01", "subject_disseminated"),
        ("SUBJ-01", "force_acknowledged"),
    ]
    assert rows[-4].summary == "Subject SUBJ-01 added (payer)"
    assert rows[-2].summary == "SUBJ-01: Sent to F-NORTH, authorised by P-7"
    assert rows[-1].summary == "SUBJ-01: F-NORTH acknowledged it"


def test_a_tie_across_streams_puts_the_referral_first() -> None:
    story = Story()
    story.subject("SUBJ-01", at(hours=1), recorded=at(hours=2))
    story.note(at(hours=1), recorded=at(hours=2))

    rows = timeline(story.events, story.subject_events)

    assert [r.type for r in rows] == ["received", "note_added", "subject_extracted"]


def test_document_and_csv_columns() -> None:
    story = Story().offer("U-OPSA", at(hours=1), reply_due=at(days=2))

    document = timeline_document(REFERENCE, timeline(story.events), None)

    assert document["referral"] == REFERENCE and document["as_known_at"] is None
    assert document["events"][1] == {
        "occurred_at": "2024-03-01T10:00:00Z",
        "recorded_at": "2024-03-01T10:01:00Z",
        "ingested_at": "2024-03-01T10:01:00Z",
        "lag_days": 0.0,
        "late": False,
        "needs_attestation": False,
        "late_reason": None,
        "subject": None,
        "version": 2,
        "type": "ownership_offered",
        "actor": {"person": "P-U-INTAKE", "role": "team-manager", "unit": "U-INTAKE"},
        "login": None,
        "summary": "Ownership offered to U-OPSA, reply due 2024-03-03T09:00:00Z",
        "effect": "applied",
        "why": None,
        "line": None,
    }
    assert set(CSV_COLUMNS) <= set(document["events"][1])


def test_every_event_class_has_its_import_type_name() -> None:
    classes = {
        value
        for owner in (Referral, Subject, Unit, Person, StaffDirectory)
        for value in vars(owner).values()
        if inspect.isclass(value) and issubclass(value, LedgerEvent) and value is not owner.Event
    }

    assert set(EVENT_TYPES) == classes
    # putting the directory in force is a command of its own (`directory enforce`), not an import line
    assert set(EVENT_TYPES.values()) - {"directory_enforced"} == {record_type.type for record_type in RECORD_TYPES}

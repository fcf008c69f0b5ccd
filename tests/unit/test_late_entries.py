"""Late entries, one rule per test: given recorded events, then the late entries the fold lists."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ledger.policy import Policy
from projections.late_entries import COLUMNS, late_entries
from tests.scenario import REFERENCE, at, given, rec, received

LATE = "Typed up from the meeting minutes."


def entries_of(*records: dict[str, Any], policy: Policy | None = None, min_lag: timedelta | None = None) -> list[dict[str, Any]]:
    ledger = given(*records).ledger
    found = late_entries(ledger.referral_events(REFERENCE), ledger.subject_events(REFERENCE), policy=policy or Policy(), min_lag=min_lag)
    return [entry.as_row() for entry in found]


def note(when: str, recorded: str, **fields: Any) -> dict[str, Any]:
    return rec("note_added", when, "U-INTAKE", recorded=recorded, text="Progress.", **fields)


def test_an_entry_recorded_within_24_hours_is_not_late() -> None:
    assert entries_of(received(), note(at(2, 9), recorded=at(3, 9))) == []


def test_an_entry_recorded_more_than_24_hours_after_it_occurred_is_late() -> None:
    rows = entries_of(received(), note(at(2, 9), recorded=at(3, 9, 1), late_reason=LATE))

    assert rows == [
        {
            "referral": REFERENCE,
            "subject": None,
            "type": "note_added",
            "occurred_at": at(2, 9),
            "recorded_at": at(3, 9, 1),
            "version": 2,
            "lag_days": 1.0,
            "needs_attestation": False,
            "attestation_due": None,
            "attestation_overdue": False,
            "attested_by": None,
            "attested_at": None,
            "late_reason": LATE,
        }
    ]


def test_more_than_seven_days_late_needs_attestation() -> None:
    rows = entries_of(received(), note(at(2), recorded=at(9), late_reason=LATE), note(at(3), recorded=at(10, 9, 1), late_reason=LATE))
    # exactly 7 days is late, but not beyond the attestation threshold
    assert [(row["lag_days"], row["needs_attestation"]) for row in rows] == [(7.0, False), (7.0, True)]


def test_subject_events_are_listed_with_their_subject_and_import_type() -> None:
    rows = entries_of(
        received(),
        rec("subject_extracted", at(2), "U-TRIAGE", subject="SUBJ-1", category="suspect"),
        rec(
            "subject_triaged",
            at(3),
            "U-TRIAGE",
            recorded=at(6),
            late_reason=LATE,
            subject="SUBJ-1",
            risk_tool="RPT",
            risk_tool_version="3",
            band="HIGH",
        ),
    )

    assert [(row["subject"], row["type"], row["lag_days"]) for row in rows] == [("SUBJ-1", "subject_triaged", 3.0)]


def test_the_policy_sets_the_thresholds() -> None:
    strict = Policy(rules={"late-entry": {"hours": 12, "attestation_days": 1}})
    records = (received(), note(at(2, 9), recorded=at(2, 23)), note(at(3, 9), recorded=at(4, 10), late_reason=LATE))

    assert [row["lag_days"] for row in entries_of(*records)] == [1.04]
    assert [(row["lag_days"], row["needs_attestation"]) for row in entries_of(*records, policy=strict)] == [(0.58, False), (1.04, True)]


def test_min_lag_replaces_the_late_threshold_but_not_attestation() -> None:
    records = (received(), note(at(2, 9), recorded=at(2, 15)), note(at(3, 9), recorded=at(12, 9), late_reason=LATE))

    assert [row["lag_days"] for row in entries_of(*records, min_lag=timedelta(hours=5))] == [0.25, 9.0]
    assert [row["needs_attestation"] for row in entries_of(*records, min_lag=timedelta(days=8))] == [True]


def test_entries_come_in_recording_order() -> None:
    rows = entries_of(
        received(),
        note(at(5), recorded=at(9), late_reason=LATE),
        note(at(2), recorded=at(10), late_reason=LATE),
    )

    assert [row["occurred_at"] for row in rows] == [at(5), at(2)]


def test_the_row_has_the_csv_columns() -> None:
    rows = entries_of(received(), note(at(2), recorded=at(4), late_reason=LATE))

    assert tuple(rows[0]) == COLUMNS


def test_events_of_no_referral_are_refused() -> None:
    with pytest.raises(ValueError, match="name no referral"):
        late_entries([], {})

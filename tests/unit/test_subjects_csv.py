"""CSV rows of a bulk package become records in the import format, checked by parse_record,
and a file is recorded all or nothing (in-memory ledger; the clock is injected)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.errors import InvalidInput
from ledger.importing import parse_record
from ledger.subject_csv import (
    DISSEMINATE_LAYOUT,
    IMPORT_LAYOUT,
    TRIAGE_LAYOUT,
    disseminate_records,
    import_records,
    read_csv,
    record_rows,
    triage_records,
)

REF = "R-BULK-1"
NOW = datetime(2024, 3, 4, 12, tzinfo=UTC)
ACTOR = {"person": "P-02", "role": "analyst", "unit": "U-TRIAGE"}
STAMP = {"actor": ACTOR, "occurred_at": "2024-03-04T10:00:00Z"}


def write(tmp_path: Path, text: str, name: str = "rows.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def ledger() -> Ledger:
    ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: NOW)
    received = {
        "type": "received",
        "referral": REF,
        "occurred_at": "2024-03-01T09:00:00Z",
        "actor": ACTOR,
        "late_reason": "Registered late",
    }
    parse_record({**received, "originator": "X", "channel": "liaison", "custodian_unit": "U-TRIAGE"}).run(ledger)
    return ledger


def events(ledger: Ledger) -> list[str]:
    return [type(e).__name__ for history in ledger.subject_events(REF).values() for e in history]


def test_a_file_is_read_with_its_line_numbers_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, '\ufeffsubject, category\nS-1,suspect\n\nS-2,"unknown"\n , \nS-3,misidentified\n')
    table = read_csv(path, IMPORT_LAYOUT)
    assert table.columns == ("subject", "category")
    assert table.rows == [
        (2, {"subject": "S-1", "category": "suspect"}),
        (4, {"subject": "S-2", "category": "unknown"}),
        (6, {"subject": "S-3", "category": "misidentified"}),
    ]
    assert len(table.sha256) == 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty; it needs a header row: subject,category[,band]"),
        ("subject,category\n", "has a header but no rows"),
        ("subject,category,name\nS-1,suspect,John Smith\n", "line 1: unknown column 'name'"),
        ("subject,categroy\nS-1,suspect\n", "line 1: unknown column 'categroy'"),
        ("subject,category,category\nS-1,a,b\n", "line 1: column 'category' appears twice"),
        ("subject\nS-1\n", "line 1: missing column 'category'"),
        ("subject,category\nS-1,suspect\nS-2\n", "line 3: 1 cells, but the header has 2 columns"),
        ('subject,category\nS-1,"sus\n', "line 2: malformed CSV"),
    ],
)
def test_a_malformed_file_is_refused_before_anything_is_recorded(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        read_csv(write(tmp_path, text), IMPORT_LAYOUT)


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("subject,category\nS-1,suspect é\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match="is not UTF-8 text"):
        read_csv(path, IMPORT_LAYOUT)


def test_each_layout_names_its_columns() -> None:
    assert IMPORT_LAYOUT.header == "subject,category[,band][,target_force][,occurred_at][,late_reason]"
    assert TRIAGE_LAYOUT.required == ("subject", "risk_tool", "risk_tool_version", "band")
    assert DISSEMINATE_LAYOUT.optional[:2] == ("grading", "consent_reference")


def test_an_import_row_with_a_band_is_extracted_then_triaged_with_the_commands_tool() -> None:
    assert import_records({"subject": "S-1", "category": "suspect", "band": "HIGH", "target_force": "F-NORTH"}, "RPT", "3.2") == [
        {"type": "subject_extracted", "subject": "S-1", "category": "suspect"},
        {
            "type": "subject_triaged",
            "subject": "S-1",
            "risk_tool": "RPT",
            "risk_tool_version": "3.2",
            "band": "HIGH",
            "target_force": "F-NORTH",
        },
    ]
    assert import_records({"subject": "S-2", "category": "unknown"}, "RPT", "3.2") == [
        {"type": "subject_extracted", "subject": "S-2", "category": "unknown"}
    ]
    with pytest.raises(InvalidInput, match="a target_force needs a band"):
        import_records({"subject": "S-3", "category": "suspect", "target_force": "F-NORTH"}, "RPT", "3.2")


@pytest.mark.parametrize("subject", ["John Smith", "1985-03-02 J.S.", "S 1", "-x", "S-" + "9" * 70])
def test_subject_references_must_be_pseudonymous(subject: str) -> None:
    with pytest.raises(InvalidInput, match="not a pseudonymous reference"):
        import_records({"subject": subject, "category": "suspect"}, None, None)


def test_triage_drivers_and_dissemination_grading_are_split() -> None:
    assert triage_records({"subject": "S-1", "risk_tool": "RPT", "risk_tool_version": "3.2", "band": "LOW", "drivers": "a; b;;c "}) == [
        {
            "type": "subject_triaged",
            "subject": "S-1",
            "risk_tool": "RPT",
            "risk_tool_version": "3.2",
            "band": "LOW",
            "drivers": ["a", "b", "c"],
        }
    ]
    assert disseminate_records({"subject": "S-1", "to_force": "F-N", "authorised_by": "P-07", "grading": "3x5x2:2-B-C"}) == [
        {
            "type": "subject_disseminated",
            "subject": "S-1",
            "to_force": "F-N",
            "authorised_by": "P-07",
            "grading": {"scheme": "3x5x2", "value": "2-B-C"},
        }
    ]
    with pytest.raises(InvalidInput, match="grading '2-B-C' must be SCHEME:VALUE"):
        disseminate_records({"subject": "S-1", "to_force": "F-N", "authorised_by": "P-07", "grading": "2-B-C"})


def record(ledger: Ledger, path: Path, layout: Any, to_records: Any, stamp: dict[str, Any] = STAMP) -> Any:
    return record_rows(ledger, REF, read_csv(path, layout), to_records, stamp)


def test_rows_are_recorded_with_their_provenance(ledger: Ledger, tmp_path: Path) -> None:
    path = write(tmp_path, "subject,category,band\nS-1,suspect,HIGH\nS-2,unknown,\n")
    done = record(ledger, path, IMPORT_LAYOUT, lambda cells: import_records(cells, "RPT", "3.2"))
    assert (done.rows, dict(done.events)) == (2, {"subject_extracted": 2, "subject_triaged": 1})
    assert ledger.subject_refs(REF) == ["S-1", "S-2"]
    history = ledger.subject_events(REF)["S-1"]
    assert [e.source["line"] for e in history] == [2, 2]
    assert {e.source["file"] for e in history} == {read_csv(path, IMPORT_LAYOUT).sha256}
    assert [e.occurred_at for e in history] == [datetime(2024, 3, 4, 10, tzinfo=UTC)] * 2


def test_a_bad_row_keeps_nothing_of_the_file(ledger: Ledger, tmp_path: Path) -> None:
    rows = "".join(f"S-{n},suspect,{'HUGE' if n == 7 else 'LOW'}\n" for n in range(1, 11))
    path = write(tmp_path, "subject,category,band\n" + rows)
    with pytest.raises(InvalidInput, match=r"^line 8: band must be one of LOW, MEDIUM, HIGH, VERY_HIGH$"):
        record(ledger, path, IMPORT_LAYOUT, lambda cells: import_records(cells, "RPT", "3.2"))
    assert ledger.subject_refs(REF) == []


def test_a_rule_violation_names_its_line(ledger: Ledger, tmp_path: Path) -> None:
    record(ledger, write(tmp_path, "subject,category\nS-1,suspect\nS-2,suspect\n"), IMPORT_LAYOUT, lambda c: import_records(c, None, None))
    sent = write(tmp_path, "subject,to_force,authorised_by\nS-1,F-NORTH,P-07\nS-1,F-EAST,P-07\n", "sent.csv")
    with pytest.raises(InvalidInput, match=r"^line 3: .*in transit to F-NORTH.*\(rule: answer-before-resend\)"):
        record(ledger, sent, DISSEMINATE_LAYOUT, disseminate_records)
    unknown = write(tmp_path, "subject,to_force,authorised_by\nS-9,F-NORTH,P-07\n", "unknown.csv")
    with pytest.raises(InvalidInput, match=r"^line 2: subject S-9 of R-BULK-1 is not in the ledger"):
        record(ledger, unknown, DISSEMINATE_LAYOUT, disseminate_records)
    assert events(ledger) == ["Extracted", "Extracted"]


def test_a_row_may_carry_its_own_time_and_late_reason(ledger: Ledger, tmp_path: Path) -> None:
    path = write(tmp_path, "subject,category,occurred_at,late_reason\nS-1,suspect,,\nS-2,suspect,2024-03-01T10:00:00Z,Paper file\n")
    record(ledger, path, IMPORT_LAYOUT, lambda c: import_records(c, None, None))
    path = write(
        tmp_path,
        "subject,risk_tool,risk_tool_version,band,occurred_at,late_reason\n"
        "S-1,RPT,3.2,LOW,,\n"
        "S-2,RPT,3.2,LOW,2024-03-02T10:00:00Z,Paper file\n",
        "triage.csv",
    )
    record(ledger, path, TRIAGE_LAYOUT, triage_records)
    triaged = {s: h[-1] for s, h in ledger.subject_events(REF).items()}
    assert (triaged["S-1"].occurred_at, triaged["S-1"].late_reason) == (datetime(2024, 3, 4, 10, tzinfo=UTC), None)
    assert (triaged["S-2"].occurred_at, triaged["S-2"].late_reason) == (datetime(2024, 3, 2, 10, tzinfo=UTC), "Paper file")
    late_without_reason = write(
        tmp_path, "subject,risk_tool,risk_tool_version,band,occurred_at\nS-2,RPT,3.2,LOW,2024-03-02T11:00:00Z\n", "late.csv"
    )
    with pytest.raises(InvalidInput, match=r"^line 2: .*give a late reason \(rule: late-needs-reason\)"):
        record(ledger, late_without_reason, TRIAGE_LAYOUT, triage_records)


def test_the_same_tranche_file_is_not_recorded_twice(ledger: Ledger, tmp_path: Path) -> None:
    record(ledger, write(tmp_path, "subject,category\nS-1,suspect\n"), IMPORT_LAYOUT, lambda c: import_records(c, None, None))
    path = write(tmp_path, "subject,risk_tool,risk_tool_version,band\nS-1,RPT,3.2,LOW\n", "triage.csv")
    record(ledger, path, TRIAGE_LAYOUT, triage_records)
    with pytest.raises(InvalidInput, match=r"^line 2: this file .* was already imported"):
        record(ledger, path, TRIAGE_LAYOUT, triage_records)
    assert events(ledger) == ["Extracted", "Triaged"]

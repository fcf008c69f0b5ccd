"""Bulk packages on each backend: 2,345 subjects imported, triaged and disseminated by CSV,
read back in one query, and a bad row that keeps nothing of its file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.errors import InvalidInput
from ledger.importing import parse_record
from ledger.storage import read_streams
from ledger.subject_csv import (
    DISSEMINATE_LAYOUT,
    IMPORT_LAYOUT,
    disseminate_records,
    import_records,
    read_csv,
    record_rows,
)
from ledger.values import iso, subject_id
from projections.subjects import package_summary, subject_positions
from tests.conftest import Clock, count_events

REF = "R-2012-0716"
SUBJECTS = 2_345
BANDS = ("LOW", "MEDIUM", "HIGH", "VERY_HIGH")
FORCES = ("F-NORTH", "F-EAST", "F-WEST", "F-SOUTH")


def actor(unit: str = "U-IDT") -> dict[str, str]:
    return {"person": "P-04", "role": "team-manager", "unit": unit}


def receive(ledger: Ledger, clock: Clock) -> None:
    record = {"type": "received", "referral": REF, "occurred_at": iso(clock.now), "actor": actor()}
    parse_record(
        {**record, "originator": "X-AGENCY", "channel": "liaison", "custodian_unit": "U-IDT", "claimed_subject_count": SUBJECTS}
    ).run(ledger)


def write_subjects(path: Path, count: int) -> Path:
    rows = (f"S-{n:05d},suspect,{BANDS[n % 4]},{FORCES[n % 4]}" for n in range(count))
    path.write_text("subject,category,band,target_force\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def write_sent(path: Path, numbers: range) -> Path:
    rows = (f"S-{n:05d},{FORCES[n % 4]},P-07,3x5x2:2-B-C" for n in numbers)
    path.write_text("subject,to_force,authorised_by,grading\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def record(ledger: Ledger, clock: Clock, path: Path, layout: Any, to_records: Any) -> Any:
    return record_rows(ledger, REF, read_csv(path, layout), to_records, {"actor": actor(), "occurred_at": iso(clock.now)})


def import_subjects(ledger: Ledger, clock: Clock, path: Path) -> Any:
    return record(ledger, clock, path, IMPORT_LAYOUT, lambda cells: import_records(cells, "RPT", "3.2"))


def test_read_streams_gives_what_reading_each_stream_gives(
    ledger: Ledger, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receive(ledger, clock)
    clock.advance(hours=1)
    import_subjects(ledger, clock, write_subjects(tmp_path / "subjects.csv", 30))
    clock.advance(hours=1)
    record(ledger, clock, write_sent(tmp_path / "sent.csv", range(0, 30, 3)), DISSEMINATE_LAYOUT, disseminate_records)
    ids = [subject_id(REF, f"S-{n:05d}") for n in reversed(range(30))] + [subject_id(REF, "S-NONE")]
    with monkeypatch.context() as patched:
        # one query for them all, on either backend: never the recorder's one-stream read
        patched.setattr(ledger.recorder, "select_events", lambda *_, **__: pytest.fail("read stream by stream"))
        streams = read_streams(ledger, ids)
    assert list(streams) == ids
    for stream_id in ids:
        one_by_one = ledger.stream_events(stream_id)
        assert [(e.originator_version, type(e), vars(e)) for e in streams[stream_id]] == [
            (e.originator_version, type(e), vars(e)) for e in one_by_one
        ]
    assert [len(streams[i]) for i in ids[-4:]] == [2, 2, 3, 0]  # S-00002, S-00001, S-00000 (sent), none
    assert list(ledger.subject_events(REF)) == [f"S-{n:05d}" for n in range(30)]


def test_a_package_of_2345_subjects_before_during_and_after_dissemination(
    ledger: Ledger, clock: Clock, database_url: str, tmp_path: Path
) -> None:
    receive(ledger, clock)
    received = clock.now
    clock.advance(hours=2)
    imported = import_subjects(ledger, clock, write_subjects(tmp_path / "subjects.csv", SUBJECTS))
    assert (imported.rows, dict(imported.events)) == (SUBJECTS, {"subject_extracted": SUBJECTS, "subject_triaged": SUBJECTS})
    before = clock.advance(hours=1)
    first = clock.advance(hours=1)
    record(ledger, clock, write_sent(tmp_path / "tranche-1.csv", range(1_000)), DISSEMINATE_LAYOUT, disseminate_records)
    during = clock.advance(hours=6)
    last = clock.advance(hours=6)
    record(ledger, clock, write_sent(tmp_path / "tranche-2.csv", range(1_000, SUBJECTS)), DISSEMINATE_LAYOUT, disseminate_records)
    after = clock.advance(hours=1)
    assert count_events(database_url) == 1 + 4 * SUBJECTS  # receipt; per subject: listed, extracted, triaged, sent

    referral, subjects = ledger.referral_events(REF), ledger.subject_events(REF)
    assert len(subjects) == SUBJECTS
    summaries = {
        name: package_summary(referral, subjects, at).as_dict() for name, at in (("before", before), ("during", during), ("after", after))
    }
    assert {name: s["by_state"] for name, s in summaries.items()} == {
        "before": {"with_referral_owner": SUBJECTS, "in_transit": 0, "with_force": 0, "closed": 0},
        "during": {"with_referral_owner": SUBJECTS - 1_000, "in_transit": 1_000, "with_force": 0, "closed": 0},
        "after": {"with_referral_owner": 0, "in_transit": SUBJECTS, "with_force": 0, "closed": 0},
    }
    assert summaries["after"]["by_force"]["F-SOUTH"] == {"in_transit": 586, "with_force": 0, "actioned": 0}
    assert (summaries["after"]["first_dissemination"], summaries["after"]["last_dissemination"]) == (iso(first), iso(last))
    assert summaries["after"]["days_to_first_dissemination"] == round((first - received).total_seconds() / 86400, 2)
    assert (summaries["during"]["disseminations"], summaries["after"]["triaged"]) == (1_000, SUBJECTS)

    in_transit = [p for p in subject_positions(referral, subjects, during) if p.matches(state="in_transit", force="F-NORTH")]
    assert len(in_transit) == 250
    assert {(p.responsible_unit, p.responsible_as) for p in in_transit} == {("U-IDT", "custodian")}


def test_a_bad_row_deep_in_a_file_keeps_nothing_of_it(ledger: Ledger, clock: Clock, database_url: str, tmp_path: Path) -> None:
    receive(ledger, clock)
    clock.advance(hours=1)
    path = write_subjects(tmp_path / "subjects.csv", 600)
    lines = path.read_text().splitlines()
    lines[500] = lines[500].replace("suspect", "")  # line 501: no category
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match=r"^line 501: missing category for type subject_extracted$"):
        import_subjects(ledger, clock, path)
    assert count_events(database_url) == 1
    assert ledger.subject_refs(REF) == []

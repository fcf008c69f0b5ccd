"""Stored read models on each backend: catch-up, rebuild, concurrency of two catch-ups, and
the back-dating windows in which answers come from the per-referral folds.

Records are written in the import format (historical: each carries its recording time) and
run through the real Ledger, so the tables are built from exactly what a user would store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eventsourcing.domain import Aggregate

from ledger.application import Ledger
from ledger.importing import import_file, parse_record
from ledger.policy import Policy
from projections.late_entries import late_entries
from projections.ownership import owner_at
from projections.store import LAYOUT, TABLES, ProjectionStopped, ReadModels, back_dating_windows, to_us
from tests.conftest import EXAMPLES, Clock, raw_execute
from tests.scenario import at, rec, received

REF = "R-TEST-1"
OTHER = "R-TEST-2"
LATE = "Entered from the paper file."


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def record(ledger: Ledger, *records: dict[str, Any]) -> None:
    for one in records:
        parse_record(one, historical=True).run(ledger)


@pytest.fixture
def now(clock: Clock) -> datetime:
    # the recording clock sits after every historical recording time the tests use
    return clock.set("2026-01-01T00:00:00+00:00")


def owned(reference: str = REF, start: int = 1) -> list[dict[str, Any]]:
    """Received, offered to U-OPS1 and accepted on the day after ``start``."""
    return [
        received(at(start), referral=reference),
        rec("ownership_offered", at(start, 10), "U-INTAKE", referral=reference, to_unit="U-OPS1"),
        rec("ownership_accepted", at(start + 1), "U-OPS1", referral=reference),
    ]


def test_a_catch_up_folds_the_whole_log_and_stops_at_its_head(ledger: Ledger, now: datetime) -> None:
    import_file(ledger, EXAMPLES / "cybertip.jsonl", historical=True)
    models = ReadModels(ledger)

    result = models.catch_up()

    status = models.status()
    assert (result.position, result.head, status.position, status.lag) == (ledger.head(), ledger.head(), ledger.head(), 0)
    assert (result.referrals_folded, result.entries, result.rounds) == (2, ledger.head(), 1)
    assert status.tables["rm_referrals"] == 2 and status.tables["rm_subjects"] == 4
    assert status.layout == LAYOUT and status.policy == Policy().version
    assert models.catch_up().entries == 0  # nothing new: nothing read


def test_status_before_any_catch_up_shows_the_whole_log_as_lag(ledger: Ledger, now: datetime) -> None:
    record(ledger, *owned())

    status = ReadModels(ledger).status()

    assert (status.position, status.head, status.lag) == (0, ledger.head(), ledger.head())
    assert set(status.tables) == {table.name for table in TABLES}


def test_incremental_catch_ups_give_the_tables_a_rebuild_gives(ledger: Ledger, now: datetime) -> None:
    first = ReadModels(ledger)
    record(ledger, *owned(), rec("subject_extracted", at(3), "U-OPS1", subject="SUBJ-1", category="suspect"))
    first.catch_up()
    record(
        ledger,
        rec("subject_triaged", at(4), "U-OPS1", subject="SUBJ-1", risk_tool="RPT", risk_tool_version="3", band="HIGH"),
        rec("ownership_released", at(5), "U-OPS1", reason="Outside our remit."),
        *owned(OTHER, start=6),
    )
    first.catch_up()
    record(ledger, rec("note_added", at(4, 12), "U-OPS1", recorded=at(7), text="Late note.", late_reason=LATE))
    # a second process: nothing in memory, so the touched referral is read back from its streams
    second = ReadModels(ledger)
    result = second.catch_up()
    assert result.referrals_folded == 1

    incremental = second.dump()
    rebuilt = second.rebuild()

    assert rebuilt.reset == "rebuild asked for" and rebuilt.position == ledger.head()
    assert second.dump() == incremental
    assert len(incremental["rm_streams"]) == 3 and len(incremental["rm_late_entries"]) == 1


def test_directory_entries_are_skipped_and_a_foreign_entry_stops_the_catch_up(ledger: Ledger, now: datetime) -> None:
    record(ledger, *owned(), rec("subject_extracted", at(3), "U-OPS1", subject="SUBJ-1", category="suspect"))
    models = ReadModels(ledger)
    models.catch_up()
    before = ledger.head()
    ledger.save(Stray(ledger.login))

    with pytest.raises(ProjectionStopped, match=f"log position {before + 1}"):
        models.catch_up()

    assert models.status().position == before


class Stray(Aggregate):
    """An aggregate the read models do not know, saved into the ledger's log (naming the login
    that inserts it, which PostgreSQL requires of every row)."""

    def __init__(self, inserted_by: str | None) -> None:
        self.inserted_by = inserted_by


def test_tables_built_under_another_policy_are_rebuilt(ledger: Ledger, now: datetime) -> None:
    record(ledger, received(at(1)))
    ReadModels(ledger).catch_up()
    quick = Policy(name="quick", rules={"owner-accepted": {"days": 1}})

    models = ReadModels(ledger, quick)
    result = models.catch_up()

    assert result.reset == f"the tables were built under policy {Policy().version}"
    assert models.status().policy == quick.version
    (overdue,) = [row for row in models.overdue(t(at(5))) if row.rule == "owner-accepted"]
    assert overdue.due == t(at(2))


def test_a_changed_layout_is_dropped_and_rebuilt(ledger: Ledger, now: datetime, database_url: str) -> None:
    record(ledger, *owned())
    ReadModels(ledger).catch_up()
    raw_execute(database_url, "UPDATE rm_tracking SET layout = 'old'")

    models = ReadModels(ledger)
    models.catch_up()

    status = models.status()
    assert (status.layout, status.position, status.tables["rm_referrals"]) == (LAYOUT, ledger.head(), 1)


def test_when_another_catch_up_commits_first_this_one_starts_again_from_there(
    ledger: Ledger, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(ledger, *owned())
    slow, fast = ReadModels(ledger), ReadModels(ledger)
    real_read = slow._read_round
    overtaken: list[int] = []

    def read_then_get_overtaken(*args: Any) -> Any:
        batch = real_read(*args)
        if not overtaken:
            overtaken.append(fast.catch_up().position)  # commits while ``slow`` holds its round
            record(ledger, rec("note_added", at(3), "U-OPS1", text="Progress."))
        return batch

    monkeypatch.setattr(slow, "_read_round", read_then_get_overtaken)
    result = slow.catch_up()

    assert overtaken and result.position == overtaken[0]  # caught up to the head seen when it began
    assert slow.catch_up().position == ledger.head()
    caught_up = slow.dump()
    slow.rebuild()
    assert slow.dump() == caught_up


def test_queries_catch_up_before_answering(ledger: Ledger, now: datetime) -> None:
    record(ledger, received(at(1)))
    models = ReadModels(ledger)
    assert {(row.referral, row.rule) for row in models.overdue(t(at(10)))} == {(REF, "owner-accepted"), (REF, "initial-assessment")}
    record(ledger, *owned(OTHER, start=1))

    overdue = models.overdue(t(at(10)))

    assert {(row.referral, row.rule) for row in overdue} == {
        (REF, "owner-accepted"),
        (REF, "initial-assessment"),
        (OTHER, "initial-assessment"),
    }
    assert models.status().lag == 0


def test_overdue_rows_name_the_owner_and_custodian_at_the_instant(ledger: Ledger, now: datetime) -> None:
    record(
        ledger,
        received(at(1)),
        rec("escalation_raised", at(1, 11), "U-INTAKE", to_role="head-of-tasking", issue="Who leads?", decision_due=at(1, 12)),
        rec("ownership_offered", at(1, 13), "U-INTAKE", to_unit="U-OPS1"),
        rec("ownership_accepted", at(2), "U-OPS1"),
        rec("custody_transferred", at(3), "U-INTAKE", to_unit="U-OPS1"),
    )
    models = ReadModels(ledger)

    before_acceptance = models.overdue(t(at(1, 20)), rule="escalation-decided")
    before_transfer = models.overdue(t(at(2, 12)), rule="escalation-decided")
    later = models.overdue(t(at(20)), rule="escalation-decided")

    assert [(row.owner_unit, row.custodian_unit) for row in before_acceptance] == [(None, "U-INTAKE")]
    assert [(row.owner_unit, row.custodian_unit, row.days_overdue) for row in before_transfer] == [("U-OPS1", "U-INTAKE", 1.0)]
    assert [(row.owner_unit, row.custodian_unit) for row in later] == [("U-OPS1", "U-OPS1")]
    assert {row.rule for row in models.overdue(t(at(20)), unit="U-OPS1")} == {"escalation-decided", "initial-assessment"}
    assert models.overdue(t(at(1, 20)), unit="U-OPS1") == []  # unowned then: it answers to its custodian
    assert {row.rule for row in models.overdue(t(at(1, 20)), unit="U-INTAKE")} == {"escalation-decided"}


# --- back-dating windows ------------------------------------------------------------------


def test_events_recorded_in_business_order_have_no_window(ledger: Ledger, now: datetime) -> None:
    record(ledger, *owned(), rec("note_added", at(3), "U-OPS1", recorded=at(3, 20), text="Same day."))

    assert back_dating_windows(REF, ledger.referral_events(REF)) == []


def test_a_back_dated_entry_opens_a_window_until_it_is_recorded(ledger: Ledger, now: datetime) -> None:
    record(
        ledger,
        *owned(),
        rec("note_added", at(5), "U-OPS1", text="Progress."),
        rec("note_added", at(4), "U-OPS1", recorded=at(9), text="Back-dated.", late_reason=LATE),
    )

    (window,) = back_dating_windows(REF, ledger.referral_events(REF))

    assert (window.from_us, window.until_us) == (to_us(t(at(4)) - timedelta(minutes=5)), to_us(t(at(9))))


def back_dated_withdrawal(ledger: Ledger) -> None:
    """An acceptance recorded in time, then voided by a withdrawal back-dated before it."""
    record(
        ledger,
        received(at(1)),
        rec("ownership_offered", at(3), "U-INTAKE", to_unit="U-OPS2"),
        rec("ownership_accepted", at(10), "U-OPS2"),
        rec("offer_withdrawn", at(5), "U-INTAKE", recorded=at(20), reason="Sent in error.", late_reason=LATE),
    )


def test_inside_a_window_answers_come_from_the_folds(ledger: Ledger, now: datetime) -> None:
    back_dated_withdrawal(ledger)
    models = ReadModels(ledger)
    day15 = t(at(15))
    events = ledger.referral_events(REF)

    exact_gaps = models.gaps(now=now, as_known_at=day15)
    stored_gaps = models.gaps(now=now, as_known_at=day15, exact=False)
    (exact_overdue,) = models.overdue(day15, rule="initial-assessment")
    (stored_overdue,) = models.overdue(day15, rule="initial-assessment", exact=False)

    # as known on day 15 the acceptance stood: U-OPS2 owned it and the gap had ended
    assert owner_at(events, day15, as_known_at=day15).owner is not None
    assert [(gap.start, gap.end) for gap in exact_gaps] == [(t(at(1)), t(at(10)))]
    assert exact_overdue.owner_unit == "U-OPS2"
    # the stored rows hold the hindsight, in which the withdrawal voided the acceptance
    assert [(gap.start, gap.end) for gap in stored_gaps] == [(t(at(1)), None)]
    assert stored_overdue.owner_unit is None
    # outside the window (after the withdrawal was recorded) both agree: nobody ever owned it
    assert models.gaps(now=now, as_known_at=t(at(21))) == models.gaps(now=now, as_known_at=t(at(21)), exact=False)


def test_inside_a_window_the_backlog_comes_from_the_folds(ledger: Ledger, now: datetime) -> None:
    back_dated_withdrawal(ledger)
    models = ReadModels(ledger)

    (exact,) = models.backlog(t(at(15)))
    (stored,) = models.backlog(t(at(15)), exact=False)

    assert (exact.owner_unit, stored.owner_unit) == ("U-OPS2", None)
    assert models.backlog(t(at(15)), as_known_now=True)[0].owner_unit is None


# --- late entries ---------------------------------------------------------------------------


def test_late_entries_below_the_stored_floor_are_read_from_the_log(ledger: Ledger, now: datetime) -> None:
    record(
        ledger,
        *owned(),
        rec("note_added", at(3), "U-OPS1", recorded=at(3, 9, 45), text="45 minutes on."),
        rec("note_added", at(4), "U-OPS1", recorded=at(6), text="Two days on.", late_reason=LATE),
    )
    models = ReadModels(ledger)
    policy = Policy()

    def fold(min_lag: timedelta | None) -> list[Any]:
        return late_entries(ledger.referral_events(REF), ledger.subject_events(REF), policy=policy, min_lag=min_lag)

    assert models.late_entries() == fold(None)
    assert [entry.lag for entry in models.late_entries(min_lag=timedelta(minutes=30))] == [timedelta(minutes=45), timedelta(days=2)]
    assert models.late_entries(min_lag=timedelta(minutes=30)) == fold(timedelta(minutes=30))


def test_a_ledger_without_sql_storage_has_no_read_models() -> None:
    from ledger.errors import LedgerError
    from tests.scenario import in_memory_ledger

    with pytest.raises(LedgerError, match="SQLite or PostgreSQL"):
        ReadModels(in_memory_ledger())


def test_times_are_stored_as_microseconds_since_the_epoch() -> None:
    assert to_us(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert to_us(datetime(2024, 3, 11, 8, 40, 0, 5, tzinfo=UTC)) == 1_710_146_400_000_005

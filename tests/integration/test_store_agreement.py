"""The stored read models agree with the per-referral folds on a generated ledger, on each backend.

A historical ledger of about 200 referrals (bench/generate.py, with late entries) is imported
and caught up. At several instants, including instants inside back-dating windows, every
portfolio answer (overdue as known then and now, gaps as known then and now, the backlog,
late entries) is compared with what the folds give referral by referral. The stored rows
alone (``exact=False``) may differ only for referrals with a back-dated entry in flight.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.application import Ledger
from ledger.errors import LedgerError
from ledger.importing import import_lines
from ledger.policy import Policy
from ledger.referral import OPEN, LedgerEvent
from ledger.subject import CLOSED, fold_subject
from ledger.values import days
from projections.backlog import OpenReferral, backlog
from projections.late_entries import late_entries
from projections.obligations import OVERDUE, obligations_at
from projections.ownership import ownership_history
from projections.store import ReadModels, from_us
from tests.conftest import Clock

GENERATOR = Path(__file__).resolve().parents[2] / "bench" / "generate.py"
START, END = datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)
EVENLY = [START + (END - START) * n / 6 for n in range(1, 7)]
NOW = datetime(2026, 1, 1, tzinfo=UTC)

History = tuple[list[LedgerEvent], dict[str, list[LedgerEvent]]]


def generated_records() -> list[dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("bench_generate_for_store", GENERATOR)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    return list(generator.generate(2000, referrals=200, seed=5, start="2023-01-01", end="2024-01-01", historical=True))


RECORDS = generated_records()


@pytest.fixture
def ledger_and_histories(ledger: Ledger, clock: Clock) -> Iterator[tuple[Ledger, dict[str, History]]]:
    clock.set("2026-01-01T00:00:00+00:00")
    import_lines(ledger, [orjson.dumps(record) for record in RECORDS], historical=True, file_sha256="generated")
    references = dict.fromkeys(record["referral"] for record in RECORDS)
    yield ledger, {reference: (ledger.referral_events(reference), ledger.subject_events(reference)) for reference in references}


def window_instants(models: ReadModels, count: int = 6) -> list[datetime]:
    """Midpoints of some back-dating windows: there the folds must answer for those referrals."""
    windows = models.windows()
    assert windows, "the generated ledger should have back-dated entries"
    step = max(1, len(windows) // count)
    return [from_us((window.from_us + window.until_us) // 2) for window in windows[::step][:count]]


# --- what the folds say, referral by referral --------------------------------------------


def holders(events: list[LedgerEvent], at: datetime, as_known_now: bool) -> tuple[str | None, str | None]:
    try:
        history = ownership_history(events, as_known_at=None if as_known_now else at, until=at)
    except LedgerError:
        return None, None
    owner, custodian = history.ownership_at(at), history.custody_at(at)
    return (None if owner is None else owner.unit), (None if custodian is None else custodian.unit)


def folded_overdue(histories: dict[str, History], at: datetime, as_known_now: bool) -> list[tuple[Any, ...]]:
    rows = []
    for reference, (events, subjects) in histories.items():
        found = [o for o in obligations_at(events, subjects, at, as_known_now=as_known_now) if o.status == OVERDUE]
        if not found:
            continue
        owner, custodian = holders(events, at, as_known_now)
        rows += [(reference, o.subject, o.rule, o.started_at, o.due, o.days_late, o.cycles_missed, owner, custodian) for o in found]
    return sorted(rows, key=repr)


def stored_overdue(models: ReadModels, at: datetime, as_known_now: bool, exact: bool = True) -> list[tuple[Any, ...]]:
    rows = models.overdue(at, as_known_now=as_known_now, exact=exact)
    return sorted(
        (
            (r.referral, r.subject, r.rule, r.started_at, r.due, r.days_overdue, r.cycles_missed, r.owner_unit, r.custodian_unit)
            for r in rows
        ),
        key=repr,
    )


def folded_gaps(histories: dict[str, History], as_known_at: datetime | None, until: datetime) -> list[tuple[Any, ...]]:
    rows = []
    for reference, (events, _) in histories.items():
        try:
            history = ownership_history(events, as_known_at=as_known_at)
        except LedgerError:
            continue
        rows += [(reference, gap.start, gap.end, days(max((gap.end or until) - gap.start, timedelta(0)))) for gap in history.gaps]
    return sorted(rows, key=repr)


def stored_gaps(models: ReadModels, as_known_at: datetime | None, now: datetime, exact: bool = True) -> list[tuple[Any, ...]]:
    return sorted(((g.referral, g.start, g.end, g.days) for g in models.gaps(now=now, as_known_at=as_known_at, exact=exact)), key=repr)


def folded_backlog(histories: dict[str, History], at: datetime) -> list[OpenReferral]:
    found = []
    for reference, (events, subjects) in histories.items():
        try:
            history = ownership_history(events, as_known_at=at, until=at)
        except LedgerError:
            continue
        if history.status != OPEN:
            continue
        owner, custodian = history.ownership_at(at), history.custody_at(at)
        assert custodian is not None
        open_subjects = 0
        for subject_events in subjects.values():
            known = [event for event in subject_events if event.recorded_at <= at and event.occurred_at <= at]
            if known and fold_subject(known).state != CLOSED:
                open_subjects += 1
        overdue: dict[str, int] = {}
        for o in obligations_at(events, subjects, at):
            if o.status == OVERDUE:
                overdue[o.rule] = overdue.get(o.rule, 0) + 1
        found.append(
            OpenReferral(reference, history.received_at, None if owner is None else owner.unit, custodian.unit, open_subjects, overdue)
        )
    return found


def referrals_of(rows: list[tuple[Any, ...]]) -> set[str]:
    return {row[0] for row in rows}


# --- the comparisons -----------------------------------------------------------------------


def test_overdue_gaps_and_backlog_agree_with_the_folds_at_every_instant(ledger_and_histories: tuple[Ledger, dict[str, History]]) -> None:
    ledger, histories = ledger_and_histories
    models = ReadModels(ledger)
    models.catch_up()
    instants = EVENLY + window_instants(models)
    fallbacks = 0
    for at in instants:
        ambiguous = models.back_dated_at(at)
        fallbacks += len(ambiguous)
        for as_known_now in (False, True):
            folded = folded_overdue(histories, at, as_known_now)
            assert stored_overdue(models, at, as_known_now) == folded, (at, as_known_now)
            stored_alone = stored_overdue(models, at, as_known_now, exact=False)
            differing = referrals_of(sorted(set(stored_alone) ^ set(folded), key=repr))
            assert differing <= (set() if as_known_now else ambiguous), (at, differing)
        assert stored_gaps(models, at, at) == folded_gaps(histories, at, at), at
        assert backlog(models.backlog(at), at) == backlog(folded_backlog(histories, at), at), at
    assert fallbacks > 0, "no instant fell inside a back-dating window: the fold fallback went untested"


def test_gaps_as_known_now_and_late_entries_agree_with_the_folds(ledger_and_histories: tuple[Ledger, dict[str, History]]) -> None:
    ledger, histories = ledger_and_histories
    models = ReadModels(ledger)

    assert stored_gaps(models, None, NOW) == folded_gaps(histories, None, NOW)
    for policy in (Policy(), Policy(name="strict", rules={"late-entry": {"hours": 2, "attestation_days": 3}})):
        models = ReadModels(ledger, policy)
        folded = [
            entry for events, subjects in histories.values() for entry in late_entries(events, subjects, policy=policy, now=ledger.clock())
        ]
        assert sorted(models.late_entries(), key=repr) == sorted(folded, key=repr)
        assert folded, "the generated ledger should have late entries"


def test_a_rebuild_gives_the_tables_of_small_incremental_rounds(ledger_and_histories: tuple[Ledger, dict[str, History]]) -> None:
    ledger, _ = ledger_and_histories
    models = ReadModels(ledger)
    result = models.catch_up(round_events=150, page_size=40)
    assert result.rounds > 10 and result.position == ledger.head()
    in_rounds = models.dump()

    models.rebuild()

    assert models.dump() == in_rounds

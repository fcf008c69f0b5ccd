"""``person`` from the read models agrees with a naive recomputation from every stream, on each backend.

A generated historical ledger (bench/generate.py, late entries included, so back-dating
windows exist) and a staff directory in which U-OPS1's managers take turns (bench/accountable.py)
are imported. For several officers, ranges and knowledge instants (inside back-dating windows
too), ``person_record`` (stored intervals, obligations and the actor index) is compared with
a fold of every referral of the ledger and a scan of every stream through ``known``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.application import Ledger
from ledger.importing import import_lines
from ledger.knowledge import known
from ledger.policy import DEFAULT_POLICY
from ledger.referral import LedgerEvent
from ledger.values import iso
from projections.accountable import Directory, person_record
from projections.obligations import BREACHED, OVERDUE, Obligation, obligations_at
from projections.ownership import event_type, ownership_history, source_line
from projections.store import ReadModels, from_us
from tests.conftest import Clock

BENCH = Path(__file__).resolve().parents[2] / "bench"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
STRETCHES = [
    ("2023-01-01T00:00:00Z", "2023-04-01T00:00:00Z"),
    ("2023-04-01T00:00:00Z", "2023-08-15T00:00:00Z"),
    ("2023-08-15T00:00:00Z", "2024-06-01T00:00:00Z"),
]


def _module(name: str) -> Any:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}_for_person", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATE, ACCOUNTABLE = _module("generate"), _module("accountable")
RECORDS = list(GENERATE.generate(2000, referrals=200, seed=5, start="2023-01-01", end="2024-01-01", historical=True))
STAFF = ACCOUNTABLE.staff_lines(120, STRETCHES)


def _overlap(a: tuple[datetime, datetime | None], b: tuple[datetime | None, datetime | None]) -> tuple[datetime, datetime | None] | None:
    start, end = a
    lower, upper = b
    if lower is not None and end is not None and end <= lower:
        return None
    if upper is not None and start >= upper:
        return None
    return (max(start, lower) if lower is not None else start, end if upper is None else (upper if end is None else min(end, upper)))


def _obligation(o: Obligation) -> tuple[Any, ...]:
    return (o.rule, o.subject, iso(o.due), o.status, o.days_late)


History = dict[str, tuple[list[LedgerEvent], dict[str, list[LedgerEvent]]]]


def naive(
    ledger: Ledger, histories: History, person: str, start: datetime | None, end: datetime | None, as_known_at: datetime | None
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Stretches and recorded events, by folding every referral and reading every stream."""
    directory = Directory(ledger, as_known_at)
    accountable = DEFAULT_POLICY.directory.accountable_roles
    spans = [
        (h.unit, span)
        for u in directory.units
        for h in u.holdings
        if h.person == person and h.role in accountable and (span := _overlap((h.start, h.end), (start, end))) is not None
    ]
    judged_at = end or as_known_at or NOW
    stretches: list[tuple[Any, ...]] = []
    recorded: list[tuple[Any, ...]] = []
    for reference, (all_events, all_subjects) in histories.items():
        events = known(all_events, as_known_at)
        subjects = {s: known(evs, as_known_at) for s, evs in all_subjects.items()}
        streams: Sequence[tuple[str | None, list[LedgerEvent]]] = [(None, events), *subjects.items()]
        recorded += [
            (iso(e.occurred_at), reference, subject, event_type(e), f"{e.actor['role']}@{e.actor['unit']}", source_line(e))
            for subject, stream in streams
            for e in stream
            if e.actor.get("person") == person and (start is None or e.occurred_at >= start) and (end is None or e.occurred_at < end)
        ]
        if not events or events[0].occurred_at > judged_at:
            continue  # not yet received by the instant judged
        history = ownership_history(events, until=judged_at)
        obligations = obligations_at(events, subjects, judged_at, as_known_now=True)
        pieces = [("owned", o.unit, (o.start, o.end)) for o in history.ownership]
        pieces += [
            ("held", c.unit, piece)
            for c in history.custody
            for g in history.gaps
            if (piece := _overlap((c.start, c.end), (g.start, g.end))) is not None
        ]
        for kind, holder, interval in pieces:
            for unit, span in spans:
                if holder == unit and (piece := _overlap(interval, span)) is not None:
                    lower, upper = piece
                    stop = upper or judged_at
                    due = [o for o in obligations if lower <= o.due < stop]
                    left = [
                        o
                        for o in obligations
                        if o.started_at < stop and o.due >= stop and (o.satisfied_at is None or o.satisfied_at >= stop)
                    ]
                    stretches.append(
                        (
                            iso(lower),
                            reference,
                            kind,
                            unit,
                            None if upper is None else iso(upper),
                            len(due),
                            [_obligation(o) for o in due if o.status in (BREACHED, OVERDUE)],
                            [_obligation(o) for o in left],
                        )
                    )
    directory.load_all()
    for history in directory.histories.values():
        recorded += [
            (iso(e.occurred_at), None, None, event_type(e), f"{e.actor['role']}@{e.actor['unit']}", source_line(e))
            for e in known(history, as_known_at)
            if e.actor.get("person") == person and (start is None or e.occurred_at >= start) and (end is None or e.occurred_at < end)
        ]
    return sorted(stretches, key=repr), sorted(recorded, key=repr)


def stored(ledger: Ledger, person: str, start: datetime | None, end: datetime | None, as_known_at: datetime | None) -> Any:
    record = person_record(ledger, person, start=start, end=end, as_known_at=as_known_at, now=NOW)
    stretches = [
        (
            s["start"],
            s["referral"],
            s["kind"],
            s["unit"],
            s["end"],
            s["fell_due"],
            [(o["rule"], o["subject"], o["due"], o["status"], o["days_late"]) for o in s["breached"]],
            [(o["rule"], o["subject"], o["due"], o["status"], o["days_late"]) for o in s["left_open"]],
        )
        for s in record["stretches"]
    ]
    recorded = [(e["occurred_at"], e["referral"], e["subject"], e["type"], e["as"], e["line"]) for e in record["events"]]
    return sorted(stretches, key=repr), sorted(recorded, key=repr)


@pytest.fixture
def imported(ledger: Ledger, clock: Clock) -> Ledger:
    clock.set("2026-01-01T00:00:00+00:00")
    import_lines(ledger, [orjson.dumps(record) for record in RECORDS], historical=True, file_sha256="generated")
    import_lines(ledger, [orjson.dumps(line) for line in STAFF], historical=True, file_sha256="staff")
    return ledger


def test_person_from_the_read_models_equals_the_naive_recomputation(imported: Ledger) -> None:
    ledger = imported
    models = ReadModels(ledger)
    models.catch_up()
    windows = models.windows()
    assert windows, "the generated ledger has back-dated entries"
    inside = [from_us((w.from_us + w.until_us) // 2) for w in windows[:3]]
    busiest = max({r["actor"]["person"] for r in RECORDS}, key=lambda p: sum(1 for r in RECORDS if r["actor"]["person"] == p))
    people = ["P-MGR-001", "P-MGR-002", "P-MGR-003", busiest, ACCOUNTABLE.HR["person"]]
    knowledge: list[datetime | None] = [None, datetime(2023, 6, 1, tzinfo=UTC), *inside]
    ranges: list[tuple[datetime | None, datetime | None]] = [
        (None, None),
        (datetime(2023, 3, 1, tzinfo=UTC), datetime(2023, 9, 1, tzinfo=UTC)),
    ]
    references = dict.fromkeys(record["referral"] for record in RECORDS)
    histories = {reference: (ledger.referral_events(reference), ledger.subject_events(reference)) for reference in references}
    compared = 0
    for person in people:
        for as_known_at in knowledge:
            for start, end in ranges:
                expected = naive(ledger, histories, person, start, end, as_known_at)
                assert stored(ledger, person, start, end, as_known_at) == expected, (person, as_known_at, start, end)
                compared += len(expected[0]) + len(expected[1])
    assert compared > 500  # the comparison covered real stretches and events

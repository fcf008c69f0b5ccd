"""The obligations fold over a generated ledger: its answers agree with the state folds.

Whatever the story, an open owner-accepted clock means the referral is open and unowned, an
open offer-reply clock means an offer is open, nothing is open on a closed referral, and an
open subject clock matches where the subject is (ReferralState and SubjectState decide).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.application import Ledger
from ledger.importing import parse_record
from ledger.referral import CLOSED, LedgerEvent, fold_state
from ledger.subject import IN_TRANSIT, WITH_FORCE, WITH_REFERRAL_OWNER, fold_subject
from ledger.values import days
from projections.obligations import BREACHED, DISCHARGED, MET, OVERDUE, PENDING, obligations_at

GENERATOR = Path(__file__).resolve().parents[2] / "bench" / "generate.py"
INSTANTS = [datetime(2023, month, 15, 12, tzinfo=UTC) for month in (3, 6, 9, 12)] + [datetime(2025, 6, 1, tzinfo=UTC)]
OPEN_SUBJECT_STATES = {
    "dissemination": {WITH_REFERRAL_OWNER},
    "force-acknowledgement": {IN_TRANSIT},
    "force-action": {IN_TRANSIT, WITH_FORCE},
}

Streams = list[tuple[list[LedgerEvent], dict[str, list[LedgerEvent]]]]


@pytest.fixture(scope="module")
def streams() -> Iterator[Streams]:
    ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    spec = importlib.util.spec_from_file_location("bench_generate", GENERATOR)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    references: dict[str, None] = {}
    with ledger.batch():
        records = generator.generate(3000, seed=11, start="2023-01-01", end="2024-01-01", historical=True)
        for number, record in enumerate(records, start=1):
            references[record["referral"]] = None
            parse_record(record, historical=True, source={"file": "generated", "line": number}).run(ledger)
    yield [(ledger.referral_events(ref), ledger.subject_events(ref)) for ref in references]
    ledger.close()


def known(events: list[LedgerEvent], at: datetime) -> list[LedgerEvent]:
    return [event for event in events if event.recorded_at <= at]


@pytest.mark.parametrize("as_known_now", [True, False], ids=["as-known-now", "as-known-then"])
@pytest.mark.parametrize("at", INSTANTS, ids=[at.date().isoformat() for at in INSTANTS])
def test_open_clocks_agree_with_the_state_folds(streams: Streams, at: datetime, as_known_now: bool) -> None:
    checked = 0
    for referral_events, subject_events in streams:
        referral_seen = referral_events if as_known_now else known(referral_events, at)
        if not referral_seen or referral_seen[0].occurred_at > at:
            continue
        state = fold_state(referral_seen, until=at)
        found = obligations_at(referral_events, subject_events, at, as_known_now=as_known_now)
        open_rules = [o.rule for o in found if o.status in (OVERDUE, PENDING) and o.subject is None]
        if state.status == CLOSED:
            assert [o for o in found if o.status in (OVERDUE, PENDING)] == []
        else:
            assert ("owner-accepted" in open_rules) == (state.owner_unit is None), state.reference
            assert ("offer-reply" in open_rules) == (state.open_offer is not None), state.reference
            for o in found:
                if o.subject is not None and o.status in (OVERDUE, PENDING):
                    seen = subject_events[o.subject] if as_known_now else known(subject_events[o.subject], at)
                    assert fold_subject(seen, until=at).state in OPEN_SUBJECT_STATES[o.rule], (state.reference, o)
        for rule in ("owner-accepted", "initial-assessment", "offer-reply", "supervisory-review"):
            assert open_rules.count(rule) <= 1, (state.reference, rule)  # one clock of these runs at a time
        for o in found:
            if o.status in (MET, DISCHARGED):
                assert o.satisfied_at is not None and o.satisfied_at <= o.due and o.days_late is None
                # discharged: stopped by something other than doing the thing, and it says what
                # (a subject closed with an outcome is the decision a dissemination clock awaits)
                decided = o.rule == "dissemination" and o.detail.get("ended_by") == "subject_closed"
                assert (o.status == DISCHARGED) == (o.detail.get("ended_by") is not None and not decided), o
            elif o.status == BREACHED:
                assert o.satisfied_at is not None and o.days_late == days(o.satisfied_at - o.due)
            elif o.status == OVERDUE:
                assert o.satisfied_at is None and o.due < at and o.days_late == days(at - o.due)
            else:
                assert o.satisfied_at is None and o.due >= at and o.days_late is None
            assert o.satisfied_at is None or o.satisfied_at <= at
        checked += 1
    assert checked > 50

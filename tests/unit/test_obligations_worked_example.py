"""The worked example (tests/data/worked_example): every overdue obligation it lists, from the fold."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.importing import parse_record
from ledger.values import parse_instant
from projections.obligations import OVERDUE, Obligation, obligations_at
from tests.conftest import EXAMPLES

EXPECTED: dict[str, Any] = json.loads((EXAMPLES / "cybertip_expected.json").read_text(encoding="utf-8"))

CASES = [
    pytest.param(reference, instant, as_known_now, rows, id=f"{reference}-{instant}{'-now' if as_known_now else ''}")
    for reference, answers in EXPECTED["referrals"].items()
    for key, as_known_now in (("overdue_at", False), ("overdue_at_as_known_now", True))
    for instant, rows in answers.get(key, {}).items()
]


@pytest.fixture(scope="module")
def ledger() -> Iterator[Ledger]:
    """The example in an in-memory ledger, each line recorded as a historical import records it."""
    imported = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: datetime(2024, 7, 1, tzinfo=UTC))
    lines = (EXAMPLES / "cybertip.jsonl").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        parse_record(json.loads(line), historical=True, source={"file": "cybertip.jsonl", "line": number}).run(imported)
    yield imported
    imported.close()


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    """An expected row in the fold's words: days_overdue is days_late, lines stay aside."""
    return {("days_late" if key == "days_overdue" else key): value for key, value in row.items() if key != "started_by_line"}


def line_of(ledger: Ledger, reference: str, obligation: Obligation) -> int:
    """The import line of the event that started the clock."""
    stream = ledger.subject_events(reference)[obligation.subject] if obligation.subject else ledger.referral_events(reference)
    (start,) = [event for event in stream if event.originator_version == obligation.started_by]
    assert start.source is not None
    line: int = start.source["line"]
    return line


def key(row: dict[str, Any]) -> tuple[str, str, str]:
    return (row["rule"], row["subject"] or "", row["started_at"])


@pytest.mark.parametrize(("reference", "instant", "as_known_now", "expected"), CASES)
def test_every_overdue_obligation_of_the_worked_example(
    ledger: Ledger, reference: str, instant: str, as_known_now: bool, expected: list[dict[str, Any]]
) -> None:
    found = [
        o
        for o in obligations_at(
            ledger.referral_events(reference), ledger.subject_events(reference), parse_instant(instant), as_known_now=as_known_now
        )
        if o.status == OVERDUE
    ]
    wanted = sorted((comparable(row) for row in expected), key=key)
    got = sorted((o.as_row() for o in found), key=key)
    assert [key(row) for row in got] == [key(row) for row in wanted]
    for have, want in zip(got, wanted, strict=True):
        assert have["days_late"] == pytest.approx(want.pop("days_late"), abs=0.01)
        assert {name: have.get(name) for name in want} == want
    lines = sorted((o.rule, o.subject or "", line_of(ledger, reference, o)) for o in found)
    assert lines == sorted((row["rule"], row["subject"] or "", row["started_by_line"]) for row in expected)

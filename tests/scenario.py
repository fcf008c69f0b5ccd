"""Given/when/then for ledger rules: records in the import format, run by the real Ledger.

Unit tests use the library's in-memory persistence; the rules under test are the same code
that the SQLite and PostgreSQL ledgers run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.errors import LedgerError, RuleViolation
from ledger.importing import parse_record
from ledger.referral import LedgerEvent

REFERENCE = "R-TEST-1"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROLES = {"U-INTAKE": "registry-officer", "U-TRIAGE": "analyst", "U-OPS1": "team-manager", "U-OPS2": "team-manager", "F-NORTH": "liaison"}


def at(day: int, hour: int = 9, minute: int = 0) -> str:
    """An instant in March 2024 (the tests' business calendar)."""
    return (datetime(2024, 3, 1, tzinfo=UTC) + timedelta(days=day - 1, hours=hour, minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rec(
    type: str, when: str, unit: str = "U-INTAKE", *, recorded: str | None = None, referral: str = REFERENCE, **fields: Any
) -> dict[str, Any]:
    record = {
        "type": type,
        "referral": referral,
        "occurred_at": when,
        "recorded_at": recorded or when,
        "actor": {"person": f"P-{unit}", "role": ROLES.get(unit, "officer"), "unit": unit},
    }
    record.update(fields)
    return record


def received(when: str = at(1), custodian: str = "U-INTAKE", **fields: Any) -> dict[str, Any]:
    return rec("received", when, custodian, originator="X-FORCE", channel="liaison", custodian_unit=custodian, **fields)


def in_memory_ledger(now: datetime = NOW) -> Ledger:
    return Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: now)


@dataclass
class Outcome:
    ledger: Ledger
    before: int
    error: LedgerError | None

    def then(self, *types: str) -> Ledger:
        """The command was recorded as exactly these new events."""
        if self.error is not None:
            raise AssertionError(f"expected {types}, got refusal: {self.error}")
        new = self._events()[self.before :]
        assert [type(e).__name__ for e in new] == list(types)
        return self.ledger

    def raises(self, rule: str) -> None:
        """The command was refused, naming ``rule``, and nothing was recorded."""
        assert isinstance(self.error, RuleViolation), f"expected a refusal ({rule}), got {self.error!r}"
        assert self.error.rule == rule, str(self.error)
        assert len(self._events()) == self.before

    def refused(self, message_part: str) -> None:
        assert self.error is not None and message_part in str(self.error), repr(self.error)
        assert len(self._events()) == self.before

    def _events(self) -> list[LedgerEvent]:
        return [
            e
            for n in self.ledger.recorder.select_notifications(start=1, limit=10_000)
            for e in [self.ledger.mapper.to_domain_event(n)]
            if isinstance(e, LedgerEvent)
        ]


class Given:
    def __init__(self, *records: dict[str, Any], now: datetime = NOW) -> None:
        self.ledger = in_memory_ledger(now)
        for record in records:
            parse_record(record, historical=True).run(self.ledger)

    def when(self, record: dict[str, Any], *, live: bool = False) -> Outcome:
        """Record ``record`` as history (as given), or ``live``: as a command would, at its
        ``recorded_at`` on the ledger's clock (live entries are judged by the authority rules)."""
        before = len(Outcome(self.ledger, 0, None)._events())
        try:
            if live:
                line = {k: v for k, v in record.items() if k != "recorded_at"}
                recorded = datetime.fromisoformat(record["recorded_at"])
                self.ledger.clock = lambda: recorded
                parse_record(line).run(self.ledger)
            else:
                parse_record(record, historical=True).run(self.ledger)
        except LedgerError as error:
            return Outcome(self.ledger, before, error)
        return Outcome(self.ledger, before, None)


def given(*records: dict[str, Any], now: datetime = NOW) -> Given:
    return Given(*records, now=now)


def state(ledger: Ledger, when: str) -> Any:
    return ledger.referral(REFERENCE).state_at(datetime.fromisoformat(when))


__all__ = ["at", "given", "pytest", "rec", "received", "state"]

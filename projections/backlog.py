"""The backlog at an instant: open referrals and subjects per owning unit, by age, with what is overdue.

A pure fold over per-referral facts at one instant (``OpenReferral``: who owned it then, who
held it, how many of its subjects were open, which obligations were overdue). The stored
read models (``projections.store``) and the per-referral folds produce those facts; this
module only groups and counts them, so both paths answer with the same rows.

Grouping: a referral counts for its owning unit; an unowned one counts under ``unowned``,
one row per custodian (the unit physically holding it, which is where a supervisor must
look). Age is measured from receipt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from ledger.policy import LATE_ENTRY, RULE_IDS
from ledger.values import days

__all__ = ["AGE_BUCKETS", "OBLIGATION_RULES", "UNOWNED", "BacklogRow", "OpenReferral", "backlog", "csv_columns"]

#: the owner_unit of the rows that count unowned referrals (one row per custodian).
UNOWNED: Final = "unowned"

#: age buckets (label, from days inclusive, to days exclusive; None: no upper bound).
AGE_BUCKETS: Final[tuple[tuple[str, int, int | None], ...]] = (
    ("0-7d", 0, 7),
    ("7-28d", 7, 28),
    ("28-90d", 28, 90),
    ("90-365d", 90, 365),
    ("365d+", 365, None),
)

#: rules that make obligations with a due instant; late-entry is reported by ``audit late-entries``.
OBLIGATION_RULES: Final[tuple[str, ...]] = tuple(rule for rule in RULE_IDS if rule != LATE_ENTRY)


@dataclass(frozen=True)
class OpenReferral:
    """One referral open at the instant asked about, as known then."""

    referral: str
    received_at: datetime
    owner_unit: str | None
    custodian_unit: str
    open_subjects: int = 0
    #: rule id → number of its obligations on this referral (and its subjects) open and overdue
    overdue: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BacklogRow:
    """One owning unit (or the unowned referrals one custodian holds) at the instant."""

    owner_unit: str
    #: the custodian, for the ``unowned`` rows; None for an owning unit's row
    custodian_unit: str | None
    open_referrals: int
    open_subjects: int
    #: AGE_BUCKETS label → referrals
    age: dict[str, int]
    oldest_days: float
    #: rule id → open and overdue obligations, every rule of OBLIGATION_RULES listed
    overdue: dict[str, int]

    @property
    def overdue_total(self) -> int:
        return sum(self.overdue.values())

    def as_row(self) -> dict[str, Any]:
        return {
            "owner_unit": self.owner_unit,
            "custodian_unit": self.custodian_unit,
            "open_referrals": self.open_referrals,
            "open_subjects": self.open_subjects,
            "age": dict(self.age),
            "oldest_days": self.oldest_days,
            "overdue": dict(self.overdue),
            "overdue_total": self.overdue_total,
        }

    def as_flat_row(self) -> dict[str, Any]:
        """The row with age buckets and rules as columns of their own (CSV, tables)."""
        row: dict[str, Any] = {
            "owner_unit": self.owner_unit,
            "custodian_unit": self.custodian_unit,
            "open_referrals": self.open_referrals,
            "open_subjects": self.open_subjects,
        }
        row.update({f"age_{label}": count for label, count in self.age.items()})
        row["oldest_days"] = self.oldest_days
        row["overdue_total"] = self.overdue_total
        row.update({f"overdue_{rule}": count for rule, count in self.overdue.items()})
        return row


def csv_columns() -> tuple[str, ...]:
    """The columns of ``BacklogRow.as_flat_row()``, whatever the rows."""
    return (
        "owner_unit",
        "custodian_unit",
        "open_referrals",
        "open_subjects",
        *(f"age_{label}" for label, _, _ in AGE_BUCKETS),
        "oldest_days",
        "overdue_total",
        *(f"overdue_{rule}" for rule in OBLIGATION_RULES),
    )


def age_bucket(age: timedelta) -> str:
    """The AGE_BUCKETS label for a referral of this age (received that long ago)."""
    elapsed = age.total_seconds() / 86_400
    for label, _, upper in AGE_BUCKETS:
        if upper is None or elapsed < upper:
            return label
    raise AssertionError("the last age bucket has no upper bound")  # unreachable: AGE_BUCKETS ends open


def backlog(referrals: Iterable[OpenReferral], at: datetime) -> list[BacklogRow]:
    """Group open referrals by owning unit (unowned ones by custodian), owned units first."""
    groups: dict[tuple[str, str | None], list[OpenReferral]] = {}
    for referral in referrals:
        key = (referral.owner_unit, None) if referral.owner_unit is not None else (UNOWNED, referral.custodian_unit)
        groups.setdefault(key, []).append(referral)
    rows = [_row(owner_unit, custodian_unit, members, at) for (owner_unit, custodian_unit), members in groups.items()]
    rows.sort(key=lambda row: (row.owner_unit == UNOWNED, row.owner_unit, row.custodian_unit or ""))
    return rows


def _row(owner_unit: str, custodian_unit: str | None, members: list[OpenReferral], at: datetime) -> BacklogRow:
    age = {label: 0 for label, _, _ in AGE_BUCKETS}
    overdue = {rule: 0 for rule in OBLIGATION_RULES}
    for member in members:
        age[age_bucket(at - member.received_at)] += 1
        for rule, count in member.overdue.items():
            overdue[rule] = overdue.get(rule, 0) + count
    oldest = max(at - member.received_at for member in members)
    return BacklogRow(
        owner_unit=owner_unit,
        custodian_unit=custodian_unit,
        open_referrals=len(members),
        open_subjects=sum(member.open_subjects for member in members),
        age=age,
        oldest_days=days(max(oldest, timedelta(0))),
        overdue=overdue,
    )

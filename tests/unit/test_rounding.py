"""Days are reported to two decimals, rounding half away from zero, from one function."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.values import days


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(hours=27), 1.13),  # 1.125 days: round() would give 1.12
        (-timedelta(hours=27), -1.13),
        (timedelta(hours=3), 0.13),  # 0.125
        (timedelta(minutes=7, seconds=11, microseconds=999_999), 0.0),
        (timedelta(minutes=7, seconds=12), 0.01),  # exactly 0.005 days
        (timedelta(days=364, hours=12), 364.5),
        (timedelta(0), 0.0),
    ],
)
def test_days_round_half_away_from_zero(delta: timedelta, expected: float) -> None:
    assert days(delta) == expected

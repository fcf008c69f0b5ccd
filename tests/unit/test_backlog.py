"""The backlog fold: given open referrals at an instant, then one row per owning unit (unowned by custodian)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from projections.backlog import AGE_BUCKETS, OBLIGATION_RULES, UNOWNED, OpenReferral, age_bucket, backlog, csv_columns

AT = datetime(2024, 6, 3, 12, tzinfo=UTC)


def received(days_ago: float) -> datetime:
    return AT - timedelta(days=days_ago)


def test_referrals_are_grouped_by_owning_unit() -> None:
    rows = backlog(
        [
            OpenReferral("R-1", received(3), "U-OPS1", "U-OPS1", open_subjects=2),
            OpenReferral("R-2", received(10), "U-OPS1", "U-INTAKE", open_subjects=1),
            OpenReferral("R-3", received(1), "U-OPS2", "U-OPS2"),
        ],
        AT,
    )

    assert [(row.owner_unit, row.custodian_unit, row.open_referrals, row.open_subjects) for row in rows] == [
        ("U-OPS1", None, 2, 3),
        ("U-OPS2", None, 1, 0),
    ]


def test_unowned_referrals_are_counted_per_custodian_after_the_owning_units() -> None:
    rows = backlog(
        [
            OpenReferral("R-1", received(3), None, "U-INTAKE"),
            OpenReferral("R-2", received(4), None, "U-INTAKE"),
            OpenReferral("R-3", received(5), None, "U-OPS2"),
            OpenReferral("R-4", received(6), "U-OPS9", "U-INTAKE"),
        ],
        AT,
    )

    assert [(row.owner_unit, row.custodian_unit, row.open_referrals) for row in rows] == [
        ("U-OPS9", None, 1),
        (UNOWNED, "U-INTAKE", 2),
        (UNOWNED, "U-OPS2", 1),
    ]


def test_ages_fall_into_buckets_from_receipt() -> None:
    ages = [0, 6.99, 7, 27.9, 28, 89, 90, 364, 365, 500]
    rows = backlog([OpenReferral(f"R-{n}", received(age), "U-OPS1", "U-OPS1") for n, age in enumerate(ages)], AT)

    assert rows[0].age == {"0-7d": 2, "7-28d": 2, "28-90d": 2, "90-365d": 2, "365d+": 2}
    assert rows[0].oldest_days == 500.0


def test_the_bucket_edges_belong_to_the_older_bucket() -> None:
    assert [age_bucket(timedelta(days=lower)) for _, lower, _ in AGE_BUCKETS] == [label for label, _, _ in AGE_BUCKETS]
    assert age_bucket(timedelta(days=7) - timedelta(seconds=1)) == "0-7d"


def test_overdue_obligations_are_counted_per_rule_with_every_rule_listed() -> None:
    rows = backlog(
        [
            OpenReferral("R-1", received(30), None, "U-INTAKE", overdue={"owner-accepted": 1, "supervisory-review": 1}),
            OpenReferral("R-2", received(40), None, "U-INTAKE", overdue={"owner-accepted": 1, "force-action": 2}),
        ],
        AT,
    )

    assert tuple(rows[0].overdue) == OBLIGATION_RULES
    assert {rule: n for rule, n in rows[0].overdue.items() if n} == {"owner-accepted": 2, "supervisory-review": 1, "force-action": 2}
    assert rows[0].overdue_total == 5
    assert "late-entry" not in rows[0].overdue


def test_the_json_row_nests_ages_and_rules_and_the_flat_row_has_the_csv_columns() -> None:
    (row,) = backlog([OpenReferral("R-1", received(2), "U-OPS1", "U-OPS1", 4, {"offer-reply": 1})], AT)

    document = row.as_row()
    assert document["owner_unit"] == "U-OPS1" and document["custodian_unit"] is None
    assert document["age"]["0-7d"] == 1 and document["overdue"]["offer-reply"] == 1 and document["overdue_total"] == 1
    flat = row.as_flat_row()
    assert tuple(flat) == csv_columns()
    assert flat["age_0-7d"] == 1 and flat["overdue_offer-reply"] == 1 and flat["open_subjects"] == 4


def test_no_open_referrals_no_rows() -> None:
    assert backlog([], AT) == []

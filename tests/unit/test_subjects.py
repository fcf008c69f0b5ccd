"""Where each subject of a bulk package is, and the package summary, at instants before,
during and after dissemination (pure folds over events; recording time pinned by freezegun)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time

from ledger.application import Ledger
from ledger.importing import parse_record
from projections.obligations import obligations_at
from projections.subjects import (
    ROW_COLUMNS,
    count_subject_obligations,
    evaluate_package,
    package_summary,
    subject_positions,
)

REF = "R-BULK-1"
ACTORS = {
    "U-INTAKE": ("P-01", "registry-officer"),
    "U-OPS1": ("P-04", "team-manager"),
    "F-NORTH": ("P-20", "liaison"),
    "F-EAST": ("P-21", "liaison"),
}


def t(day: int, hour: int = 9, minute: int = 0) -> datetime:
    """An instant in March 2024."""
    return datetime(2024, 3, day, hour, minute, tzinfo=UTC)


class Story:
    """Records events through the real Ledger (in memory), each recorded a few minutes after it occurred."""

    def __init__(self, frozen: Any) -> None:
        self.frozen = frozen
        self.ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

    def __call__(self, type: str, when: datetime, unit: str = "U-OPS1", *, recorded: datetime | None = None, **fields: Any) -> None:
        self.frozen.move_to(recorded or when + timedelta(minutes=5))
        person, role = ACTORS[unit]
        record = {"type": type, "referral": REF, "occurred_at": when.isoformat(), "actor": {"person": person, "role": role, "unit": unit}}
        parse_record({**record, **fields}).run(self.ledger)

    def events(self) -> tuple[list[Any], dict[str, list[Any]]]:
        return self.ledger.referral_events(REF), self.ledger.subject_events(REF)

    def positions(self, at: datetime, as_known_at: datetime | None = None) -> dict[str, dict[str, Any]]:
        referral, subjects = self.events()
        return {p.subject: p.as_row() for p in subject_positions(referral, subjects, at, as_known_at)}


@pytest.fixture
def story() -> Iterator[Story]:
    # ledger.canonical rebuilds instants with its own datetime class: keep the real one there
    with freeze_time(t(1, 8)) as frozen:
        yield Story(frozen)


@pytest.fixture
def package(story: Story) -> Story:
    """Four subjects: S-1 sent, acknowledged and acted on; S-2 rejected; S-3 left in transit; S-4 closed."""
    story("received", t(1), "U-INTAKE", originator="X-AGENCY", channel="liaison", custodian_unit="U-INTAKE", claimed_subject_count=4)
    for n in range(1, 5):
        story("subject_extracted", t(1, 10, n), "U-INTAKE", subject=f"S-{n}", category="suspect")
    story("ownership_offered", t(2), "U-INTAKE", to_unit="U-OPS1")
    story("ownership_accepted", t(2, 10), "U-OPS1")
    for n, band, force in ((1, "HIGH", "F-NORTH"), (2, "MEDIUM", "F-EAST"), (3, "LOW", "F-NORTH")):
        story("subject_triaged", t(3, 9, n), subject=f"S-{n}", risk_tool="RPT", risk_tool_version="3.2", band=band, target_force=force)
    story("subject_disseminated", t(4), subject="S-1", to_force="F-NORTH", authorised_by="P-04")
    story("subject_disseminated", t(4, 9, 10), subject="S-2", to_force="F-EAST", authorised_by="P-04")
    story("force_acknowledged", t(4, 15), "F-NORTH", subject="S-1")
    story("force_rejected", t(5), "F-EAST", subject="S-2", reason="Not our area")
    story("force_action_recorded", t(6), "F-NORTH", subject="S-1", action="Arrested")
    story("subject_disseminated", t(6, 10), subject="S-3", to_force="F-NORTH", authorised_by="P-04")
    story("subject_closed", t(7), subject="S-4", outcome="NFA", rationale="Misidentified")
    return story


def brief(rows: dict[str, dict[str, Any]], *keys: str) -> dict[str, tuple[Any, ...]]:
    return {subject: tuple(row[k] for k in ("state", *keys)) for subject, row in rows.items()}


def test_before_extraction_there_are_no_subjects(package: Story) -> None:
    assert package.positions(t(1, 9, 30)) == {}
    assert list(package.positions(t(1, 10, 2))) == ["S-1", "S-2"]


def test_before_dissemination_subjects_are_with_the_custodian_then_the_owner(package: Story) -> None:
    unowned = package.positions(t(1, 12))
    assert brief(unowned, "responsible_unit", "responsible_as", "owner") == {
        s: ("with_referral_owner", "U-INTAKE", "custodian", None) for s in ("S-1", "S-2", "S-3", "S-4")
    }
    owned = package.positions(t(3, 12))
    assert brief(owned, "responsible_unit", "responsible_as", "band") == {
        "S-1": ("with_referral_owner", "U-OPS1", "owner", "HIGH"),
        "S-2": ("with_referral_owner", "U-OPS1", "owner", "MEDIUM"),
        "S-3": ("with_referral_owner", "U-OPS1", "owner", "LOW"),
        "S-4": ("with_referral_owner", "U-OPS1", "owner", None),
    }


def test_during_dissemination_a_subject_in_transit_is_still_the_owners_to_chase(package: Story) -> None:
    rows = package.positions(t(4, 12))
    assert brief(rows, "force", "responsible_unit", "responsible_as") == {
        "S-1": ("in_transit", "F-NORTH", "U-OPS1", "owner"),
        "S-2": ("in_transit", "F-EAST", "U-OPS1", "owner"),
        "S-3": ("with_referral_owner", None, "U-OPS1", "owner"),
        "S-4": ("with_referral_owner", None, "U-OPS1", "owner"),
    }
    assert rows["S-1"]["disseminated_at"] == "2024-03-04T09:00:00Z"


def test_acknowledgement_hands_over_and_rejection_returns_to_the_owner(package: Story) -> None:
    rows = package.positions(t(5, 12))
    assert brief(rows, "force", "responsible_unit", "rejected_by") == {
        "S-1": ("with_force", "F-NORTH", "F-NORTH", None),
        "S-2": ("with_referral_owner", None, "U-OPS1", "F-EAST"),
        "S-3": ("with_referral_owner", None, "U-OPS1", None),
        "S-4": ("with_referral_owner", None, "U-OPS1", None),
    }
    assert rows["S-1"]["acknowledged_at"] == "2024-03-04T15:00:00Z"
    assert rows["S-2"]["rejected_at"] == "2024-03-05T09:00:00Z"


def test_after_dissemination_an_action_does_not_move_a_subject(package: Story) -> None:
    rows = package.positions(t(8, 12))
    assert brief(rows, "force", "actioned", "outcome") == {
        "S-1": ("with_force", "F-NORTH", True, None),
        "S-2": ("with_referral_owner", None, False, None),
        "S-3": ("in_transit", "F-NORTH", False, None),
        "S-4": ("closed", None, False, "NFA"),
    }
    assert rows["S-1"]["actioned_at"] == "2024-03-06T09:00:00Z"
    assert (rows["S-4"]["responsible_unit"], rows["S-4"]["closed_at"]) == (None, "2024-03-07T09:00:00Z")
    assert list(rows["S-1"]) == list(ROW_COLUMNS)


def test_a_resent_subject_counts_its_disseminations(story: Story) -> None:
    story("received", t(1), "U-INTAKE", originator="X", channel="liaison", custodian_unit="U-INTAKE")
    story("subject_extracted", t(1, 10), "U-INTAKE", subject="S-1", category="suspect")
    story("subject_disseminated", t(2), "U-INTAKE", subject="S-1", to_force="F-EAST", authorised_by="P-01")
    story("force_rejected", t(3), "F-EAST", subject="S-1", reason="Moved away")
    story("subject_disseminated", t(4), "U-INTAKE", subject="S-1", to_force="F-NORTH", authorised_by="P-01")
    row = story.positions(t(5))["S-1"]
    assert (row["state"], row["force"], row["disseminations"], row["rejected_by"]) == ("in_transit", "F-NORTH", 2, None)
    assert (row["first_disseminated_at"], row["disseminated_at"]) == ("2024-03-02T09:00:00Z", "2024-03-04T09:00:00Z")


def test_as_known_at_shows_what_the_ledger_held_then(story: Story) -> None:
    story("received", t(1), "U-INTAKE", originator="X", channel="liaison", custodian_unit="U-INTAKE")
    story("subject_extracted", t(1, 10), "U-INTAKE", subject="S-1", category="suspect")
    story("subject_disseminated", t(2), "U-INTAKE", subject="S-1", to_force="F-NORTH", authorised_by="P-01")
    story("force_acknowledged", t(2, 15), "F-NORTH", subject="S-1", recorded=t(5), late_reason="Emailed, filed late")
    story("subject_extracted", t(3, 10), "U-INTAKE", subject="S-2", category="suspect", recorded=t(6), late_reason="Found late")
    assert brief(story.positions(t(4), as_known_at=t(4))) == {"S-1": ("in_transit",)}
    assert brief(story.positions(t(4), as_known_at=t(5, 12))) == {"S-1": ("with_force",)}
    assert brief(story.positions(t(4))) == {"S-1": ("with_force",), "S-2": ("with_referral_owner",)}


def test_filters_by_state_and_force(package: Story) -> None:
    referral, subjects = package.events()
    positions = subject_positions(referral, subjects, t(8, 12))
    assert [p.subject for p in positions if p.matches(state="in_transit")] == ["S-3"]
    assert [p.subject for p in positions if p.matches(state="actioned")] == ["S-1"]
    assert [p.subject for p in positions if p.matches(force="F-NORTH")] == ["S-1", "S-3"]
    assert [p.subject for p in positions if p.matches(state="with_force", force="F-EAST")] == []


def summary(package: Story, at: datetime) -> dict[str, Any]:
    referral, subjects = package.events()
    return package_summary(referral, subjects, at).as_dict()


def test_package_before_during_and_after_dissemination(package: Story) -> None:
    before = summary(package, t(3, 12))
    assert (before["subjects"], before["claimed_subject_count"], before["triaged"]) == (4, 4, 3)
    assert before["by_state"] == {"with_referral_owner": 4, "in_transit": 0, "with_force": 0, "closed": 0}
    assert (before["disseminations"], before["first_dissemination"], before["days_to_first_dissemination"]) == (0, None, None)

    during = summary(package, t(4, 12))
    assert during["by_state"] == {"with_referral_owner": 2, "in_transit": 2, "with_force": 0, "closed": 0}
    assert (during["first_dissemination"], during["last_dissemination"]) == ("2024-03-04T09:00:00Z", "2024-03-04T09:10:00Z")
    assert during["days_to_first_dissemination"] == 3.0
    assert during["by_force"] == {
        "F-EAST": {"in_transit": 1, "with_force": 0, "actioned": 0},
        "F-NORTH": {"in_transit": 1, "with_force": 0, "actioned": 0},
    }

    after = summary(package, t(8, 12))
    assert after["by_state"] == {"with_referral_owner": 1, "in_transit": 1, "with_force": 1, "closed": 1}
    assert (after["actioned"], after["disseminations"], after["last_dissemination"]) == (1, 3, "2024-03-06T10:00:00Z")
    assert after["by_force"] == {"F-NORTH": {"in_transit": 1, "with_force": 1, "actioned": 1}}
    assert (after["owner"], after["custodian"], after["obligations"]) == ("U-OPS1", "U-INTAKE", None)


def test_package_subject_obligations_come_from_the_obligations_fold(package: Story) -> None:
    referral, subjects = package.events()
    found = evaluate_package(referral, subjects, t(10, 12)).as_dict()
    assert found["policy"].startswith("default@")
    obligations = found["obligations"]
    assert obligations["dissemination"] == {
        "met": 3,
        "discharged": 0,
        "breached": 0,
        "open-overdue": 0,
        "open-not-due": 1,
    }  # S-2 again after rejection
    assert obligations["force-acknowledgement"] == {
        "met": 2,
        "discharged": 0,
        "breached": 0,
        "open-overdue": 1,
        "open-not-due": 0,
    }  # S-3, due 9 Mar
    assert obligations["force-action"]["open-not-due"] == 1  # S-3: LOW has 30 days
    every = obligations_at(referral, subjects, t(10, 12), as_known_now=True)
    assert sum(sum(counts.values()) for counts in obligations.values()) == sum(1 for o in every if o.subject is not None)


def test_referral_level_obligations_are_not_counted(package: Story) -> None:
    referral, subjects = package.events()
    every = obligations_at(referral, subjects, t(10, 12))
    assert any(o.subject is None for o in every)
    counted = count_subject_obligations(every)
    assert set(counted) == {"dissemination", "force-acknowledgement", "force-action"}
    assert sum(sum(c.values()) for c in counted.values()) == sum(1 for o in every if o.subject is not None)


def test_package_as_known_at_restricts_obligations_to_what_was_recorded(story: Story) -> None:
    story("received", t(1), "U-INTAKE", originator="X", channel="liaison", custodian_unit="U-INTAKE")
    story("subject_extracted", t(1, 10), "U-INTAKE", subject="S-1", category="suspect")
    story("subject_triaged", t(1, 11), "U-INTAKE", subject="S-1", risk_tool="RPT", risk_tool_version="3.2", band="VERY_HIGH")
    story(
        "subject_disseminated", t(2), "U-INTAKE", subject="S-1", to_force="F-NORTH", authorised_by="P-01", recorded=t(4), late_reason="Late"
    )
    referral, subjects = story.events()
    then = evaluate_package(referral, subjects, t(3), as_known_at=t(3)).as_dict()
    now = evaluate_package(referral, subjects, t(3)).as_dict()
    assert (then["by_state"]["in_transit"], then["obligations"]["dissemination"]["open-overdue"]) == (0, 1)
    assert (now["by_state"]["in_transit"], now["obligations"]["dissemination"]["met"]) == (1, 1)

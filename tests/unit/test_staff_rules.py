"""The staff directory's rules, one per test: given directory events, when a command, then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given as hypothesis_given
from hypothesis import settings
from hypothesis import strategies as st

from ledger.errors import LedgerError, RuleViolation
from ledger.importing import parse_record
from projections.accountable import accountable_at, actor_findings, directory_at
from tests.scenario import at, given, in_memory_ledger, rec, received

HR = {"person": "P-900", "role": "hr-officer", "unit": "U-HR"}


def d(type: str, when: str, actor: dict[str, str] = HR, recorded: str | None = None, **fields: Any) -> dict[str, Any]:
    """A directory record (no referral) in the import format."""
    return {"type": type, "occurred_at": when, "recorded_at": recorded or when, "actor": actor, **fields}


BASE = (
    d("unit_registered", at(1), unit="U-HR", name="HR", kind="agency-unit"),
    d("unit_registered", at(1), unit="U-OPS1", name="Operations 1", kind="agency-unit"),
    d("unit_registered", at(1), unit="F-NORTH", name="Northshire", kind="force"),
    d("person_registered", at(1), person="P-900", employer="NCA"),
    d("person_registered", at(1), person="P-042", employer="F-NORTH"),
    d("role_assigned", at(1), person="P-900", role="hr-officer", unit="U-HR"),
)
MANAGER = d("role_assigned", at(2), person="P-042", role="team-manager", unit="U-OPS1")


def test_a_role_is_held_from_its_assignment() -> None:
    ledger = given(*BASE).when(MANAGER).then("RoleAssigned")
    shown = directory_at(ledger, datetime.fromisoformat(at(3)))
    assert [(r["person"], r["role"], r["unit"]) for r in shown["roles"]] == [
        ("P-900", "hr-officer", "U-HR"),
        ("P-042", "team-manager", "U-OPS1"),
    ]


def test_a_role_in_an_unknown_unit_is_refused() -> None:
    outcome = given(*BASE).when(d("role_assigned", at(2), person="P-042", role="analyst", unit="U-NOPE"))
    assert outcome.error is not None and "unit U-NOPE is not in the ledger" in str(outcome.error)


def test_a_role_for_an_unknown_person_is_refused() -> None:
    given(*BASE).when(d("role_assigned", at(2), person="P-404", role="analyst", unit="U-OPS1")).refused("person P-404 is not in the ledger")


def test_a_role_before_the_person_is_registered_is_refused() -> None:
    late_joiner = d("person_registered", at(5), person="P-077", employer="NCA")
    given(*BASE, late_joiner).when(d("role_assigned", at(5), person="P-077", role="analyst", unit="U-OPS1", recorded=at(6))).then(
        "RoleAssigned"
    )
    given(*BASE, late_joiner).when(d("role_assigned", at(4), person="P-077", role="analyst", unit="U-OPS1", recorded=at(5, 10))).raises(
        "person-exists"
    )


def test_overlapping_identical_holdings_are_refused() -> None:
    given(*BASE, MANAGER).when(d("role_assigned", at(3), person="P-042", role="team-manager", unit="U-OPS1")).raises(
        "no-overlapping-holdings"
    )


def test_an_earlier_open_ended_holding_overlapping_a_later_one_is_refused() -> None:
    given(*BASE, MANAGER).when(
        d("role_assigned", at(1, 12), person="P-042", role="team-manager", unit="U-OPS1", recorded=at(2, 10))
    ).raises("no-overlapping-holdings")


def test_the_same_role_may_be_taken_again_after_it_ended() -> None:
    ended = d("role_ended", at(3), person="P-042", role="team-manager", unit="U-OPS1")
    given(*BASE, MANAGER, ended).when(d("role_assigned", at(4), person="P-042", role="team-manager", unit="U-OPS1")).then("RoleAssigned")


def test_a_role_cannot_end_before_it_starts() -> None:
    given(*BASE, MANAGER).when(d("role_ended", at(1, 12), person="P-042", role="team-manager", unit="U-OPS1", recorded=at(2, 10))).raises(
        "role-ends-after-start"
    )


def test_a_role_never_held_cannot_end() -> None:
    given(*BASE).when(d("role_ended", at(3), person="P-042", role="team-manager", unit="U-OPS1")).raises("role-ended-was-held")


def test_a_secondment_to_the_employer_is_refused() -> None:
    given(*BASE).when(d("secondment_started", at(2), person="P-042", to_organisation="F-NORTH")).raises("secondment-elsewhere")


def test_a_secondment_elsewhere_shows_as_seconded_to() -> None:
    ledger = given(*BASE, MANAGER).when(d("secondment_started", at(2), person="P-042", to_organisation="NCA")).then("SecondmentStarted")
    shown = directory_at(ledger, datetime.fromisoformat(at(3)))
    assert [p["seconded_to"] for p in shown["people"] if p["person"] == "P-042"] == ["NCA"]


def test_one_secondment_at_a_time_and_only_an_open_one_ends() -> None:
    started = d("secondment_started", at(2), person="P-042", to_organisation="NCA")
    given(*BASE, started).when(d("secondment_started", at(3), person="P-042", to_organisation="X")).raises("one-secondment")
    given(*BASE).when(d("secondment_ended", at(3), person="P-042")).raises("secondment-ended-was-started")


def test_a_unit_is_registered_once_with_a_known_kind_and_parent() -> None:
    given(*BASE).when(d("unit_registered", at(2), unit="U-OPS1", name="Again", kind="agency-unit")).raises("registered-once")
    given(*BASE).when(d("unit_registered", at(2), unit="U-OPS2", name="Two", kind="agency-unit", parent="U-NONE")).refused(
        "unit U-NONE is not in the ledger"
    )
    given(*BASE).when(d("unit_registered", at(2), unit="U-OPS2", name="Two", kind="agency-unit", parent="U-OPS1")).then("Registered")
    outcome = given(*BASE).when(d("unit_registered", at(2), unit="U-OPS3", name="Three", kind="squad"))
    assert outcome.error is not None and "kind must be one of agency-unit, force, partner" in str(outcome.error)


def test_a_closed_unit_takes_no_roles_and_its_roles_end() -> None:
    closed = d("unit_closed", at(3), unit="U-OPS1", reason="merged")
    ledger = given(*BASE, MANAGER).when(closed).then("Closed")
    assert directory_at(ledger, datetime.fromisoformat(at(4)))["roles"] == [
        r for r in directory_at(ledger, datetime.fromisoformat(at(4)))["roles"] if r["unit"] != "U-OPS1"
    ]
    given(*BASE, closed).when(d("role_assigned", at(4), person="P-042", role="analyst", unit="U-OPS1")).raises("unit-exists")


def test_a_person_who_left_holds_no_role_and_takes_none() -> None:
    left = d("person_left", at(3), person="P-042", reason="retired")
    ledger = given(*BASE, MANAGER).when(left).then("Left")
    assert not [r for r in directory_at(ledger, datetime.fromisoformat(at(4)))["roles"] if r["person"] == "P-042"]
    given(*BASE, MANAGER, left).when(d("role_assigned", at(4), person="P-042", role="analyst", unit="U-OPS1")).raises("person-exists")
    given(*BASE, left).when(left).raises("person-exists")


def test_directory_lines_carry_no_referral() -> None:
    record = {**MANAGER, "referral": "R-1"}
    try:
        parse_record(record, historical=True)
    except LedgerError as error:
        assert "unknown field 'referral'" in str(error)
    else:
        raise AssertionError("a referral on a directory line was accepted")


# --- actors checked once the directory is in force ------------------------------------------

NOW = datetime(2024, 3, 10, 12, tzinfo=UTC)


def live(record: dict[str, Any], ledger: Any) -> LedgerError | None:
    """Run a record as a live command (not historical) against ``ledger``; the refusal, if any."""
    record = {k: v for k, v in record.items() if k != "recorded_at"}
    try:
        parse_record(record).run(ledger)
    except LedgerError as error:
        return error
    return None


def enforced_ledger(since: datetime = NOW - timedelta(hours=1)) -> Any:
    ledger = in_memory_ledger(NOW)
    for record in (*BASE, MANAGER):
        parse_record(record, historical=True).run(ledger)
    from ledger.values import Actor, Stamp

    ledger.enforce_directory(Stamp(Actor("P-900", "hr-officer", "U-HR")), since)
    return ledger


def referral_record(type: str, person: str, role: str, unit: str, when: datetime = NOW, **fields: Any) -> dict[str, Any]:
    return {
        "type": type,
        "referral": "R-1",
        "occurred_at": when.isoformat(),
        "actor": {"person": person, "role": role, "unit": unit},
        **fields,
    }


RECEIVED = {"originator": "X", "channel": "portal", "custodian_unit": "U-OPS1"}


def test_in_force_an_actor_holding_the_role_there_then_is_accepted() -> None:
    ledger = enforced_ledger()
    assert live(referral_record("received", "P-042", "team-manager", "U-OPS1", **RECEIVED), ledger) is None


def test_in_force_an_unknown_actor_is_refused_and_nothing_is_written() -> None:
    ledger = enforced_ledger()
    before = ledger.head()
    error = live(referral_record("received", "P-777", "team-manager", "U-OPS1", **RECEIVED), ledger)
    assert isinstance(error, RuleViolation) and error.rule == "actor-in-directory"
    assert "P-777 is not a registered person" in str(error) and ledger.head() == before


def test_in_force_a_role_not_held_there_is_refused() -> None:
    error = live(referral_record("received", "P-042", "analyst", "U-OPS1", **RECEIVED), enforced_ledger())
    assert isinstance(error, RuleViolation) and error.rule == "actor-holds-role"


def test_a_late_entry_counts_the_post_held_at_recording() -> None:
    ledger = enforced_ledger()
    before_post = NOW - timedelta(days=9)  # P-042 took the role on day 2; this happened on day 1
    late = referral_record("received", "P-042", "team-manager", "U-OPS1", when=before_post, late_reason="found in a drawer", **RECEIVED)
    assert live(late, ledger) is None


def test_before_the_directory_is_in_force_nothing_is_refused_and_audit_lists_it() -> None:
    ledger = enforced_ledger(since=NOW + timedelta(days=1))
    assert live(referral_record("received", "P-777", "analyst", "U-X", **RECEIVED), ledger) is None
    findings = actor_findings(ledger)
    assert [(f.actor, f.rule, f.referral) for f in findings] == [("P-777:analyst@U-X", "actor-in-directory", "R-1")]


def test_the_directory_is_put_in_force_once_by_someone_in_it() -> None:
    ledger = enforced_ledger()
    from ledger.values import Actor, Stamp

    for actor, rule in ((Actor("P-900", "hr-officer", "U-HR"), "enforced-once"),):
        try:
            ledger.enforce_directory(Stamp(actor), NOW)
        except RuleViolation as error:
            assert error.rule == rule
        else:
            raise AssertionError("enforced twice")
    fresh = in_memory_ledger(NOW)
    try:
        fresh.enforce_directory(Stamp(Actor("P-1", "x", "U-1")), NOW)
    except RuleViolation as error:
        assert error.rule == "actor-in-directory"
    else:
        raise AssertionError("an unknown person put the directory in force")


# --- accountable: the property --------------------------------------------------------------

PEOPLE = ("P-1", "P-2", "P-3")
ROLES = ("team-manager", "head-of-unit", "analyst")
START = datetime(2024, 3, 1, tzinfo=UTC)


@st.composite
def role_histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Alternating assign/end events per (person, role) in U-OPS1, recorded late by random delays.

    A holding's end is recorded after its start (the ledger refuses it otherwise); across
    people and roles the recording order is mixed.
    """
    records = []
    for person in PEOPLE:
        for role in ROLES:
            hours = sorted(draw(st.sets(st.integers(min_value=1, max_value=200), max_size=4)))
            last_recorded = START
            for index, hour in enumerate(hours):
                occurred = START + timedelta(hours=hour)
                recorded = max(last_recorded, occurred + timedelta(hours=draw(st.integers(min_value=0, max_value=60))))
                last_recorded = recorded
                kind = "role_assigned" if index % 2 == 0 else "role_ended"
                record = d(kind, occurred.isoformat(), recorded=recorded.isoformat(), person=person, role=role, unit="U-OPS1")
                if recorded - occurred > timedelta(hours=24):
                    record["late_reason"] = "late"
                records.append(record)
    return sorted(records, key=lambda r: r["recorded_at"])


def naive_accountable(records: list[dict[str, Any]], at_: datetime, known_at: datetime) -> set[tuple[str, str]]:
    held = set()
    for person in PEOPLE:
        for role in ("team-manager", "head-of-unit"):
            events = [
                r
                for r in records
                if r["person"] == person
                and r["role"] == role
                and datetime.fromisoformat(r["recorded_at"]) <= known_at
                and datetime.fromisoformat(r["occurred_at"]) <= at_
            ]
            if events and max(events, key=lambda r: r["occurred_at"])["type"] == "role_assigned":
                held.add((person, role))
    return held


@settings(max_examples=60, deadline=None)
@hypothesis_given(role_histories(), st.integers(min_value=0, max_value=280), st.integers(min_value=0, max_value=280))
def test_accountable_at_t_as_known_at_k_equals_a_naive_recomputation(records: list[dict[str, Any]], t: int, k: int) -> None:
    ledger = in_memory_ledger(START + timedelta(days=30))
    setup = [
        d("unit_registered", START.isoformat(), unit="U-OPS1", name="Ops", kind="agency-unit"),
        *(d("person_registered", START.isoformat(), person=p, employer="NCA") for p in PEOPLE),
        rec("received", START.isoformat(), "U-OPS1", originator="X", channel="portal", custodian_unit="U-OPS1", referral="R-1"),
    ]
    for record in setup + records:
        parse_record(record, historical=True).run(ledger)
    at_, known_at = START + timedelta(hours=t), START + timedelta(hours=k)
    answer = accountable_at(ledger, "R-1", at_, known_at)
    got = {(p["person"], p["role"]) for p in answer["custodian"]["accountable"]}
    assert got == naive_accountable(records, at_, known_at)
    assert received() is not None


def test_a_renamed_unit_keeps_its_id_and_shows_its_name_then() -> None:
    ledger = given(*BASE).when(d("unit_renamed", at(3), unit="U-OPS1", name="Operations North")).then("Renamed")
    names = {
        when: [u["name"] for u in directory_at(ledger, datetime.fromisoformat(when))["units"] if u["unit"] == "U-OPS1"]
        for when in (at(2), at(4))
    }
    assert names == {at(2): ["Operations 1"], at(4): ["Operations North"]}

"""The portfolio commands as a user runs them: ``audit gaps|overdue|late-entries``, ``backlog``,
``projections status|rebuild`` — answers, formats, filters, exit codes and help."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from cli import main
from commands.audit import audit_group, projections_group
from tests.scenario import at, rec, received

LATE = "Entered from the paper file."
T = at(20)


def story() -> list[dict[str, Any]]:
    """R-1 owned by U-OPS1 after a 3-day gap, with a late note and an overdue escalation;
    R-2 never owned (held by U-INTAKE), with a subject; R-3 closed."""
    return [
        received(at(1), referral="R-1"),
        rec("ownership_offered", at(2), "U-INTAKE", referral="R-1", to_unit="U-OPS1"),
        rec("ownership_accepted", at(4), "U-OPS1", referral="R-1"),
        rec("escalation_raised", at(5), "U-OPS1", referral="R-1", to_role="head-of-tasking", issue="Capacity."),
        rec("note_added", at(6), "U-OPS1", referral="R-1", recorded=at(15), text="From the paper file.", late_reason=LATE),
        received(at(3), referral="R-2"),
        rec("subject_extracted", at(3, 12), "U-INTAKE", referral="R-2", subject="SUBJ-1", category="suspect"),
        received(at(1), referral="R-3"),
        rec("closed", at(1, 12), "U-INTAKE", referral="R-3", reason="Duplicate."),
    ]


@pytest.fixture
def db(tmp_path: Path) -> str:
    records = sorted(story(), key=lambda record: record["recorded_at"])
    path = tmp_path / "story.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(record) for record in records) + b"\n")
    url = str(tmp_path / "ledger.sqlite")
    run(url, "import", "--historical", str(path))
    return url


def run(url: str, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def answer(url: str, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run(url, *args, "--json").stdout)
    return data


def policy_version(url: str, *options: str) -> str:
    return str(json.loads(run(url, *options, "policy", "show", "--json").stdout)["version"])


def test_every_portfolio_answer_is_policy_and_rows(db: str) -> None:
    version = policy_version(db)
    for command in (["audit", "gaps"], ["audit", "overdue", "--at", T], ["audit", "late-entries"], ["backlog", "--at", T]):
        data = answer(db, *command)
        assert set(data) == {"policy", "rows"} and data["policy"] == version, command
        assert isinstance(data["rows"], list) and data["rows"], command


def test_gaps(db: str) -> None:
    rows = answer(db, "audit", "gaps")["rows"]

    assert [(row["referral"], row["start"], row["end"]) for row in rows] == [
        ("R-1", at(1), at(4)),
        ("R-2", at(3), None),
        ("R-3", at(1), at(1, 12)),
    ]
    assert rows[0]["days"] == 3.0


def test_gap_filters(db: str) -> None:
    def referrals(*options: str) -> list[str]:
        return [row["referral"] for row in answer(db, "audit", "gaps", *options)["rows"]]

    assert referrals("--min-days", "2") == ["R-1", "R-2"]
    assert referrals("--from", at(5)) == ["R-2"]  # R-1's gap ended on day 4
    assert referrals("--to", at(2)) == ["R-1", "R-3"]  # R-2 was received on day 3
    assert referrals("--as-known-at", at(2)) == ["R-1", "R-3"]
    known = answer(db, "audit", "gaps", "--as-known-at", at(2))["rows"]
    assert (known[0]["end"], known[0]["days"]) == (None, 1.0)  # still running on day 2, measured to K


def test_overdue_as_known_then_and_now(db: str) -> None:
    rows = answer(db, "audit", "overdue", "--at", T)["rows"]

    # most overdue first (earliest due)
    assert [(row["referral"], row["rule"], row["owner_unit"], row["custodian_unit"]) for row in rows] == [
        ("R-2", "owner-accepted", None, "U-INTAKE"),
        ("R-1", "initial-assessment", "U-OPS1", "U-INTAKE"),
        ("R-2", "initial-assessment", None, "U-INTAKE"),
        ("R-1", "escalation-decided", "U-OPS1", "U-INTAKE"),
    ]
    assert rows[1] == {
        "referral": "R-1",
        "subject": None,
        "rule": "initial-assessment",
        "started_at": at(1),
        "due": at(8),
        "days_overdue": 12.0,
        "cycles_missed": None,
        "owner_unit": "U-OPS1",
        "custodian_unit": "U-INTAKE",
    }
    assert answer(db, "audit", "overdue", "--at", T, "--as-known-now")["rows"] == rows


def test_overdue_filters(db: str) -> None:
    def pairs(*options: str) -> list[tuple[str, str]]:
        return [(row["referral"], row["rule"]) for row in answer(db, "audit", "overdue", "--at", T, *options)["rows"]]

    assert pairs("--unit", "U-OPS1") == [("R-1", "initial-assessment"), ("R-1", "escalation-decided")]
    assert pairs("--unit", "U-INTAKE") == [("R-2", "owner-accepted"), ("R-2", "initial-assessment")]
    assert pairs("--rule", "owner-accepted") == [("R-2", "owner-accepted")]
    assert pairs("--at", at(2)) == []


def test_late_entries(db: str) -> None:
    rows = answer(db, "audit", "late-entries")["rows"]

    assert rows == [
        {
            "referral": "R-1",
            "subject": None,
            "type": "note_added",
            "occurred_at": at(6),
            "recorded_at": at(15),
            "version": 5,
            "lag_days": 9.0,
            "needs_attestation": True,
            "attestation_due": at(22),
            "attestation_overdue": True,  # judged now: a week after its recording, unattested
            "attested_by": None,
            "attested_at": None,
            "late_reason": LATE,
        }
    ]
    assert answer(db, "audit", "late-entries", "--min-lag-hours", "240")["rows"] == []


def test_backlog(db: str) -> None:
    rows = answer(db, "backlog", "--at", T)["rows"]

    assert [(row["owner_unit"], row["custodian_unit"], row["open_referrals"], row["open_subjects"]) for row in rows] == [
        ("U-OPS1", None, 1, 0),
        ("unowned", "U-INTAKE", 1, 1),
    ]
    assert rows[0]["age"] == {"0-7d": 0, "7-28d": 1, "28-90d": 0, "90-365d": 0, "365d+": 0}
    assert {rule: n for rule, n in rows[1]["overdue"].items() if n} == {"owner-accepted": 1, "initial-assessment": 1}
    assert rows[1]["overdue_total"] == 2


def test_csv_is_the_plain_rows(db: str) -> None:
    gaps = list(csv.DictReader(io.StringIO(run(db, "audit", "gaps", "--csv").stdout)))
    backlog = list(csv.DictReader(io.StringIO(run(db, "backlog", "--at", T, "--csv").stdout)))

    assert list(gaps[0]) == ["referral", "start", "end", "days"] and gaps[1]["end"] == ""
    assert backlog[1]["owner_unit"] == "unowned" and backlog[1]["overdue_owner-accepted"] == "1"
    assert "age_365d+" in backlog[0] and "policy" not in backlog[0]


def test_people_get_a_sentence_and_a_table(db: str) -> None:
    output = run(db, "audit", "overdue", "--at", T).stdout

    assert output.startswith(f"4 obligations open and overdue on 2 referrals at {T}, as known then (policy default@")
    assert "escalation-decided" in output


def test_fail_on_findings_exits_3(db: str) -> None:
    found = run(db, "audit", "overdue", "--at", T, "--fail-on-findings", code=3)
    assert "4 obligations open and overdue" in found.stderr
    run(db, "audit", "overdue", "--at", at(2), "--fail-on-findings")
    run(db, "audit", "gaps", "--fail-on-findings", code=3)
    run(db, "audit", "gaps", "--to", "2024-01-01", "--fail-on-findings")
    run(db, "audit", "late-entries", "--fail-on-findings", code=3)
    run(db, "backlog", "--at", T, "--fail-on-findings", code=3)
    run(db, "backlog", "--at", at(1, 6), "--fail-on-findings")


def test_a_policy_file_changes_the_answer_and_its_version(db: str, tmp_path: Path) -> None:
    policy = tmp_path / "lenient.toml"
    policy.write_text('name = "lenient"\n[rules.owner-accepted]\ndays = 30\n[rules.initial-assessment]\ndays = 30\n', encoding="utf-8")

    data = answer(db, "--policy", str(policy), "audit", "overdue", "--at", T)

    assert data["policy"] == policy_version(db, "--policy", str(policy)) and data["policy"].startswith("lenient@")
    assert [row["rule"] for row in data["rows"]] == ["escalation-decided"]
    assert answer(db, "audit", "overdue", "--at", T)["policy"].startswith("default@")  # and back


def test_projections_status_and_rebuild(db: str) -> None:
    before = answer(db, "projections", "status")
    assert before["position"] == 0 and before["lag"] == before["head"] > 0
    answer(db, "audit", "gaps")

    after = answer(db, "projections", "status")
    rebuilt = answer(db, "projections", "rebuild")

    assert (after["position"], after["lag"]) == (after["head"], 0)
    assert after["tables"]["rm_referrals"] == 3 and after["tables"]["rm_subjects"] == 1
    assert {key: rebuilt[key] for key in after} == after
    assert rebuilt["entries"] == after["head"] and rebuilt["referrals"] == 3


def test_user_errors_are_one_line(db: str) -> None:
    bad_time = run(db, "audit", "overdue", "--at", "yesterday", code=1)
    assert bad_time.stderr.strip().startswith("Error: --at 'yesterday' is not an ISO 8601 time")
    run(db, "audit", "overdue", "--rule", "no-such-rule", code=2)


@pytest.mark.parametrize(
    "path",
    [
        ["audit"],
        ["audit", "gaps"],
        ["audit", "overdue"],
        ["audit", "late-entries"],
        ["backlog"],
        ["projections"],
        ["projections", "status"],
        ["projections", "rebuild"],
    ],
)
def test_every_command_has_help_ending_with_an_example(path: list[str]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert "Example:" in result.output and "refledger " in result.output.split("Example:")[1]


def test_the_groups_hold_their_commands() -> None:
    assert set(audit_group.commands) == {
        "gaps",
        "overdue",
        "late-entries",
        "actors",
        "corrections",
        "findings",
        "migrations",
        "signatures",
        "authority",
        "consultations",
    }
    assert set(projections_group.commands) == {"status", "rebuild"}

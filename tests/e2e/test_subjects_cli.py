"""The bulk commands as a user runs them: subjects import|triage|disseminate|list, package."""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time

from cli import main
from ledger.values import iso, parse_instant

REF = "R-BULK-9"
# business times within the last day, so nothing is a late entry
NOW = datetime.now(UTC).replace(microsecond=0)


def ago(hours: float) -> str:
    return iso(NOW - timedelta(hours=hours))


def run(url: str, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def data(url: str, *args: str) -> Any:
    return json.loads(run(url, *args, "--json").stdout)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def package(database_url: str, tmp_path: Path) -> str:
    """Four subjects imported and triaged, S-3 re-triaged, S-1 and S-2 sent, S-1 acknowledged."""
    run(
        database_url,
        "receive",
        REF,
        "--originator",
        "X-AGENCY",
        "--channel",
        "liaison",
        "--custodian-unit",
        "U-INTAKE",
        "--claimed-subject-count",
        "4",
        "--at",
        ago(20),
        "--as",
        "P-01:registry@U-INTAKE",
    )
    subjects = write(
        tmp_path,
        "subjects.csv",
        "subject,category,band,target_force\nS-1,suspect,HIGH,F-NORTH\nS-2,suspect,MEDIUM,F-EAST\nS-3,suspect,,\nS-4,misidentified,,\n",
    )
    run(
        database_url,
        "subjects",
        "import",
        REF,
        subjects,
        "--risk-tool",
        "RPT",
        "--risk-tool-version",
        "3.2",
        "--at",
        ago(19),
        "--as",
        "P-02:analyst@U-INTAKE",
    )
    triage = write(
        tmp_path, "triage.csv", "subject,risk_tool,risk_tool_version,band,drivers\nS-3,RPT,3.2,LOW,single payment;no access to children\n"
    )
    run(database_url, "subjects", "triage", REF, "--from-csv", triage, "--at", ago(18), "--as", "P-02:analyst@U-INTAKE")
    sent = write(tmp_path, "sent.csv", "subject,to_force,authorised_by,grading\nS-1,F-NORTH,P-07,3x5x2:2-B-C\nS-2,F-EAST,P-07,\n")
    run(database_url, "subjects", "disseminate", REF, "--from-csv", sent, "--at", ago(16), "--as", "P-07:team-manager@U-INTAKE")
    run(database_url, "subject", "acknowledge", REF, "S-1", "--at", ago(10), "--as", "P-20:liaison@F-NORTH")
    return database_url


def states(url: str, *args: str) -> dict[str, tuple[Any, ...]]:
    answer = data(url, "subjects", "list", REF, *args)
    return {row["subject"]: (row["state"], row["responsible_unit"], row["force"]) for row in answer["subjects"]}


def test_recording_commands_report_what_they_recorded(database_url: str, tmp_path: Path) -> None:
    run(
        database_url,
        "receive",
        REF,
        "--originator",
        "X",
        "--channel",
        "liaison",
        "--custodian-unit",
        "U-INTAKE",
        "--at",
        ago(5),
        "--as",
        "P-01:registry@U-INTAKE",
    )
    path = write(tmp_path, "subjects.csv", "subject,category,band\nS-1,suspect,LOW\nS-2,unknown,\n")
    answer = data(
        database_url, "subjects", "import", REF, path, "--risk-tool", "RPT", "--risk-tool-version", "3.2", "--as", "P-02:analyst@U-INTAKE"
    )
    assert answer == {
        "referral": REF,
        "file": path,
        "sha256": answer["sha256"],
        "rows": 2,
        "events": 3,
        "recorded": {"subject_extracted": 2, "subject_triaged": 1},
    }
    text = run(
        database_url,
        "subjects",
        "import",
        REF,
        write(tmp_path, "more.csv", "subject,category\nS-3,suspect\n"),
        "--as",
        "P-02:analyst@U-INTAKE",
    ).stdout
    assert text == f"Recorded 1 event (1 subject_extracted) on 1 subject of {REF} from {tmp_path / 'more.csv'}.\n"


def test_subjects_list_before_during_and_after_dissemination(package: str) -> None:
    assert states(package, "--at", ago(19.5)) == {}
    assert states(package, "--at", ago(17)) == {s: ("with_referral_owner", "U-INTAKE", None) for s in ("S-1", "S-2", "S-3", "S-4")}
    assert states(package, "--at", ago(12)) == {
        "S-1": ("in_transit", "U-INTAKE", "F-NORTH"),
        "S-2": ("in_transit", "U-INTAKE", "F-EAST"),
        "S-3": ("with_referral_owner", "U-INTAKE", None),
        "S-4": ("with_referral_owner", "U-INTAKE", None),
    }
    now = data(package, "subjects", "list", REF)
    assert (parse_instant(now["at"]) >= NOW, now["as_known_at"], now["referral_owner"], now["custodian"]) == (True, None, None, "U-INTAKE")
    rows = {row["subject"]: row for row in now["subjects"]}
    assert (rows["S-1"]["state"], rows["S-1"]["responsible_unit"], rows["S-1"]["responsible_as"]) == ("with_force", "F-NORTH", "force")
    assert (rows["S-3"]["band"], rows["S-3"]["target_force"], rows["S-4"]["band"]) == ("LOW", None, None)


def test_subjects_list_filters_and_knowledge(package: str) -> None:
    assert list(states(package, "--state", "in_transit")) == ["S-2"]
    assert list(states(package, "--force", "F-NORTH")) == ["S-1"]
    assert list(states(package, "--state", "with_referral_owner", "--force", "F-NORTH")) == []
    # everything was recorded just now: an hour ago the ledger held nothing of the package
    assert states(package, "--at", ago(10), "--as-known-at", iso(datetime.now(UTC))) == states(package, "--at", ago(10))
    result = run(package, "subjects", "list", REF, "--at", ago(10), "--as-known-at", ago(1), code=1)
    assert result.output == f"Error: referral {REF} was not yet recorded at {ago(1)}\n"
    answer = data(package, "subjects", "list", REF, "--state", "closed")
    assert (answer["count"], answer["filters"]) == (0, {"state": "closed", "force": None})
    run(package, "subjects", "list", REF, "--state", "lost", code=2)


def test_subjects_list_as_csv_and_text(package: str) -> None:
    lines = run(package, "subjects", "list", REF, "--csv").stdout.splitlines()
    assert lines[0].startswith("subject,category,state,responsible_unit,responsible_as,owner,force,actioned,band")
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["S-1", "suspect", "with_force"],
        ["S-2", "suspect", "in_transit"],
        ["S-3", "suspect", "with_referral_owner"],
        ["S-4", "misidentified", "with_referral_owner"],
    ]
    text = run(package, "subjects", "list", REF, "--at", ago(12)).stdout
    assert text.startswith(f"4 of 4 subjects of {REF} at {ago(12)}; referral owner nobody (custodian U-INTAKE).\n")
    assert "in_transit" in text


def test_package_counts_subjects_disseminations_and_obligations(package: str) -> None:
    during = data(package, "package", REF, "--at", ago(12))
    assert during["by_state"] == {"with_referral_owner": 2, "in_transit": 2, "with_force": 0, "closed": 0}
    assert (during["subjects"], during["claimed_subject_count"], during["triaged"], during["disseminations"]) == (4, 4, 3, 2)
    assert (during["first_dissemination"], during["last_dissemination"], during["days_to_first_dissemination"]) == (ago(16), ago(16), 0.17)
    assert during["obligations"]["dissemination"] == {"met": 2, "discharged": 0, "breached": 0, "open-overdue": 0, "open-not-due": 1}
    assert during["obligations"]["force-acknowledgement"] == {
        "met": 0,
        "discharged": 0,
        "breached": 0,
        "open-overdue": 0,
        "open-not-due": 2,
    }
    assert during["policy"].startswith("default@")
    now = data(package, "package", REF)
    assert now["obligations"]["force-acknowledgement"] == {
        "met": 1,
        "discharged": 0,
        "breached": 0,
        "open-overdue": 0,
        "open-not-due": 1,
    }  # S-1 within 1 day
    before = data(package, "package", REF, "--at", ago(17))
    assert (before["by_state"]["with_referral_owner"], before["first_dissemination"], before["days_to_first_dissemination"]) == (
        4,
        None,
        None,
    )


def test_package_as_csv_and_text(package: str) -> None:
    rows = dict(line.split(",", 1) for line in run(package, "package", REF, "--at", ago(12), "--csv").stdout.splitlines())
    assert (rows["measure"], rows["by_state.in_transit"], rows["by_force.F-NORTH.in_transit"], rows["obligations.dissemination.met"]) == (
        "value",
        "2",
        "1",
        "2",
    )
    text = run(package, "package", REF, "--at", ago(12)).stdout
    assert f"{REF} at {ago(12)} (as known now)" in text
    assert "4 subjects (claimed 4): 2 with referral owner, 2 in transit, 0 with force, 0 closed; 0 actioned" in text


def test_a_bad_row_is_reported_by_line_and_nothing_is_recorded(package: str, tmp_path: Path) -> None:
    before = data(package, "info")["events"]
    sent = write(tmp_path, "tranche.csv", "subject,to_force,authorised_by\nS-3,F-NORTH,P-07\nS-2,F-WEST,P-07\nS-4,F-EAST,P-07\n")
    result = run(package, "subjects", "disseminate", REF, "--from-csv", sent, "--as", "P-07:team-manager@U-INTAKE", code=1)
    assert result.output.startswith("Error: line 3: R-BULK-9/S-2: it is in transit to F-EAST;")
    assert "(rule: answer-before-resend)" in result.output
    assert data(package, "info")["events"] == before


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("name.csv", "subject,category,name\nS-9,suspect,Jane Doe\n", "Error: line 1: unknown column 'name'"),
        ("person.csv", "subject,category\nJane Doe,suspect\n", "Error: line 2: subject 'Jane Doe' is not a pseudonymous reference"),
        ("empty.csv", "", "is empty; it needs a header row"),
    ],
)
def test_identifying_data_and_malformed_files_are_refused(package: str, tmp_path: Path, name: str, text: str, message: str) -> None:
    result = run(package, "subjects", "import", REF, write(tmp_path, name, text), "--as", "P-02:analyst@U-INTAKE", code=1)
    assert message in result.output


def test_a_band_column_needs_the_risk_tool(package: str, tmp_path: Path) -> None:
    path = write(tmp_path, "banded.csv", "subject,category,band\nS-9,suspect,LOW\n")
    result = run(package, "subjects", "import", REF, path, "--as", "P-02:analyst@U-INTAKE", code=2)
    assert "give --risk-tool and --risk-tool-version" in result.output


def test_an_unknown_referral_is_one_line_error(package: str) -> None:
    assert run(package, "subjects", "list", "R-NOPE", code=1).output == "Error: referral R-NOPE is not in the ledger\n"
    assert run(package, "package", "R-NOPE", code=1).output == "Error: referral R-NOPE is not in the ledger\n"


def test_without_at_every_row_of_a_file_gets_the_same_instant(tmp_path: Path) -> None:
    url = str(tmp_path / "ledger.sqlite")  # freezegun only on SQLite
    with freeze_time("2024-05-01T10:00:00Z", tick=True):
        run(
            url,
            "receive",
            REF,
            "--originator",
            "X",
            "--channel",
            "liaison",
            "--custodian-unit",
            "U-INTAKE",
            "--as",
            "P-01:registry@U-INTAKE",
        )
        rows = "".join(f"S-{n},suspect\n" for n in range(300))
        run(url, "subjects", "import", REF, write(tmp_path, "s.csv", "subject,category\n" + rows), "--as", "P-02:analyst@U-INTAKE")
        listed = data(url, "subjects", "list", REF)["subjects"]
    assert len({row["extracted_at"] for row in listed}) == 1
    assert listed[0]["extracted_at"].startswith("2024-05-01T10:00:0")


def test_every_bulk_command_has_help_with_an_example() -> None:
    from commands.subjects import package_command, subjects_group

    commands: list[click.Command] = [subjects_group, package_command, *subjects_group.commands.values()]
    assert sorted(subjects_group.commands) == ["disseminate", "import", "list", "triage"]
    for command in commands:
        assert command.help and "\b\nExample:\n  refledger " in inspect.cleandoc(command.help), command.name

"""An honest record, as a user meets it on each backend: discharged clocks, corrections and
retractions (bitemporal both ways), attestations, refused due times, review findings."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main

REF = "R-HON-0001"
SUPERVISOR = "P-9:supervisor@U-INTAKE"


def line(kind: str, occurred: str, recorded: str, who: str, **fields: Any) -> dict[str, Any]:
    person, role_unit = who.split(":")
    role, unit = role_unit.split("@")
    return {
        "type": kind,
        "referral": REF,
        "occurred_at": occurred,
        "recorded_at": recorded,
        "actor": {"person": person, "role": role, "unit": unit},
        **fields,
    }


RECEIVED = line(
    "received", "2024-05-01T09:00:00Z", "2024-05-01T09:05:00Z", "P-1:registry@U-INTAKE",
    originator="X-FORCE", channel="liaison", custodian_unit="U-INTAKE",
)  # fmt: skip
#: offered to U-OPSA on 1 May (v2), reviewed on 6 May (v3), accepted by U-OPSA on 2 May (v4, entered 12 May: late)
STORY = [
    RECEIVED,
    line("ownership_offered", "2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z", "P-2:manager@U-INTAKE", to_unit="U-OPSA"),
    line("review_recorded", "2024-05-06T10:00:00Z", "2024-05-06T10:05:00Z", "P-8:supervisor@U-OPSA", progress="ok", owner_confirmed="U-OPSB"),
    line(
        "ownership_accepted", "2024-05-02T08:00:00Z", "2024-05-12T12:00:00Z", "P-7:manager@U-OPSA",
        late_reason="Accepted by e-mail; entered at the reconciliation",
    ),
]  # fmt: skip

Run = Callable[..., Result]


@pytest.fixture
def run(database_url: str) -> Run:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, ["--db", database_url, *args], catch_exceptions=False, env={"REFLEDGER_ACTOR": None})

    return invoke


def ok(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if result.stdout.lstrip().startswith(("{", "[")) else result.stdout


def imported(run: Run, tmp_path: Path, records: list[dict[str, Any]], name: str = "story.jsonl") -> None:
    path = tmp_path / name
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    ok(run("import", "--historical", str(path)))


def owner(run: Run, at: str, known: str | None = None) -> str | None:
    answer = ok(run("owner", REF, "--at", at, *(["--as-known-at", known] if known else []), "--json"))
    return None if answer["owner"] is None else answer["owner"]["unit"]


def statuses(run: Run, at: str, *options: str) -> dict[str, str]:
    rows = ok(run("obligations", REF, "--at", at, *options, "--json"))["obligations"]
    return {row["rule"]: row["status"] for row in rows}


def test_a_referral_closed_before_anyone_assessed_it_is_discharged_not_met(run: Run, tmp_path: Path) -> None:
    # Given a referral closed a day after receipt, before anyone assessed it
    imported(
        run,
        tmp_path,
        [RECEIVED, line("closed", "2024-05-02T09:00:00Z", "2024-05-02T09:05:00Z", "P-2:manager@U-INTAKE", reason="duplicate")],
    )
    # When the obligations are asked for a month later
    rows = {row["rule"]: row for row in ok(run("obligations", REF, "--at", "2024-06-01T00:00:00Z", "--json"))["obligations"]}
    # Then the assessment clock was discharged by the closure, never met
    assert (rows["initial-assessment"]["status"], rows["initial-assessment"]["ended_by"]) == ("discharged", "closed")
    assert rows["initial-assessment"]["satisfied_at"] == "2024-05-02T09:00:00Z"
    # and so was the owner clock (due 3 May); nothing counts as met
    assert rows["owner-accepted"]["status"] == "discharged"
    text = ok(run("obligations", REF, "--at", "2024-06-01T00:00:00Z"))
    assert "0 met, 2 discharged" in text


def test_a_correction_changes_answers_from_its_recording_on_and_not_before(run: Run, tmp_path: Path) -> None:
    # Given the story, and later a correction: the offer went to U-OPSB (recorded 20 May)
    correction = line(
        "entry_corrected", "2024-05-20T09:00:00Z", "2024-05-20T09:00:00Z", "P-2:manager@U-INTAKE",
        version=2, fields={"to_unit": "U-OPSB"}, reason="typed OPSA for OPSB",
    )  # fmt: skip
    imported(run, tmp_path, [*STORY, correction])
    at = "2024-05-14T00:00:00Z"
    # Then as known now U-OPSA's acceptance answered no offer to it: nobody owned it
    assert owner(run, at) is None
    # and as known before the correction was recorded, U-OPSA owned it
    assert owner(run, at, "2024-05-19T00:00:00Z") == "U-OPSA"
    # and after the correction was recorded, the corrected record answers
    assert owner(run, at, "2024-05-21T00:00:00Z") is None
    # Obligations: as known at 14 May the offer was answered by acceptance; with the correction
    # (as known now) the acceptance is superseded and the owner clock is overdue
    assert statuses(run, at)["owner-accepted"] == "met"
    assert statuses(run, at, "--as-known-now")["owner-accepted"] == "open-overdue"
    # The original and the correction are both on the record
    timeline = ok(run("timeline", REF, "--json"))["events"]
    summaries = [row["summary"] for row in timeline]
    assert any("Ownership offered to U-OPSA" in s and "corrected by v5" in s for s in summaries)
    assert any("Corrects v2 (ownership_offered): to_unit U-OPSA -> U-OPSB" in s for s in summaries)
    (row,) = ok(run("audit", "corrections", "--json"))["rows"]
    assert (row["entry_version"], row["field"], row["original"], row["corrected"], row["by_entry_actor"]) == (
        2,
        "to_unit",
        "U-OPSA",
        "U-OPSB",
        True,
    )
    assert ok(run("history", REF, "--json"))["amendments"][0]["corrected"] == "U-OPSB"


def test_a_live_correction_by_someone_else_is_refused_unless_supervisory(run: Run, tmp_path: Path) -> None:
    imported(run, tmp_path, STORY)
    refused = run("correct", REF, "--version", "2", "--field", "to_unit=U-OPSB", "--reason", "x", "--as", "P-5:analyst@U-TRIAGE")
    assert refused.exit_code == 1 and "rule: amend-authority" in refused.output and "Traceback" not in refused.output
    bad = run("correct", REF, "--version", "2", "--field", "colour=red", "--reason", "x", "--as", SUPERVISOR)
    assert bad.exit_code == 1 and "rule: correctable-fields" in bad.output
    ok(run("correct", REF, "--version", "2", "--field", "to_unit=U-OPSB", "--reason", "typed OPSA", "--as", SUPERVISOR))
    # recorded now: as known at any instant of 2024 the original still answers
    assert owner(run, "2024-05-14T00:00:00Z", "2024-12-31T00:00:00Z") == "U-OPSA"
    assert owner(run, "2024-05-14T00:00:00Z") is None


def test_a_retracted_acceptance_removes_the_ownership_interval_from_then_on(run: Run, tmp_path: Path) -> None:
    retraction = line(
        "entry_retracted", "2024-05-20T09:00:00Z", "2024-05-20T09:00:00Z", "P-9:supervisor@U-INTAKE",
        version=4, reason="entered on the wrong referral",
    )  # fmt: skip
    imported(run, tmp_path, [*STORY, retraction])
    assert ok(run("history", REF, "--json"))["ownership"] == []
    before = ok(run("history", REF, "--as-known-at", "2024-05-19T00:00:00Z", "--json"))["ownership"]
    assert [(i["unit"], i["start"]) for i in before] == [("U-OPSA", "2024-05-02T08:00:00Z")]
    assert any("retracted by v5" in row["summary"] for row in ok(run("timeline", REF, "--json"))["events"])


def test_an_attested_late_entry_leaves_the_needs_attestation_list(run: Run, tmp_path: Path) -> None:
    imported(run, tmp_path, STORY)
    (waiting,) = ok(run("audit", "late-entries", "--needs-attestation", "--json"))["rows"]
    assert (waiting["version"], waiting["attestation_due"], waiting["attestation_overdue"]) == (4, "2024-05-19T12:00:00Z", True)
    refused = run("attest", REF, "--version", "4", "--statement", "seen", "--as", "P-5:analyst@U-TRIAGE")
    assert refused.exit_code == 1 and "rule: attest-supervisory-role" in refused.output
    not_late = run("attest", REF, "--version", "2", "--statement", "seen", "--as", SUPERVISOR)
    assert not_late.exit_code == 1 and "rule: attest-late-entries" in not_late.output
    ok(run("attest", REF, "--version", "4", "--statement", "Seen the e-mail of 2 May", "--as", SUPERVISOR))
    assert ok(run("audit", "late-entries", "--needs-attestation", "--json"))["rows"] == []
    (entry,) = ok(run("audit", "late-entries", "--json"))["rows"]
    assert (entry["needs_attestation"], entry["attested_by"], entry["attestation_overdue"]) == (False, SUPERVISOR, False)


def test_a_due_time_at_or_before_the_event_is_refused_with_the_rule(run: Run, tmp_path: Path) -> None:
    imported(run, tmp_path, [RECEIVED])
    for args in (
        ("offer", REF, "--to-unit", "U-OPSA", "--at", "2024-05-03T10:00:00Z", "--reply-due", "2024-05-03T10:00:00Z"),
        (
            "escalate",
            REF,
            "--to-role",
            "head-of-tasking",
            "--issue",
            "x",
            "--at",
            "2024-05-03T10:00:00Z",
            "--decision-due",
            "2023-05-03T10:00:00Z",
        ),
    ):
        result = run(*args, "--late-reason", "paper", "--as", SUPERVISOR)
        assert result.exit_code == 1 and "rule: due-after-event" in result.output, result.output
    assert len(ok(run("timeline", REF, "--json"))["events"]) == 1  # nothing was written


def test_a_review_confirming_the_wrong_owner_is_a_finding(run: Run, tmp_path: Path) -> None:
    imported(run, tmp_path, STORY)
    (finding,) = ok(run("audit", "findings", "--json"))["rows"]
    assert (finding["referral"], finding["version"], finding["owner_confirmed"], finding["owner_shown"]) == (REF, 3, "U-OPSB", "U-OPSA")
    report = tmp_path / "case.md"
    ok(run("report", REF, "--format", "md", "--out", str(report)))
    assert "confirmed U-OPSB as owner; the events show U-OPSA then" in report.read_text(encoding="utf-8")

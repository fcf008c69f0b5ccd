"""``refledger obligations`` and ``refledger policy show`` as a user runs them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from cli import main
from ledger.policy import DEFAULT_POLICY, RULE_IDS
from projections.obligations import COLUMNS

REF = "R-CLI-1"
ACTOR = {"person": "P-1", "role": "registry-officer", "unit": "U-INTAKE"}


def line(type_name: str, occurred: str, recorded: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"type": type_name, "referral": REF, "occurred_at": occurred, "recorded_at": recorded or occurred, "actor": ACTOR, **fields}


# Received 1 Mar 09:00 (owner-accepted due 3 Mar 09:00, initial-assessment due 8 Mar 09:00);
# an offer on 2 Mar (reply due 4 Mar); the acceptance of 3 Mar is entered late, on 6 Mar.
HISTORY = [
    line("received", "2024-03-01T09:00:00Z", originator="X-FORCE", channel="liaison", custodian_unit="U-INTAKE"),
    line("ownership_offered", "2024-03-02T09:00:00Z", to_unit="U-OPS1", reply_due="2024-03-04T09:00:00Z"),
    {
        **line("ownership_accepted", "2024-03-03T21:00:00Z", "2024-03-06T09:00:00Z", late_reason="entered after leave"),
        "actor": {"person": "P-2", "role": "team-manager", "unit": "U-OPS1"},
    },
]


@pytest.fixture
def db(tmp_path: Path) -> str:
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps(record) + "\n" for record in HISTORY), encoding="utf-8")
    url = str(tmp_path / "ledger.sqlite")
    run(url, "import", "--historical", str(history))
    return url


def run(url: str | None, *args: str, code: int = 0, env: dict[str, str] | None = None) -> Result:
    prefix = ["--db", url] if url else []
    result = CliRunner().invoke(main, [*prefix, *args], catch_exceptions=False, env=env)
    assert result.exit_code == code, result.output
    return result


def answer(url: str, *args: str, env: dict[str, str] | None = None) -> Any:
    return json.loads(run(url, "obligations", REF, *args, "--json", env=env).stdout)


def statuses(document: Any) -> dict[str, str]:
    return {row["rule"]: row["status"] for row in document["obligations"]}


def test_json_answer_as_known_then_and_as_known_now(db: str) -> None:
    then = answer(db, "--at", "2024-03-05T09:00:00Z")
    assert set(then) == {"referral", "at", "as_known_now", "policy", "obligations"}
    assert (then["referral"], then["at"], then["as_known_now"], then["policy"]) == (
        REF,
        "2024-03-05T09:00:00Z",
        False,
        DEFAULT_POLICY.version,
    )
    assert statuses(then) == {"owner-accepted": "open-overdue", "initial-assessment": "open-not-due", "offer-reply": "open-overdue"}
    owner = then["obligations"][0]
    assert owner == {
        "rule": "owner-accepted",
        "referral": REF,
        "subject": None,
        "status": "open-overdue",
        "started_at": "2024-03-01T09:00:00Z",
        "due": "2024-03-03T09:00:00Z",
        "satisfied_at": None,
        "days_late": 2.0,
        "band": None,
        "cadence_days": None,
        "cycles_missed": None,
        "started_by": 1,
        "started_recorded_at": "2024-03-01T09:00:00Z",
        "satisfied_by": None,
        "satisfied_recorded_at": None,
    }
    now = answer(db, "--at", "2024-03-05T09:00:00Z", "--as-known-now")
    assert now["as_known_now"] is True
    assert statuses(now) == {"owner-accepted": "breached", "initial-assessment": "open-not-due", "offer-reply": "met"}
    breached = now["obligations"][0]
    assert (breached["satisfied_at"], breached["satisfied_recorded_at"], breached["days_late"]) == (
        "2024-03-03T21:00:00Z",
        "2024-03-06T09:00:00Z",
        0.5,
    )


def test_default_instant_is_now(db: str) -> None:
    document = answer(db)
    assert statuses(document) == {"owner-accepted": "breached", "initial-assessment": "open-overdue", "offer-reply": "met"}


def test_global_json_flag(db: str) -> None:
    document = json.loads(run(db, "--json", "obligations", REF, "--at", "2024-03-02T00:00:00Z").stdout)
    assert statuses(document) == {"owner-accepted": "open-not-due", "initial-assessment": "open-not-due"}


def test_text_answer_names_the_instant_knowledge_and_policy(db: str) -> None:
    output = run(db, "obligations", REF, "--at", "2024-03-05T09:00:00Z").stdout
    first = output.splitlines()[0]
    assert (
        first
        == f"{REF} at 2024-03-05T09:00:00Z, as known then (policy {DEFAULT_POLICY.version}): 0 met, 0 discharged, 0 breached, 2 open-overdue, 1 open-not-due."
    )
    assert "owner-accepted" in output and "to_unit U-OPS1" in output


def test_csv_answer_has_every_column(db: str) -> None:
    output = run(db, "obligations", REF, "--at", "2024-03-05T09:00:00Z", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(output)))
    assert tuple(rows[0]) == COLUMNS
    assert [(row["rule"], row["status"], row["days_late"], row["to_unit"]) for row in rows] == [
        ("owner-accepted", "open-overdue", "2.00", ""),
        ("initial-assessment", "open-not-due", "", ""),
        ("offer-reply", "open-overdue", "1.00", "U-OPS1"),
    ]


def test_status_filter(db: str) -> None:
    document = answer(db, "--at", "2024-03-05T09:00:00Z", "--status", "open-not-due")
    assert [row["rule"] for row in document["obligations"]] == ["initial-assessment"]


def test_fail_on_findings_exits_3_only_when_something_is_overdue(db: str) -> None:
    overdue = run(db, "obligations", REF, "--at", "2024-03-05T09:00:00Z", "--json", "--fail-on-findings", code=3)
    assert len(json.loads(overdue.stdout)["obligations"]) == 3
    assert overdue.stderr == f"2 obligations of {REF} open and overdue at 2024-03-05T09:00:00Z\n"
    run(db, "obligations", REF, "--at", "2024-03-02T00:00:00Z", "--fail-on-findings")


def test_a_policy_file_sets_the_rules_and_the_version(db: str, tmp_path: Path) -> None:
    policy = tmp_path / "strict.toml"
    policy.write_text('name = "strict"\n[rules.owner-accepted]\ndays = 0.5\n[rules.offer-reply]\nenabled = false\n', encoding="utf-8")
    document = json.loads(run(db, "--policy", str(policy), "obligations", REF, "--at", "2024-03-02T00:00:00Z", "--json").stdout)
    assert document["policy"].startswith("strict@") and document["policy"] != DEFAULT_POLICY.version
    assert [(row["rule"], row["due"]) for row in document["obligations"]] == [
        ("owner-accepted", "2024-03-01T21:00:00Z"),
        ("initial-assessment", "2024-03-08T09:00:00Z"),
    ]
    from_env = answer(db, "--at", "2024-03-02T00:00:00Z", env={"REFLEDGER_POLICY": str(policy)})
    assert from_env["policy"] == document["policy"]


def test_a_bad_policy_file_is_one_line_naming_the_key(db: str, tmp_path: Path) -> None:
    policy = tmp_path / "bad.toml"
    policy.write_text("[rules.owner-accepted]\ndays = -1\n", encoding="utf-8")
    result = run(db, "--policy", str(policy), "obligations", REF, code=1)
    assert result.stderr.startswith(f"Error: {policy}: rules.owner-accepted.days must be more than 0")
    assert result.stderr.count("\n") == 1
    missing = run(None, "--policy", str(tmp_path / "nowhere.toml"), "policy", "show", code=1)
    assert missing.stderr == f"Error: {tmp_path / 'nowhere.toml'}: no such policy file\n"


def test_a_bad_policy_does_not_stop_answers_that_judge_no_rule(db: str, tmp_path: Path) -> None:
    run(db, "--policy", str(tmp_path / "nowhere.toml"), "info")


def test_unknown_referral_and_bad_instant_are_user_errors(db: str) -> None:
    assert run(db, "obligations", "R-NOPE", code=1).stderr == "Error: referral R-NOPE is not in the ledger\n"
    assert "is not an ISO 8601 time" in run(db, "obligations", REF, "--at", "yesterday", code=1).stderr


def test_policy_show(tmp_path: Path) -> None:
    document = json.loads(run(None, "policy", "show", "--json").stdout)
    assert (document["name"], document["version"], document["source"]) == ("default", DEFAULT_POLICY.version, None)
    assert [rule["rule"] for rule in document["rules"]] == list(RULE_IDS)
    assert document["rules"][5] == {
        "rule": "supervisory-review",
        "enabled": True,
        "days": {"VERY_HIGH": 7.0, "HIGH": 14.0, "MEDIUM": 28.0, "LOW": 28.0},
        "note": "or a review's next_review_by, if earlier",
    }
    policy = tmp_path / "unit.toml"
    policy.write_text('name = "unit-7"\n[rules.supervisory-review]\nHIGH = 10\n', encoding="utf-8")
    text = run(None, "--policy", str(policy), "policy", "show").stdout
    assert text.startswith("Policy unit-7@") and f"({policy})" in text.splitlines()[0]
    assert "VERY_HIGH 7, HIGH 10, MEDIUM 28, LOW 28" in text
    rows = list(csv.DictReader(io.StringIO(run(None, "policy", "show", "--csv").stdout)))
    assert [row["rule"] for row in rows] == list(RULE_IDS)


@pytest.mark.parametrize("path", [("obligations",), ("policy",), ("policy", "show")])
def test_help_ends_with_an_example(path: tuple[str, ...]) -> None:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None
        command = found
    assert command.help is not None and "Example:" in command.help
    assert "refledger" in command.help.split("Example:")[1]

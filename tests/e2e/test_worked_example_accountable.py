"""The worked example with its staff directory: `accountable` at every instant of the expected file, on each backend.

The expected answers are derived from the expected file itself: its ownership blocks (owner,
custodian, open offers, status at each instant) and its ``directory`` block (who held an
accountable role in which unit from when to when, and which decisions were awaited), not
from the code under test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from tests.conftest import EXAMPLES, json_cli

Ask = Callable[..., Any]


@pytest.fixture
def ask(database_url: str) -> Ask:
    run = json_cli(database_url)
    run("import", "--historical", str(EXAMPLES / "staff.jsonl"), "--json")
    run("import", "--historical", str(EXAMPLES / "cybertip.jsonl"), "--json")
    return lambda *args: run(*args, "--json")


def _people(directory: dict[str, Any], unit: str | None, at: str) -> list[dict[str, Any]]:
    if unit is None:
        return []
    held = [p for p in directory["accountable"].get(unit, []) if p["from"] <= at and (p["to"] is None or at < p["to"])]
    rows = [
        {
            "person": p["person"],
            "role": p["role"],
            "unit": unit,
            "since": p["from"],
            "employer": p["employer"],
            "seconded_to": p["seconded_to"],
        }
        for p in held
    ]
    return sorted(rows, key=lambda p: (p["unit"], p["role"], p["since"], p["person"]))


def expected_answer(reference: str, case: dict[str, Any], directory: dict[str, Any]) -> dict[str, Any]:
    at, known = case["at"], case["as_known_at"]
    custodian = _people(directory, case["custodian"], at)
    awaiting = [{"kind": "offer", "unit": unit, "role": None, "holders": _people(directory, unit, at)} for unit in case["open_offers"]]
    for waiting in directory["awaiting_decisions"][reference]:
        started = waiting["from"] <= at and (known is None or waiting["known_from"] <= known)
        ended = waiting["to"] <= at and (known is None or waiting["known_to"] <= known)
        if started and not ended:
            awaiting.append({k: waiting[k] for k in ("kind", "unit", "role", "holders")})
    owner = case["owner"]
    return {
        "referral": reference,
        "at": at,
        "as_known_at": known,
        "owner": None if owner is None else {"unit": owner, "person": case["owner_person"], "accountable": _people(directory, owner, at)},
        "custodian": {"unit": case["custodian"], "accountable": custodian},
        "answering_while_unowned": custodian if owner is None and case["status"] == "open" else [],
        "awaiting": awaiting,
    }


def cases(expected: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for reference, blocks in sorted(expected["referrals"].items()):
        found += [(reference, case) for case in blocks["ownership_as_known_now"]]
        for pair in blocks["ownership_as_known_at"]:
            found += [(reference, case) for case in pair]
    return found


def test_accountable_at_every_instant_of_the_expected_file(ask: Ask, expected: dict[str, Any]) -> None:
    checked = 0
    for reference, case in cases(expected):
        known = ["--as-known-at", case["as_known_at"]] if case["as_known_at"] else []
        answer = ask("accountable", reference, "--at", case["at"], *known)
        assert answer == expected_answer(reference, case, expected["directory"]), (
            f"{reference} at {case['at']} as known at {case['as_known_at']}"
        )
        checked += 1
    assert checked >= 10


def test_with_the_whole_directory_audit_actors_is_empty(ask: Ask, expected: dict[str, Any]) -> None:
    assert ask("audit", "actors")["rows"] == expected["directory"]["audit_actors"]


def test_without_the_directory_every_line_is_kept_and_audit_actors_lists_it(database_url: str) -> None:
    runner = CliRunner()
    imported = runner.invoke(
        main, ["--db", database_url, "import", "--historical", str(EXAMPLES / "cybertip.jsonl")], catch_exceptions=False
    )
    assert imported.exit_code == 0, imported.output
    result = runner.invoke(main, ["--db", database_url, "audit", "actors", "--json"], catch_exceptions=False)
    answer = json.loads(result.stdout)
    lines = (EXAMPLES / "cybertip.jsonl").read_text(encoding="utf-8").splitlines()
    assert answer["findings"] == len(lines) == 45
    assert sorted(row["line"] for row in answer["rows"]) == list(range(1, 46))
    counts = json.loads(runner.invoke(main, ["--db", database_url, "audit", "actors", "--counts", "--json"]).stdout)
    assert sum(row["events"] for row in counts["rows"]) == 45
    assert {"person": "P-113", "role": "analyst", "unit": "U-OPS1", "rule": "actor-in-directory", "events": 9} in counts["rows"]


def test_the_case_file_names_the_accountable_people_of_each_interval_and_gap(database_url: str, tmp_path: Any) -> None:
    runner = CliRunner()
    for name in ("staff.jsonl", "cybertip.jsonl"):
        assert runner.invoke(main, ["--db", database_url, "import", "--historical", str(EXAMPLES / name)]).exit_code == 0
    out = tmp_path / "case.md"
    result = runner.invoke(
        main,
        ["--db", database_url, "report", "R-2024-0402", "--at", "2024-05-10T12:00:00Z", "--no-verify", "--out", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    section = out.read_text(encoding="utf-8").split("## Accountable people", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| what")]
    # the long gap while U-INTAKE held it, then U-OPS1's ownership
    assert rows[0].startswith(
        "| **NO OWNER** (custodian) | U-INTAKE | 2024-04-02T09:30:00Z | 2024-04-19T09:00:00Z | P-122 head-of-unit (NCA)"
    )
    assert "owner-accepted due 2024-04-04T09:30:00Z" in rows[0] and "escalation-decided due" in rows[0]
    assert rows[1].startswith("| owner | U-OPS1 | 2024-04-19T09:00:00Z | running | P-104 team-manager (F-NORTH, seconded to NCA)")
    assert "P-121 head-of-unit (acting) (NCA)" in rows[1]
    html = runner.invoke(main, ["--db", database_url, "report", "R-2024-0402", "--no-verify", "--out", "-", "--format", "html"])
    assert "<h2>Accountable people</h2>" in html.stdout

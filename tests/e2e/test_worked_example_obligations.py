"""The worked example through the command line, on each backend: import it, then ask
``refledger obligations REF --at T --json`` for every instant it lists."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from tests.conftest import EXAMPLES

EXPECTED: dict[str, Any] = json.loads((EXAMPLES / "cybertip_expected.json").read_text(encoding="utf-8"))
COMPARED = ("rule", "subject", "started_at", "due", "band", "cadence_days", "cycles_missed", "to_unit", "to_force")


def refledger(url: str, *args: str) -> Any:
    result = CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def in_example_words(row: dict[str, Any]) -> dict[str, Any]:
    """An answer row with the fields the example gives (days_late is its days_overdue)."""
    words = {name: row.get(name) for name in COMPARED if row.get(name) is not None or name in ("subject",)}
    words["days_overdue"] = row["days_late"]
    return words


def expected_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{name: value for name, value in row.items() if name != "started_by_line"} for row in rows]


def ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: (row["rule"], row["subject"] or "", row["started_at"]))


def test_the_worked_example_overdue_lists_from_the_cli(database_url: str) -> None:
    imported = refledger(database_url, "import", "--historical", str(EXAMPLES / "cybertip.jsonl"), "--json")
    assert imported["events"] == EXPECTED["meta"]["lines"]
    checked = 0
    for reference, answers in EXPECTED["referrals"].items():
        for key, flags in (("overdue_at", ()), ("overdue_at_as_known_now", ("--as-known-now",))):
            for instant, rows in answers.get(key, {}).items():
                answer = refledger(database_url, "obligations", reference, "--at", instant, *flags, "--json")
                assert (answer["referral"], answer["at"], answer["as_known_now"]) == (reference, instant, bool(flags))
                assert answer["policy"].startswith("default@")
                found = ordered([in_example_words(row) for row in answer["obligations"] if row["status"] == "open-overdue"])
                wanted = ordered(expected_rows(rows))
                assert len(found) == len(wanted), (reference, instant, found)
                for have, want in zip(found, wanted, strict=True):
                    assert have.pop("days_overdue") == pytest.approx(want.pop("days_overdue"), abs=0.01)
                    assert have == want, (reference, instant)
                checked += 1
    assert checked == 7

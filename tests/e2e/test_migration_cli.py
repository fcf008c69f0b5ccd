"""No backdating: a historical import is a migration, and a migration closes (both backends).

The attack: a referral migrated with an open offer; a later ``import --historical`` line
``ownership_accepted`` with a source ``recorded_at`` of 2024-01-01T02:05:00Z would make the
ledger say it knew of an owner since January, and shrink the gap "as known at 2024-06-01"
from 152 days to 0.08.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from cli import main
from tests.conftest import count_events

INTAKE = {"person": "P-01", "role": "registry-officer", "unit": "U-INTAKE"}
OPS = {"person": "P-07", "role": "team-manager", "unit": "U-OPS1"}


def line(kind: str, referral: str, occurred: str, recorded: str, actor: dict[str, str], **fields: Any) -> dict[str, Any]:
    return {"type": kind, "referral": referral, "occurred_at": occurred, "recorded_at": recorded, "actor": actor, **fields}


def received(referral: str) -> dict[str, Any]:
    at = "2024-01-01T00:00:00Z"
    return line("received", referral, at, at, INTAKE, originator="X-FORCE", channel="liaison", custodian_unit="U-INTAKE")


MIGRATED = [
    received("R-2024-0001"),
    line("ownership_offered", "R-2024-0001", "2024-01-01T01:00:00Z", "2024-01-01T01:00:00Z", INTAKE, to_unit="U-OPS1"),
]
ATTACK = [line("ownership_accepted", "R-2024-0001", "2024-01-01T02:00:00Z", "2024-01-01T02:05:00Z", OPS)]


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def run(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", database_url, *args], catch_exceptions=False, env={"REFLEDGER_ACTOR": None})


def refused(result: Result, *parts: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for part in parts:
        assert part in lines[0], lines[0]


def owner_then(database_url: str) -> tuple[Any, float]:
    owner = json.loads(run(database_url, "owner", "R-2024-0001", "--at", "2024-01-05", "--as-known-at", "2024-01-05", "--json").stdout)
    history = json.loads(run(database_url, "history", "R-2024-0001", "--at", "2024-06-01", "--as-known-at", "2024-06-01", "--json").stdout)
    return owner["owner"], history["totals"]["unowned_days"]


def test_the_backdating_attack_is_refused_while_the_migration_is_open(database_url: str, tmp_path: Path) -> None:
    assert run(database_url, "import", "--historical", str(write(tmp_path / "migration.jsonl", MIGRATED))).exit_code == 0
    before = (count_events(database_url), owner_then(database_url))
    assert before[1] == (None, 152.0)

    refused(
        run(database_url, "import", "--historical", str(write(tmp_path / "attack.jsonl", ATTACK))),
        "line 1: R-2024-0001 is already in the ledger",
        "history is imported once",
    )
    assert (count_events(database_url), owner_then(database_url)) == before


def test_the_first_live_event_closes_the_migration(database_url: str, tmp_path: Path) -> None:
    assert run(database_url, "import", "--historical", str(write(tmp_path / "migration.jsonl", MIGRATED))).exit_code == 0
    assert run(database_url, "--as", "P-01:registry-officer@U-INTAKE", "note", "R-2024-0001", "--text", "chased U-OPS1").exit_code == 0
    events = count_events(database_url)

    # neither the attack nor history of a referral new to the ledger gets in any more
    for records in (ATTACK, [received("R-2024-0002")]):
        refused(
            run(database_url, "import", "--historical", str(write(tmp_path / "late.jsonl", records))),
            "the migration of this ledger was closed by its first live event",
        )
    assert count_events(database_url) == events
    answer = json.loads(run(database_url, "audit", "migrations", "--json").stdout)
    assert [(r["event"], r["lines"], r["reason"]) for r in answer["rows"]] == [
        ("history_imported", 2, None),
        ("migration_closed", None, "first live event"),
    ]
    assert answer["rows"][1]["by"] == "P-01:registry-officer@U-INTAKE"


def test_a_migration_closed_by_command_refuses_history(database_url: str, tmp_path: Path) -> None:
    assert run(database_url, "import", "--historical", str(write(tmp_path / "one.jsonl", MIGRATED))).exit_code == 0
    # a second file of history for another referral is still part of the migration
    assert run(database_url, "import", "--historical", str(write(tmp_path / "two.jsonl", [received("R-2024-0002")]))).exit_code == 0
    assert run(database_url, "migration", "close", "--as", "P-01:registry-officer@U-INTAKE").exit_code == 0
    refused(run(database_url, "migration", "close", "--as", "P-01:registry-officer@U-INTAKE"), "already closed")
    refused(
        run(database_url, "import", "--historical", str(write(tmp_path / "three.jsonl", [received("R-2024-0003")]))),
        "closed explicitly",
    )
    rows = json.loads(run(database_url, "audit", "migrations", "--json").stdout)["rows"]
    assert [(r["event"], r["referrals"]) for r in rows] == [("history_imported", 1), ("history_imported", 1), ("migration_closed", None)]
    assert run(database_url, "verify").exit_code == 0


def test_history_is_refused_on_a_ledger_that_began_live(database_url: str, tmp_path: Path) -> None:
    live = [{**{k: v for k, v in received("R-2024-0009").items() if k != "recorded_at"}, "late_reason": "from the paper file"}]
    assert run(database_url, "import", str(write(tmp_path / "live.jsonl", live))).exit_code == 0
    refused(run(database_url, "import", "--historical", str(write(tmp_path / "old.jsonl", MIGRATED))), "migration is over")


def test_as_known_at_answers_say_they_rest_on_source_clocks(database_url: str, tmp_path: Path) -> None:
    assert run(database_url, "import", "--historical", str(write(tmp_path / "migration.jsonl", MIGRATED))).exit_code == 0
    answer = run(database_url, "owner", "R-2024-0001", "--as-known-at", "2024-01-05")
    assert "rests on the source system's recording times" in answer.stdout
    plain = json.loads(run(database_url, "owner", "R-2024-0001", "--json").stdout)
    assert plain["source_clocks"] is None

"""``refledger owner``, ``history`` and ``timeline`` as a user runs them, on each backend."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from click.testing import CliRunner, Result

from cli import main
from ledger.identity import os_login
from projections.timeline import CSV_COLUMNS

REF = "R-E2E-0001"


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


#: received; offered to U-OPSA; a note claiming U-OPSB took it; custody to U-OPSA; U-OPSA's
#: acceptance of 2 May recorded on 6 May (line 5); released on 8 May.
STORY = [
    line(
        "received", "2024-05-01T09:00:00Z", "2024-05-01T09:05:00Z", "P-1:registry@U-INTAKE",
        originator="X-FORCE", channel="liaison", custodian_unit="U-INTAKE",
    ),
    line(
        "ownership_offered", "2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z", "P-2:manager@U-INTAKE",
        to_unit="U-OPSA", reply_due="2024-05-03T10:00:00Z",
    ),
    line(
        "note_added", "2024-05-01T11:00:00Z", "2024-05-01T11:02:00Z", "P-3:analyst@U-TRIAGE",
        text="U-OPSB said it would take it", claim={"type": "ownership_accepted", "unit": "U-OPSB"},
    ),
    line("custody_transferred", "2024-05-02T09:00:00Z", "2024-05-02T09:01:00Z", "P-1:registry@U-INTAKE", to_unit="U-OPSA"),
    line(
        "ownership_accepted", "2024-05-02T08:00:00Z", "2024-05-06T12:00:00Z", "P-7:manager@U-OPSA",
        late_reason="Accepted by e-mail; entered at the weekly reconciliation",
    ),
    line("ownership_released", "2024-05-08T17:00:00Z", "2024-05-08T17:05:00Z", "P-7:manager@U-OPSA", reason="Outside our remit"),
]  # fmt: skip

Run = Callable[..., Result]


@pytest.fixture
def run(database_url: str, tmp_path: Path) -> Run:
    """Run refledger on a ledger holding STORY; asserts the exit code (0 unless told)."""
    runner = CliRunner()

    def invoke(*args: str, exit_code: int = 0) -> Result:
        result = runner.invoke(main, ["--db", database_url, *args], catch_exceptions=False, env={"REFLEDGER_ACTOR": None})
        assert result.exit_code == exit_code, result.output
        return result

    source = tmp_path / "story.jsonl"
    source.write_text("".join(json.dumps(record) + "\n" for record in STORY), encoding="utf-8")
    invoke("import", "--historical", str(source))
    return invoke


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


# --- owner ----------------------------------------------------------------------------------


def test_owner_as_known_now(run: Run) -> None:
    answer = as_json(run("owner", REF, "--at", "2024-05-03T12:00:00Z", "--json"))

    assert answer == {
        "referral": REF,
        "at": "2024-05-03T12:00:00Z",
        "as_known_at": None,
        "status": "open",
        "closed_at": None,
        "owner": {"unit": "U-OPSA", "person": "P-7", "since": "2024-05-02T08:00:00Z"},
        "custodian": {"unit": "U-OPSA", "since": "2024-05-02T09:00:00Z"},
        "open_offer": None,
        "unowned_since": None,
        "unowned_days": None,
        "disputed_claims": [
            {
                "claim": {"type": "ownership_accepted", "unit": "U-OPSB"},
                "occurred_at": "2024-05-01T11:00:00Z",
                "recorded_at": "2024-05-01T11:02:00Z",
                "by": {"person": "P-3", "role": "analyst", "unit": "U-TRIAGE"},
                "version": 3,
                "line": 3,
            }
        ],
        "source_clocks": None,  # as known now: nothing rests on a source system's clock alone
    }


def test_owner_as_known_before_the_late_acceptance_was_recorded(run: Run) -> None:
    answer = as_json(run("owner", REF, "--at", "2024-05-03T12:00:00Z", "--as-known-at", "2024-05-05T00:00:00Z", "--json"))

    assert answer["as_known_at"] == "2024-05-05T00:00:00Z"
    assert answer["owner"] is None
    assert (answer["unowned_since"], answer["unowned_days"]) == ("2024-05-01T09:00:00Z", 2.13)  # 2.125 days, half away from zero
    assert answer["open_offer"] == {
        "to_unit": "U-OPSA",
        "offered_at": "2024-05-01T10:00:00Z",
        "reply_due": "2024-05-03T10:00:00Z",
        "offered_by": {"person": "P-2", "role": "manager", "unit": "U-INTAKE"},
    }
    assert answer["custodian"] == {"unit": "U-OPSA", "since": "2024-05-02T09:00:00Z"}


def test_owner_says_plainly_when_nobody_owned_it(run: Run) -> None:
    result = run("owner", REF, "--at", "2024-05-09T09:00:00Z")

    assert result.stdout.splitlines()[0] == (
        "Nobody owned R-E2E-0001 on 2024-05-09T09:00:00Z (unowned since 2024-05-08T17:00:00Z, 0.67 days); "
        "custodian: U-OPSA (since 2024-05-02T09:00:00Z)."
    )
    assert "Disputed claim: a note of 2024-05-01T11:00:00Z" in result.stdout


def test_owner_names_the_owner_in_a_sentence(run: Run) -> None:
    result = run("owner", REF, "--at", "2024-05-03T08:00:00Z")

    assert result.stdout.splitlines()[0] == (
        "U-OPSA (P-7) owned R-E2E-0001 on 2024-05-03T08:00:00Z (since 2024-05-02T08:00:00Z, 1.00 days); "
        "custodian: U-OPSA (since 2024-05-02T09:00:00Z)."
    )


def test_the_global_json_option_gives_the_same_answer(run: Run) -> None:
    assert as_json(run("--json", "owner", REF, "--at", "2024-05-03T12:00:00Z")) == as_json(
        run("owner", REF, "--at", "2024-05-03T12:00:00Z", "--json")
    )


def test_an_unknown_referral_is_one_line_error(run: Run) -> None:
    result = run("owner", "R-NONE", exit_code=1)

    assert result.output == "Error: referral R-NONE is not in the ledger\n"


def test_as_known_before_the_referral_was_recorded_is_one_line_error(run: Run) -> None:
    result = run("owner", REF, "--at", "2024-05-01T10:00:00Z", "--as-known-at", "2024-05-01T09:01:00Z", exit_code=1)

    assert result.output == (
        "Error: R-E2E-0001 was not in the ledger as known at 2024-05-01T09:01:00Z (first recorded at 2024-05-01T09:05:00Z)\n"
    )


def test_a_bad_time_is_one_line_error(run: Run) -> None:
    result = run("owner", REF, "--at", "yesterday", exit_code=1)

    assert result.output == "Error: --at 'yesterday' is not an ISO 8601 time\n"


# --- history ----------------------------------------------------------------------------


def login_of(database_url: str) -> str | None:
    """The login each event records: PostgreSQL's session user, else the OS account."""
    if database_url.startswith("postgresql"):
        return urlparse(database_url).username or "postgres"
    return os_login()


def test_history_lists_intervals_and_gaps_with_durations(run: Run, database_url: str) -> None:
    history = as_json(run("history", REF, "--at", "2024-05-10T17:00:00Z", "--json"))

    # each event names the login that inserted it
    me = login_of(database_url)
    accepted = {"version": 5, "type": "ownership_accepted", "line": 5, "login": me}
    released = {"version": 6, "type": "ownership_released", "line": 6, "login": me}
    assert history["ownership"] == [
        {
            "unit": "U-OPSA",
            "person": "P-7",
            "start": "2024-05-02T08:00:00Z",
            "end": "2024-05-08T17:00:00Z",
            "days": 6.38,
            "opened_by": accepted,
            "closed_by": released,
        }
    ]
    assert history["gaps"] == [
        {
            "start": "2024-05-01T09:00:00Z",
            "end": "2024-05-02T08:00:00Z",
            "days": 0.96,
            "opened_by": {"version": 1, "type": "received", "line": 1, "login": me},
            "closed_by": accepted,
        },
        {"start": "2024-05-08T17:00:00Z", "end": None, "days": 2.0, "opened_by": released, "closed_by": None},
    ]
    assert [(c["unit"], c["start"], c["end"]) for c in history["custody"]] == [
        ("U-INTAKE", "2024-05-01T09:00:00Z", "2024-05-02T09:00:00Z"),
        ("U-OPSA", "2024-05-02T09:00:00Z", None),
    ]
    assert history["totals"] == {"open_days": 9.33, "owned_days": 6.38, "unowned_days": 2.96}


def test_history_as_known_at_shows_the_gap_still_open(run: Run) -> None:
    history = as_json(run("history", REF, "--as-known-at", "2024-05-05T00:00:00Z", "--at", "2024-05-05T00:00:00Z", "--json"))

    assert history["ownership"] == []
    assert [(g["start"], g["end"]) for g in history["gaps"]] == [("2024-05-01T09:00:00Z", None)]


def test_history_table_and_csv(run: Run, database_url: str) -> None:
    table = run("history", REF, "--at", "2024-05-10T17:00:00Z").stdout
    rows = list(csv.DictReader(io.StringIO(run("history", REF, "--at", "2024-05-10T17:00:00Z", "--csv").stdout)))

    assert "open 9.33 days, owned 6.38, unowned 2.96 in 2 gap(s)" in table
    assert [(r["kind"], r["unit"], r["days"]) for r in rows] == [
        ("GAP", "(nobody)", "0.96"),
        ("owner", "U-OPSA", "6.38"),
        ("GAP", "(nobody)", "2.00"),
        ("custody", "U-INTAKE", "1.00"),
        ("custody", "U-OPSA", "8.33"),
    ]
    assert rows[1]["began_with"] == f"v5 ownership_accepted (line 5) by {login_of(database_url)}"


# --- timeline --------------------------------------------------------------------------------


def test_timeline_json_in_business_order_with_both_clocks(run: Run) -> None:
    events = as_json(run("timeline", REF, "--json"))["events"]

    assert [(e["type"], e["line"]) for e in events] == [
        ("received", 1),
        ("ownership_offered", 2),
        ("note_added", 3),
        ("ownership_accepted", 5),
        ("custody_transferred", 4),
        ("ownership_released", 6),
    ]
    accepted = events[3]
    assert (accepted["occurred_at"], accepted["recorded_at"], accepted["lag_days"]) == (
        "2024-05-02T08:00:00Z",
        "2024-05-06T12:00:00Z",
        4.17,
    )
    assert (accepted["late"], accepted["needs_attestation"], accepted["effect"]) == (True, False, "applied")
    assert accepted["summary"] == "U-OPSA (P-7) accepted ownership"
    assert [e["late"] for e in events].count(True) == 1


def test_timeline_as_known_at_leaves_out_later_recordings(run: Run) -> None:
    document = as_json(run("timeline", REF, "--as-known-at", "2024-05-05T00:00:00Z", "--json"))

    assert document["as_known_at"] == "2024-05-05T00:00:00Z"
    assert [e["line"] for e in document["events"]] == [1, 2, 3, 4]


def test_timeline_csv_and_table(run: Run) -> None:
    rows = list(csv.DictReader(io.StringIO(run("timeline", REF, "--csv").stdout)))
    table = run("timeline", REF).stdout

    assert list(rows[0]) == list(CSV_COLUMNS)
    assert rows[3]["actor"] == "P-7:manager@U-OPSA"
    assert (rows[3]["late"], rows[3]["lag_days"]) == ("yes", "4.17")
    assert table.startswith("R-E2E-0001: 6 events in the order they happened; 1 late entry.")
    assert "LATE" in table


# --- help -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["owner", "history", "timeline"])
def test_help_ends_with_an_example(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert re.search(rf"Example:\n +refledger {command} R-", result.output), result.output

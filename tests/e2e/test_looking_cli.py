"""Looking around a ledger as a user does: ``referrals``, ``show``, ``export`` (and its round
trip through ``import --historical``), ``--sort``/``--limit``, options after the command."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from cli import main
from ledger.importing import RECORD_TYPES
from projections.ownership import EVENT_TYPES
from tests.scenario import ROLES

WORKED = Path(__file__).resolve().parents[1] / "data" / "worked_example" / "cybertip.jsonl"
INSTANTS = ("2024-03-12T12:00:00Z", "2024-04-05T00:00:00Z", "2024-04-25T12:00:00Z", "2024-06-03T12:00:00Z")


def run(url: str, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False, env={"REFLEDGER_ACTOR": None})
    assert result.exit_code == code, result.output
    return result


def answer(url: str, *args: str) -> Any:
    return json.loads(run(url, *args, "--json").stdout)


def imported(url: str, path: Path) -> str:
    run(url, "import", "--historical", str(path))
    return url


# --- referrals ------------------------------------------------------------------------------


@pytest.mark.parametrize("instant", INSTANTS)
def test_referrals_agree_with_owner_history_and_audit_overdue(database_url: str, instant: str) -> None:
    # Given the worked example; when listing the referrals at an instant
    url = imported(database_url, WORKED)
    rows = {row["referral"]: row for row in answer(url, "referrals", "--at", instant)["rows"]}
    overdue = answer(url, "audit", "overdue", "--at", instant)["rows"]
    # then each row says what owner, history and audit overdue say about that referral then
    assert rows, "the worked example has referrals received by every instant asked"
    for reference, row in rows.items():
        owner = answer(url, "owner", reference, "--at", instant, "--as-known-at", instant)
        history = answer(url, "history", reference, "--at", instant, "--as-known-at", instant)
        assert row["status"] == owner["status"]
        assert row["owner_unit"] == (owner["owner"] or {}).get("unit")
        assert row["custodian_unit"] == owner["custodian"]["unit"]
        assert row["days_unowned"] == pytest.approx(history["totals"]["unowned_days"], abs=0.011)
        assert row["overdue"] == sum(1 for found in overdue if found["referral"] == reference)


def test_referrals_filters_sort_and_limit(database_url: str) -> None:
    url = imported(database_url, WORKED)
    at = "2024-04-05T00:00:00Z"
    every = answer(url, "referrals", "--at", at)["rows"]
    assert {row["status"] for row in every} == {"open"}
    later = answer(url, "referrals", "--at", "2024-06-03T12:00:00Z")["rows"]
    closed = answer(url, "referrals", "--at", "2024-06-03T12:00:00Z", "--status", "closed")["rows"]
    assert [row["referral"] for row in closed] == [row["referral"] for row in later if row["status"] == "closed"] != []
    by_originator = answer(url, "referrals", "--originator", every[0]["originator"])["rows"]
    assert {row["originator"] for row in by_originator} == {every[0]["originator"]}
    unit = every[0]["owner_unit"] or every[0]["custodian_unit"]
    assert all(unit in (row["owner_unit"], row["custodian_unit"]) for row in answer(url, "referrals", "--at", at, "--unit", unit)["rows"])
    unowned = answer(url, "referrals", "--at", "2024-04-03T12:00:00Z", "--unowned")["rows"]
    assert unowned and all(row["owner_unit"] is None and row["status"] == "open" for row in unowned)
    ordered = answer(url, "referrals", "--sort", "-age_days")["rows"]
    assert [row["age_days"] for row in ordered] == sorted((row["age_days"] for row in ordered), reverse=True)
    assert len(answer(url, "referrals", "--sort", "-age_days", "--limit", "1")["rows"]) == 1
    text = run(url, "referrals", "--limit", "1").stdout
    assert "2 referrals" in text and text.count("R-2024-") == 1
    assert "no column 'nope'" in run(url, "referrals", "--sort", "nope", code=2).output
    # an empty table still knows its columns: a mistyped one is an error, not "0 holds"
    assert "no column 'nope'; the columns are referral, since" in run(url, "hold", "list", "--sort", "nope", code=2).output
    assert "0 holds in force." in run(url, "hold", "list", "--sort", "-since").output


# --- show -----------------------------------------------------------------------------------


def test_show_prints_stored_events_with_both_clocks_hashes_and_provenance(database_url: str) -> None:
    url = imported(database_url, WORKED)
    lines = [orjson.loads(line) for line in WORKED.read_bytes().splitlines()]
    shown = answer(url, "show", "R-2024-0402")["events"]
    assert len(shown) == sum(1 for line in lines if line["referral"] == "R-2024-0402")
    by_line = {event["line"]: event for event in shown}
    for number, line in enumerate(lines, start=1):
        if line["referral"] != "R-2024-0402":
            continue
        event = by_line[number]
        assert (event["type"], event["occurred_at"], event["recorded_at"]) == (line["type"], line["occurred_at"], line["recorded_at"])
        assert event["actor"] == "{person}:{role}@{unit}".format(**line["actor"])
        assert event["late_reason"] == line.get("late_reason")
    chain = [event for event in shown if event["stream"] == "R-2024-0402"]
    assert [event["prev_hash"] for event in chain[1:]] == [event["hash"] for event in chain[:-1]]
    one = answer(url, "show", "R-2024-0402", "--version", "2")["events"]
    assert len(one) == 1 and one[0]["version"] == 2 and one[0]["fields"]
    text = run(url, "show", "R-2024-0402", "--version", "2").stdout
    assert "v2 assessed" in text and f"hash: {one[0]['hash']}" in text and "line" in text
    assert run(url, "show", "R-2024-0402", "--version", "99", code=1).stderr.startswith("Error: R-2024-0402 has no event at version 99")
    assert run(url, "show", "R-NOPE", code=1).stderr == "Error: referral R-NOPE is not in the ledger\n"


# --- export and the round trip -------------------------------------------------------------


def generated_story(referrals: int, seed: int) -> list[dict[str, Any]]:
    """A ledger with every event type the import accepts, lifecycles cut short at random, late entries."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    records: list[dict[str, Any]] = []
    for n in range(referrals):
        ref = f"R-GEN-{n:04d}"
        clock = start + timedelta(hours=rng.randrange(24 * 60))
        story: list[tuple[str, str, dict[str, Any]]] = [
            (
                "received",
                "U-INTAKE",
                {"originator": rng.choice(["X-FORCE", "X-AGENCY"]), "channel": "liaison", "custodian_unit": "U-INTAKE"},
            ),
            (
                "assessed",
                "U-TRIAGE",
                {
                    "risk_band": rng.choice(["LOW", "MEDIUM", "HIGH", "VERY_HIGH"]),
                    "immediate_risk": rng.random() < 0.3,
                    "rationale": "Seen.",
                },
            ),
            ("ownership_offered", "U-TRIAGE", {"to_unit": "U-OPS2", "reply_due": None}),
            ("offer_withdrawn", "U-TRIAGE", {"reason": "Wrong team."}),
            ("ownership_offered", "U-TRIAGE", {"to_unit": "U-OPS2"}),
            ("ownership_declined", "U-OPS2", {"reason": "No capacity."}),
            ("escalation_raised", "U-TRIAGE", {"to_role": "head-of-tasking", "issue": "No lead.", "decision_due": None}),
            (
                "decision_recorded",
                "U-TRIAGE",
                {"outcome": "DEFER", "rationale": "Await data.", "options_considered": ["U-OPS1"], "revisit_by": None},
            ),
            ("ownership_offered", "U-TRIAGE", {"to_unit": "U-OPS1"}),
            ("ownership_accepted", "U-OPS1", {}),
            ("custody_transferred", "U-INTAKE", {"to_unit": "U-OPS1"}),
            ("subject_extracted", "U-OPS1", {"subject": "S-1", "category": "suspect"}),
            (
                "subject_triaged",
                "U-OPS1",
                {"subject": "S-1", "risk_tool": "RPT", "risk_tool_version": "3", "band": "HIGH", "drivers": ["contact"]},
            ),
            (
                "subject_disseminated",
                "U-OPS1",
                {"subject": "S-1", "to_force": "F-NORTH", "authorised_by": "P-1", "grading": {"scheme": "3x5x2", "value": "2-B-C"}},
            ),
            ("force_rejected", "F-NORTH", {"subject": "S-1", "reason": "Not ours."}),
            ("subject_disseminated", "U-OPS1", {"subject": "S-1", "to_force": "F-NORTH", "authorised_by": "P-1"}),
            ("force_acknowledged", "F-NORTH", {"subject": "S-1"}),
            ("force_action_recorded", "F-NORTH", {"subject": "S-1", "action": "Visited."}),
            ("subject_closed", "U-OPS1", {"subject": "S-1", "outcome": "NFA", "rationale": "Done."}),
            ("review_recorded", "U-OPS1", {"progress": "Moving.", "owner_confirmed": "U-OPS1"}),
            ("external_request_received", "U-OPS1", {"from": "X-FORCE", "summary": "Update?"}),
            ("external_reply_sent", "U-OPS1", {"reply_to": "X-FORCE"}),
            ("note_added", "U-OPS1", {"text": "Meeting.", "claim": {"type": "ownership_accepted", "unit": "U-OPS2"}}),
            ("ownership_released", "U-OPS1", {"reason": "Remit."}),
            ("closed", "U-INTAKE", {"reason": "Done."}),
            ("reopened", "U-INTAKE", {"reason": "New intelligence."}),
        ]
        length = len(story) if n % 4 == 0 else rng.randrange(3, len(story) + 1)
        for kind, unit, fields in story[:length]:
            clock += timedelta(hours=rng.randrange(1, 24 * 9))
            if kind == "escalation_raised":
                fields["decision_due"] = _iso(clock + timedelta(days=2))
            if kind == "decision_recorded":
                fields["revisit_by"] = _iso(clock + timedelta(days=14))
            if kind == "ownership_offered":
                fields["reply_due"] = _iso(clock + timedelta(days=3))
            late = rng.random() < 0.15 or (length == len(story) and kind == "review_recorded")
            recorded = clock + (timedelta(days=rng.randrange(2, 12)) if late else timedelta(minutes=5))
            record = {
                "type": kind,
                "referral": ref,
                "occurred_at": _iso(clock),
                "recorded_at": _iso(recorded),
                "actor": {"person": f"P-{unit}", "role": ROLES.get(unit, "officer"), "unit": unit},
                **{name: value for name, value in fields.items() if value is not None},
            }
            if late:
                record["late_reason"] = "Entered from the paper file."
            records.append(record)
            clock = max(clock, recorded) if late else clock
        if length == len(story):
            # amendments: v2 assessed corrected, v12 (the late review) attested, v15 (the note) retracted
            for kind, fields in (
                ("entry_corrected", {"version": 2, "fields": {"rationale": "Seen again."}, "reason": "Typed in haste."}),
                ("entry_attested", {"version": 12, "statement": "Seen the pocket book."}),
                ("entry_retracted", {"version": 15, "reason": "Wrong referral."}),
            ):
                clock += timedelta(hours=2)
                records.append(
                    {
                        "type": kind,
                        "referral": ref,
                        "occurred_at": _iso(clock),
                        "recorded_at": _iso(clock + timedelta(minutes=5)),
                        "actor": {"person": "P-SUP", "role": "supervisor", "unit": "U-OPS1"},
                        **fields,
                    }
                )
    staff = [
        ("unit_registered", {"unit": "U-OPS1", "name": "Operations 1", "kind": "agency-unit"}),
        ("unit_renamed", {"unit": "U-OPS1", "name": "Operations North"}),
        ("unit_registered", {"unit": "U-OLD", "name": "Old desk", "kind": "agency-unit", "parent": "U-OPS1"}),
        ("person_registered", {"person": "P-9", "employer": "NCA", "login": "pnine"}),
        ("role_assigned", {"person": "P-9", "role": "team-manager", "unit": "U-OPS1", "acting": True}),
        ("role_ended", {"person": "P-9", "role": "team-manager", "unit": "U-OPS1", "reason": "Moved."}),
        ("secondment_started", {"person": "P-9", "to_organisation": "F-NORTH"}),
        ("secondment_ended", {"person": "P-9"}),
        ("key_registered", {"person": "P-9", "public_key": "8a0ac23da6138e4de4b3bdb25c7fa8e26d31aa3a252f067ba2106c40b3f0209d"}),
        ("key_revoked", {"person": "P-9", "public_key": "8a0ac23da6138e4de4b3bdb25c7fa8e26d31aa3a252f067ba2106c40b3f0209d", "reason": "Retiring."}),
        ("person_left", {"person": "P-9", "reason": "Retired."}),
        ("unit_closed", {"unit": "U-OLD", "reason": "Merged."}),
    ]
    for day, (kind, fields) in enumerate(staff, start=1):
        when = _iso(datetime(2023, 12, day, 9, tzinfo=UTC))
        records.append(
            {
                "type": kind,
                "occurred_at": when,
                "recorded_at": when,
                "actor": {"person": "P-HR", "role": "hr-officer", "unit": "U-HR"},
                **fields,
            }
        )
    records.sort(key=lambda record: record["recorded_at"])  # stable: per stream still in order
    return records


def _iso(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def _without_provenance(value: Any, dropped: frozenset[str]) -> Any:
    """Answers, minus what names the import file or this ledger's own ingest time."""
    if isinstance(value, dict):
        return {k: _without_provenance(v, dropped) for k, v in value.items() if k not in dropped}
    if isinstance(value, list):
        return [_without_provenance(v, dropped) for v in value]
    return value


def outcome(url: str, *args: str) -> Any:
    """The JSON answer, or the refusal (a referral not yet known at an instant is refused alike)."""
    result = CliRunner().invoke(main, ["--db", url, *args, "--json"], catch_exceptions=False)
    return json.loads(result.stdout) if result.exit_code == 0 else (result.exit_code, result.stderr)


def answers(url: str, instants: tuple[str, ...], *, lines: bool = True) -> dict[str, Any]:
    """What a user asks of a ledger. ``lines=False`` leaves out import line numbers: entries
    recorded in the same second on different referrals may come out of the export in another
    order than the source file had them."""
    found: dict[str, Any] = {
        # a gap still running is measured up to K: a fixed K, so that the two ledgers, asked a
        # few seconds apart, measure it alike
        "gaps": answer(url, "audit", "gaps", "--as-known-at", instants[-1]),
        "late": answer(url, "audit", "late-entries"),
        "referrals": [answer(url, "referrals", "--at", t) for t in instants],
        "overdue": [answer(url, "audit", "overdue", "--at", t) for t in instants],
        "backlog": [answer(url, "backlog", "--at", t) for t in instants],
    }
    for row in found["referrals"][-1]["rows"]:
        reference = row["referral"]
        found[reference] = {
            "history": answer(url, "history", reference, "--at", instants[-1]),
            "timeline": answer(url, "timeline", reference),
            "owner": [outcome(url, "owner", reference, "--at", t, "--as-known-at", t) for t in instants],
            "obligations": [outcome(url, "obligations", reference, "--at", t) for t in instants],
        }
    # provenance of this ledger's copy: when it took the events in, which login inserted them
    dropped = {"file", "file_sha256", "ingested_at", "hash", "prev_hash", "login"} | (set() if lines else {"line"})
    return _without_provenance(found, frozenset(dropped))


def test_export_round_trip_of_the_worked_example_gives_the_same_answers(database_url: str, tmp_path: Path) -> None:
    source = imported(str(tmp_path / "source.sqlite"), WORKED)
    out = tmp_path / "export.jsonl"
    assert run(source, "export", "--out", str(out)).stdout == f"Exported 45 events of 2 referrals to {out}.\n"
    copy = imported(database_url, out)
    assert answers(copy, INSTANTS) == answers(source, INSTANTS)
    again = tmp_path / "again.jsonl"
    run(copy, "export", "--out", str(again))
    assert again.read_bytes() == out.read_bytes()


def test_export_round_trip_of_a_generated_ledger_covers_every_type(database_url: str, tmp_path: Path) -> None:
    story = generated_story(24, seed=13)
    path = tmp_path / "story.jsonl"
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in story))
    source = imported(str(tmp_path / "source.sqlite"), path)
    out = tmp_path / "export.jsonl"
    run(source, "export", "--out", str(out))
    exported = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert {record["type"] for record in exported} == {kind.type for kind in RECORD_TYPES}
    copy = imported(database_url, out)
    instants = ("2024-01-20T00:00:00Z", "2024-02-15T00:00:00Z", "2024-04-01T00:00:00Z", "2025-01-01T00:00:00Z")
    assert answers(copy, instants, lines=False) == answers(source, instants, lines=False)


def test_export_of_named_referrals_and_refusals(tmp_path: Path) -> None:
    url = imported(str(tmp_path / "l.sqlite"), WORKED)
    out = tmp_path / "one.jsonl"
    run(url, "export", "R-2024-0402", "--out", str(out))
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert {record["referral"] for record in records} == {"R-2024-0402"} and any("subject" in record for record in records)
    assert len(records) == len(answer(url, "show", "R-2024-0402")["events"])
    missing = tmp_path / "missing.jsonl"
    assert run(url, "export", "R-NOPE", "--out", str(missing), code=1).stderr == "Error: referral R-NOPE is not in the ledger\n"
    assert not missing.exists()
    printed = run(url, "export", "R-2024-0311", "--out", "-").stdout.splitlines()
    assert printed and all(orjson.loads(line)["referral"] == "R-2024-0311" for line in printed)


def test_every_import_type_has_an_event_class_to_export() -> None:
    assert {kind.type for kind in RECORD_TYPES} <= set(EVENT_TYPES.values())


# --- options after the command; completion; plurals ----------------------------------------------


def test_global_options_work_after_the_command(tmp_path: Path) -> None:
    url = imported(str(tmp_path / "l.sqlite"), WORKED)
    runner = CliRunner()
    after = runner.invoke(main, ["info", "--db", url], catch_exceptions=False)
    assert after.exit_code == 0 and "events: 50" in after.stdout
    as_json = runner.invoke(main, ["audit", "gaps", "--db", url, "--json"], catch_exceptions=False)
    assert json.loads(as_json.stdout)["rows"]
    global_json = runner.invoke(main, ["policy", "show", "--db", url, "--json"], catch_exceptions=False)
    assert "version" in json.loads(global_json.stdout)
    recorded = runner.invoke(
        main,
        ["note", "R-2024-0402", "--text", "Checked.", "--db", url, "--as", "P-1:analyst@U-OPS1"],
        catch_exceptions=False,
        env={"REFLEDGER_ACTOR": None},
    )
    assert recorded.exit_code == 0, recorded.output
    newest = max((e for e in answer(url, "show", "R-2024-0402")["events"] if e["stream"] == "R-2024-0402"), key=lambda e: e["version"])
    assert (newest["type"], newest["actor"]) == ("note_added", "P-1:analyst@U-OPS1")


def test_a_global_option_after_the_command_needs_its_value(tmp_path: Path) -> None:
    url = str(tmp_path / "l.sqlite")
    for args in (["referrals", "--db"], ["owner", "R-1", "--as"]):
        result = CliRunner().invoke(main, [*args], catch_exceptions=False, env={"REFLEDGER_DATABASE_URL": url})
        # a usage error, as for any option (exit 2), not a silent fall-back to the default ledger
        assert (result.exit_code, result.stderr.strip()) == (2, f"Error: Option '{args[-1]}' requires an argument."), result.output
    assert not (tmp_path / "l.sqlite").exists()


def test_completion_prints_a_script_for_each_shell() -> None:
    for shell, marker in (("bash", "complete -o"), ("zsh", "compdef"), ("fish", "complete --no-files")):
        result = CliRunner().invoke(main, ["completion", shell], catch_exceptions=False)
        assert result.exit_code == 0 and marker in result.stdout and "_REFLEDGER_COMPLETE" in result.stdout


def test_counts_of_one_are_singular(tmp_path: Path) -> None:
    url = str(tmp_path / "l.sqlite")
    path = tmp_path / "one.jsonl"
    path.write_bytes(orjson.dumps(orjson.loads(WORKED.read_bytes().splitlines()[0])) + b"\n")
    assert "Imported 1 event on 1 referral from" in run(url, "import", "--historical", str(path)).stdout
    assert "1 referral at" in run(url, "referrals").stdout


def test_report_straight_after_receive_sees_the_receipt(database_url: str) -> None:
    runner = CliRunner()
    env = {"REFLEDGER_ACTOR": "P-1:registry-officer@U-INTAKE"}
    received = [
        "--db",
        database_url,
        "receive",
        "R-NOW-1",
        "--originator",
        "X-FORCE",
        "--channel",
        "liaison",
        "--custodian-unit",
        "U-INTAKE",
    ]
    assert runner.invoke(main, received, catch_exceptions=False, env=env).exit_code == 0
    result = runner.invoke(
        main, ["--db", database_url, "report", "R-NOW-1", "--out", "-", "--format", "md", "--no-verify"], catch_exceptions=False, env=env
    )
    assert result.exit_code == 0, result.output
    assert "R-NOW-1" in result.stdout and "U-INTAKE" in result.stdout


def test_a_refusal_after_closure_names_the_closure_time(tmp_path: Path) -> None:
    url = imported(str(tmp_path / "l.sqlite"), WORKED)
    closed = next(orjson.loads(line) for line in WORKED.read_bytes().splitlines() if orjson.loads(line)["type"] == "closed")
    late = ["note", "R-2024-0311", "--text", "x"]  # a note is allowed on a closed referral; an offer is not
    assert run(url, *late, "--as", "P-1:analyst@U-OPS1").stdout
    refused = run(url, "offer", "R-2024-0311", "--to-unit", "U-OPS2", "--as", "P-1:team-manager@U-OPS1", code=1).stderr
    assert f"was closed at {closed['occurred_at']}" in refused, refused
    subject = run(url, "subject", "add", "R-2024-0311", "SUBJ-X", "--category", "suspect", "--as", "P-1:analyst@U-OPS1", code=1).stderr
    assert f"was closed at {closed['occurred_at']}" in subject, subject


def test_the_markdown_case_file_reads_cleanly(tmp_path: Path) -> None:
    # Given the demo story and a checkpoint of it
    from commands.demo import REFERENCE, story

    source = tmp_path / "story.jsonl"
    source.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in story()))
    url = imported(str(tmp_path / "l.sqlite"), source)
    key, point = tmp_path / "k.pem", tmp_path / "cp.json"
    run(url, "keygen", "--out", str(key))
    run(url, "checkpoint", "--key", str(key), "--out", str(point))
    # when the case file is written as Markdown
    text = run(url, "report", REFERENCE, "--out", "-", "--format", "md", "--checkpoint", str(point), "--public-key", f"{key}.pub").stdout
    # then the checkpoint is described once, details carry no stray separators, events read as words
    size = json.loads(point.read_text())["size"]
    assert sum(1 for line in text.splitlines() if line.startswith(("| Checkpoint", "- Checkpoint"))) == 1
    assert f"checkpoint of {size} events" in text
    assert not re.search(r"\|\s*;|;\s*\|", text), [line for line in text.splitlines() if re.search(r"\|\s*;|;\s*\|", line)]
    assert not re.search(r"v\d+ [a-z]+_[a-z_]+", text) and "ownership accepted" in text

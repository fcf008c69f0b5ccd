"""Sealed free text, legal holds, disposal and the consultation log, through the CLI as a user runs it.

The worked example is imported twice, with and without a ledger data key: every answer is
the same. Disposing of one referral leaves every structural answer, ``verify``, the old
checkpoint and the referral's proof bundle as they were, and its free text is nowhere in the
database (the SQLite file and its WAL, or PostgreSQL's table contents).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from ledger.storage import resolve_database
from tests.conftest import EXAMPLES, count_events, raw_execute

SOURCE = EXAMPLES / "cybertip.jsonl"
CLOSED = "R-2024-0311"
OPEN = "R-2024-0402"
RECORDS = "P-900:records-manager@U-RM"
#: the worked example's free text (every text, rationale, reason, progress, summary … of a line)
FREE_TEXT_FIELDS = ("text", "rationale", "reason", "progress", "summary", "issue", "statement", "action")

Run = Callable[..., Result]


def cli(url: str, *options: str) -> Run:
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, ["--db", url, *options, *args], catch_exceptions=False, env={"REFLEDGER_ACTOR": None})

    return run


def ok(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if result.stdout.lstrip().startswith(("{", "[")) else result.stdout


def refused(result: Result, *words: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def texts_of(referral: str) -> list[str]:
    """The free text the example gives for ``referral`` (long enough to search for)."""
    found = []
    for line in SOURCE.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("referral") == referral:
            found += [record[name] for name in FREE_TEXT_FIELDS if isinstance(record.get(name), str) and len(record[name]) >= 16]
    assert found
    return found


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "ledger-data.key"
    ok(cli(str(tmp_path / "unused.sqlite"))("keygen", "--data-key", "--out", str(path), "--json"))
    return path


@pytest.fixture
def sealed(database_url: str, key: Path) -> Run:
    run = cli(database_url, "--data-key", str(key))
    assert ok(run("import", "--historical", str(SOURCE), "--json"))["events"] == 45
    return run


def _without_clocks_of_this_ledger(answer: Any) -> Any:
    """An answer without what differs between two imports of the same file (when each ledger
    took the events in, the hashes over its own bytes, the file names, the login that inserted them)."""
    if isinstance(answer, dict):
        return {
            k: _without_clocks_of_this_ledger(v)
            for k, v in answer.items()
            if k not in ("at", "ingested_at", "hash", "prev_hash", "generated_at", "now", "stream_id", "source", "login")
        }
    if isinstance(answer, list):
        return [_without_clocks_of_this_ledger(v) for v in answer]
    return answer


STRUCTURAL = (
    ("owner", CLOSED, "--at", "2024-04-01T00:00:00Z"),
    ("owner", OPEN, "--at", "2024-04-20T00:00:00Z"),
    ("history", CLOSED, "--at", "2024-05-01T00:00:00Z"),
    ("history", OPEN, "--at", "2024-05-01T00:00:00Z"),
    ("obligations", OPEN, "--at", "2024-04-25T12:00:00Z"),
    ("obligations", CLOSED, "--at", "2024-03-30T12:00:00Z"),
    ("subjects", "list", OPEN, "--at", "2024-04-25T12:00:00Z"),
    ("package", OPEN, "--at", "2024-04-25T12:00:00Z"),
    ("audit", "gaps"),
    ("audit", "overdue", "--at", "2024-04-25T12:00:00Z"),
    ("audit", "late-entries"),
)
READING = (("timeline", CLOSED), ("timeline", OPEN), ("show", OPEN))


def test_the_worked_example_sealed_answers_exactly_as_without(database_url: str, sealed: Run, tmp_path: Path) -> None:
    plain = cli(str(tmp_path / "plain.sqlite"))
    ok(plain("import", "--historical", str(SOURCE), "--json"))
    for question in (*STRUCTURAL, *READING):
        want = _without_clocks_of_this_ledger(ok(plain(*question, "--json")))
        assert _without_clocks_of_this_ledger(ok(sealed(*question, "--json"))) == want, question
    # and the sealed ledger really holds ciphertext: the plain one holds the words, it does not
    words = texts_of(OPEN)
    assert all(word.encode() in _stored_bytes(str(tmp_path / "plain.sqlite")) for word in words)
    assert not any(word.encode() in _stored_bytes(database_url) for word in words)


def _stored_bytes(url: str) -> bytes:
    """Everything the database holds: the SQLite file and its WAL, or every row of every table
    of the schema as PostgreSQL writes it out (a bytea column in hex)."""
    database = resolve_database(url)
    if database.backend == "sqlite":
        path = Path(database.location)
        return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    tables = raw_execute(url, f"SELECT tablename FROM pg_tables WHERE schemaname = '{database.schema}'")
    dumped = [raw_execute(url, f'SELECT t::text FROM "{database.schema}"."{name}" t') for (name,) in tables]
    rows = [row[0] for table in dumped for row in table]
    key_rows = raw_execute(url, f"SELECT encode(wrapped, 'hex') FROM \"{database.schema}\".refledger_data_keys")
    return "\n".join(str(r) for r in rows + [k[0] for k in key_rows]).encode()


def _wrapped_key(url: str, referral: str) -> bytes:
    from ledger.values import referral_id

    database = resolve_database(url)
    table = "refledger_data_keys" if database.backend == "sqlite" else f'"{database.schema}".refledger_data_keys'
    rows = raw_execute(url, f"SELECT wrapped FROM {table} WHERE key_id = '{referral_id(referral).hex}'")
    return bytes(rows[0][0]) if rows else b""  # type: ignore[arg-type]


def test_disposal_keeps_every_structural_answer_and_the_proof_and_leaves_no_plaintext(
    database_url: str, sealed: Run, tmp_path: Path
) -> None:
    signing = tmp_path / "checkpoint-key.pem"
    ok(sealed("keygen", "--out", str(signing), "--json"))
    checkpoint = tmp_path / "before.json"
    ok(sealed("checkpoint", "--key", str(signing), "--out", str(checkpoint), "--json"))
    proof_before = tmp_path / "before.proof.json"
    ok(sealed("proof", CLOSED, "--out", str(proof_before), "--json"))
    before = {question: ok(sealed(*question, "--json")) for question in STRUCTURAL}
    wrapped = _wrapped_key(database_url, CLOSED)
    assert len(wrapped) == 40
    hex_wrapped = wrapped.hex().encode()
    stored = _stored_bytes(database_url)
    assert wrapped in stored or hex_wrapped in stored  # the search below can find it

    ok(sealed("dispose", CLOSED, "--reason", "Retention review", "--as", RECORDS, "--json"))

    for question, answer in before.items():
        assert ok(sealed(*question, "--json")) == answer, question
    assert ok(sealed("verify", "--json"))["ok"] is True
    assert ok(sealed("verify", "--checkpoint", str(checkpoint), "--public-key", f"{signing}.pub", "--json"))["ok"] is True
    assert ok(sealed("verify-proof", str(proof_before), "--public-key", f"{signing}.pub", "--json"))["ok"] is True
    proof_after = tmp_path / "after.proof.json"
    ok(sealed("proof", CLOSED, "--out", str(proof_after), "--json"))
    assert proof_after.read_bytes() == proof_before.read_bytes()  # the bundle is unchanged
    stored = _stored_bytes(database_url)
    for text in texts_of(CLOSED):  # as bytes, and as PostgreSQL writes a bytea (the events' state) out in hex
        assert text.encode() not in stored and text.encode().hex().encode() not in stored
    assert wrapped not in stored and hex_wrapped not in stored  # the referral's key is really gone
    assert _wrapped_key(database_url, OPEN)  # the other referral keeps its key

    timeline = ok(sealed("timeline", CLOSED, "--json"))["events"]
    closing = next(row for row in timeline if row["type"] == "closed")
    assert closing["summary"].startswith("Closed: [disposed ") and "by P-900:records-manager@U-RM]" in closing["summary"]
    assert any("Free text disposed of" in row["summary"] for row in timeline)
    exported = tmp_path / "after.jsonl"
    ok(sealed("export", CLOSED, "--out", str(exported), "--json"))
    assert not any(text in exported.read_text() for text in texts_of(CLOSED))
    # the open referral reads as before
    shown = json.dumps(ok(sealed("show", OPEN, "--json")))
    assert all(json.dumps(text)[1:-1] in shown for text in texts_of(OPEN))


def test_a_hold_blocks_disposal_and_its_release_allows_it_both_in_the_timeline(database_url: str, sealed: Run) -> None:
    ok(sealed("hold", "place", CLOSED, "--reason", "Inquiry OP-7", "--as", RECORDS, "--json"))
    refused(sealed("hold", "place", CLOSED, "--reason", "again", "--as", RECORDS), "one-hold")
    assert [row["referral"] for row in ok(sealed("hold", "list", "--json"))["holds"]] == [CLOSED]
    events = count_events(database_url)
    refused(sealed("dispose", CLOSED, "--reason", "Review", "--as", RECORDS), "dispose-not-on-hold", "Inquiry OP-7")
    assert count_events(database_url) == events and _wrapped_key(database_url, CLOSED)
    ok(sealed("hold", "release", CLOSED, "--reason", "Inquiry OP-7 concluded", "--as", RECORDS, "--json"))
    assert ok(sealed("hold", "list", "--json"))["holds"] == []
    ok(sealed("dispose", CLOSED, "--reason", "Review", "--as", RECORDS, "--json"))
    summaries = [row["summary"] for row in ok(sealed("timeline", CLOSED, "--json"))["events"]]
    assert "records file: Legal hold placed: Inquiry OP-7" in summaries
    assert "records file: Legal hold released: Inquiry OP-7 concluded" in summaries
    refused(sealed("dispose", CLOSED, "--reason", "Again", "--as", RECORDS), "disposed-once")
    refused(sealed("hold", "place", CLOSED, "--reason", "late", "--as", RECORDS), "disposed-once")


def test_bad_input_is_one_line_and_changes_nothing(database_url: str, sealed: Run, key: Path, tmp_path: Path) -> None:
    events, wrapped = count_events(database_url), _wrapped_key(database_url, CLOSED)
    refused(sealed("dispose", OPEN, "--reason", "Review", "--as", RECORDS), "dispose-closed-only")
    refused(sealed("dispose", CLOSED, "--reason", "Review", "--as", "P-107:team-manager@U-LIAISON"), "authority-dispose")
    refused(sealed("hold", "release", CLOSED, "--reason", "none", "--as", RECORDS), "no hold is in force")
    refused(sealed("dispose", "R-NOPE", "--reason", "Review", "--as", RECORDS), "not in the ledger")
    other = tmp_path / "other.key"
    ok(cli(database_url)("keygen", "--data-key", "--out", str(other), "--json"))
    refused(cli(database_url, "--data-key", str(other))("timeline", OPEN), f"the data key {other} is not this ledger's key")
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key\n")
    refused(cli(database_url, "--data-key", str(garbage))("timeline", OPEN), str(garbage))
    refused(cli(database_url, "--data-key", str(tmp_path / "missing.key"))("timeline", OPEN), "missing.key")
    keyless = cli(database_url)
    refused(keyless("note", OPEN, "--text", "x", "--as", "P-107:team-manager@U-LIAISON"), "data-key-required")
    refused(keyless("dispose", CLOSED, "--reason", "Review", "--as", RECORDS), "data-key-required")
    assert count_events(database_url) == events and _wrapped_key(database_url, CLOSED) == wrapped
    # without the key: every structural answer, and free text withheld
    assert ok(keyless("owner", OPEN, "--at", "2024-04-20T00:00:00Z", "--json")) == ok(
        sealed("owner", OPEN, "--at", "2024-04-20T00:00:00Z", "--json")
    )
    assert ok(keyless("verify", "--json"))["ok"] is True
    summaries = [row["summary"] for row in ok(keyless("timeline", OPEN, "--json"))["events"]]
    assert any("[withheld: no data key]" in s for s in summaries)
    shown = json.dumps(ok(keyless("show", OPEN, "--json")))
    assert "[withheld: no data key]" in shown and not any(json.dumps(text)[1:-1] in shown for text in texts_of(OPEN))
    # a ledger started without a key stays unsealed, and disposal there is refused
    plain = cli(str(tmp_path / "plain.sqlite"))
    ok(plain("import", "--historical", str(SOURCE), "--json"))
    refused(
        cli(str(tmp_path / "plain.sqlite"), "--data-key", str(key))("note", OPEN, "--text", "x", "--as", "P-107:team-manager@U-LIAISON"),
        "data-key-from-start",
    )
    refused(plain("dispose", CLOSED, "--reason", "Review", "--as", RECORDS), "dispose-sealed-only")


def test_the_consultation_log_says_who_read_the_free_text_and_when(database_url: str, sealed: Run, key: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[records]\nconsultation_log = true\n")
    logged = cli(database_url, "--data-key", str(key), "--policy", str(policy))
    before = ok(logged("audit", "consultations", OPEN, "--json"))["consultations"]
    assert before == []
    refused(logged("timeline", OPEN), "consultation log", "--as")
    ok(logged("timeline", OPEN, "--as", "P-500:investigator@U-PSD", "--json"))
    ok(logged("show", OPEN, "--as", "P-501:investigator@U-PSD", "--json"))
    ok(logged("owner", OPEN, "--json"))  # structural: no free text, no consultation
    rows = ok(logged("audit", "consultations", OPEN, "--json"))["consultations"]
    assert [(row["who"], row["what"]) for row in rows] == [
        ("P-500:investigator@U-PSD", "timeline"),
        ("P-501:investigator@U-PSD", "show"),
    ]
    assert ok(logged("audit", "consultations", CLOSED, "--json"))["consultations"] == []
    assert ok(logged("verify", "--json"))["ok"] is True
    # the consultations are chained events: the other referral's answers do not move
    at = ("--at", "2024-05-01T00:00:00Z")
    assert ok(logged("history", OPEN, *at, "--json")) == ok(sealed("history", OPEN, *at, "--json"))


def test_retention_due_lists_closed_referrals_after_the_review_period(sealed: Run, tmp_path: Path) -> None:
    due = ok(sealed("retention", "due", "--at", "2030-04-10T00:00:00Z", "--json"))["rows"]
    assert [(row["referral"], row["review_due"]) for row in due] == [(CLOSED, "2030-04-09T16:00:00Z")]
    assert ok(sealed("retention", "due", "--at", "2030-04-09T00:00:00Z", "--json"))["rows"] == []
    policy = tmp_path / "policy.toml"
    policy.write_text("[records]\nreview_after_years = 1\n")
    assert [r["referral"] for r in ok(sealed("--policy", str(policy), "retention", "due", "--at", "2025-05-01", "--json"))["rows"]] == [
        CLOSED
    ]
    csv = sealed("retention", "due", "--at", "2030-04-10", "--csv")
    assert csv.exit_code == 0 and csv.stdout.splitlines()[0].startswith("referral,review_due")

"""``refledger report`` as a user runs it: the case file's numbers equal the query answers.

The ledger holds the demo's story (R-2012-0716: a 16-month gap, a disputed claim, a late
acceptance, a DEFER whose revisit passed), imported as a migration would.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from cli import main
from commands.demo import REFERENCE, story

STATUSES = ("met", "breached", "open-overdue", "open-not-due")


def run(url: str, *args: str, code: int = 0, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False, env={"REFLEDGER_ACTOR": None, **(env or {})})
    assert result.exit_code == code, result.output
    return result


def answer(url: str, *args: str) -> Any:
    return json.loads(run(url, *args, "--json").stdout)


def imported(url: str, folder: Path) -> str:
    source = folder / "story.jsonl"
    source.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in story()))
    run(url, "import", "--historical", str(source))
    return url


@pytest.fixture
def db(tmp_path: Path) -> str:
    return imported(str(tmp_path / "ledger.sqlite"), tmp_path)


def shown(html: str) -> dict[str, str]:
    """The summary's figures as the page shows them (elements marked data-summary)."""
    return {name: value.strip() for name, value in re.findall(r'data-summary="([\w-]+)"[^>]*>([^<]*)<', html)}


def tallies(html: str) -> dict[str, tuple[int, int]]:
    rows = re.findall(r'<tr data-rule="([\w-]+)">.*?data-breached="(\d+)".*?data-overdue="(\d+)"', html)
    return {rule: (int(breached), int(overdue)) for rule, breached, overdue in rows}


def expected(url: str, at: str, known: str | None = None) -> dict[str, Any]:
    """What the queries answer for the same instant and knowledge."""
    knowledge = ["--as-known-at", known] if known else []
    owner = answer(url, "owner", REFERENCE, "--at", at, *knowledge)
    history = answer(url, "history", REFERENCE, "--at", at, *knowledge)
    # the case file judges obligations as known at K: hindsight when K is now, as known then when K is T
    hindsight = [] if known == at else ["--as-known-now"]
    assert known in (None, at), "the obligations query can answer as known now or as known at T"
    obligations = answer(url, "obligations", REFERENCE, "--at", at, *hindsight)["obligations"]
    timeline = answer(url, "timeline", REFERENCE, *knowledge)["events"]
    late = [row for row in timeline if row["late"] and row["occurred_at"] <= at]
    return {
        "owner": owner["owner"]["unit"] if owner["owner"] else "nobody",
        "custodian": owner["custodian"]["unit"],
        "status": owner["status"],
        "unowned_days": f"{history['totals']['unowned_days']:.2f}",
        "gaps": str(len(history["gaps"])),
        "breached": str(sum(1 for o in obligations if o["status"] == "breached")),
        "open-overdue": str(sum(1 for o in obligations if o["status"] == "open-overdue")),
        "late_entries": str(len(late)),
        "needing_attestation": str(sum(1 for row in late if row["needs_attestation"])),
        "disputed_claims": str(len(owner["disputed_claims"])),
        "tallies": {
            rule: (
                sum(1 for o in obligations if o["rule"] == rule and o["status"] == "breached"),
                sum(1 for o in obligations if o["rule"] == rule and o["status"] == "open-overdue"),
            )
            for rule in {o["rule"] for o in obligations}
        },
    }


@pytest.mark.parametrize(
    ("at", "known"),
    [
        ("2012-09-01T12:00:00Z", "2012-09-01T12:00:00Z"),  # what a supervisor could have seen that day
        ("2013-11-25T12:00:00Z", "2013-11-25T12:00:00Z"),  # before the late acceptance was entered
        ("2013-11-25T12:00:00Z", None),  # the same instant in hindsight
        ("2014-03-01T00:00:00Z", None),
    ],
)
def test_the_summary_equals_the_query_answers(database_url: str, tmp_path: Path, at: str, known: str | None) -> None:
    url = imported(database_url, tmp_path)
    out = tmp_path / "case-file.html"
    knowledge = ["--as-known-at", known] if known else []

    printed = answer(url, "report", REFERENCE, "--at", at, *knowledge, "--out", str(out))
    html = out.read_text(encoding="utf-8")
    figures = shown(html)
    wanted = expected(url, at, known)

    assert {name: figures[name] for name in wanted if name != "tallies"} == {k: v for k, v in wanted.items() if k != "tallies"}
    assert tallies(html) == wanted["tallies"]
    summary = printed["summary"]
    assert summary["unowned_days"] == float(wanted["unowned_days"])
    assert summary["obligations"]["breached"] == int(wanted["breached"])
    assert summary["owner"] == (None if wanted["owner"] == "nobody" else summary["owner"])
    assert printed["out"] == str(out) and printed["format"] == "html" and printed["pdf"] is None
    assert printed["bytes"] == len(html.encode())


def test_the_demo_story_reads_as_the_inquiry_found_it(db: str, tmp_path: Path) -> None:
    out = tmp_path / "case-file.html"
    summary = answer(db, "report", REFERENCE, "--at", "2014-03-01T00:00:00Z", "--out", str(out))["summary"]

    assert summary["owner"] == {"unit": "U-OPSB", "person": "P-042", "since": "2013-11-22T09:00:00Z"}
    assert summary["unowned_days"] == 493.99 and summary["gaps"] == 1
    assert summary["disputed_claims"] == 1
    assert (summary["late_entries"], summary["needing_attestation"]) == (2, 1)
    assert summary["breaches_by_rule"]["deferred-revisit"] == {"breached": 1, "open-overdue": 0}
    assert summary["verification"]["ok"] is True and summary["verification"]["checkpoint"] is None
    html = out.read_text(encoding="utf-8")
    assert "NO OWNER · 493.99 days" in html
    assert "Ledger verified" in html


def test_the_command_prints_where_it_wrote_the_file(db: str, tmp_path: Path) -> None:
    out = tmp_path / "case-file.html"

    result = run(db, "report", REFERENCE, "--at", "2014-03-01T00:00:00Z", "--out", str(out))

    assert result.stdout.splitlines()[0] == f"Wrote the case file of {REFERENCE} to {out}"
    assert "493.99 days unowned in 1 gap; " in result.stdout
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_markdown_by_suffix_by_option_and_to_standard_output(db: str, tmp_path: Path) -> None:
    by_suffix = tmp_path / "case-file.md"
    run(db, "report", REFERENCE, "--at", "2014-03-01T00:00:00Z", "--out", str(by_suffix))
    by_option = tmp_path / "case-file.txt"
    run(db, "report", REFERENCE, "--at", "2014-03-01T00:00:00Z", "--out", str(by_option), "--format", "md")
    printed = run(db, "report", REFERENCE, "--at", "2014-03-01T00:00:00Z", "--out", "-", "--format", "md").stdout

    text = by_suffix.read_text(encoding="utf-8")
    assert text.startswith(f"# Case file {REFERENCE}\n")
    assert "| Days unowned | **493.99** in 1 gap(s)" in text
    # the same document each way (generated_at is the only thing that may differ)
    same = re.compile(r"generated \S+")
    assert same.sub("", by_option.read_text(encoding="utf-8")) == same.sub("", text) == same.sub("", printed)


def test_a_checkpoint_file_is_named_with_its_signature(db: str, tmp_path: Path) -> None:
    key, point = tmp_path / "auditor.key", tmp_path / "checkpoint.json"
    run(db, "keygen", "--out", str(key))
    run(db, "checkpoint", "--key", str(key), "--out", str(point))
    out = tmp_path / "case-file.html"

    verification = answer(db, "report", REFERENCE, "--out", str(out), "--checkpoint", str(point), "--public-key", str(key) + ".pub")[
        "summary"
    ]["verification"]

    stored = json.loads(point.read_text())
    assert verification["ok"] is True
    assert verification["checkpoint"] == {
        "source": "file",
        "size": stored["size"],
        "root": stored["root"],
        "time": stored["time"],
        "signed": True,
        "signature_status": "valid",
        "holds": True,
    }
    html = out.read_text(encoding="utf-8")
    assert stored["root"] in html and "valid, for the public key given" in html


def test_the_newest_stored_checkpoint_is_named_when_no_file_is_given(db: str, tmp_path: Path) -> None:
    made = answer(db, "checkpoint")["checkpoint"]
    checkpoint = answer(db, "report", REFERENCE, "--out", str(tmp_path / "r.html"))["summary"]["verification"]["checkpoint"]

    assert checkpoint == {
        "source": "database",
        "size": made["size"],
        "root": made["root"],
        "time": made["time"],
        "signed": False,
        "signature_status": "unsigned",
        "holds": True,
    }


def test_no_verify_says_the_ledger_was_not_checked(db: str, tmp_path: Path) -> None:
    out = tmp_path / "case-file.html"
    verification = answer(db, "report", REFERENCE, "--no-verify", "--out", str(out))["summary"]["verification"]

    assert verification["checked"] is False and verification["ok"] is None
    assert "Not verified" in out.read_text(encoding="utf-8")


def test_a_ledger_that_does_not_verify_still_gets_its_case_file_and_exit_3(db: str, tmp_path: Path) -> None:
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("DROP TRIGGER IF EXISTS stored_events_no_delete")
    connection.execute("DELETE FROM stored_events WHERE rowid = 3")
    connection.close()
    out = tmp_path / "case-file.html"

    result = run(db, "report", REFERENCE, "--out", str(out), code=3)

    assert "Verification failed" in result.output and "the case file says so" in result.output
    html = out.read_text(encoding="utf-8")
    assert 'data-summary="verification">Verification failed<' in html


def test_pdf_without_chromium_is_one_clear_error(db: str, tmp_path: Path) -> None:
    result = run(
        db, "report", REFERENCE, "--pdf", str(tmp_path / "c.pdf"), code=1, env={"REFLEDGER_CHROMIUM": str(tmp_path / "no-such-chromium")}
    )

    assert result.output.startswith("Error: --pdf needs headless Chromium and none was found")
    assert "Traceback" not in result.output and not (tmp_path / "c.pdf").exists()


def test_errors_are_one_line(db: str, tmp_path: Path) -> None:
    assert "Error: say where to write the case file" in run(db, "report", REFERENCE, code=2).output
    assert run(db, "report", "R-NOPE", "--out", str(tmp_path / "x.html"), code=1).output == "Error: referral R-NOPE is not in the ledger\n"
    before = run(db, "report", REFERENCE, "--at", "2012-01-01T00:00:00Z", "--out", str(tmp_path / "x.html"), code=1).output
    assert (
        before.startswith("Error: R-2012-0716 was received at 2012-07-16T09:10:00Z") and before.count("\n") == 1 and before.endswith("\n")
    )
    missing = run(db, "report", REFERENCE, "--out", str(tmp_path / "no-such-folder" / "x.html"), code=1).output
    assert missing.startswith("Error: cannot write")


def test_help_ends_with_examples(db: str) -> None:
    text = run(db, "report", "--help").output

    example = text[text.index("Example:") :].splitlines()
    assert example[1].strip() == "refledger report R-2012-0716 --out case-file.html"


def test_the_demo_writes_the_case_file_and_prints_its_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path)], catch_exceptions=False, env={"REFLEDGER_ACTOR": None})

    assert result.exit_code == 0, result.output
    page = tmp_path / "case-file.html"
    assert f"Wrote the case file of {REFERENCE} to {page}" in result.output
    html = page.read_text(encoding="utf-8")
    assert "Ledger verified" in html and "NO OWNER · 493.99 days" in html


def _checkpoint_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"^(- |\| )Checkpoint\b", line)]


def test_the_markdown_prints_the_checkpoint_line_once_and_no_stray_separator(staffed: str) -> None:
    db = staffed
    without = run(db, "report", REFERENCE, "--at", "2014-03-01T00:00:00Z", "--out", "-", "--format", "md").stdout
    assert _checkpoint_lines(without) == ["- Checkpoint: none"]
    run(db, "checkpoint")
    with_one = run(db, "report", REFERENCE, "--at", "2014-03-01T00:00:00Z", "--out", "-", "--format", "md").stdout
    [line] = _checkpoint_lines(with_one)
    assert line.startswith("- Checkpoint (database): ")
    for text in (without, with_one):
        assert "## Accountable people" in text and "; " in text
        for row in text.splitlines():
            assert not re.search(r";\s*\||\|\s*;|;\s*;|\(\s*;|;\s*\)|;\s*$|^\s*;", row), row


def test_the_chart_shows_the_accountable_people_beside_the_units(staffed: str, tmp_path: Path) -> None:
    db, out = staffed, tmp_path / "case-file.html"
    run(db, "report", REFERENCE, "--at", "2014-03-01T00:00:00Z", "--out", str(out))
    html = out.read_text(encoding="utf-8")
    accountable = answer(db, "accountable", REFERENCE, "--at", "2013-01-01T00:00:00Z")  # inside the long gap

    drawn = re.findall(r'<g class="person (owner|gap)" data-person="([\w-]+)"><title>([^<]*)</title>', html)
    assert drawn, "no accountable person on the chart"
    answering = {p["person"] for p in accountable["answering_while_unowned"]}
    assert answering and answering <= {person for kind, person, _ in drawn if kind == "gap"}
    assert {person for kind, person, _ in drawn if kind == "owner"}, "nobody drawn under the owner's bar"
    assert '<text class="lane-name" x="6"' in html and ">Accountable</text>" in html
    assert 'data-legend="person"' in html

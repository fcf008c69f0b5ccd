"""Fuzzing the command line: whatever the input, exit 0, or one line ``Error:`` with exit 1,
and nothing recorded on a refusal. Bounded (a few dozen cases per property) for CI."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import main
from tests.conftest import count_events

INTAKE = "P-01:registry-officer@U-INTAKE"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
RUNS: dict[str, int] = {}

# removed with its ledger when the test run ends (its finaliser runs at exit)
_DIR_HELD = tempfile.TemporaryDirectory(prefix="refledger-fuzz-")
_DIR = Path(_DIR_HELD.name)
DB = str(_DIR / "fuzz.sqlite")

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
instants = st.sampled_from(["2024-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-13-01", "", "now"])


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["--db", DB, *args], catch_exceptions=False, env={"REFLEDGER_ACTOR": None, "REFLEDGER_DEBUG": None})


def check(result: Any, before: int, what: str) -> None:
    RUNS[what] = RUNS.get(what, 0) + 1
    assert result.exit_code in (0, 1), (result.exit_code, result.output)
    if result.exit_code == 1:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert count_events(DB) == before


@FUZZ
@given(
    record=st.fixed_dictionaries(
        {"type": st.sampled_from(["received", "note_added", "ownership_offered", "subject_extracted"]) | json_values},
        optional={
            "referral": text | json_values,
            "occurred_at": instants | json_values,
            "recorded_at": instants | json_values,
            "actor": st.just({"person": "P-1", "role": "r", "unit": "U-1"}) | json_values,
            "text": json_values,
            "originator": text,
            "channel": text,
            "custodian_unit": text,
            "to_unit": json_values,
            "subject": json_values,
        },
    ),
    historical=st.booleans(),
)
def test_fuzzed_import_lines(record: dict[str, Any], historical: bool) -> None:
    path = _DIR / "line.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    before = count_events(DB) if Path(DB).exists() else 0
    check(invoke("import", *(["--historical"] if historical else []), str(path)), before, "import lines")


@FUZZ
@given(referral=text, at=instants | text, note=text, actor=st.just(INTAKE) | text)
def test_fuzzed_record_arguments(referral: str, at: str, note: str, actor: str) -> None:
    before = count_events(DB) if Path(DB).exists() else 0
    args = ["--as", actor, "note", referral, "--text", note, "--at", at]
    if not referral or referral.startswith("-") or not note or note.startswith("-") or at.startswith("-") or actor.startswith("-"):
        return  # click takes these as options: not what this property is about
    check(invoke(*args), before, "record arguments")


@FUZZ
@given(document=json_values)
def test_fuzzed_checkpoint_and_proof_files(document: Any) -> None:
    path = _DIR / "file.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    before = count_events(DB) if Path(DB).exists() else 0
    check(invoke("verify-proof", str(path)), before, "proof files")


def teardown_module() -> None:
    print(f"\nfuzz cases run: {RUNS} (total {sum(RUNS.values())})")

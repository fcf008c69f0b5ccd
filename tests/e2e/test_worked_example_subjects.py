"""The worked example's subject positions (cybertip_expected.json, ``subject_state``), through
the CLI on each backend: ``subjects list REF --at T --json`` after ``import --historical``."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from cli import main
from tests.conftest import EXAMPLES

EXPECTED = json.loads((EXAMPLES / "cybertip_expected.json").read_text(encoding="utf-8"))
# each state names the one thing that says where the subject is
DETAIL = {"with_referral_owner": "owner", "in_transit": "force", "with_force": "force", "closed": "outcome"}


def run(url: str, *args: str) -> Any:
    result = CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_every_subject_is_where_the_worked_example_says(database_url: str) -> None:
    run(database_url, "import", "--historical", str(EXAMPLES / "cybertip.jsonl"))
    checked = 0
    for reference, answers in EXPECTED["referrals"].items():
        for expected in answers.get("subject_state", []):
            args = ["subjects", "list", reference, "--at", expected["at"], "--json"]
            if expected["as_known_at"]:
                args += ["--as-known-at", expected["as_known_at"]]
            answer = json.loads(run(database_url, *args))
            assert answer["referral_owner"] == expected["referral_owner"], expected["at"]
            found = {}
            for row in answer["subjects"]:
                detail = DETAIL[row["state"]]
                found[row["subject"]] = {"state": row["state"], detail: row[detail]}
            assert found == expected["subjects"], expected["at"]
            checked += len(found)
    assert checked == 8  # 4 subjects at 2 instants

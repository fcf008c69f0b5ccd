"""The worked example (tests/data/worked_example/cybertip.jsonl) end to end through the CLI, on each backend.

Every answer in ``cybertip_expected.json`` is checked by running the command its
``meta.queries`` names against a fresh ledger that imported the file with ``--historical``.
One test function per block of the expected file, so each block fails on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, json_cli

SOURCE = EXAMPLES / "cybertip.jsonl"
#: days are rounded to 2 decimals in the expected file and in the answers.
DAYS_TOLERANCE = 0.01

Ask = Callable[..., Any]


@pytest.fixture(params=["plain", "sealed"])
def ask(database_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Ask:
    """A ledger holding the imported example; ``ask(*args)`` runs a query with --json and parses it.

    "sealed": the same with a ledger data key from the first event on, which must answer
    exactly as without one.
    """
    options: tuple[str, ...] = ()
    if request.param == "sealed":
        key = tmp_path / "ledger-data.key"
        json_cli(database_url)("keygen", "--data-key", "--out", str(key), "--json")
        options = ("--data-key", str(key))
    run = json_cli(database_url, *options)
    imported = run("import", "--historical", str(SOURCE), "--json")
    assert imported["events"] == 45
    return lambda *args: run(*args, "--json")


def referrals(expected: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return sorted(expected["referrals"].items())


# --- ownership (refledger owner / history) ------------------------------------------------


def ownership_view(answer: dict[str, Any]) -> dict[str, Any]:
    """An ``owner --json`` answer in the shape of the expected file."""
    owner = answer["owner"]
    return {
        "as_known_at": answer["as_known_at"],
        "at": answer["at"],
        "custodian": answer["custodian"]["unit"],
        "disputed_claims": [
            {key: claim[key] for key in ("by", "claim", "line", "occurred_at", "recorded_at")} for claim in answer["disputed_claims"]
        ],
        "open_offers": [] if answer["open_offer"] is None else [answer["open_offer"]["to_unit"]],
        "owner": None if owner is None else owner["unit"],
        "owner_person": None if owner is None else owner["person"],
        "status": answer["status"],
    }


def owner_answer(ask: Ask, reference: str, case: dict[str, Any]) -> dict[str, Any]:
    known = ["--as-known-at", case["as_known_at"]] if case["as_known_at"] else []
    return ownership_view(ask("owner", reference, "--at", case["at"], *known))


def test_ownership_as_known_now(ask: Ask, expected: dict[str, Any]) -> None:
    for reference, blocks in referrals(expected):
        for case in blocks["ownership_as_known_now"]:
            assert owner_answer(ask, reference, case) == case, f"{reference} at {case['at']}"


def test_ownership_as_known_at(ask: Ask, expected: dict[str, Any]) -> None:
    for reference, blocks in referrals(expected):
        for pair in blocks["ownership_as_known_at"]:
            for case in pair:
                assert owner_answer(ask, reference, case) == case, f"{reference} at {case['at']} as known at {case['as_known_at']}"


def test_ownership_gaps(ask: Ask, expected: dict[str, Any]) -> None:
    # `audit gaps` lists the same gaps for every referral; here each referral's history shows them.
    for reference, blocks in referrals(expected):
        gaps = ask("history", reference)["gaps"]
        want = blocks["ownership_gaps"]
        assert [(g["start"], g["end"], g["closed_by"] and g["closed_by"]["line"]) for g in gaps] == [
            (w["start"], w["end"], w["ended_by_line"]) for w in want
        ], reference
        for got, wanted in zip(gaps, want, strict=True):
            assert got["days"] == pytest.approx(wanted["days"], abs=DAYS_TOLERANCE), f"{reference} gap from {wanted['start']}"

"""The morning page (``report --portfolio``) in a real browser, and its numbers against the queries."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from projections.report import SCREEN_SIZE, screenshot
from tests.e2e.test_looking_cli import answer, generated_story, run
from tests.e2e.test_report_browser import GAP_STRIPE, chromium, near, pixels

__all__ = ["chromium"]

AT = "2024-02-20T00:00:00Z"
#: the age bands' colours (young to old) and the overdue bars' red
AGE_BAND = (49, 130, 189)
OVERDUE_RED = (180, 35, 24)


def _generated(url: str, tmp_path: Path) -> str:
    path = tmp_path / "story.jsonl"
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in generated_story(24, seed=13)))
    run(url, "import", "--historical", str(path))
    return url


@pytest.fixture
def db(tmp_path: Path) -> str:
    return _generated(str(tmp_path / "ledger.sqlite"), tmp_path)


@pytest.fixture
def each_db(database_url: str, tmp_path: Path) -> str:
    return _generated(database_url, tmp_path)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def expected(url: str, at: str) -> dict[str, Any]:
    """The page's numbers, as the portfolio queries answer them at ``at`` (as known then)."""
    listed = answer(url, "referrals", "--at", at)["rows"]
    opened = [row for row in listed if row["status"] == "open"]
    gaps = answer(url, "audit", "gaps", "--as-known-at", at)["rows"]
    overdue = answer(url, "audit", "overdue", "--at", at)["rows"]
    late = answer(url, "audit", "late-entries")["rows"]
    by_rule: dict[str, int] = {}
    for row in overdue:
        by_rule[row["rule"]] = by_rule.get(row["rule"], 0) + 1
    backlog = answer(url, "backlog", "--at", at)["rows"]
    assert sum(row["open_referrals"] for row in backlog) == len(opened)
    return {
        "open_referrals": len(opened),
        "unowned": sum(1 for row in opened if row["owner_unit"] is None),
        "running_gaps": sum(1 for gap in gaps if gap["end"] is None or _instant(gap["end"]) > _instant(at)),
        "overdue": len(overdue),
        "overdue_by_rule": by_rule,
        "awaiting_attestation": sum(1 for row in late if row["needs_attestation"] and _instant(row["recorded_at"]) <= _instant(at)),
    }


def test_the_morning_page_numbers_equal_the_query_answers(each_db: str, tmp_path: Path) -> None:
    db = each_db
    for at in (AT, "2024-01-10T00:00:00Z", "2025-01-01T00:00:00Z"):
        page = tmp_path / f"morning-{at[:10]}.html"
        summary = json.loads(run(db, "report", "--portfolio", "--at", at, "--out", str(page), "--json").stdout)["summary"]
        want = expected(db, at)
        assert {key: summary[key] for key in want} == want, at
        html = page.read_text()
        for name, key in (
            ("open", "open_referrals"),
            ("unowned", "unowned"),
            ("gaps", "running_gaps"),
            ("overdue", "overdue"),
            ("late", "awaiting_attestation"),
        ):
            assert f'id="n-{name}">{want[key]}<' in html
        sections = re.findall(r'<section id="(\w+)">(.*?)</section>', html, re.S)
        assert [name for name, _ in sections] == ["backlog", "gaps", "overdue", "late"]
        assert all('<svg class="chart"' in body for _, body in sections), "a chart in every section"
        assert "<script" not in html and "http" not in html.split("</head>")[1]


def test_the_morning_page_refuses_what_it_cannot_do(db: str) -> None:
    assert "leave out REFERRAL" in run(db, "report", "R-GEN-0001", "--portfolio", "--out", "-", code=2).output
    assert "--format md" in run(db, "report", "--portfolio", "--format", "md", "--out", "-", code=2).output
    assert "name the REFERRAL" in run(db, "report", "--out", "-", code=2).output


@pytest.mark.browser
def test_the_morning_page_renders_with_its_charts(chromium: str, db: str, tmp_path: Path) -> None:
    page, png = tmp_path / "morning.html", tmp_path / "morning.png"
    run(db, "report", "--portfolio", "--at", AT, "--out", str(page))

    size = (SCREEN_SIZE[0], SCREEN_SIZE[1] * 2)  # two A4 screens: every section is in the picture
    screenshot(page, png, size, scale=0.5)

    width, height, found = pixels(png.read_bytes())
    assert (width, height) == (size[0] // 2, size[1] // 2)
    inked = sum(1 for colour in found if colour != (255, 255, 255))
    assert inked / len(found) > 0.05, f"the page is nearly blank: {inked} of {len(found)} pixels are not white"
    assert sum(1 for colour in found if near(colour, AGE_BAND)) > 200, "the backlog's age bands are not on the page"
    assert sum(1 for colour in found if near(colour, GAP_STRIPE)) > 300, "the running gaps' bars are not on the page"
    assert sum(1 for colour in found if near(colour, OVERDUE_RED)) > 100, "the overdue bars are not on the page"


@pytest.mark.browser
def test_the_morning_page_prints_to_pdf(chromium: str, db: str, tmp_path: Path) -> None:
    pdf = tmp_path / "morning.pdf"
    output = run(db, "report", "--portfolio", "--at", AT, "--pdf", str(pdf)).stdout
    assert f"Wrote the morning page to {pdf}" in output
    assert pdf.read_bytes().startswith(b"%PDF-")

"""The case file in a real browser: headless Chromium renders it to a PNG and prints it to PDF.

Needs Chromium (Debian package ``chromium``; ``.ci/run`` installs it). In CI (CI=true) a
missing Chromium fails these tests; elsewhere they are skipped, saying why.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from cli import main
from commands.demo import REFERENCE, story
from projections.report import SCREEN_SIZE, find_chromium, screenshot

pytestmark = pytest.mark.browser

AT = "2014-03-01T00:00:00Z"
#: the darker stripe of the gap's hatching (#f29a5c) and the first unit's colour (#3565a8)
GAP_STRIPE = (242, 154, 92)
FIRST_UNIT = (53, 101, 168)


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found is None:
        message = "headless Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def db(tmp_path: Path) -> str:
    source = tmp_path / "story.jsonl"
    source.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in story()))
    url = str(tmp_path / "ledger.sqlite")
    run(url, "import", "--historical", str(source))
    return url


def run(url: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False, env={"REFLEDGER_ACTOR": None})
    assert result.exit_code == 0, result.output
    return result.output


def pixels(png: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    position, data, header = 8, b"", b""
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind, body = png[position + 4 : position + 8], png[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            data += body
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), f"unexpected PNG format: depth {depth}, colour type {colour}"
    step = 3 if colour == 2 else 4
    raw = zlib.decompress(data)
    stride = width * step
    previous = bytearray(stride)
    found: list[tuple[int, int, int]] = []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up = previous[i]
            corner = previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                a, b, c = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                line[i] = (line[i] + (left if a <= b and a <= c else up if b <= c else corner)) & 0xFF
        found.extend((line[i], line[i + 1], line[i + 2]) for i in range(0, stride, step))
        previous = line
    return width, height, found


def near(colour: tuple[int, int, int], target: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target, strict=True))


def test_the_case_file_renders_as_a_page_with_its_chart(chromium: str, db: str, tmp_path: Path) -> None:
    page, png = tmp_path / "case-file.html", tmp_path / "case-file.png"
    run(db, "report", REFERENCE, "--at", AT, "--out", str(page))

    # the page laid out at A4 proportions, captured at half resolution (quicker to decode here)
    screenshot(page, png, SCREEN_SIZE, scale=0.5)

    width, height, found = pixels(png.read_bytes())
    assert (width, height) == (SCREEN_SIZE[0] // 2, SCREEN_SIZE[1] // 2)
    inked = sum(1 for colour in found if colour != (255, 255, 255))
    assert inked / len(found) > 0.05, f"the page is nearly blank: {inked} of {len(found)} pixels are not white"
    assert sum(1 for colour in found if near(colour, GAP_STRIPE)) > 300, "the gap's hatching is not on the page"
    assert sum(1 for colour in found if near(colour, FIRST_UNIT)) > 300, "the custodian's bar is not on the page"


def test_the_case_file_prints_to_pdf(chromium: str, db: str, tmp_path: Path) -> None:
    pdf = tmp_path / "case-file.pdf"

    output = run(db, "report", REFERENCE, "--at", AT, "--pdf", str(pdf))

    assert f"Wrote the case file of {REFERENCE} to {pdf}" in output
    document = pdf.read_bytes()
    assert document.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", document))
    assert 2 <= pages <= 8, f"{pages} pages"

"""The case file in a real browser: headless Chromium renders it to a PNG and prints it to PDF.

Needs Chromium (Debian package ``chromium``; ``.ci/run`` installs it). In CI (CI=true) a
missing Chromium fails these tests; elsewhere they are skipped, saying why.
"""

from __future__ import annotations

import os
import re
import struct
import unicodedata
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


def test_every_printed_page_has_the_running_header_and_its_number(chromium: str, staffed: str, tmp_path: Path) -> None:
    from pypdf import PdfReader

    pdf = tmp_path / "case-file.pdf"
    run(staffed, "report", REFERENCE, "--at", AT, "--pdf", str(pdf))

    # NFKC: the PDF's text has the font's ligatures ("ﬁ") where the page has two letters
    pages = [unicodedata.normalize("NFKC", page.extract_text()) for page in PdfReader(pdf).pages]
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert f"Case file {REFERENCE}" in text, f"page {number} has no running header"
        assert f"as at {AT}, as known now" in text, f"page {number} does not say which instant"
        assert f"page {number} of {len(pages)}" in text, f"page {number} is not numbered"
    # the header is the page's margin, not a line of the document repeated in it
    assert sum(text.count(f"page 1 of {len(pages)}") for text in pages) == 1


#: run in a copy of the case file (the case file itself has no script): what the layout does
_MEASURE = """<script>
const tables = {};
for (const name of ["obligations", "timeline"]) {
  const table = document.querySelector("table." + name);
  const wide = table.querySelector("th.wide");
  tables[name] = wide.getBoundingClientRect().width / table.getBoundingClientRect().width;
  tables[name + "-free"] = wide.getBoundingClientRect().width / Math.max(...[...table.querySelectorAll("th")].filter((th) => th !== wide).map((th) => th.getBoundingClientRect().width));
}
function lines(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  return new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top))).size;
}
const broken = [...document.querySelectorAll(".nb, td.nw, td.time, td.stamp > .nb")].filter((e) => lines(e) > 1).map((e) => e.textContent);
document.body.setAttribute("data-measured", JSON.stringify({tables, broken, codes: document.querySelectorAll(".nb").length}));
</script>"""


def test_codes_stay_whole_and_the_detail_columns_take_the_width(chromium: str, staffed: str, tmp_path: Path) -> None:
    import html as markup
    import json
    import subprocess

    page = tmp_path / "case-file.html"
    run(staffed, "report", REFERENCE, "--at", AT, "--out", str(page))
    measured = tmp_path / "measured.html"
    measured.write_text(page.read_text(encoding="utf-8").replace("</body>", _MEASURE + "</body>"), encoding="utf-8")

    # about an A4 page's printable width in CSS pixels
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=794,1123", f"--user-data-dir={tmp_path / 'profile'}"]
    done = subprocess.run([*command, "--dump-dom", measured.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'data-measured="([^"]*)"', done.stdout)
    assert found is not None, done.stderr[-500:]
    result = json.loads(markup.unescape(found.group(1)))

    assert result["codes"] > 50
    assert result["broken"] == [], f"these broke across lines: {result['broken'][:5]}"
    tables = result["tables"]
    # the free-text column is the widest of its table, and takes a good share of it
    assert tables["obligations-free"] > 1 and tables["timeline-free"] > 1, tables
    assert tables["obligations"] >= 0.18 and tables["timeline"] >= 0.3, tables

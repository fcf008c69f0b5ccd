"""A bulk package's CSV files: rows checked and turned into records in the import format.

A row becomes one or more records (docs/DOMAIN.md §8) that go through
``ledger.importing.parse_record`` like a line of a JSON Lines import, so a CSV and an import can
never disagree about what is valid. A file is recorded in one transaction: a bad row is
reported by its line number and nothing of the file is kept. Subjects are pseudonymous
references only: a column beyond the layout's is refused, and so is a subject that is not one
token (a name would be).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module at start-up: keep it light
    from ledger.application import Ledger

#: columns any CSV may add to give a row its own business time and late reason.
STAMP_COLUMNS = ("occurred_at", "late_reason")
#: a pseudonymous reference: one token, no spaces, so names cannot pass as references.
PSEUDONYM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
#: files with at least this many rows show a progress bar (on a terminal).


@dataclass(frozen=True)
class CsvLayout:
    """The columns a CSV of one kind must and may have (any others are refused)."""

    required: tuple[str, ...]
    optional: tuple[str, ...]

    @property
    def header(self) -> str:
        return ",".join(self.required) + "".join(f"[,{c}]" for c in self.optional)


IMPORT_LAYOUT = CsvLayout(("subject", "category"), ("band", "target_force", *STAMP_COLUMNS))
TRIAGE_LAYOUT = CsvLayout(("subject", "risk_tool", "risk_tool_version", "band"), ("target_force", "drivers", *STAMP_COLUMNS))
DISSEMINATE_LAYOUT = CsvLayout(("subject", "to_force", "authorised_by"), ("grading", "consent_reference", *STAMP_COLUMNS))


@dataclass(frozen=True)
class CsvFile:
    """A checked CSV: its columns and, per data row, the line it ends on and its non-empty cells."""

    path: Path
    sha256: str
    columns: tuple[str, ...]
    rows: list[tuple[int, dict[str, str]]]


def read_csv(path: Path, layout: CsvLayout) -> CsvFile:
    """Read and check a CSV's header and shape (the records are checked when recorded)."""
    from ledger.errors import InvalidInput

    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{path} is not UTF-8 text (byte {error.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidInput(f"{path} is empty; it needs a header row: {layout.header}")
        columns = tuple(name.strip() for name in header)
        _check_header(columns, layout)
        rows = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                raise InvalidInput(f"line {reader.line_num}: {len(row)} cells, but the header has {len(columns)} columns")
            rows.append((reader.line_num, {c: v.strip() for c, v in zip(columns, row, strict=True) if v.strip()}))
    except csv.Error as error:
        raise InvalidInput(f"line {reader.line_num}: malformed CSV ({error})") from None
    if not rows:
        raise InvalidInput(f"{path} has a header but no rows")
    return CsvFile(path, hashlib.sha256(data).hexdigest(), columns, rows)


def _check_header(columns: tuple[str, ...], layout: CsvLayout) -> None:
    from ledger.errors import InvalidInput

    allowed = (*layout.required, *layout.optional)
    for name in columns:
        if name not in allowed:
            raise InvalidInput(f"line 1: unknown column {name!r} (allowed: {', '.join(allowed)})")
    repeated = [name for name, count in Counter(columns).items() if count > 1]
    if repeated:
        raise InvalidInput(f"line 1: column {repeated[0]!r} appears twice")
    missing = [name for name in layout.required if name not in columns]
    if missing:
        raise InvalidInput(f"line 1: missing column {missing[0]!r} (the header must be {layout.header})")


# --- rows → records in the import format ------------------------------------------------


def _pseudonym(subject: str | None) -> str | None:
    from ledger.errors import InvalidInput

    if subject is not None and not PSEUDONYM.match(subject):
        raise InvalidInput(
            f"subject {subject!r} is not a pseudonymous reference (letters, digits, '.', '_', '/', '-'; "
            "no spaces): names and other identifying data are never recorded"
        )
    return subject


def _split_pair(text: str, name: str, keys: tuple[str, str]) -> dict[str, str]:
    from ledger.errors import InvalidInput

    left, sep, right = text.partition(":")
    if not sep or not left.strip() or not right.strip():
        raise InvalidInput(f"{name} {text!r} must be {keys[0].upper()}:{keys[1].upper()}")
    return {keys[0]: left.strip(), keys[1]: right.strip()}


def _fields(cells: dict[str, str], *names: str) -> dict[str, Any]:
    return {name: cells[name] for name in names if name in cells}


def import_records(cells: dict[str, str], risk_tool: str | None, risk_tool_version: str | None) -> list[dict[str, Any]]:
    """subject_extracted, then subject_triaged when the row has a band (with the command's risk tool)."""
    from ledger.errors import InvalidInput

    subject = _pseudonym(cells.get("subject"))
    records: list[dict[str, Any]] = [{"type": "subject_extracted", "subject": subject, **_fields(cells, "category")}]
    if "band" in cells:
        records.append(
            {
                "type": "subject_triaged",
                "subject": subject,
                "risk_tool": risk_tool,
                "risk_tool_version": risk_tool_version,
                **_fields(cells, "band", "target_force"),
            }
        )
    elif "target_force" in cells:
        raise InvalidInput("a target_force needs a band (the subject is triaged with both)")
    return records


def triage_records(cells: dict[str, str]) -> list[dict[str, Any]]:
    record: dict[str, Any] = {
        "type": "subject_triaged",
        **_fields(cells, "subject", "risk_tool", "risk_tool_version", "band", "target_force"),
    }
    if "drivers" in cells:
        record["drivers"] = [driver.strip() for driver in cells["drivers"].split(";") if driver.strip()]
    return [record]


def disseminate_records(cells: dict[str, str]) -> list[dict[str, Any]]:
    record: dict[str, Any] = {"type": "subject_disseminated", **_fields(cells, "subject", "to_force", "authorised_by", "consent_reference")}
    if "grading" in cells:
        record["grading"] = _split_pair(cells["grading"], "grading", ("scheme", "value"))
    return [record]


@dataclass(frozen=True)
class Recorded:
    """What a file recorded: its rows, and the events by type."""

    rows: int
    events: Counter[str]


def record_rows(
    ledger: Ledger,
    reference: str,
    table: CsvFile,
    to_records: Callable[[dict[str, str]], list[dict[str, Any]]],
    stamp: dict[str, Any],
    advance: Callable[[int], None] = lambda _: None,
) -> Recorded:
    """Record every row in one transaction, or nothing (the first bad row is named by line).

    ``stamp`` (actor, occurred_at, late_reason) applies to every row; a row's own
    occurred_at / late_reason cells override it. Each event keeps its provenance
    ({file, line}), and a file already recorded on a subject is refused.
    """
    from ledger.errors import InvalidInput, LedgerError
    from ledger.importing import Command, parse_record, record_commands

    counts: Counter[str] = Counter()
    commands: list[tuple[int, Command]] = []
    for line, cells in table.rows:
        try:
            row_stamp = {**stamp, **_fields(cells, *STAMP_COLUMNS)}
            for record in to_records(cells):
                commands.append(
                    (line, parse_record({"referral": reference, **row_stamp, **record}, source={"file": table.sha256, "line": line}))
                )
                counts[record["type"]] += 1
        except LedgerError as error:
            raise InvalidInput(f"line {line}: {error}") from None
    rows_done: set[int] = set()

    def row_done(line: int) -> None:  # a row may record two events (extracted, triaged)
        if line not in rows_done:
            rows_done.add(line)
            advance(1)

    record_commands(ledger, commands, table.sha256, row_done)
    return Recorded(len(table.rows), counts)

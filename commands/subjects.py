"""Bulk packages: ``subjects import|triage|disseminate`` from CSV, ``subjects list``, ``package``.

A CSV row becomes one or more records in the import format (DESIGN section 9) and goes
through ``ledger.importing.parse_record`` like a line of a JSON Lines import, so a CSV and an
import can never disagree about what is valid. A file is recorded in one transaction: a bad
row is reported by its line number and nothing of the file is kept.

The listing is ``subjects list REF`` (not ``subjects REF``): a click group cannot take a
positional argument and subcommands without an implicit default subcommand.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from commands.output import emit, output_options
from commands.session import instant_option, session
from projections.subjects import STATE_FILTERS

if TYPE_CHECKING:
    from datetime import datetime

    from ledger.application import Ledger

#: columns any CSV may add to give a row its own business time and late reason.
STAMP_COLUMNS = ("occurred_at", "late_reason")
#: a pseudonymous reference: one token, no spaces, so names cannot pass as references.
PSEUDONYM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
#: files with at least this many rows show a progress bar (on a terminal).
PROGRESS_FROM_ROWS = 200


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


@contextmanager
def _progress(rows: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for long files, when stderr is a terminal."""
    if rows < PROGRESS_FROM_ROWS or not sys.stderr.isatty():
        yield lambda _: None
        return
    with click.progressbar(length=rows, label=label, file=sys.stderr) as bar:
        yield bar.update


def _record_file(
    reference: str,
    table: CsvFile,
    to_records: Callable[[dict[str, str]], list[dict[str, Any]]],
    at: str | None,
    late_reason: str | None,
    actor: str | None,
    fmt: str | None,
    label: str,
) -> None:
    from ledger.values import iso

    current = session()
    ledger = current.ledger
    occurred = instant_option(at, "--at") or ledger.clock()  # one instant for the whole tranche
    stamp: dict[str, Any] = {"actor": current.actor(actor).as_dict(), "occurred_at": iso(occurred)}
    if late_reason is not None:
        stamp["late_reason"] = late_reason
    with _progress(len(table.rows), label) as advance:
        recorded = record_rows(ledger, reference, table, to_records, stamp, advance)
    total = sum(recorded.events.values())
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(recorded.events.items()))
    emit(
        fmt,
        {
            "referral": reference,
            "file": str(table.path),
            "sha256": table.sha256,
            "rows": recorded.rows,
            "events": total,
            "recorded": dict(sorted(recorded.events.items())),
        },
        text=f"Recorded {total} events ({kinds}) on {recorded.rows} subjects of {reference} from {table.path}.",
    )


_CSV_PATH = click.Path(dir_okay=False, exists=True, path_type=Path)


def _stamp_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--at", metavar="TIME", help="When it happened, for every row without an occurred_at (default now)."),
            click.option("--late-reason", help="Why it is recorded more than 24 h after it happened (every row)."),
            click.option(
                "--as", "actor", metavar="PERSON:ROLE@UNIT", help="Who records it (or --as before the command, or REFLEDGER_ACTOR)."
            ),
            click.option("--json", "fmt", flag_value="json", help="Print JSON."),
        ]
    ):
        command = option(command)
    return command


@click.group("subjects", short_help="Bulk packages: CSV import, triage and dissemination; where each subject is.")
def subjects_group() -> None:
    """Bulk packages: import subjects, triage and disseminate them by CSV, list where each is.

    \b
    Example:
      refledger subjects list R-2012-0716 --at 2013-01-01 --state in_transit
    """


@subjects_group.command("import", short_help="Add a package's subjects from a CSV (all or nothing).")
@click.argument("reference", metavar="REFERRAL")
@click.argument("file", type=_CSV_PATH)
@click.option("--risk-tool", help="The risk tool behind the band column (required with a band column).")
@click.option("--risk-tool-version", help="Its version (required with a band column).")
@_stamp_options
def import_subjects(
    reference: str,
    file: Path,
    risk_tool: str | None,
    risk_tool_version: str | None,
    at: str | None,
    late_reason: str | None,
    actor: str | None,
    fmt: str | None,
) -> None:
    """Add a package's subjects from a CSV, all or nothing.

    Columns: subject,category[,band][,target_force] (header row required; optional
    occurred_at, late_reason). Each row records subject_extracted; a row with a band also
    records subject_triaged with --risk-tool and --risk-tool-version. Subjects are
    pseudonymous references only: no names, dates of birth or other identifying data.

    \b
    Example:
      refledger subjects import R-2012-0716 subjects.csv --risk-tool RPT --risk-tool-version 3.2 --as P-02:analyst@U-TRIAGE
    """
    table = read_csv(file, IMPORT_LAYOUT)
    if "band" in table.columns and not (risk_tool and risk_tool_version):
        raise click.UsageError("the file has a band column: give --risk-tool and --risk-tool-version (the tool that set the bands)")
    _record_file(
        reference,
        table,
        lambda cells: import_records(cells, risk_tool, risk_tool_version),
        at,
        late_reason,
        actor,
        fmt,
        "Importing subjects",
    )


@subjects_group.command("triage", short_help="Record a tranche's triage from a CSV (all or nothing).")
@click.argument("reference", metavar="REFERRAL")
@click.option("--from-csv", "file", type=_CSV_PATH, required=True, metavar="FILE", help="The tranche, one subject per row.")
@_stamp_options
def triage_subjects(reference: str, file: Path, at: str | None, late_reason: str | None, actor: str | None, fmt: str | None) -> None:
    """Record the triage of a tranche of subjects from a CSV, one event per row, all or nothing.

    Columns: subject,risk_tool,risk_tool_version,band[,target_force][,drivers] (drivers
    separated by ';'; optional occurred_at, late_reason).

    \b
    Example:
      refledger subjects triage R-2012-0716 --from-csv tranche-1.csv --as P-02:analyst@U-TRIAGE
    """
    _record_file(reference, read_csv(file, TRIAGE_LAYOUT), triage_records, at, late_reason, actor, fmt, "Triaging")


@subjects_group.command("disseminate", short_help="Record a tranche's dissemination from a CSV (all or nothing).")
@click.argument("reference", metavar="REFERRAL")
@click.option("--from-csv", "file", type=_CSV_PATH, required=True, metavar="FILE", help="The tranche, one subject per row.")
@_stamp_options
def disseminate_subjects(reference: str, file: Path, at: str | None, late_reason: str | None, actor: str | None, fmt: str | None) -> None:
    """Record the dissemination of a tranche of subjects from a CSV, one event per row, all or nothing.

    Columns: subject,to_force,authorised_by[,grading][,consent_reference] (grading as
    SCHEME:VALUE; optional occurred_at, late_reason).

    \b
    Example:
      refledger subjects disseminate R-2012-0716 --from-csv tranche-1-sent.csv --as P-07:team-manager@U-OPSA
    """
    _record_file(reference, read_csv(file, DISSEMINATE_LAYOUT), disseminate_records, at, late_reason, actor, fmt, "Disseminating")


# --- queries ---------------------------------------------------------------------------------


def _instants(at: str | None, as_known_at: str | None) -> tuple[datetime, datetime | None]:
    """--at (default now) and --as-known-at (None: as known now)."""
    return instant_option(at, "--at") or session().ledger.clock(), instant_option(as_known_at, "--as-known-at")


def _is_csv(fmt: str | None) -> bool:
    from commands.output import CSV, resolve_format

    return resolve_format(fmt) == CSV


_AT = click.option("--at", metavar="TIME", help="The instant asked about (default now).")
_AS_KNOWN_AT = click.option(
    "--as-known-at", metavar="TIME", help="Only what was recorded by then (default: as known now, every event recorded so far)."
)
_TEXT_COLUMNS = ("subject", "state", "responsible_unit", "force", "actioned", "band", "disseminated_at", "outcome")


@subjects_group.command("list", short_help="Where each subject is at an instant, and who answers for it.")
@click.argument("reference", metavar="REFERRAL")
@_AT
@_AS_KNOWN_AT
@click.option("--state", type=click.Choice(STATE_FILTERS), help="Only subjects in this state (actioned: a force has acted on it).")
@click.option("--force", metavar="FORCE", help="Only subjects in transit to this force or with it.")
@output_options()
def list_subjects(reference: str, at: str | None, as_known_at: str | None, state: str | None, force: str | None, fmt: str | None) -> None:
    """Where each subject of a referral is at an instant, and who answers for it.

    A subject is with the referral's owner (its custodian while unowned) until disseminated,
    in transit to a force until that force acknowledges or rejects it (the owner still
    answers for it), with the force after acknowledging, back with the owner after a
    rejection, and closed after subject_closed. A force action does not move a subject;
    --state actioned lists those a force has acted on.

    \b
    Example:
      refledger subjects list R-2012-0716 --at 2013-01-01T12:00:00Z --state in_transit --json
    """
    from ledger.values import iso
    from projections.subjects import ROW_COLUMNS, referral_state_at, subject_positions

    ledger = session().ledger
    instant, known_at = _instants(at, as_known_at)
    referral_events = ledger.referral_events(reference)
    referral = referral_state_at(referral_events, instant, known_at)
    positions = subject_positions(referral_events, ledger.subject_events(reference), instant, known_at)
    rows = [p.as_row() for p in positions if p.matches(state, force)]
    holder = referral.owner_unit or f"nobody (custodian {referral.custodian_unit})"
    emit(
        fmt,
        {
            "referral": reference,
            "at": iso(instant),
            "as_known_at": None if known_at is None else iso(known_at),
            "referral_owner": referral.owner_unit,
            "custodian": referral.custodian_unit,
            "filters": {"state": state, "force": force},
            "count": len(rows),
            "subjects": rows,
        },
        rows=rows,
        columns=ROW_COLUMNS if _is_csv(fmt) else _TEXT_COLUMNS,
        text=f"{len(rows)} of {len(positions)} subjects of {reference} at {iso(instant)}; referral owner {holder}.",
    )


@click.command("package", short_help="A bulk package at an instant: subjects by state, obligations.")
@click.argument("reference", metavar="REFERRAL")
@_AT
@_AS_KNOWN_AT
@output_options()
def package_command(reference: str, at: str | None, as_known_at: str | None, fmt: str | None) -> None:
    """A bulk package at an instant: subjects by state, disseminations, subject obligations.

    Counts subjects by where they are (the same answer as 'subjects list'), the first and
    last dissemination, the days from receipt to the first one, and the dissemination,
    force-acknowledgement and force-action obligations met, breached, open and overdue, or
    open and not yet due at that instant. As known now by default, like 'subjects list', so
    the two always agree; --as-known-at gives what the ledger showed then (--as-known-at
    equal to --at is a manager's view that day, as 'obligations' gives by default). Rules
    come from --policy FILE or REFLEDGER_POLICY, else the built-in defaults.

    \b
    Example:
      refledger package R-2012-0716 --at 2013-11-01T12:00:00Z --json
    """
    from projections.subjects import evaluate_package

    current = session()
    ledger = current.ledger
    instant, known_at = _instants(at, as_known_at)
    summary = evaluate_package(
        ledger.referral_events(reference), ledger.subject_events(reference), instant, known_at, policy=current.policy
    )
    data = summary.as_dict()
    # people get the sentence; --csv gets the same figures as measure/value rows
    emit(fmt, data, rows=_package_rows(data) if _is_csv(fmt) else None, columns=("measure", "value"), text=_package_text(data))


def _package_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary flattened to measure/value rows (dotted measure names)."""
    rows = []
    for key, value in data.items():
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                if isinstance(inner_value, dict):
                    rows += [{"measure": f"{key}.{inner}.{k}", "value": v} for k, v in inner_value.items()]
                else:
                    rows.append({"measure": f"{key}.{inner}", "value": inner_value})
        else:
            rows.append({"measure": key, "value": value})
    return rows


def _package_text(data: dict[str, Any]) -> str:
    states = ", ".join(f"{count} {state.replace('_', ' ')}" for state, count in data["by_state"].items())
    lines = [
        f"{data['referral']} at {data['at']}" + (f" as known at {data['as_known_at']}" if data["as_known_at"] else " (as known now)"),
        f"  owner {data['owner'] or 'nobody'}, custodian {data['custodian']}",
        f"  {data['subjects']} subjects (claimed {data['claimed_subject_count'] or '?'}): {states}; {data['actioned']} actioned",
        f"  {data['disseminations']} disseminations, first {data['first_dissemination'] or '-'}, last {data['last_dissemination'] or '-'}"
        + (f"; {data['days_to_first_dissemination']} days from receipt to the first" if data["first_dissemination"] else ""),
    ]
    for rule, counts in (data["obligations"] or {}).items():
        lines.append(f"  {rule}: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    return "\n".join(lines)

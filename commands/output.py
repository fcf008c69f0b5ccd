"""One output helper for every query: a human table or sentence, ``--json`` or ``--csv``."""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click
import orjson

F = TypeVar("F", bound=Callable[..., Any])

JSON, CSV, TEXT = "json", "csv", "text"


#: ``click.Context.meta`` keys of the table options (read by ``emit``)
LIMIT, SORT = "refledger.limit", "refledger.sort"


def _keep(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def store(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.meta[key] = value
        return value

    return store


def output_options(tabular: bool = True) -> Callable[[F], F]:
    """Add --json (and --csv, --limit and --sort for tabular answers) to a query command as ``fmt``."""

    def decorate(command: F) -> F:
        options = [click.option("--json", "fmt", flag_value=JSON, help="Print JSON.")]
        if tabular:
            options.append(click.option("--csv", "fmt", flag_value=CSV, help="Print CSV."))
            options.append(
                click.option(
                    "--sort",
                    metavar="COLUMN",
                    expose_value=False,
                    callback=_keep(SORT),
                    help="Sort the rows by COLUMN (-COLUMN: descending).",
                )
            )
            options.append(
                click.option(
                    "--limit",
                    type=click.IntRange(min=1),
                    metavar="N",
                    expose_value=False,
                    callback=_keep(LIMIT),
                    help="Only the first N rows (after --sort).",
                )
            )
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def resolve_format(fmt: str | None) -> str:
    from commands.session import session

    if fmt:
        return fmt
    return JSON if session().as_json else TEXT


#: C0 and C1 controls, DEL, bidirectional overrides and lone surrogates: shown escaped to people
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_KEEP_NEWLINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
#: a spreadsheet takes a cell starting with one of these as a formula
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or f"\\u{ord(char):04x}"


def safe_line(text: str) -> str:
    """Text for a terminal on one line: every control character shown escaped (the one place)."""
    return _UNSAFE.sub(_escape, text)


def safe_text(text: str) -> str:
    """Like ``safe_line``, but the line breaks of a multi-line answer stay."""
    return _UNSAFE_KEEP_NEWLINES.sub(_escape, text)


def csv_safe(value: Any, cell: str) -> str:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ gets a leading '."""
    return "'" + cell if isinstance(value, str) and cell.startswith(_FORMULA_START) else cell


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        from ledger.values import iso

        return iso(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot print {type(value).__name__} as JSON")


def to_json(data: Any) -> str:
    return orjson.dumps(data, default=_default, option=orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATETIME).decode()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return str(_default(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, Mapping | list | tuple):
        return orjson.dumps(value, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()
    return str(value)


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_safe(row.get(c), _cell(row.get(c))) for c in columns])
    return buffer.getvalue()


def _sort_key(value: Any) -> tuple[int, Any]:
    # empty cells last; numbers as numbers, everything else as its printed text
    if value is None or value == "":
        return (2, "")
    if isinstance(value, bool):
        return (1, str(value))
    if isinstance(value, int | float):
        return (0, value)
    return (1, _cell(value))


def arrange(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[Mapping[str, Any]]:
    """The rows as --sort and --limit ask (of the current command), unchanged without them."""
    meta = click.get_current_context().meta if click.get_current_context(silent=True) else {}
    arranged = list(rows)
    order = meta.get(SORT)
    if order:
        name, descending = (order[1:], True) if order.startswith("-") else (order, False)
        known = list(columns or (rows[0] if rows else ()))
        if known and name not in known and not (rows and name in rows[0]):  # an empty table names its columns too
            raise click.UsageError(f"--sort: no column {name!r}; the columns are {', '.join(known)}")
        empty = [row for row in arranged if row.get(name) in (None, "")]
        filled = sorted(
            (row for row in arranged if row.get(name) not in (None, "")), key=lambda row: _sort_key(row.get(name)), reverse=descending
        )
        arranged = filled + empty
    limit = meta.get(LIMIT)
    if limit is not None:
        arranged = arranged[:limit]
    return arranged


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str | None = None, *, intro: str | None = None) -> None:
    """A table for people; on a terminal, a table longer than the screen goes through a pager."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(escape(safe_line(_cell(row.get(c)))) for c in columns))  # cell text is data, not markup
    terminal = sys.stdout.isatty()
    console = Console(width=None if terminal else 160)
    with console.capture() as captured:
        console.print(table)
    text = (safe_text(intro) + "\n" if intro else "") + captured.get()
    if terminal and text.count("\n") > console.size.height - 2:
        click.echo_via_pager(text)
    else:
        click.echo(text, nl=False)


def emit(
    fmt: str | None,
    data: Any,
    *,
    rows: Sequence[Mapping[str, Any]] | None = None,
    columns: Sequence[str] | None = None,
    text: str | None = None,
    title: str | None = None,
) -> None:
    """Print ``data`` as JSON, ``rows`` as CSV, or ``text`` and/or a table for people."""
    chosen = resolve_format(fmt)
    if rows is not None:
        arranged = arrange(rows, columns)
        if isinstance(data, dict) and data.get("rows") is rows:
            data = {**data, "rows": arranged}  # --sort/--limit shape the JSON rows too
        rows = arranged
    if chosen == JSON:
        click.echo(to_json(data))
        return
    if rows is not None and columns is None:
        columns = list(rows[0]) if rows else []
    if chosen == CSV:
        if rows is None or columns is None:
            raise click.UsageError("this answer is not a table; use --json")
        click.echo(to_csv(rows, columns), nl=False)
        return
    if rows is not None and columns is not None and rows:
        print_table(rows, columns, title, intro=text or None)
        return
    if text:
        click.echo(safe_text(text))
    if rows is not None and columns is not None and not text:
        click.echo("Nothing found.")


def write_out(path: Any, data: bytes, *, force: bool = False) -> None:
    """Write a file a command was asked for (``--out``): created 0600, never through a symbolic
    link, and an existing file is replaced only with ``force`` (the one place for all of them)."""
    import errno
    import os

    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if force else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        if os.path.islink(path):
            raise click.ClickException(f"{safe_line(str(path))} is a symbolic link; refusing to write through it") from None
        raise click.ClickException(f"{safe_line(str(path))} already exists; choose another name (or --force where offered)") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise click.ClickException(f"{safe_line(str(path))} is a symbolic link; refusing to write through it") from None
        raise click.ClickException(f"cannot write {safe_line(str(path))}: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before anything that depends on it is committed
    except OSError as error:
        os.unlink(path)
        raise click.ClickException(f"cannot write {safe_line(str(path))}: {error.strerror}") from None


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 event``, ``2 events`` (``words`` for irregular plurals: ``late entries``)."""
    return f"{count} {word if count == 1 else words or word + 's'}"

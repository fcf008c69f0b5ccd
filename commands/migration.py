"""The migration: ``audit migrations`` lists the historical imports, ``migration close`` ends them."""

from __future__ import annotations

from typing import Any

import click

from commands.output import emit, output_options
from commands.session import session

_COLUMNS = ("position", "event", "recorded_at", "by", "file_sha256", "lines", "referrals", "source_from", "source_to", "reason")


def migration_rows() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from ledger.migration import HistoryImported
    from ledger.values import Actor, iso

    state = session().ledger.migration()
    rows: list[dict[str, Any]] = []
    for event in (*state.imports, *((state.closed,) if state.closed else ())):
        imported = isinstance(event, HistoryImported)
        rows.append(
            {
                "position": event.originator_version,
                "event": "history_imported" if imported else "migration_closed",
                "recorded_at": iso(event.timestamp),
                "by": str(Actor.from_dict(event.actor)),
                "file_sha256": event.file_sha256 if imported else None,
                "lines": event.lines if imported else None,
                "referrals": event.referrals if imported else None,
                "source_from": iso(event.source_from) if imported and event.source_from else None,
                "source_to": iso(event.source_to) if imported and event.source_to else None,
                "reason": None if imported else getattr(event, "reason", None),
            }
        )
    rows.sort(key=lambda row: row["position"])
    summary = {
        "imports": len(state.imports),
        "closed": state.closed is not None,
        "closed_at": iso(state.closed.timestamp) if state.closed else None,
    }
    return rows, summary


def migrations_body(fmt: str | None) -> None:
    rows, summary = migration_rows()
    if not summary["imports"] and not summary["closed"]:
        text = "No history was imported into this ledger; every event was recorded live."
    else:
        state = f"closed at {summary['closed_at']}" if summary["closed"] else "still open: import --historical is allowed"
        text = (
            f"{summary['imports']} historical import{'s' if summary['imports'] != 1 else ''}; the migration is {state}. "
            "Answers 'as known at' a time before the migration closed rest on the source systems' clocks."
        )
    emit(fmt, {**summary, "rows": rows}, rows=rows, columns=_COLUMNS, text=text)


@click.group("migration")
def migration_group() -> None:
    """Close the ledger's migration (the historical imports).

    \b
    Example:
      refledger migration close --as P-01:registry@U-INTAKE
    """


@migration_group.command("close")
@click.option("--as", "actor", metavar="PERSON:ROLE@UNIT", help="Who closes it (or --as before the command, or REFLEDGER_ACTOR).")
@output_options(tabular=False)
def close_command(actor: str | None, fmt: str | None) -> None:
    """End the migration: from now on ``import --historical`` is refused, so the ledger's
    "as known at" answers can no longer be changed from the source systems' clocks.

    The first live event closes it too. The closing is itself an event (``audit migrations``).

    \b
    Example:
      refledger migration close --as P-01:registry@U-INTAKE
    """
    from ledger.values import Stamp, iso

    current = session()
    closed = current.ledger.close_migration(Stamp(actor=current.actor(actor)))
    emit(
        fmt,
        {"closed_at": iso(closed.timestamp)},
        text=f"The migration is closed ({iso(closed.timestamp)}): import --historical is refused from now on.",
    )

"""Deployment commands: ``db grant`` (the PostgreSQL group roles of a ledger).

Thin: parse, call ``ledger.storage.grant_roles``, render through ``emit``.
"""

from __future__ import annotations

import click

from commands.output import emit, output_options

_LOGINS = {"metavar": "LOGIN", "multiple": True}


@click.group("db")
def db_group() -> None:
    """Set up a PostgreSQL ledger for a team: who owns it, who records, who reads, who audits.

    \b
    Example:
      refledger --db postgresql://dba@db/ledger db grant --recorder alice --reader bob
    """


@db_group.command("grant")
@click.option("--prefix", default="refledger", show_default=True, metavar="NAME", help="Name the roles NAME_owner, NAME_recorder, ….")
@click.option("--recorder", "recorders", help="Make this existing login a recorder (repeatable).", **_LOGINS)  # type: ignore[call-overload]
@click.option("--reader", "readers", help="Make this existing login a reader (repeatable).", **_LOGINS)  # type: ignore[call-overload]
@click.option("--auditor", "auditors", help="Make this existing login an auditor (repeatable).", **_LOGINS)  # type: ignore[call-overload]
@output_options(tabular=False)
def grant_command(prefix: str, recorders: tuple[str, ...], readers: tuple[str, ...], auditors: tuple[str, ...], fmt: str | None) -> None:
    """Create the group roles of a PostgreSQL ledger and grant them their rights.

    PREFIX_owner owns the schema, tables and triggers (nobody logs in as it day to day);
    PREFIX_recorder may add events (never UPDATE, DELETE or TRUNCATE) and keep the read
    models; PREFIX_reader may read; PREFIX_auditor may read and store checkpoints. Run it
    as a database administrator, again after adding logins: it changes nothing twice.

    \b
    Example:
      refledger --db postgresql://dba@db/ledger db grant --recorder alice --reader bob
    """
    import re

    from commands.session import session
    from ledger.storage import ROLE_KINDS, grant_roles, resolve_database

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", prefix):
        raise click.ClickException(f"--prefix {prefix!r} must be lower-case letters, digits and _ (not starting with a digit)")
    database = resolve_database(session().db)
    members = dict(zip(ROLE_KINDS[1:], (list(recorders), list(readers), list(auditors)), strict=True))
    done = grant_roles(database, prefix, members)
    emit(fmt, {"database": database.location, "done": done}, text="\n".join(done))

"""refledger: the command line of Referral Ledger (entry point; commands live in commands/)."""

from __future__ import annotations

from typing import Any

import click

from commands.audit import audit_group, backlog_command, projections_group
from commands.demo import demo
from commands.deployment import db_group
from commands.directory import accountable_command, directory_group, person_group, role_group, secondment_group, unit_group
from commands.integrity import checkpoint, keygen, proof, verify, verify_proof_command
from commands.looking import export_command, referrals_command, show_command
from commands.migration import migration_group
from commands.obligations import obligations_command, policy_group
from commands.ownership import history_command, owner_command, timeline_command
from commands.record import REFERRAL_COMMANDS, import_command, subject_group
from commands.records import consultations_command, dispose_command, hold_group, retention_group
from commands.report import report_command
from commands.session import Session
from commands.subjects import package_command, subjects_group
from commands.transparency import TRANSPARENCY_COMMANDS

#: exit status of an unexpected internal error (EX_SOFTWARE), so scripts tell it from a refusal
INTERNAL_ERROR_EXIT = 70
DEBUG_ENV = "REFLEDGER_DEBUG"


class LedgerGroup(click.Group):
    """Turns the ledger's expected errors into one-line ``Error: …`` messages (exit 1), and
    anything unexpected into one line with exit 70 (the traceback only with REFLEDGER_DEBUG=1)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        import os
        import sys

        os.umask(os.umask(0o077) | 0o077)  # files 0600, directories 0700: ledgers, keys, leaves, reports
        try:
            return super().main(*args, **kwargs)
        except Exception as error:  # not SystemExit: click's own exits pass through
            if os.environ.get(DEBUG_ENV):
                raise
            from commands.output import safe_line

            detail = safe_line(str(error)) or type(error).__name__
            click.echo(f"Internal error ({type(error).__name__}): {detail} — set {DEBUG_ENV}=1 for the traceback", err=True)
            sys.exit(INTERNAL_ERROR_EXIT)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for number, arg in enumerate(args, start=1):
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                from commands.output import safe_line

                raise click.ClickException(f"argument {number} ({safe_line(arg)}) is not valid UTF-8 text") from None
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        from eventsourcing.persistence import PersistenceError

        from commands.output import safe_line
        from ledger.errors import LedgerError

        try:
            try:
                return super().invoke(ctx)
            except Exception:
                if isinstance(ctx.obj, Session):
                    ctx.obj.discard_if_new_and_empty()
                raise
        except LedgerError as error:
            raise click.ClickException(safe_line(str(error))) from None
        except PersistenceError as error:
            first = (str(error).strip() or type(error).__name__).splitlines()[0]
            raise click.ClickException(f"database error: {safe_line(first)}") from None
        except click.ClickException as error:
            error.message = safe_line(error.message)  # user text in a message must not drive the terminal
            raise


@click.group(cls=LedgerGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--db",
    metavar="URL|PATH",
    envvar="REFLEDGER_DATABASE_URL",
    help="SQLite file or postgresql:// URL (default: a per-user file; see 'refledger info').",
)
@click.option("--as", "actor", metavar="PERSON:ROLE@UNIT", envvar="REFLEDGER_ACTOR", help="Who records (for record commands).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON from every command.")
@click.option(
    "--policy",
    "policy_file",
    metavar="FILE",
    envvar="REFLEDGER_POLICY",
    help="Policy rules (TOML) for every answer that judges obligations (default: the built-in rules; see 'refledger policy show').",
)
@click.option(
    "--signing-key",
    metavar="KEY",
    envvar="REFLEDGER_SIGNING_KEY",
    help="Sign every event recorded with this Ed25519 private key (registered for the person: see 'keygen --person').",
)
@click.option(
    "--data-key",
    "data_key",
    metavar="FILE",
    envvar="REFLEDGER_DATA_KEY",
    help="The ledger data key (refledger keygen --data-key) that seals and opens free text.",
)
@click.version_option(package_name="referral-ledger", prog_name="refledger")
@click.pass_context
def main(
    ctx: click.Context,
    db: str | None,
    actor: str | None,
    as_json: bool,
    policy_file: str | None,
    signing_key: str | None,
    data_key: str | None,
) -> None:
    """Referral Ledger: who owned each referral when, what is overdue, and proof that the
    record was not altered. Every action is an immutable event.

    \b
    Example:
      refledger demo
    """
    ctx.obj = Session(db=db, actor_text=actor, as_json=as_json, policy_file=policy_file, signing_key_file=signing_key, data_key=data_key)
    ctx.call_on_close(ctx.obj.close)


@main.command("info")
@click.option("--json", "fmt", flag_value="json", help="Print JSON.")
def info(fmt: str | None) -> None:
    """Show which database is in use and how many events it holds.

    \b
    Example:
      refledger --db demo.sqlite info
    """
    from commands.output import emit
    from commands.session import session
    from ledger.storage import default_database_path

    current = session()
    ledger, database = current.open()
    data = {
        "backend": database.backend,
        "database": database.location,
        "events": ledger.head(),
        "default_database": str(default_database_path()),
    }
    emit(fmt, data, text="\n".join(f"{k.replace('_', ' ')}: {v}" for k, v in data.items()))


@main.command("init")
@click.option("--json", "fmt", flag_value="json", help="Print JSON.")
def init(fmt: str | None) -> None:
    """Create an empty ledger at --db (a SQLite file or a PostgreSQL database/schema).

    Commands that only read never create a ledger; recording a receipt or an import does.
    Running init where a ledger already exists changes nothing.

    \b
    Example:
      refledger --db unit.sqlite init
    """
    from commands.output import emit
    from commands.session import session
    from ledger.storage import holds_ledger

    current = session()
    existed = holds_ledger(current.db)
    ledger, database = current.open(create=True)
    events = ledger.head()
    text = (
        f"A ledger already exists at {database.location} ({events} events); nothing changed."
        if existed
        else f"Created an empty ledger at {database.location}."
    )
    emit(fmt, {"database": database.location, "created": not existed, "events": events}, text=text)


for _command in REFERRAL_COMMANDS:
    main.add_command(_command)
main.add_command(subject_group)
main.add_command(import_command)
main.add_command(subjects_group)
main.add_command(package_command)
main.add_command(owner_command)
main.add_command(history_command)
main.add_command(timeline_command)
main.add_command(obligations_command)
main.add_command(policy_group)
main.add_command(keygen)
main.add_command(checkpoint)
main.add_command(verify)
main.add_command(proof)
main.add_command(verify_proof_command)
for _command in TRANSPARENCY_COMMANDS:
    main.add_command(_command)
main.add_command(audit_group)
main.add_command(backlog_command)
main.add_command(projections_group)
main.add_command(report_command)
main.add_command(demo)
main.add_command(migration_group)
main.add_command(db_group)
for _directory_command in (unit_group, person_group, role_group, secondment_group, directory_group, accountable_command):
    main.add_command(_directory_command)
main.add_command(referrals_command)
main.add_command(show_command)
main.add_command(export_command)
main.add_command(hold_group)
main.add_command(dispose_command)
main.add_command(retention_group)
audit_group.add_command(consultations_command)


@main.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for refledger (commands, options, choices).

    Add it to the shell's start-up file, e.g. for bash in ~/.bashrc.

    \b
    Example:
      eval "$(refledger completion bash)"
    """
    from click.shell_completion import get_completion_class

    found = get_completion_class(shell)
    assert found is not None  # the three shells above are click's own
    click.echo(found(main, {}, "refledger", "_REFLEDGER_COMPLETE").source())


def _session_setter(name: str) -> Any:
    def store(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value:
            from commands.session import session

            setattr(session(ctx), name, value)
        return value

    return store


#: the global options a user may also give after the command (``refledger owner R-1 --db x``)
_GLOBAL_AFTER = (
    ("--db", "db", "URL|PATH", "SQLite file or postgresql:// URL (as 'refledger --db').", False),
    ("--as", "actor_text", "PERSON:ROLE@UNIT", "Who records (as 'refledger --as').", False),
    ("--json", "as_json", None, "Print JSON (as 'refledger --json').", True),
)


def _accept_global_options_after(command: click.Command) -> None:
    """Give every command the global options it does not define itself, setting the session's."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _accept_global_options_after(sub)
        return
    taken = {opt for param in command.params for opt in getattr(param, "opts", ())}
    for flag, name, metavar, text, is_flag in _GLOBAL_AFTER:
        if flag in taken:
            continue
        command.params.append(
            click.Option(
                [flag, f"_global_{name}"],
                # None, not False, for the valued ones: click then asks for their value
                # (with is_flag=False it lets '--db' end the line with no value, ignored)
                is_flag=is_flag or None,
                metavar=metavar,
                help=text,
                hidden=True,
                expose_value=False,
                callback=_session_setter(name),
            )
        )


for _command in main.commands.values():
    _accept_global_options_after(_command)


if __name__ == "__main__":
    main()

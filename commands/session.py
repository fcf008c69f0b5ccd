"""What every command shares: the database it opens, the actor it records as, errors."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ledger.application import Ledger
    from ledger.policy import Policy
    from ledger.storage import Database
    from ledger.values import Actor

ACTOR_ENV = "REFLEDGER_ACTOR"
SIGNING_KEY_ENV = "REFLEDGER_SIGNING_KEY"
DATA_KEY_ENV = "REFLEDGER_DATA_KEY"
POLICY_ENV = "REFLEDGER_POLICY"


class FindingsExit(click.ClickException):
    """Verification failed, or an audit found something with --fail-on-findings (exit 3)."""

    exit_code = 3

    def show(self, file: Any = None) -> None:
        if self.message:
            click.echo(self.message, err=True)


@dataclass
class Session:
    """Opened once per invocation, from the global options."""

    db: str | None
    actor_text: str | None
    as_json: bool = False
    _ledger: Ledger | None = field(default=None, repr=False)
    _database: Database | None = field(default=None, repr=False)
    #: --policy FILE; None falls back to $REFLEDGER_POLICY, then the built-in rules.
    policy_file: str | None = None
    _policy: Policy | None = field(default=None, repr=False)
    #: this invocation made a new ledger (a failed first command takes it away again)
    _created: bool = field(default=False, repr=False)
    #: --signing-key FILE (or $REFLEDGER_SIGNING_KEY): the recording person's Ed25519 key
    signing_key_file: str | None = None
    #: --data-key FILE (or $REFLEDGER_DATA_KEY): the ledger data key that seals free text
    data_key: str | None = None

    def open(self, *, create: bool = False) -> tuple[Ledger, Database]:
        """The ledger of --db; ``create`` only for commands that may record into a new one.

        Every other command on a path or database that holds no ledger gets a one-line
        error and creates nothing.
        """
        if self._ledger is None:
            from pathlib import Path

            from ledger.policy import PolicyError, RecordsRules, load_policy
            from ledger.storage import holds_ledger
            from ledger.wiring import open_ledger

            try:  # a bad policy file stops only the answers that use it (free text, disposal: below)
                rules = load_policy(self.policy_source)
                records = rules.records
            except PolicyError:
                records = RecordsRules()
            key = Path(self.data_key) if self.data_key else None
            self._created = create and not holds_ledger(self.db)
            ledger, database = open_ledger(self.db, create=create, data_key=key, sealed_fields=records.sealed_fields)
            ledger.consultation_log = records.consultation_log
            ledger.policy_source = lambda: self.policy  # its [authority] rules judge what is recorded
            self._sign_with(ledger)
            self._ledger, self._database = ledger, database
        assert self._database is not None
        return self._ledger, self._database

    def _sign_with(self, ledger: Ledger) -> None:
        """Give the ledger the signing key, and the event types the policy requires signed."""
        from ledger.errors import InvalidInput
        from ledger.identity import Signer

        path = self.signing_key_file or os.environ.get(SIGNING_KEY_ENV) or None
        if path:
            try:
                pem = Path(path).read_bytes()
            except OSError as error:
                raise InvalidInput(f"cannot read the signing key {path}: {error.strerror}") from None
            ledger.signer = Signer.from_pem(pem)
        # read when something is first recorded: a command that only reads needs no policy
        ledger.signature_policy = self.required_signature_topics

    def required_signature_topics(self) -> frozenset[str]:
        """The topics of the event types the policy's [signatures] required names."""
        from ledger.errors import InvalidInput
        from projections.ownership import EVENT_TYPES

        required = self.policy.signatures_required
        unknown = sorted(set(required) - set(EVENT_TYPES.values()))
        if unknown:
            raise InvalidInput(f"policy [signatures] required names unknown event types: {', '.join(unknown)}")
        return frozenset(cls.TOPIC for cls, name in EVENT_TYPES.items() if name in required)

    @property
    def ledger(self) -> Ledger:
        return self.open()[0]

    @property
    def database(self) -> Database:
        return self.open()[1]

    @property
    def policy_source(self) -> str | None:
        return self.policy_file or os.environ.get(POLICY_ENV) or None

    @property
    def policy(self) -> Policy:
        """The rule set every answer that evaluates rules uses (loaded once, on first use)."""
        if self._policy is None:
            self._policy = self.load_policy()
        return self._policy

    def load_policy(self) -> Policy:
        from ledger.policy import PolicyError, load_policy

        try:
            return load_policy(self.policy_source)
        except PolicyError as error:
            raise click.ClickException(str(error)) from None

    def actor(self, override: str | None = None) -> Actor:
        from ledger.errors import InvalidInput
        from ledger.values import Actor

        text = override or self.actor_text or os.environ.get(ACTOR_ENV)
        if not text:
            raise InvalidInput(f"who is recording? give --as PERSON:ROLE@UNIT or set {ACTOR_ENV}")
        return Actor.parse(text)

    def reader(self) -> Actor | None:
        """Who reads free text (--as / $REFLEDGER_ACTOR), when given: the consultation log names them."""
        text = self.actor_text or os.environ.get(ACTOR_ENV)
        return self.actor(text) if text else None

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def discard_if_new_and_empty(self) -> None:
        """After a refused command: a SQLite ledger this invocation created and left empty is
        removed (file and journal files), so bad input on a new path writes nothing."""
        if not self._created or self._ledger is None or self._database is None or self._database.backend != "sqlite":
            return
        if self._ledger.head() != 0:
            return
        self.close()
        from pathlib import Path

        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(self._database.location + suffix).unlink(missing_ok=True)
        self._created = False


def session(ctx: click.Context | None = None) -> Session:
    current = ctx or click.get_current_context()
    found = current.find_object(Session)
    if found is None:  # a command invoked on its own (tests): default options
        found = Session(db=None, actor_text=None)
        current.obj = found
    return found


def instant_option(value: str | None, what: str) -> datetime | None:
    """Parse an optional ISO 8601 instant given on the command line."""
    if value is None:
        return None
    from ledger.values import parse_instant

    return parse_instant(value, what)

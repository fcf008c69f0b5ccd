"""The errors the ledger raises for expected, user-caused failures.

Each carries a one-line message a user can act on; the CLI shows it as ``Error: …``
and exits 1. Anything else is a bug and is allowed to crash loudly.
"""

from __future__ import annotations


class LedgerError(Exception):
    """An expected failure with a one-line explanation for the user."""


class RuleViolation(LedgerError):
    """A command was refused because it would break a ledger invariant."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{message} (rule: {rule})")
        self.rule = rule


class NotFound(LedgerError):
    """The named referral or subject is not in the ledger."""


class InvalidInput(LedgerError):
    """A value supplied by the user is malformed (bad time, unknown field, …)."""


class StorageError(LedgerError):
    """The database could not be opened or reached."""


class LedgerTampered(LedgerError):
    """The stored events no longer match what an earlier checkpoint recorded."""


def first_words(error: BaseException) -> str:
    """The first line of an error's message (at most 80 characters), for a one-line report."""
    return (str(error).strip() or type(error).__name__).splitlines()[0][:80]

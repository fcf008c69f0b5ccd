"""Two people recording on the same referral at once: nothing is lost, nothing is judged stale."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.application import Ledger
from ledger.values import Actor, Stamp
from tests.conftest import Clock

REGISTRY = Stamp(Actor("P-1", "registry", "U-INTAKE"))
TRIAGE = Stamp(Actor("P-2", "manager", "U-TRIAGE"))


def race_once(ledger: Ledger, other: Callable[[], None]) -> None:
    """Make ``other`` record just after ``ledger`` has read the referral for its next command."""
    read = ledger.repository.get
    raced = []

    def read_then_race(*args: Any, **kwargs: Any) -> Any:
        aggregate = read(*args, **kwargs)
        if not raced:
            raced.append(True)
            other()
        return aggregate

    ledger.repository.get = read_then_race  # type: ignore[method-assign]


def test_a_command_that_loses_a_race_is_judged_again_on_the_newer_history(open_at: Callable[..., Ledger], clock: Clock) -> None:
    first, second = open_at(clock), open_at(clock)
    first.receive("R-1", REGISTRY, originator="X", channel="post", custodian_unit="U-INTAKE")
    clock.advance(minutes=5)
    race_once(first, lambda: second.add_note("R-1", TRIAGE, "Chased the originator"))
    first.offer_ownership("R-1", TRIAGE, "U-OPS1")
    kinds = [type(e).__name__ for e in first.referral_events("R-1")]
    assert kinds == ["Received", "NoteAdded", "OwnershipOffered"]


def test_the_rerun_refuses_what_the_newer_history_forbids(open_at: Callable[..., Ledger], clock: Clock) -> None:
    first, second = open_at(clock), open_at(clock)
    first.receive("R-1", REGISTRY, originator="X", channel="post", custodian_unit="U-INTAKE")
    clock.advance(minutes=5)
    race_once(first, lambda: second.offer_ownership("R-1", TRIAGE, "U-OPS2"))
    try:
        first.offer_ownership("R-1", TRIAGE, "U-OPS1")
    except Exception as error:
        assert "one-open-offer" in str(error)
    else:
        raise AssertionError("a second open offer was recorded")
    kinds = [type(e).__name__ for e in first.referral_events("R-1")]
    assert kinds == ["Received", "OwnershipOffered"]

"""Never skip an event: writers record on PostgreSQL while two catch-ups run, and some saves roll back.

Each writer thread has its own Ledger (its own connections) on the same schema. Some writers lose optimistic
concurrency races on a shared referral (their insert fails after taking notification ids),
and one writer deliberately saves a batch that must fail after inserting a new referral's
events, so the log has permanent gaps in its ids. Two catch-up threads run meanwhile, in
tiny rounds, so round boundaries fall inside transactions and referrals. Afterwards the
stored tables equal a rebuild from zero, their position equals the head, and every
committed ledger event is counted in them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import pytest

from ledger.application import ConcurrentUpdate, Ledger
from ledger.storage import resolve_database
from ledger.values import Actor, Stamp
from ledger.wiring import open_ledger
from projections.store import ReadModels
from tests.conftest import raw_execute

pytestmark = pytest.mark.postgres

SHARED = "R-SHARED"
INTAKE = Actor("P-1", "registry", "U-INTAKE")
OPS = Actor("P-2", "team-manager", "U-OPS1")


def receive(ledger: Ledger, reference: str) -> None:
    ledger.receive(
        reference,
        Stamp(INTAKE),
        originator="X-FORCE",
        channel="liaison",
        custodian_unit="U-INTAKE",
    )


def retrying(action: Callable[[], None]) -> int:
    """Run ``action`` until it is not beaten by another writer; return how often it was."""
    lost = 0
    while True:
        try:
            action()
            return lost
        except ConcurrentUpdate:
            lost += 1


def test_concurrent_writers_and_catch_ups_never_skip_an_event(postgres_schema_url: str) -> None:
    url = postgres_schema_url
    opened: list[Ledger] = []

    def open_one() -> Ledger:
        ledger, _ = open_ledger(url)
        opened.append(ledger)
        return ledger

    # Opened here, one after another: opening installs the append-only triggers, and
    # PostgreSQL refuses concurrent CREATE OR REPLACE of the same trigger.
    setup = open_one()
    ready = [open_one() for _ in range(3 + 2 + 2)]

    def ledger_for_thread() -> Ledger:
        return ready.pop()

    receive(setup, SHARED)
    writers_done = threading.Event()
    errors: list[BaseException] = []
    races_lost: list[int] = []
    rounds: list[int] = []

    def writer(number: int) -> None:
        ledger = ledger_for_thread()
        lost = 0
        for k in range(6):
            reference = f"R-W{number}-{k}"
            receive(ledger, reference)
            ledger.offer_ownership(reference, Stamp(INTAKE), "U-OPS1")
            ledger.accept_ownership(reference, Stamp(OPS))
            ledger.extract_subject(reference, Stamp(OPS), f"SUBJ-{k}", "suspect")
            lost += retrying(partial(ledger.add_note, SHARED, Stamp(INTAKE), f"writer {number} note {k}"))
        races_lost.append(lost)

    def failing_writer() -> None:
        stale, fresh = ledger_for_thread(), ledger_for_thread()
        for k in range(5):
            with pytest.raises(ConcurrentUpdate), stale.batch():
                receive(stale, f"R-NEVER-{k}")  # inserted first, then rolled back with the batch
                stale.add_note(SHARED, Stamp(INTAKE), "stale note")
                retrying(lambda: fresh.add_note(SHARED, Stamp(INTAKE), "fresh note"))  # gets there first

    def catching_up() -> None:
        ledger = ledger_for_thread()
        models = ReadModels(ledger)
        count = 0
        while not writers_done.is_set():
            count += models.catch_up(round_events=7, page_size=3).rounds
        rounds.append(count)

    def guarded(target: Callable[..., None], *args: int) -> Callable[[], None]:
        def run() -> None:
            try:
                target(*args)
            except BaseException as error:  # surfaced by the assertion below
                errors.append(error)

        return run

    catchers = [threading.Thread(target=guarded(catching_up)) for _ in range(2)]
    writers = [threading.Thread(target=guarded(writer, n)) for n in range(3)] + [threading.Thread(target=guarded(failing_writer))]
    for thread in catchers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    for thread in catchers:
        thread.join()
    try:
        assert errors == []
        assert sum(rounds) > 0, "the catch-ups should have committed rounds while the writers wrote"

        table = f'"{resolve_database(url).schema}".ledger_events'
        (stored, highest), *_ = raw_execute(url, f"SELECT count(*), max(notification_id) FROM {table}")
        assert isinstance(stored, int) and isinstance(highest, int)
        assert highest > stored, "rolled-back saves should have left gaps in the notification ids"

        final = ReadModels(setup)
        final.catch_up()
        caught_up = final.dump()
        status = final.status()
        assert status.position == status.head == highest

        final.rebuild()
        assert final.dump() == caught_up

        (directory_entries,) = raw_execute(url, f"SELECT count(*) FROM {table} WHERE topic = 'refledger:SubjectDirectory.SubjectListed'")[0]
        counted = sum(row[8] for row in caught_up["rm_referrals"])  # the events column
        assert counted == stored - int(directory_entries)  # type: ignore[call-overload]
        referrals = {row[0] for row in caught_up["rm_referrals"]}
        assert referrals == {SHARED} | {f"R-W{n}-{k}" for n in range(3) for k in range(6)}
    finally:
        for ledger in opened:
            ledger.close()

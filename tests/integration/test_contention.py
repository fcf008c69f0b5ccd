"""Four processes recording notes on one referral at once: nothing lost, (almost) nothing refused.

The retries wait a jittered, growing pause until a time budget, so writers that collided
try again at different moments instead of colliding again.
"""

from __future__ import annotations

import multiprocessing

from ledger.application import ConcurrentUpdate
from ledger.values import Actor, Stamp
from ledger.wiring import open_ledger
from tests.conftest import count_events

WRITERS, NOTES = 4, 100
INTAKE = Actor("P-1", "registry", "U-INTAKE")


def _write_notes(url: str, writer: int, start: multiprocessing.synchronize.Event) -> int:  # type: ignore[name-defined]
    ledger, _ = open_ledger(url)
    refused = 0
    start.wait()
    try:
        for k in range(NOTES):
            try:
                ledger.add_note("R-BUSY", Stamp(INTAKE), f"writer {writer} note {k}")
            except ConcurrentUpdate:
                refused += 1
    finally:
        ledger.close()
    return refused


def test_four_writers_on_one_referral_lose_nothing_and_are_almost_never_refused(database_url: str) -> None:
    ledger, _ = open_ledger(database_url)
    ledger.receive("R-BUSY", Stamp(INTAKE), originator="X-FORCE", channel="liaison", custodian_unit="U-INTAKE")
    ledger.close()
    before = count_events(database_url)
    context = multiprocessing.get_context("spawn")
    start = context.Manager().Event()
    with context.Pool(WRITERS) as pool:
        pending = [pool.apply_async(_write_notes, (database_url, w, start)) for w in range(WRITERS)]
        start.set()
        refused = sum(p.get(timeout=600) for p in pending)
    recorded = count_events(database_url) - before
    print(f"contention: {WRITERS} writers x {NOTES} notes: {recorded} recorded, {refused} refused")
    assert recorded + refused == WRITERS * NOTES  # nothing lost, nothing doubled
    assert refused <= WRITERS * NOTES // 100

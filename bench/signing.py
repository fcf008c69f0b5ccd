"""Signing benchmark: what signing each event with its person's Ed25519 key costs.

Imports N generated events (bench/generate.py) into a fresh SQLite ledger, reads them back as
the ledger's event objects, then times, alternately in the same process, (a) hashing every
event (what the chain already does) and (b) hashing and signing every event (what the ledger
does per event when a signing key is given: ``Ledger._sign``). Prints the median seconds for
N events of each and the difference, the cost of signing itself.

    python bench/signing.py [--events 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from eventsourcing.persistence import StoredEvent  # noqa: E402

from ledger.canonical import event_hash  # noqa: E402
from ledger.checkpoint import new_signing_key  # noqa: E402
from ledger.identity import Signer  # noqa: E402
from ledger.importing import import_file  # noqa: E402
from ledger.storage import read_event_rows, resolve_database  # noqa: E402
from ledger.wiring import open_ledger  # noqa: E402


def events_of(path: Path) -> list[object]:
    url = str(Path(tempfile.mkdtemp(prefix="refledger-bench-")) / "ledger.sqlite")
    ledger, _ = open_ledger(url)
    import_file(ledger, path)
    found = []
    for batch in read_event_rows(resolve_database(url)):
        for _, stream, version, topic, state in batch:
            from uuid import UUID

            found.append(ledger.mapper.to_domain_event(StoredEvent(UUID(stream), version, topic, state)))
    ledger.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from ingest import generated

    events = events_of(generated(args.events))
    signer = Signer.from_pem(new_signing_key()[0])
    hashing, signing = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        for event in events:
            event_hash(event)
        hashing.append(time.perf_counter() - started)
        started = time.perf_counter()
        for event in events:
            signer.sign(event_hash(event))
        signing.append(time.perf_counter() - started)
    hashed, signed = statistics.median(hashing), statistics.median(signing)
    print(f"signing {len(events):,} events, median of {args.repeat} runs (alternating)")
    print(f"hash only:      {hashed:6.2f} s")
    print(f"hash and sign:  {signed:6.2f} s")
    print(f"signing itself: {signed - hashed:6.2f} s")
    per = 100_000 / len(events)
    print(f"per 100,000 events: hash and sign {signed * per:.2f} s (target <= 10 s), signing itself {(signed - hashed) * per:.2f} s")


if __name__ == "__main__":
    main()

"""SIGKILL a long streaming import at random points; the ledger must be exactly as before each time.

Generates N events (bench/generate.py, as bench/ingest.py), puts a small ledger in place
(the worked example), then starts `refledger import` of the long file and kills it
(SIGKILL) at K points spread over the import's expected duration (measured on a short
import first), the last near its end. After each kill it compares every stored row with
the state before. Prints each kill point, its outcome and the totals, for both backends.

    python bench/kill_import.py [--events 1000000] [--kills 5] [--postgres URL | --no-postgres]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import drop_schema, generated  # noqa: E402

from ledger.importing import import_file  # noqa: E402
from ledger.storage import connect_postgres, resolve_database  # noqa: E402
from ledger.wiring import open_ledger  # noqa: E402

EXAMPLE = ROOT / "tests" / "data" / "worked_example" / "cybertip.jsonl"


def fingerprint(url: str) -> tuple[int, str]:
    database = resolve_database(url)
    order = "rowid" if database.backend == "sqlite" else "notification_id"
    statement = f"SELECT originator_id, originator_version, topic, state FROM {database.events_table} ORDER BY {order}"
    digest, count = hashlib.sha256(), 0
    if database.backend == "sqlite":
        import sqlite3

        connection = sqlite3.connect(database.location)
        rows = connection.execute(statement).fetchall()
        connection.close()
    else:
        with connect_postgres(database) as connection:
            connection.execute(f'SET search_path TO "{database.schema}"')
            rows = connection.execute(statement).fetchall()
    for row in rows:
        digest.update(repr(tuple(bytes(v) if isinstance(v, memoryview) else str(v) for v in row)).encode())
        count += 1
    return count, digest.hexdigest()


def command(url: str, path: Path) -> list[str]:
    return [sys.executable, "-m", "cli", "--db", url, "import", str(path)]


def expected_seconds(url_for: Callable[[], str], events: int) -> float:
    """The long import's duration, from the rate of a 20,000-event one (plus start-up)."""
    sample = generated(20_000)
    url = url_for()
    started = time.perf_counter()
    subprocess.run(command(url, sample), cwd=ROOT, check=True, capture_output=True)
    return (time.perf_counter() - started) * events / 20_000


def run(backend: str, url_for: Callable[[], str], events: int, kills: int, seed: int) -> tuple[int, int]:
    path = generated(events)
    duration = expected_seconds(url_for, events)
    url = url_for()
    ledger, _ = open_ledger(url)
    import_file(ledger, EXAMPLE, historical=True)
    ledger.close()
    before = fingerprint(url)
    rng = random.Random(seed)
    points = [*sorted(rng.uniform(1.0, duration * 0.9) for _ in range(kills - 1)), duration * 0.97]
    print(f"{backend}: {events:,}-event import, expected {duration:,.0f} s; kills at " + ", ".join(f"{p:,.0f} s" for p in points))
    same = killed = 0
    for point in points:
        process = subprocess.Popen(command(url, path), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(point)
        outcome = "finished before the kill"
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
            outcome = "killed"
        process.wait()
        after = fingerprint(url)
        unchanged = after == before
        same += unchanged
        print(f"  at {point:,.0f} s: {outcome}; ledger {'exactly as before' if unchanged else f'CHANGED ({after[0]:,} events)'}")
        if not unchanged and outcome != "killed":
            before = after  # it finished: the next kills compare with the new state
    return killed, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = str(ROOT)
    schemas: list[str] = []
    folders: list[str] = []

    def sqlite_url() -> str:
        folders.append(tempfile.mkdtemp(prefix="refledger-kill-"))
        return str(Path(folders[-1]) / "ledger.sqlite")

    def postgres_url() -> str:
        schemas.append(f"{args.postgres}{'&' if '?' in args.postgres else '?'}schema=bench_kill_{uuid.uuid4().hex[:8]}")
        return schemas[-1]

    backends = [("sqlite", sqlite_url)] + ([] if args.no_postgres else [("postgres", postgres_url)])
    try:
        for backend, url_for in backends:
            killed, same = run(backend, url_for, args.events, args.kills, args.seed)
            print(f"{backend}: {killed} of {args.kills} runs killed; ledger exactly as before after {same} of {args.kills}")
    finally:
        for url in schemas:
            drop_schema(url)
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

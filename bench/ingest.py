"""Ingest benchmark: the ledger's import against a bare eventsourcing Application.

Imports N generated events (bench/generate.py) into a fresh SQLite file and a fresh
PostgreSQL schema, and in the same run saves the same file's events, with the same payloads
(both clocks, actor, provenance, a 64-character hash field, the domain fields), through a
bare eventsourcing Application: no validation, no state, no hashing, the library's default
JSON transcoder, one save (on PostgreSQL with the library's own INSERT statement, sent in
chunks: bench/library_insert.py). Prints events/s for each, the ratio, and the import's peak
memory (maximum resident set size of a fresh process doing only the import; the file is
streamed, so it should not grow with the file's length); repeats and reports medians,
because the machine is noisy.

On PostgreSQL the ledger sends a large save as binary COPY statements (ledger/storage_postgres.py),
which the library does not: the last two columns run the bare application through that same
recorder, so the ledger's own cost (checks, hashing, state) shows apart from the gain of COPY.

With ``--sealed`` the ledger's import seals its free text (a fresh ledger data key, as
``--data-key`` gives it): the figure to hold against the bare library is then the sealed one.

    python bench/ingest.py [--events 100000] [--repeat 3] [--postgres URL | --no-postgres] [--no-sqlite] [--sealed]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from eventsourcing.application import Application  # noqa: E402
from eventsourcing.domain import Aggregate  # noqa: E402

from ledger.importing import import_file  # noqa: E402
from ledger.storage import HELD_IDLE_SECONDS, connect_postgres, resolve_database  # noqa: E402
from ledger.wiring import open_ledger  # noqa: E402

OUT = ROOT / "bench" / "out"


class Stream(Aggregate):
    """A bare aggregate: no state, no rules. Its events carry what a ledger event stores."""

    class Happened(Aggregate.Event):
        occurred_at: datetime
        actor: dict[str, str]
        late_reason: str | None
        source_recorded_at: datetime | None
        source: dict[str, Any] | None
        prev_hash: str
        data: dict[str, Any]


def bare_rate(env: dict[str, str], path: Path) -> float:
    """Save the file's events, with the same payloads, through a bare Application."""
    import orjson

    app: Application[Any] = Application(env=env)
    started = time.perf_counter()
    streams: dict[str, Stream] = {}
    placeholder_hash = "0" * 64
    count = 0
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        record = orjson.loads(raw)
        key = record["referral"] + "/" + record.get("subject", "")
        stream = streams.get(key)
        if stream is None:
            stream = streams[key] = Stream()
        actor, occurred, late = record.pop("actor"), record.pop("occurred_at"), record.pop("late_reason", None)
        stream.trigger_event(
            Stream.Happened,
            occurred_at=datetime.fromisoformat(occurred),
            actor=actor,
            late_reason=late,
            source_recorded_at=None,
            source={"file": placeholder_hash, "line": number},
            prev_hash=placeholder_hash,
            data=record,
        )
        count += 1
    app.save(*streams.values())
    elapsed = time.perf_counter() - started
    app.close()
    return count / elapsed


#: the ledger data key file the import seals with (None: not sealed), set by --sealed
DATA_KEY: list[Path] = []


def ledger_rate(url: str, path: Path, events: int) -> tuple[float, float]:
    """The import's events/s and peak memory (MB), in a fresh process of its own."""
    import json
    import subprocess

    key = str(DATA_KEY[0]) if DATA_KEY else "-"
    done = subprocess.run([sys.executable, __file__, "--child", url, str(path), str(events), key], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the import failed (exit {done.returncode}): {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    figures = json.loads(done.stdout.splitlines()[-1])
    return figures["rate"], figures["peak_mb"]


def child(url: str, path: Path, events: int, key: str) -> None:
    import json

    rate = _import_rate(url, path, events, None if key == "-" else Path(key))
    print(json.dumps({"rate": rate, "peak_mb": peak_mb()}))


def peak_mb() -> float:
    """This process's peak resident set size, in MB.

    Linux's VmHWM belongs to the process's own memory since exec; getrusage's ru_maxrss
    would also count what the parent held when it forked this process.
    """
    import resource

    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _import_rate(url: str, path: Path, events: int, key: Path | None) -> float:
    ledger, _ = open_ledger(url, data_key=key)
    started = time.perf_counter()
    result = import_file(ledger, path)
    elapsed = time.perf_counter() - started
    ledger.close()
    if result.events != events:
        raise SystemExit(f"imported {result.events} of {events} lines")
    return events / elapsed


def generated(events: int) -> Path:
    from generate import generate, write_jsonl

    path = OUT / f"ingest-{events}.jsonl"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        write_jsonl(path, generate(events, seed=7))
    return path


def drop_schema(url: str) -> None:
    database = resolve_database(url)
    with connect_postgres(database) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{database.schema}" CASCADE')


def bare_postgres(base_url: str, schema: str, path: Path, recorder_topic: str) -> float:
    """The bare application's rate in a fresh schema, saving through the given recorder."""
    bare_url = f"{base_url}{'&' if '?' in base_url else '?'}schema={schema}"
    bare_database = resolve_database(bare_url)
    env = dict(bare_database.env)
    # its one save of a million events runs while the collector walks millions of
    # objects: allow the pauses the library's 5 s limit would end the save for (as
    # the ledger's own import transaction does, ledger.storage.HELD_IDLE_SECONDS)
    env["POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT"] = str(HELD_IDLE_SECONDS)
    env["APPLICATION_RECORDER_TOPIC"] = recorder_topic
    with connect_postgres(bare_database) as connection:
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        # the chunked recorders take their table lock through the ledger's function
        # (the bare application names its own events table: lock whichever it made)
        connection.execute(
            f'CREATE FUNCTION "{schema}".refledger_lock_events() RETURNS void LANGUAGE plpgsql AS $$ '
            f"DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = '{schema}' "
            f"AND tablename LIKE '%events' LOOP EXECUTE format('LOCK TABLE %I.%I IN EXCLUSIVE MODE', "
            f"'{schema}', t); END LOOP; END $$"
        )
    try:
        return bare_rate(env, path)
    finally:
        drop_schema(bare_url)


def measure(backend: str, base_url: str | None, path: Path, events: int, repeat: int) -> tuple[float, float, float | None, float]:
    """Medians of the ledger's rate, the bare library's and (PostgreSQL) the bare library's
    through the ledger's COPY recorder, and the ledger's peak memory."""
    ours: list[float] = []
    bare: list[float] = []
    copied: list[float] = []
    peaks: list[float] = []

    def ledger(url: str) -> None:
        rate, peak = ledger_rate(url, path, events)
        ours.append(rate)
        peaks.append(peak)

    for _ in range(repeat):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="refledger-bench-") as name:  # a ledger of 1,000,000 events is over 1 GB
                folder = Path(name)
                ledger(str(folder / "ledger.sqlite"))
                bare.append(bare_rate({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(folder / "bare.sqlite")}, path))
        else:
            assert base_url is not None
            schema = "bench_ingest_" + uuid.uuid4().hex[:8]
            url = f"{base_url}{'&' if '?' in base_url else '?'}schema={schema}"
            try:
                ledger(url)
                bare.append(bare_postgres(base_url, schema + "_bare", path, "library_insert:LibraryInsertRecorder"))
                copied.append(bare_postgres(base_url, schema + "_copy", path, "ledger.storage_postgres:ChunkedPostgresApplicationRecorder"))
            finally:
                drop_schema(url)
    return statistics.median(ours), statistics.median(bare), statistics.median(copied) if copied else None, max(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--sealed", action="store_true", help="The ledger seals its free text (a fresh data key).")
    parser.add_argument("--child", nargs=4, metavar=("URL", "FILE", "EVENTS", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), int(args.child[2]), args.child[3])
        return
    path = generated(args.events)
    if args.sealed:
        from _ledgers import fresh_data_key

        DATA_KEY.append(fresh_data_key())
    sealed = ", free text sealed" if args.sealed else ""
    print(f"ingest of {args.events:,} generated events{sealed}, median of {args.repeat} runs")
    print(f"{'backend':<10} {'ledger ev/s':>12} {'bare lib ev/s':>14} {'ratio':>7} {'peak MB':>8} {'bare+COPY ev/s':>15} {'ratio':>7}")
    backends = ([] if args.no_sqlite else ["sqlite"]) + ([] if args.no_postgres else ["postgres"])
    for backend in backends:
        ours, bare, copied, peak = measure(backend, args.postgres, path, args.events, args.repeat)
        against_copy = "-" if copied is None else f"{copied:,.0f}"
        copy_ratio = "-" if copied is None else f"{ours / copied:.2f}"
        print(f"{backend:<10} {ours:>12,.0f} {bare:>14,.0f} {ours / bare:>7.2f} {peak:>8,.0f} {against_copy:>15} {copy_ratio:>7}")


if __name__ == "__main__":
    main()

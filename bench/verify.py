"""Verify and checkpoint benchmark on a large generated ledger, SQLite and PostgreSQL.

Builds a fresh ledger of N generated events (bench/generate.py, historical mode) on each
backend, imported in files of about 100k lines (an import is one transaction), then:

PostgreSQL is filled, by default, with a COPY of the SQLite ledger's stored rows (the same
bytes; see ``_ledgers.copy_sqlite_events_to_postgres``), then measured the same way:

- full verify (every chain and the Merkle tree recomputed from the stored rows), repeated,
  reported as the median events/s, in process and once through the ``refledger verify`` CLI;
- the first checkpoint (hashes every event: no frontier stored yet);
- a checkpoint after 1,000 new events (every event is hashed again: nothing stored is trusted), repeated, median seconds.

Generated files are cached under bench/out/ (git-ignored). Both ledgers are built fresh on
every run; the PostgreSQL schema is dropped at the end (kept with --keep).

    python bench/verify.py [--events 1000000] [--repeat 3] [--backend sqlite|postgres|both] [--postgres-load copy|import] [--keep]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _ledgers import copy_sqlite_events_to_postgres  # noqa: E402
from generate import generate, write_jsonl  # noqa: E402

from ledger.checkpointing import make_checkpoint  # noqa: E402
from ledger.importing import import_file  # noqa: E402
from ledger.storage import Database, connect_postgres, resolve_database  # noqa: E402
from ledger.verification import verify_ledger  # noqa: E402
from ledger.wiring import open_ledger  # noqa: E402

OUT = ROOT / "bench" / "out"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test?schema=bench_verify"
PART_LINES = 100_000
NEW_EVENTS = 1_000


def parts(events: int) -> list[Path]:
    """The generated ledger in files of PART_LINES lines (cached)."""
    OUT.mkdir(parents=True, exist_ok=True)
    count = (events + PART_LINES - 1) // PART_LINES
    paths = [OUT / f"verify-{events}-part-{n:02d}.jsonl" for n in range(count)]
    if all(p.exists() for p in paths):
        return paths
    whole = OUT / f"verify-{events}.jsonl"
    if not whole.exists():
        print(f"generating {events} events …", flush=True)
        write_jsonl(whole, generate(events, seed=5, historical=True))
    lines = whole.read_bytes().splitlines(keepends=True)
    for n, path in enumerate(paths):
        path.write_bytes(b"".join(lines[n * PART_LINES : (n + 1) * PART_LINES]))
    return paths


def new_events_file(round_number: int) -> Path:
    """1,000 events of referrals received in another year, so references never collide."""
    path = OUT / f"verify-new-{NEW_EVENTS}-{round_number}.jsonl"
    if not path.exists():
        year = 2012 + round_number
        write_jsonl(path, generate(NEW_EVENTS, seed=100 + round_number, start=f"{year}-01-01", end=f"{year}-12-31", historical=True))
    return path


def fresh(url: str) -> None:
    """Make the database empty."""
    database = resolve_database(url)
    if database.backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(database.location + suffix).unlink(missing_ok=True)
    else:
        drop_schema(database)


def _event_count(database: Database) -> int:
    try:
        if database.backend == "sqlite":
            import sqlite3

            if not Path(database.location).exists():
                return -1
            with sqlite3.connect(database.location) as connection:
                return int(connection.execute("SELECT count(*) FROM stored_events").fetchone()[0])
        with connect_postgres(database) as connection:
            return int(connection.execute(f'SELECT count(*) FROM "{database.schema}".ledger_events').fetchone()[0])
    except Exception:
        return -1


def drop_schema(database: Database) -> None:
    with connect_postgres(database) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{database.schema}" CASCADE')


def measure(url: str, paths: list[Path], repeat: int, keep: bool, copy_from: Path | None = None, first_round: int = 0) -> dict[str, Any]:
    fresh(url)
    ledger, database = open_ledger(url)
    figures: dict[str, Any] = {"backend": database.backend, "database": database.location}
    try:
        started = time.perf_counter()
        if copy_from is not None:
            copy_sqlite_events_to_postgres(resolve_database(str(copy_from)), database)
            figures["loaded_by"] = f"COPY of the stored rows of {copy_from.name}"
        else:
            for path in paths:
                import_file(ledger, path, historical=True)
            figures["loaded_by"] = f"import of {len(paths)} files"
        figures["load_seconds"] = round(time.perf_counter() - started, 1)
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            result = verify_ledger(ledger, database)
            runs.append(time.perf_counter() - started)
            if not result.sound:
                raise SystemExit(f"the generated ledger does not verify: {result.first_bad}")
        figures["stored_events"] = result.events
        figures["verify_seconds"] = [round(s, 2) for s in runs]
        figures["verify_events_per_second_median"] = round(result.events / statistics.median(runs))
        figures["verify_cli_seconds"] = round(cli_verify(url), 2)
        figures["verify_cli_events_per_second"] = round(result.events / figures["verify_cli_seconds"])
        started = time.perf_counter()
        first = make_checkpoint(ledger, database)
        figures["first_checkpoint_seconds"] = round(time.perf_counter() - started, 2)
        figures["first_checkpoint_events"] = first.new_events
        seconds = []
        for round_number in range(first_round, first_round + repeat):
            import_file(ledger, new_events_file(round_number), historical=True)
            started = time.perf_counter()
            made = make_checkpoint(ledger, database)
            seconds.append(time.perf_counter() - started)
            assert made.new_events >= NEW_EVENTS  # each subject adds a directory entry too
        figures["checkpoint_after_new_events"] = {"new_events_each": made.new_events, "seconds": [round(s, 3) for s in seconds]}
        figures["checkpoint_after_new_events_median_seconds"] = round(statistics.median(seconds), 3)
        after = verify_ledger(ledger, database)
        figures["verify_after_checkpoints_sound"] = after.sound and after.stored_matching == after.stored_checked
    finally:
        ledger.close()
        if not keep and database.backend == "postgres":
            drop_schema(database)
    return figures


def cli_verify(url: str) -> float:
    """One ``refledger verify`` run, start to exit (includes interpreter start-up)."""
    started = time.perf_counter()
    command = [sys.executable, "-c", "from cli import main; main()", "--db", url, "verify", "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"refledger verify failed ({done.returncode}): {done.stderr.decode()[:300]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--postgres", default=POSTGRES_URL, help="PostgreSQL URL with ?schema= (dropped at the end)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema afterwards (the SQLite file is always kept)")
    parser.add_argument(
        "--postgres-load",
        choices=("copy", "import"),
        default="copy",
        help="fill PostgreSQL by copying the SQLite ledger's stored rows (default) or by importing the files",
    )
    options = parser.parse_args()
    paths = parts(options.events)
    urls = {"sqlite": str(OUT / f"verify-{options.events}.sqlite"), "postgres": options.postgres}
    chosen = ["sqlite", "postgres"] if options.backend == "both" else [options.backend]
    report = {}
    for backend in chosen:
        print(f"{backend}: building and measuring …", flush=True)
        copy_from = Path(urls["sqlite"]) if backend == "postgres" and options.postgres_load == "copy" else None
        if copy_from is not None and _event_count(resolve_database(urls["sqlite"])) < options.events:
            raise SystemExit("--postgres-load copy needs the SQLite ledger first: run with --backend both, or --backend sqlite first")
        # PostgreSQL may hold a copy of the SQLite ledger, new events included: other referrals
        first_round = 0 if backend == "sqlite" else options.repeat
        report[backend] = measure(urls[backend], paths, options.repeat, options.keep, copy_from, first_round)
        print(json.dumps(report[backend], indent=2), flush=True)
    (OUT / f"verify-results-{options.events}.json").write_text(json.dumps(report, indent=2))
    for backend, figures in report.items():
        print(
            f"{backend:8s} verify {figures['verify_events_per_second_median']:>9,} events/s (median of {options.repeat}, "
            f"{figures['stored_events']:,} events); CLI {figures['verify_cli_events_per_second']:,} events/s; "
            f"checkpoint after {NEW_EVENTS:,} new events {figures['checkpoint_after_new_events_median_seconds']} s (median)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

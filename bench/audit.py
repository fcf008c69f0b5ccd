"""Read-model benchmark: catch-up speed and the portfolio queries, on SQLite and PostgreSQL.

Imports N generated events (bench/generate.py, historical mode, about N/10 referrals) into a
SQLite file and a PostgreSQL schema (kept under bench/out and schema ``bench_audit_N``, and
reused by the next run unless --fresh), then per backend:

- **catch-up**: the read models built from zero (``ReadModels.rebuild``), repeated; log
  entries per second (directory entries included, as the log holds them);
- **queries** after catch-up, each run as a user runs it (``refledger ... --json`` in a new
  process, so start-up and JSON output count) and in-process: ``audit overdue --at T``
  (as known then), ``audit overdue`` (now), ``audit gaps``, ``backlog --at T``;
- **incremental**: 1,000 more events recorded (half of them on 500 open referrals), then
  one catch-up.

Prints medians (the machine is shared and noisy) and writes bench/out/audit-N.json.

    python bench/audit.py [--events 1000000] [--repeat 3] [--postgres URL | --no-postgres] [--fresh]

Targets (issue 4): catch-up >= 20,000 events/s on SQLite, >= 10,000 on PostgreSQL; audit
overdue --at T and audit gaps <= 2 s each after catch-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _ledgers import copy_sqlite_events_to_postgres  # noqa: E402

from ledger.importing import import_file  # noqa: E402
from ledger.storage import connect_postgres, resolve_database  # noqa: E402
from ledger.values import Actor, Stamp  # noqa: E402
from ledger.wiring import open_ledger  # noqa: E402
from projections.store import ReadModels  # noqa: E402

OUT = ROOT / "bench" / "out"
REFLEDGER = [sys.executable, "-c", "from cli import main; main()"]
#: the instant "as known then" questions are asked at: inside the generated business window
AT = "2024-06-01T12:00:00Z"


def generated(events: int) -> Path:
    from generate import generate, write_jsonl

    path = OUT / f"audit-{events}.jsonl"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        print(f"generating {events:,} events -> {path}", flush=True)
        write_jsonl(path, generate(events, seed=3, start="2023-01-01", historical=True))
    return path


def ready_ledger(url: str, path: Path, events: int, fresh: bool, copy_from: str | None = None) -> float | None:
    """Import the file unless the database already holds it; the import's events/s, if it ran.

    With ``copy_from`` (a SQLite ledger of the same file), PostgreSQL gets that ledger's
    stored events copied in log order instead: the same bytes the importer would store, in
    seconds rather than the many minutes a one-transaction import of a million lines takes
    on a shared server (the import has its own benchmark, bench/ingest.py).
    """
    if fresh:
        drop(url)
    ledger, database = open_ledger(url)
    try:
        if ledger.head() >= events:
            return None
        if ledger.head() > 0:
            raise SystemExit(f"{url} holds a partial import ({ledger.head()} entries); run with --fresh")
        if copy_from is not None:
            print(f"copying the stored events of {copy_from} into {url}", flush=True)
            copy_sqlite_events_to_postgres(resolve_database(copy_from), database)
            return None
        print(f"importing {events:,} events into {url} (a few minutes)", flush=True)
        started = time.perf_counter()
        result = import_file(ledger, path, historical=True)
        return result.events / (time.perf_counter() - started)
    finally:
        ledger.close()


def drop(url: str) -> None:
    database = resolve_database(url)
    if database.backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(database.location + suffix).unlink(missing_ok=True)
        return
    with connect_postgres(database) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{database.schema}" CASCADE')


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def cli_seconds(url: str, *args: str) -> float:
    """Wall time of one ``refledger`` run in a fresh process, output to a pipe."""
    started = time.perf_counter()
    subprocess.run(
        [*REFLEDGER, "--db", url, *args], cwd=ROOT, check=True, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    return time.perf_counter() - started


def record_more(url: str, count: int, existing: list[str]) -> None:
    """``count`` new events, as commands record them (now): half of them notes on ``existing``
    referrals (whose whole history the catch-up must read back), half on new referrals."""
    ledger, _ = open_ledger(url)
    actor, owner = Actor("P-0001", "registry-officer", "U-INTAKE"), Actor("P-0020", "team-manager", "U-OPS1")
    stamp = f"{time.time_ns()}"
    try:
        with ledger.batch():
            for reference in existing[: count // 2]:
                ledger.add_note(reference, Stamp(actor), "Checked at the morning audit.")
            for n in range((count - min(len(existing), count // 2)) // 4):
                reference = f"R-BENCH-{stamp}-{n}"
                ledger.receive(
                    reference,
                    Stamp(actor),
                    originator="X-FORCE",
                    channel="liaison",
                    custodian_unit="U-INTAKE",
                )
                ledger.offer_ownership(reference, Stamp(actor), "U-OPS1")
                ledger.accept_ownership(reference, Stamp(owner))
                ledger.add_note(reference, Stamp(owner), "Progress.")
    finally:
        ledger.close()


def measure(backend: str, url: str, events: int, repeat: int, imported: float | None) -> dict[str, Any]:
    ledger, _ = open_ledger(url)
    models = ReadModels(ledger)
    at = datetime.fromisoformat(AT.replace("Z", "+00:00"))
    figures: dict[str, Any] = {"backend": backend, "entries": ledger.head(), "import_events_per_s": imported}
    rates, seconds = [], []
    for _ in range(repeat):
        took, result = timed(models.rebuild)
        rates.append(result.entries_per_second)
        seconds.append(took)
        print(
            f"  {backend} catch-up from zero: {result.entries:,} entries in {took:.1f} s = {result.entries_per_second:,.0f}/s", flush=True
        )
    figures["catch_up_entries_per_s"] = statistics.median(rates)
    figures["catch_up_seconds"] = statistics.median(seconds)
    figures["tables"] = models.status().tables
    figures["back_dated_referrals_at_T"] = len(models.back_dated_at(at))

    queries: dict[str, tuple[str, ...]] = {
        "audit overdue --at T": ("audit", "overdue", "--at", AT, "--json"),
        "audit overdue (now)": ("audit", "overdue", "--json"),
        "audit gaps": ("audit", "gaps", "--json"),
        "backlog --at T": ("backlog", "--at", AT, "--json"),
        "audit late-entries": ("audit", "late-entries", "--json"),
    }
    in_process: dict[str, Callable[[], Any]] = {
        "audit overdue --at T": lambda: models.overdue(at),
        "audit overdue (now)": lambda: models.overdue(ledger.clock()),
        "audit gaps": lambda: models.gaps(now=ledger.clock()),
        "backlog --at T": lambda: models.backlog(at),
        "audit late-entries": lambda: models.late_entries(),
    }
    figures["queries"] = {}
    for name, args in queries.items():
        cli = statistics.median(cli_seconds(url, *args) for _ in range(repeat))
        took, rows = timed(in_process[name])
        figures["queries"][name] = {"cli_seconds": cli, "in_process_seconds": took, "rows": len(rows)}
        print(f"  {backend} {name:<22} cli {cli:5.2f} s   in-process {took:5.2f} s   {len(rows):>7,} rows", flush=True)

    open_referrals = [item.referral for item in models.backlog(ledger.clock(), as_known_now=True)]
    record_more(url, 1000, open_referrals)
    took, result = timed(models.catch_up)
    figures["incremental"] = {"entries": result.entries, "referrals": result.referrals_folded, "seconds": took}
    print(
        f"  {backend} incremental catch-up: {result.entries:,} new entries on {result.referrals_folded:,} referrals in {took:.2f} s",
        flush=True,
    )
    ledger.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="drop and re-import the benchmark databases")
    parser.add_argument(
        "--import-postgres", action="store_true", help="import the file into PostgreSQL too (default: copy the SQLite ledger's events)"
    )
    args = parser.parse_args()
    path = generated(args.events)
    targets = {"sqlite": str(OUT / f"audit-{args.events}.sqlite")}
    if not args.no_postgres:
        targets["postgres"] = f"{args.postgres}{'&' if '?' in args.postgres else '?'}schema=bench_audit_{args.events}"
    results = []
    for backend, url in targets.items():
        copy_from = targets["sqlite"] if backend == "postgres" and not args.import_postgres else None
        imported = ready_ledger(url, path, args.events, args.fresh, copy_from)
        results.append(measure(backend, url, args.events, args.repeat, imported))
    print(f"\nread models on {args.events:,} generated events, median of {args.repeat} runs (T = {AT})")
    print(f"{'backend':<10} {'catch-up/s':>11} {'overdue@T':>10} {'overdue':>8} {'gaps':>6} {'backlog@T':>10}")
    for figures in results:
        q = figures["queries"]
        print(
            f"{figures['backend']:<10} {figures['catch_up_entries_per_s']:>11,.0f} {q['audit overdue --at T']['cli_seconds']:>9.2f}s "
            f"{q['audit overdue (now)']['cli_seconds']:>7.2f}s {q['audit gaps']['cli_seconds']:>5.2f}s {q['backlog --at T']['cli_seconds']:>9.2f}s"
        )
    report = OUT / f"audit-{args.events}.json"
    report.write_text(json.dumps({"at": AT, "measured": datetime.now(UTC).isoformat(), "results": results}, indent=2), encoding="utf-8")
    print(f"(written to {report})")


if __name__ == "__main__":
    main()

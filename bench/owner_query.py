"""Benchmark: ``owner`` for a 500-event referral in a 1,000,000-event ledger, SQLite and PostgreSQL.

What it does:
1. Generates the ledger with ``bench/generate.py`` (historical mode, one referral
   ``R-BIG-0001`` with 500 events) in one file (``--chunk N``: files of N lines), cached under ``bench/out/``.
2. Imports them, one transaction per file, into a fresh SQLite file and a fresh PostgreSQL
   schema (dropped at the end).
3. Times the in-process question ``owner_at(ledger.referral_events(ref), now)`` (p50, p99)
   and where the time goes: reading the 500 rows, the library's decoding of them into
   events (and how much of that is JSON parsing), and the fold.
4. Times the CLI, ``refledger --db … owner R-BIG-0001 --json``, wall clock per process, and
   what Python spends importing modules for it (``-X importtime``).

Figures are printed, never asserted: other work shares the machine, so read medians.

Usage:
    python bench/owner_query.py                      # both backends, 1,000,000 events
    python bench/owner_query.py --backend sqlite --events 200000
    python bench/owner_query.py --reuse              # keep and reuse bench/out/owner-*.sqlite
    python bench/owner_query.py --sealed             # the ledger imported with a data key (owner reads no free text)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_owner"


# --- the ledger files -----------------------------------------------------------------------


def ledger_files(events: int, big: int, seed: int, chunk: int) -> list[Path]:
    """The generated ledger as files of ``chunk`` lines (made once, then reused)."""
    from generate import BIG_REFERENCE, generate, write_jsonl

    OUT.mkdir(exist_ok=True)
    stem = f"owner-{events}-big{big}-seed{seed}-chunk{chunk}"
    parts = (events + chunk - 1) // chunk
    paths = [OUT / f"{stem}-part{n:02d}.jsonl" for n in range(1, parts + 1)]
    done = OUT / f"{stem}.done"
    if done.exists() and all(p.exists() for p in paths):
        return paths
    began = time.perf_counter()
    records = generate(events, seed=seed, big_referral_events=big, historical=True)
    for path in paths:
        write_jsonl(path, itertools.islice(records, chunk))
    done.write_text(BIG_REFERENCE + "\n")
    print(f"generated {events:,} events in {len(paths)} files in {time.perf_counter() - began:.1f} s", flush=True)
    return paths


#: the ledger data key the import seals free text with (--sealed; empty: not sealed)
DATA_KEY: list[Path] = []


def import_all(url: str, paths: list[Path]) -> float:
    """Import the files in order, one transaction each (as `refledger import` does)."""
    from ledger.importing import import_file
    from ledger.wiring import open_ledger

    began = time.perf_counter()
    ledger, _ = open_ledger(url, data_key=DATA_KEY[0] if DATA_KEY else None)
    try:
        for number, path in enumerate(paths, start=1):
            started = time.perf_counter()
            import_file(ledger, path, historical=True)
            print(f"  imported {path.name} in {time.perf_counter() - started:.1f} s ({number}/{len(paths)})", flush=True)
    finally:
        ledger.close()
    return time.perf_counter() - began


# --- timing helpers -------------------------------------------------------------------------


def timings(runs: dict[str, Callable[[], Any]], repeat: int, warmup: int = 10) -> dict[str, list[float]]:
    """Milliseconds per call of each function, interleaved round by round so that load from
    other processes falls on every figure alike."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            began = time.perf_counter_ns()
            run()
            samples[name].append((time.perf_counter_ns() - began) / 1e6)
    return samples


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(samples), 3), "p99_ms": round(percentile(samples, 0.99), 3)}


# --- the measurements -------------------------------------------------------------------------


def in_process(url: str, reference: str, repeat: int) -> dict[str, Any]:
    import orjson

    from ledger.values import referral_id
    from ledger.wiring import open_ledger
    from projections.ownership import answer_document, owner_at

    ledger, _ = open_ledger(url)
    try:
        stream = referral_id(reference)
        now = ledger.clock()
        rows = ledger.recorder.select_events(stream)
        events = ledger.referral_events(reference)
        transcoder: Any = ledger.mapper.transcoder
        answer = answer_document(owner_at(events, now))
        measured = timings(
            {
                "owner": lambda: owner_at(ledger.referral_events(reference), now),
                "read_rows": lambda: ledger.recorder.select_events(stream),
                "decode_events": lambda: [ledger.mapper.to_domain_event(row) for row in rows],
                "decode_of_which_transcoder": lambda: [transcoder.decode(row.state) for row in rows],
                "decode_of_which_orjson_parse": lambda: [orjson.loads(row.state) for row in rows],
                "stdlib_json_parse_for_comparison": lambda: [json.loads(row.state) for row in rows],
                "fold_owner_at": lambda: owner_at(events, now),
            },
            repeat,
        )
        figures = {
            "events_in_referral": len(events),
            "transcoder": type(transcoder).__name__,
            **{name: summary(samples) for name, samples in measured.items()},
            "answer": {"owner": answer["owner"], "custodian": answer["custodian"]["unit"], "status": answer["status"]},
        }
    finally:
        ledger.close()
    return figures


def cli_wall(url: str, reference: str, runs: int) -> dict[str, Any]:
    refledger = str(Path(sys.executable).with_name("refledger"))
    env = {**os.environ, "REFLEDGER_ACTOR": ""}
    env.pop("REFLEDGER_DATABASE_URL", None)

    def wall(*args: str) -> list[float]:
        samples = []
        for _ in range(runs + 1):
            began = time.perf_counter()
            done = subprocess.run([refledger, *args], capture_output=True, env=env, check=False)
            samples.append(time.perf_counter() - began)
            if done.returncode != 0:
                raise SystemExit(f"refledger {' '.join(args)} failed: {done.stderr.decode().strip()}")
        return samples[1:]  # the first run warms the file cache

    owner = wall("--db", url, "owner", reference, "--json")
    startup = wall("--version")
    return {
        "owner_wall_s": {"p50": round(statistics.median(owner), 3), "max": round(max(owner), 3)},
        "startup_wall_s (refledger --version)": round(statistics.median(startup), 3),
        "imports": import_times(refledger, url, reference, env),
    }


def import_times(refledger: str, url: str, reference: str, env: dict[str, str]) -> dict[str, Any]:
    """Where ``refledger owner`` spends its import time (python -X importtime), top-level packages."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", refledger, "--db", url, "owner", reference, "--json"],
        capture_output=True,
        env=env,
        check=False,
        text=True,
    )
    top: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if cumulative.strip().isdigit() and not name.startswith("  "):
            package = name.strip().split(".")[0]
            top[package] = top.get(package, 0.0) + int(cumulative) / 1000
    heaviest = dict(sorted(top.items(), key=lambda item: -item[1])[:8])
    return {"total_ms": round(sum(top.values()), 1), "heaviest_ms": {k: round(v, 1) for k, v in heaviest.items()}}


# --- backends -------------------------------------------------------------------------------


@contextmanager
def sqlite_ledger(paths: list[Path], label: str, reuse: bool) -> Iterator[str]:
    path = OUT / f"{label}.sqlite"
    if reuse and path.exists():
        print(f"reusing {path}", flush=True)
    else:
        for stale in OUT.glob(f"{label}.sqlite*"):
            stale.unlink()
        print(f"importing into {path}", flush=True)
        elapsed = import_all(str(path), paths)
        print(f"  total {elapsed:.0f} s", flush=True)
    try:
        yield str(path)
    finally:
        if not reuse:
            for stale in OUT.glob(f"{label}.sqlite*"):
                stale.unlink()


@contextmanager
def postgres_ledger(paths: list[Path], base: str) -> Iterator[str]:
    from ledger.storage import connect_postgres, resolve_database

    url = f"{base}{'&' if '?' in base else '?'}schema={SCHEMA}"
    database = resolve_database(url)

    def drop() -> None:
        with connect_postgres(database) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')

    drop()
    print(f"importing into {database.location}", flush=True)
    try:
        elapsed = import_all(url, paths)
        print(f"  total {elapsed:.0f} s", flush=True)
        yield url
    finally:
        drop()


def report(backend: str, url: str, reference: str, args: argparse.Namespace) -> dict[str, Any]:
    figures = {"backend": backend, **in_process(url, reference, args.repeat), "cli": cli_wall(url, reference, args.cli_runs)}
    print(json.dumps(figures, indent=2), flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Example: python bench/owner_query.py --backend sqlite")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--big-referral-events", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--chunk",
        type=int,
        default=None,
        help="lines per import file (one transaction each; default: one file, as a referral's history is imported in one file)",
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--postgres-url", default=os.environ.get("REFLEDGER_BENCH_POSTGRES", DEFAULT_POSTGRES))
    parser.add_argument("--repeat", type=int, default=300, help="in-process runs per figure")
    parser.add_argument("--cli-runs", type=int, default=15)
    parser.add_argument("--reuse", action="store_true", help="keep the SQLite ledger in bench/out/ and reuse it")
    parser.add_argument("--sealed", action="store_true", help="import with a fresh ledger data key (free text sealed)")
    args = parser.parse_args(argv)

    from generate import BIG_REFERENCE

    if args.sealed:
        from _ledgers import fresh_data_key

        DATA_KEY.append(fresh_data_key())

    paths = ledger_files(args.events, args.big_referral_events, args.seed, args.chunk or args.events)
    label = f"owner-{args.events}-big{args.big_referral_events}-seed{args.seed}" + ("-sealed" if args.sealed else "")
    results = []
    if args.backend in ("sqlite", "both"):
        with sqlite_ledger(paths, label, args.reuse) as url:
            results.append(report("sqlite", url, BIG_REFERENCE, args))
    if args.backend in ("postgres", "both"):
        with postgres_ledger(paths, args.postgres_url) as url:
            results.append(report("postgres", url, BIG_REFERENCE, args))
    print("\nsummary (ms, p50): owner | read rows | decode | fold ; CLI wall s")
    for figures in results:
        print(
            f"  {figures['backend']:8} {figures['owner']['p50_ms']:7.2f} | {figures['read_rows']['p50_ms']:6.2f} | "
            f"{figures['decode_events']['p50_ms']:6.2f} | {figures['fold_owner_at']['p50_ms']:5.2f} ; "
            f"{figures['cli']['owner_wall_s']['p50']:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Bulk package benchmark: 2,345 subjects imported, triaged and disseminated by CSV, then queried.

Runs the real command line (one process per command, as a user would) against a fresh
ledger per run, on SQLite and on PostgreSQL, and prints the median of each step:

- ``subjects import REF subjects.csv``            2,345 subject_extracted (+ directory entries)
- ``subjects triage REF --from-csv triage.csv``    2,345 subject_triaged
- ``subjects disseminate REF --from-csv sent.csv`` 2,345 subject_disseminated
- ``package REF --at T --json`` and ``subjects list REF --at T --json``

Targets (issue 6): the three recording commands together (~7,000 events) within 5 s, and
``package`` within 1 s, on each backend. Wall times include starting Python (measured on
its own as ``refledger --help``). The CSV files are written to bench/out/.

Usage:
    python bench/bulk.py                       # SQLite and PostgreSQL on 127.0.0.1:5432/test, 3 runs
    python bench/bulk.py --runs 5 --subjects 2345 --postgres postgresql://postgres@host:5432/db
    python bench/bulk.py --no-postgres
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
REF = "R-2012-0716"
BANDS = ("LOW", "MEDIUM", "HIGH", "VERY_HIGH")
FORCES = ("F-NORTH", "F-EAST", "F-WEST", "F-SOUTH", "F-CITY", "F-COAST")
ANALYST = "P-02:analyst@U-IDT"
MANAGER = "P-07:team-manager@U-IDT"


def write_files(subjects: int) -> dict[str, Path]:
    """The package's three CSV files (pseudonymous references only)."""
    OUT.mkdir(parents=True, exist_ok=True)
    refs = [f"SUBJ-{n:05d}" for n in range(1, subjects + 1)]
    files = {
        "subjects": ("subject,category", [f"{s},{('suspect', 'unknown', 'misidentified')[n % 3]}" for n, s in enumerate(refs)]),
        "triage": (
            "subject,risk_tool,risk_tool_version,band,target_force,drivers",
            [f"{s},RPT,3.2,{BANDS[n % 4]},{FORCES[n % 6]},repeat payments;lives with children" for n, s in enumerate(refs)],
        ),
        "sent": ("subject,to_force,authorised_by,grading", [f"{s},{FORCES[n % 6]},P-07,3x5x2:2-B-C" for n, s in enumerate(refs)]),
    }
    paths = {}
    for name, (header, rows) in files.items():
        paths[name] = OUT / f"bulk-{name}-{subjects}.csv"
        paths[name].write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return paths


def refledger() -> list[str]:
    script = Path(sys.executable).parent / "refledger"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from cli import main; main()"]


def timed(db: str, *args: str) -> float:
    started = time.perf_counter()
    result = subprocess.run([*refledger(), "--db", db, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"refledger {' '.join(args[:3])} failed: {result.stderr.strip() or result.stdout.strip()}")
    return elapsed


def one_run(db: str, files: dict[str, Path]) -> dict[str, float]:
    now = datetime.now(UTC).replace(microsecond=0)

    def at(hours: float) -> str:
        return (now - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")

    timed(
        db, "receive", REF, "--originator", "X-AGENCY", "--channel", "liaison", "--custodian-unit", "U-IDT", "--at", at(20), "--as", MANAGER
    )
    times = {
        "import": timed(db, "subjects", "import", REF, str(files["subjects"]), "--at", at(19), "--as", ANALYST),
        "triage": timed(db, "subjects", "triage", REF, "--from-csv", str(files["triage"]), "--at", at(18), "--as", ANALYST),
        "disseminate": timed(db, "subjects", "disseminate", REF, "--from-csv", str(files["sent"]), "--at", at(17), "--as", MANAGER),
    }
    times["record total"] = times["import"] + times["triage"] + times["disseminate"]
    times["package"] = timed(db, "package", REF, "--at", at(1), "--json")
    times["subjects list"] = timed(db, "subjects", "list", REF, "--at", at(1), "--json")
    times["startup (--help)"] = timed(db, "--help")
    return times


def in_process_query(db: str) -> dict[str, float]:
    """The package query without starting Python: read (one query) + folds + obligations."""
    sys.path.insert(0, str(ROOT))
    from ledger.wiring import open_ledger
    from projections.subjects import evaluate_package

    ledger, _ = open_ledger(db)
    try:
        at = datetime.now(UTC)
        started = time.perf_counter()
        referral, subjects = ledger.referral_events(REF), ledger.subject_events(REF)
        read = time.perf_counter()
        summary = evaluate_package(referral, subjects, at)
        done = time.perf_counter()
        if summary.subjects == 0:
            raise SystemExit("the package is empty")
        return {"package read (in process)": read - started, "package folds (in process)": done - read}
    finally:
        ledger.close()


def postgres_schema(base: str) -> tuple[str, str]:
    schema = "bench_bulk_" + uuid.uuid4().hex[:8]
    return f"{base}{'&' if '?' in base else '?'}schema={schema}", schema


def drop_schema(url: str, schema: str) -> None:
    from ledger.storage import connect_postgres, resolve_database

    with connect_postgres(resolve_database(url)) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def bench_backend(name: str, files: dict[str, Path], runs: int, postgres: str | None) -> dict[str, float]:
    results: dict[str, list[float]] = {}
    for run in range(runs):
        if name == "sqlite":
            path = OUT / f"bulk-{run}.sqlite"
            for leftover in OUT.glob(f"bulk-{run}.sqlite*"):
                leftover.unlink()
            db, schema = str(path), None
        else:
            assert postgres is not None
            db, schema = postgres_schema(postgres)
        try:
            for step, seconds in {**one_run(db, files), **in_process_query(db)}.items():
                results.setdefault(step, []).append(seconds)
        finally:
            if schema:
                drop_schema(db, schema)
            else:
                for leftover in OUT.glob(f"bulk-{run}.sqlite*"):
                    leftover.unlink()
        print(
            f"  {name} run {run + 1}/{runs}: record {results['record total'][-1]:.2f} s, package {results['package'][-1]:.2f} s",
            file=sys.stderr,
        )
    return {step: statistics.median(values) for step, values in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=2_345)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test", help="base URL (a fresh schema per run)")
    parser.add_argument("--no-postgres", action="store_true")
    options = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    files = write_files(options.subjects)
    backends = ["sqlite"] + ([] if options.no_postgres else ["postgres"])
    medians = {name: bench_backend(name, files, options.runs, options.postgres) for name in backends}
    steps = list(next(iter(medians.values())))
    print(f"\nBulk package: {options.subjects} subjects, {3 * options.subjects} events recorded; median of {options.runs} runs (seconds)")
    print(f"{'step':<30}" + "".join(f"{name:>12}" for name in backends))
    for step in steps:
        print(f"{step:<30}" + "".join(f"{medians[name][step]:>12.2f}" for name in backends))
    verdicts = {name: (medians[name]["record total"] <= 5.0, medians[name]["package"] <= 1.0) for name in backends}
    for name, (record_ok, package_ok) in verdicts.items():
        print(f"{name}: record ≤ 5 s {'met' if record_ok else 'MISSED'}; package ≤ 1 s {'met' if package_ok else 'MISSED'}")
    report = {"subjects": options.subjects, "runs": options.runs, "medians_seconds": medians, "at": datetime.now(UTC).isoformat()}
    (OUT / "bulk.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if all(all(v) for v in verdicts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: ``accountable`` in process and ``person`` from the CLI, on the 1,000,000-event ledger
with a 5,000-person staff directory (SQLite).

What it does:
1. Reuses the owner benchmark's generated ledger (``bench/generate.py`` via
   ``owner_query.ledger_files``, cached under ``bench/out/``) and imports it into a fresh
   SQLite file (kept with ``--reuse``).
2. Writes and imports a staff directory: every person of the generator's roster in their
   unit and role, plus filler units and people up to ``--people`` (5,000). The team managers
   of U-OPS1 take turns: each holds the role for one stretch, so that one of them is
   accountable for about ``--referrals`` referrals.
3. Times ``accountable_at`` in process for random (referral, instant) pairs, p50 and p99,
   beside ``owner_at`` for the same pairs (the baseline: the ownership fold alone).
4. Times ``refledger --db … person P-MGR-001 --json`` for the busiest manager, wall clock per
   process, alternately with ``refledger --db … owner REF --json`` (the baseline: the CLI's
   start and a one-referral query), and says how many referrals the answer covers.

Figures are printed, never asserted.

Usage:
    python bench/accountable.py                          # 1,000,000 events
    python bench/accountable.py --events 100000 --referrals 500
    python bench/accountable.py --reuse
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

HR = {"person": "P-HR-0001", "role": "hr-officer", "unit": "U-HR"}
SINCE = "2022-12-01T09:00:00Z"


def staff_lines(people: int, manager_stretches: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The directory: the generator's roster, U-OPS1's managers in turns, fillers up to ``people``."""
    from generate import FORCES, ROSTER

    lines: list[dict[str, Any]] = []

    def add(type_: str, at: str, **fields: Any) -> None:
        lines.append({"type": type_, "occurred_at": at, "recorded_at": at, "actor": HR, **fields})

    units = sorted({unit for unit, _ in ROSTER} | {"U-HR"})
    for unit in units:
        add("unit_registered", SINCE, unit=unit, name=unit, kind="force" if unit in FORCES else "agency-unit")
    fillers = [f"U-FILL-{n:03d}" for n in range(1, 101)]
    for unit in fillers:
        add("unit_registered", SINCE, unit=unit, name=unit, kind="agency-unit")
    holdings: list[tuple[str, str, str]] = [(HR["person"], HR["role"], HR["unit"])]
    for (unit, role), staff in ROSTER.items():
        holdings += [(p["person"], role, unit) for p in staff]
    managers = [f"P-MGR-{n:03d}" for n in range(1, len(manager_stretches) + 1)]
    registered = {person for person, _, _ in holdings} | set(managers)
    filler = 0
    while len(registered) < people:
        filler += 1
        person = f"P-F-{filler:05d}"
        registered.add(person)
        role = ("team-manager", "head-of-unit", "analyst", "analyst", "intelligence-officer")[filler % 5]
        holdings.append((person, role, fillers[filler % len(fillers)]))
    for person in sorted(registered):
        add("person_registered", SINCE, person=person, employer="F-NORTH" if person.startswith("P-MGR") else "NCA")
    for person, role, unit in holdings:
        add("role_assigned", SINCE, person=person, role=role, unit=unit)
    # U-OPS1's extra managers take turns (the roster's own managers also hold the role)
    for person, (start, end) in zip(managers, manager_stretches, strict=True):
        add("role_assigned", start, person=person, role="head-of-unit", unit="U-OPS1")
        add("role_ended", end, person=person, role="head-of-unit", unit="U-OPS1")
    lines.sort(key=lambda line: (line["recorded_at"], line["type"] != "unit_registered", line["type"] != "person_registered"))
    return lines


def stretches(ledger: Any, per_manager: int) -> list[tuple[str, str]]:
    """Consecutive periods in which U-OPS1 owned or held about ``per_manager`` referrals each."""
    from projections.store import ReadModels

    models = ReadModels(ledger)
    models.catch_up()
    rows = models._select(  # the benchmark reads the table directly to plan the stretches
        f"SELECT referral, start_us FROM {models._table('rm_intervals')} WHERE unit = 'U-OPS1' AND kind IN ('owner', 'custody') ORDER BY start_us"
    )
    cut, seen = [rows[0]["start_us"]], set()
    for row in rows:  # a new stretch once this one has met ``per_manager`` distinct referrals
        seen.add(row["referral"])
        if len(seen) > per_manager:
            cut.append(row["start_us"])
            seen = {row["referral"]}
    cut.append(rows[-1]["start_us"] + 1)

    def z(us: int) -> str:
        return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%SZ")

    return [(z(a), z(b)) for a, b in itertools.pairwise(cut) if b > a][:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--referrals", type=int, default=2_000, help="about how many referrals one manager answers for")
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--cli-repeat", type=int, default=7, help="timed CLI runs of each command")
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()

    from owner_query import import_all, ledger_files

    from ledger.importing import import_lines
    from ledger.wiring import open_ledger

    OUT.mkdir(exist_ok=True)
    db = OUT / f"accountable-{args.events}.sqlite"
    if not (args.reuse and db.exists()):
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        paths = ledger_files(args.events, 500, 1, args.events)  # one file: a referral's history is imported once
        print(f"imported the ledger in {import_all(str(db), paths):.1f} s", flush=True)
        ledger, _ = open_ledger(str(db))
        try:
            lines = staff_lines(args.people, stretches(ledger, args.referrals))
            data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
            began = time.perf_counter()
            import_lines(ledger, data.splitlines(), historical=True, file_sha256=f"bench-staff-{args.people}")
            print(f"imported the directory: {len(lines):,} events in {time.perf_counter() - began:.1f} s", flush=True)
        finally:
            ledger.close()

    from projections.accountable import accountable_at
    from projections.ownership import owner_at
    from projections.store import ReadModels

    ledger, _ = open_ledger(str(db))
    try:
        models = ReadModels(ledger)
        models.catch_up()
        references = [row["referral"] for row in models._select(f"SELECT referral FROM {models._table('rm_referrals')}")]
        recorder = models._select(  # the officer who recorded the most events (the actor index's busiest person)
            f"SELECT person, COUNT(*) AS n FROM {models._table('rm_actors')} GROUP BY person ORDER BY n DESC, person LIMIT 1"
        )[0]["person"]
        people = sum(1 for e in ledger.staff_index() if e.kind == "person")
        rng = random.Random(7)
        pairs = []
        for reference in rng.sample(references, min(args.repeat, len(references))):
            events = ledger.referral_events(reference)
            first, last = events[0].occurred_at, max(e.occurred_at for e in events)
            pairs.append((reference, first + (last - first) * rng.random()))
        samples: dict[str, list[float]] = {"accountable": [], "owner (baseline)": []}
        for reference, at in pairs:  # interleaved, so load from other processes falls on both alike
            began = time.perf_counter_ns()
            accountable_at(ledger, reference, at)
            samples["accountable"].append((time.perf_counter_ns() - began) / 1e6)
            began = time.perf_counter_ns()
            owner_at(ledger.referral_events(reference), at)
            samples["owner (baseline)"].append((time.perf_counter_ns() - began) / 1e6)
        figures: dict[str, Any] = {"events": ledger.head(), "people": people, "pairs": len(pairs)}
        for name, values in samples.items():
            ordered = sorted(values)
            figures[name] = {"p50_ms": round(statistics.median(values), 3), "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 3)}
        figures["accountable / owner (p50)"] = round(figures["accountable"]["p50_ms"] / figures["owner (baseline)"]["p50_ms"], 2)
    finally:
        ledger.close()

    refledger = str(Path(sys.executable).with_name("refledger"))
    env = {**os.environ, "REFLEDGER_ACTOR": ""}
    person = [refledger, "--db", str(db), "person", "P-MGR-001", "--json"]
    # the baseline: the CLI's own start and a one-referral query, run alternately with `person`
    baseline = [refledger, "--db", str(db), "owner", pairs[0][0], "--json"]
    busiest = [refledger, "--db", str(db), "person", recorder, "--json"]
    walls: dict[str, list[float]] = {"person": [], "person (busiest recorder)": [], "owner (baseline)": []}
    answer: dict[str, Any] = {}
    recorded: dict[str, Any] = {}
    for _ in range(args.cli_repeat + 1):
        for name, command in (("person", person), ("person (busiest recorder)", busiest), ("owner (baseline)", baseline)):
            began = time.perf_counter()
            done = subprocess.run(command, capture_output=True, env=env, check=False)
            walls[name].append(time.perf_counter() - began)
            if done.returncode != 0:
                raise SystemExit(done.stderr.decode())
            if name == "person":
                answer = json.loads(done.stdout)
            elif name == "person (busiest recorder)":
                recorded = json.loads(done.stdout)
    print("$ " + " ".join(person), flush=True)
    print("$ " + " ".join(busiest), flush=True)
    for name, values in walls.items():  # the first round warms the page cache and is left out
        figures[f"{name} (CLI wall s)"] = {"p50": round(statistics.median(values[1:]), 3), "max": round(max(values[1:]), 3)}
    figures["person - owner (CLI p50, s)"] = round(
        figures["person (CLI wall s)"]["p50"] - figures["owner (baseline) (CLI wall s)"]["p50"], 3
    )
    figures["person / owner (CLI p50)"] = round(figures["person (CLI wall s)"]["p50"] / figures["owner (baseline) (CLI wall s)"]["p50"], 2)
    figures["person: events recorded"] = len(answer["events"])
    figures[f"person {recorder} (busiest recorder): events recorded, stretches"] = [len(recorded["events"]), len(recorded["stretches"])]
    figures["person: referrals covered"] = len({s["referral"] for s in answer["stretches"]})
    figures["person: stretches"] = len(answer["stretches"])
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

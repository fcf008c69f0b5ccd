"""Benchmark: the case file (``refledger report``) of a 500-event referral; the target is at most 2 s.

What it does:
1. Generates a ledger with ``bench/generate.py`` (historical mode; one referral ``R-BIG-0001``
   with ``--big-referral-events`` events among ``--events`` in all), cached under
   ``bench/out/``, and imports it into a fresh SQLite file (or the PostgreSQL URL given).
2. Times, in process, each part of a report: reading the referral's events, building the
   case file from the folds (ownership, obligations, late entries, timeline, chart),
   rendering HTML and Markdown, and verifying the whole ledger (which reads every event, so
   it grows with the ledger, not with the referral).
3. Times the CLI as a user runs it, wall clock per process: ``report --no-verify`` and
   ``report`` (with verification), and ``report --pdf`` when Chromium is installed.

Figures are printed, never asserted: other work shares the machine, so read medians.

Usage:
    python bench/report.py                          # 20,000 events, SQLite
    python bench/report.py --events 100000 --runs 9
    python bench/report.py --db postgresql://postgres@127.0.0.1:5432/test?schema=bench_report
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

TARGET_S = 2.0


def ledger_file(events: int, big: int, seed: int) -> Path:
    """The generated ledger as one JSON Lines file (made once, then reused)."""
    from generate import generate, write_jsonl

    OUT.mkdir(exist_ok=True)
    path = OUT / f"report-{events}-big{big}-seed{seed}.jsonl"
    if not path.exists():
        began = time.perf_counter()
        partial = path.with_suffix(".partial")
        write_jsonl(partial, generate(events, seed=seed, big_referral_events=big, historical=True))
        partial.rename(path)
        print(f"generated {events:,} events in {time.perf_counter() - began:.1f} s", flush=True)
    return path


def fresh_sqlite(path: Path) -> str:
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()
    return str(path)


def import_ledger(url: str, source: Path) -> None:
    from ledger.importing import import_file
    from ledger.wiring import open_ledger

    ledger, _ = open_ledger(url)
    began = time.perf_counter()
    try:
        result = import_file(ledger, source, historical=True)
    finally:
        ledger.close()
    print(f"imported {result.events:,} events in {time.perf_counter() - began:.1f} s", flush=True)


def seconds(run: Callable[[], Any], repeat: int) -> dict[str, float]:
    run()  # warm: imports, template compilation, the file cache
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        samples.append(time.perf_counter() - began)
    return {"median_s": round(statistics.median(samples), 4), "max_s": round(max(samples), 4)}


def in_process(url: str, reference: str, repeat: int) -> dict[str, Any]:
    from ledger.checkpointing import latest_checkpoint
    from ledger.policy import DEFAULT_POLICY
    from ledger.verification import verify_ledger
    from ledger.wiring import open_ledger
    from projections.report import case_file, integrity_statement, render_html, render_markdown

    ledger, database = open_ledger(url)
    try:
        at = ledger.clock()
        events = ledger.referral_events(reference)
        subjects = ledger.subject_events(reference)

        def build() -> Any:
            return case_file(events, subjects, at=at, policy=DEFAULT_POLICY, integrity=integrity_statement(None, None, events))

        case = build()

        def whole() -> str:
            found = ledger.referral_events(reference)
            verification = verify_ledger(ledger, database)
            statement = integrity_statement(verification, latest_checkpoint(ledger, database), found)
            made = case_file(found, ledger.subject_events(reference), at=at, policy=DEFAULT_POLICY, integrity=statement)
            return render_html(made)

        html = render_html(case)
        figures = {
            "events_in_referral": len(events),
            "timeline_rows": len(case.timeline),
            "obligations": len(case.obligations),
            "html_bytes": len(html.encode()),
            "read_events": seconds(lambda: (ledger.referral_events(reference), ledger.subject_events(reference)), repeat),
            "case_file_folds": seconds(build, repeat),
            "render_html": seconds(lambda: render_html(case), repeat),
            "render_markdown": seconds(lambda: render_markdown(case), repeat),
            "verify_whole_ledger": seconds(lambda: verify_ledger(ledger, database), max(3, repeat // 4)),
            "report_with_verify": seconds(whole, max(3, repeat // 4)),
        }
    finally:
        ledger.close()
    return figures


def cli_wall(url: str, reference: str, runs: int) -> dict[str, Any]:
    from projections.report import find_chromium

    refledger = str(Path(sys.executable).with_name("refledger"))
    env = {**os.environ, "REFLEDGER_ACTOR": ""}
    env.pop("REFLEDGER_DATABASE_URL", None)

    def wall(*args: str) -> dict[str, float]:
        samples = []
        for _ in range(runs + 1):
            began = time.perf_counter()
            done = subprocess.run([refledger, "--db", url, *args], capture_output=True, env=env, check=False)
            samples.append(time.perf_counter() - began)
            if done.returncode != 0:
                raise SystemExit(f"refledger {' '.join(args)} failed: {done.stderr.decode().strip()}")
        kept = samples[1:]  # the first run warms the file cache
        return {"median_s": round(statistics.median(kept), 3), "max_s": round(max(kept), 3)}

    with tempfile.TemporaryDirectory(prefix="refledger-bench-report-") as folder:
        page = str(Path(folder) / "case-file.html")
        figures: dict[str, Any] = {
            "report_no_verify": wall("report", reference, "--no-verify", "--out", page),
            "report": wall("report", reference, "--out", page),
            "report_markdown": wall("report", reference, "--no-verify", "--out", str(Path(folder) / "case-file.md")),
            "version_startup": wall("--version"),
        }
        if find_chromium() is not None:
            figures["report_pdf_no_verify"] = wall("report", reference, "--no-verify", "--pdf", str(Path(folder) / "case-file.pdf"))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0], epilog="Example: python bench/report.py --events 20000")
    parser.add_argument("--events", type=int, default=20_000, help="events in the whole ledger")
    parser.add_argument("--big-referral-events", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", help="a PostgreSQL URL (with ?schema=…) to use instead of a fresh SQLite file")
    parser.add_argument("--repeat", type=int, default=20, help="in-process runs per figure")
    parser.add_argument("--runs", type=int, default=7, help="CLI runs per figure")
    args = parser.parse_args(argv)

    from generate import BIG_REFERENCE

    source = ledger_file(args.events, args.big_referral_events, args.seed)
    if args.db:
        url = args.db
        import_ledger(url, source)
    else:
        url = fresh_sqlite(OUT / f"report-{args.events}-big{args.big_referral_events}.sqlite")
        import_ledger(url, source)
    figures = {
        "ledger_events": args.events,
        "backend": "postgres" if url.startswith("postgres") else "sqlite",
        **in_process(url, BIG_REFERENCE, args.repeat),
        "cli": cli_wall(url, BIG_REFERENCE, args.runs),
    }
    print(json.dumps(figures, indent=2), flush=True)
    cli = figures["cli"]
    print(
        f"\n{figures['events_in_referral']}-event referral in a {args.events:,}-event ledger ({figures['backend']}): "
        f"folds {figures['case_file_folds']['median_s'] * 1000:.1f} ms + HTML {figures['render_html']['median_s'] * 1000:.1f} ms; "
        f"verify {figures['verify_whole_ledger']['median_s']:.2f} s; "
        f"CLI report {cli['report']['median_s']:.2f} s ({cli['report']['median_s'] / TARGET_S:.0%} of the {TARGET_S:.0f} s target), "
        f"without verification {cli['report_no_verify']['median_s']:.2f} s"
        + (f", PDF {cli['report_pdf_no_verify']['median_s']:.2f} s" if "report_pdf_no_verify" in cli else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

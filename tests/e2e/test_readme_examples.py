"""The README's examples, run in order on the demo ledger, as a new user would paste them.

Every line of a ``sh`` block that runs ``refledger`` (or sets up for it: ``export``, ``mkdir``,
``eval``) is run by bash in the demo's folder (its key and checkpoint), against its ledger, with the input files the
examples name written first. Each must exit 0, or 3 where it asks for ``--fail-on-findings``.
Left out: ``make`` and ``python bench/…`` lines (building and benchmarking), ``refledger demo`` (it made the ledger
these run on), ``directory enforce`` (it would hold every later example to a directory the
demo's actors are not all in; tests/e2e cover it), the signed-note examples (they name
checkpoints of two months that the examples do not make) and lines on a PostgreSQL URL (the same
commands run here on the demo ledger). The ``--pdf`` examples need headless Chromium: without it
they are left out, except in CI (CI=true), where ``.ci/run`` installs it and they run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from projections.report import find_chromium

ROOT = Path(__file__).resolve().parents[2]
WORKED = ROOT / "tests" / "data" / "worked_example" / "cybertip.jsonl"


def examples() -> list[str]:
    lines = []
    printable = find_chromium() is not None or os.environ.get("CI") == "true"
    for block in re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S):
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if not command.startswith(("refledger ", "export ", "mkdir ", "eval ")):
                continue  # make, python bench/…: building and benchmarking, not using
            if command.startswith(("refledger demo", "refledger directory enforce")) or "postgresql://" in command:
                continue
            if command.startswith("refledger migration close"):
                continue  # the demo ledger's migration was closed by its first live event
            if ".note" in command:
                continue  # the signed-note examples name a month of checkpoints no example before them makes
            if "--pdf" in command and not printable:
                continue  # no Chromium to print with here (tests/e2e/test_report_browser.py says so)
            lines.append(command)
    return lines


def inputs(folder: Path) -> None:
    """The files the examples read, as a user would have them."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    record = {
        "type": "received",
        "referral": "R-2026-0002",
        "occurred_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "actor": {"person": "P-011", "role": "registry-officer", "unit": "U-INTAKE"},
        "originator": "X-FORCE",
        "channel": "liaison",
        "custodian_unit": "U-INTAKE",
    }
    (folder / "events.jsonl").write_bytes(orjson.dumps(record) + b"\n")
    shutil.copy(WORKED, folder / "cybertip.jsonl")
    (folder / "subjects.csv").write_text("subject,category\nSUBJ-9001,suspect\nSUBJ-9002,suspect\n")
    (folder / "subjects-banded.csv").write_text("subject,category,band,target_force\nSUBJ-9101,suspect,HIGH,F-NORTH\n")
    (folder / "triage.csv").write_text("subject,risk_tool,risk_tool_version,band\nSUBJ-9001,RPT,3.2,MEDIUM\nSUBJ-9002,RPT,3.2,LOW\n")
    (folder / "tranche-1.csv").write_text(
        "subject,to_force,authorised_by,late_reason\nSUBJ-05,F-NORTH,P-042,Entered from the tranche log.\n"
    )


def test_the_readme_examples_run_in_order_on_the_demo_ledger(tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items() if not key.startswith("REFLEDGER_")}
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    demo = tmp_path / "demo"
    made = subprocess.run(["refledger", "demo", "--dir", str(demo)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    env["REFLEDGER_DATABASE_URL"] = str(demo / "ledger.sqlite")
    inputs(demo)
    lines = examples()
    assert len(lines) > 60, "the README's examples were not found"
    failures = []
    for line in lines:
        if line.startswith("export "):
            name, value = line.removeprefix("export ").split("=", 1)
            env[name] = value
            continue
        if "staff.csv" in line:  # an HR extract of today: roles from now, in the unit registered above
            when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            (demo / "staff.csv").write_text(f"person,employer,role,unit,from\nP-951,NCA,analyst,U-OPS9,{when}\n")
        done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env, cwd=demo, timeout=120)
        expected = 3 if "--fail-on-findings" in line else 0
        if done.returncode != expected or "Traceback" in done.stderr:
            failures.append(f"{line}\n  -> exit {done.returncode}: {done.stderr.strip()[-300:]}")
    assert not failures, "README examples that do not run:\n" + "\n".join(failures)

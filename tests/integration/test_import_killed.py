"""A streaming import killed (SIGKILL) at random points leaves the ledger exactly as before.

The import saves in steps inside one database transaction; a killed process never commits,
so the stored events (every row, byte for byte) are those of before, each time.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.importing import import_file
from ledger.storage import resolve_database
from ledger.wiring import open_ledger
from tests.conftest import EXAMPLES, raw_execute, synthetic_lines

ROOT = Path(__file__).resolve().parents[2]
KILLS = 20
#: a kill comes within this many seconds of the start (a few seconds per kill)
LATEST_KILL = 5.0


def fingerprint(url: str) -> tuple[int, str]:
    """How many events are stored, and a hash of every stored row in log order."""
    database = resolve_database(url)
    order = "rowid" if database.backend == "sqlite" else "notification_id"
    rows = raw_execute(url, f"SELECT originator_id, originator_version, topic, state FROM {database.events_table} ORDER BY {order}")
    digest = hashlib.sha256()
    for row in rows:
        digest.update(repr(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)).encode())
    return len(rows), digest.hexdigest()


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kill") / "long.jsonl"
    path.write_bytes(b"\n".join(synthetic_lines(100_000 // 11 + 1)) + b"\n")
    return path


def test_an_import_killed_at_random_points_leaves_the_ledger_as_it_was(database_url: str, long_file: Path) -> None:
    # Given a ledger holding the worked example
    ledger, _ = open_ledger(database_url)
    import_file(ledger, EXAMPLES / "cybertip.jsonl", historical=True)
    ledger.close()
    before = fingerprint(database_url)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "cli", "--db", database_url, "import", str(long_file)]
    rng = random.Random(13)
    killed = 0
    for _ in range(KILLS):
        # When a 100,000-line import is killed at a random moment
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, LATEST_KILL))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait()
        # Then the ledger is exactly as before (had it finished, it would hold the file)
        if process.returncode == 0:
            pytest.fail("the import finished before the kill; raise the file's length")
        assert fingerprint(database_url) == before
    assert killed == KILLS
    # and the ledger is still usable: the import then runs to the end
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert fingerprint(database_url)[0] > before[0] + 100_000

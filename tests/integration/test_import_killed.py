"""A streaming import killed (SIGKILL) at random points leaves the ledger exactly as before.

The import saves in steps inside one database transaction; a killed process never commits,
so the stored events (every row, byte for byte) are those of before, each time.

The kill points cover the whole import: its duration is measured first (the same file
imported into a scratch ledger of the same backend), then one random point is drawn in
each of KILLS equal slices of it, from the start (reading, hashing) through the steps
saved in the transaction to the final commit. Each kill costs the time up to its point,
so KILLS points cost about KILLS/2 imports per backend: 10 per backend (20 in all) keep
the suite's time reasonable on a small machine; bench/kill_import.py kills a
1,000,000-line import the same way.
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
from ledger.storage import connect_postgres, resolve_database
from ledger.wiring import open_ledger
from tests.conftest import EXAMPLES, raw_execute, synthetic_lines

ROOT = Path(__file__).resolve().parents[2]
#: kill points per backend, one in each equal slice of the measured duration
KILLS = 10
#: a kill point lies in the first this-much of the measured duration: on a shared machine a
#: later run of the same import can be a fifth quicker than the measured one
SPAN = 0.75


def fingerprint(url: str) -> tuple[int, str]:
    """How many events are stored, and a hash of every stored row in log order."""
    database = resolve_database(url)
    order = "rowid" if database.backend == "sqlite" else "notification_id"
    rows = raw_execute(url, f"SELECT originator_id, originator_version, topic, state FROM {database.events_table} ORDER BY {order}")
    digest = hashlib.sha256()
    for row in rows:
        digest.update(repr(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)).encode())
    return len(rows), digest.hexdigest()


def scratch_url(url: str) -> str:
    """Another, empty ledger of the same backend (a sibling file, or a sibling schema)."""
    database = resolve_database(url)
    if database.backend == "sqlite":
        return str(Path(database.location).with_name("scratch.sqlite"))
    assert database.schema is not None
    return url.replace(f"schema={database.schema}", f"schema={database.schema}_scratch")


def drop_scratch(url: str) -> None:
    database = resolve_database(url)
    if database.backend == "postgres":
        with connect_postgres(database) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{database.schema}" CASCADE')


def import_seconds(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return time.perf_counter() - started


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kill") / "long.jsonl"
    path.write_bytes(b"\n".join(synthetic_lines(100_000 // 11 + 1)) + b"\n")
    return path


@pytest.mark.timeout(1200)  # about 6 imports of 100,000 lines: a few minutes on a busy machine
def test_an_import_killed_at_random_points_leaves_the_ledger_as_it_was(database_url: str, long_file: Path) -> None:
    # Given a ledger holding the worked example
    ledger, _ = open_ledger(database_url)
    import_file(ledger, EXAMPLES / "cybertip.jsonl", historical=True)
    ledger.close()
    before = fingerprint(database_url)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def command_on(url: str) -> list[str]:
        return [sys.executable, "-m", "cli", "--db", url, "import", str(long_file)]

    command = command_on(database_url)
    # and the duration of that import, measured on a scratch ledger of the same backend
    scratch = scratch_url(database_url)
    try:
        duration = import_seconds(command_on(scratch), env)
    finally:
        drop_scratch(scratch)
    rng = random.Random(13)
    points = [rng.uniform(i, i + 1) * SPAN * duration / KILLS for i in range(KILLS)]
    killed = 0
    for point in points:
        # When a 100,000-line import is killed at a random moment of its run
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(point)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait()
        # Then the ledger is exactly as before (had it finished, it would hold the file)
        if process.returncode == 0:
            pytest.fail(f"the import finished before the kill at {point:.1f} s of a measured {duration:.1f} s")
        assert fingerprint(database_url) == before, f"changed by the import killed at {point:.1f} s of {duration:.1f} s"
    assert killed == KILLS
    # and the ledger is still usable: the import then runs to the end
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert fingerprint(database_url)[0] > before[0] + 100_000

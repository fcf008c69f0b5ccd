"""Signed-note checkpoints, consistency proofs and witnesses on a large generated ledger (SQLite).

Builds a ledger of N generated events (bench/generate.py, cached under bench/out/), takes a
checkpoint at about half and one at the end, then measures (medians of --repeat runs):

- verify with one checkpoint file and with both (one pass either way): events/s and ratio;
- writing the signed note; proving consistency from the ledger (reads the events up to NEW);
- checking the proof offline; a witness cosigning (with the proof) and checking two
  cosignatures; the sizes of the note, a cosigned note and the proof.

    python bench/transparency.py [--events 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from verify import fresh, parts  # noqa: E402

from ledger.checkpoint import new_signing_key  # noqa: E402
from ledger.checkpointing import make_checkpoint  # noqa: E402
from ledger.importing import import_file  # noqa: E402
from ledger.signed_note import parse_note  # noqa: E402
from ledger.storage import open_ledger  # noqa: E402
from ledger.transparency import (  # noqa: E402
    check_consistency,
    check_witnesses,
    checkpoint_from_note,
    checkpoint_note,
    parse_witness_keys,
    prove_consistency,
    witness_cosign,
)
from ledger.verification import verify_ledger  # noqa: E402


def median_seconds(action: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    runs, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    paths = parts(args.events)
    work = Path(tempfile.mkdtemp(prefix="refledger-transparency-"))
    url = str(work / "ledger.sqlite")
    fresh(url)
    ledger, database = open_ledger(url)
    private, _pem, public_hex = new_signing_key()
    public = bytes.fromhex(public_hex)
    lines = b"".join(path.read_bytes() for path in paths).splitlines(keepends=True)
    halves = [work / "first-half.jsonl", work / "second-half.jsonl"]
    halves[0].write_bytes(b"".join(lines[: len(lines) // 2]))
    halves[1].write_bytes(b"".join(lines[len(lines) // 2 :]))
    import_file(ledger, halves[0], historical=True)
    old = make_checkpoint(ledger, database, private).checkpoint
    import_file(ledger, halves[1], historical=True)
    new = make_checkpoint(ledger, database, private).checkpoint
    figures: dict[str, Any] = {"events": new.size, "old_size": old.size}

    note_seconds, note = median_seconds(lambda: checkpoint_note(new, private), args.repeat)
    old_note = checkpoint_note(old, private)
    old_point, new_point = checkpoint_from_note(old_note, "old"), checkpoint_from_note(note, "new")
    # interleaved, so that load on the machine falls on both alike
    ones, boths = [], []
    for _ in range(args.repeat):
        ones.append(median_seconds(lambda: verify_ledger(ledger, database, new_point, public), 1)[0])
        seconds, result = median_seconds(lambda: verify_ledger(ledger, database, new_point, public, others=[old_point]), 1)
        boths.append(seconds)
    one, both = statistics.median(ones), statistics.median(boths)
    assert result.sound and all(c.extends for c in result.others)
    figures["verify_one_checkpoint_events_per_second"] = round(new.size / one)
    figures["verify_two_checkpoints_events_per_second"] = round(new.size / both)
    figures["two_over_one_time_ratio"] = round(both / one, 3)
    figures["signed_note_ms"] = round(note_seconds * 1000, 3)
    figures["note_bytes"] = len(note.encode())

    prove_seconds, proof = median_seconds(lambda: prove_consistency(database, old_point, new_point), args.repeat)
    figures["prove_consistency_seconds"] = round(prove_seconds, 3)
    figures["prove_consistency_events_per_second"] = round(new.size / prove_seconds)
    figures["proof_bytes"] = len(proof)
    figures["proof_hashes"] = proof.count(b"\n") - 1
    check_seconds, checked = median_seconds(lambda: check_consistency(old_point, new_point, proof, public), args.repeat)
    assert checked.sound
    figures["verify_consistency_ms"] = round(check_seconds * 1000, 3)

    witnesses = [new_signing_key() for _ in range(2)]
    cosign_runs, cosigned = [], note
    for _ in range(args.repeat):
        state = Path(tempfile.mkdtemp(prefix="witness-", dir=work))
        witness_cosign(old_note.encode(), "old", witnesses[0][0], "bench.example/w1", state, public)
        started = time.perf_counter()
        made = witness_cosign(note.encode(), "new", witnesses[0][0], "bench.example/w1", state, public, proof)
        cosign_runs.append(time.perf_counter() - started)
    second = witness_cosign(made.note.encode(), "new", witnesses[1][0], "bench.example/w2", work / "w2", public)
    cosigned = second.note
    figures["witness_cosign_with_proof_ms"] = round(statistics.median(cosign_runs) * 1000, 3)
    figures["cosigned_note_bytes"] = len(cosigned.encode())
    keys = parse_witness_keys([made.witness.encode(), second.witness.encode()])
    point = checkpoint_from_note(parse_note(cosigned.encode()), "cosigned")
    witness_seconds, found = median_seconds(lambda: check_witnesses(point, keys, None), args.repeat)
    assert found.sound and found.valid == 2
    figures["check_two_cosignatures_ms"] = round(witness_seconds * 1000, 3)
    ledger.close()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

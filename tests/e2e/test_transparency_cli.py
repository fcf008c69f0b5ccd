"""Signed-note checkpoints, offline consistency proofs and witnesses, as an auditor and a witness run them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from ledger.storage import CHECKPOINTS_TABLE, resolve_database
from tests.conftest import EXAMPLES, raw_execute
from tests.e2e.test_integrity_cli import tamper

Run = Callable[..., Result]
ACTOR = "P-04:team-manager@U-IDT"


@pytest.fixture
def run(database_url: str) -> Run:
    """Run refledger on an empty ledger; asserts the exit code (0 unless told)."""
    runner = CliRunner()

    def invoke(*args: str, exit_code: int = 0) -> Result:
        env = {"REFLEDGER_CHECKPOINT_KEY": None, "REFLEDGER_ACTOR": ACTOR}
        result = runner.invoke(main, ["--db", database_url, *args], catch_exceptions=False, env=env)
        assert result.exit_code == exit_code, result.output
        return result

    return invoke


def keygen(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.pem"
    assert CliRunner().invoke(main, ["keygen", "--out", str(path)], catch_exceptions=False).exit_code == 0
    return path


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def checkpoint(run: Run, key: Path, path: Path) -> dict[str, Any]:
    made = as_json(run("checkpoint", "--key", str(key), "--note", str(path), "--json"))
    assert made["note"] == str(path)
    return dict(made)


def size_of(note: Path) -> int:
    return int(note.read_text().split("\n")[1])


def grow(run: Run, notes: int) -> None:
    for number in range(notes):
        run("note", "R-2024-0311", "--text", f"note {number}")


@pytest.fixture
def three(run: Run, tmp_path: Path) -> tuple[Path, list[Path]]:
    """A ledger checkpointed after a first small migration (1 event and the import's record),
    after the worked example, and after 7 notes more (the first of them closes the migration)."""
    key = keygen(tmp_path, "ledger")
    first = tmp_path / "first.jsonl"
    first.write_text(
        json.dumps(
            {"type": "received", "referral": "R-2024-0001", "occurred_at": "2024-01-01T00:00:00Z", "recorded_at": "2024-01-01T00:00:00Z",
             "actor": {"person": "P-01", "role": "registry", "unit": "U-INTAKE"}, "originator": "X-FORCE", "channel": "liaison",
             "custodian_unit": "U-INTAKE"}
        ) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    run("import", "--historical", str(first))
    points = [tmp_path / "c1.note", tmp_path / "cm.note", tmp_path / "cn.note"]
    assert checkpoint(run, key, points[0])["checkpoint"]["size"] == 2
    run("import", "--historical", str(EXAMPLES / "cybertip.jsonl"))
    checkpoint(run, key, points[1])
    grow(run, 7)
    checkpoint(run, key, points[2])
    return key, points


@pytest.mark.parametrize(("old", "new"), [(0, 2), (1, 2), (2, 2), (0, 1)], ids=["1-n", "m-n", "n-n", "1-m"])
def test_a_consistency_proof_made_from_the_ledger_checks_offline(
    run: Run, three: tuple[Path, list[Path]], tmp_path: Path, old: int, new: int
) -> None:
    key, points = three
    proof = tmp_path / "proof"
    made = as_json(run("consistency", str(points[old]), str(points[new]), "--out", str(proof), "--json"))
    assert proof.read_bytes().startswith(f"old {made['old_size']}\n".encode())
    assert made["hashes"] == proof.read_bytes().count(b"\n") - 1
    assert (made["hashes"] == 0) == (old == new)
    # offline: no --db is given, so no ledger could be read even by mistake
    answer = CliRunner().invoke(
        main,
        ["verify-consistency", str(points[old]), str(points[new]), str(proof), "--public-key", f"{key}.pub", "--json"],
        catch_exceptions=False,
        env={"REFLEDGER_DATABASE_URL": str(tmp_path / "absent" / "no.sqlite")},
    )
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.stdout)["ok"] is True
    assert not (tmp_path / "absent").exists()


def test_a_rewritten_ledgers_new_checkpoint_fails_consistency(
    run: Run, three: tuple[Path, list[Path]], tmp_path: Path, database_url: str
) -> None:
    key, (_c1, cm, cn) = three
    honest = tmp_path / "honest.proof"
    run("consistency", str(cm), str(cn), "--out", str(honest))
    # Given an insider who edits an early event and drops the stored checkpoints so the next one starts afresh
    rewrite(database_url, position=4)  # the second event of the worked example
    rewritten = tmp_path / "rewritten.note"
    checkpoint(run, key, rewritten)
    # When the auditor checks the new checkpoint against the one they kept
    refused = run("consistency", str(cm), str(rewritten), "--out", str(tmp_path / "p"), exit_code=3)
    assert refused.stderr.startswith("Refused: the ledger's events do not hash to both checkpoints' roots")
    assert not (tmp_path / "p").exists()
    failed = run("verify-consistency", str(cm), str(rewritten), str(honest), "--public-key", f"{key}.pub", "--json", exit_code=3)
    assert json.loads(failed.stdout)["ok"] is False
    assert "the ledger was rewritten between them" in failed.stderr
    # and verify with both kept checkpoints names the rewrite too
    both = run("verify", "--checkpoint", str(cm), "--checkpoint", str(cn), "--public-key", f"{key}.pub", "--json", exit_code=3)
    answer = json.loads(both.stdout)
    assert answer["checkpoint"]["size"] == size_of(cn) and answer["checkpoint"]["extends"] is False
    assert [c["extends"] for c in answer["other_checkpoints"]] == [False]


def test_verify_checks_every_checkpoint_given(run: Run, three: tuple[Path, list[Path]], tmp_path: Path) -> None:
    key, points = three
    answer = as_json(run("verify", *[a for p in points for a in ("--checkpoint", str(p))], "--public-key", f"{key}.pub", "--json"))
    assert answer["ok"] is True
    assert (
        answer["checkpoint"]["size"] == size_of(points[2]) == size_of(points[1]) + 7 + 1 and answer["checkpoint"]["form"] == "signed-note"
    )  # 7 notes, and the first closed the migration
    assert sorted(c["size"] for c in answer["other_checkpoints"]) == [2, size_of(points[1])]
    assert all(c["extends"] and c["signature_status"] == "valid" for c in answer["other_checkpoints"])
    # a checkpoint signed by someone else among them fails the whole verification
    other = keygen(tmp_path, "other")
    stranger = tmp_path / "stranger.note"
    checkpoint(run, other, stranger)
    failed = run("verify", "--checkpoint", str(points[0]), "--checkpoint", str(stranger), "--public-key", f"{key}.pub", exit_code=3)
    assert "not the public key given" in failed.stdout or "another key" in failed.stdout


def witness(run: Run, tmp_path: Path, name: str, note: Path, log: Path, *extra: str, exit_code: int = 0) -> Result:
    return run(
        "witness", "cosign", str(note), "--key", str(tmp_path / f"{name}.pem"), "--name", f"audit.example/{name}",
        "--state", str(tmp_path / f"{name}-state"), "--log-key", f"{log}.pub", *extra, exit_code=exit_code,
    )  # fmt: skip


def test_two_witnesses_cosign_and_the_second_refuses_a_split_view(run: Run, tmp_path: Path, database_url: str) -> None:
    log = keygen(tmp_path, "ledger")
    keygen(tmp_path, "w1"), keygen(tmp_path, "w2")
    run("import", "--historical", str(EXAMPLES / "cybertip.jsonl"))
    first = tmp_path / "first.note"
    checkpoint(run, log, first)
    # Given both witnesses cosign the first checkpoint, one after the other
    by_one = tmp_path / "first.w1.note"
    v1 = as_json(witness(run, tmp_path, "w1", first, log, "--out", str(by_one), "--json"))["verifier_key"]
    by_both = tmp_path / "first.w12.note"
    v2 = as_json(witness(run, tmp_path, "w2", by_one, log, "--out", str(by_both), "--json"))["verifier_key"]
    verified = as_json(
        run("verify", "--checkpoint", str(by_both), "--public-key", f"{log}.pub", "--witness-key", v1, "--witness-key", v2, "--json")
    )
    assert verified["ok"] and verified["witnesses"]["valid"] == 2
    bundle = _proof_file(run, tmp_path)
    checked = as_json(
        run(
            "verify-proof",
            str(bundle),
            "--public-key",
            f"{log}.pub",
            "--checkpoint",
            str(by_both),
            "--witness-key",
            v1,
            "--witness-key",
            v2,
            "--json",
        )
    )
    assert checked["ok"] and checked["witnesses"]["valid"] == 2
    bundle.unlink()
    # And the ledger grows honestly; the first witness cosigns the new checkpoint with a proof
    grow(run, 3)
    honest = tmp_path / "honest.note"
    checkpoint(run, log, honest)
    proof = tmp_path / "first-to-honest.proof"
    run("consistency", str(first), str(honest), "--out", str(proof))
    needs_proof = witness(run, tmp_path, "w1", honest, log, exit_code=1)
    assert "give --proof" in needs_proof.stderr
    line = witness(run, tmp_path, "w1", honest, log, "--proof", str(proof)).stdout
    assert line.startswith("\u2014 audit.example/w1 ") and line.endswith("\n") and line.count("\n") == 1
    state_before = next((tmp_path / "w2-state").glob("*.checkpoint")).read_bytes()
    # When an insider rewrites an early event and takes a fresh checkpoint of the same size
    rewrite(database_url, position=2)
    forked = tmp_path / "forked.note"
    assert checkpoint(run, log, forked)["checkpoint"]["size"] == as_json(run("verify", "--json", exit_code=3))["events"] == 54
    assert forked.read_text().split("\n")[:2] == honest.read_text().split("\n")[:2]
    assert forked.read_text() != honest.read_text()
    # and shows it to the second witness (no proof from its size to the fork can be made from the ledger)
    assert run("consistency", str(first), str(forked), "--out", str(tmp_path / "none"), exit_code=3).stderr.startswith("Refused:")
    refused = witness(run, tmp_path, "w2", forked, log, "--proof", str(proof), exit_code=3)
    # Then it refuses to cosign and keeps the state it had
    assert refused.stderr.startswith("Refused: the consistency proof from size 50 to 54 does not verify")
    assert next((tmp_path / "w2-state").glob("*.checkpoint")).read_bytes() == state_before
    # and the first witness, which cosigned the honest checkpoint of that size, calls it a split view
    same_size = witness(run, tmp_path, "w1", forked, log, exit_code=3)
    assert "a split view" in same_size.stderr
    # and a verifier requiring both witnesses on the honest checkpoint sees only one
    lacking = run("verify-proof", str(_proof_file(run, tmp_path)), "--public-key", f"{log}.pub", "--checkpoint", str(forked),
                  "--witness-key", v1, "--witness-key", v2, "--json", exit_code=3)  # fmt: skip
    assert json.loads(lacking.stdout)["witnesses"] == {
        "required": 2,
        "valid": 0,
        "ok": False,
        "witnesses": [
            {"name": "audit.example/w1", "status": "absent", "timestamp": None},
            {"name": "audit.example/w2", "status": "absent", "timestamp": None},
        ],
    }


def rewrite(database_url: str, position: int) -> None:
    """Edit one event's content as a superuser would and drop the stored checkpoints, so the next starts afresh."""
    database = resolve_database(database_url)
    tamper(database_url, f"UPDATE {{table}} SET state = CAST(replace(CAST(state AS TEXT), 'VERY_HIGH', 'LOW') AS BLOB) WHERE {{position}} = {position}"
           if database.backend == "sqlite" else
           f"UPDATE {{table}} SET state = convert_to(replace(convert_from(state, 'UTF8'), 'VERY_HIGH', 'LOW'), 'UTF8') WHERE {{position}} = {position}")  # fmt: skip
    if database.backend == "sqlite":
        raw_execute(database_url, f"DROP TRIGGER {CHECKPOINTS_TABLE}_no_delete")
        raw_execute(database_url, f"DELETE FROM {CHECKPOINTS_TABLE}")
    else:
        table = f"{database.schema or 'public'}.{CHECKPOINTS_TABLE}"
        raw_execute(database_url, f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        raw_execute(database_url, f"DELETE FROM {table}")


def _proof_file(run: Run, tmp_path: Path) -> Path:
    path = tmp_path / "R-2024-0311.proof.json"
    run("proof", "R-2024-0311", "--out", str(path))
    return path


def test_bad_inputs_are_one_line_errors_and_write_nothing(run: Run, tmp_path: Path) -> None:
    log, witness_key = keygen(tmp_path, "ledger"), keygen(tmp_path, "w")
    run("import", "--historical", str(EXAMPLES / "cybertip.jsonl"))
    good = tmp_path / "good.note"
    checkpoint(run, log, good)
    proof = tmp_path / "good.proof"
    run("consistency", str(good), str(good), "--out", str(proof))
    files = {
        "truncated.note": good.read_bytes()[:100],
        "garbled.note": b"x\n\n\xe2\x80\x94 a b\n",
        "truncated.proof": b"old 4",
        "hashless.proof": b"old 4\nAAAA\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    t = str(tmp_path)
    cases = [
        (("verify", "--checkpoint", f"{t}/truncated.note", "--public-key", f"{log}.pub"), "does not end in a newline"),
        (("verify", "--checkpoint", f"{t}/garbled.note", "--public-key", f"{log}.pub"), "not base64"),
        (("verify", "--checkpoint", str(good)), "give --public-key"),
        (("verify", "--checkpoint", str(good), "--public-key", f"{log}.pub", "--witness-key", "nonsense"), "not a verifier key"),
        (("verify", "--checkpoint", str(good), "--public-key", f"{log}.pub", "--witnesses", "1"), "give --witness-key"),
        (("verify-consistency", str(good), str(good), f"{t}/truncated.proof", "--public-key", f"{log}.pub"), "does not end in a newline"),
        (("verify-consistency", str(good), str(good), f"{t}/hashless.proof", "--public-key", f"{log}.pub"), "32-byte hash"),
        (("verify-consistency", str(good), str(good), f"{t}/absent.proof", "--public-key", f"{log}.pub"), "cannot read the proof"),
        (("consistency", str(good), f"{t}/absent.note", "--out", f"{t}/out.proof"), "cannot read the checkpoint"),
        (
            ("witness", "cosign", str(good), "--key", f"{log}.pub", "--name", "a/w", "--state", f"{t}/s", "--log-key", f"{log}.pub"),
            "private key",
        ),
        (
            ("witness", "cosign", str(good), "--key", str(witness_key), "--name", "a w", "--state", f"{t}/s", "--log-key", f"{log}.pub"),
            "key name",
        ),
        (
            ("witness", "cosign", str(good), "--key", str(witness_key), "--name", "a/w", "--state", str(good), "--log-key", f"{log}.pub"),
            "not a directory",
        ),
        (("checkpoint", "--note", f"{t}/unsigned.note"), "give --key"),
    ]
    for args, says in cases:
        result = run(*args, exit_code=1)
        assert result.stderr.startswith("Error: ") and says in result.stderr and result.stderr.count("\n") == 1, (args, result.stderr)
    assert not (tmp_path / "out.proof").exists() and not (tmp_path / "s").exists() and not (tmp_path / "unsigned.note").exists()
    # a witness shown a checkpoint the log key did not sign refuses (a verification failure, exit 3)
    stranger = keygen(tmp_path, "stranger")
    refused = run(
        "witness",
        "cosign",
        str(good),
        "--key",
        str(witness_key),
        "--name",
        "a/w",
        "--state",
        f"{t}/s",
        "--log-key",
        f"{stranger}.pub",
        exit_code=3,
    )
    assert refused.stderr.startswith("Refused: the log's signature")
    assert not list((tmp_path / "s").glob("*.checkpoint"))

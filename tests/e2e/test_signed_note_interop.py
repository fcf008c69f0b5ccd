"""Our signed-note checkpoints against an implementation that is not ours: Go's golang.org/x/mod/sumdb/note.

tests/interop/notecheck.go wraps that package (Debian: golang-go, golang-golang-x-mod-dev;
.ci/run installs them). It is built once per run in GOPATH mode against Debian's copy of the
package. Without Go the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization

from cli import main
from ledger.signed_note import ED25519, VerifierKey, check_signature, key_id, parse_note
from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
GOPATH = Path("/usr/share/gocode")
SOURCE = ROOT / "tests" / "interop" / "notecheck.go"


@pytest.fixture(scope="module")
def notecheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = shutil.which("go") is None or not (GOPATH / "src/golang.org/x/mod/sumdb/note/note.go").exists()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs Go and golang.org/x/mod for the signed-note test: apt-get install golang-go golang-golang-x-mod-dev")
        pytest.skip("needs Go and Debian's golang-golang-x-mod-dev")
    where = tmp_path_factory.mktemp("notecheck")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOCACHE": str(where / "cache"), "GOFLAGS": ""}
    subprocess.run(["go", "build", "-o", str(where / "notecheck"), str(SOURCE)], check=True, env=env, timeout=240)
    return where / "notecheck"


def go(notecheck: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(notecheck), *args], capture_output=True, text=True, timeout=60)


def refledger(db: Path, *args: str, exit_code: int = 0) -> Result:
    result = CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False, env={"REFLEDGER_CHECKPOINT_KEY": None})
    assert result.exit_code == exit_code, result.output
    return result


@pytest.fixture
def ledger(tmp_path: Path) -> tuple[Path, Path, Path, str]:
    """A ledger holding the worked example, checkpointed as a signed note: (db, key, note, vkey)."""
    db, key, note = tmp_path / "ledger.sqlite", tmp_path / "ledger.pem", tmp_path / "cp.note"
    refledger(db, "keygen", "--out", str(key))
    refledger(db, "import", "--historical", str(EXAMPLES / "cybertip.jsonl"))
    made = refledger(db, "checkpoint", "--key", str(key), "--note", str(note), "--json")
    return db, key, note, json.loads(made.stdout)["verifier_key"]


def test_go_verifies_our_checkpoint_note(notecheck: Path, ledger: tuple[Path, Path, Path, str]) -> None:
    _db, _key, note, vkey = ledger
    opened = go(notecheck, "verify", vkey, str(note))
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == parse_note(note.read_bytes()).text
    origin, size, root = opened.stdout.splitlines()
    assert origin.startswith("referral-ledger/") and int(size) == 49 and len(base64.b64decode(root)) == 32


def test_go_refuses_our_note_when_altered_or_with_another_key(
    notecheck: Path, ledger: tuple[Path, Path, Path, str], tmp_path: Path
) -> None:
    _db, _key, note, vkey = ledger
    altered = tmp_path / "altered.note"
    altered.write_text(note.read_text().replace("\n49\n", "\n48\n"))
    assert go(notecheck, "verify", vkey, str(altered)).returncode == 1
    other = go(notecheck, "keygen", vkey.split("+")[0]).stdout.splitlines()[1]
    assert go(notecheck, "verify", other, str(note)).returncode == 1


def test_go_still_verifies_a_witnessed_note_ignoring_the_cosignatures(
    notecheck: Path, ledger: tuple[Path, Path, Path, str], tmp_path: Path
) -> None:
    db, key, note, vkey = ledger
    witness = tmp_path / "w.pem"
    refledger(db, "keygen", "--out", str(witness))
    cosigned = tmp_path / "cosigned.note"
    refledger(db, "witness", "cosign", str(note), "--key", str(witness), "--name", "audit.example/w", "--state", str(tmp_path / "state"),
              "--log-key", f"{key}.pub", "--out", str(cosigned))  # fmt: skip
    opened = go(notecheck, "verify", vkey, str(cosigned))
    assert opened.returncode == 0, opened.stderr
    assert "1 other signature(s) ignored" in opened.stderr


def test_go_signs_the_same_bytes_we_do_with_our_key(notecheck: Path, ledger: tuple[Path, Path, Path, str], tmp_path: Path) -> None:
    _db, key, note, vkey = ledger
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    name, hex_id, _ = vkey.split("+", 2)
    skey = f"PRIVATE+KEY+{name}+{hex_id}+{base64.b64encode(bytes([ED25519]) + seed).decode()}"
    text = tmp_path / "text"
    text.write_text(parse_note(note.read_bytes()).text)
    signed = go(notecheck, "sign", skey, str(text))
    assert signed.returncode == 0, signed.stderr
    # Ed25519 is deterministic: the same key over the same text gives the same note, byte for byte
    assert signed.stdout.encode() == note.read_bytes()


def test_we_verify_a_note_go_signed_with_its_own_key(notecheck: Path, ledger: tuple[Path, Path, Path, str], tmp_path: Path) -> None:
    db, _key, note, vkey = ledger
    origin = vkey.split("+")[0]
    skey, go_vkey = go(notecheck, "keygen", origin).stdout.splitlines()
    text = tmp_path / "text"
    text.write_text(parse_note(note.read_bytes()).text)
    go_note = tmp_path / "go.note"
    go_note.write_text(go(notecheck, "sign", skey, str(text)).stdout)
    key = VerifierKey.parse(go_vkey)
    assert key.key_id == key_id(origin, ED25519, key.public_key)
    assert check_signature(parse_note(go_note.read_bytes()), key).status == "valid"
    # and the ledger verifies against Go's checkpoint, given Go's public key
    answer = refledger(db, "verify", "--checkpoint", str(go_note), "--public-key", key.public_key.hex())
    assert "(signature: valid): the ledger extends it" in answer.stdout

"""Key material and files the CLI writes, attacked without a chain: an output file that lands on a
keystore file, a stale temporary file with loose permissions, an account name that only looks
well-formed, and files holding health data written for others to read."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from medchain.cli import main
from medchain.cli._options import write_atomically
from medchain.errors import ConfigurationError
from medchain.keystore import Keystore, KeystoreError, check_name

CONSENT_MANAGER = "0x" + "c0" * 20
HOSPITAL = "0x" + "11" * 20


def run(home, *args):
    """(exit code, stdout, stderr) of ``medchain ARGS`` through the real entry point."""
    runner = CliRunner()
    env = {"MEDCHAIN_HOME": str(home), "MEDCHAIN_PASSWORD": "pw", "MEDCHAIN_PRIVATE_KEY": None}
    with runner.isolation(env=env) as (out, err, _mixed):
        saved = sys.argv
        sys.argv = ["medchain", *map(str, args)]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.argv = saved
        return code, out.getvalue().decode(), err.getvalue().decode()


@pytest.fixture
def loose_umask():
    """The common default umask (group and others may read what is created)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_an_output_file_never_replaces_a_keystore_key(tmp_path):
    home = tmp_path / "home"
    code, out, err = run(home, "--json", "account", "new", "alice", "--light-kdf")
    assert code == 0, err
    address = json.loads(out)["address"]
    key_file = home / "keystore" / "alice.json"
    before = key_file.read_bytes()
    # A slip of the -o path (or a script's bad default) must not destroy the only copy of a key.
    code, _out, err = run(
        home, "--from", "alice", "patient", "sign-grant", HOSPITAL, "--chain-id", "31337",
        "--consent-manager", CONSENT_MANAGER, "--nonce", "0", "-o", key_file,
    )  # fmt: skip
    assert code != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert "keystore" in err
    assert key_file.read_bytes() == before
    assert Keystore(home / "keystore").unlock("alice", "pw").address == address
    # The same for a keystore kept elsewhere (geth's folder, a backup), whatever its name.
    elsewhere = tmp_path / "backup-of-alice"
    elsewhere.write_bytes(before)
    with pytest.raises(ConfigurationError, match="keystore"):
        write_atomically(elsewhere, "{}\n")
    assert elsewhere.read_bytes() == before


def test_keystore_file_is_owner_only_even_over_a_stale_temporary_file(tmp_path, loose_umask):
    keystore = Keystore(tmp_path / "keystore")
    keystore.directory.mkdir()
    stale = keystore.directory / "alice.json.tmp"  # left by a crash, or planted, readable by all
    stale.write_text("")
    os.chmod(stale, 0o644)
    stored = keystore.create("alice", "pw", light=True)
    assert mode(stored.path) == 0o600
    assert not stale.exists()


def test_account_name_with_a_trailing_newline_is_refused():
    # `$` matches before a final newline: "alice\n" would name a file "alice\n.json".
    with pytest.raises(KeystoreError, match="not a usable account name"):
        check_name("alice\n")
    assert not Keystore(Path("/nonexistent")).has("alice\n")


def test_private_output_is_owner_only_even_over_an_existing_readable_file(tmp_path, loose_umask):
    target = tmp_path / "record.json"
    target.write_text("old\n")
    os.chmod(target, 0o644)
    write_atomically(target, "health data\n", private=True)
    assert mode(target) == 0o600
    assert target.read_text() == "health data\n"
    # A stale temporary file readable by others is not reused either.
    stale = tmp_path / "again.json.tmp"
    stale.write_text("")
    os.chmod(stale, 0o644)
    write_atomically(tmp_path / "again.json", "x\n", private=True)
    assert mode(tmp_path / "again.json") == 0o600


KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"  # eth-account's doc example


@pytest.mark.parametrize("given", ["0x" + KEY, KEY, KEY.upper()])
@pytest.mark.parametrize(
    "command",
    [
        ["--from", "{key}", "patient", "public-key"],  # --from: an address or an account name
        ["patient", "grants", "{key}"],  # an ACCOUNT argument
        ["--from", "alice", "patient", "sign-grant", HOSPITAL, "--consent-manager", "{key}", "-o", "x"],
    ],
)
def test_a_private_key_given_where_an_account_belongs_is_never_echoed(tmp_path, given, command):
    # A key pasted into the wrong option must not be copied into the terminal, a CI log or a ticket.
    home = tmp_path / "home"
    assert run(home, "account", "new", "alice", "--light-kdf")[0] == 0
    code, out, err = run(home, *[part.format(key=given) for part in command])
    assert code != 0
    assert KEY.lower() not in (out + err).lower()
    assert "private key" in err

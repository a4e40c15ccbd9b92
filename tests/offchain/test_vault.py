"""The key vault without a chain: durable, safe for two writers, and its I/O errors named."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3

import pytest

from medchain.vault import KeyNotFoundError, KeyVault, VaultError

READER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OTHER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def test_envelopes_survive_reopening(tmp_path):
    path = tmp_path / "vault.sqlite"
    vault = KeyVault(path)
    vault.put(b"\x01" * 32, READER, b"envelope-1")
    vault.close()
    again = KeyVault(path)
    assert again.get(b"\x01" * 32, READER.lower()) == b"envelope-1"  # any address spelling
    with pytest.raises(KeyNotFoundError, match="no key envelope"):
        again.get(b"\x01" * 32, OTHER)


def _writer(path: str, reader: str, start: int, count: int) -> None:
    vault = KeyVault(__import__("pathlib").Path(path))
    for i in range(start, start + count):
        vault.put(i.to_bytes(32, "big"), reader, f"envelope-{i}".encode())


def test_two_processes_write_the_same_vault(tmp_path):
    path = tmp_path / "vault.sqlite"
    KeyVault(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_writer, args=(str(path), READER, 0, 150)),
        ctx.Process(target=_writer, args=(str(path), OTHER, 1000, 150)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    vault = KeyVault(path)
    assert len(vault) == 300
    assert vault.get((1149).to_bytes(32, "big"), OTHER) == b"envelope-1149"


def test_corrupt_vault_file_is_one_clear_error(tmp_path):
    path = tmp_path / "vault.sqlite"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(VaultError, match="corrupt or not a MedChain vault") as info:
        KeyVault(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_vault_of_another_schema_is_refused(tmp_path):
    path = tmp_path / "vault.sqlite"
    KeyVault(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(VaultError, match="schema 99"):
        KeyVault(path)


def test_read_only_vault_reports_the_write_failure(tmp_path):
    path = tmp_path / "vault.sqlite"
    vault = KeyVault(path)
    vault.put(b"\x02" * 32, READER, b"kept")
    vault.close()
    vault = KeyVault(path)
    vault._db.execute("PRAGMA query_only = ON")  # as a read-only mount behaves for writes
    with pytest.raises(VaultError, match="could not store"):
        vault.put(b"\x03" * 32, READER, b"new")
    assert vault.get(b"\x02" * 32, READER) == b"kept"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_vault_in_unwritable_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(VaultError):
        KeyVault(folder / "vault.sqlite")


def test_vault_path_under_a_file_is_one_clear_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(VaultError, match="cannot be opened"):
        KeyVault(blocker / "vault.sqlite")


def test_full_disk_is_reported_and_nothing_half_written(tmp_path):
    vault = KeyVault(tmp_path / "vault.sqlite")
    vault._db.execute("PRAGMA max_page_count = 1")
    with pytest.raises(VaultError, match="disk is full"):
        vault.put_many([(i.to_bytes(32, "big"), READER, b"x" * 2000) for i in range(50)])
    vault._db.execute("PRAGMA max_page_count = 1000000")
    assert len(vault) == 0  # the batch was rolled back whole


def test_store_folder_under_a_file_is_a_store_error(tmp_path):
    from medchain.store import LocalFolderStore, StoreError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot be created"):
        LocalFolderStore(blocker / "store")


def test_store_write_failure_is_a_store_error(tmp_path, monkeypatch):
    """A full or read-only disk during a write: one StoreError, no temporary file left behind."""
    from medchain import store as store_module

    store = store_module.LocalFolderStore(tmp_path / "store")

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", full)
    with pytest.raises(store_module.StoreError, match="No space left"):
        store.put(b"ciphertext bytes")
    assert [p.name for p in (tmp_path / "store").rglob("*") if p.is_file()] == []

"""The custodian's key vault: key envelopes and staged anchors in one SQLite database.

Why SQLite: a record's data key must be on disk *before* the anchoring transaction is sent (a
receipt time-out or a crash after mining must never leave a record nobody can read), two
processes of one custodian (the anchoring job and the gateway) write the same vault, and a
half-written file must never be read as a vault. SQLite gives atomic commits, a write lock
between processes (WAL journal, busy time-out) and a checksum-free but self-describing format
whose corruption is detected on open.

Every SQLite or file-system error is reported as :class:`VaultError` with the path and what to
do; nothing below leaks ``sqlite3`` exceptions.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from medchain.errors import MedChainError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000


class VaultError(MedChainError):
    """The key vault could not be opened, read or written."""


class KeyNotFoundError(VaultError):
    """The vault holds no key envelope for that record and reader."""


@dataclass(frozen=True)
class StagedAnchor:
    """An anchor written to the vault before its transaction: enough to retry or confirm it.

    ``header`` holds the ABI values of ``IEHRIndex.RecordHeader`` (patient, custodian,
    fingerprint, category, previous).
    """

    request_key: bytes
    record_id: bytes
    patient: str
    custodian: str
    fingerprint: bytes
    category: bytes
    previous: bytes
    cid: str
    batch_key: bytes | None
    confirmed_block: int | None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS envelopes (
    record_id BLOB NOT NULL,
    reader TEXT NOT NULL,
    envelope BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (record_id, reader)
);
CREATE TABLE IF NOT EXISTS anchors (
    record_id BLOB PRIMARY KEY,
    request_key BLOB NOT NULL,
    patient TEXT NOT NULL,
    custodian TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    category BLOB NOT NULL,
    previous BLOB NOT NULL,
    cid TEXT NOT NULL,
    batch_key BLOB,
    batch_id INTEGER,
    proof BLOB,
    confirmed_block INTEGER,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS anchors_request ON anchors (request_key);
CREATE INDEX IF NOT EXISTS anchors_batch ON anchors (batch_key);
"""


class KeyVault:
    """Key envelopes per (record id, reader address), and anchors staged before their transaction.

    Args:
        path: The SQLite file; ``None`` keeps the vault in memory (tests, one-off scripts).

    Raises:
        VaultError: the file cannot be created or opened, or is not a vault (corrupt, or another
            kind of file).
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._where = str(path) if path is not None else "the in-memory vault"
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(path) if path is not None else ":memory:",
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # explicit BEGIN IMMEDIATE ... COMMIT below
                check_same_thread=False,
            )
        except (sqlite3.Error, OSError) as exc:
            raise VaultError(self._explain("cannot be opened", exc)) from None
        with self._guard("cannot be opened"):
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Erased request keys (unsalted hashes of plaintext) must not linger in free space.
            self._db.execute("PRAGMA secure_delete = ON")
            if path is not None:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = FULL")  # a committed key survives power loss
            with self._write():
                for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    self._db.execute(statement)
                row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                if row is None:
                    self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                elif row[0] != str(SCHEMA_VERSION):
                    raise VaultError(
                        f"{self._where} has vault schema {row[0]}, this medchain reads {SCHEMA_VERSION}"
                    )

    # ─── Envelopes ──────────────────────────────────────────────────────────────────────────

    def put(self, record_id: bytes, reader: str, envelope: bytes) -> None:
        """Stores (or replaces) one key envelope, durably, before returning."""
        self.put_many([(record_id, reader, envelope)])

    def put_many(self, rows: list[tuple[bytes, str, bytes]]) -> None:
        """Stores many envelopes in one atomic commit."""
        now = time.time()
        with self._guard("could not store key envelopes"), self._write():
            self._db.executemany(
                "INSERT OR REPLACE INTO envelopes VALUES (?, ?, ?, ?)",
                [(r, _addr(a), e, now) for r, a, e in rows],
            )

    def get(self, record_id: bytes, reader: str) -> bytes:
        """The envelope of ``record_id`` for ``reader``.

        Raises:
            KeyNotFoundError: there is none.
        """
        with self._guard("could not be read"):
            row = self._db.execute(
                "SELECT envelope FROM envelopes WHERE record_id = ? AND reader = ?",
                (record_id, _addr(reader)),
            ).fetchone()
        if row is None:
            raise KeyNotFoundError(
                f"no key envelope for {reader} on record 0x{record_id.hex()} in {self._where}"
            )
        return bytes(row[0])

    def readers(self, record_id: bytes) -> set[str]:
        """The addresses holding an envelope of ``record_id`` here."""
        with self._guard("could not be read"):
            rows = self._db.execute(
                "SELECT reader FROM envelopes WHERE record_id = ?", (record_id,)
            ).fetchall()
        return {str(row[0]) for row in rows}

    def __len__(self) -> int:
        with self._guard("could not be read"):
            return int(self._db.execute("SELECT COUNT(*) FROM envelopes").fetchone()[0])

    # ─── Staged anchors ─────────────────────────────────────────────────────────────────────

    def stage(
        self,
        anchors: list[StagedAnchor],
        envelopes: list[tuple[bytes, str, bytes]],
        proofs: dict[bytes, bytes] | None = None,
    ) -> None:
        """Writes anchors and their envelopes in one commit, before the transaction is sent.

        ``proofs`` maps a batched record id to its Merkle proof (the 32-byte nodes concatenated).
        """
        now = time.time()
        proofs = proofs or {}
        with self._guard("could not stage the anchor (nothing was sent to the chain)"), self._write():
            self._db.executemany(
                "INSERT OR IGNORE INTO anchors VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL, ?)",
                [
                    (
                        a.record_id,
                        a.request_key,
                        _addr(a.patient),
                        _addr(a.custodian),
                        a.fingerprint,
                        a.category,
                        a.previous,
                        a.cid,
                        a.batch_key,
                        proofs.get(a.record_id) or None,
                        now,
                    )
                    for a in anchors
                ],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO envelopes VALUES (?, ?, ?, ?)",
                [(r, _addr(a), e, now) for r, a, e in envelopes],
            )

    def pending(self, request_key: bytes) -> StagedAnchor | None:
        """The unconfirmed single anchor staged for this request, if a previous attempt left one."""
        with self._guard("could not be read"):
            row = self._db.execute(
                f"SELECT {_ANCHOR_COLUMNS} FROM anchors WHERE request_key = ? AND batch_key IS NULL "
                "AND confirmed_block IS NULL ORDER BY created_at DESC LIMIT 1",
                (request_key,),
            ).fetchone()
        return _staged(row) if row else None

    def pending_batch(self, batch_key: bytes) -> list[tuple[StagedAnchor, bytes]]:
        """The unconfirmed anchors of a staged batch, in leaf order, with their Merkle proofs."""
        with self._guard("could not be read"):
            rows = self._db.execute(
                f"SELECT {_ANCHOR_COLUMNS}, proof FROM anchors WHERE batch_key = ? "
                "AND confirmed_block IS NULL ORDER BY rowid",
                (batch_key,),
            ).fetchall()
        return [(_staged(row[:-1]), bytes(row[-1] or b"")) for row in rows]

    def confirm(self, record_ids: list[bytes], block: int, batch_id: int = 0) -> None:
        """Marks staged anchors as on chain (mined in ``block``, in batch ``batch_id`` if any).

        Their request and batch keys are erased: a retry no longer needs them, and as unsalted
        hashes of the plaintext they would let anyone holding a copy of the vault (a backup) test
        guesses of a record's content.
        """
        with self._guard("could not record the confirmation"), self._write():
            self._db.executemany(
                "UPDATE anchors SET confirmed_block = ?, batch_id = ?, request_key = X'', batch_key = NULL "
                "WHERE record_id = ?",
                [(block, batch_id or None, r) for r in record_ids],
            )

    def anchor(self, record_id: bytes) -> tuple[StagedAnchor, int, bytes] | None:
        """A record this custodian anchored: its staged header, batch id (0 if single) and proof."""
        with self._guard("could not be read"):
            row = self._db.execute(
                f"SELECT {_ANCHOR_COLUMNS}, batch_id, proof FROM anchors WHERE record_id = ?",
                (record_id,),
            ).fetchone()
        if row is None:
            return None
        return _staged(row[:-2]), int(row[-2] or 0), bytes(row[-1] or b"")

    def close(self) -> None:
        self._db.close()

    # ─── Plumbing ───────────────────────────────────────────────────────────────────────────

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction that takes the database's write lock at once (two writers wait)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._db.in_transaction:  # SQLite rolls back by itself on some errors (disk full)
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except VaultError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise VaultError(self._explain(what, exc)) from None

    def _explain(self, what: str, exc: Exception) -> str:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            hint = "the file is corrupt or not a MedChain vault; restore it from your backup"
        elif "full" in text:
            hint = "the disk is full; free space and retry (nothing was lost)"
        elif "readonly" in text or "read-only" in text or "Permission" in text:
            hint = "the file or its folder is read-only; check its permissions or mount"
        elif "locked" in text or "busy" in text:
            hint = "another process holds the vault locked for too long; retry"
        else:
            hint = "check the path and the disk"
        return f"key vault {self._where} {what}: {text} ({hint})"


_ANCHOR_COLUMNS = (
    "request_key, record_id, patient, custodian, fingerprint, category, previous, cid, batch_key, "
    "confirmed_block"
)


def _staged(row: tuple[Any, ...]) -> StagedAnchor:
    request_key, record_id, patient, custodian, fingerprint, category, previous, cid, batch_key, block = row
    return StagedAnchor(
        request_key=bytes(request_key),
        record_id=bytes(record_id),
        patient=str(patient),
        custodian=str(custodian),
        fingerprint=bytes(fingerprint),
        category=bytes(category),
        previous=bytes(previous),
        cid=str(cid),
        batch_key=bytes(batch_key) if batch_key is not None else None,
        confirmed_block=int(block) if block is not None else None,
    )


def _addr(address: str) -> str:
    try:
        return str(Web3.to_checksum_address(address))
    except ValueError:
        raise VaultError(f"{address!r} is not an Ethereum address") from None

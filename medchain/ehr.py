"""EHR client and custodian gateway: FHIR in, encrypted off chain, anchored on chain, read back verified.

Flow (docs/architecture.md): FHIR resource -> validate -> canonical bytes -> SHA-256 -> encrypt
(AES-256-GCM, the record id as associated data) -> store ciphertext (CID) -> anchor header and CID
-> wrap the data key for custodian and patient. A reader calls ``accessRecord`` (audit event), the
custodian's gateway sees that event and wraps the key for the reader, the reader decrypts and
checks the fingerprint against the anchor.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any, Literal

from eth_abi.abi import encode as abi_encode
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from medchain import crypto
from medchain.chain import Chain, ContractClient, Sender
from medchain.errors import ContractRevert, MedChainError, TransactionFailed
from medchain.merkle import MerkleTree
from medchain.store import ContentStore, StoreError, cid_bytes, cid_text
from medchain.types import (
    ZERO32,
    AnchoredRecord,
    Purpose,
    RecordBatchId,
    RecordHeader,
    RecordId,
    RecordStatus,
    category_code,
    category_text,
)
from medchain.vault import KeyVault, StagedAnchor

__all__ = [
    "AccessEvent",
    "AccessNotPermittedError",
    "AnchoredRecord",
    "DeniedAccess",
    "EHRClient",
    "FhirValidationError",
    "IntegrityError",
    "KeyVault",
    "Prepared",
    "RecordEvent",
    "RecordHeader",
    "RecordNotFoundError",
    "Release",
    "header_of",
    "request_key",
    "validate_fhir",
    "vault_record",
]


class FhirValidationError(MedChainError, ValueError):
    """A resource is not valid FHIR R4."""


class AccessNotPermittedError(MedChainError):
    """The gateway found no permitted access by this reader on chain."""


class IntegrityError(MedChainError):
    """Decrypted bytes do not match the anchored fingerprint."""


class RecordNotFoundError(MedChainError):
    """No record with that id is anchored."""


def validate_fhir(resource: dict[str, Any]) -> str:
    """Validates a FHIR R4 resource (fhir.resources, R4B package); returns its resource type."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
    if not isinstance(resource_type, str):
        raise FhirValidationError("not a FHIR resource: no resourceType")
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        raise FhirValidationError(f"unknown FHIR resource type {resource_type!r}") from None
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise FhirValidationError(f"invalid FHIR {resource_type}: {where}: {first.get('msg')}") from None
    return resource_type


@dataclass(frozen=True)
class AccessEvent:
    """One audited access (a ``RecordAccessed`` event): who read which record, why, and when."""

    record_id: RecordId
    accessor: str
    patient: str
    purpose: Purpose
    authorization: bytes
    """The grant id, or the break-glass session id as bytes32, the access relied on."""
    break_glass: bool
    block: int
    timestamp: int
    tx: str


RecordEventKind = Literal["anchored", "amended", "entered-in-error", "accessed"]


@dataclass(frozen=True)
class RecordEvent:
    """One step in the life of a record's versions, from the chain's events.

    ``record_id`` is the version the event concerns; ``actor`` is its custodian, or the reader for
    an access. ``purpose``/``break_glass`` describe an access, ``reason`` an entered-in-error mark,
    ``next_version`` an amendment.
    """

    kind: RecordEventKind
    record_id: RecordId
    actor: str
    block: int
    timestamp: int
    tx: str
    purpose: Purpose | None = None
    break_glass: bool = False
    reason: int | None = None
    next_version: RecordId | None = None


@dataclass(frozen=True)
class DeniedAccess:
    """A refused attempt to read a record (an ``AccessDenied`` event): who tried, which record,
    for what purpose, and when. Nothing was released."""

    record_id: RecordId
    accessor: str
    patient: str
    purpose: Purpose
    block: int
    timestamp: int
    tx: str


@dataclass(frozen=True)
class Release:
    """What a custodian's gateway hands a reader: ciphertext and a key envelope only that reader opens."""

    record: AnchoredRecord
    ciphertext: bytes
    envelope: bytes


@dataclass(frozen=True)
class Prepared:
    """A record ready to store and anchor: header (salted fingerprint), ciphertext and data key."""

    header: RecordHeader
    ciphertext: bytes
    data_key: bytes
    request_key: bytes


def request_key(patient: str, custodian: str, previous: bytes, canonical: bytes) -> bytes:
    """Identifies one anchoring request locally (vault only, never on chain), so a retry finds it."""
    head = abi_encode(
        ["address", "address", "bytes32"],
        [Web3.to_checksum_address(patient), Web3.to_checksum_address(custodian), previous],
    )
    return hashlib.sha256(b"medchain/anchor-request/1" + head + canonical).digest()


class EHRClient(ContractClient):
    """Anchors, amends, accesses and reads records through EHRIndex and a content store."""

    def __init__(self, chain: Chain, contract: Contract, store: ContentStore, from_block: int = 0) -> None:
        super().__init__(chain, contract, from_block)
        self.store = store

    # ─── Writing ────────────────────────────────────────────────────────────────────────────

    def prepare(
        self, resource: dict[str, Any], patient: str, custodian: str, previous: bytes = ZERO32
    ) -> Prepared:
        """Validates, canonicalises, commits to and encrypts a resource (no chain, no store).

        The fingerprint is a salted commitment (:func:`medchain.crypto.commitment`); the salt is
        encrypted with the record, so only key holders can check it against the plaintext.
        """
        return self._prepare_valid(
            validate_fhir(resource), crypto.canonical_json(resource), patient, custodian, previous
        )

    @staticmethod
    def _prepare_valid(
        resource_type: str, canonical: bytes, patient: str, custodian: str, previous: bytes
    ) -> Prepared:
        """:meth:`prepare` for a resource already validated and canonicalised."""
        salt = crypto.new_salt()
        header = RecordHeader(
            patient, custodian, crypto.commitment(salt, canonical), category_code(resource_type), previous
        )
        data_key = crypto.new_data_key()
        sealed = crypto.seal_plaintext(salt, canonical)
        return Prepared(
            header,
            crypto.encrypt(data_key, sealed, header.record_id),
            data_key,
            request_key(patient, custodian, previous, canonical),
        )

    def anchor_resource(
        self,
        custodian: Sender,
        resource: dict[str, Any],
        patient: str,
        vault: KeyVault,
        readers: tuple[crypto.ReaderKey, ...],
        previous: AnchoredRecord | None = None,
    ) -> AnchoredRecord:
        """The full anchoring flow; safe to retry, never loses a key.

        The ciphertext is stored and the wrapped keys are committed to ``vault`` *before* the
        transaction is sent. A retry of the same request (same resource, patient, custodian and
        previous version) after a time-out or crash reuses what was staged: if the first
        transaction was mined meanwhile, the retry finds the record on chain and succeeds without
        sending anything.

        Args:
            custodian: The custodian institution's sender.
            resource: A FHIR R4 resource (dict).
            patient: The patient's address.
            vault: Where the custodian keeps key envelopes (a file for anything that matters).
            readers: Keys to wrap the data key for at once: the custodian's own (required: its
                gateway opens the record with it) and the patient's, normally.
            previous: The record this one amends.

        Raises:
            MedChainError: ``readers`` lacks the custodian's key, or a retry names readers the
                staged attempt did not wrap the key for; nothing was sent.
            FhirValidationError: the resource is not valid FHIR.
            VaultError: the keys could not be written; nothing was sent to the chain.
            ContractRevert: the chain refused the anchor; nothing is reported as anchored.
            TransactionFailed: not mined in time; the keys are staged, so run the same call again.
        """
        custodian_address = _address_of(custodian)
        _require_custodian_key(custodian_address, [r.address for r in readers])
        previous_id = previous.id if previous else ZERO32
        resource_type = validate_fhir(resource)
        canonical = crypto.canonical_json(resource)
        key = request_key(patient, custodian_address, previous_id, canonical)
        staged = vault.pending(key)
        if staged is None:
            prepared = self._prepare_valid(resource_type, canonical, patient, custodian_address, previous_id)
            cid = self.store.put(prepared.ciphertext)
            staged = _staged(prepared, cid)
            vault.stage(
                [staged],
                [(staged.record_id, r.address, crypto.wrap_key(prepared.data_key, r)) for r in readers],
            )
        else:
            _require_staged_readers(vault, {staged.record_id: {r.address for r in readers}})
            if not self.store.has(staged.cid):
                raise StoreError(
                    f"record 0x{staged.record_id.hex()} was staged but its ciphertext {staged.cid} is not "
                    "in the store any more; restore the store from backup"
                )
        header = header_of(staged)
        if self.status(header.record_id) == RecordStatus.NONE:
            raw_cid = cid_bytes(staged.cid)
            if previous is None:
                self._send_idempotent(custodian, "EHRRecordExists", "anchor", header.as_tuple(), raw_cid)
            else:
                self._send_idempotent(
                    custodian,
                    "EHRRecordExists",
                    "amend",
                    previous.header.as_tuple(),
                    header.as_tuple(),
                    raw_cid,
                )
        record = self.record(header.record_id)
        vault.confirm([record.id], record.block)
        return record

    def anchor_batch(
        self,
        custodian: Sender,
        items: list[tuple[str, dict[str, Any]]],
        vault: KeyVault,
        custodian_key: crypto.ReaderKey,
        patient_keys: dict[str, crypto.ReaderKey] | None = None,
    ) -> tuple[RecordBatchId, list[AnchoredRecord]]:
        """Anchors many (patient, resource) records under one Merkle root; returns batch id and records.

        As for single records, keys are staged in the vault before the transaction, and a retry
        of the same batch finishes it. The index stored at the batch's public CID lists only the
        record ids (the Merkle leaves, what a verifier needs); the headers and ciphertext CIDs are
        in the same object encrypted to the custodian's key, and in its vault.
        """
        custodian_address = _address_of(custodian)
        _require_custodian_key(custodian_address, [custodian_key.address])
        if not items:
            raise MedChainError("a batch needs at least one record")
        kinds, canonicals = [], []
        for _patient, resource in items:
            kinds.append(validate_fhir(resource))
            canonicals.append(crypto.canonical_json(resource))
        keys = [
            request_key(p, custodian_address, ZERO32, c) for (p, _r), c in zip(items, canonicals, strict=True)
        ]
        batch_key = hashlib.sha256(b"medchain/batch-request/1" + b"".join(keys)).digest()
        pending = vault.pending_batch(batch_key)
        if pending:
            staged = [s for s, _proof in pending]
            _require_staged_readers(
                vault, {s.record_id: _batch_readers(s, custodian_key, patient_keys) for s in staged}
            )
        else:
            prepared = [
                self._prepare_valid(kind, canonical, patient, custodian_address, ZERO32)
                for (patient, _resource), kind, canonical in zip(items, kinds, canonicals, strict=True)
            ]
            cids = [self.store.put(p.ciphertext) for p in prepared]
            staged = [
                replace(_staged(p, c), batch_key=batch_key) for p, c in zip(prepared, cids, strict=True)
            ]
            tree = MerkleTree([s.record_id for s in staged])
            envelopes = []
            for p, s in zip(prepared, staged, strict=True):
                envelopes.append(
                    (s.record_id, custodian_key.address, crypto.wrap_key(p.data_key, custodian_key))
                )
                reader = _patient_key(s, patient_keys)
                if reader is not None:
                    envelopes.append((s.record_id, reader.address, crypto.wrap_key(p.data_key, reader)))
            proofs = {s.record_id: b"".join(tree.proof(s.record_id)) for s in staged}
            vault.stage(staged, envelopes, proofs)
        tree = MerkleTree([s.record_id for s in staged])
        batch_id, block = self._find_batch(custodian_address, tree.root)
        if not batch_id:
            index_cid = self.store.put(_batch_index(custodian_address, staged, custodian_key))
            receipt = self._send(custodian, "anchorBatch", tree.root, len(staged), cid_bytes(index_cid))
            batch_id = int(self._emitted_field(receipt, "BatchAnchored", "batchId"))
            block = int(receipt["blockNumber"])
        vault.confirm([s.record_id for s in staged], block, batch_id)
        records = [
            AnchoredRecord(
                RecordId(s.record_id), header_of(s), s.cid, block, batch_id, tuple(tree.proof(s.record_id))
            )
            for s in staged
        ]
        return RecordBatchId(batch_id), records

    def mark_entered_in_error(self, custodian: Sender, record_id: bytes, reason: int) -> None:
        """Retracts a single-anchored record (reason 1 wrong patient, 2 wrong content, 3 duplicate)."""
        self._send(custodian, "markEnteredInError", record_id, reason)

    def mark_batched_entered_in_error(self, custodian: Sender, record: AnchoredRecord, reason: int) -> None:
        """Retracts a batched record, proving its place in the batch."""
        self._send(
            custodian,
            "markBatchedEnteredInError",
            record.header.as_tuple(),
            record.batch_id,
            list(record.proof),
            reason,
        )

    # ─── Access and reading ─────────────────────────────────────────────────────────────────

    def access(self, reader: Sender, record: AnchoredRecord, purpose: Purpose) -> TxReceipt:
        """Asks the chain for access; emits the audit event or raises ContractRevert(EHRAccessDenied)."""
        if record.batch_id:
            return self._send(
                reader,
                "accessBatchedRecord",
                record.header.as_tuple(),
                record.batch_id,
                list(record.proof),
                int(purpose),
            )
        return self._send(reader, "accessRecord", record.header.as_tuple(), int(purpose))

    def attempt(self, reader: Sender, record: AnchoredRecord, purpose: Purpose) -> bool:
        """Asks the chain for access, leaving a trace either way: True with the ``RecordAccessed``
        audit event when consent permits, False with an ``AccessDenied`` event when it does not.

        Raises:
            ContractRevert: the record is unknown or entered in error, the purpose is unknown, or
                (batched) the proof or the custodian's treatment relationship fails.
        """
        if record.batch_id:
            receipt = self._send(
                reader,
                "tryAccessBatchedRecord",
                record.header.as_tuple(),
                record.batch_id,
                list(record.proof),
                int(purpose),
            )
        else:
            receipt = self._send(reader, "tryAccessRecord", record.header.as_tuple(), int(purpose))
        return bool(self._emitted(receipt, "RecordAccessed"))

    def denied_attempts(
        self, patient: str | None = None, record_id: bytes | None = None, accessor: str | None = None
    ) -> list[DeniedAccess]:
        """``AccessDenied`` events (refused attempts), optionally filtered, in chain order."""
        logs, times = self._audit_logs("AccessDenied", patient, record_id, accessor)
        return [
            DeniedAccess(
                record_id=RecordId(bytes(log["args"]["recordId"])),
                accessor=log["args"]["accessor"],
                patient=log["args"]["patient"],
                purpose=Purpose(log["args"]["purpose"]),
                block=int(log["blockNumber"]),
                timestamp=times[int(log["blockNumber"])],
                tx=log["transactionHash"].to_0x_hex(),
            )
            for log in logs
        ]

    def open(self, release: Release, reader_private_key: bytes) -> dict[str, Any]:
        """Decrypts a release and checks it against the anchored commitment; returns the resource.

        Raises:
            CryptoError: the envelope is not for this key, or the bytes were tampered with.
            IntegrityError: the plaintext does not match the anchored fingerprint.
        """
        data_key = crypto.unwrap_key(release.envelope, reader_private_key)
        sealed = crypto.decrypt(data_key, release.ciphertext, release.record.id)
        salt, canonical = crypto.open_plaintext(sealed)
        if crypto.commitment(salt, canonical) != release.record.header.fingerprint:
            raise IntegrityError(
                f"record 0x{release.record.id.hex()} does not match its anchored fingerprint"
            )
        resource: dict[str, Any] = json.loads(canonical)
        return resource

    # ─── Events ─────────────────────────────────────────────────────────────────────────────

    def record(self, record_id: bytes) -> AnchoredRecord:
        """A single-anchored record by id, from its RecordAnchored event."""
        logs = self._events("RecordAnchored", recordId=record_id)
        if not logs:
            raise RecordNotFoundError(f"no record 0x{record_id.hex()} is anchored")
        return self._from_log(logs[0])

    def records_of(self, patient: str) -> list[AnchoredRecord]:
        logs = self._events("RecordAnchored", patient=Web3.to_checksum_address(patient))
        return [self._from_log(log) for log in logs]

    def versions(self, record_id: bytes) -> list[AnchoredRecord]:
        """Every version of a single-anchored record, oldest first: the ones it amends (through
        each header's ``previous``) and the ones that amend it (``RecordAmended`` events).

        Raises:
            RecordNotFoundError: no record with that id is anchored singly (batched records have
                no versions).
        """
        chain = [self.record(record_id)]
        while chain[0].header.previous != ZERO32:
            chain.insert(0, self.record(chain[0].header.previous))
        while True:
            amended = self._events("RecordAmended", previousId=chain[-1].id)
            if not amended:
                return chain
            chain.append(self.record(bytes(amended[0]["args"]["newId"])))

    def history(self, record_id: bytes) -> list[RecordEvent]:
        """A record's life in chain order: each version anchored, amended, entered in error, and
        every audited access to any version. A batched record has its accesses and retraction only.

        Raises:
            RecordNotFoundError: the chain knows nothing of this id.
        """
        try:
            ids = [v.id for v in self.versions(record_id)]
        except RecordNotFoundError:
            ids = [RecordId(bytes(record_id))]
        logs = [
            *self._events("RecordAnchored", recordId=ids),
            *self._events("RecordAmended", previousId=ids),
            *self._events("RecordEnteredInError", recordId=ids),
            *self._events("RecordAccessed", recordId=ids),
        ]
        if not logs:
            raise RecordNotFoundError(f"no record 0x{bytes(record_id).hex()} on this deployment")
        logs.sort(key=lambda log: (int(log["blockNumber"]), int(log["logIndex"])))
        times = self.chain.block_times(sorted({int(log["blockNumber"]) for log in logs}))
        return [self._record_event(log, times[int(log["blockNumber"])]) for log in logs]

    @staticmethod
    def _record_event(log: Any, timestamp: int) -> RecordEvent:
        a, name = log["args"], log["event"]
        where = {
            "block": int(log["blockNumber"]),
            "timestamp": timestamp,
            "tx": log["transactionHash"].to_0x_hex(),
        }
        if name == "RecordAnchored":
            return RecordEvent("anchored", RecordId(bytes(a["recordId"])), a["custodian"], **where)
        if name == "RecordAmended":
            return RecordEvent(
                "amended",
                RecordId(bytes(a["previousId"])),
                a["custodian"],
                next_version=RecordId(bytes(a["newId"])),
                **where,
            )
        if name == "RecordEnteredInError":
            return RecordEvent(
                "entered-in-error",
                RecordId(bytes(a["recordId"])),
                a["custodian"],
                reason=int(a["reason"]),
                **where,
            )
        return RecordEvent(
            "accessed",
            RecordId(bytes(a["recordId"])),
            a["accessor"],
            purpose=Purpose(a["purpose"]),
            break_glass=bool(a["breakGlass"]),
            **where,
        )

    def status(self, record_id: bytes) -> RecordStatus:
        """The record's status on chain (``NONE`` if it was never anchored singly)."""
        return RecordStatus(int(self._call("record", record_id)[2]))

    def in_batch(self, record: AnchoredRecord) -> bool:
        """Whether the chain's batch root proves ``record`` (its header, batch id and proof)."""
        if not record.batch_id:
            return False
        return bool(self._call("inBatch", record.header.as_tuple(), record.batch_id, list(record.proof)))

    def access_history(
        self, patient: str | None = None, record_id: bytes | None = None, accessor: str | None = None
    ) -> list[AccessEvent]:
        """RecordAccessed events (the audit trail), optionally filtered, in chain order."""
        logs, times = self._audit_logs("RecordAccessed", patient, record_id, accessor)
        return [
            AccessEvent(
                record_id=RecordId(bytes(log["args"]["recordId"])),
                accessor=log["args"]["accessor"],
                patient=log["args"]["patient"],
                purpose=Purpose(log["args"]["purpose"]),
                authorization=bytes(log["args"]["authorization"]),
                break_glass=bool(log["args"]["breakGlass"]),
                block=int(log["blockNumber"]),
                timestamp=times[int(log["blockNumber"])],
                tx=log["transactionHash"].to_0x_hex(),
            )
            for log in logs
        ]

    def _audit_logs(
        self, event: str, patient: str | None, record_id: bytes | None, accessor: str | None
    ) -> tuple[list[Any], dict[int, int]]:
        """An audit event's logs filtered by its indexed fields, and their blocks' times."""
        filters: dict[str, Any] = {}
        if patient:
            filters["patient"] = Web3.to_checksum_address(patient)
        if record_id:
            filters["recordId"] = record_id
        if accessor:
            filters["accessor"] = Web3.to_checksum_address(accessor)
        logs = self._events(event, **filters)
        return logs, self.chain.block_times(sorted({int(log["blockNumber"]) for log in logs}))

    def _from_log(self, log: Any) -> AnchoredRecord:
        a = log["args"]
        header = RecordHeader(
            a["patient"], a["custodian"], bytes(a["fingerprint"]), bytes(a["category"]), bytes(a["previous"])
        )
        return AnchoredRecord(
            RecordId(bytes(a["recordId"])), header, cid_text(bytes(a["cid"])), int(log["blockNumber"])
        )

    def _send_idempotent(self, sender: Sender, already_done: str, function: str, *args: Any) -> None:
        """Sends ``function(*args)``; the revert ``already_done`` (a retry racing its first) is success."""
        try:
            self._send(sender, function, *args)
        except ContractRevert as exc:
            if exc.error != already_done:
                raise
        except TransactionFailed as exc:
            raise TransactionFailed(
                f"{exc}; the record's keys are staged in the vault, so the same call can be run again "
                "to finish it"
            ) from None

    def _find_batch(self, custodian: str, root: bytes) -> tuple[int, int]:
        """The id and block of this custodian's batch with ``root``, or (0, 0) if none is anchored."""
        for log in self._events("BatchAnchored", custodian=Web3.to_checksum_address(custodian)):
            if bytes(log["args"]["root"]) == root:
                return int(log["args"]["batchId"]), int(log["blockNumber"])
        return 0, 0


def _address_of(sender: Sender) -> str:
    return sender if isinstance(sender, str) else sender.address


def _require_custodian_key(custodian: str, readers: list[str]) -> None:
    """The custodian's gateway opens a record with the custodian's own envelope: without one, an
    anchored record could be released to no one (with no readers at all, its key is gone)."""
    if Web3.to_checksum_address(custodian) not in readers:
        raise MedChainError(
            f"the data key must be wrapped for the custodian {custodian} itself (its gateway opens the "
            "record with it); add the custodian's ReaderKey. Nothing was stored or sent"
        )


def _require_staged_readers(vault: KeyVault, wanted: dict[bytes, set[str]]) -> None:
    """A retry reuses the key staged by the first attempt, whose envelopes cannot be extended
    without the data key: a retry naming a reader the first attempt did not is refused, not
    silently served with fewer envelopes than asked."""
    for record_id, readers in wanted.items():
        missing = readers - vault.readers(record_id)
        if missing:
            raise MedChainError(
                f"record 0x{record_id.hex()} was staged by an earlier attempt without a key for "
                f"{', '.join(sorted(missing))}; an envelope cannot be added without the data key. Run the "
                "call again with the readers of the first attempt (a reader can then get the record "
                "through the custodian's gateway). Nothing was sent"
            )


def _patient_key(
    staged: StagedAnchor, patient_keys: dict[str, crypto.ReaderKey] | None
) -> crypto.ReaderKey | None:
    return (patient_keys or {}).get(Web3.to_checksum_address(staged.patient))


def _batch_readers(
    staged: StagedAnchor, custodian_key: crypto.ReaderKey, patient_keys: dict[str, crypto.ReaderKey] | None
) -> set[str]:
    patient = _patient_key(staged, patient_keys)
    return {custodian_key.address} | ({patient.address} if patient is not None else set())


def _staged(prepared: Prepared, cid: str) -> StagedAnchor:
    h = prepared.header
    return StagedAnchor(
        request_key=prepared.request_key,
        record_id=h.record_id,
        patient=h.patient,
        custodian=h.custodian,
        fingerprint=h.fingerprint,
        category=h.category,
        previous=h.previous,
        cid=cid,
        batch_key=None,
        confirmed_block=None,
    )


def vault_record(vault: KeyVault, record_id: bytes) -> AnchoredRecord | None:
    """A record this custodian anchored, as its vault knows it (batched ones with their proof), or
    None. The only place a batched record's header and proof are kept besides the gateway's answer."""
    entry = vault.anchor(record_id)
    if entry is None:
        return None
    staged, batch_id, proof = entry
    nodes = tuple(proof[i : i + 32] for i in range(0, len(proof), 32))
    return AnchoredRecord(
        RecordId(bytes(record_id)),
        header_of(staged),
        staged.cid,
        staged.confirmed_block or 0,
        batch_id,
        nodes,
    )


def header_of(staged: StagedAnchor) -> RecordHeader:
    """The header of a staged anchor, checked against its record id."""
    header = RecordHeader(
        staged.patient, staged.custodian, staged.fingerprint, staged.category, staged.previous
    )
    if header.record_id != staged.record_id:
        raise MedChainError(f"the vault entry of record 0x{staged.record_id.hex()} does not hash to its id")
    return header


def _batch_index(custodian: str, staged: list[StagedAnchor], custodian_key: crypto.ReaderKey) -> bytes:
    """The batch's public index: the leaves a verifier needs, the rest sealed to the custodian.

    Public: the record ids in leaf order (hashes of salted headers: they name no patient, code or
    value). Sealed (ECIES to the custodian's key): each record's header and ciphertext CID, so the
    custodian can rebuild its vault from the store if it has to; padded like a record, since the
    categories' names differ in length and the sealed size would otherwise count them.
    """
    entries = [
        {
            "recordId": "0x" + s.record_id.hex(),
            "patient": s.patient,
            "fingerprint": "0x" + s.fingerprint.hex(),
            "category": category_text(s.category),
            "cid": s.cid,
        }
        for s in staged
    ]
    plain = json.dumps(entries).encode()
    sealed = crypto.seal_for(
        custodian_key, plain.ljust(crypto.padded_length(len(plain)))
    )  # JSON allows spaces
    return json.dumps(
        {
            "format": "medchain-batch-index/2",
            "custodian": custodian,
            "leaves": ["0x" + s.record_id.hex() for s in staged],
            "sealedEntries": base64.b64encode(sealed).decode(),
        }
    ).encode()

"""EHR client and custodian gateway: FHIR in, encrypted off chain, anchored on chain, read back verified.

Flow (docs/architecture.md): FHIR resource -> validate -> canonical bytes -> SHA-256 -> encrypt
(AES-256-GCM, the record id as associated data) -> store ciphertext (CID) -> anchor header and CID
-> wrap the data key for custodian and patient. A reader calls ``accessRecord`` (audit event), the
custodian's gateway sees that event and wraps the key for the reader, the reader decrypts and
checks the fingerprint against the anchor.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from medchain import crypto
from medchain.chain import Chain, ContractClient, Sender
from medchain.consent import Purpose, category_code, category_text
from medchain.errors import MedChainError
from medchain.merkle import MerkleTree
from medchain.store import ContentStore, cid_bytes, cid_text

ZERO32 = b"\0" * 32
HEADER_TYPE = "(address,address,bytes32,bytes32,bytes32)"


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
class RecordHeader:
    """Mirror of ``IEHRIndex.RecordHeader``; its keccak256 ABI encoding is the record id."""

    patient: str
    custodian: str
    fingerprint: bytes
    category: bytes
    previous: bytes = ZERO32

    def __post_init__(self) -> None:
        for name in ("fingerprint", "category", "previous"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 32:
                raise ValueError(
                    f"{name} must be 32 bytes, got {len(value) if isinstance(value, bytes) else value!r}"
                )

    def as_tuple(self) -> tuple[str, str, bytes, bytes, bytes]:
        return (
            Web3.to_checksum_address(self.patient),
            Web3.to_checksum_address(self.custodian),
            self.fingerprint,
            self.category,
            self.previous,
        )

    @property
    def record_id(self) -> bytes:
        return bytes(Web3.keccak(abi_encode([HEADER_TYPE], [self.as_tuple()])))

    @property
    def category_text(self) -> str:
        return category_text(self.category)


@dataclass(frozen=True)
class AnchoredRecord:
    id: bytes
    header: RecordHeader
    cid: str
    block: int
    batch_id: int = 0
    proof: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Release:
    """What the gateway hands a reader: ciphertext and a key envelope only that reader can open."""

    record: AnchoredRecord
    ciphertext: bytes
    envelope: bytes


@dataclass(frozen=True)
class Prepared:
    header: RecordHeader
    ciphertext: bytes
    data_key: bytes


@dataclass
class KeyVault:
    """The custodian's off-chain keystore: key envelopes per (record id, reader address).

    With a path it persists as JSON (written atomically); without, it lives in memory.
    """

    path: Path | None = None
    _envelopes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.path is not None and self.path.is_file():
            self._envelopes = dict(json.loads(self.path.read_text()))

    @staticmethod
    def _key(record_id: bytes, reader: str) -> str:
        return f"{record_id.hex()}:{Web3.to_checksum_address(reader)}"

    def put(self, record_id: bytes, reader: str, envelope: bytes) -> None:
        self._envelopes[self._key(record_id, reader)] = envelope.hex()
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._envelopes))
            tmp.replace(self.path)

    def get(self, record_id: bytes, reader: str) -> bytes:
        try:
            return bytes.fromhex(self._envelopes[self._key(record_id, reader)])
        except KeyError:
            raise AccessNotPermittedError(
                f"no key envelope for {reader} on record 0x{record_id.hex()}"
            ) from None


class EHRClient(ContractClient):
    """Anchors, amends, accesses and reads records through EHRIndex and a content store."""

    def __init__(self, chain: Chain, contract: Contract, store: ContentStore, from_block: int = 0) -> None:
        super().__init__(chain, contract, from_block)
        self.store = store

    # ─── Writing ────────────────────────────────────────────────────────────────────────────

    def prepare(
        self, resource: dict[str, Any], patient: str, custodian: str, previous: bytes = ZERO32
    ) -> Prepared:
        """Validates, canonicalises, fingerprints and encrypts a resource (no chain, no store)."""
        resource_type = validate_fhir(resource)
        canonical = crypto.canonical_json(resource)
        header = RecordHeader(
            patient, custodian, crypto.fingerprint(canonical), category_code(resource_type), previous
        )
        data_key = crypto.new_data_key()
        return Prepared(header, crypto.encrypt(data_key, canonical, header.record_id), data_key)

    def anchor_resource(
        self,
        custodian: Sender,
        resource: dict[str, Any],
        patient: str,
        vault: KeyVault,
        readers: tuple[crypto.ReaderKey, ...],
        previous: AnchoredRecord | None = None,
    ) -> AnchoredRecord:
        """The full anchoring flow; returns the record only once the chain accepted it.

        Args:
            custodian: The custodian institution's sender.
            resource: A FHIR R4 resource (dict).
            patient: The patient's address.
            vault: Where the custodian keeps key envelopes.
            readers: Keys to wrap the data key for at once (custodian and patient, normally).
            previous: The record this one amends.

        Raises:
            FhirValidationError: the resource is not valid FHIR.
            ContractRevert: the chain refused the anchor; nothing is reported as anchored.
        """
        custodian_address = custodian if isinstance(custodian, str) else custodian.address
        prepared = self.prepare(resource, patient, custodian_address, previous.id if previous else ZERO32)
        cid = self.store.put(prepared.ciphertext)
        if previous is None:
            fn = self.contract.functions.anchor(prepared.header.as_tuple(), cid_bytes(cid))
        else:
            fn = self.contract.functions.amend(
                previous.header.as_tuple(), prepared.header.as_tuple(), cid_bytes(cid)
            )
        receipt = self.chain.transact(fn, custodian)
        record_id = self._anchored_id(receipt)
        for reader in readers:
            vault.put(record_id, reader.address, crypto.wrap_key(prepared.data_key, reader))
        return AnchoredRecord(record_id, prepared.header, cid, int(receipt["blockNumber"]))

    def anchor_batch(
        self,
        custodian: Sender,
        items: list[tuple[str, dict[str, Any]]],
        vault: KeyVault,
        custodian_key: crypto.ReaderKey,
        patient_keys: dict[str, crypto.ReaderKey] | None = None,
    ) -> tuple[int, list[AnchoredRecord]]:
        """Anchors many (patient, resource) records with one Merkle root; returns the batch id and records."""
        custodian_address = custodian if isinstance(custodian, str) else custodian.address
        prepared = [self.prepare(resource, patient, custodian_address) for patient, resource in items]
        cids = [self.store.put(p.ciphertext) for p in prepared]
        tree = MerkleTree([p.header.record_id for p in prepared])
        index = [
            {
                "recordId": "0x" + p.header.record_id.hex(),
                "patient": p.header.patient,
                "fingerprint": "0x" + p.header.fingerprint.hex(),
                "category": p.header.category_text,
                "cid": c,
            }
            for p, c in zip(prepared, cids, strict=True)
        ]
        index_cid = self.store.put(json.dumps({"custodian": custodian_address, "records": index}).encode())
        fn = self.contract.functions.anchorBatch(tree.root, len(prepared), cid_bytes(index_cid))
        receipt = self.chain.transact(fn, custodian)
        events = self.contract.events.BatchAnchored().process_receipt(receipt, errors=DISCARD)
        batch_id = int(events[0]["args"]["batchId"])
        records = []
        for p, c in zip(prepared, cids, strict=True):
            rid = p.header.record_id
            vault.put(rid, custodian_key.address, crypto.wrap_key(p.data_key, custodian_key))
            if patient_keys and p.header.patient in patient_keys:
                pk = patient_keys[p.header.patient]
                vault.put(rid, pk.address, crypto.wrap_key(p.data_key, pk))
            records.append(
                AnchoredRecord(
                    rid, p.header, c, int(receipt["blockNumber"]), batch_id, tuple(tree.proof(rid))
                )
            )
        return batch_id, records

    def mark_entered_in_error(self, custodian: Sender, record_id: bytes, reason: int) -> None:
        self.chain.transact(self.contract.functions.markEnteredInError(record_id, reason), custodian)

    # ─── Access and reading ─────────────────────────────────────────────────────────────────

    def access(self, reader: Sender, record: AnchoredRecord, purpose: Purpose) -> TxReceipt:
        """Asks the chain for access; emits the audit event or raises ContractRevert(EHRAccessDenied)."""
        if record.batch_id:
            fn = self.contract.functions.accessBatchedRecord(
                record.header.as_tuple(), record.batch_id, list(record.proof), int(purpose)
            )
        else:
            fn = self.contract.functions.accessRecord(record.header.as_tuple(), int(purpose))
        return self.chain.transact(fn, reader)

    def open(self, release: Release, reader_private_key: bytes) -> dict[str, Any]:
        """Decrypts a release and verifies it against the anchored fingerprint; returns the resource."""
        data_key = crypto.unwrap_key(release.envelope, reader_private_key)
        plaintext = crypto.decrypt(data_key, release.ciphertext, release.record.id)
        if crypto.fingerprint(plaintext) != release.record.header.fingerprint:
            raise IntegrityError(
                f"record 0x{release.record.id.hex()} does not match its anchored fingerprint"
            )
        resource: dict[str, Any] = json.loads(plaintext)
        return resource

    # ─── Events ─────────────────────────────────────────────────────────────────────────────

    def record(self, record_id: bytes) -> AnchoredRecord:
        """A single-anchored record by id, from its RecordAnchored event."""
        logs = self.contract.events.RecordAnchored().get_logs(
            from_block=self.from_block, argument_filters={"recordId": record_id}
        )
        if not logs:
            raise RecordNotFoundError(f"no record 0x{record_id.hex()} is anchored")
        return self._from_log(logs[0])

    def records_of(self, patient: str) -> list[AnchoredRecord]:
        logs = self.contract.events.RecordAnchored().get_logs(
            from_block=self.from_block, argument_filters={"patient": Web3.to_checksum_address(patient)}
        )
        return [self._from_log(log) for log in logs]

    def status(self, record_id: bytes) -> int:
        return int(self.chain.call(self.contract.functions.record(record_id))[2])

    def access_history(
        self, patient: str | None = None, record_id: bytes | None = None, accessor: str | None = None
    ) -> list[dict[str, Any]]:
        """RecordAccessed events (the audit trail), optionally filtered."""
        filters: dict[str, Any] = {}
        if patient:
            filters["patient"] = Web3.to_checksum_address(patient)
        if record_id:
            filters["recordId"] = record_id
        if accessor:
            filters["accessor"] = Web3.to_checksum_address(accessor)
        logs = self.contract.events.RecordAccessed().get_logs(
            from_block=self.from_block, argument_filters=filters
        )
        times = self.chain.block_times(sorted({int(log["blockNumber"]) for log in logs}))
        out = []
        for log in logs:
            a = log["args"]
            out.append(
                {
                    "record_id": bytes(a["recordId"]),
                    "accessor": a["accessor"],
                    "patient": a["patient"],
                    "purpose": Purpose(a["purpose"]),
                    "authorization": bytes(a["authorization"]),
                    "break_glass": bool(a["breakGlass"]),
                    "block": int(log["blockNumber"]),
                    "timestamp": times[int(log["blockNumber"])],
                    "tx": log["transactionHash"].to_0x_hex(),
                }
            )
        return out

    def access_history_fhir(self, patient: str) -> list[dict[str, Any]]:
        """The patient's access history as validated FHIR AuditEvents (break-glass reads flagged BTG)."""
        from medchain.fhir import audit_event_resource

        chain_id = self.chain.chain_id
        return [
            audit_event_resource(
                chain_id=chain_id,
                observer=self.address,
                patient=e["patient"],
                accessor=e["accessor"],
                purpose=e["purpose"],
                recorded_at=e["timestamp"],
                entity_ref="0x" + e["record_id"].hex(),
                break_glass=e["break_glass"],
            )
            for e in self.access_history(patient=patient)
        ]

    def _from_log(self, log: Any) -> AnchoredRecord:
        a = log["args"]
        header = RecordHeader(
            a["patient"], a["custodian"], bytes(a["fingerprint"]), bytes(a["category"]), bytes(a["previous"])
        )
        return AnchoredRecord(
            bytes(a["recordId"]), header, cid_text(bytes(a["cid"])), int(log["blockNumber"])
        )

    def _anchored_id(self, receipt: TxReceipt) -> bytes:
        events = self.contract.events.RecordAnchored().process_receipt(receipt, errors=DISCARD)
        return bytes(events[0]["args"]["recordId"])


class CustodianGateway:
    """Releases a record's ciphertext and a key envelope to a reader the chain shows as permitted.

    The patient and the custodian may always read; anyone else needs a RecordAccessed event for
    this record and reader, no older than ``access_window`` seconds.
    """

    def __init__(
        self, ehr: EHRClient, vault: KeyVault, custodian_private_key: bytes, access_window: int = 3600
    ) -> None:
        self.ehr = ehr
        self.vault = vault
        self.key = custodian_private_key
        self.custodian = crypto.ReaderKey.from_private_key(custodian_private_key).address
        self.access_window = access_window

    def release(self, record: AnchoredRecord, reader: crypto.ReaderKey) -> Release:
        if Web3.to_checksum_address(record.header.custodian) != self.custodian:
            raise AccessNotPermittedError(f"record 0x{record.id.hex()} is held by another custodian")
        if reader.address not in (Web3.to_checksum_address(record.header.patient), self.custodian):
            self._require_access_event(record, reader.address)
        data_key = crypto.unwrap_key(self.vault.get(record.id, self.custodian), self.key)
        return Release(record, self.ehr.store.get(record.cid), crypto.wrap_key(data_key, reader))

    def _require_access_event(self, record: AnchoredRecord, reader: str) -> None:
        events = self.ehr.access_history(record_id=record.id, accessor=reader)
        now = int(self.ehr.chain.w3.eth.get_block("latest")["timestamp"]) if events else int(time.time())
        if not any(now - e["timestamp"] <= self.access_window for e in events):
            raise AccessNotPermittedError(
                f"{reader} has no permitted access to record 0x{record.id.hex()} on chain in the last "
                f"{self.access_window} s; call accessRecord first"
            )

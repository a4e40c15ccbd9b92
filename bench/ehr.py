"""EHR figures: anchoring gas (single, per record in batches of 100 and 1,000) and the off-chain
path's throughput (validate + canonicalise + hash + encrypt + store) on one core.

    .venv/bin/python -m bench.ehr      (part of `make bench`)
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from web3 import Web3

from bench.common import deploy_with
from medchain import crypto
from medchain.consent import GrantTerms
from medchain.ehr import validate_fhir
from medchain.localchain import LocalChain
from medchain.merkle import MerkleTree
from medchain.store import LocalFolderStore, cid_bytes
from medchain.types import Actions, Kind, Purpose


def typical_observation(target: int = 2048) -> dict[str, Any]:
    """A lab Observation of about ``target`` bytes of JSON."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
        "effectiveDateTime": "2026-11-28T08:30:00Z",
        "valueQuantity": {
            "value": 6.3,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
        "note": [],
    }
    while len(crypto.canonical_json(resource)) < target:
        resource["note"].append(
            {"text": "Fasting sample, analysed on the morning run, no haemolysis observed."}
        )
    return resource


def imaging_attachment(size: int = 1_000_000) -> dict[str, Any]:
    """A Media resource carrying about ``size`` bytes of base64 image data."""
    import base64

    raw = os.urandom(size * 3 // 4)
    return {
        "resourceType": "Media",
        "status": "completed",
        "content": {"contentType": "application/dicom", "data": base64.b64encode(raw).decode()},
    }


def offchain_rate(
    resource: dict[str, Any], store: LocalFolderStore, seconds: float = 3.0
) -> tuple[float, int]:
    """Records per second through validate + canonicalise + salted commitment + pad + encrypt + store
    (what ``EHRClient.prepare`` and the store do before an anchor; the record id stands in as AAD)."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done < 3:
        validate_fhir(resource)
        canonical = crypto.canonical_json(resource)
        salt = crypto.new_salt()
        digest = crypto.commitment(salt, canonical)
        store.put(crypto.encrypt(crypto.new_data_key(), crypto.seal_plaintext(salt, canonical), digest))
        done += 1
    return done / (time.perf_counter() - start), len(canonical)


def main() -> None:
    gas_rows: list[tuple[str, str, str]] = []
    with LocalChain("anvil") as w3:
        chain, suite, acct, _ = deploy_with(w3, Kind.HOSPITAL, Kind.LABORATORY)
        hospital, lab = acct[1], acct[2]
        fn = suite.ehr_contract.functions
        single = []
        for i in range(10):
            patient = acct[5 + i]
            suite.consent.grant(
                patient, GrantTerms.for_all(patient, hospital, Actions.READ | Actions.APPEND, Purpose.TREAT)
            )
            header = (
                patient,
                hospital,
                hashlib.sha256(f"r{i}".encode()).digest(),
                b"Observation".ljust(32, b"\0"),
                b"\0" * 32,
            )
            cid = cid_bytes(crypto_cid(f"c{i}".encode()))
            single.append(chain.transact(fn.anchor(header, cid), hospital)["gasUsed"])
        gas_rows.append(
            (
                "anchor (single record, all-data consent)",
                f"{int(statistics.median(single)):,}",
                "goal <= 60,000",
            )
        )
        index_cid = cid_bytes(crypto_cid(b"index"))
        for n, note in (
            (100, "first batch ever (initialises the batch list)"),
            (100, "goal <= 1,000 per record"),
            (1000, ""),
        ):
            tree = MerkleTree([os.urandom(32) for _ in range(n)])
            gas = chain.transact(fn.anchorBatch(tree.root, n, index_cid), lab)["gasUsed"]
            gas_rows.append((f"anchorBatch of {n:,}: per record", f"{gas / n:,.1f}", f"{note} (tx {gas:,})"))
        gas_rows.extend(_access_and_retraction_gas(chain, suite, acct, hospital, lab))

    table = Table(title="EHRIndex gas (Anvil, median of 10 single anchors)")
    for col in ("operation", "gas", "note"):
        table.add_column(col)
    for row in gas_rows:
        table.add_row(*row)
    Console().print(table)

    store = LocalFolderStore(Path(tempfile.mkdtemp()))
    rows = []
    for label, resource in (
        ("typical FHIR Observation", typical_observation()),
        ("imaging attachment (Media)", imaging_attachment()),
    ):
        rate, size = offchain_rate(resource, store)
        rows.append((label, f"{size:,}", f"{rate:,.1f}", f"{rate * size / 1e6:,.1f}"))
    t2 = Table(
        title="Off-chain path on one core: validate + canonicalise + salted SHA-256 + pad + AES-GCM + store"
    )
    for col in ("resource", "bytes", "records/s", "MB/s"):
        t2.add_column(col, justify="right" if col != "resource" else "left")
    for row in rows:
        t2.add_row(*row)
    Console().print(t2)


def _access_and_retraction_gas(chain, suite, acct, hospital, lab) -> list[tuple[str, str, str]]:
    """accessRecord (grantee, patient), accessBatchedRecord, markEnteredInError (single, batched)."""
    fn = suite.ehr_contract.functions
    patient, reader = acct[15], acct[16]
    for grantee, actions in ((hospital, Actions.READ | Actions.APPEND), (lab, Actions.READ | Actions.APPEND)):
        suite.consent.grant(patient, GrantTerms.for_all(patient, grantee, actions, Purpose.TREAT))
    suite.consent.grant(patient, GrantTerms.for_all(patient, reader, Actions.READ, Purpose.TREAT))
    obs = b"Observation".ljust(32, b"\0")
    headers = [
        (patient, hospital, hashlib.sha256(f"a{i}".encode()).digest(), obs, b"\0" * 32) for i in range(6)
    ]
    for i, h in enumerate(headers):
        chain.transact(fn.anchor(h, cid_bytes(crypto_cid(f"a{i}".encode()))), hospital)
    by_reader = [chain.transact(fn.accessRecord(h, 0), reader)["gasUsed"] for h in headers[:3]]
    by_patient = [chain.transact(fn.accessRecord(h, 0), patient)["gasUsed"] for h in headers[:3]]
    stranger = acct[17]  # no consent: the attempt is recorded (AccessDenied), not reverted
    tried_granted = [chain.transact(fn.tryAccessRecord(h, 0), reader)["gasUsed"] for h in headers[:3]]
    tried_denied = [chain.transact(fn.tryAccessRecord(h, 0), stranger)["gasUsed"] for h in headers[:3]]
    retract = [chain.transact(fn.markEnteredInError(_rid(h), 2), hospital)["gasUsed"] for h in headers[3:]]
    batched = [(patient, lab, hashlib.sha256(f"b{i}".encode()).digest(), obs, b"\0" * 32) for i in range(8)]
    tree = MerkleTree([_rid(h) for h in batched])
    receipt = chain.transact(fn.anchorBatch(tree.root, len(batched), cid_bytes(crypto_cid(b"bi"))), lab)
    batch_id = suite.ehr_contract.events.BatchAnchored().process_receipt(receipt)[0]["args"]["batchId"]
    proof = [tree.proof(_rid(h)) for h in batched]
    batched_access = [
        chain.transact(fn.accessBatchedRecord(h, batch_id, p, 0), reader)["gasUsed"]
        for h, p in zip(batched[:3], proof[:3], strict=True)
    ]
    rows = [
        ("accessRecord by a consented reader", f"{int(statistics.median(by_reader)):,}", "median of 3"),
        ("accessRecord by the patient", f"{int(statistics.median(by_patient)):,}", "median of 3"),
        ("tryAccessRecord, permitted", f"{int(statistics.median(tried_granted)):,}", "median of 3"),
        (
            "tryAccessRecord, refused (AccessDenied)",
            f"{int(statistics.median(tried_denied)):,}",
            "median of 3",
        ),
        (
            "accessBatchedRecord (8-record batch)",
            f"{int(statistics.median(batched_access)):,}",
            "median of 3",
        ),
        ("markEnteredInError", f"{int(statistics.median(retract)):,}", "median of 3"),
    ]
    if hasattr(fn, "markBatchedEnteredInError"):
        marks = [
            chain.transact(fn.markBatchedEnteredInError(h, batch_id, p, 2), lab)["gasUsed"]
            for h, p in zip(batched[3:6], proof[3:6], strict=True)
        ]
        rows.append(("markBatchedEnteredInError", f"{int(statistics.median(marks)):,}", "median of 3"))
    return rows


def _rid(header) -> bytes:
    from eth_abi.abi import encode

    return bytes(Web3.keccak(encode(["(address,address,bytes32,bytes32,bytes32)"], [header])))


def crypto_cid(data: bytes) -> str:
    from medchain.store import cid_of

    return cid_of(data)


if __name__ == "__main__":
    main()

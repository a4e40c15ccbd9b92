"""contracts/libraries: each id formula and code against the Python SDK's, through a test harness.

The harness (contracts/test/LibraryHarness.sol) exposes the libraries' internal functions and
constants; the suite's own contracts are asked too, so that a contract that stopped using its
library would show here as well as in its own tests.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from brownie import ConsentManager, LibraryHarness
from eth_abi.abi import encode as abi_encode
from web3 import Web3

from medchain import merkle
from medchain.artifacts import Artifacts, abi_type
from medchain.claims import CoveredService, DispenseRef, lot_code
from medchain.consent import Actions, Purpose, category_code
from medchain.drug import lot_bytes, serial_leaf_id
from medchain.ehr import RecordHeader
from medchain.types import Kind, kind_mask, patient_ref

SAMPLES = 6
UINT64_MAX = 2**64 - 1
UINT40_MAX = 2**40 - 1


@pytest.fixture(scope="module")
def harness(regulator):
    return LibraryHarness.deploy({"from": regulator})


def rng(name: str) -> random.Random:
    """A generator seeded by the test's name: the same samples on every run."""
    return random.Random(name)


def address(r: random.Random) -> str:
    return Web3.to_checksum_address(r.randbytes(20))


def input_type(contract: str, function: str) -> str:
    """The ABI type of ``function``'s first input, read from the compiled artifact."""
    entry = next(e for e in Artifacts().get(contract).abi if e.get("name") == function)
    return abi_type(entry["inputs"][0])


# ─── RecordIds ──────────────────────────────────────────────────────────────────────────────


def headers(r: random.Random) -> list[RecordHeader]:
    samples = [
        RecordHeader(address(r), address(r), r.randbytes(32), category_code("Observation"), r.randbytes(32))
        for _ in range(SAMPLES)
    ]
    first = hashlib.sha256(b"first").digest()
    samples.append(RecordHeader(address(r), address(r), first, category_code("Condition")))
    return samples


def test_record_id_is_the_sdk_record_id(harness, ehr):
    for h in headers(rng("record id")):
        assert bytes(harness.recordId(h.as_tuple())) == h.record_id
        assert bytes(ehr.recordIdOf(h.as_tuple())) == h.record_id


def test_record_leaf_is_the_sdk_merkle_leaf(harness):
    for h in headers(rng("record leaf")):
        assert bytes(harness.recordLeaf(h.record_id)) == merkle.leaf(h.record_id)


# ─── DrugIds ────────────────────────────────────────────────────────────────────────────────

VALID_GTINS = [9506000134352, 40170725]
GTINS = [*VALID_GTINS, 0, UINT64_MAX]


def test_batch_id_is_the_sdk_batch_id(harness, suite):
    for gtin, lot in zip(GTINS, ["LOT-1", "A", "L" * 20, "2025-07"], strict=True):
        expected = bytes(Web3.keccak(abi_encode(["uint64", "bytes20"], [gtin, lot_bytes(lot)])))
        assert bytes(harness.batchId(gtin, lot_bytes(lot))) == expected
        if gtin in VALID_GTINS:  # the SDK checks the GTIN, then asks DrugProvenance.batchIdOf
            assert suite.drugs.batch_id(gtin, lot) == expected


def test_patient_ref_is_the_sdk_patient_ref(harness):
    r = rng("patient ref")
    for _ in range(SAMPLES):
        patient, salt = address(r), r.randbytes(32)
        assert bytes(harness.patientRef(patient, salt)) == patient_ref(patient, salt)


def test_dispense_id_is_the_sdk_dispense_id(harness):
    r = rng("dispense id")
    for gtin in GTINS:
        ref = DispenseRef(
            r.randbytes(20), r.randbytes(32), r.randrange(1, 2**64), r.randrange(2**64), r.randrange(2**40)
        )
        dispenser, patient = address(r), address(r)
        batch = harness.batchId(gtin, lot_code(ref.lot))
        patient_reference = harness.patientRef(patient, ref.patient_salt)
        got = harness.dispenseId(batch, dispenser, patient_reference, ref.quantity, ref.nonce, ref.timestamp)
        assert bytes(got) == ref.dispense_id(gtin, dispenser, patient)


def test_shipment_id_from_memory_and_calldata_is_the_abi_hash(harness):
    ref_type = input_type("DrugProvenance", "receiveShipment")
    r = rng("shipment id")
    refs = [
        (r.randbytes(32), address(r), address(r), r.randrange(2**64), r.randrange(2**64), r.randrange(2**40))
        for _ in range(SAMPLES)
    ]
    refs.append((b"\xff" * 32, address(r), address(r), UINT64_MAX, UINT64_MAX, UINT40_MAX))
    for ref in refs:
        expected = bytes(Web3.keccak(abi_encode([ref_type], [ref])))
        from_memory, from_calldata = harness.shipmentIds(ref)
        assert bytes(from_memory) == bytes(from_calldata) == expected


def test_serial_leaf_is_the_sdk_serial_tree_leaf(harness):
    for serial in ["SN-0001", "", "x" * 100, "ümlaut"]:
        assert bytes(harness.serialLeaf(serial)) == merkle.leaf(serial_leaf_id(serial))


# ─── ClaimIds ───────────────────────────────────────────────────────────────────────────────


def test_claim_id_from_memory_and_calldata_is_the_abi_hash(harness, claims):
    record_type = input_type("ClaimsProcessor", "claimIdOf")
    r = rng("claim id")
    records = [
        (
            r.randrange(2**32),
            address(r),
            address(r),
            r.randbytes(32),
            r.randbytes(32),
            *(r.randrange(2**64) for _ in range(4)),
            r.randrange(2**32),
            r.randrange(2**40),
        )
        for _ in range(SAMPLES)
    ]
    for record in records:
        expected = bytes(Web3.keccak(abi_encode([record_type], [record])))
        from_memory, from_calldata = harness.claimIds(record)
        assert bytes(from_memory) == bytes(from_calldata) == expected
        assert bytes(claims.claimIdOf(record)) == expected


def test_coverage_leaf_is_the_sdk_covered_service_leaf(harness):
    r = rng("coverage leaf")
    for gtin in [0, *GTINS]:
        service = CoveredService("99213", r.randrange(2**64), r.randbytes(32), gtin)
        got = harness.coverageLeaf(service.commitment, service.allowed_amount, service.gtin)
        assert bytes(got) == merkle.leaf(service.leaf_id)


# ─── Codes ──────────────────────────────────────────────────────────────────────────────────


def test_action_codes_are_the_sdk_actions(harness, suite):
    assert tuple(harness.actions()) == (
        Actions.READ,
        Actions.APPEND,
        Actions.SHARE,
        Actions.READ | Actions.APPEND | Actions.SHARE,
    )
    consent = ConsentManager.at(suite.deployment.address_of("ConsentManager"))
    public = (consent.ACTION_READ(), consent.ACTION_APPEND(), consent.ACTION_SHARE())
    assert public == tuple(harness.actions())[:3]


def test_purpose_codes_are_the_sdk_purposes(harness, suite):
    assert tuple(harness.purposes()) == (*Purpose, Purpose.mask(*Purpose))
    consent = ConsentManager.at(suite.deployment.address_of("ConsentManager"))
    public = (consent.PURPOSE_TREAT(), consent.PURPOSE_HPAYMT(), consent.PURPOSE_HRESCH())
    assert (*public, consent.PURPOSE_ETREAT()) == tuple(Purpose)


def test_only_sdk_purposes_are_known_and_each_has_its_mask_bit(harness):
    for index in [*range(10), 255]:
        known, bit = harness.purpose(index)
        assert known == (index in {int(p) for p in Purpose})
        assert bit == (1 << index) & 0xFF
        if known:
            assert bit == Purpose.mask(Purpose(index))


# ─── KindMasks ──────────────────────────────────────────────────────────────────────────────

GROUPS = {
    "careProviders": {Kind.HOSPITAL, Kind.COMMUNITY_CLINIC, Kind.SPECIALIST_HOSPITAL},
    "custodians": {Kind.HOSPITAL, Kind.COMMUNITY_CLINIC, Kind.SPECIALIST_HOSPITAL, Kind.LABORATORY},
    "billingProviders": {
        Kind.HOSPITAL,
        Kind.COMMUNITY_CLINIC,
        Kind.SPECIALIST_HOSPITAL,
        Kind.LABORATORY,
        Kind.PHARMACY,
    },
    "dispensers": {Kind.HOSPITAL, Kind.COMMUNITY_CLINIC, Kind.SPECIALIST_HOSPITAL, Kind.PHARMACY},
    "recipients": {
        Kind.HOSPITAL,
        Kind.COMMUNITY_CLINIC,
        Kind.SPECIALIST_HOSPITAL,
        Kind.PHARMACY,
        Kind.DISTRIBUTOR,
    },
    "holders": {
        Kind.HOSPITAL,
        Kind.COMMUNITY_CLINIC,
        Kind.SPECIALIST_HOSPITAL,
        Kind.PHARMACY,
        Kind.DISTRIBUTOR,
        Kind.MANUFACTURER,
    },
}


def test_kind_groups_are_the_sdk_kind_masks(harness):
    assert dict(harness.kindGroups().dict()) == {name: kind_mask(*kinds) for name, kinds in GROUPS.items()}


def test_kind_groups_admit_exactly_their_kinds_through_the_registry(harness, registry, suite, outsider):
    groups = harness.kindGroups().dict()
    members = [registry.memberAt(i) for i in range(registry.memberCount())]
    kinds = {Kind(registry.memberOf(account)[0]): account for account in members}
    assert len(kinds) == 8  # the standard suite: every kind but the community clinic
    for name, group in GROUPS.items():
        for kind, account in kinds.items():
            assert registry.isActiveAny(account, groups[name]) == (kind in group), (name, kind)
        assert not registry.isActiveAny(outsider, groups[name])

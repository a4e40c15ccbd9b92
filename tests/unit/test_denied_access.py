"""EHRIndex records refused reads: tryAccessRecord / tryAccessBatchedRecord leave an AccessDenied
event instead of reverting, and still release nothing without consent."""

from __future__ import annotations

import hashlib

import pytest

from medchain.ehr import RecordHeader
from medchain.merkle import MerkleTree
from medchain.store import cid_bytes, cid_of
from medchain.types import NO_END, Actions, Purpose, ScopeKind, category_code
from tests.helpers import reverts

ZERO32 = b"\0" * 32
OBS = category_code("Observation")
CID = cid_bytes(cid_of(b"ciphertext-1"))
READ, APPEND = int(Actions.READ), int(Actions.APPEND)
TREAT, HRESCH = int(Purpose.TREAT), int(Purpose.HRESCH)


def header(patient, custodian, fp=b"record-1"):
    return RecordHeader(str(patient), str(custodian), hashlib.sha256(fp).digest(), OBS, ZERO32)


def grant(consent, patient, grantee, actions=READ, purposes=1 << TREAT):
    consent.grant(
        (patient, grantee, int(ScopeKind.ALL), ZERO32, actions, purposes, 0, NO_END), {"from": patient}
    )


@pytest.fixture
def anchored(ehr, consent, patient, hospital):
    grant(consent, patient, hospital, actions=READ | APPEND)
    h = header(patient, hospital)
    ehr.anchor(h.as_tuple(), CID, {"from": hospital})
    return h


def test_refused_attempt_is_recorded_instead_of_reverted(ehr, anchored, patient, hospital2):
    tx = ehr.tryAccessRecord(anchored.as_tuple(), TREAT, {"from": hospital2})
    assert tx.return_value is False
    assert "RecordAccessed" not in tx.events
    event = tx.events["AccessDenied"]
    assert (event["recordId"], event["accessor"], event["patient"], event["purpose"]) == (
        "0x" + anchored.record_id.hex(),
        hospital2,
        patient,
        TREAT,
    )


def test_permitted_attempt_is_the_audited_read(ehr, consent, anchored, patient, hospital2):
    grant(consent, patient, hospital2)
    tx = ehr.tryAccessRecord(anchored.as_tuple(), TREAT, {"from": hospital2})
    assert tx.return_value is True
    assert "AccessDenied" not in tx.events
    assert tx.events["RecordAccessed"]["accessor"] == hospital2


def test_attempt_for_a_purpose_the_consent_does_not_cover_is_recorded(
    ehr, consent, anchored, patient, hospital2
):
    grant(consent, patient, hospital2)  # TREAT only
    tx = ehr.tryAccessRecord(anchored.as_tuple(), HRESCH, {"from": hospital2})
    assert tx.return_value is False
    assert tx.events["AccessDenied"]["purpose"] == HRESCH


def test_revoked_consent_attempt_is_recorded(ehr, consent, anchored, patient, hospital2):
    grant(consent, patient, hospital2)
    assert ehr.tryAccessRecord(anchored.as_tuple(), TREAT, {"from": hospital2}).return_value is True
    grant_id = consent.grantIdFor(patient, hospital2, int(ScopeKind.ALL), ZERO32)
    consent.revoke(grant_id, {"from": patient})
    assert ehr.tryAccessRecord(anchored.as_tuple(), TREAT, {"from": hospital2}).return_value is False


def test_outsider_attempt_is_recorded(ehr, anchored, outsider):
    tx = ehr.tryAccessRecord(anchored.as_tuple(), TREAT, {"from": outsider})
    assert tx.events["AccessDenied"]["accessor"] == outsider


def test_patient_and_custodian_attempts_pass(ehr, anchored, patient, hospital):
    for who in (patient, hospital):
        assert ehr.tryAccessRecord(anchored.as_tuple(), TREAT, {"from": who}).return_value is True


def test_attempt_on_an_unknown_record_reverts(ehr, patient, hospital, hospital2):
    h = header(patient, hospital, fp=b"never anchored")
    with reverts("EHRUnknownRecord", h.record_id):
        ehr.tryAccessRecord(h.as_tuple(), TREAT, {"from": hospital2})


def test_attempt_with_an_unknown_purpose_reverts(ehr, anchored, hospital2, patient):
    for who in (hospital2, patient):
        with reverts("EHRUnknownPurpose", 9):
            ehr.tryAccessRecord(anchored.as_tuple(), 9, {"from": who})


def test_attempt_on_a_retracted_record_reverts(ehr, anchored, hospital, hospital2):
    ehr.markEnteredInError(anchored.record_id, 1, {"from": hospital})
    with reverts("EHRRecordEnteredInError", anchored.record_id):
        ehr.tryAccessRecord(anchored.as_tuple(), TREAT, {"from": hospital2})


@pytest.fixture
def lab_batch(ehr, consent, laboratory, patient):
    grant(consent, patient, laboratory, actions=READ | APPEND)
    h = header(patient, laboratory, fp=b"lab result")
    tree = MerkleTree([h.record_id, b"\x01" * 32])
    tx = ehr.anchorBatch(tree.root, 2, CID, {"from": laboratory})
    return tx.events["BatchAnchored"]["batchId"], h, tree


def test_refused_batched_attempt_is_recorded(ehr, lab_batch, hospital2, patient):
    batch_id, h, tree = lab_batch
    tx = ehr.tryAccessBatchedRecord(
        h.as_tuple(), batch_id, tree.proof(h.record_id), TREAT, {"from": hospital2}
    )
    assert tx.return_value is False
    assert tx.events["AccessDenied"]["recordId"] == "0x" + h.record_id.hex()


def test_batched_attempt_with_a_wrong_proof_reverts(ehr, lab_batch, hospital2):
    batch_id, h, _tree = lab_batch
    with reverts("EHRInvalidProof", h.record_id, batch_id):
        ehr.tryAccessBatchedRecord(h.as_tuple(), batch_id, [b"\x02" * 32], TREAT, {"from": hospital2})

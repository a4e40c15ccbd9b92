"""EHRIndex: anchoring, amendment, entered-in-error, audited access, batches; every revert by name."""

from __future__ import annotations

import hashlib

import pytest
from brownie import EHRIndex, chain

from medchain.ehr import RecordHeader
from medchain.merkle import MerkleTree
from medchain.store import cid_bytes, cid_of
from medchain.types import NO_END, Actions, GovernanceAction, Purpose, ScopeKind, category_code
from tests.helpers import reverts

ZERO = "0x0000000000000000000000000000000000000000"
ZERO32 = b"\0" * 32
OBS = category_code("Observation")
COND = category_code("Condition")
CID = cid_bytes(cid_of(b"ciphertext-1"))
READ, APPEND = int(Actions.READ), int(Actions.APPEND)
TREAT, HPAYMT, ETREAT = int(Purpose.TREAT), int(Purpose.HPAYMT), int(Purpose.ETREAT)


def header(patient, custodian, fp=b"record-1", category=OBS, previous=ZERO32):
    return RecordHeader(str(patient), str(custodian), hashlib.sha256(fp).digest(), category, previous)


def grant(consent, patient, grantee, actions=READ, purposes=1 << TREAT, kind=ScopeKind.ALL, value=ZERO32):
    consent.grant((patient, grantee, int(kind), value, actions, purposes, 0, NO_END), {"from": patient})


@pytest.fixture
def treating(consent, patient, hospital):
    """The patient lets the hospital append records (the treatment relationship)."""
    grant(consent, patient, hospital, actions=READ | APPEND)


@pytest.fixture
def anchored(ehr, treating, patient, hospital):
    h = header(patient, hospital)
    ehr.anchor(h.as_tuple(), CID, {"from": hospital})
    return h


# ─── Anchoring ─────────────────────────────────────────────────────────────────────────────


def test_anchor_stores_one_record(ehr, treating, patient, hospital):
    h = header(patient, hospital)
    tx = ehr.anchor(h.as_tuple(), CID, {"from": hospital})
    event = tx.events["RecordAnchored"]
    assert event["recordId"] == "0x" + h.record_id.hex()
    assert ehr.recordIdOf(h.as_tuple()) == "0x" + h.record_id.hex()
    assert event["cid"] == "0x" + CID.hex()
    state = ehr.record(h.record_id)
    assert (state["custodian"], state["status"]) == (hospital, 1)
    assert ehr.isValidRecord(h.as_tuple())


def test_anchor_without_treatment_relationship_reverts(ehr, patient, hospital):
    with reverts("EHRNoTreatmentRelationship", patient, hospital, OBS):
        ehr.anchor(header(patient, hospital).as_tuple(), CID, {"from": hospital})


def test_read_only_consent_is_not_a_treatment_relationship(ehr, consent, patient, hospital):
    grant(consent, patient, hospital, actions=READ)
    with reverts("EHRNoTreatmentRelationship"):
        ehr.anchor(header(patient, hospital).as_tuple(), CID, {"from": hospital})


def test_category_append_consent_allows_only_that_category(ehr, consent, patient, hospital):
    grant(consent, patient, hospital, actions=APPEND, kind=ScopeKind.CATEGORY, value=OBS)
    ehr.anchor(header(patient, hospital).as_tuple(), CID, {"from": hospital})
    with reverts("EHRNoTreatmentRelationship"):
        ehr.anchor(header(patient, hospital, category=COND).as_tuple(), CID, {"from": hospital})


def test_anchor_by_non_custodian_reverts(ehr, consent, patient, pharmacy, outsider):
    for account in (pharmacy, outsider):
        grant(consent, patient, account, actions=APPEND)
        with reverts("EHRNotCustodian", account):
            ehr.anchor(header(patient, account).as_tuple(), CID, {"from": account})


def test_anchor_in_another_custodians_name_reverts(ehr, treating, patient, hospital, hospital2):
    with reverts("EHRCustodianMismatch", hospital, hospital2):
        ehr.anchor(header(patient, hospital).as_tuple(), CID, {"from": hospital2})


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("zero patient", "EHRInvalidPatient"),
        ("self patient", "EHRInvalidPatient"),
        ("zero fingerprint", "EHRInvalidDigest"),
        ("zero category", "EHRInvalidDigest"),
        ("previous on anchor", "EHRInvalidAmendment"),
    ],
)
def test_anchor_rejects_bad_header(ehr, treating, patient, hospital, case, error):
    h = {
        "zero patient": (ZERO, hospital.address, hashlib.sha256(b"x").digest(), OBS, ZERO32),
        "self patient": (hospital.address, hospital.address, hashlib.sha256(b"x").digest(), OBS, ZERO32),
        "zero fingerprint": (patient.address, hospital.address, ZERO32, OBS, ZERO32),
        "zero category": (patient.address, hospital.address, hashlib.sha256(b"x").digest(), ZERO32, ZERO32),
        "previous on anchor": (
            patient.address,
            hospital.address,
            hashlib.sha256(b"x").digest(),
            OBS,
            b"\1" * 32,
        ),
    }[case]
    with reverts(error):
        ehr.anchor(h, CID, {"from": hospital})


@pytest.mark.parametrize(
    "cid",
    [
        b"",
        b"\x01\x55\x12\x20" + b"\0" * 31,
        b"\x00\x55\x12\x20" + b"\0" * 32,
        b"\x01\x71\x12\x20" + b"\0" * 32,
        b"\x01\x55\x13\x20" + b"\0" * 32,
        b"\x01\x55\x12\x40" + b"\0" * 32,
    ],
    ids=["empty", "short", "cidv0-prefix", "dag-cbor", "sha512", "long-digest"],
)
def test_anchor_rejects_unparseable_cid(ehr, treating, patient, hospital, cid):
    with reverts("EHRInvalidCid"):
        ehr.anchor(header(patient, hospital).as_tuple(), cid, {"from": hospital})


def test_anchor_twice_reverts(ehr, anchored, hospital):
    with reverts("EHRRecordExists", anchored.record_id):
        ehr.anchor(anchored.as_tuple(), CID, {"from": hospital})


def test_suspended_custodian_cannot_anchor(ehr, registry, treating, patient, hospital, regulator, accounts):
    pid = registry.proposeChange(hospital, GovernanceAction.SUSPEND, 0, {"from": regulator}).events[
        "ProposalOpened"
    ]["proposalId"]
    for voter in (accounts[2], accounts[7], accounts[3], accounts[5]):
        if registry.proposal(pid)["status"] == 1:
            registry.vote(pid, True, {"from": voter})
    with reverts("EHRNotCustodian", hospital):
        ehr.anchor(header(patient, hospital).as_tuple(), CID, {"from": hospital})


# ─── Amendment and entered-in-error ────────────────────────────────────────────────────────


def test_amend_links_versions_and_keeps_the_old(ehr, anchored, patient, hospital):
    new = header(patient, hospital, fp=b"record-1 v2", previous=anchored.record_id)
    tx = ehr.amend(anchored.as_tuple(), new.as_tuple(), CID, {"from": hospital})
    assert tx.events["RecordAmended"]["previousId"] == "0x" + anchored.record_id.hex()
    assert tx.events["RecordAmended"]["newId"] == "0x" + new.record_id.hex()
    assert ehr.record(anchored.record_id)["status"] == 2  # superseded, still there
    assert ehr.record(new.record_id)["status"] == 1
    assert ehr.isValidRecord(anchored.as_tuple())


def test_amend_of_superseded_reverts(ehr, anchored, patient, hospital):
    v2 = header(patient, hospital, fp=b"v2", previous=anchored.record_id)
    ehr.amend(anchored.as_tuple(), v2.as_tuple(), CID, {"from": hospital})
    v3 = header(patient, hospital, fp=b"v3", previous=anchored.record_id)
    with reverts("EHRRecordNotCurrent", anchored.record_id, 2):
        ehr.amend(anchored.as_tuple(), v3.as_tuple(), CID, {"from": hospital})


def test_amend_unknown_reverts(ehr, treating, patient, hospital):
    ghost = header(patient, hospital, fp=b"ghost")
    new = header(patient, hospital, fp=b"new", previous=ghost.record_id)
    with reverts("EHRUnknownRecord", ghost.record_id):
        ehr.amend(ghost.as_tuple(), new.as_tuple(), CID, {"from": hospital})


@pytest.mark.parametrize("case", ["wrong link", "other patient", "other custodian"])
def test_amend_must_match_previous(ehr, anchored, consent, patient, hospital, hospital2, accounts, case):
    other_patient = accounts[15]
    new = {
        "wrong link": header(patient, hospital, fp=b"n", previous=b"\2" * 32),
        "other patient": header(other_patient, hospital, fp=b"n", previous=anchored.record_id),
        "other custodian": header(patient, hospital2, fp=b"n", previous=anchored.record_id),
    }[case]
    with reverts("EHRInvalidAmendment", anchored.record_id):
        ehr.amend(anchored.as_tuple(), new.as_tuple(), CID, {"from": hospital})


def test_amend_by_other_custodian_reverts(ehr, anchored, consent, patient, hospital, hospital2):
    grant(consent, patient, hospital2, actions=APPEND)
    new = header(patient, hospital, fp=b"n", previous=anchored.record_id)
    with reverts("EHRCustodianMismatch", hospital, hospital2):
        ehr.amend(anchored.as_tuple(), new.as_tuple(), CID, {"from": hospital2})


def test_mark_entered_in_error(ehr, anchored, hospital, patient):
    tx = ehr.markEnteredInError(anchored.record_id, 2, {"from": hospital})
    assert tx.events["RecordEnteredInError"]["reason"] == 2
    assert ehr.record(anchored.record_id)["status"] == 3
    assert not ehr.isValidRecord(anchored.as_tuple())
    with reverts("EHRRecordEnteredInError", anchored.record_id):
        ehr.accessRecord(anchored.as_tuple(), TREAT, {"from": patient})
    with reverts("EHRRecordNotCurrent", anchored.record_id, 3):
        ehr.markEnteredInError(anchored.record_id, 2, {"from": hospital})


def test_mark_entered_in_error_rejects_bad_calls(ehr, anchored, hospital, hospital2):
    with reverts("EHRCustodianMismatch", hospital, hospital2):
        ehr.markEnteredInError(anchored.record_id, 1, {"from": hospital2})
    with reverts("EHRInvalidReason"):
        ehr.markEnteredInError(anchored.record_id, 0, {"from": hospital})
    with reverts("EHRUnknownRecord", b"\3" * 32):
        ehr.markEnteredInError(b"\3" * 32, 1, {"from": hospital})


@pytest.mark.parametrize("action", [GovernanceAction.SUSPEND, GovernanceAction.REMOVE])
def test_suspended_or_revoked_custodian_cannot_mark_entered_in_error(
    ehr, registry, anchored, hospital, regulator, accounts, action
):
    pid = registry.proposeChange(hospital, action, 0, {"from": regulator}).events["ProposalOpened"][
        "proposalId"
    ]
    for voter in accounts[2:8]:
        if registry.proposal(pid)["status"] == 1:
            registry.vote(pid, True, {"from": voter})
    assert registry.proposal(pid)["status"] == 2  # executed
    with reverts("EHRNotCustodian", hospital):
        ehr.markEnteredInError(anchored.record_id, 2, {"from": hospital})
    assert ehr.record(anchored.record_id)["status"] == 1  # still current
    assert ehr.isValidRecord(anchored.as_tuple())


# ─── Access (audit) ────────────────────────────────────────────────────────────────────────


def test_consented_reader_is_audited(ehr, consent, anchored, patient, hospital2):
    grant(consent, patient, hospital2)
    tx = ehr.accessRecord(anchored.as_tuple(), TREAT, {"from": hospital2})
    event = tx.events["RecordAccessed"]
    gid = consent.grantIdFor(patient, hospital2, ScopeKind.ALL, ZERO32)
    assert (
        event["accessor"],
        event["patient"],
        event["purpose"],
        event["authorization"],
        event["breakGlass"],
    ) == (hospital2, patient, TREAT, gid, False)


def test_record_scoped_consent_covers_only_that_record(ehr, consent, anchored, patient, hospital, hospital2):
    grant(consent, patient, hospital2, kind=ScopeKind.RECORD, value=anchored.record_id)
    ehr.accessRecord(anchored.as_tuple(), TREAT, {"from": hospital2})
    other = header(patient, hospital, fp=b"record-2")
    ehr.anchor(other.as_tuple(), CID, {"from": hospital})
    with reverts("EHRAccessDenied", other.record_id, hospital2, TREAT):
        ehr.accessRecord(other.as_tuple(), TREAT, {"from": hospital2})


def test_patient_and_custodian_read_their_own(ehr, anchored, patient, hospital):
    for reader in (patient, hospital):
        tx = ehr.accessRecord(anchored.as_tuple(), TREAT, {"from": reader})
        assert tx.events["RecordAccessed"]["accessor"] == reader


def test_reader_without_consent_is_refused(ehr, anchored, hospital2, outsider):
    for reader in (hospital2, outsider):
        with reverts("EHRAccessDenied", anchored.record_id, reader, TREAT):
            ehr.accessRecord(anchored.as_tuple(), TREAT, {"from": reader})


def test_wrong_purpose_is_refused(ehr, consent, anchored, patient, hospital2):
    grant(consent, patient, hospital2, purposes=1 << TREAT)
    with reverts("EHRAccessDenied", anchored.record_id, hospital2, HPAYMT):
        ehr.accessRecord(anchored.as_tuple(), HPAYMT, {"from": hospital2})


def test_break_glass_read_is_flagged(ehr, consent, anchored, patient, hospital2):
    sid = consent.openBreakGlass(patient, hashlib.sha256(b"why").digest(), {"from": hospital2}).events[
        "BreakGlassOpened"
    ]["sessionId"]
    tx = ehr.accessRecord(anchored.as_tuple(), ETREAT, {"from": hospital2})
    event = tx.events["RecordAccessed"]
    assert event["breakGlass"] is True
    assert int(event["authorization"].hex(), 16) == sid


def test_access_with_forged_header_reverts(ehr, anchored, patient, hospital):
    forged = header(patient, hospital, fp=b"not anchored")
    with reverts("EHRUnknownRecord", forged.record_id):
        ehr.accessRecord(forged.as_tuple(), TREAT, {"from": patient})


# ─── Batches ───────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def lab_batch(ehr, consent, laboratory, patient, accounts):
    patients = [patient, accounts[15], accounts[16]]
    for p in patients:
        grant(consent, p, laboratory, actions=READ | APPEND)
    headers = [header(p, laboratory, fp=f"lab result {i}".encode()) for i, p in enumerate(patients)]
    tree = MerkleTree([h.record_id for h in headers])
    tx = ehr.anchorBatch(tree.root, len(headers), CID, {"from": laboratory})
    return tx.events["BatchAnchored"]["batchId"], headers, tree


def test_batch_anchor_and_membership(ehr, lab_batch, laboratory):
    batch_id, headers, tree = lab_batch
    b = ehr.batch(batch_id)
    assert (b["custodian"], b["count"], b["root"]) == (laboratory, 3, "0x" + tree.root.hex())
    for h in headers:
        assert ehr.inBatch(h.as_tuple(), batch_id, tree.proof(h.record_id))


def test_batched_record_is_accessed_like_any_other(ehr, consent, lab_batch, patient, hospital2):
    batch_id, headers, tree = lab_batch
    grant(consent, patient, hospital2)
    h = headers[0]
    tx = ehr.accessBatchedRecord(h.as_tuple(), batch_id, tree.proof(h.record_id), TREAT, {"from": hospital2})
    assert tx.events["RecordAccessed"]["recordId"] == "0x" + h.record_id.hex()


def test_forged_merkle_proof_reverts(ehr, lab_batch, patient, laboratory):
    batch_id, headers, tree = lab_batch
    forged = header(patient, laboratory, fp=b"never in the batch")
    with reverts("EHRInvalidProof", forged.record_id, batch_id):
        ehr.accessBatchedRecord(
            forged.as_tuple(), batch_id, tree.proof(headers[0].record_id), TREAT, {"from": patient}
        )
    assert not ehr.inBatch(forged.as_tuple(), batch_id, tree.proof(headers[0].record_id))


def test_proof_for_another_batch_reverts(ehr, lab_batch, laboratory, patient):
    _batch_id, headers, tree = lab_batch
    other = MerkleTree([b"\5" * 32, b"\6" * 32])
    second = ehr.anchorBatch(other.root, 2, CID, {"from": laboratory}).events["BatchAnchored"]["batchId"]
    h = headers[0]
    with reverts("EHRInvalidProof", h.record_id, second):
        ehr.accessBatchedRecord(h.as_tuple(), second, tree.proof(h.record_id), TREAT, {"from": patient})


def test_batched_record_needs_treatment_relationship_at_access(ehr, consent, laboratory, patient, hospital2):
    h = header(patient, laboratory, fp=b"no consent")
    tree = MerkleTree([h.record_id])
    batch_id = ehr.anchorBatch(tree.root, 1, CID, {"from": laboratory}).events["BatchAnchored"]["batchId"]
    with reverts("EHRNoTreatmentRelationship", patient, laboratory, OBS):
        ehr.accessBatchedRecord(h.as_tuple(), batch_id, tree.proof(h.record_id), TREAT, {"from": patient})


def test_batch_rejects_bad_input(ehr, laboratory, pharmacy):
    with reverts("EHRNotCustodian", pharmacy):
        ehr.anchorBatch(b"\1" * 32, 1, CID, {"from": pharmacy})
    with reverts("EHRInvalidDigest"):
        ehr.anchorBatch(ZERO32, 1, CID, {"from": laboratory})
    with reverts("EHREmptyBatch"):
        ehr.anchorBatch(b"\1" * 32, 0, CID, {"from": laboratory})
    with reverts("EHRInvalidCid"):
        ehr.anchorBatch(b"\1" * 32, 1, b"\x01", {"from": laboratory})


@pytest.mark.parametrize("batch_id", [0, 5])
def test_unknown_batch_reverts(ehr, patient, laboratory, batch_id):
    h = header(patient, laboratory)
    with reverts("EHRUnknownBatch", batch_id):
        ehr.accessBatchedRecord(h.as_tuple(), batch_id, [], TREAT, {"from": patient})
    with reverts("EHRUnknownBatch", batch_id):
        ehr.batch(batch_id)


def test_constructor_rejects_zero_dependencies(regulator, consent, registry):
    with reverts("EHRZeroAddress"):
        EHRIndex.deploy(ZERO, consent, {"from": regulator})
    with reverts("EHRZeroAddress"):
        EHRIndex.deploy(registry, ZERO, {"from": regulator})


def test_time_is_recorded(ehr, anchored):
    assert abs(ehr.record(anchored.record_id)["anchoredAt"] - chain[-1].timestamp) <= 1


def test_batched_record_refused_to_reader_without_consent(ehr, lab_batch, outsider):
    batch_id, headers, tree = lab_batch
    h = headers[0]
    with reverts("EHRAccessDenied", h.record_id, outsider, TREAT):
        ehr.accessBatchedRecord(h.as_tuple(), batch_id, tree.proof(h.record_id), TREAT, {"from": outsider})


# ─── Purposes and batched retraction (found by the off-chain attack review) ─────────────────


@pytest.mark.parametrize("who", ["patient", "hospital", "hospital2"])
def test_unknown_purpose_is_refused_for_every_caller(
    ehr, consent, anchored, patient, hospital, hospital2, who
):
    """The patient's and custodian's own reads skip the consent check; an unknown purpose must not
    reach the audit trail through them (it would break every reader of the trail)."""
    grant(consent, patient, hospital2)
    caller = {"patient": patient, "hospital": hospital, "hospital2": hospital2}[who]
    with reverts("EHRUnknownPurpose", 200):
        ehr.accessRecord(anchored.as_tuple(), 200, {"from": caller})
    with reverts("EHRUnknownPurpose", 4):
        ehr.accessRecord(anchored.as_tuple(), 4, {"from": caller})


def test_unknown_purpose_is_refused_for_batched_reads(ehr, lab_batch, patient):
    batch_id, headers, tree = lab_batch
    h = headers[0]
    with reverts("EHRUnknownPurpose", 9):
        ehr.accessBatchedRecord(h.as_tuple(), batch_id, tree.proof(h.record_id), 9, {"from": patient})


def test_batched_record_can_be_marked_entered_in_error(
    ehr, consent, lab_batch, patient, hospital2, laboratory
):
    batch_id, headers, tree = lab_batch
    h = headers[0]
    tx = ehr.markBatchedEnteredInError(
        h.as_tuple(), batch_id, tree.proof(h.record_id), 2, {"from": laboratory}
    )
    event = tx.events["RecordEnteredInError"]
    assert (event["recordId"], event["custodian"], event["reason"]) == (
        "0x" + h.record_id.hex(),
        laboratory,
        2,
    )
    assert ehr.record(h.record_id)["status"] == 3
    assert not ehr.isValidRecord(h.as_tuple())
    grant(consent, patient, hospital2)
    with reverts("EHRRecordEnteredInError", h.record_id):
        ehr.accessBatchedRecord(h.as_tuple(), batch_id, tree.proof(h.record_id), TREAT, {"from": hospital2})
    # The other records of the batch are untouched.
    other = headers[1]
    ehr.accessBatchedRecord(
        other.as_tuple(), batch_id, tree.proof(other.record_id), TREAT, {"from": laboratory}
    )


def test_batched_retraction_reverts(ehr, lab_batch, laboratory, hospital, outsider, patient):
    batch_id, headers, tree = lab_batch
    h = headers[0]
    proof = tree.proof(h.record_id)
    for caller in (hospital, outsider, patient):
        with reverts("EHRCustodianMismatch", laboratory, caller):
            ehr.markBatchedEnteredInError(h.as_tuple(), batch_id, proof, 2, {"from": caller})
    with reverts("EHRInvalidProof"):
        ehr.markBatchedEnteredInError(
            h.as_tuple(), batch_id, tree.proof(headers[1].record_id), 2, {"from": laboratory}
        )
    forged = header(patient, laboratory, fp=b"never in the batch")
    with reverts("EHRInvalidProof", forged.record_id, batch_id):
        ehr.markBatchedEnteredInError(forged.as_tuple(), batch_id, proof, 2, {"from": laboratory})
    with reverts("EHRInvalidReason"):
        ehr.markBatchedEnteredInError(h.as_tuple(), batch_id, proof, 0, {"from": laboratory})
    with reverts("EHRUnknownBatch", 99):
        ehr.markBatchedEnteredInError(h.as_tuple(), 99, proof, 2, {"from": laboratory})
    ehr.markBatchedEnteredInError(h.as_tuple(), batch_id, proof, 2, {"from": laboratory})
    with reverts("EHRRecordNotCurrent", h.record_id, 3):
        ehr.markBatchedEnteredInError(h.as_tuple(), batch_id, proof, 3, {"from": laboratory})


def test_suspended_laboratory_cannot_retract_batched_records(
    ehr, registry, lab_batch, laboratory, regulator, accounts
):
    batch_id, headers, tree = lab_batch
    pid = registry.proposeChange(laboratory, GovernanceAction.SUSPEND, 0, {"from": regulator}).events[
        "ProposalOpened"
    ]["proposalId"]
    for voter in accounts[1:8]:
        if voter != laboratory and registry.proposal(pid)["status"] == 1:
            registry.vote(pid, True, {"from": voter})
    assert registry.proposal(pid)["status"] == 2
    h = headers[0]
    with reverts("EHRNotCustodian", laboratory):
        ehr.markBatchedEnteredInError(
            h.as_tuple(), batch_id, tree.proof(h.record_id), 2, {"from": laboratory}
        )


def test_batched_retraction_cannot_forge_a_single_record_state(
    ehr, anchored, hospital, laboratory, lab_batch
):
    """A custodian cannot use the batch path on a record anchored singly (it is in no batch)."""
    batch_id, _headers, tree = lab_batch
    with reverts("EHRCustodianMismatch", hospital, laboratory):
        ehr.markBatchedEnteredInError(
            anchored.as_tuple(), batch_id, tree.proof(tree_first(tree)), 2, {"from": laboratory}
        )
    with reverts("EHRInvalidProof"):
        ehr.markBatchedEnteredInError(anchored.as_tuple(), batch_id, [], 2, {"from": hospital})


def tree_first(tree):
    return next(iter(tree.index))

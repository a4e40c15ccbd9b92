"""Outside review of the governance, consent and EHR rules: attacks across contracts and paths.

Each test is named for the rule it pins. Two of them failed before their fix (one patient's
disputes locking an institution out for every patient; a guardian's signature from an earlier term
working after re-appointment); the others document attempts that the rules already stop.
"""

from __future__ import annotations

import hashlib

import pytest
from brownie import InstitutionRegistry, chain
from eth_account import Account

from medchain.consent import GrantTerms
from medchain.ehr import RecordHeader
from medchain.merkle import MerkleTree
from medchain.store import cid_bytes, cid_of
from medchain.types import (
    NO_END,
    Actions,
    GovernanceAction,
    GrantStatus,
    Kind,
    ProposalStatus,
    Purpose,
    ScopeKind,
    category_code,
)
from tests.fixtures.deployments import licence
from tests.helpers import reverts

ZERO32 = b"\0" * 32
DAY = 24 * 3600
WINDOW = 30 * DAY
READ, APPEND = int(Actions.READ), int(Actions.APPEND)
TREAT, ETREAT = int(Purpose.TREAT), int(Purpose.ETREAT)
OBS = category_code("Observation")
CID = cid_bytes(cid_of(b"ciphertext-1"))
JUSTIFICATION = hashlib.sha256(b"unconscious patient in ER, no consent on file").digest()


def all_terms(patient, grantee, actions=READ, purposes=1 << TREAT, na=NO_END):
    return (str(patient), str(grantee), int(ScopeKind.ALL), ZERO32, actions, purposes, 0, na)


def emergency_read(consent, patient, institution) -> bool:
    return consent.checkAccess(patient, institution, ZERO32, ZERO32, READ, ETREAT)[0]


def open_session(consent, institution, patient) -> int:
    tx = consent.openBreakGlass(patient, JUSTIFICATION, {"from": institution})
    return tx.events["BreakGlassOpened"]["sessionId"]


# ─── Registry: the weight snapshot's key at the edges ──────────────────────────────────────


@pytest.fixture
def duo(deploy, accounts):
    """Founder 90 and one hospital rated 1: the founder alone passes a proposal at its opening."""
    from medchain.deploy import FoundingMember

    member = FoundingMember(accounts[11].address, Kind.HOSPITAL, 1, licence("11"))
    suite = deploy([member], founder_rating=90)
    return InstitutionRegistry.at(suite.registry.address)


def test_change_executed_at_its_own_opening_counts_only_for_later_proposals(
    duo, regulator, accounts, applicant
):
    """A change that passes inside the transaction opening it is checkpointed under its own id:
    that proposal measured its quorum before it, every later one after it (no off-by-one)."""
    small = accounts[11]
    tx = duo.proposeChange(small, GovernanceAction.CHANGE_RATING, 100, {"from": regulator})
    raised = tx.events["ProposalOpened"]["proposalId"]
    assert duo.proposal(raised)["status"] == ProposalStatus.EXECUTED
    assert duo.proposal(raised)["totalWeight"] == 91
    assert duo.votingWeight(raised, small) == 1
    later = duo.proposeAdmission(applicant, Kind.HOSPITAL, 10, licence("a"), {"from": regulator}).events[
        "ProposalOpened"
    ]["proposalId"]
    assert duo.proposal(later)["totalWeight"] == 190  # the founder's 90 alone no longer passes
    assert duo.proposal(later)["status"] == ProposalStatus.OPEN
    assert duo.votingWeight(later, small) == 100
    assert duo.vote(later, True, {"from": small}).events["VoteCast"]["weight"] == 100
    assert duo.proposal(later)["status"] == ProposalStatus.EXECUTED


def test_rejected_squatting_proposal_frees_its_slot(
    registry, regulator, hospital, hospital2, insurer, distributor
):
    """A member holding the (subject, ChangeRating) slot with a rating nobody wants is voted down,
    and the slot is free for the rating the consortium does want."""
    squat = registry.proposeChange(
        distributor, GovernanceAction.CHANGE_RATING, 1, {"from": hospital2}
    ).events["ProposalOpened"]["proposalId"]
    for voter in (regulator, hospital, insurer):
        if registry.proposal(squat)["status"] == ProposalStatus.OPEN:
            registry.vote(squat, False, {"from": voter})
    assert registry.proposal(squat)["status"] == ProposalStatus.REJECTED
    assert registry.openProposalOf(distributor, GovernanceAction.CHANGE_RATING) == 0
    registry.proposeChange(distributor, GovernanceAction.CHANGE_RATING, 55, {"from": regulator})


# ─── Break-glass: one patient's disputes cannot stop the institution for everyone ──────────


@pytest.fixture
def others(accounts):
    return [accounts[17], accounts[18], accounts[19]]


def test_one_patients_disputes_count_once_against_the_institution_limit(consent, hospital2, patient, others):
    """A long emergency is renewed in several sessions; the patient (or a guardian, or a regulator)
    disputing every one of them bars that patient, but is one dispute against the institution."""
    running = open_session(consent, hospital2, others[0])  # another patient's emergency
    sessions = [open_session(consent, hospital2, patient) for _ in range(3)]
    for sid in sessions:
        consent.reviewBreakGlass(sid, False, {"from": patient})
    assert consent.disputedSessions(hospital2) == 3  # every dispute is on record...
    assert emergency_read(consent, others[0], hospital2)  # ...the other emergency goes on
    assert consent.session(running)["review"] == 1
    assert consent.breakGlassBlockedUntil(hospital2, others[1]) == 0
    open_session(consent, hospital2, others[1])
    assert consent.breakGlassBlockedUntil(hospital2, patient) > 0  # the patient's own bar holds


def test_guardian_disputing_one_patients_renewals_cannot_lock_out_the_hospital(
    consent, hospital2, patient, others, accounts
):
    guardian = accounts[16]
    consent.addGuardian(guardian, {"from": patient})
    sessions = [open_session(consent, hospital2, patient) for _ in range(4)]
    for sid in sessions:
        consent.reviewBreakGlass(sid, False, {"from": guardian})
    open_session(consent, hospital2, others[0])
    assert emergency_read(consent, others[0], hospital2)


def test_disputes_of_three_patients_still_stop_the_institution(
    consent, hospital2, patient, others, regulator
):
    """The limit still bites across patients, even after one patient's extra disputes."""
    first = open_session(consent, hospital2, others[0])
    extra = open_session(consent, hospital2, others[0])
    times = [consent.reviewBreakGlass(first, False, {"from": regulator}).timestamp]
    consent.reviewBreakGlass(extra, False, {"from": regulator})
    for p in others[1:]:
        sid = open_session(consent, hospital2, p)
        times.append(consent.reviewBreakGlass(sid, False, {"from": regulator}).timestamp)
    with reverts("ConsentBreakGlassLimitReached", hospital2, 3, times[0] + WINDOW):
        consent.openBreakGlass(patient, JUSTIFICATION, {"from": hospital2})


def test_same_patients_dispute_counts_again_once_its_window_passed(consent, hospital2, patient, others):
    """Old sessions of one patient kept for later cannot be spent in a burst: after a month, a
    dispute of the same pair counts again, but never two of them within one window."""
    sessions = [open_session(consent, hospital2, patient) for _ in range(3)]
    consent.reviewBreakGlass(sessions[0], False, {"from": patient})
    chain.sleep(WINDOW + 1)
    chain.mine()
    consent.reviewBreakGlass(sessions[1], False, {"from": patient})  # counts: a month after the first
    consent.reviewBreakGlass(sessions[2], False, {"from": patient})  # the same window: does not
    for p in others[:2]:
        consent.reviewBreakGlass(open_session(consent, hospital2, p), False, {"from": p})
    # Counted within the window: the patient's second dispute and the two others' = 3.
    with reverts("ConsentBreakGlassLimitReached"):
        consent.openBreakGlass(others[2], JUSTIFICATION, {"from": hospital2})


def test_dispute_of_one_patients_session_leaves_another_patients_session_running(
    consent, hospital2, patient, others
):
    """Session ids are per pair: a dispute ends the disputed pair's sessions, never another's."""
    kept = open_session(consent, hospital2, others[0])
    disputed = open_session(consent, hospital2, patient)
    tx = consent.reviewBreakGlass(disputed, False, {"from": patient})
    assert [e["sessionId"] for e in tx.events["BreakGlassEnded"]] == [disputed]
    assert emergency_read(consent, others[0], hospital2)
    assert consent.session(kept)["expiresAt"] > tx.timestamp


# ─── Guardian terms and signatures ─────────────────────────────────────────────────────────


def submit(consent, t, signed, sender):
    return consent.grantBySig(
        t.as_tuple(), signed.signer, signed.nonce, signed.deadline, signed.signature, {"from": sender}
    )


def test_guardian_signature_from_an_earlier_term_does_not_work_after_reappointment(
    suite, consent, patient, hospital2, outsider
):
    """A signed grant handed out before the guardian's removal must not come to life when the
    patient appoints the same guardian again: re-appointment starts a new term, signatures too."""
    guardian = Account.create()
    consent.addGuardian(guardian.address, {"from": patient})
    t = GrantTerms.for_all(patient.address, hospital2.address, READ, Purpose.TREAT)
    signed = suite.consent.sign_grant(guardian, t, deadline=chain[-1].timestamp + 365 * DAY)
    consent.removeGuardian(guardian.address, {"from": patient})
    consent.addGuardian(guardian.address, {"from": patient})
    with reverts("ConsentInvalidNonce", patient, signed.nonce + 1, signed.nonce):
        submit(consent, t, signed, outsider)
    assert not consent.checkAccess(patient, hospital2, ZERO32, ZERO32, READ, TREAT)[0]
    # A request signed in the new term works.
    fresh = suite.consent.sign_grant(guardian, t)
    submit(consent, t, fresh, outsider)
    assert consent.checkAccess(patient, hospital2, ZERO32, ZERO32, READ, TREAT)[0]


def test_first_appointment_keeps_outstanding_signatures(suite, consent, patient, hospital2, accounts):
    """Only a re-appointment voids outstanding signed requests; a first appointment does not."""
    signer = Account.create()
    consent.addGuardian(signer.address, {"from": patient})
    t = GrantTerms.for_all(patient.address, hospital2.address, READ, Purpose.TREAT)
    signed = suite.consent.sign_grant(signer, t)
    consent.addGuardian(accounts[16], {"from": patient})
    submit(consent, t, signed, patient)
    assert consent.checkAccess(patient, hospital2, ZERO32, ZERO32, READ, TREAT)[0]


def test_guardian_regrant_of_a_patients_grant_lapses_with_the_guardian(consent, patient, hospital2, accounts):
    """One grant per (patient, grantee, scope): a guardian re-granting the patient's own grant makes
    it the guardian's, and it ends with the guardianship (the patient re-grants to keep it)."""
    guardian = accounts[16]
    gid = consent.grant(all_terms(patient, hospital2), {"from": patient}).events["ConsentGranted"]["grantId"]
    consent.addGuardian(guardian, {"from": patient})
    consent.grant(all_terms(patient, hospital2), {"from": guardian})
    assert consent.guardianOfGrant(gid) == (guardian, True)
    consent.removeGuardian(guardian, {"from": patient})
    assert consent.grantOf(gid)[1] == GrantStatus.LAPSED
    assert not consent.checkAccess(patient, hospital2, ZERO32, ZERO32, READ, TREAT)[0]


def test_grant_ending_after_2106_is_stored_as_ending_in_2106(consent, patient, hospital2):
    """notAfter beyond 32 bits (but not NO_END) is clamped to the last 32-bit second, never wrapped."""
    gid = consent.grant(all_terms(patient, hospital2, na=2**32 + 5), {"from": patient}).events[
        "ConsentGranted"
    ]["grantId"]
    record, status = consent.grantOf(gid)
    assert (record["notAfter"], status) == (2**32 - 1, GrantStatus.ACTIVE)


# ─── EHR: one record id, two paths ─────────────────────────────────────────────────────────


def header(patient, custodian, fp=b"record-1"):
    return RecordHeader(str(patient), str(custodian), hashlib.sha256(fp).digest(), OBS, ZERO32)


@pytest.fixture
def lab_treating(consent, patient, laboratory):
    consent.grant(all_terms(patient, laboratory, actions=READ | APPEND), {"from": patient})


def batch_of(ehr, laboratory, headers):
    tree = MerkleTree([h.record_id for h in headers])
    batch_id = ehr.anchorBatch(tree.root, len(headers), CID, {"from": laboratory}).events["BatchAnchored"][
        "batchId"
    ]
    return batch_id, tree


def test_batched_retraction_is_final_on_the_single_path_too(ehr, lab_treating, patient, laboratory):
    h = header(patient, laboratory)
    batch_id, tree = batch_of(ehr, laboratory, [h, header(patient, laboratory, b"other")])
    ehr.markBatchedEnteredInError(h.as_tuple(), batch_id, tree.proof(h.record_id), 2, {"from": laboratory})
    with reverts("EHRRecordExists", h.record_id):
        ehr.anchor(h.as_tuple(), CID, {"from": laboratory})
    with reverts("EHRRecordEnteredInError", h.record_id):
        ehr.accessRecord(h.as_tuple(), TREAT, {"from": patient})


def test_single_retraction_stops_the_same_record_in_a_batch(ehr, lab_treating, patient, laboratory):
    h = header(patient, laboratory)
    ehr.anchor(h.as_tuple(), CID, {"from": laboratory})
    batch_id, tree = batch_of(ehr, laboratory, [h, header(patient, laboratory, b"other")])
    proof = tree.proof(h.record_id)
    with reverts("EHRRecordNotCurrent", h.record_id, 1):  # the single path owns its state
        ehr.markBatchedEnteredInError(h.as_tuple(), batch_id, proof, 2, {"from": laboratory})
    ehr.markEnteredInError(h.record_id, 2, {"from": laboratory})
    with reverts("EHRRecordEnteredInError", h.record_id):
        ehr.accessBatchedRecord(h.as_tuple(), batch_id, proof, TREAT, {"from": patient})


def test_batched_record_cannot_be_amended(ehr, lab_treating, patient, laboratory):
    h = header(patient, laboratory)
    batch_id, _tree = batch_of(ehr, laboratory, [h])
    assert batch_id
    nxt = RecordHeader(str(patient), str(laboratory), hashlib.sha256(b"v2").digest(), OBS, h.record_id)
    with reverts("EHRUnknownRecord", h.record_id):
        ehr.amend(h.as_tuple(), nxt.as_tuple(), CID, {"from": laboratory})


def test_superseded_record_cannot_be_marked_entered_in_error(ehr, lab_treating, patient, laboratory):
    h = header(patient, laboratory)
    ehr.anchor(h.as_tuple(), CID, {"from": laboratory})
    nxt = RecordHeader(str(patient), str(laboratory), hashlib.sha256(b"v2").digest(), OBS, h.record_id)
    ehr.amend(h.as_tuple(), nxt.as_tuple(), CID, {"from": laboratory})
    with reverts("EHRRecordNotCurrent", h.record_id, 2):
        ehr.markEnteredInError(h.record_id, 2, {"from": laboratory})

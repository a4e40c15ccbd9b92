"""ConsentManager: grants, signed grants, guardians, break-glass, checkAccess; every revert by name."""

from __future__ import annotations

import hashlib

import pytest
from brownie import ConsentManager, accounts, chain
from eth_abi import encode
from eth_account import Account
from eth_keys import keys
from eth_utils import keccak

from medchain.types import (
    NO_END,
    Actions,
    GovernanceAction,
    GrantStatus,
    Kind,
    Purpose,
    Review,
    ScopeKind,
    category_code,
)
from tests.helpers import reverts

ZERO = "0x0000000000000000000000000000000000000000"
ZERO32 = b"\0" * 32
RECORD = hashlib.sha256(b"record-1").digest()
OTHER_RECORD = hashlib.sha256(b"record-2").digest()
LAB = category_code("Observation")
IMAGING = category_code("ImagingStudy")
TREAT, HPAYMT, HRESCH, ETREAT = (int(p) for p in Purpose)
READ, APPEND, SHARE = int(Actions.READ), int(Actions.APPEND), int(Actions.SHARE)


def terms(patient, grantee, kind=ScopeKind.ALL, value=ZERO32, actions=READ, purposes=1, nb=0, na=NO_END):
    return (str(patient), str(grantee), int(kind), value, actions, purposes, nb, na)


def check(consent, patient, accessor, record=ZERO32, category=ZERO32, action=READ, purpose=TREAT):
    return consent.checkAccess(patient, accessor, record, category, action, purpose)


# ─── Direct grants ─────────────────────────────────────────────────────────────────────────


def test_patient_grants_all_scope(consent, patient, hospital):
    tx = consent.grant(terms(patient, hospital), {"from": patient})
    event = tx.events["ConsentGranted"]
    gid = event["grantId"]
    assert gid == consent.grantIdFor(patient, hospital, ScopeKind.ALL, ZERO32)
    assert (event["patient"], event["grantee"], event["actor"], event["viaSignature"]) == (
        patient,
        hospital,
        patient,
        False,
    )
    assert check(consent, patient, hospital) == (True, gid, False)
    record, status = consent.grantOf(gid)
    assert status == GrantStatus.ACTIVE
    assert record["patient"] == patient


def test_grant_for_one_record_does_not_permit_another(consent, patient, hospital):
    tx = consent.grant(terms(patient, hospital, ScopeKind.RECORD, RECORD), {"from": patient})
    assert check(consent, patient, hospital, record=RECORD)[0]
    assert not check(consent, patient, hospital, record=OTHER_RECORD)[0]
    assert check(consent, patient, hospital, record=RECORD)[1] == tx.events["ConsentGranted"]["grantId"]


def test_category_grant_permits_only_that_category(consent, patient, hospital):
    consent.grant(terms(patient, hospital, ScopeKind.CATEGORY, LAB), {"from": patient})
    assert check(consent, patient, hospital, record=RECORD, category=LAB)[0]
    assert not check(consent, patient, hospital, record=RECORD, category=IMAGING)[0]


def test_grant_limits_actions_and_purposes(consent, patient, hospital):
    consent.grant(terms(patient, hospital, actions=READ | APPEND, purposes=1 << TREAT), {"from": patient})
    assert check(consent, patient, hospital, action=APPEND)[0]
    assert not check(consent, patient, hospital, action=SHARE)[0]
    assert not check(consent, patient, hospital, purpose=HRESCH)[0]


def test_window_is_enforced(consent, patient, hospital):
    now = chain[-1].timestamp
    tx = consent.grant(terms(patient, hospital, nb=now + 100, na=now + 200), {"from": patient})
    gid = tx.events["ConsentGranted"]["grantId"]
    assert consent.grantOf(gid)[1] == GrantStatus.PENDING
    assert not check(consent, patient, hospital)[0]
    chain.sleep(150)
    chain.mine()
    assert check(consent, patient, hospital)[0]
    chain.sleep(100)
    chain.mine()
    assert consent.grantOf(gid)[1] == GrantStatus.EXPIRED
    assert not check(consent, patient, hospital)[0]


def test_regrant_replaces_terms(consent, patient, hospital):
    consent.grant(terms(patient, hospital, purposes=1 << TREAT), {"from": patient})
    consent.grant(terms(patient, hospital, purposes=1 << HRESCH), {"from": patient})
    assert not check(consent, patient, hospital, purpose=TREAT)[0]
    assert check(consent, patient, hospital, purpose=HRESCH)[0]


def test_patient_and_self_always_pass(consent, patient):
    assert check(consent, patient, patient) == (True, ZERO32.hex() and "0x" + ZERO32.hex(), False)


def test_grant_by_outsider_reverts(consent, patient, hospital, outsider):
    with reverts("ConsentNotPatientOrGuardian", outsider, patient):
        consent.grant(terms(patient, hospital), {"from": outsider})


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("zero grantee", "ConsentZeroAddress"),
        ("self grant", "ConsentSelfGrant"),
        ("record scope without id", "ConsentInvalidScope"),
        ("category scope without code", "ConsentInvalidScope"),
        ("all scope with value", "ConsentInvalidScope"),
        ("scope none", "ConsentInvalidScope"),
        ("no actions", "ConsentInvalidActions"),
        ("unknown action bit", "ConsentInvalidActions"),
        ("no purpose", "ConsentUnknownPurpose"),
        ("unknown purpose bit", "ConsentUnknownPurpose"),
        ("window ends before start", "ConsentInvalidWindow"),
        ("window already over", "ConsentInvalidWindow"),
    ],
)
def test_bad_grant_input_is_rejected(consent, patient, hospital, case, error):
    now = chain[-1].timestamp
    t = {
        "zero grantee": terms(patient, ZERO),
        "self grant": terms(patient, patient),
        "record scope without id": terms(patient, hospital, ScopeKind.RECORD, ZERO32),
        "category scope without code": terms(patient, hospital, ScopeKind.CATEGORY, ZERO32),
        "all scope with value": terms(patient, hospital, ScopeKind.ALL, RECORD),
        "scope none": terms(patient, hospital, ScopeKind.NONE, RECORD),
        "no actions": terms(patient, hospital, actions=0),
        "unknown action bit": terms(patient, hospital, actions=8),
        "no purpose": terms(patient, hospital, purposes=0),
        "unknown purpose bit": terms(patient, hospital, purposes=16),
        "window ends before start": terms(patient, hospital, nb=now + 200, na=now + 100),
        "window already over": terms(patient, hospital, nb=0, na=now - 10),
    }[case]
    with reverts(error):
        consent.grant(t, {"from": patient})
    gid = consent.grantIdFor(patient, t[1], t[2], t[3])
    assert consent.grantOf(gid)[1] == GrantStatus.NONE  # nothing half-written


# ─── Revocation ────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def granted(consent, patient, hospital):
    return consent.grant(terms(patient, hospital), {"from": patient}).events["ConsentGranted"]["grantId"]


def test_revoked_grant_blocks_access(consent, patient, hospital, granted):
    tx = consent.revoke(granted, {"from": patient})
    assert tx.events["ConsentRevoked"]["actor"] == patient
    assert consent.grantOf(granted)[1] == GrantStatus.REVOKED
    assert not check(consent, patient, hospital)[0]


def test_revoke_twice_reverts(consent, patient, granted):
    consent.revoke(granted, {"from": patient})
    with reverts("ConsentAlreadyRevoked", granted):
        consent.revoke(granted, {"from": patient})


def test_revoke_unknown_grant_reverts(consent, patient):
    with reverts("ConsentUnknownGrant", "0x" + RECORD.hex()):
        consent.revoke(RECORD, {"from": patient})


def test_revoke_by_grantee_reverts(consent, patient, hospital, granted):
    with reverts("ConsentNotPatientOrGuardian", hospital, patient):
        consent.revoke(granted, {"from": hospital})


def test_regrant_after_revoke_restores(consent, patient, hospital, granted):
    consent.revoke(granted, {"from": patient})
    consent.grant(terms(patient, hospital), {"from": patient})
    assert check(consent, patient, hospital)[0]


# ─── Institutions in the registry ──────────────────────────────────────────────────────────


def test_suspended_institution_grant_stops_and_resumes(
    consent, registry, regulator, patient, hospital, accounts
):
    consent.grant(terms(patient, hospital), {"from": patient})
    pid = registry.proposeChange(hospital, GovernanceAction.SUSPEND, 0, {"from": regulator}).events[
        "ProposalOpened"
    ]["proposalId"]
    for voter in (accounts[2], accounts[7], accounts[3], accounts[5]):
        if registry.proposal(pid)["status"] == 1:
            registry.vote(pid, True, {"from": voter})
    assert not registry.isActive(hospital, Kind.HOSPITAL)
    assert not check(consent, patient, hospital)[0]
    pid = registry.proposeChange(hospital, GovernanceAction.REINSTATE, 0, {"from": regulator}).events[
        "ProposalOpened"
    ]["proposalId"]
    for voter in (accounts[2], accounts[7], accounts[3], accounts[5]):
        if registry.proposal(pid)["status"] == 1:
            registry.vote(pid, True, {"from": voter})
    assert check(consent, patient, hospital)[0]


def test_person_grantee_needs_no_membership(consent, patient, accounts):
    relative = accounts[15]
    consent.grant(terms(patient, relative), {"from": patient})
    assert check(consent, patient, relative)[0]


@pytest.mark.parametrize(
    ("action", "purpose", "error"),
    [
        (0, TREAT, "ConsentInvalidActions"),
        (3, TREAT, "ConsentInvalidActions"),
        (8, TREAT, "ConsentInvalidActions"),
        (READ, 4, "ConsentUnknownPurpose"),
    ],
)
def test_check_access_rejects_bad_query(consent, patient, hospital, action, purpose, error):
    with reverts(error):
        check(consent, patient, hospital, action=action, purpose=purpose)


# ─── Guardians ─────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def guardian(accounts):
    return accounts[16]


def test_guardian_grants_and_revokes_for_patient(consent, patient, guardian, hospital2):
    tx = consent.addGuardian(guardian, {"from": patient})
    assert tx.events["GuardianAdded"]["guardian"] == guardian
    tx = consent.grant(terms(patient, hospital2), {"from": guardian})
    assert tx.events["ConsentGranted"]["actor"] == guardian
    gid = tx.events["ConsentGranted"]["grantId"]
    assert check(consent, patient, hospital2)[0]
    tx = consent.revoke(gid, {"from": guardian})
    assert tx.events["ConsentRevoked"]["actor"] == guardian


def test_removed_guardian_cannot_act(consent, patient, guardian, hospital2):
    consent.addGuardian(guardian, {"from": patient})
    tx = consent.removeGuardian(guardian, {"from": patient})
    assert tx.events["GuardianRemoved"]["guardian"] == guardian
    assert not consent.isGuardian(patient, guardian)
    with reverts("ConsentNotPatientOrGuardian", guardian, patient):
        consent.grant(terms(patient, hospital2), {"from": guardian})


def test_add_guardian_rejects_bad_input(consent, patient, guardian):
    with reverts("ConsentZeroAddress"):
        consent.addGuardian(ZERO, {"from": patient})
    with reverts("ConsentSelfGrant", patient):
        consent.addGuardian(patient, {"from": patient})
    consent.addGuardian(guardian, {"from": patient})
    with reverts("ConsentAlreadyGuardian", patient, guardian):
        consent.addGuardian(guardian, {"from": patient})


def test_remove_unknown_guardian_reverts(consent, patient, outsider):
    with reverts("ConsentNotGuardian", patient, outsider):
        consent.removeGuardian(outsider, {"from": patient})


def test_outsider_cannot_remove_someone_elses_guardian(consent, patient, guardian, outsider):
    consent.addGuardian(guardian, {"from": patient})
    with reverts("ConsentNotGuardian", outsider, guardian):
        consent.removeGuardian(guardian, {"from": outsider})
    assert consent.isGuardian(patient, guardian)


# ─── Break-glass ───────────────────────────────────────────────────────────────────────────

JUSTIFICATION = hashlib.sha256(b"unconscious patient in ER, no consent on file").digest()


def open_session(consent, institution, patient) -> int:
    return consent.openBreakGlass(patient, JUSTIFICATION, {"from": institution}).events["BreakGlassOpened"][
        "sessionId"
    ]


@pytest.fixture
def session_id(consent, hospital2, patient):
    return open_session(consent, hospital2, patient)


def test_break_glass_permits_emergency_read_only(consent, hospital2, patient, session_id):
    assert check(consent, patient, hospital2, purpose=ETREAT) == (
        True,
        "0x" + session_id.to_bytes(32, "big").hex(),
        True,
    )
    assert not check(consent, patient, hospital2, purpose=TREAT)[0]
    assert not check(consent, patient, hospital2, action=APPEND, purpose=ETREAT)[0]
    s = consent.session(session_id)
    assert s["review"] == Review.PENDING
    assert s["expiresAt"] - s["openedAt"] == 24 * 3600


def test_break_glass_expires(consent, hospital2, patient, session_id):
    chain.sleep(24 * 3600 + 1)
    chain.mine()
    assert not check(consent, patient, hospital2, purpose=ETREAT)[0]
    assert consent.session(session_id)["review"] == Review.PENDING  # still flagged for review


def test_break_glass_by_non_hospital_reverts(consent, patient, pharmacy, outsider):
    for account in (pharmacy, outsider):
        with reverts("ConsentNotCareProvider", account):
            consent.openBreakGlass(patient, JUSTIFICATION, {"from": account})


def test_break_glass_rejects_bad_input(consent, hospital2):
    with reverts("ConsentZeroAddress"):
        consent.openBreakGlass(ZERO, JUSTIFICATION, {"from": hospital2})
    with reverts("ConsentSelfGrant", hospital2):
        consent.openBreakGlass(hospital2, JUSTIFICATION, {"from": hospital2})
    with reverts("ConsentMissingJustification"):
        consent.openBreakGlass(accounts[8], ZERO32, {"from": hospital2})


def test_patient_accepts_session(consent, patient, hospital2, session_id):
    tx = consent.reviewBreakGlass(session_id, True, {"from": patient})
    assert tx.events["BreakGlassReviewed"]["review"] == Review.ACCEPTED
    assert consent.disputedSessions(hospital2) == 0


def test_disputes_are_counted_per_institution(consent, patient, hospital2, regulator, session_id, accounts):
    # A second patient: the same patient may not be broken into again right after a dispute.
    consent.reviewBreakGlass(session_id, False, {"from": regulator})
    other = accounts[17]
    second = open_session(consent, hospital2, other)
    tx = consent.reviewBreakGlass(second, False, {"from": other})
    assert tx.events["BreakGlassReviewed"]["disputedTotal"] == 2
    assert consent.disputedSessions(hospital2) == 2


def test_guardian_reviews_session(consent, patient, session_id, accounts):
    consent.addGuardian(accounts[16], {"from": patient})
    consent.reviewBreakGlass(session_id, True, {"from": accounts[16]})
    assert consent.session(session_id)["review"] == Review.ACCEPTED


def test_review_by_outsider_or_institution_reverts(consent, session_id, outsider, hospital2):
    for account in (outsider, hospital2):
        with reverts("ConsentNotReviewer", account, session_id):
            consent.reviewBreakGlass(session_id, True, {"from": account})


def test_review_twice_reverts(consent, patient, session_id):
    consent.reviewBreakGlass(session_id, True, {"from": patient})
    with reverts("ConsentSessionAlreadyReviewed", session_id, Review.ACCEPTED):
        consent.reviewBreakGlass(session_id, False, {"from": patient})


@pytest.mark.parametrize("sid", [0, 99])
def test_review_unknown_session_reverts(consent, patient, sid):
    with reverts("ConsentUnknownSession", sid):
        consent.reviewBreakGlass(sid, True, {"from": patient})


def test_constructor_rejects_bad_settings(registry, regulator):
    with reverts("ConsentZeroAddress"):
        ConsentManager.deploy(ZERO, 3600, {"from": regulator})
    for duration in (0, 72 * 3600 + 1):
        with reverts("ConsentInvalidBreakGlassDuration", duration):
            ConsentManager.deploy(registry, duration, {"from": regulator})


# ─── Signed grants (EIP-712) ───────────────────────────────────────────────────────────────

GRANT_TYPE = (
    b"Grant(address patient,address grantee,uint8 scopeKind,bytes32 scopeValue,uint8 actions,uint8 purposes,"
    b"uint40 notBefore,uint40 notAfter,address signer,uint256 nonce,uint256 deadline)"
)
REVOKE_TYPE = b"Revoke(bytes32 grantId,address signer,uint256 nonce,uint256 deadline)"


def independent_digest(consent, struct_hash: bytes) -> bytes:
    """EIP-712 digest computed from the specification with eth_abi + keccak (not eth_account)."""
    domain_type = keccak(
        b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    separator = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [domain_type, keccak(b"MedChain ConsentManager"), keccak(b"1"), chain.id, consent.address],
        )
    )
    return keccak(b"\x19\x01" + separator + struct_hash)


def sign_grant_independently(consent, key: bytes, t, signer: str, nonce: int, deadline: int) -> bytes:
    struct_hash = keccak(
        encode(
            [
                "bytes32",
                "address",
                "address",
                "uint8",
                "bytes32",
                "uint8",
                "uint8",
                "uint40",
                "uint40",
                "address",
                "uint256",
                "uint256",
            ],
            [keccak(GRANT_TYPE), *t, signer, nonce, deadline],
        )
    )
    sig = keys.PrivateKey(key).sign_msg_hash(independent_digest(consent, struct_hash))
    return sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big") + bytes([sig.v + 27])


@pytest.fixture
def signer_patient():
    return Account.create()


def test_independent_eip712_signature_is_accepted(consent, signer_patient, hospital, outsider):
    p = signer_patient.address
    t = terms(p, hospital)
    deadline = chain[-1].timestamp + 600
    sig = sign_grant_independently(consent, signer_patient.key, t, p, 0, deadline)
    tx = consent.grantBySig(t, p, 0, deadline, sig, {"from": outsider})  # anyone submits and pays
    event = tx.events["ConsentGranted"]
    assert (event["actor"], event["viaSignature"]) == (p, True)
    assert consent.nonces(p) == 1
    assert check(consent, p, hospital)[0]


def test_domain_is_readable_per_erc5267(consent):
    domain = consent.eip712Domain()
    assert domain[1:5] == ("MedChain ConsentManager", "1", chain.id, consent.address)


def test_replayed_signature_reverts(consent, signer_patient, hospital, outsider):
    p = signer_patient.address
    t = terms(p, hospital)
    deadline = chain[-1].timestamp + 600
    sig = sign_grant_independently(consent, signer_patient.key, t, p, 0, deadline)
    consent.grantBySig(t, p, 0, deadline, sig, {"from": outsider})
    with reverts("ConsentInvalidNonce", p, 1, 0):
        consent.grantBySig(t, p, 0, deadline, sig, {"from": outsider})


def test_expired_signature_reverts(consent, signer_patient, hospital, outsider):
    p = signer_patient.address
    t = terms(p, hospital)
    deadline = chain[-1].timestamp - 1
    sig = sign_grant_independently(consent, signer_patient.key, t, p, 0, deadline)
    with reverts("ConsentSignatureExpired", deadline):
        consent.grantBySig(t, p, 0, deadline, sig, {"from": outsider})


def test_altered_terms_revert(consent, signer_patient, hospital, hospital2, outsider):
    p = signer_patient.address
    deadline = chain[-1].timestamp + 600
    sig = sign_grant_independently(consent, signer_patient.key, terms(p, hospital), p, 0, deadline)
    with reverts("ConsentInvalidSignature", p):
        consent.grantBySig(terms(p, hospital2), p, 0, deadline, sig, {"from": outsider})
    with reverts("ConsentInvalidSignature", p):
        consent.grantBySig(terms(p, hospital), p, 0, deadline, b"\x01" * 65, {"from": outsider})


def test_signature_of_unauthorised_signer_reverts(consent, signer_patient, hospital, outsider):
    p = signer_patient.address
    stranger = Account.create()
    t = terms(p, hospital)
    deadline = chain[-1].timestamp + 600
    sig = sign_grant_independently(consent, stranger.key, t, stranger.address, 0, deadline)
    with reverts("ConsentSignerNotAuthorized", stranger.address, p):
        consent.grantBySig(t, stranger.address, 0, deadline, sig, {"from": outsider})


def test_guardian_signature_grants_for_minor(consent, signer_patient, hospital2, outsider, regulator):
    minor = accounts.add(signer_patient.key.hex())
    regulator.transfer(minor, "1 ether")
    guardian = Account.create()
    consent.addGuardian(guardian.address, {"from": minor})
    t = terms(minor.address, hospital2)
    deadline = chain[-1].timestamp + 600
    sig = sign_grant_independently(consent, guardian.key, t, guardian.address, 0, deadline)
    tx = consent.grantBySig(t, guardian.address, 0, deadline, sig, {"from": outsider})
    assert tx.events["ConsentGranted"]["actor"] == guardian.address


def test_revoke_by_signature(consent, signer_patient, hospital, outsider):
    p = signer_patient.address
    t = terms(p, hospital)
    deadline = chain[-1].timestamp + 600
    sig = sign_grant_independently(consent, signer_patient.key, t, p, 0, deadline)
    gid = consent.grantBySig(t, p, 0, deadline, sig, {"from": outsider}).events["ConsentGranted"]["grantId"]
    struct_hash = keccak(
        encode(
            ["bytes32", "bytes32", "address", "uint256", "uint256"],
            [keccak(REVOKE_TYPE), bytes(gid), p, 1, deadline],
        )
    )
    s = keys.PrivateKey(signer_patient.key).sign_msg_hash(independent_digest(consent, struct_hash))
    rsig = s.r.to_bytes(32, "big") + s.s.to_bytes(32, "big") + bytes([s.v + 27])
    tx = consent.revokeBySig(gid, p, 1, deadline, rsig, {"from": outsider})
    assert tx.events["ConsentRevoked"]["actor"] == p
    assert not check(consent, p, hospital)[0]
    with reverts("ConsentUnknownGrant", "0x" + RECORD.hex()):
        consent.revokeBySig(RECORD, p, 2, deadline, rsig, {"from": outsider})


def test_revoke_by_signature_of_stranger_reverts(consent, signer_patient, hospital, outsider):
    p = signer_patient.address
    t = terms(p, hospital)
    deadline = chain[-1].timestamp + 600
    sig = sign_grant_independently(consent, signer_patient.key, t, p, 0, deadline)
    gid = consent.grantBySig(t, p, 0, deadline, sig, {"from": outsider}).events["ConsentGranted"]["grantId"]
    stranger = Account.create()
    struct_hash = keccak(
        encode(
            ["bytes32", "bytes32", "address", "uint256", "uint256"],
            [keccak(REVOKE_TYPE), bytes(gid), stranger.address, 1, deadline],
        )
    )
    s = keys.PrivateKey(stranger.key).sign_msg_hash(independent_digest(consent, struct_hash))
    rsig = s.r.to_bytes(32, "big") + s.s.to_bytes(32, "big") + bytes([s.v + 27])
    with reverts("ConsentSignerNotAuthorized", stranger.address, p):
        consent.revokeBySig(gid, stranger.address, 1, deadline, rsig, {"from": outsider})
    assert check(consent, p, hospital)[0]


# ─── Break-glass disputes ──────────────────────────────────────────────────────────────────

DAY = 24 * 3600
WINDOW = 30 * DAY


def emergency_read(consent, patient, institution) -> bool:
    return check(consent, patient, institution, purpose=ETREAT)[0]


@pytest.fixture
def patients(accounts):
    """Three more patients, so one institution can collect disputes from different pairs."""
    return [accounts[17], accounts[18], accounts[19]]


def dispute_sessions(consent, institution, patients, reviewer) -> list[int]:
    """Opens and disputes one session per patient; returns the dispute times."""
    times = []
    for p in patients:
        sid = open_session(consent, institution, p)
        times.append(consent.reviewBreakGlass(sid, False, {"from": reviewer}).timestamp)
    return times


def test_disputed_session_ends_at_once(consent, patient, hospital2, session_id):
    assert emergency_read(consent, patient, hospital2)
    tx = consent.reviewBreakGlass(session_id, False, {"from": patient})
    assert not emergency_read(consent, patient, hospital2)  # in the dispute's own block already
    assert consent.session(session_id)["expiresAt"] == tx.timestamp - 1
    ended = tx.events["BreakGlassEnded"]
    assert (ended["sessionId"], ended["disputedSessionId"], ended["expiresAt"]) == (
        session_id,
        session_id,
        tx.timestamp - 1,
    )


def test_accepted_session_keeps_running(consent, patient, hospital2, session_id):
    tx = consent.reviewBreakGlass(session_id, True, {"from": patient})
    assert "BreakGlassEnded" not in tx.events
    assert emergency_read(consent, patient, hospital2)


def test_session_opened_before_the_review_lands_ends_with_the_dispute(
    consent, patient, hospital2, regulator, session_id
):
    renewed = open_session(consent, hospital2, patient)  # the institution renews before the review
    assert emergency_read(consent, patient, hospital2)
    tx = consent.reviewBreakGlass(session_id, False, {"from": regulator})
    assert not emergency_read(consent, patient, hospital2)
    assert [(e["sessionId"], e["disputedSessionId"]) for e in tx.events["BreakGlassEnded"]] == [
        (session_id, session_id),
        (renewed, session_id),
    ]
    assert consent.session(renewed)["review"] == Review.PENDING  # still reviewed on its own


def test_older_session_of_same_patient_does_not_grant_once_newer_is_disputed(
    consent, patient, hospital2, session_id
):
    newer = open_session(consent, hospital2, patient)
    consent.reviewBreakGlass(newer, False, {"from": patient})
    assert consent.session(session_id)["expiresAt"] > chain[-1].timestamp  # its time box is not over...
    assert not emergency_read(consent, patient, hospital2)  # ...but the newer session replaced it


def test_dispute_of_expired_session_counts_without_ending_anything(consent, patient, hospital2, session_id):
    chain.sleep(DAY + 1)
    chain.mine()
    tx = consent.reviewBreakGlass(session_id, False, {"from": patient})
    assert "BreakGlassEnded" not in tx.events
    assert tx.events["BreakGlassReviewed"]["disputedTotal"] == 1


def test_no_new_session_for_disputed_patient_within_window(consent, patient, hospital2, session_id):
    until = consent.reviewBreakGlass(session_id, False, {"from": patient}).timestamp + WINDOW
    with reverts("ConsentBreakGlassDisputedForPatient", hospital2, patient, until):
        consent.openBreakGlass(patient, JUSTIFICATION, {"from": hospital2})
    assert consent.breakGlassBlockedUntil(hospital2, patient) == until
    chain.sleep(WINDOW - 60)
    chain.mine()
    with reverts("ConsentBreakGlassDisputedForPatient", hospital2, patient, until):
        consent.openBreakGlass(patient, JUSTIFICATION, {"from": hospital2})
    chain.sleep(60)
    chain.mine()
    assert consent.breakGlassBlockedUntil(hospital2, patient) == 0
    open_session(consent, hospital2, patient)
    assert emergency_read(consent, patient, hospital2)


def test_dispute_does_not_stop_other_institutions(consent, patient, hospital, hospital2, session_id):
    consent.reviewBreakGlass(session_id, False, {"from": patient})
    assert consent.breakGlassBlockedUntil(hospital, patient) == 0
    open_session(consent, hospital, patient)
    assert emergency_read(consent, patient, hospital)


def test_patient_consent_for_emergencies_still_works_after_dispute(consent, patient, hospital2, session_id):
    consent.reviewBreakGlass(session_id, False, {"from": patient})
    gid = consent.grant(terms(patient, hospital2, purposes=1 << ETREAT), {"from": patient}).events[
        "ConsentGranted"
    ]["grantId"]
    assert check(consent, patient, hospital2, purpose=ETREAT) == (True, gid, False)


def test_dispute_limit_stops_new_sessions(consent, patient, hospital2, regulator, patients):
    times = dispute_sessions(consent, hospital2, patients, regulator)
    until = times[0] + WINDOW
    with reverts("ConsentBreakGlassLimitReached", hospital2, 3, until):
        consent.openBreakGlass(patient, JUSTIFICATION, {"from": hospital2})
    assert consent.breakGlassBlockedUntil(hospital2, patient) == until


def test_disputes_below_the_limit_leave_other_patients_open(consent, patient, hospital2, regulator, patients):
    dispute_sessions(consent, hospital2, patients[:2], regulator)
    open_session(consent, hospital2, patient)
    assert emergency_read(consent, patient, hospital2)


def test_dispute_limit_counts_a_sliding_window(consent, patient, hospital2, regulator, patients, accounts):
    times = []
    for p in patients:
        times += dispute_sessions(consent, hospital2, [p], regulator)
        chain.sleep(10 * DAY)
    # Now 30 days (+ a little) after the first dispute: it no longer counts, two do.
    chain.mine()
    assert chain[-1].timestamp >= times[0] + WINDOW
    sid = open_session(consent, hospital2, patient)
    consent.reviewBreakGlass(sid, False, {"from": patient})  # three within the window again
    with reverts("ConsentBreakGlassLimitReached", hospital2, 3, times[1] + WINDOW):
        consent.openBreakGlass(accounts[15], JUSTIFICATION, {"from": hospital2})


def test_open_sessions_stop_when_the_limit_is_reached(consent, patient, hospital2, regulator, patients):
    open_session(consent, hospital2, patient)  # opened before the reviews land
    dispute_sessions(consent, hospital2, patients, regulator)
    assert not emergency_read(consent, patient, hospital2)


def test_limit_counts_disputes_by_patients_guardians_and_regulators(
    consent, patient, hospital2, regulator, patients, guardian
):
    consent.addGuardian(guardian, {"from": patients[1]})
    for p, reviewer in zip(patients, (patients[0], guardian, regulator), strict=True):
        dispute_sessions(consent, hospital2, [p], reviewer)
    assert consent.disputedSessions(hospital2) == 3
    with reverts("ConsentBreakGlassLimitReached"):
        consent.openBreakGlass(patient, JUSTIFICATION, {"from": hospital2})


def test_institution_cannot_review_its_own_session_as_guardian(consent, patient, hospital2, session_id):
    consent.addGuardian(hospital2, {"from": patient})
    with reverts("ConsentNotReviewer", hospital2, session_id):
        consent.reviewBreakGlass(session_id, True, {"from": hospital2})


# ─── Guardian grants end with the guardianship ─────────────────────────────────────────────


def guardian_grant(consent, patient, guardian, grantee, **kw):
    return consent.grant(terms(patient, grantee, **kw), {"from": guardian}).events["ConsentGranted"][
        "grantId"
    ]


def test_guardian_cannot_grant_to_itself(consent, patient, guardian):
    consent.addGuardian(guardian, {"from": patient})
    with reverts("ConsentGrantToGuardian", patient, guardian, guardian):
        consent.grant(terms(patient, guardian), {"from": guardian})
    with reverts("ConsentGrantToGuardian", patient, guardian, guardian):
        consent.grant(terms(patient, guardian, ScopeKind.RECORD, RECORD), {"from": guardian})
    assert not check(consent, patient, guardian)[0]


def test_guardian_cannot_grant_to_another_guardian(consent, patient, guardian, accounts):
    second = accounts[17]
    consent.addGuardian(guardian, {"from": patient})
    consent.addGuardian(second, {"from": patient})
    with reverts("ConsentGrantToGuardian", patient, guardian, second):
        consent.grant(terms(patient, second), {"from": guardian})


def test_patient_may_grant_its_guardian(consent, patient, guardian):
    consent.addGuardian(guardian, {"from": patient})
    consent.grant(terms(patient, guardian), {"from": patient})
    assert check(consent, patient, guardian)[0]


def test_guardian_cannot_grant_to_itself_by_signature(consent, patient, outsider):
    guardian = Account.create()
    consent.addGuardian(guardian.address, {"from": patient})
    t = terms(patient, guardian.address)
    deadline = chain[-1].timestamp + 600
    nonce = consent.nonces(patient)
    sig = sign_grant_independently(consent, guardian.key, t, guardian.address, nonce, deadline)
    with reverts("ConsentGrantToGuardian", patient, guardian.address, guardian.address):
        consent.grantBySig(t, guardian.address, nonce, deadline, sig, {"from": outsider})


def test_guardian_grants_end_with_the_guardianship(consent, patient, guardian, hospital2):
    consent.addGuardian(guardian, {"from": patient})
    gid = guardian_grant(consent, patient, guardian, hospital2)
    assert consent.grantOf(gid)[0]["byGuardian"]
    assert consent.guardianOfGrant(gid) == (guardian, True)
    consent.removeGuardian(guardian, {"from": patient})
    assert not check(consent, patient, hospital2)[0]
    assert consent.grantOf(gid)[1] == GrantStatus.LAPSED
    assert consent.guardianOfGrant(gid) == (guardian, False)


def test_guardian_signed_grants_end_with_the_guardianship(consent, patient, hospital2, outsider):
    guardian = Account.create()
    consent.addGuardian(guardian.address, {"from": patient})
    t = terms(patient, hospital2, ScopeKind.CATEGORY, LAB)
    deadline = chain[-1].timestamp + 600
    nonce = consent.nonces(patient)
    sig = sign_grant_independently(consent, guardian.key, t, guardian.address, nonce, deadline)
    gid = consent.grantBySig(t, guardian.address, nonce, deadline, sig, {"from": outsider}).events[
        "ConsentGranted"
    ]["grantId"]
    assert check(consent, patient, hospital2, category=LAB)[0]
    consent.removeGuardian(guardian.address, {"from": patient})
    assert not check(consent, patient, hospital2, category=LAB)[0]
    assert consent.grantOf(gid)[1] == GrantStatus.LAPSED


def test_patient_grants_survive_guardian_removal(consent, patient, guardian, hospital, hospital2):
    consent.addGuardian(guardian, {"from": patient})
    own = consent.grant(terms(patient, hospital), {"from": patient}).events["ConsentGranted"]["grantId"]
    guardian_grant(consent, patient, guardian, hospital2)
    consent.removeGuardian(guardian, {"from": patient})
    assert check(consent, patient, hospital) == (True, own, False)
    assert consent.grantOf(own)[1] == GrantStatus.ACTIVE
    assert consent.guardianOfGrant(own) == (ZERO, False)
    assert not check(consent, patient, hospital2)[0]


def test_reappointed_guardian_does_not_revive_old_grants(consent, patient, guardian, hospital2):
    consent.addGuardian(guardian, {"from": patient})
    gid = guardian_grant(consent, patient, guardian, hospital2)
    consent.removeGuardian(guardian, {"from": patient})
    consent.addGuardian(guardian, {"from": patient})
    assert not check(consent, patient, hospital2)[0]
    assert consent.grantOf(gid)[1] == GrantStatus.LAPSED
    # A grant given in the new term works (and ends with it).
    assert guardian_grant(consent, patient, guardian, hospital2) == gid
    assert check(consent, patient, hospital2)[0]


def test_ex_guardian_cannot_revoke(consent, patient, guardian, hospital2):
    consent.addGuardian(guardian, {"from": patient})
    gid = guardian_grant(consent, patient, guardian, hospital2)
    own = consent.grant(terms(patient, hospital2, ScopeKind.RECORD, RECORD), {"from": patient}).events[
        "ConsentGranted"
    ]["grantId"]
    consent.removeGuardian(guardian, {"from": patient})
    for grant_id in (gid, own):
        with reverts("ConsentNotPatientOrGuardian", guardian, patient):
            consent.revoke(grant_id, {"from": guardian})


def test_ex_guardian_cannot_act_by_signature(consent, patient, hospital, hospital2, outsider):
    guardian = Account.create()
    consent.addGuardian(guardian.address, {"from": patient})
    own = consent.grant(terms(patient, hospital), {"from": patient}).events["ConsentGranted"]["grantId"]
    deadline = chain[-1].timestamp + 600
    nonce = consent.nonces(patient)
    # Signed while still in office, submitted after the removal.
    t = terms(patient, hospital2)
    grant_sig = sign_grant_independently(consent, guardian.key, t, guardian.address, nonce, deadline)
    revoke_hash = keccak(
        encode(
            ["bytes32", "bytes32", "address", "uint256", "uint256"],
            [keccak(REVOKE_TYPE), bytes(own), guardian.address, nonce, deadline],
        )
    )
    s = keys.PrivateKey(guardian.key).sign_msg_hash(independent_digest(consent, revoke_hash))
    revoke_sig = s.r.to_bytes(32, "big") + s.s.to_bytes(32, "big") + bytes([s.v + 27])
    consent.removeGuardian(guardian.address, {"from": patient})
    with reverts("ConsentSignerNotAuthorized", guardian.address, patient):
        consent.grantBySig(t, guardian.address, nonce, deadline, grant_sig, {"from": outsider})
    with reverts("ConsentSignerNotAuthorized", guardian.address, patient):
        consent.revokeBySig(own, guardian.address, nonce, deadline, revoke_sig, {"from": outsider})
    assert check(consent, patient, hospital)[0]


def test_patient_revokes_a_lapsed_guardian_grant(consent, patient, guardian, hospital2):
    consent.addGuardian(guardian, {"from": patient})
    gid = guardian_grant(consent, patient, guardian, hospital2)
    consent.removeGuardian(guardian, {"from": patient})
    consent.revoke(gid, {"from": patient})
    assert consent.grantOf(gid)[1] == GrantStatus.REVOKED


def test_patient_regrant_replaces_a_guardian_grant_and_outlives_the_guardian(
    consent, patient, guardian, hospital2
):
    consent.addGuardian(guardian, {"from": patient})
    gid = guardian_grant(consent, patient, guardian, hospital2)
    assert (
        consent.grant(terms(patient, hospital2), {"from": patient}).events["ConsentGranted"]["grantId"] == gid
    )
    consent.removeGuardian(guardian, {"from": patient})
    assert check(consent, patient, hospital2)[0]
    assert not consent.grantOf(gid)[0]["byGuardian"]


def test_grant_starting_after_2106_is_rejected(consent, patient, hospital):
    with reverts("ConsentInvalidWindow", 2**32, NO_END):
        consent.grant(terms(patient, hospital, nb=2**32), {"from": patient})


def test_open_ended_grant_is_stored_in_32_bits(consent, patient, hospital, granted):
    record, status = consent.grantOf(granted)
    assert (record["notAfter"], status) == (2**32 - 1, GrantStatus.ACTIVE)

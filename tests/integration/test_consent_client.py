"""The consent client end to end: signed grants submitted by another party, events, FHIR exports."""

from __future__ import annotations

import hashlib

import pytest
from brownie import chain
from eth_account import Account

from medchain.consent import GrantGuardian, GrantTerms
from medchain.errors import ContractRevert
from medchain.fhir import break_glass_audit_event, consent_resource
from medchain.types import Actions, GrantStatus, Purpose, Review


@pytest.fixture
def patient_key(regulator):
    key = Account.create()
    regulator.transfer(key.address, "1 ether")
    return key


def test_patient_signs_and_hospital_submits(suite, patient_key, hospital, hospital2):
    c = suite.consent
    terms = GrantTerms.for_category(
        patient_key.address, hospital2.address, "Observation", Actions.READ, Purpose.TREAT
    )
    signed = c.sign_grant(patient_key, terms, deadline=chain[-1].timestamp + 600)
    gid = c.submit_signed_grant(hospital.address, terms, signed)  # the hospital pays the gas
    assert c.check(
        patient_key.address, hospital2.address, Actions.READ, Purpose.TREAT, category="Observation"
    ).allowed
    assert not c.check(
        patient_key.address, hospital2.address, Actions.READ, Purpose.TREAT, category="Condition"
    ).allowed
    [grant] = c.grants_of(patient_key.address)
    assert grant.id == gid
    assert grant.via_signature
    assert grant.status == GrantStatus.ACTIVE
    assert grant.terms == terms


def test_signed_revoke_and_listing(suite, patient_key, hospital):
    c = suite.consent
    terms = GrantTerms.for_all(patient_key.address, hospital.address, Actions.READ, Purpose.TREAT)
    gid = c.grant(patient_key, terms)  # the patient's own transaction, signed with its key
    signed = c.sign_revoke(patient_key, gid, patient_key.address, deadline=chain[-1].timestamp + 600)
    c.submit_signed_revoke(hospital.address, gid, signed)
    assert c.status(gid) == GrantStatus.REVOKED
    assert [g.status for g in c.grants_of(patient_key.address)] == [GrantStatus.REVOKED]


def test_guardian_acts_through_client(suite, patient_key, hospital2, accounts):
    c = suite.consent
    guardian = accounts[16]
    c.add_guardian(patient_key, guardian.address)
    assert c.is_guardian(patient_key.address, guardian.address)
    gid = c.grant(
        guardian.address,
        GrantTerms.for_all(patient_key.address, hospital2.address, Actions.READ, Purpose.TREAT),
    )
    [grant] = c.grants_of(patient_key.address)
    assert (grant.id, grant.actor) == (gid, guardian.address)
    c.remove_guardian(patient_key, guardian.address)
    assert not c.is_guardian(patient_key.address, guardian.address)


def test_client_errors_are_named(suite, patient_key):
    c = suite.consent
    with pytest.raises(ContractRevert) as info:
        c.grant(
            patient_key,
            GrantTerms.for_all(patient_key.address, patient_key.address, Actions.READ, Purpose.TREAT),
        )
    assert info.value.error == "ConsentSelfGrant"


def test_consent_exports_as_valid_fhir_without_phi(suite, patient_key, hospital2):
    c = suite.consent
    terms = GrantTerms.for_category(
        patient_key.address,
        hospital2.address,
        "Observation",
        Actions.READ | Actions.SHARE,
        Purpose.TREAT,
        Purpose.HPAYMT,
        not_after=chain[-1].timestamp + 86400,
    )
    c.grant(patient_key, terms)
    [grant] = c.grants_of(patient_key.address)
    resource = consent_resource(grant, suite.deployment.chain_id)
    assert resource["resourceType"] == "Consent"
    assert resource["status"] == "active"
    provision = resource["provision"]
    assert provision["class"][0]["code"] == "Observation"
    assert [a["coding"][0]["code"] for a in provision["action"]] == ["access", "disclose"]
    assert [p["code"] for p in provision["purpose"]] == ["TREAT", "HPAYMT"]
    assert resource["patient"]["identifier"]["value"].endswith(patient_key.address)
    assert "end" in provision["period"]


def test_break_glass_flow_and_audit_event(suite, patient_key, hospital2):
    c = suite.consent
    digest = hashlib.sha256(b"unconscious, no consent on file").digest()
    sid = c.open_break_glass(hospital2.address, patient_key.address, digest)
    assert c.check(patient_key.address, hospital2.address, Actions.READ, Purpose.ETREAT).break_glass
    c.review_break_glass(patient_key, sid, accept=False)
    [session] = c.sessions_of(patient_key.address)
    assert session.review == Review.DISPUTED
    assert c.disputed_sessions(hospital2.address) == 1
    event = break_glass_audit_event(session, suite.deployment.chain_id, c.address)
    assert event["resourceType"] == "AuditEvent"
    assert event["subtype"][0]["code"] == "110127"  # DICOM Emergency Override Started
    assert [p["coding"][0]["code"] for p in event["purposeOfEvent"]] == ["ETREAT", "BTG"]


def test_lapsed_guardian_grant_through_client_and_fhir(suite, patient_key, hospital2, accounts):
    c = suite.consent
    guardian = accounts[16]
    c.add_guardian(patient_key, guardian.address)
    gid = c.grant(
        guardian.address,
        GrantTerms.for_all(patient_key.address, hospital2.address, Actions.READ, Purpose.TREAT),
    )
    assert c.guardian_of(gid) == GrantGuardian(guardian.address, True)
    c.remove_guardian(patient_key, guardian.address)
    assert not c.check(patient_key.address, hospital2.address, Actions.READ, Purpose.TREAT).allowed
    assert c.guardian_of(gid) == GrantGuardian(guardian.address, False)
    [grant] = c.grants_of(patient_key.address)
    assert grant.status == GrantStatus.LAPSED
    assert consent_resource(grant, suite.deployment.chain_id)["status"] == "inactive"


def test_guardian_self_grant_is_named_by_client(suite, patient_key, accounts):
    c = suite.consent
    guardian = accounts[16]
    c.add_guardian(patient_key, guardian.address)
    with pytest.raises(ContractRevert) as info:
        c.grant(
            guardian.address,
            GrantTerms.for_all(patient_key.address, guardian.address, Actions.READ, Purpose.TREAT),
        )
    assert info.value.error == "ConsentGrantToGuardian"


def test_dispute_ends_session_and_blocks_reopening_through_client(suite, patient_key, hospital2):
    c = suite.consent
    digest = hashlib.sha256(b"unconscious, no consent on file").digest()
    sid = c.open_break_glass(hospital2.address, patient_key.address, digest)
    assert c.break_glass_blocked_until(hospital2.address, patient_key.address) is None
    c.review_break_glass(patient_key, sid, accept=False)
    disputed_at = chain[-1].timestamp
    assert not c.check(patient_key.address, hospital2.address, Actions.READ, Purpose.ETREAT).allowed
    assert c.session(sid).expires_at == disputed_at - 1
    assert c.break_glass_blocked_until(hospital2.address, patient_key.address) == disputed_at + 30 * 86400
    with pytest.raises(ContractRevert) as info:
        c.open_break_glass(hospital2.address, patient_key.address, digest)
    assert info.value.error == "ConsentBreakGlassDisputedForPatient"

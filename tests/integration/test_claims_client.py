"""The claims clients end to end: plan, funding, enrolment, claims through the SDK, reports, FHIR."""

from __future__ import annotations

import pytest
from brownie import chain
from eth_account import Account

from medchain import crypto
from medchain.claims import ClaimStatus, CoverageTable, PlanTerms, claim_resources
from medchain.consent import Actions, GrantTerms, Purpose
from medchain.ehr import KeyVault
from medchain.errors import ContractRevert
from medchain.store import LocalFolderStore

USD = 10**6
ENCOUNTER = {
    "resourceType": "Encounter",
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
}


@pytest.fixture
def setup(suite, token, regulator, insurer, hospital, patient, private_key, tmp_path):
    patient_key = Account.from_key(private_key(patient))
    c = suite.consent
    c.grant(
        patient.address,
        GrantTerms.for_all(patient.address, hospital.address, Actions.READ | Actions.APPEND, Purpose.TREAT),
    )
    c.grant(
        patient.address,
        GrantTerms.for_category(patient.address, insurer.address, "Encounter", Actions.READ, Purpose.HPAYMT),
    )
    table = CoverageTable({"99213": 150 * USD, "70450": 900 * USD})
    terms = PlanTerms(table.root, 100 * USD, 2000, 1000 * USD, 5000 * USD, 500 * USD)
    plan = suite.claims.create_plan(insurer.address, terms)
    token.mint(insurer, 50_000 * USD, {"from": regulator})
    token.mint(patient, 1_000 * USD, {"from": regulator})
    suite.claims.fund(insurer.address, plan, 10_000 * USD)
    now = chain[-1].timestamp
    deadline, sig = suite.claims.sign_enrolment(patient_key, plan, now - 60, now + 365 * 86400)
    suite.claims.enrol(insurer.address, plan, patient.address, now - 60, now + 365 * 86400, deadline, sig)
    ehr = suite.ehr(LocalFolderStore(tmp_path))
    reader = crypto.ReaderKey.from_private_key(private_key(hospital))

    def encounter(note: str):
        return ehr.anchor_resource(
            hospital.address, {**ENCOUNTER, "id": note}, patient.address, KeyVault(), (reader,)
        )

    return {"plan": plan, "table": table, "encounter": encounter, "ehr": ehr, "reader": reader}


def test_auto_paid_and_pended_claims_through_the_sdk(suite, setup, insurer, hospital, patient, token):
    claims, table = suite.claims, setup["table"]
    service, proof = table.service("99213")
    paid = claims.submit(
        hospital.address, setup["plan"], patient.address, [setup["encounter"]("a")], service, proof, 150 * USD
    )
    assert (paid.status, paid.amount, paid.patient_share) == (ClaimStatus.PAID, 40 * USD, 110 * USD)
    service, proof = table.service("70450")
    pended = claims.submit(
        hospital.address, setup["plan"], patient.address, [setup["encounter"]("b")], service, proof, 900 * USD
    )
    assert pended.status == ClaimStatus.PENDED
    assert [c.id for c in claims.pending_claims(setup["plan"])] == [pended.id]
    assert claims.approve(insurer.address, pended, pended.max_payable) == ClaimStatus.PAID
    before = token.balanceOf(hospital)
    assert claims.settle_share(patient.address, paid) == 110 * USD
    assert token.balanceOf(hospital) - before == 110 * USD
    report = claims.report(setup["plan"])
    assert report["by_status"] == {"paid": 2}
    assert report["paid"] == 40 * USD + 720 * USD
    assert report["pool"] == 10_000 * USD - report["paid"]


def test_claim_without_insurer_consent_is_refused(suite, setup, hospital, patient):
    """The insurer's payment consent covers Encounters only; an Observation as evidence is refused."""
    service, proof = setup["table"].service("99213")
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"}}
    anchored = setup["ehr"].anchor_resource(
        hospital.address, observation, patient.address, KeyVault(), (setup["reader"],)
    )
    with pytest.raises(ContractRevert, match="ClaimsNoPaymentConsent"):
        suite.claims.submit(
            hospital.address, setup["plan"], patient.address, [anchored], service, proof, 150 * USD
        )


def test_claim_exports_as_fhir(suite, setup, insurer, hospital, patient):
    service, proof = setup["table"].service("99213")
    evidence = [setup["encounter"]("fhir")]
    claim = suite.claims.submit(
        hospital.address, setup["plan"], patient.address, evidence, service, proof, 150 * USD
    )
    resources = claim_resources(
        claim, insurer.address, suite.deployment.chain_id, 150 * USD, service, evidence
    )
    assert resources["claim"]["resourceType"] == "Claim"
    assert resources["claim"]["total"]["value"] == 150.0
    response = resources["claimResponse"]
    assert response["outcome"] == "complete"
    assert [t["amount"]["value"] for t in response["total"]] == [40.0, 110.0]

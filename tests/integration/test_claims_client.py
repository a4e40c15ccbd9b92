"""The claims clients end to end: plan, funding, enrolment, claims through the SDK, reports, FHIR."""

from __future__ import annotations

import pytest
from brownie import chain
from eth_account import Account

from medchain.claims import MEDICATION_DISPENSE, DispenseRef, PlanTerms, lot_code, patient_ref
from medchain.consent import GrantTerms
from medchain.ehr import KeyVault
from medchain.errors import ContractRevert
from medchain.fhir import claim_resources
from medchain.types import Actions, ClaimStatus, Purpose

USD = 10**6
GTIN = 9506000134352


@pytest.fixture
def setup(claims_setup):
    return claims_setup


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
    assert report.by_status == {"paid": 2}
    assert report.paid == 40 * USD + 720 * USD
    assert report.pool == 10_000 * USD - report.paid


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


def test_amended_encounter_is_claimed_once_through_the_sdk(suite, setup, hospital, patient):
    """The SDK sends an amended record with its earlier versions; every version is the same encounter."""
    claims, table = suite.claims, setup["table"]
    service, proof = table.service("99213")
    first = setup["encounter"]("enc")
    second = setup["encounter"]("enc-corrected", previous=first)
    third = setup["encounter"]("enc-corrected-again", previous=second)
    claim = claims.submit(
        hospital.address, setup["plan"], patient.address, [third], service, proof, 150 * USD
    )
    assert claim.status == ClaimStatus.PAID
    chain.sleep(86400)
    for version in (first, second, third):
        with pytest.raises(ContractRevert, match="ClaimsEvidenceAlreadyClaimed") as info:
            claims.submit(
                hospital.address, setup["plan"], patient.address, [version], service, proof, 150 * USD
            )
        assert info.value.args_ == (version.id, first.id)  # the encounter: the first version


def test_pharmacy_claims_a_dispense_through_the_sdk(
    suite, setup, manufacturer, pharmacy, patient, private_key, token
):
    drugs, claims = suite.drugs, suite.claims
    drugs.register_product(manufacturer.address, GTIN)
    now = chain[-1].timestamp
    batch = drugs.commission(manufacturer.address, GTIN, "LOT-7", now - 60, now + 10**7, 20, b"\1" * 32)
    drugs.receive(pharmacy.address, drugs.ship(manufacturer.address, batch, pharmacy.address, 5))
    salt = b"\x33" * 32
    nonce, _ = drugs.holding(batch, pharmacy.address)
    dispense_id = drugs.dispense(pharmacy.address, batch, 1, patient_ref(patient.address, salt))
    ref = DispenseRef(lot_code("LOT-7"), salt, 1, nonce, chain[-1].timestamp)
    assert ref.dispense_id(GTIN, pharmacy.address, patient.address) == dispense_id
    service, proof = setup["table"].service("J3490", GTIN)
    with pytest.raises(ContractRevert, match="ClaimsNoPaymentConsent"):  # the consent covers Encounters only
        claims.submit(pharmacy.address, setup["plan"], patient.address, [], service, proof, 40 * USD, ref)
    suite.consent.grant(
        patient.address,
        GrantTerms.for_category(
            patient.address, setup["insurer"], MEDICATION_DISPENSE, Actions.READ, Purpose.HPAYMT
        ),
    )
    with pytest.raises(ContractRevert, match="ClaimsNoTreatmentRelationship"):  # a pharmacy it never used
        claims.submit(pharmacy.address, setup["plan"], patient.address, [], service, proof, 40 * USD, ref)
    suite.consent.grant(
        patient.address,
        GrantTerms.for_category(
            patient.address, pharmacy.address, MEDICATION_DISPENSE, Actions.APPEND, Purpose.TREAT
        ),
    )
    claim = claims.submit(pharmacy.address, setup["plan"], patient.address, [], service, proof, 40 * USD, ref)
    assert (claim.status, claim.patient_share) == (ClaimStatus.PAID, 40 * USD)  # all deductible
    fhir = claim_resources(
        claim,
        insurer=setup["insurer"],
        chain_id=suite.deployment.chain_id,
        service=service,
        evidence=claims.evidence(claim),
        timeline=claims.timeline(claim.id),
    )
    codes = [c["code"] for c in fhir["claim"]["item"][0]["productOrService"]["coding"]]
    assert codes == ["J3490", f"{GTIN:014d}"]
    assert fhir["claim"]["type"]["coding"][0]["code"] == "pharmacy"
    [info] = fhir["claim"]["supportingInfo"]  # the dispense the contract checked, by its id
    assert (
        info["valueReference"]["identifier"]["value"]
        == "0x" + ref.dispense_id(GTIN, pharmacy.address, patient.address).hex()
    )


def test_appeal_reserve_and_withdrawal_through_the_sdk(suite, setup, insurer, hospital, patient, token):
    claims, table = suite.claims, setup["table"]
    service, proof = table.service("70450")
    pended = claims.submit(
        hospital.address,
        setup["plan"],
        patient.address,
        [setup["encounter"]("ct")],
        service,
        proof,
        900 * USD,
    )
    plan = claims.plan(setup["plan"])
    assert (plan.pool, plan.reserved, plan.surplus) == (10_000 * USD, 640 * USD, 9_360 * USD)
    claims.deny(insurer.address, pended, 4)
    appealed = claims.appeal(hospital.address, pended)
    assert (appealed.status, appealed.amount, appealed.deductible_part) == (
        ClaimStatus.APPEALED,
        640 * USD,
        100 * USD,
    )
    with pytest.raises(ContractRevert, match="ClaimsWithdrawalAboveSurplus"):
        claims.withdraw(insurer.address, setup["plan"], 9_361 * USD)
    before = token.balanceOf(insurer)
    assert claims.withdraw(insurer.address, setup["plan"], 9_360 * USD) == 640 * USD
    assert token.balanceOf(insurer) - before == 9_360 * USD
    assert appealed.max_payable == appealed.amount  # what the insurer may approve now
    assert claims.approve(insurer.address, appealed, appealed.max_payable) == ClaimStatus.PAID
    report = claims.report(setup["plan"])
    assert (report.pool, report.reserved) == (0, 0)
    usage = claims.year_usage(setup["plan"], patient.address, 0)
    enrolment = claims.enrolment(setup["plan"], patient.address)
    assert usage == (enrolment.deductible_met, enrolment.paid_in_year) == (100 * USD, 640 * USD)


def test_renewal_through_the_sdk(suite, setup, insurer, hospital, patient, private_key):
    claims, table = suite.claims, setup["table"]
    patient_key = Account.from_key(private_key(patient))
    plan = claims.create_plan(
        insurer.address, PlanTerms(table.root, 100 * USD, 2000, 1000 * USD, 5000 * USD, 0)
    )
    claims.fund(insurer.address, plan, 1_000 * USD)
    now = chain[-1].timestamp
    deadline, sig = claims.sign_enrolment(patient_key, plan, now - 60, now + 86400)
    claims.enrol(insurer.address, plan, patient.address, now - 60, now + 86400, deadline, sig)
    chain.sleep(2 * 86400)
    chain.mine()
    start = chain[-1].timestamp
    deadline, sig = claims.sign_enrolment(patient_key, plan, start, start + 30 * 86400)
    claims.enrol(insurer.address, plan, patient.address, start, start + 30 * 86400, deadline, sig)
    enrolment = claims.enrolment(plan, patient.address)
    assert (enrolment.start, enrolment.year_origin) == (start, now - 60)


def test_appealed_claims_maximum_follows_its_re_adjudication(suite, setup, insurer, hospital, patient):
    """What the CLI approves by default (max_payable) is the appealed claim's new maximum."""
    claims, table = suite.claims, setup["table"]
    service, proof = table.service("70450")
    pended = claims.submit(
        hospital.address,
        setup["plan"],
        patient.address,
        [setup["encounter"]("ct")],
        service,
        proof,
        900 * USD,
    )
    claims.deny(insurer.address, pended, 4)
    visit, visit_proof = table.service("99213")
    claims.submit(
        hospital.address,
        setup["plan"],
        patient.address,
        [setup["encounter"]("visit")],
        visit,
        visit_proof,
        150 * USD,
    )  # meets the deductible
    appealed = claims.appeal(hospital.address, pended)
    assert (pended.max_payable, appealed.max_payable, appealed.patient_share) == (
        640 * USD,
        720 * USD,
        180 * USD,
    )
    assert claims.approve(insurer.address, appealed, appealed.max_payable) == ClaimStatus.PAID
    assert claims.claim(pended.id).amount == 720 * USD

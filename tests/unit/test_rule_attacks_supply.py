"""Attacks across the supply side and the claims it backs: DrugProvenance (custody, recall) and
ClaimsProcessor's drug and pharmacy claims, evidence and pool, as an outside reviewer tried them.

Findings (each test failed before its fix):
- a pharmacy with no treatment relationship to a patient could bill that patient's plan for a
  dispense it merely declared (``test_dispense_is_billed_only_by_a_dispenser_the_patient_consented_to``);
- two dispenses could share one id, so the second could never be billed
  (``test_identical_dispense_in_the_same_second_reverts``).

The other tests are attempts that fail (the rule holds) on paths no other test walks.
"""

from __future__ import annotations

import hashlib

import pytest
from brownie import chain
from web3 import Web3

from medchain.ehr import RecordHeader
from medchain.types import (
    Actions,
    BatchStatus,
    ClaimStatus,
    GovernanceAction,
    Purpose,
    ScopeKind,
    category_code,
)
from tests.helpers import reverts
from tests.unit import test_claims_processor as claims_tests
from tests.unit import test_drug_provenance as drug_tests
from tests.unit.test_claims_processor import (
    CID,
    ENCOUNTER,
    GTIN_A,
    MAX_PAYABLE,
    USD,
    dispense,
    give,
    pharmacy_claim,
    service,
    stock,
    submit,
    submit_with,
)
from tests.unit.test_drug_provenance import PATIENT_REF, govern, ref_of

# The fixtures of the two contracts' unit tests, shared here by name.
world = claims_tests.world
products = claims_tests.products
pharmacy_stock = claims_tests.pharmacy_stock
short_plan = claims_tests.short_plan
product = drug_tests.product
batch = drug_tests.batch
at_pharmacy = drug_tests.at_pharmacy

MEDICATION_DISPENSE = category_code("MedicationDispense")


def treat_dispenses(consent, patient, dispenser):
    """The patient's treatment relationship with a dispenser: APPEND for TREAT over its dispenses."""
    give(consent, patient, dispenser, Actions.APPEND, Purpose.TREAT, ScopeKind.CATEGORY, MEDICATION_DISPENSE)


@pytest.fixture
def unknown_pharmacy(drugs, products, manufacturer, pharmacy):
    """A pharmacy with stock of GTIN A (lot PH-A) that the patient never went to (no consent)."""
    return stock(drugs, manufacturer, pharmacy, GTIN_A, "PH-A")


# ─── Finding: a dispense is billed only by a dispenser the patient has a relationship with ──


def test_dispense_is_billed_only_by_a_dispenser_the_patient_consented_to(
    claims, world, drugs, consent, patient, pharmacy, outsider, unknown_pharmacy
):
    # The patient let its insurer see dispenses for payment (world: all data), as pharmacy claims
    # need; it never went to this pharmacy. The pharmacy declares a dispense to the patient's
    # reference (which needs nothing from the patient) and bills it.
    d = dispense(drugs, pharmacy, unknown_pharmacy, patient, "PH-A", salt=b"\x13" * 32)
    with reverts("ClaimsNoTreatmentRelationship", patient, pharmacy):
        pharmacy_claim(claims, world, pharmacy, patient, d)
    with reverts("ClaimsNotProvider", outsider):
        claims.submitClaim(
            world["plan"], patient, [], service("J3490", GTIN_A), 40 * USD, d.as_tuple(), {"from": outsider}
        )
    # A consent for another action, purpose or category is no treatment relationship (each grant
    # below replaces the one before on the same scope).
    for actions, purpose, category in (
        (Actions.READ, Purpose.TREAT, MEDICATION_DISPENSE),
        (Actions.APPEND, Purpose.HPAYMT, MEDICATION_DISPENSE),
        (Actions.APPEND, Purpose.TREAT, ENCOUNTER),
    ):
        give(consent, patient, pharmacy, actions, purpose, ScopeKind.CATEGORY, category)
        with reverts("ClaimsNoTreatmentRelationship", patient, pharmacy):
            pharmacy_claim(claims, world, pharmacy, patient, d)
    treat_dispenses(consent, patient, pharmacy)
    _, (claim_id, _rec) = pharmacy_claim(claims, world, pharmacy, patient, d)
    assert claims.claim(claim_id)["status"] == ClaimStatus.PAID


def test_revoked_treatment_relationship_stops_billing_dispenses(
    claims, world, drugs, consent, patient, pharmacy, unknown_pharmacy
):
    treat_dispenses(consent, patient, pharmacy)
    d = dispense(drugs, pharmacy, unknown_pharmacy, patient, "PH-A")
    grant_id = consent.grantIdFor(patient, pharmacy, int(ScopeKind.CATEGORY), MEDICATION_DISPENSE)
    consent.revoke(grant_id, {"from": patient})
    with reverts("ClaimsNoTreatmentRelationship", patient, pharmacy):
        pharmacy_claim(claims, world, pharmacy, patient, d)
    assert not claims.isEvidenceUsed(d.dispense_id(GTIN_A, pharmacy.address, patient.address))


# ─── Finding: dispense ids are unique ──────────────────────────────────────────────────────


def test_identical_dispense_in_the_same_second_reverts(drugs, at_pharmacy, pharmacy, hospital, web3):
    def in_second(t):  # the next block's time
        web3.provider.make_request("evm_setNextBlockTimestamp", [t])

    second = chain[-1].timestamp + 60
    shipped = drugs.ship(at_pharmacy, hospital, 2, {"from": pharmacy})  # 18 left
    in_second(second)
    first = drugs.dispense(at_pharmacy, 2, PATIENT_REF, {"from": pharmacy})  # 16 left
    in_second(second)
    drugs.cancelShipment(ref_of(shipped), {"from": pharmacy})  # 18 again: the same nonce
    in_second(second)
    dispense_id = first.events["Dispensed"]["dispenseId"]
    with reverts("DrugDispenseExists", dispense_id):
        drugs.dispense(at_pharmacy, 2, PATIENT_REF, {"from": pharmacy})
    chain.mine()  # uses up the pinned time if the refused call never made a block
    assert drugs.batch(at_pharmacy)["dispensed"] == 2


# ─── Attempts that fail: recall ────────────────────────────────────────────────────────────


def test_recall_counts_units_in_transit_to_a_suspended_addressee_at_the_sender(
    drugs, registry, accounts, at_pharmacy, manufacturer, distributor, pharmacy
):
    pending = drugs.ship(at_pharmacy, pharmacy, 5, {"from": distributor})
    govern(registry, accounts, pharmacy, GovernanceAction.SUSPEND)
    with reverts("DrugHolderNotActive", pharmacy):
        drugs.receiveShipment(ref_of(pending), {"from": pharmacy})
    holders = sorted([manufacturer.address, distributor.address, pharmacy.address], key=lambda a: int(a, 16))
    tx = drugs.recall(at_pharmacy, 3, holders, {"from": manufacturer})
    listed = {e["holder"]: (e["available"], e["inTransit"]) for e in tx.events["HolderAtRecall"]}
    assert listed[distributor.address] == (35, 5)  # the shipment counts at its sender
    assert listed[pharmacy.address] == (20, 0)
    # The way out for those units: the sender takes them back and destroys them; the suspended
    # pharmacy may destroy its own. Then every unit is accounted for.
    drugs.cancelShipment(ref_of(pending), {"from": distributor})
    drugs.destroy(at_pharmacy, 40, {"from": distributor})
    drugs.destroy(at_pharmacy, 20, {"from": pharmacy})
    drugs.destroy(at_pharmacy, 40, {"from": manufacturer})
    assert drugs.batch(at_pharmacy)["status"] == BatchStatus.DESTROYED


def test_holder_destroying_its_stock_after_the_list_does_not_block_the_recall(
    drugs, at_pharmacy, manufacturer, distributor, pharmacy, regulator
):
    drugs.quarantine(at_pharmacy, 3, {"from": regulator})
    holders = sorted([manufacturer.address, distributor.address, pharmacy.address], key=lambda a: int(a, 16))
    drugs.destroy(at_pharmacy, 20, {"from": pharmacy})  # after the list was built: now holds nothing
    tx = drugs.recall(at_pharmacy, 3, holders, {"from": regulator})
    assert tx.events["BatchStatusChanged"]["current"] == BatchStatus.RECALLED


def test_recall_holder_list_refuses_the_zero_address(drugs, at_pharmacy, manufacturer, distributor, pharmacy):
    holders = sorted([manufacturer.address, distributor.address, pharmacy.address], key=lambda a: int(a, 16))
    with reverts("DrugHolderListUnsorted"):
        drugs.recall(at_pharmacy, 3, ["0x" + "00" * 20, *holders], {"from": manufacturer})


# ─── Attempts that fail: evidence ──────────────────────────────────────────────────────────


def test_evidence_claimed_under_one_plan_cannot_back_a_claim_under_another(
    claims, world, ehr, drugs, consent, patient, hospital, pharmacy, pharmacy_stock, short_plan
):
    # The patient is enrolled in two plans (world's and short_plan's).
    _, _, h = submit(claims, world, ehr, patient, hospital, tag="one visit")
    with reverts("ClaimsEvidenceAlreadyClaimed", h.record_id, h.record_id):
        submit_with(claims, short_plan, hospital, patient, [h])
    d = dispense(drugs, pharmacy, pharmacy_stock[GTIN_A], patient, "PH-A")
    pharmacy_claim(claims, world, pharmacy, patient, d)
    with reverts("ClaimsDispenseAlreadyClaimed", d.dispense_id(GTIN_A, pharmacy.address, patient.address)):
        pharmacy_claim(claims, short_plan, pharmacy, patient, d)


def test_batched_record_is_no_claim_evidence(claims, world, ehr, patient, hospital):
    h = RecordHeader(patient.address, hospital.address, hashlib.sha256(b"batched").digest(), ENCOUNTER)
    root = Web3.keccak(h.record_id)  # a batch of one: the root is the record's leaf
    batch_id = ehr.anchorBatch(root, 1, CID, {"from": hospital}).return_value
    assert ehr.inBatch(h.as_tuple(), batch_id, [])
    # A batch leaves no per-record state (no anchoring time to hold against the coverage period),
    # so a batched record never backs a claim.
    with reverts("ClaimsInvalidEvidence", h.record_id):
        submit_with(claims, world, hospital, patient, [h])


# ─── Attempts that fail: pool and review ───────────────────────────────────────────────────


def test_approved_claim_waiting_for_funds_cannot_be_denied_and_keeps_its_reserve(
    claims, world, ehr, patient, hospital, insurer
):
    plan = world["plan"]
    pool = claims.plan(plan)["pool"]
    # A pended claim (640 payable) approved while the pool is short: it waits for funds.
    claims.withdraw(plan, pool - 100 * USD, {"from": insurer})
    _, (claim_id, rec), _ = submit(claims, world, ehr, patient, hospital, code="70450", billed=900 * USD)
    claims.approve(rec, rec[MAX_PAYABLE], {"from": insurer})
    assert claims.claim(claim_id)["status"] == ClaimStatus.APPROVED
    assert claims.plan(plan)["reserved"] == 640 * USD
    with reverts("ClaimsInvalidTransition", claim_id, ClaimStatus.APPROVED):
        claims.deny(rec, 1, {"from": insurer})
    with reverts("ClaimsWithdrawalAboveSurplus", plan, 1, 0):
        claims.withdraw(plan, 1, {"from": insurer})
    with reverts("ClaimsInsufficientPool", plan, 100 * USD, 640 * USD):
        claims.payOut(rec, {"from": hospital})
    claims.fund(plan, 540 * USD, {"from": insurer})
    claims.payOut(rec, {"from": patient})  # anyone may pay it out once funded
    assert (claims.plan(plan)["pool"], claims.plan(plan)["reserved"]) == (0, 0)
    assert claims.claim(claim_id)["status"] == ClaimStatus.PAID

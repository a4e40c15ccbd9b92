"""ClaimsProcessor: plans, enrolment, adjudication, automatic payment, review, appeal, patient share."""

from __future__ import annotations

import hashlib

import pytest
from brownie import ClaimsProcessor, chain
from eth_account import Account

from medchain.claims import NO_DRUG, ClaimStatus, CoverageTable, patient_ref
from medchain.consent import NO_END, Actions, Purpose, ScopeKind, category_code
from medchain.ehr import RecordHeader
from medchain.store import cid_bytes, cid_of
from tests.helpers import reverts

ZERO = "0x0000000000000000000000000000000000000000"
ZERO32 = b"\0" * 32
USD = 10**6
COVERAGE = CoverageTable({"99213": 150 * USD, "70450": 900 * USD, "J3490": 40 * USD}, salt=b"\x42" * 32)
TERMS = (COVERAGE.root, 100 * USD, 2000, 1000 * USD, 2000 * USD, 500 * USD)  # ded, 20 %, limits, auto-pay
CID = cid_bytes(cid_of(b"ciphertext"))


def service(code):
    s, proof = COVERAGE.service(code)
    return (s.commitment, s.allowed_amount, proof)


@pytest.fixture
def world(suite, consent, ehr, claims, token, regulator, hospital, insurer, patient, private_key):
    for grantee, actions, purpose in (
        (hospital, Actions.READ | Actions.APPEND, Purpose.TREAT),
        (insurer, Actions.READ, Purpose.HPAYMT),
    ):
        consent.grant(
            (patient, grantee, int(ScopeKind.ALL), ZERO32, int(actions), 1 << int(purpose), 0, NO_END),
            {"from": patient},
        )
    plan_id = claims.createPlan(TERMS, {"from": insurer}).events["PlanCreated"]["planId"]
    token.mint(insurer, 100_000 * USD, {"from": regulator})
    token.mint(patient, 10_000 * USD, {"from": regulator})
    token.approve(claims, 5_000 * USD, {"from": insurer})
    claims.fund(plan_id, 5_000 * USD, {"from": insurer})
    now = chain[-1].timestamp
    enrol(
        suite,
        claims,
        insurer,
        plan_id,
        Account.from_key(private_key(patient)),
        now - 86400,
        now + 365 * 86400,
    )
    return {"plan": plan_id, "records": 0}


def enrol(suite, claims, insurer, plan_id, patient_account, start, end):
    deadline, sig = suite.claims.sign_enrolment(patient_account, plan_id, start, end)
    return claims.enrol(plan_id, patient_account.address, start, end, deadline, sig, {"from": insurer})


def evidence(ehr, patient, hospital, tag):
    h = RecordHeader(
        patient.address, hospital.address, hashlib.sha256(tag.encode()).digest(), category_code("Encounter")
    )
    ehr.anchor(h.as_tuple(), CID, {"from": hospital})
    return h


def submit(
    claims, world, ehr, patient, hospital, code="99213", billed=150 * USD, tag="visit-1", drug=NO_DRUG
):
    h = evidence(ehr, patient, hospital, tag)
    tx = claims.submitClaim(
        world["plan"], patient, [h.as_tuple()], service(code), billed, drug, {"from": hospital}
    )
    event = tx.events["ClaimSubmitted"]
    return tx, (event["claimId"], tuple(event["record"])), h


MAX_PAYABLE, PATIENT_SHARE = 6, 7  # positions in the claim record


# ─── Plans and enrolment ───────────────────────────────────────────────────────────────────


def test_plan_created_and_funded(claims, world, insurer):
    p = claims.plan(world["plan"])
    assert (p["insurer"], p["pool"]) == (insurer, 5_000 * USD)
    assert p["terms"]["deductible"] == 100 * USD
    assert p["terms"]["coinsuranceBps"] == 2000
    assert p["terms"]["autoPayCeiling"] == 500 * USD


def test_create_plan_by_non_insurer_reverts(claims, hospital, outsider):
    for account in (hospital, outsider):
        with reverts("ClaimsNotInsurer", account):
            claims.createPlan(TERMS, {"from": account})


@pytest.mark.parametrize(("index", "value"), [(0, ZERO32), (2, 10_001), (3, 0), (4, 999 * USD)])
def test_create_plan_rejects_bad_terms(claims, insurer, index, value):
    terms = list(TERMS)
    terms[index] = value
    with reverts("ClaimsInvalidPlan"):
        claims.createPlan(tuple(terms), {"from": insurer})


def test_fund_rejects_zero_and_unknown_plan(claims, world, insurer):
    with reverts("ClaimsZeroAmount"):
        claims.fund(world["plan"], 0, {"from": insurer})
    with reverts("ClaimsUnknownPlan", 9):
        claims.fund(9, 1, {"from": insurer})


def test_enrolment_needs_the_patients_signature(suite, claims, world, insurer, accounts):
    other = Account.create()
    now = chain[-1].timestamp
    deadline, sig = suite.claims.sign_enrolment(other, world["plan"], now, now + 1000)
    with reverts("ClaimsInvalidSignature", accounts[15]):
        claims.enrol(world["plan"], accounts[15], now, now + 1000, deadline, sig, {"from": insurer})
    tx = claims.enrol(world["plan"], other.address, now, now + 1000, deadline, sig, {"from": insurer})
    assert tx.events["PatientEnrolled"]["patient"] == other.address
    with reverts("ClaimsAlreadyEnrolled", world["plan"], other.address):
        claims.enrol(world["plan"], other.address, now, now + 1000, deadline, sig, {"from": insurer})


def test_enrolment_rejects_bad_calls(suite, claims, world, insurer, hospital):
    other = Account.create()
    now = chain[-1].timestamp
    deadline, sig = suite.claims.sign_enrolment(other, world["plan"], now, now + 1000)
    with reverts("ClaimsNotPlanInsurer", world["plan"], hospital):
        claims.enrol(world["plan"], other.address, now, now + 1000, deadline, sig, {"from": hospital})
    with reverts("ClaimsInvalidEnrolment", now + 1000, now):
        claims.enrol(world["plan"], other.address, now + 1000, now, deadline, sig, {"from": insurer})
    old = chain[-1].timestamp - 1
    with reverts("ClaimsSignatureExpired", old):
        claims.enrol(world["plan"], other.address, now, now + 1000, old, sig, {"from": insurer})


# ─── Automatic adjudication and payment ────────────────────────────────────────────────────


def test_claim_is_paid_in_the_same_transaction(claims, world, ehr, token, patient, hospital):
    before = token.balanceOf(hospital)
    tx, (claim_id, rec), _ = submit(claims, world, ehr, patient, hospital)
    # allowed 150: deductible 100, then 20 % of 50 = 10 coinsurance: the plan pays 40, the patient 110.
    c = claims.claim(claim_id)
    assert (c["status"], c["amount"], rec[PATIENT_SHARE]) == (ClaimStatus.PAID, 40 * USD, 110 * USD)
    assert token.balanceOf(hospital) - before == 40 * USD
    assert tx.events["ClaimPaid"]["amount"] == 40 * USD
    assert claims.plan(world["plan"])["pool"] == 4_960 * USD
    e = claims.enrolment(world["plan"], patient)
    assert (e["deductibleMet"], e["paidInYear"]) == (100 * USD, 40 * USD)


def test_billed_above_allowed_is_capped(claims, world, ehr, patient, hospital):
    _, (claim_id, _rec), _ = submit(claims, world, ehr, patient, hospital, billed=400 * USD)
    assert claims.claim(claim_id)["amount"] == 40 * USD  # same as billing 150: allowed amount rules


def test_claim_above_ceiling_pends_then_is_approved(claims, world, ehr, token, patient, hospital, insurer):
    tx, (claim_id, rec), _ = submit(claims, world, ehr, patient, hospital, code="70450", billed=900 * USD)
    c = claims.claim(claim_id)
    assert c["status"] == ClaimStatus.PENDED
    assert rec[MAX_PAYABLE] == 640 * USD  # 900 - 100 deductible = 800, minus 20 %
    assert "ClaimPaid" not in tx.events
    with reverts("ClaimsAmountAboveMaximum", 641 * USD, 640 * USD):
        claims.approve(rec, 641 * USD, {"from": insurer})
    before = token.balanceOf(hospital)
    claims.approve(rec, 600 * USD, {"from": insurer})
    assert claims.claim(claim_id)["status"] == ClaimStatus.PAID
    assert token.balanceOf(hospital) - before == 600 * USD
    assert claims.enrolment(world["plan"], patient)["paidInYear"] == 600 * USD


def test_deny_appeal_approve(claims, world, ehr, patient, hospital, insurer):
    _, (claim_id, rec), _ = submit(claims, world, ehr, patient, hospital, code="70450", billed=900 * USD)
    tx = claims.deny(rec, 17, {"from": insurer})
    assert tx.events["ClaimReviewed"]["reason"] == 17
    assert claims.enrolment(world["plan"], patient)["paidInYear"] == 0  # reservation released
    claims.appeal(rec, {"from": hospital})
    assert claims.claim(claim_id)["status"] == ClaimStatus.APPEALED
    claims.deny(rec, 18, {"from": insurer})
    with reverts("ClaimsAlreadyAppealed", claim_id):
        claims.appeal(rec, {"from": hospital})


def test_appeal_then_approval_pays(claims, world, ehr, patient, hospital, insurer):
    _, (claim_id, rec), _ = submit(claims, world, ehr, patient, hospital, code="70450", billed=900 * USD)
    claims.deny(rec, 1, {"from": insurer})
    claims.appeal(rec, {"from": hospital})
    claims.approve(rec, 500 * USD, {"from": insurer})
    assert claims.claim(claim_id)["status"] == ClaimStatus.PAID
    assert claims.enrolment(world["plan"], patient)["paidInYear"] == 500 * USD


def test_review_transitions_are_guarded(claims, world, ehr, patient, hospital, insurer, outsider):
    _, (paid_id, rec), _ = submit(claims, world, ehr, patient, hospital)
    with reverts("ClaimsInvalidTransition", paid_id, ClaimStatus.PAID):
        claims.approve(rec, 1, {"from": insurer})
    with reverts("ClaimsInvalidTransition", paid_id, ClaimStatus.PAID):
        claims.deny(rec, 1, {"from": insurer})
    with reverts("ClaimsInvalidTransition", paid_id, ClaimStatus.PAID):
        claims.appeal(rec, {"from": hospital})
    with reverts("ClaimsNotPlanInsurer", world["plan"], hospital):
        claims.approve(rec, 1, {"from": hospital})
    with reverts("ClaimsNotClaimParty", paid_id, outsider):
        claims.appeal(rec, {"from": outsider})
    forged = (rec[0], rec[1], rec[2], rec[3], rec[4], rec[5], 10**12, *rec[7:])  # a bigger maximum
    with reverts("ClaimsUnknownClaim", claims.claimIdOf(forged)):
        claims.approve(forged, 1, {"from": insurer})


# ─── Pool shortfall ────────────────────────────────────────────────────────────────────────


def test_pool_shortfall_waits_until_topped_up(
    suite, claims, world, ehr, token, patient, hospital, insurer, private_key
):
    plan_id = claims.createPlan(TERMS, {"from": insurer}).events["PlanCreated"]["planId"]
    now = chain[-1].timestamp
    enrol(suite, claims, insurer, plan_id, Account.from_key(private_key(patient)), now - 10, now + 1000)
    h = evidence(ehr, patient, hospital, "short")
    tx = claims.submitClaim(
        plan_id, patient, [h.as_tuple()], service("99213"), 150 * USD, NO_DRUG, {"from": hospital}
    )
    claim_id, rec = tx.events["ClaimSubmitted"]["claimId"], tuple(tx.events["ClaimSubmitted"]["record"])
    assert claims.claim(claim_id)["status"] == ClaimStatus.APPROVED  # payable, waiting for funds
    with reverts("ClaimsInsufficientPool", plan_id, 0, 40 * USD):
        claims.payOut(rec, {"from": hospital})
    token.approve(claims, 40 * USD, {"from": insurer})
    claims.fund(plan_id, 40 * USD, {"from": insurer})
    claims.payOut(rec, {"from": hospital})
    assert claims.claim(claim_id)["status"] == ClaimStatus.PAID
    with reverts("ClaimsInvalidTransition", claim_id, ClaimStatus.PAID):
        claims.payOut(rec, {"from": hospital})


# ─── Patient share ─────────────────────────────────────────────────────────────────────────


def test_patient_settles_its_share(claims, world, ehr, token, patient, hospital, outsider):
    _, (claim_id, rec), _ = submit(claims, world, ehr, patient, hospital)
    with reverts("ClaimsNotClaimParty", claim_id, outsider):
        claims.settlePatientShare(rec, {"from": outsider})
    token.approve(claims, 110 * USD, {"from": patient})
    before = token.balanceOf(hospital)
    tx = claims.settlePatientShare(rec, {"from": patient})
    assert tx.events["PatientShareSettled"]["amount"] == 110 * USD
    assert token.balanceOf(hospital) - before == 110 * USD
    with reverts("ClaimsNothingToSettle", claim_id):
        claims.settlePatientShare(rec, {"from": patient})


def test_pended_claim_share_cannot_be_settled_yet(claims, world, ehr, patient, hospital):
    _, (claim_id, rec), _ = submit(claims, world, ehr, patient, hospital, code="70450", billed=900 * USD)
    with reverts("ClaimsNothingToSettle", claim_id):
        claims.settlePatientShare(rec, {"from": patient})


# ─── Fraud and bad input ───────────────────────────────────────────────────────────────────


def test_same_evidence_is_not_paid_twice(claims, world, ehr, patient, hospital):
    _, _, h = submit(claims, world, ehr, patient, hospital)
    chain.sleep(2 * 86400)
    with reverts("ClaimsEvidenceAlreadyClaimed", h.record_id):
        claims.submitClaim(
            world["plan"], patient, [h.as_tuple()], service("99213"), 150 * USD, NO_DRUG, {"from": hospital}
        )


def test_same_service_same_day_is_not_paid_twice(claims, world, ehr, patient, hospital):
    submit(claims, world, ehr, patient, hospital, tag="a")
    commitment = COVERAGE.service("99213")[0].commitment
    day = chain[-1].timestamp // 86400
    h = evidence(ehr, patient, hospital, "b")
    with reverts("ClaimsDuplicateService", patient, commitment, day):
        claims.submitClaim(
            world["plan"], patient, [h.as_tuple()], service("99213"), 150 * USD, NO_DRUG, {"from": hospital}
        )


def test_insurer_without_consent_is_refused(claims, world, ehr, consent, patient, hospital, insurer):
    gid = consent.grantIdFor(patient, insurer, int(ScopeKind.ALL), ZERO32)
    consent.revoke(gid, {"from": patient})
    h = evidence(ehr, patient, hospital, "no-consent")
    with reverts("ClaimsNoPaymentConsent", insurer, h.record_id):
        claims.submitClaim(
            world["plan"], patient, [h.as_tuple()], service("99213"), 150 * USD, NO_DRUG, {"from": hospital}
        )


def test_failed_claim_leaves_no_partial_state(claims, world, ehr, patient, hospital):
    h = evidence(ehr, patient, hospital, "retry")
    forged = (COVERAGE.service("99213")[0].commitment, 999 * USD, COVERAGE.service("99213")[1])
    with reverts("ClaimsServiceNotCovered"):
        claims.submitClaim(
            world["plan"], patient, [h.as_tuple()], forged, 150 * USD, NO_DRUG, {"from": hospital}
        )
    tx = claims.submitClaim(
        world["plan"], patient, [h.as_tuple()], service("99213"), 150 * USD, NO_DRUG, {"from": hospital}
    )  # the same evidence is still claimable
    assert tx.events["ClaimSubmitted"]["status"] == ClaimStatus.APPROVED


def test_uncovered_service_is_refused(claims, world, ehr, patient, hospital):
    other = CoverageTable({"99999": 10 * USD}, salt=b"\1" * 32)
    s, proof = other.service("99999")
    h = evidence(ehr, patient, hospital, "uncovered")
    with reverts("ClaimsServiceNotCovered", s.commitment):
        claims.submitClaim(
            world["plan"],
            patient,
            [h.as_tuple()],
            (s.commitment, s.allowed_amount, proof),
            10 * USD,
            NO_DRUG,
            {"from": hospital},
        )


def test_evidence_must_be_this_patients_from_this_provider(
    claims, world, ehr, consent, patient, hospital, hospital2, accounts
):
    stranger = accounts[15]
    consent.grant((stranger, hospital, int(ScopeKind.ALL), ZERO32, 3, 1, 0, NO_END), {"from": stranger})
    theirs = evidence(ehr, stranger, hospital, "stranger")
    with reverts("ClaimsInvalidEvidence", theirs.record_id):
        claims.submitClaim(
            world["plan"], patient, [theirs.as_tuple()], service("99213"), 1, NO_DRUG, {"from": hospital}
        )
    mine = evidence(ehr, patient, hospital, "mine")
    with reverts("ClaimsInvalidEvidence", mine.record_id):
        claims.submitClaim(
            world["plan"], patient, [mine.as_tuple()], service("99213"), 1, NO_DRUG, {"from": hospital2}
        )
    ghost = RecordHeader(patient.address, hospital.address, b"\3" * 32, category_code("Encounter"))
    with reverts("ClaimsInvalidEvidence", ghost.record_id):
        claims.submitClaim(
            world["plan"], patient, [ghost.as_tuple()], service("99213"), 1, NO_DRUG, {"from": hospital}
        )


def test_bad_claim_input(claims, world, ehr, patient, hospital, outsider, accounts):
    h = evidence(ehr, patient, hospital, "bad")
    with reverts("ClaimsNotProvider", outsider):
        claims.submitClaim(
            world["plan"], patient, [h.as_tuple()], service("99213"), 1, NO_DRUG, {"from": outsider}
        )
    with reverts("ClaimsUnknownPlan", 7):
        claims.submitClaim(7, patient, [h.as_tuple()], service("99213"), 1, NO_DRUG, {"from": hospital})
    with reverts("ClaimsNotEnrolled", world["plan"], accounts[15]):
        claims.submitClaim(
            world["plan"], accounts[15], [h.as_tuple()], service("99213"), 1, NO_DRUG, {"from": hospital}
        )
    with reverts("ClaimsZeroAmount"):
        claims.submitClaim(
            world["plan"], patient, [h.as_tuple()], service("99213"), 0, NO_DRUG, {"from": hospital}
        )
    with reverts("ClaimsNoEvidence"):
        claims.submitClaim(world["plan"], patient, [], service("99213"), 1, NO_DRUG, {"from": hospital})


def test_expired_coverage_is_refused(claims, world, ehr, patient, hospital):
    h = evidence(ehr, patient, hospital, "late")
    end = claims.enrolment(world["plan"], patient)["end"]
    chain.sleep(366 * 86400)
    chain.mine()
    with reverts("ClaimsCoverageExpired", world["plan"], patient, end):
        claims.submitClaim(
            world["plan"], patient, [h.as_tuple()], service("99213"), 1, NO_DRUG, {"from": hospital}
        )


def test_annual_limit_caps_payouts(claims, world, ehr, patient, hospital, insurer):
    paid = 0
    for i in range(4):  # 4 x 640 payable would exceed the 2,000 annual limit
        chain.sleep(86400)
        _, (claim_id, rec), _ = submit(
            claims, world, ehr, patient, hospital, code="70450", billed=900 * USD, tag=f"y{i}"
        )
        c = claims.claim(claim_id)
        if rec[MAX_PAYABLE] and c["status"] == ClaimStatus.PENDED:
            claims.approve(rec, rec[MAX_PAYABLE], {"from": insurer})
        paid += claims.claim(claim_id)["amount"]
    assert paid == 2000 * USD
    assert claims.enrolment(world["plan"], patient)["paidInYear"] == 2000 * USD


# ─── Drug claims ───────────────────────────────────────────────────────────────────────────


@pytest.fixture
def dispensed(drugs, manufacturer, hospital, patient):
    gtin = 9506000134352
    drugs.registerProduct(gtin, {"from": manufacturer})
    now = chain[-1].timestamp
    batch = drugs.commission(
        gtin, b"RX-1".ljust(20, b"\0"), now, now + 10**7, 50, b"\1" * 32, ZERO32, {"from": manufacturer}
    ).events["BatchCommissioned"]["batchId"]
    tx = drugs.ship(batch, hospital, 10, {"from": manufacturer})
    r = tx.events["Shipped"]["ref"]
    drugs.receiveShipment(
        (r["batchId"], r["from"], r["to"], r["quantity"], r["nonce"], r["shippedAt"]), {"from": hospital}
    )
    salt = b"\x77" * 32
    tx = drugs.dispense(batch, 2, patient_ref(patient.address, salt), {"from": hospital})
    return (batch, salt, 2, 10, tx.timestamp)


def test_drug_claim_matches_a_dispense(claims, world, ehr, patient, hospital, dispensed):
    _, (claim_id, _rec), _ = submit(
        claims, world, ehr, patient, hospital, code="J3490", billed=40 * USD, drug=dispensed
    )
    assert claims.claim(claim_id)["status"] == ClaimStatus.PAID
    chain.sleep(86400)  # past the same-day duplicate rule: it is the dispense that is already claimed
    with reverts("ClaimsInvalidDispense"):
        submit(
            claims, world, ehr, patient, hospital, code="J3490", billed=40 * USD, tag="again", drug=dispensed
        )


def test_drug_claim_without_dispense_is_refused(claims, world, ehr, patient, hospital, dispensed):
    wrong_salt = (dispensed[0], b"\x78" * 32, *dispensed[2:])
    with reverts("ClaimsInvalidDispense"):
        submit(claims, world, ehr, patient, hospital, code="J3490", billed=40 * USD, drug=wrong_salt)


def test_constructor_rejects_zero_dependencies(regulator, registry, consent, ehr, drugs, token):
    with reverts("ClaimsZeroAddress"):
        ClaimsProcessor.deploy(registry, consent, ehr, drugs, ZERO, {"from": regulator})


def test_deny_by_others_reverts(claims, world, ehr, patient, hospital, outsider):
    _, (claim_id, rec), _ = submit(claims, world, ehr, patient, hospital, code="70450", billed=900 * USD)
    for account in (hospital, outsider):
        with reverts("ClaimsNotPlanInsurer", world["plan"], account):
            claims.deny(rec, 1, {"from": account})
    assert claims.claim(claim_id)["status"] == ClaimStatus.PENDED

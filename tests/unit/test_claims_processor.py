"""ClaimsProcessor: plans, enrolment and renewal, adjudication, automatic payment, review, appeal,
year totals, pool reserve and withdrawal, drug and pharmacy claims, encounters across amendments."""

from __future__ import annotations

import hashlib

import pytest
from brownie import ClaimsProcessor, chain
from eth_account import Account

from medchain.claims import NO_DRUG, CoverageTable, DispenseRef, patient_ref
from medchain.drug import lot_bytes
from medchain.ehr import RecordHeader
from medchain.store import cid_bytes, cid_of
from medchain.types import NO_END, Actions, ClaimStatus, GovernanceAction, Purpose, ScopeKind, category_code
from tests.helpers import reverts

ZERO = "0x0000000000000000000000000000000000000000"
ZERO32 = b"\0" * 32
USD = 10**6
YEAR = 365 * 86400
GTIN_A = 9506000134352  # valid check digits
GTIN_B = 4006381333931
COVERAGE = CoverageTable(
    {
        "99213": 150 * USD,
        "70450": 900 * USD,
        ("J3490", GTIN_A): 40 * USD,
        ("J3490", GTIN_B): 60 * USD,
        ("J9035", GTIN_B): 900 * USD,
    },
    salt=b"\x42" * 32,
)
TERMS = (COVERAGE.root, 100 * USD, 2000, 1000 * USD, 2000 * USD, 500 * USD)  # ded, 20 %, limits, auto-pay
CID = cid_bytes(cid_of(b"ciphertext"))
ENCOUNTER = category_code("Encounter")


def service(code, gtin=0):
    s, proof = COVERAGE.service(code, gtin)
    return (s.commitment, s.allowed_amount, s.gtin, proof)


def give(consent, patient, grantee, actions, purpose, kind=ScopeKind.ALL, value=ZERO32):
    consent.grant(
        (patient, grantee, int(kind), value, int(actions), 1 << int(purpose), 0, NO_END), {"from": patient}
    )


@pytest.fixture
def world(suite, consent, ehr, claims, token, regulator, hospital, insurer, patient, private_key):
    give(consent, patient, hospital, Actions.READ | Actions.APPEND, Purpose.TREAT)
    give(consent, patient, insurer, Actions.READ, Purpose.HPAYMT)
    plan_id = claims.createPlan(TERMS, {"from": insurer}).events["PlanCreated"]["planId"]
    token.mint(insurer, 100_000 * USD, {"from": regulator})
    token.mint(patient, 10_000 * USD, {"from": regulator})
    token.approve(claims, 50_000 * USD, {"from": insurer})
    claims.fund(plan_id, 5_000 * USD, {"from": insurer})
    now = chain[-1].timestamp
    enrol(
        suite,
        claims,
        insurer,
        plan_id,
        Account.from_key(private_key(patient)),
        now - 86400,
        now + YEAR,
    )
    return {"plan": plan_id, "records": 0}


def enrol(suite, claims, insurer, plan_id, patient_account, start, end):
    deadline, sig = suite.claims.sign_enrolment(patient_account, plan_id, start, end)
    return claims.enrol(plan_id, patient_account.address, start, end, deadline, sig, {"from": insurer})


def evidence(ehr, patient, hospital, tag):
    h = RecordHeader(patient.address, hospital.address, hashlib.sha256(tag.encode()).digest(), ENCOUNTER)
    ehr.anchor(h.as_tuple(), CID, {"from": hospital})
    return h


def amend(ehr, hospital, previous, tag):
    h = RecordHeader(
        previous.patient,
        previous.custodian,
        hashlib.sha256(tag.encode()).digest(),
        ENCOUNTER,
        previous.record_id,
    )
    ehr.amend(previous.as_tuple(), h.as_tuple(), CID, {"from": hospital})
    return h


def submit(
    claims, world, ehr, patient, hospital, code="99213", billed=150 * USD, tag="visit-1", drug=NO_DRUG, gtin=0
):
    h = evidence(ehr, patient, hospital, tag)
    tx = claims.submitClaim(
        world["plan"], patient, [h.as_tuple()], service(code, gtin), billed, drug, {"from": hospital}
    )
    event = tx.events["ClaimSubmitted"]
    return tx, (event["claimId"], tuple(event["record"])), h


def submit_with(
    claims, world, provider, patient, headers, code="99213", billed=150 * USD, drug=NO_DRUG, gtin=0
):
    """Submits with the given evidence headers (amended ones followed by their earlier versions)."""
    tx = claims.submitClaim(
        world["plan"],
        patient,
        [h.as_tuple() for h in headers],
        service(code, gtin),
        billed,
        drug,
        {"from": provider},
    )
    event = tx.events["ClaimSubmitted"]
    return tx, (event["claimId"], tuple(event["record"]))


def govern(registry, regulator, accounts, member, action):
    """Passes a governance change (suspension, removal) on ``member`` by the other founders' votes."""
    pid = registry.proposeChange(member, action, 0, {"from": regulator}).events["ProposalOpened"][
        "proposalId"
    ]
    for voter in accounts[1:8]:
        if voter != member and registry.proposal(pid)["status"] == 1:
            registry.vote(pid, True, {"from": voter})
    assert registry.proposal(pid)["status"] == 2  # executed


MAX_PAYABLE, PATIENT_SHARE, DEDUCTIBLE_PART, RECORD_YEAR = 6, 7, 8, 9  # positions in the claim record


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
    with reverts("ClaimsAlreadyEnrolled", world["plan"], other.address, now + 1000):
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
    with reverts("ClaimsEvidenceAlreadyClaimed", h.record_id, h.record_id):
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
    forged = (COVERAGE.service("99213")[0].commitment, 999 * USD, 0, COVERAGE.service("99213")[1])
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
            (s.commitment, s.allowed_amount, s.gtin, proof),
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


# ─── Drug claims: a drug service is bound to a dispense of its product ─────────────────────


@pytest.fixture
def products(drugs, manufacturer):
    for gtin in (GTIN_A, GTIN_B):
        drugs.registerProduct(gtin, {"from": manufacturer})
    return (GTIN_A, GTIN_B)


def stock(drugs, manufacturer, holder, gtin, lot, units=10):
    """Commissions ``lot`` of ``gtin`` and moves ``units`` to ``holder``; returns the batch id."""
    now = chain[-1].timestamp
    batch = drugs.commission(
        gtin, lot_bytes(lot), now - 10, now + 10**7, 50, b"\1" * 32, ZERO32, {"from": manufacturer}
    ).events["BatchCommissioned"]["batchId"]
    r = drugs.ship(batch, holder, units, {"from": manufacturer}).events["Shipped"]["ref"]
    drugs.receiveShipment(
        (r["batchId"], r["from"], r["to"], r["quantity"], r["nonce"], r["shippedAt"]), {"from": holder}
    )
    return batch


def dispense(drugs, dispenser, batch, patient, lot, quantity=2, salt=b"\x77" * 32):
    """Dispenses to the patient's salted reference; returns what a claim needs to prove it."""
    nonce = drugs.holding(batch, dispenser)["available"]
    tx = drugs.dispense(batch, quantity, patient_ref(str(patient), salt), {"from": dispenser})
    return DispenseRef(lot_bytes(lot), salt, quantity, nonce, tx.timestamp)


@pytest.fixture
def hospital_dispense(drugs, products, manufacturer, hospital, patient):
    batch = stock(drugs, manufacturer, hospital, GTIN_A, "RX-1")
    return dispense(drugs, hospital, batch, patient, "RX-1")


def test_drug_claim_matches_a_dispense(claims, world, ehr, patient, hospital, hospital_dispense):
    d = hospital_dispense
    _, (claim_id, _rec), _ = submit(
        claims, world, ehr, patient, hospital, code="J3490", gtin=GTIN_A, billed=40 * USD, drug=d.as_tuple()
    )
    assert claims.claim(claim_id)["status"] == ClaimStatus.PAID
    assert claims.isEvidenceUsed(d.dispense_id(GTIN_A, hospital.address, patient.address))


def test_dispense_is_claimed_once(claims, world, ehr, patient, hospital, hospital_dispense):
    d = hospital_dispense
    submit(
        claims, world, ehr, patient, hospital, code="J3490", gtin=GTIN_A, billed=40 * USD, drug=d.as_tuple()
    )
    # Checked before the same-day duplicate rule: the refusal names the dispense.
    with reverts("ClaimsDispenseAlreadyClaimed", d.dispense_id(GTIN_A, hospital.address, patient.address)):
        submit(claims, world, ehr, patient, hospital, "J3490", 40 * USD, "again", d.as_tuple(), GTIN_A)


def test_drug_service_cannot_be_claimed_without_a_dispense(claims, world, ehr, patient, hospital):
    with reverts("ClaimsDispenseRequired", GTIN_A):
        submit(claims, world, ehr, patient, hospital, code="J3490", gtin=GTIN_A, billed=40 * USD)


def test_dispense_of_another_product_cannot_back_a_drug_service(
    claims, world, ehr, drugs, products, manufacturer, patient, hospital
):
    batch_b = stock(drugs, manufacturer, hospital, GTIN_B, "RX-B")
    d = dispense(drugs, hospital, batch_b, patient, "RX-B")
    # The GTIN-A service with GTIN-B's lot: the contract looks for a dispense of batch (GTIN_A, RX-B).
    with reverts("ClaimsInvalidDispense", d.dispense_id(GTIN_A, hospital.address, patient.address)):
        submit(
            claims,
            world,
            ehr,
            patient,
            hospital,
            code="J3490",
            gtin=GTIN_A,
            billed=40 * USD,
            drug=d.as_tuple(),
        )
    # The same dispense backs the service of its own product.
    _, (claim_id, _), _ = submit(
        claims, world, ehr, patient, hospital, "J3490", 60 * USD, "b", d.as_tuple(), GTIN_B
    )
    assert claims.claim(claim_id)["status"] == ClaimStatus.PAID


def test_drug_service_leaf_commits_to_its_gtin(
    claims, world, ehr, patient, hospital, drugs, products, manufacturer
):
    batch_b = stock(drugs, manufacturer, hospital, GTIN_B, "RX-B")
    d = dispense(drugs, hospital, batch_b, patient, "RX-B")
    s_a, proof_a = COVERAGE.service("J3490", GTIN_A)
    h = evidence(ehr, patient, hospital, "relabel")
    with reverts("ClaimsServiceNotCovered", s_a.commitment):  # GTIN-A's entry relabelled as GTIN B
        claims.submitClaim(
            world["plan"],
            patient,
            [h.as_tuple()],
            (s_a.commitment, s_a.allowed_amount, GTIN_B, proof_a),
            40 * USD,
            d.as_tuple(),
            {"from": hospital},
        )


def test_dispense_to_another_patient_cannot_back_a_claim(
    claims, world, ehr, drugs, products, manufacturer, patient, hospital, accounts
):
    batch = stock(drugs, manufacturer, hospital, GTIN_A, "RX-1")
    theirs = dispense(drugs, hospital, batch, accounts[15], "RX-1")
    with reverts("ClaimsInvalidDispense", theirs.dispense_id(GTIN_A, hospital.address, patient.address)):
        submit(
            claims,
            world,
            ehr,
            patient,
            hospital,
            code="J3490",
            gtin=GTIN_A,
            billed=40 * USD,
            drug=theirs.as_tuple(),
        )


def test_service_that_is_not_a_drug_takes_no_dispense(
    claims, world, ehr, patient, hospital, hospital_dispense
):
    with reverts("ClaimsUnexpectedDispense"):
        submit(claims, world, ehr, patient, hospital, drug=hospital_dispense.as_tuple())


def test_dispense_before_coverage_cannot_be_claimed(
    suite, claims, world, ehr, patient, hospital, insurer, hospital_dispense, private_key
):
    plan = claims.createPlan(TERMS, {"from": insurer}).events["PlanCreated"]["planId"]
    claims.fund(plan, 1_000 * USD, {"from": insurer})
    start = chain[-1].timestamp + 100
    enrol(suite, claims, insurer, plan, Account.from_key(private_key(patient)), start, start + YEAR)
    chain.sleep(200)
    h = evidence(ehr, patient, hospital, "after-start")
    d = hospital_dispense
    with reverts(
        "ClaimsServiceBeforeCoverage",
        d.dispense_id(GTIN_A, hospital.address, patient.address),
        d.timestamp,
        start,
    ):
        claims.submitClaim(
            plan,
            patient,
            [h.as_tuple()],
            service("J3490", GTIN_A),
            40 * USD,
            d.as_tuple(),
            {"from": hospital},
        )


def test_billing_a_dispense_needs_the_insurers_consent_for_dispenses(
    claims, world, ehr, consent, patient, hospital, insurer, hospital_dispense
):
    consent.revoke(consent.grantIdFor(patient, insurer, int(ScopeKind.ALL), ZERO32), {"from": patient})
    give(consent, patient, insurer, Actions.READ, Purpose.HPAYMT, ScopeKind.CATEGORY, ENCOUNTER)
    d = hospital_dispense
    dispense_id = d.dispense_id(GTIN_A, hospital.address, patient.address)
    with reverts(
        "ClaimsNoPaymentConsent", insurer, dispense_id
    ):  # the Encounter evidence passes, not the dispense
        submit(
            claims,
            world,
            ehr,
            patient,
            hospital,
            code="J3490",
            gtin=GTIN_A,
            billed=40 * USD,
            drug=d.as_tuple(),
        )
    give(
        consent,
        patient,
        insurer,
        Actions.READ,
        Purpose.HPAYMT,
        ScopeKind.CATEGORY,
        category_code("MedicationDispense"),
    )
    submit(claims, world, ehr, patient, hospital, "J3490", 40 * USD, "ok", d.as_tuple(), GTIN_A)
    assert claims.isEvidenceUsed(dispense_id)


# ─── Pharmacy claims: the dispense is the evidence ─────────────────────────────────────────


@pytest.fixture
def pharmacy_stock(drugs, consent, products, manufacturer, pharmacy, patient):
    """The patient's pharmacy: the patient's treatment relationship with it, and its stock."""
    give(
        consent,
        patient,
        pharmacy,
        Actions.APPEND,
        Purpose.TREAT,
        ScopeKind.CATEGORY,
        category_code("MedicationDispense"),
    )
    return {
        GTIN_A: stock(drugs, manufacturer, pharmacy, GTIN_A, "PH-A"),
        GTIN_B: stock(drugs, manufacturer, pharmacy, GTIN_B, "PH-B"),
    }


def pharmacy_claim(claims, world, pharmacy, patient, d, code="J3490", gtin=GTIN_A, billed=40 * USD):
    tx = claims.submitClaim(
        world["plan"], patient, [], service(code, gtin), billed, d.as_tuple(), {"from": pharmacy}
    )
    event = tx.events["ClaimSubmitted"]
    return tx, (event["claimId"], tuple(event["record"]))


def test_pharmacy_claims_its_dispense_without_ehr_evidence(
    claims, world, drugs, token, patient, pharmacy, pharmacy_stock
):
    d = dispense(drugs, pharmacy, pharmacy_stock[GTIN_A], patient, "PH-A")
    before = token.balanceOf(pharmacy)
    _tx, (claim_id, rec) = pharmacy_claim(claims, world, pharmacy, patient, d)
    dispense_id = d.dispense_id(GTIN_A, pharmacy.address, patient.address)
    assert rec[3] == "0x" + dispense_id.hex()  # the record's evidence is the dispense
    # allowed 40, all deductible: the plan pays nothing yet, the patient 40.
    assert (claims.claim(claim_id)["status"], rec[MAX_PAYABLE], rec[PATIENT_SHARE]) == (
        ClaimStatus.PAID,
        0,
        40 * USD,
    )
    assert token.balanceOf(pharmacy) == before
    assert claims.enrolment(world["plan"], patient)["deductibleMet"] == 40 * USD
    assert claims.isEvidenceUsed(dispense_id)


def test_pharmacy_claim_above_the_ceiling_pends_for_review(
    claims, world, drugs, token, patient, pharmacy, insurer, pharmacy_stock
):
    d = dispense(drugs, pharmacy, pharmacy_stock[GTIN_B], patient, "PH-B", quantity=1)
    _, (claim_id, rec) = pharmacy_claim(claims, world, pharmacy, patient, d, "J9035", GTIN_B, 900 * USD)
    assert claims.claim(claim_id)["status"] == ClaimStatus.PENDED
    before = token.balanceOf(pharmacy)
    claims.approve(rec, rec[MAX_PAYABLE], {"from": insurer})
    assert token.balanceOf(pharmacy) - before == rec[MAX_PAYABLE] == 640 * USD


def test_pharmacy_cannot_claim_another_dispensers_dispense(
    claims, world, ehr, drugs, patient, pharmacy, hospital, hospital_dispense, pharmacy_stock
):
    theirs = hospital_dispense  # RX-1 of GTIN A, dispensed by the hospital
    with reverts("ClaimsInvalidDispense", theirs.dispense_id(GTIN_A, pharmacy.address, patient.address)):
        pharmacy_claim(claims, world, pharmacy, patient, theirs)
    mine = dispense(drugs, pharmacy, pharmacy_stock[GTIN_A], patient, "PH-A")
    h = evidence(ehr, patient, hospital, "hospital-bills-pharmacy")
    with reverts("ClaimsInvalidDispense", mine.dispense_id(GTIN_A, hospital.address, patient.address)):
        claims.submitClaim(
            world["plan"],
            patient,
            [h.as_tuple()],
            service("J3490", GTIN_A),
            40 * USD,
            mine.as_tuple(),
            {"from": hospital},
        )


def test_pharmacy_claims_a_dispense_once(claims, world, drugs, patient, pharmacy, pharmacy_stock):
    d = dispense(drugs, pharmacy, pharmacy_stock[GTIN_A], patient, "PH-A")
    pharmacy_claim(claims, world, pharmacy, patient, d)
    chain.sleep(86400)
    with reverts("ClaimsDispenseAlreadyClaimed", d.dispense_id(GTIN_A, pharmacy.address, patient.address)):
        pharmacy_claim(claims, world, pharmacy, patient, d)


def test_same_product_twice_a_day_is_a_duplicate_for_pharmacies(
    claims, world, drugs, patient, pharmacy, pharmacy_stock
):
    first = dispense(drugs, pharmacy, pharmacy_stock[GTIN_A], patient, "PH-A", quantity=1)
    second = dispense(drugs, pharmacy, pharmacy_stock[GTIN_A], patient, "PH-A", quantity=1)
    pharmacy_claim(claims, world, pharmacy, patient, first)
    s, _ = COVERAGE.service("J3490", GTIN_A)
    with reverts("ClaimsDuplicateService", patient, s.commitment, chain[-1].timestamp // 86400):
        pharmacy_claim(claims, world, pharmacy, patient, second)


def test_pharmacy_claim_needs_the_insurers_consent_for_dispenses(
    claims, world, consent, drugs, patient, pharmacy, insurer, pharmacy_stock
):
    consent.revoke(consent.grantIdFor(patient, insurer, int(ScopeKind.ALL), ZERO32), {"from": patient})
    give(consent, patient, insurer, Actions.READ, Purpose.HPAYMT, ScopeKind.CATEGORY, ENCOUNTER)
    d = dispense(drugs, pharmacy, pharmacy_stock[GTIN_A], patient, "PH-A")
    dispense_id = d.dispense_id(GTIN_A, pharmacy.address, patient.address)
    with reverts("ClaimsNoPaymentConsent", insurer, dispense_id):
        pharmacy_claim(claims, world, pharmacy, patient, d)
    # A consent scoped to this one dispense (record scope on its id) is enough.
    give(consent, patient, insurer, Actions.READ, Purpose.HPAYMT, ScopeKind.RECORD, dispense_id)
    pharmacy_claim(claims, world, pharmacy, patient, d)


def test_pharmacy_cannot_claim_a_service_that_is_not_a_drug(claims, world, patient, pharmacy):
    with reverts("ClaimsNoEvidence"):
        claims.submitClaim(
            world["plan"], patient, [], service("99213"), 150 * USD, NO_DRUG, {"from": pharmacy}
        )


def test_pharmacy_claim_for_a_patient_not_enrolled_reverts(
    claims, world, drugs, pharmacy, pharmacy_stock, accounts
):
    stranger = accounts[15]
    d = dispense(drugs, pharmacy, pharmacy_stock[GTIN_A], stranger, "PH-A")
    with reverts("ClaimsNotEnrolled", world["plan"], stranger):
        pharmacy_claim(claims, world, pharmacy, stranger, d)


def test_suspended_pharmacy_cannot_claim(
    claims, world, drugs, registry, regulator, patient, pharmacy, pharmacy_stock, accounts
):
    d = dispense(drugs, pharmacy, pharmacy_stock[GTIN_A], patient, "PH-A")
    govern(registry, regulator, accounts, pharmacy, GovernanceAction.SUSPEND)
    with reverts("ClaimsNotProvider", pharmacy):
        pharmacy_claim(claims, world, pharmacy, patient, d)


# ─── Encounters: an amended record is the same encounter ───────────────────────────────────


def test_amendment_of_a_claimed_record_is_the_same_encounter(claims, world, ehr, patient, hospital):
    _, _, original = submit(claims, world, ehr, patient, hospital, tag="enc")
    amended = amend(ehr, hospital, original, "enc v2")
    chain.sleep(86400)
    with reverts("ClaimsMissingVersion", amended.record_id, original.record_id):  # not fresh evidence
        submit_with(claims, world, hospital, patient, [amended])
    with reverts("ClaimsEvidenceAlreadyClaimed", amended.record_id, original.record_id):
        submit_with(claims, world, hospital, patient, [amended, original])


def test_original_of_a_claimed_amendment_is_the_same_encounter(claims, world, ehr, patient, hospital):
    original = evidence(ehr, patient, hospital, "enc")
    amended = amend(ehr, hospital, original, "enc v2")
    submit_with(claims, world, hospital, patient, [amended, original])
    assert claims.isEvidenceUsed(original.record_id)
    chain.sleep(86400)
    with reverts("ClaimsEvidenceAlreadyClaimed", original.record_id, original.record_id):
        submit_with(claims, world, hospital, patient, [original])


def test_chain_of_two_amendments_is_one_encounter(claims, world, ehr, patient, hospital):
    v1 = evidence(ehr, patient, hospital, "enc")
    v2 = amend(ehr, hospital, v1, "enc v2")
    v3 = amend(ehr, hospital, v2, "enc v3")
    _, (_, rec) = submit_with(claims, world, hospital, patient, [v3, v2, v1])
    assert rec[3] == "0x" + v3.record_id.hex()  # the claim names the version it billed
    chain.sleep(86400)
    for headers, billed in (([v2, v1], v2), ([v1], v1), ([v3, v2, v1], v3)):
        with reverts("ClaimsEvidenceAlreadyClaimed", billed.record_id, v1.record_id):
            submit_with(claims, world, hospital, patient, headers)


def test_amended_evidence_needs_all_its_earlier_versions(claims, world, ehr, patient, hospital):
    v1 = evidence(ehr, patient, hospital, "enc")
    v2 = amend(ehr, hospital, v1, "enc v2")
    v3 = amend(ehr, hospital, v2, "enc v3")
    forged = RecordHeader(
        patient.address, hospital.address, b"\5" * 32, ENCOUNTER
    )  # claims to be v2's origin
    for headers, at, missing in (
        ([v3], v3, v2),
        ([v3, v2], v2, v1),
        ([v3, v1], v3, v2),
        ([v2, forged], v2, v1),
    ):
        with reverts("ClaimsMissingVersion", at.record_id, missing.record_id):
            submit_with(claims, world, hospital, patient, headers)
    assert not claims.isEvidenceUsed(v1.record_id)


def test_encounter_of_names_the_first_version(claims, world, ehr, patient, hospital):
    v1 = evidence(ehr, patient, hospital, "enc")
    v2 = amend(ehr, hospital, v1, "enc v2")
    v3 = amend(ehr, hospital, v2, "enc v3")
    for versions in ([v1], [v2, v1], [v3, v2, v1]):
        assert claims.encounterOf([h.as_tuple() for h in versions]) == "0x" + v1.record_id.hex()
    with reverts("ClaimsMissingVersion", v3.record_id, v2.record_id):
        claims.encounterOf([v3.as_tuple(), v1.as_tuple()])


def test_two_encounters_in_one_claim_are_both_used(claims, world, ehr, patient, hospital):
    a = evidence(ehr, patient, hospital, "a")
    b1 = evidence(ehr, patient, hospital, "b")
    b2 = amend(ehr, hospital, b1, "b v2")
    submit_with(claims, world, hospital, patient, [a, b2, b1])
    assert claims.isEvidenceUsed(a.record_id)
    assert claims.isEvidenceUsed(b1.record_id)


# ─── Year totals: deny, appeal and approve stay exact ──────────────────────────────────────


def test_approval_on_appeal_takes_the_deductible_again(claims, world, ehr, patient, hospital, insurer):
    _, (claim_id, rec), _ = submit(claims, world, ehr, patient, hospital, code="70450", billed=900 * USD)
    assert (rec[DEDUCTIBLE_PART], rec[MAX_PAYABLE]) == (100 * USD, 640 * USD)
    claims.deny(rec, 1, {"from": insurer})
    e = claims.enrolment(world["plan"], patient)
    assert (e["deductibleMet"], e["paidInYear"]) == (0, 0)
    tx = claims.appeal(rec, {"from": hospital})
    assert tx.events["ClaimAppealed"]["maxPayable"] == 640 * USD
    claims.approve(rec, 640 * USD, {"from": insurer})
    e = claims.enrolment(world["plan"], patient)
    assert (e["deductibleMet"], e["paidInYear"]) == (100 * USD, 640 * USD)
    c = claims.claim(claim_id)
    assert (c["status"], c["deductiblePart"], c["patientShare"]) == (ClaimStatus.PAID, 100 * USD, 260 * USD)


def test_appeal_readjudicates_after_the_deductible_was_met_meanwhile(
    claims, world, ehr, token, patient, hospital, insurer
):
    _, (claim_id, rec), _ = submit(
        claims, world, ehr, patient, hospital, code="70450", billed=900 * USD, tag="a"
    )
    claims.deny(rec, 1, {"from": insurer})
    chain.sleep(86400)
    submit(claims, world, ehr, patient, hospital, tag="b")  # this visit meets the deductible: plan pays 40
    tx = claims.appeal(rec, {"from": hospital})
    appealed = tx.events["ClaimAppealed"]
    # No deductible left: 900 less 20 % coinsurance = 720 for the plan, 180 for the patient.
    assert (appealed["maxPayable"], appealed["patientShare"], appealed["deductiblePart"]) == (
        720 * USD,
        180 * USD,
        0,
    )
    e = claims.enrolment(world["plan"], patient)
    assert (e["deductibleMet"], e["paidInYear"]) == (100 * USD, 760 * USD)
    with reverts("ClaimsAmountAboveMaximum", 721 * USD, 720 * USD):
        claims.approve(rec, 721 * USD, {"from": insurer})
    claims.approve(rec, 720 * USD, {"from": insurer})
    token.approve(claims, 180 * USD, {"from": patient})
    assert (
        claims.settlePatientShare(rec, {"from": patient}).events["PatientShareSettled"]["amount"] == 180 * USD
    )
    assert claims.claim(claim_id)["shareSettled"]


def to_year(claims, world, patient, year, offset=3600):
    origin = claims.enrolment(world["plan"], patient)["yearOrigin"]
    chain.sleep(origin + year * YEAR + offset - chain[-1].timestamp)
    chain.mine()


def test_deny_appeal_approve_across_a_year_boundary_keeps_the_annual_limit(
    claims, world, ehr, patient, hospital, insurer
):
    _, (claim_id, rec), _ = submit(
        claims, world, ehr, patient, hospital, code="70450", billed=900 * USD, tag="a"
    )
    claims.deny(rec, 1, {"from": insurer})
    year0_paid = 0
    for i in range(3):  # the denial freed room that these claims now use, up to the 2,000 limit
        chain.sleep(86400)
        _, (other_id, other), _ = submit(
            claims, world, ehr, patient, hospital, code="70450", billed=900 * USD, tag=f"b{i}"
        )
        if claims.claim(other_id)["status"] == ClaimStatus.PENDED:
            claims.approve(other, other[MAX_PAYABLE], {"from": insurer})
        year0_paid += claims.claim(other_id)["amount"]
    assert year0_paid == 2000 * USD
    to_year(claims, world, patient, 1)
    submit(claims, world, ehr, patient, hospital, tag="year-1")  # year 1 starts its own totals
    e = claims.enrolment(world["plan"], patient)
    assert (e["year"], e["deductibleMet"], e["paidInYear"]) == (1, 100 * USD, 40 * USD)
    tx = claims.appeal(rec, {"from": hospital})
    assert tx.events["ClaimAppealed"]["maxPayable"] == 0  # year 0's limit is used up
    with reverts("ClaimsAmountAboveMaximum", 1, 0):
        claims.approve(rec, 1, {"from": insurer})
    claims.approve(rec, 0, {"from": insurer})
    assert claims.yearUsage(world["plan"], patient, 0) == (100 * USD, 2000 * USD)
    assert claims.yearUsage(world["plan"], patient, 1) == (100 * USD, 40 * USD)
    c = claims.claim(claim_id)
    assert (c["status"], c["amount"], c["patientShare"]) == (ClaimStatus.PAID, 0, 900 * USD)


def test_appeal_in_a_later_year_takes_from_the_claims_own_year(
    claims, world, ehr, patient, hospital, insurer
):
    _, (_claim_id, rec), _ = submit(
        claims, world, ehr, patient, hospital, code="70450", billed=900 * USD, tag="a"
    )
    claims.deny(rec, 1, {"from": insurer})
    to_year(claims, world, patient, 1)
    submit(claims, world, ehr, patient, hospital, tag="year-1")
    claims.appeal(rec, {"from": hospital})
    claims.approve(rec, 600 * USD, {"from": insurer})
    assert claims.yearUsage(world["plan"], patient, 0) == (100 * USD, 600 * USD)
    assert claims.yearUsage(world["plan"], patient, 1) == (100 * USD, 40 * USD)


def test_deny_of_a_past_years_claim_gives_back_to_that_year(claims, world, ehr, patient, hospital, insurer):
    _, (_, rec), _ = submit(claims, world, ehr, patient, hospital, code="70450", billed=900 * USD, tag="a")
    to_year(claims, world, patient, 1)
    submit(claims, world, ehr, patient, hospital, tag="year-1")
    assert claims.yearUsage(world["plan"], patient, 0) == (100 * USD, 640 * USD)
    claims.deny(rec, 1, {"from": insurer})
    assert claims.yearUsage(world["plan"], patient, 0) == (0, 0)
    assert claims.yearUsage(world["plan"], patient, 1) == (100 * USD, 40 * USD)
    assert claims.yearUsage(world["plan"], patient, 2) == (0, 0)


# ─── Renewal ───────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def short_plan(suite, claims, world, insurer, patient, private_key):
    """A second plan whose enrolment of the patient lasts ten days."""
    plan = claims.createPlan(TERMS, {"from": insurer}).events["PlanCreated"]["planId"]
    claims.fund(plan, 5_000 * USD, {"from": insurer})
    now = chain[-1].timestamp
    enrol(suite, claims, insurer, plan, Account.from_key(private_key(patient)), now - 10, now + 10 * 86400)
    return {"plan": plan, "patient": Account.from_key(private_key(patient))}


def lapse(claims, plan, patient):
    end = claims.enrolment(plan, patient)["end"]
    chain.sleep(end + 3600 - chain[-1].timestamp)
    chain.mine()
    return end


def test_lapsed_enrolment_can_be_renewed(suite, claims, ehr, patient, hospital, insurer, short_plan):
    plan = short_plan["plan"]
    world = {"plan": plan}
    submit(claims, world, ehr, patient, hospital, tag="before")  # meets the deductible
    end = lapse(claims, plan, patient)
    h = evidence(ehr, patient, hospital, "lapsed")
    with reverts("ClaimsCoverageExpired", plan, patient, end):
        submit_with(claims, world, hospital, patient, [h])
    start = chain[-1].timestamp
    tx = enrol(suite, claims, insurer, plan, short_plan["patient"], start, start + 30 * 86400)
    assert tx.events["PatientEnrolled"]["renewal"] is True
    e = claims.enrolment(plan, patient)
    assert (e["start"], e["end"], e["deductibleMet"]) == (start, start + 30 * 86400, 100 * USD)
    assert e["yearOrigin"] < end
    chain.sleep(60)
    _, _, _ = submit(claims, world, ehr, patient, hospital, tag="after")
    # Same coverage year: the deductible stays met, the plan pays 80 % of 150.
    assert claims.enrolment(plan, patient)["paidInYear"] == 40 * USD + 120 * USD


def test_active_enrolment_cannot_be_renewed(suite, claims, insurer, patient, short_plan):
    plan = short_plan["plan"]
    end = claims.enrolment(plan, patient)["end"]
    with reverts("ClaimsAlreadyEnrolled", plan, patient, end):
        enrol(suite, claims, insurer, plan, short_plan["patient"], end + 1, end + 86400)


def test_renewal_cannot_overlap_the_last_period(suite, claims, insurer, patient, short_plan):
    plan = short_plan["plan"]
    end = lapse(claims, plan, patient)
    with reverts("ClaimsEnrolmentOverlap", plan, patient, end, end):
        enrol(suite, claims, insurer, plan, short_plan["patient"], end, end + 30 * 86400)


def test_renewal_needs_the_patients_fresh_signature_and_the_plans_insurer(
    suite, claims, insurer, hospital, patient, short_plan
):
    plan = short_plan["plan"]
    end = lapse(claims, plan, patient)
    start, stop = end + 60, end + 30 * 86400
    deadline, sig = suite.claims.sign_enrolment(short_plan["patient"], plan, start, stop)
    with reverts("ClaimsNotPlanInsurer", plan, hospital):
        claims.enrol(plan, patient, start, stop, deadline, sig, {"from": hospital})
    stranger = Account.create()
    _, forged = suite.claims.sign_enrolment(stranger, plan, start, stop, deadline)
    with reverts("ClaimsInvalidSignature", patient):
        claims.enrol(plan, patient, start, stop, deadline, forged, {"from": insurer})
    claims.enrol(plan, patient, start, stop, deadline, sig, {"from": insurer})
    end2 = lapse(claims, plan, patient)
    with reverts("ClaimsInvalidSignature", patient):  # its nonce is used: it cannot renew again
        claims.enrol(plan, patient, end2 + 60, end2 + 86400, chain[-1].timestamp + 60, sig, {"from": insurer})


def test_service_during_a_lapse_is_not_claimable_after_renewal(
    suite, claims, ehr, patient, hospital, insurer, short_plan
):
    plan = short_plan["plan"]
    world = {"plan": plan}
    lapse(claims, plan, patient)
    gap = evidence(ehr, patient, hospital, "in the gap")
    gap_time = ehr.record(gap.record_id)["anchoredAt"]
    start = chain[-1].timestamp + 100
    enrol(suite, claims, insurer, plan, short_plan["patient"], start, start + 30 * 86400)
    chain.sleep(200)
    with reverts("ClaimsServiceBeforeCoverage", gap.record_id, gap_time, start):
        submit_with(claims, world, hospital, patient, [gap])
    amended = amend(ehr, hospital, gap, "in the gap, amended after renewal")  # still the gap's encounter
    with reverts("ClaimsServiceBeforeCoverage", amended.record_id, gap_time, start):
        submit_with(claims, world, hospital, patient, [amended, gap])


def test_renewal_in_a_later_year_starts_that_years_totals(
    suite, claims, ehr, patient, hospital, insurer, short_plan
):
    plan = short_plan["plan"]
    world = {"plan": plan}
    submit(claims, world, ehr, patient, hospital, tag="year-0")
    origin = claims.enrolment(plan, patient)["yearOrigin"]
    chain.sleep(origin + YEAR + 60 - chain[-1].timestamp)
    chain.mine()
    start = chain[-1].timestamp
    enrol(suite, claims, insurer, plan, short_plan["patient"], start, start + 30 * 86400)
    chain.sleep(60)
    _, (_, rec), _ = submit(claims, world, ehr, patient, hospital, tag="year-1")
    assert (rec[RECORD_YEAR], rec[DEDUCTIBLE_PART]) == (1, 100 * USD)
    assert claims.yearUsage(plan, patient, 0) == (100 * USD, 40 * USD)


# ─── Pool reserve and withdrawal ───────────────────────────────────────────────────────────


def test_insurer_withdraws_only_the_surplus_above_reserved_claims(
    claims, world, ehr, token, patient, hospital, insurer
):
    _, (_, rec), _ = submit(claims, world, ehr, patient, hospital, code="70450", billed=900 * USD)
    p = claims.plan(world["plan"])
    assert (p["pool"], p["reserved"]) == (5_000 * USD, 640 * USD)
    with reverts("ClaimsWithdrawalAboveSurplus", world["plan"], 4_361 * USD, 4_360 * USD):
        claims.withdraw(world["plan"], 4_361 * USD, {"from": insurer})
    before = token.balanceOf(insurer)
    tx = claims.withdraw(world["plan"], 4_360 * USD, {"from": insurer})
    assert tx.events["PlanWithdrawn"]["amount"] == 4_360 * USD
    assert tx.events["PlanWithdrawn"]["pool"] == 640 * USD
    assert token.balanceOf(insurer) - before == 4_360 * USD
    with reverts("ClaimsWithdrawalAboveSurplus", world["plan"], 1, 0):
        claims.withdraw(world["plan"], 1, {"from": insurer})
    claims.approve(rec, 640 * USD, {"from": insurer})  # the pended claim is still paid in full
    p = claims.plan(world["plan"])
    assert (p["pool"], p["reserved"]) == (0, 0)


def test_reserve_follows_deny_appeal_and_approval(claims, world, ehr, patient, hospital, insurer):
    _, (_, rec), _ = submit(claims, world, ehr, patient, hospital, code="70450", billed=900 * USD)
    reserved = lambda: claims.plan(world["plan"])["reserved"]  # noqa: E731
    assert reserved() == 640 * USD
    claims.deny(rec, 1, {"from": insurer})
    assert reserved() == 0
    claims.appeal(rec, {"from": hospital})
    assert reserved() == 640 * USD
    claims.approve(rec, 500 * USD, {"from": insurer})
    assert reserved() == 0


def test_claim_waiting_for_funds_is_reserved(
    suite, claims, world, ehr, patient, hospital, insurer, private_key
):
    plan = claims.createPlan(TERMS, {"from": insurer}).events["PlanCreated"]["planId"]
    now = chain[-1].timestamp
    enrol(suite, claims, insurer, plan, Account.from_key(private_key(patient)), now - 10, now + 1000)
    _, (claim_id, rec), _ = submit(claims, {"plan": plan}, ehr, patient, hospital, billed=400 * USD)
    # allowed 150: 40 payable, auto-approved but unpaid (empty pool), so reserved.
    assert claims.claim(claim_id)["status"] == ClaimStatus.APPROVED
    assert claims.plan(plan)["reserved"] == 40 * USD
    claims.fund(plan, 100 * USD, {"from": insurer})
    with reverts("ClaimsWithdrawalAboveSurplus", plan, 61 * USD, 60 * USD):
        claims.withdraw(plan, 61 * USD, {"from": insurer})
    claims.payOut(rec, {"from": hospital})
    assert claims.plan(plan)["reserved"] == 0
    claims.withdraw(plan, 60 * USD, {"from": insurer})
    assert claims.plan(plan)["pool"] == 0


def test_withdraw_by_others_reverts(claims, world, hospital, outsider, insurer):
    for account in (hospital, outsider):
        with reverts("ClaimsNotPlanInsurer", world["plan"], account):
            claims.withdraw(world["plan"], 1, {"from": account})
    with reverts("ClaimsZeroAmount"):
        claims.withdraw(world["plan"], 0, {"from": insurer})
    with reverts("ClaimsUnknownPlan", 9):
        claims.withdraw(9, 1, {"from": insurer})


def test_suspended_insurer_cannot_withdraw(claims, world, registry, regulator, insurer, accounts):
    govern(registry, regulator, accounts, insurer, GovernanceAction.SUSPEND)
    with reverts("ClaimsNotInsurer", insurer):
        claims.withdraw(world["plan"], 1, {"from": insurer})


# ─── Across contracts ──────────────────────────────────────────────────────────────────────


def test_suspended_provider_cannot_submit_or_appeal(
    claims, world, ehr, registry, regulator, patient, hospital, insurer, accounts
):
    _, (_, rec), _ = submit(claims, world, ehr, patient, hospital, code="70450", billed=900 * USD)
    claims.deny(rec, 1, {"from": insurer})
    h = evidence(ehr, patient, hospital, "before-suspension")
    govern(registry, regulator, accounts, hospital, GovernanceAction.SUSPEND)
    with reverts("ClaimsNotProvider", hospital):
        claims.appeal(rec, {"from": hospital})
    with reverts("ClaimsNotProvider", hospital):
        submit_with(claims, world, hospital, patient, [h])


def test_constructor_rejects_zero_dependencies(regulator, registry, consent, ehr, drugs, token):
    with reverts("ClaimsZeroAddress"):
        ClaimsProcessor.deploy(registry, consent, ehr, drugs, ZERO, {"from": regulator})


def test_deny_by_others_reverts(claims, world, ehr, patient, hospital, outsider):
    _, (claim_id, rec), _ = submit(claims, world, ehr, patient, hospital, code="70450", billed=900 * USD)
    for account in (hospital, outsider):
        with reverts("ClaimsNotPlanInsurer", world["plan"], account):
            claims.deny(rec, 1, {"from": account})
    assert claims.claim(claim_id)["status"] == ClaimStatus.PENDED

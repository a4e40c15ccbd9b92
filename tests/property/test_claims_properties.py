"""Property: whatever claims arrive (amounts, services, days), however the insurer reviews them
(approve in part, deny) and the providers appeal, across coverage years, with top-ups and
withdrawals: each year's deductible met and amount paid are exactly what that year's claims take,
within the deductible and the annual limit; payouts never exceed the per-claim limit or the pool;
no claim is paid twice; the pool's reserve is exactly what pended, appealed and unpaid approved
claims need, and withdrawals never touch it."""

from __future__ import annotations

import hashlib

import pytest
from brownie import chain
from brownie.exceptions import VirtualMachineError
from brownie.test import strategy
from eth_account import Account

from medchain.claims import NO_DRUG, CoverageTable
from medchain.ehr import RecordHeader
from medchain.store import cid_bytes, cid_of
from medchain.types import NO_END, ClaimStatus, ScopeKind, category_code

USD = 10**6
MAX_PAYABLE, PATIENT_SHARE, YEAR = 6, 7, 9  # positions in the claim record
COVERAGE = CoverageTable({"A": 150 * USD, "B": 900 * USD, "C": 2500 * USD}, salt=b"\x09" * 32)
PER_CLAIM, ANNUAL, DEDUCTIBLE, COINS, CEILING = 1000 * USD, 2500 * USD, 300 * USD, 2000, 300 * USD
LIVE = (ClaimStatus.PENDED, ClaimStatus.APPEALED, ClaimStatus.APPROVED, ClaimStatus.PAID)


@pytest.fixture
def setup(suite, consent, claims, token, regulator, insurer, hospital, patient, private_key):
    for grantee, actions, purposes in ((hospital, 3, 1), (insurer, 1, 2)):
        consent.grant(
            (patient, grantee, int(ScopeKind.ALL), b"\0" * 32, actions, purposes, 0, NO_END),
            {"from": patient},
        )
    plan = claims.createPlan(
        (COVERAGE.root, DEDUCTIBLE, COINS, PER_CLAIM, ANNUAL, CEILING), {"from": insurer}
    ).events["PlanCreated"]["planId"]
    token.mint(insurer, 10**6 * USD, {"from": regulator})
    token.approve(claims, 10**6 * USD, {"from": insurer})
    claims.fund(plan, 800 * USD, {"from": insurer})
    now = chain[-1].timestamp
    deadline, sig = suite.claims.sign_enrolment(
        Account.from_key(private_key(patient)), plan, now - 10, now + 10 * 365 * 86400
    )
    claims.enrol(plan, patient, now - 10, now + 10 * 365 * 86400, deadline, sig, {"from": insurer})
    return plan


class ClaimsMachine:
    code = strategy("uint8", max_value=2)
    billed = strategy("uint32", min_value=1, max_value=3000)
    fraction = strategy("uint8", max_value=100)
    pick = strategy("uint8")
    days = strategy("uint16", min_value=1, max_value=200)

    def __init__(cls, claims, ehr, token, plan, patient, hospital, insurer):  # noqa: N805 - brownie's class init
        cls.claims, cls.ehr, cls.token, cls.plan = claims, ehr, token, plan
        cls.patient, cls.hospital, cls.insurer = patient, hospital, insurer

    def setup(self):
        self.ids = []
        self.records = {}  # claim id -> record (the calldata every later call about it takes)
        self.funded = 800 * USD
        self.withdrawn = 0
        self.counter = 0
        self.paid_events = []

    def _evidence(self):
        self.counter += 1
        h = RecordHeader(
            self.patient.address,
            self.hospital.address,
            hashlib.sha256(f"e{self.counter}-{len(self.ids)}-{chain[-1].timestamp}".encode()).digest(),
            category_code("Encounter"),
        )
        self.ehr.anchor(h.as_tuple(), cid_bytes(cid_of(b"x")), {"from": self.hospital})
        return h

    def _claims_in(self, *statuses):
        return [i for i in self.ids if self.claims.claim(i)["status"] in statuses]

    def _paid(self, tx):
        self.paid_events += [e["amount"] for e in tx.events["ClaimPaid"]] if "ClaimPaid" in tx.events else []

    def initialize_open_claims(self):
        """Every run starts with claims to review: a pended one that took the deductible, and two more."""
        for code, billed in ((1, 900), (2, 2500), (0, 150)):
            self.rule_submit(code, billed)

    def rule_submit(self, code, billed):
        service, proof = COVERAGE.service("ABC"[code])
        h = self._evidence()
        try:
            tx = self.claims.submitClaim(
                self.plan,
                self.patient,
                [h.as_tuple()],
                (service.commitment, service.allowed_amount, service.gtin, proof),
                billed * USD,
                NO_DRUG,
                {"from": self.hospital},
            )
        except VirtualMachineError as exc:  # the same service twice in a day is refused, by name
            # A random sequence may legitimately hit the rule; the refusal is checked by error name.
            assert exc.revert_msg.startswith("ClaimsDuplicateService")  # noqa: PT017
            return
        event = tx.events["ClaimSubmitted"]
        claim_id = str(event["claimId"])
        self.ids.append(claim_id)
        self.records[claim_id] = tuple(event["record"])
        self._paid(tx)

    def rule_review(self, pick, fraction):
        pending = self._claims_in(ClaimStatus.PENDED, ClaimStatus.APPEALED)
        if not pending:
            return
        cid = pending[pick % len(pending)]
        rec = self.records[cid]
        if fraction < 30:
            self.claims.deny(rec, 1, {"from": self.insurer})
            return
        amount = self.claims.claim(cid)["amount"] * fraction // 100
        self._paid(self.claims.approve(rec, amount, {"from": self.insurer}))

    def rule_appeal(self, pick):
        denied = [i for i in self._claims_in(ClaimStatus.DENIED) if not self.claims.claim(i)["appealed"]]
        if denied:
            self.claims.appeal(self.records[denied[pick % len(denied)]], {"from": self.hospital})

    def rule_deny_then_appeal(self, pick, fraction):
        """The denial and its appeal in one step (and the review of the appeal when ``fraction`` says so),
        so that short runs reach re-adjudication too."""
        pending = self._claims_in(ClaimStatus.PENDED)
        if not pending:
            return
        cid = pending[pick % len(pending)]
        rec = self.records[cid]
        self.claims.deny(rec, 2, {"from": self.insurer})
        self.claims.appeal(rec, {"from": self.hospital})
        if fraction >= 50:
            amount = self.claims.claim(cid)["amount"] * fraction // 100
            self._paid(self.claims.approve(rec, amount, {"from": self.insurer}))

    def rule_top_up_and_pay(self):
        self.claims.fund(self.plan, 300 * USD, {"from": self.insurer})
        self.funded += 300 * USD
        for cid in self._claims_in(ClaimStatus.APPROVED):
            if self.claims.plan(self.plan)["pool"] >= self.claims.claim(cid)["amount"]:
                self._paid(self.claims.payOut(self.records[cid], {"from": self.hospital}))

    def rule_withdraw(self, fraction):
        p = self.claims.plan(self.plan)
        amount = max(p["pool"] - p["reserved"], 0) * fraction // 100
        if amount:
            self.claims.withdraw(self.plan, amount, {"from": self.insurer})
            self.withdrawn += amount

    def rule_time_passes(self, days):
        chain.sleep(days * 86400)

    def rule_next_coverage_year(self):
        chain.sleep(365 * 86400)

    def invariant_per_claim(self):
        for cid in self.ids:
            c, rec = self.claims.claim(cid), self.records[cid]
            assert rec[MAX_PAYABLE] <= PER_CLAIM
            assert c["amount"] <= PER_CLAIM
            allowed = rec[MAX_PAYABLE] + rec[PATIENT_SHARE]
            if c["status"] == ClaimStatus.DENIED:
                assert (c["amount"], c["deductiblePart"], c["patientShare"]) == (0, 0, 0)
            elif c["status"] in (ClaimStatus.PENDED, ClaimStatus.APPEALED):
                assert c["amount"] + c["patientShare"] == allowed  # re-adjudicated on appeal
            else:
                assert c["amount"] + c["patientShare"] <= allowed  # approved for at most its maximum

    def invariant_pool_and_totals(self):
        total = self.claims.totalPaid(self.plan)
        assert total == sum(self.paid_events)
        p = self.claims.plan(self.plan)
        assert p["pool"] == self.funded - total - self.withdrawn
        paid = sum(self.claims.claim(c)["amount"] for c in self._claims_in(ClaimStatus.PAID))
        assert paid == total  # every payment belongs to exactly one paid claim: none paid twice

    def invariant_reserve_is_what_open_claims_need(self):
        open_claims = self._claims_in(ClaimStatus.PENDED, ClaimStatus.APPEALED, ClaimStatus.APPROVED)
        assert self.claims.plan(self.plan)["reserved"] == sum(
            self.claims.claim(c)["amount"] for c in open_claims
        )

    def invariant_year_totals_are_what_the_years_claims_take(self):
        by_year = {}
        for cid in self.ids:
            c = self.claims.claim(cid)
            deductible, paid = by_year.get(self.records[cid][YEAR], (0, 0))
            if c["status"] in LIVE:
                deductible, paid = deductible + c["deductiblePart"], paid + c["amount"]
            by_year[self.records[cid][YEAR]] = (deductible, paid)
        for year, (deductible, paid) in by_year.items():
            assert self.claims.yearUsage(self.plan, self.patient, year) == (deductible, paid)
            assert deductible <= DEDUCTIBLE
            assert paid <= ANNUAL
        e = self.claims.enrolment(self.plan, self.patient)
        assert (e["deductibleMet"], e["paidInYear"]) == by_year.get(e["year"], (0, 0))


def test_year_totals_and_payouts_follow_the_rules(
    state_machine, setup, claims, ehr, token, patient, hospital, insurer
):
    state_machine(
        ClaimsMachine,
        claims,
        ehr,
        token,
        setup,
        patient,
        hospital,
        insurer,
        settings={"max_examples": 30, "stateful_step_count": 20},
    )

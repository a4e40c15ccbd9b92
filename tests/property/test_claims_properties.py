"""Property: whatever claims arrive (amounts, services, days, reviews, top-ups), payouts never exceed
what the plan rules allow per claim and per member per year, never exceed the pool's funds, and no
claim is paid twice."""

from __future__ import annotations

import hashlib

import pytest
from brownie import chain
from brownie.exceptions import VirtualMachineError
from brownie.test import strategy
from eth_account import Account

from medchain.claims import NO_DRUG, ClaimStatus, CoverageTable
from medchain.consent import NO_END, ScopeKind, category_code
from medchain.ehr import RecordHeader
from medchain.store import cid_bytes, cid_of

USD = 10**6
MAX_PAYABLE, YEAR = 6, 9  # positions in the claim record
COVERAGE = CoverageTable({"A": 150 * USD, "B": 900 * USD, "C": 2500 * USD}, salt=b"\x09" * 32)
PER_CLAIM, ANNUAL, DEDUCTIBLE, COINS, CEILING = 1000 * USD, 2500 * USD, 100 * USD, 2000, 500 * USD


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
        Account.from_key(private_key(patient)), plan, now - 10, now + 3 * 365 * 86400
    )
    claims.enrol(plan, patient, now - 10, now + 3 * 365 * 86400, deadline, sig, {"from": insurer})
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

    def rule_submit(self, code, billed):
        service, proof = COVERAGE.service("ABC"[code])
        h = self._evidence()
        try:
            tx = self.claims.submitClaim(
                self.plan,
                self.patient,
                [h.as_tuple()],
                (service.commitment, service.allowed_amount, proof),
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
        self.paid_events += [e["amount"] for e in tx.events["ClaimPaid"]] if "ClaimPaid" in tx.events else []

    def rule_review(self, pick, fraction):
        pending = [
            i
            for i in self.ids
            if self.claims.claim(i)["status"] in (ClaimStatus.PENDED, ClaimStatus.APPEALED)
        ]
        if not pending:
            return
        cid = pending[pick % len(pending)]
        c, rec = self.claims.claim(cid), self.records[cid]
        if fraction < 30:
            self.claims.deny(rec, 1, {"from": self.insurer})
            if not c["appealed"]:
                self.claims.appeal(rec, {"from": self.hospital})
            return
        amount = rec[MAX_PAYABLE] * fraction // 100
        try:
            tx = self.claims.approve(rec, amount, {"from": self.insurer})
        except VirtualMachineError as exc:  # an appealed claim may no longer fit the year's remaining limit
            assert exc.revert_msg.startswith("ClaimsAmountAboveMaximum")  # noqa: PT017
            return
        self.paid_events += [e["amount"] for e in tx.events["ClaimPaid"]] if "ClaimPaid" in tx.events else []

    def rule_top_up_and_pay(self, pick):
        self.claims.fund(self.plan, 300 * USD, {"from": self.insurer})
        self.funded += 300 * USD
        waiting = [i for i in self.ids if self.claims.claim(i)["status"] == ClaimStatus.APPROVED]
        for cid in waiting:
            if self.claims.plan(self.plan)["pool"] >= self.claims.claim(cid)["amount"]:
                tx = self.claims.payOut(self.records[cid], {"from": self.hospital})
                self.paid_events.append(tx.events["ClaimPaid"]["amount"])

    def rule_time_passes(self, days):
        chain.sleep(days * 86400)

    def invariant_per_claim(self):
        for cid in self.ids:
            assert self.claims.claim(cid)["amount"] <= self.records[cid][MAX_PAYABLE] <= PER_CLAIM

    def invariant_pool_and_totals(self):
        total = self.claims.totalPaid(self.plan)
        assert total == sum(self.paid_events)
        assert total <= self.funded
        assert self.claims.plan(self.plan)["pool"] == self.funded - total
        paid = sum(
            self.claims.claim(c)["amount"]
            for c in self.ids
            if self.claims.claim(c)["status"] == ClaimStatus.PAID
        )
        assert paid == total  # every payment belongs to exactly one paid claim: none paid twice

    def invariant_annual_limit(self):
        e = self.claims.enrolment(self.plan, self.patient)
        assert e["paidInYear"] <= ANNUAL
        by_year = {}
        for cid in self.ids:
            c = self.claims.claim(cid)
            if c["status"] == ClaimStatus.PAID:
                year = self.records[cid][YEAR]
                by_year[year] = by_year.get(year, 0) + c["amount"]
        assert all(v <= ANNUAL for v in by_year.values())


def test_payouts_never_exceed_the_rules(state_machine, setup, claims, ehr, token, patient, hospital, insurer):
    state_machine(
        ClaimsMachine,
        claims,
        ehr,
        token,
        setup,
        patient,
        hospital,
        insurer,
        settings={"max_examples": 12, "stateful_step_count": 14},
    )

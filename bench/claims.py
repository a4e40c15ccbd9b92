"""Claims figures: gas of plan creation, enrolment and renewal, a claim submitted and auto-paid in
one transaction, a pended claim and its approval, deny / appeal / approval on appeal, a claim on an
amended record, a pharmacy's drug claim, a withdrawal of surplus; and claims per second
auto-adjudicated through the SDK.

    .venv/bin/python -m bench.claims      (part of `make bench`)
"""

from __future__ import annotations

import hashlib
import statistics
import time
from typing import Any

from eth_account import Account
from rich.console import Console
from rich.table import Table

from bench.common import deploy_with
from medchain.claims import (
    MEDICATION_DISPENSE,
    NO_DRUG,
    ClaimView,
    CoverageTable,
    DispenseRef,
    PlanTerms,
    lot_code,
    patient_ref,
)
from medchain.consent import GrantTerms
from medchain.ehr import AnchoredRecord, RecordHeader
from medchain.localchain import LocalChain
from medchain.store import cid_bytes, cid_of
from medchain.types import Actions, Kind, Purpose, category_code

USD = 10**6
THROUGHPUT_CLAIMS = 100
GTIN = 9506000134352


def advance(w3, seconds: int) -> None:
    """Moves the local chain's clock (a new day, so the same service may be claimed again)."""
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])


def main() -> None:
    with LocalChain("anvil") as w3:
        chain, suite, acct, _ = deploy_with(w3, Kind.HOSPITAL, Kind.INSURER, Kind.PHARMACY, Kind.MANUFACTURER)
        regulator, hospital, insurer, pharmacy, maker = acct[0], acct[1], acct[2], acct[3], acct[4]
        c, fn = suite.claims, suite.claims.contract.functions
        table = CoverageTable({"99213": 150 * USD, "70450": 900 * USD, ("J3490", GTIN): 40 * USD})
        terms = PlanTerms(table.root, 100 * USD, 2000, 1000 * USD, 10**6 * USD, 500 * USD)
        gas: dict[str, list[int]] = {
            "createPlan": [],
            "enrol (patient-signed)": [],
            "enrol: renewal of a lapsed enrolment": [],
            "submitClaim, adjudicated and paid in one transaction": [],
            "submitClaim, pended": [],
            "approve pended claim + pay": [],
            "deny pended claim": [],
            "appeal (re-adjudicated, reserved)": [],
            "approve appealed claim + pay": [],
            "submitClaim, amended record (2 versions), paid": [],
            "submitClaim by a pharmacy (dispense as evidence), paid": [],
            "withdraw surplus": [],
        }
        for _ in range(3):
            gas["createPlan"].append(chain.transact(fn.createPlan(terms.as_tuple()), insurer)["gasUsed"])
        plan, short_plan = 1, 2
        chain.transact(suite.token.functions.mint(insurer, 10**9 * USD), regulator)
        c.fund(insurer, plan, 10**8 * USD)
        c.fund(insurer, short_plan, 10**6 * USD)
        cid = cid_bytes(cid_of(b"x"))
        suite.drugs.register_product(maker, GTIN)
        now = int(w3.eth.get_block("latest")["timestamp"])
        batch = suite.drugs.commission(maker, GTIN, "BENCH-1", now - 60, now + 10**8, 1000, b"\1" * 32)
        suite.drugs.receive(pharmacy, suite.drugs.ship(maker, batch, pharmacy, 100))

        def transact(label: str, call: Any, sender: str) -> Any:
            receipt = chain.transact(call, sender)
            gas[label].append(receipt["gasUsed"])
            return receipt

        def claim_of(receipt: Any) -> ClaimView:
            event = c.contract.events.ClaimSubmitted().process_receipt(receipt)[0]["args"]
            return c.claim(bytes(event["claimId"]))

        def patient_with_records(n: int) -> tuple[Any, list[RecordHeader]]:
            p = Account.create()
            chain.transact_value(regulator, p.address, 10**18)
            suite.consent.grant(
                p, GrantTerms.for_all(p.address, hospital, Actions.READ | Actions.APPEND, Purpose.TREAT)
            )
            suite.consent.grant(p, GrantTerms.for_all(p.address, insurer, Actions.READ, Purpose.HPAYMT))
            now = int(w3.eth.get_block("latest")["timestamp"])
            deadline, sig = c.sign_enrolment(p, plan, now - 60, now + 10 * 365 * 86400)
            transact(
                "enrol (patient-signed)",
                fn.enrol(plan, p.address, now - 60, now + 10 * 365 * 86400, deadline, sig),
                insurer,
            )
            records = []
            for i in range(n):
                h = RecordHeader(
                    p.address,
                    hospital,
                    hashlib.sha256(f"{p.address}{i}".encode()).digest(),
                    category_code("Encounter"),
                )
                chain.transact(suite.ehr_contract.functions.anchor(h.as_tuple(), cid), hospital)
                records.append(h)
            return p, records

        def submit(
            label: str, patient: str, headers: list[RecordHeader], code: str, billed: int
        ) -> ClaimView:
            service, proof = table.service(code)
            call = fn.submitClaim(
                plan,
                patient,
                [h.as_tuple() for h in headers],
                (service.commitment, service.allowed_amount, service.gtin, proof),
                billed,
                NO_DRUG,
            )
            return claim_of(transact(label, call, hospital))

        for k in range(5):
            p, records = patient_with_records(6)
            now = int(w3.eth.get_block("latest")["timestamp"])
            deadline, sig = c.sign_enrolment(p, short_plan, now - 60, now + 3600)
            chain.transact(fn.enrol(short_plan, p.address, now - 60, now + 3600, deadline, sig), insurer)
            for rec in records[:2]:
                submit(
                    "submitClaim, adjudicated and paid in one transaction",
                    p.address,
                    [rec],
                    "99213",
                    150 * USD,
                )
                advance(w3, 86400)
            pended = submit("submitClaim, pended", p.address, [records[2]], "70450", 900 * USD)
            transact(
                "approve pended claim + pay", fn.approve(pended.record.as_tuple(), pended.amount), insurer
            )
            advance(w3, 86400)
            denied = submit("submitClaim, pended", p.address, [records[3]], "70450", 900 * USD)
            transact("deny pended claim", fn.deny(denied.record.as_tuple(), 1), insurer)
            transact("appeal (re-adjudicated, reserved)", fn.appeal(denied.record.as_tuple()), hospital)
            appealed = c.claim(denied.id)
            transact(
                "approve appealed claim + pay",
                fn.approve(appealed.record.as_tuple(), appealed.amount),
                insurer,
            )
            advance(w3, 86400)
            amended = RecordHeader(
                p.address,
                hospital,
                hashlib.sha256(f"{p.address}v2".encode()).digest(),
                records[4].category,
                records[4].record_id,
            )
            chain.transact(
                suite.ehr_contract.functions.amend(records[4].as_tuple(), amended.as_tuple(), cid), hospital
            )
            submit(
                "submitClaim, amended record (2 versions), paid",
                p.address,
                [amended, records[4]],
                "99213",
                150 * USD,
            )
            suite.consent.grant(
                p,
                GrantTerms.for_category(
                    p.address, pharmacy, MEDICATION_DISPENSE, Actions.APPEND, Purpose.TREAT
                ),
            )
            salt = hashlib.sha256(f"salt{k}".encode()).digest()
            nonce, _ = suite.drugs.holding(batch, pharmacy)
            suite.drugs.dispense(pharmacy, batch, 1, patient_ref(p.address, salt))
            ref = DispenseRef(
                lot_code("BENCH-1"), salt, 1, nonce, int(w3.eth.get_block("latest")["timestamp"])
            )
            drug, drug_proof = table.service("J3490", GTIN)
            transact(
                "submitClaim by a pharmacy (dispense as evidence), paid",
                fn.submitClaim(
                    plan,
                    p.address,
                    [],
                    (drug.commitment, drug.allowed_amount, drug.gtin, drug_proof),
                    40 * USD,
                    ref.as_tuple(),
                ),
                pharmacy,
            )
            transact("withdraw surplus", fn.withdraw(plan, USD), insurer)
            now = int(w3.eth.get_block("latest")["timestamp"])
            deadline, sig = c.sign_enrolment(p, short_plan, now, now + 30 * 86400)
            transact(
                "enrol: renewal of a lapsed enrolment",
                fn.enrol(short_plan, p.address, now, now + 30 * 86400, deadline, sig),
                insurer,
            )

        # Throughput: auto-adjudicated claims end to end through the SDK (submit, wait, read back).
        p, headers = patient_with_records(THROUGHPUT_CLAIMS)
        service, proof = table.service("99213")
        records = [AnchoredRecord(h.record_id, h, cid_of(b"x"), 0) for h in headers]
        start = time.perf_counter()
        for rec in records:
            advance(w3, 86400)
            c.submit(hospital, plan, p.address, [rec], service, proof, 150 * USD)
        elapsed = time.perf_counter() - start

    t = Table(title="ClaimsProcessor gas (Anvil, median)")
    for col in ("operation", "gas (median)", "goal"):
        t.add_column(col)
    for name, values in gas.items():
        goal = "<= 200,000" if name.startswith("submitClaim, adjudicated") else ""
        t.add_row(name, f"{int(statistics.median(values)):,}", goal)
    Console().print(t)
    t2 = Table(title="Auto-adjudicated claims through the SDK (Anvil, auto-mine, one client)")
    t2.add_column("claims")
    t2.add_column("seconds", justify="right")
    t2.add_column("claims/s", justify="right")
    t2.add_row(str(THROUGHPUT_CLAIMS), f"{elapsed:.2f}", f"{THROUGHPUT_CLAIMS / elapsed:.1f}")
    Console().print(t2)


if __name__ == "__main__":
    main()

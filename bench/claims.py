"""Claims figures: gas of plan creation, enrolment, a claim submitted and auto-paid in one
transaction, a pended claim's approval; and claims per second auto-adjudicated through the SDK.

    .venv/bin/python -m bench.claims      (part of `make bench`)
"""

from __future__ import annotations

import hashlib
import statistics
import time

from eth_account import Account
from rich.console import Console
from rich.table import Table

from bench.common import deploy_with
from medchain.claims import CoverageTable, PlanTerms
from medchain.consent import Actions, GrantTerms, Purpose, category_code
from medchain.ehr import AnchoredRecord, RecordHeader
from medchain.localchain import LocalChain
from medchain.store import cid_bytes, cid_of
from medchain.types import Kind

USD = 10**6
THROUGHPUT_CLAIMS = 100


def advance(w3, seconds: int) -> None:
    """Moves the local chain's clock (a new day, so the same service may be claimed again)."""
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])


def main() -> None:
    with LocalChain("anvil") as w3:
        chain, suite, acct, _ = deploy_with(w3, Kind.HOSPITAL, Kind.INSURER)
        regulator, hospital, insurer = acct[0], acct[1], acct[2]
        c, fn = suite.claims, suite.claims.contract.functions
        table = CoverageTable({"99213": 150 * USD, "70450": 900 * USD})
        terms = PlanTerms(table.root, 100 * USD, 2000, 1000 * USD, 10**6 * USD, 500 * USD)
        gas: dict[str, list[int]] = {
            "createPlan": [],
            "enrol (patient-signed)": [],
            "submitClaim, adjudicated and paid in one transaction": [],
            "approve pended claim + pay": [],
        }
        for _ in range(3):
            gas["createPlan"].append(chain.transact(fn.createPlan(terms.as_tuple()), insurer)["gasUsed"])
        plan = 1
        chain.transact(suite.token.functions.mint(insurer, 10**9 * USD), regulator)
        c.fund(insurer, plan, 10**8 * USD)

        def patient_with_records(n: int) -> tuple[str, list[AnchoredRecord]]:
            p = Account.create()
            chain.transact_value(regulator, p.address, 10**18)
            suite.consent.grant(
                p, GrantTerms.for_all(p.address, hospital, Actions.READ | Actions.APPEND, Purpose.TREAT)
            )
            suite.consent.grant(p, GrantTerms.for_all(p.address, insurer, Actions.READ, Purpose.HPAYMT))
            now = int(w3.eth.get_block("latest")["timestamp"])
            deadline, sig = c.sign_enrolment(p, plan, now - 60, now + 10 * 365 * 86400)
            r = chain.transact(
                fn.enrol(plan, p.address, now - 60, now + 10 * 365 * 86400, deadline, sig), insurer
            )
            gas["enrol (patient-signed)"].append(r["gasUsed"])
            records = []
            for i in range(n):
                h = RecordHeader(
                    p.address,
                    hospital,
                    hashlib.sha256(f"{p.address}{i}".encode()).digest(),
                    category_code("Encounter"),
                )
                chain.transact(
                    suite.ehr_contract.functions.anchor(h.as_tuple(), cid_bytes(cid_of(b"x"))), hospital
                )
                records.append(AnchoredRecord(h.record_id, h, cid_of(b"x"), 0))
            return p.address, records

        service, proof = table.service("99213")
        for _ in range(5):
            patient, records = patient_with_records(3)
            for rec in records[:2]:
                r = chain.transact(
                    fn.submitClaim(
                        plan,
                        patient,
                        [rec.header.as_tuple()],
                        (service.commitment, service.allowed_amount, proof),
                        150 * USD,
                        (b"\0" * 32, b"\0" * 32, 0, 0, 0),
                    ),
                    hospital,
                )
                gas["submitClaim, adjudicated and paid in one transaction"].append(r["gasUsed"])
                advance(w3, 86400)
            big, big_proof = table.service("70450")
            pended = c.submit(hospital, plan, patient, [records[2]], big, big_proof, 900 * USD)
            gas["approve pended claim + pay"].append(
                chain.transact(fn.approve(pended.record, pended.max_payable), insurer)["gasUsed"]
            )

        # Throughput: auto-adjudicated claims end to end through the SDK (submit, wait, read back).
        patient, records = patient_with_records(THROUGHPUT_CLAIMS)
        start = time.perf_counter()
        for rec in records:
            advance(w3, 86400)
            c.submit(hospital, plan, patient, [rec], service, proof, 150 * USD)
        elapsed = time.perf_counter() - start

    t = Table(title="ClaimsProcessor gas (Anvil, median)")
    for col in ("operation", "gas (median)", "goal"):
        t.add_column(col)
    for name, values in gas.items():
        goal = "<= 200,000" if name.startswith("submitClaim") else ""
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

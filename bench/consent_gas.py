"""Gas of ConsentManager operations on a fresh local Anvil chain, through the SDK.

    .venv/bin/python -m bench.consent_gas      (part of `make bench`)

Goals from the consent issue: direct grant <= 60,000 gas, signed grant <= 75,000.
``checkAccess`` is a view: its figure is ``eth_estimateGas`` of a call to it, so it includes the
21,000 of a transaction and its calldata (what another contract pays is roughly that minus 21,000
plus the call's own overhead). Set ``MEDCHAIN_CHAIN_PORT`` to pick the chain's port.
"""

from __future__ import annotations

import hashlib
import os
import statistics

from eth_account import Account
from rich.console import Console
from rich.table import Table

from bench.common import deploy_with
from medchain.consent import GrantTerms
from medchain.localchain import LocalChain
from medchain.types import Actions, Kind, Purpose, category_code

ROUNDS = 5
ZERO32 = b"\0" * 32


def main() -> None:
    rows: list[tuple[str, list[int], int | None]] = []
    port = int(os.environ.get("MEDCHAIN_CHAIN_PORT", "0")) or None
    with LocalChain("anvil", port=port) as w3:
        chain, suite, acct, _ = deploy_with(w3, Kind.HOSPITAL, Kind.HOSPITAL)
        regulator, hospital, hospital2 = acct[0], acct[1], acct[2]
        c = suite.consent
        fn = c.contract.functions
        record = hashlib.sha256(b"record").digest()
        lab = category_code("Observation")

        def check_gas(patient: str, accessor: str, purpose: Purpose) -> int:
            call = fn.checkAccess(patient, accessor, record, lab, int(Actions.READ), int(purpose))
            return int(call.estimate_gas({"from": regulator}))

        direct, revoke, first_signed, later_signed, glass = [], [], [], [], []
        by_guardian, guardian_signed, guardian_revoke = [], [], []
        check_all, check_guardian, check_glass, check_none = [], [], [], []
        accept, dispute = [], []
        for i in range(ROUNDS):
            patient, guardian = acct[5 + i], acct[10 + i]
            t = GrantTerms.for_all(patient, hospital, Actions.READ, Purpose.TREAT)
            r = chain.transact(fn.grant(t.as_tuple()), patient)
            direct.append(r["gasUsed"])
            check_all.append(check_gas(patient, hospital, Purpose.TREAT))
            check_none.append(check_gas(patient, hospital2, Purpose.TREAT))
            gid = c._granted_id(r)
            revoke.append(chain.transact(fn.revoke(gid), patient)["gasUsed"])

            chain.transact(fn.addGuardian(guardian), patient)
            t = GrantTerms.for_all(patient, hospital2, Actions.READ, Purpose.TREAT)
            r = chain.transact(fn.grant(t.as_tuple()), guardian)
            by_guardian.append(r["gasUsed"])
            check_guardian.append(check_gas(patient, hospital2, Purpose.TREAT))
            guardian_revoke.append(chain.transact(fn.revoke(c._granted_id(r)), guardian)["gasUsed"])

            signer = Account.create()
            for grantee, bucket in ((hospital, first_signed), (hospital2, later_signed)):
                t = GrantTerms.for_category(
                    signer.address, grantee, "Observation", Actions.READ, Purpose.TREAT
                )
                s = c.sign_grant(signer, t)
                r = chain.transact(
                    fn.grantBySig(t.as_tuple(), s.signer, s.nonce, s.deadline, s.signature), hospital
                )
                bucket.append(r["gasUsed"])
            signing_guardian = Account.create()
            chain.transact(fn.addGuardian(signing_guardian.address), patient)
            t = GrantTerms.for_category(patient, hospital, "Observation", Actions.READ, Purpose.TREAT)
            s = c.sign_grant(signing_guardian, t)
            r = chain.transact(
                fn.grantBySig(t.as_tuple(), s.signer, s.nonce, s.deadline, s.signature), hospital
            )
            guardian_signed.append(r["gasUsed"])

            digest = hashlib.sha256(f"emergency {i}".encode()).digest()
            r = chain.transact(fn.openBreakGlass(patient, digest), hospital2)
            glass.append(r["gasUsed"])
            check_glass.append(check_gas(patient, hospital2, Purpose.ETREAT))
            sid = int(c.contract.events.BreakGlassOpened().process_receipt(r)[0]["args"]["sessionId"])
            accept.append(chain.transact(fn.reviewBreakGlass(sid, True), patient)["gasUsed"])

        # Disputes last: a dispute may limit the institution's later sessions.
        for i in range(ROUNDS):
            patient = acct[5 + i]
            digest = hashlib.sha256(f"disputed {i}".encode()).digest()
            r = chain.transact(fn.openBreakGlass(patient, digest), hospital)
            sid = int(c.contract.events.BreakGlassOpened().process_receipt(r)[0]["args"]["sessionId"])
            dispute.append(chain.transact(fn.reviewBreakGlass(sid, False), regulator)["gasUsed"])
            w3.provider.make_request("evm_increaseTime", [40 * 24 * 3600])  # type: ignore[arg-type]
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

        rows = [
            ("grant (direct, new grant)", direct, 60_000),
            ("grant (by a guardian, new grant)", by_guardian, 60_000),
            ("grantBySig (patient's first signed request)", first_signed, 75_000),
            ("grantBySig (later signed requests)", later_signed, 75_000),
            ("grantBySig (signed by a guardian)", guardian_signed, 75_000),
            ("revoke (by the patient)", revoke, None),
            ("revoke (a guardian's grant, by the guardian)", guardian_revoke, None),
            ("checkAccess (all-data grant; estimate)", check_all, None),
            ("checkAccess (guardian's grant; estimate)", check_guardian, None),
            ("checkAccess (break-glass; estimate)", check_glass, None),
            ("checkAccess (denied; estimate)", check_none, None),
            ("openBreakGlass", glass, None),
            ("reviewBreakGlass (accept)", accept, None),
            ("reviewBreakGlass (dispute)", dispute, None),
        ]

    table = Table(title=f"ConsentManager gas (Anvil, median of {ROUNDS})")
    table.add_column("operation")
    table.add_column("gas (median)", justify="right")
    table.add_column("goal", justify="right")
    table.add_column("met")
    for name, values, goal in rows:
        median = int(statistics.median(values))
        met = "" if goal is None else ("yes" if median <= goal else f"no (+{median - goal:,})")
        table.add_row(name, f"{median:,}", "" if goal is None else f"{goal:,}", met)
    Console().print(table)


if __name__ == "__main__":
    main()

"""Gas of ConsentManager operations on a fresh local Anvil chain, through the SDK.

    .venv/bin/python -m bench.consent_gas      (part of `make bench`)

Goals from the consent issue: direct grant <= 60,000 gas, signed grant <= 75,000.
"""

from __future__ import annotations

import hashlib
import statistics

from eth_account import Account
from rich.console import Console
from rich.table import Table

from bench.common import deploy_with
from medchain.consent import Actions, GrantTerms, Purpose
from medchain.localchain import LocalChain
from medchain.types import Kind

ROUNDS = 5


def main() -> None:
    rows: list[tuple[str, list[int], int | None]] = []
    with LocalChain("anvil") as w3:
        chain, suite, acct, _ = deploy_with(w3, Kind.HOSPITAL, Kind.HOSPITAL)
        hospital, hospital2 = acct[1], acct[2]
        c = suite.consent
        fn = c.contract.functions

        direct, revoke, first_signed, later_signed, glass = [], [], [], [], []
        for i in range(ROUNDS):
            patient = acct[5 + i]
            t = GrantTerms.for_all(patient, hospital, Actions.READ, Purpose.TREAT)
            r = chain.transact(fn.grant(t.as_tuple()), patient)
            direct.append(r["gasUsed"])
            gid = c._granted_id(r)
            revoke.append(chain.transact(fn.revoke(gid), patient)["gasUsed"])

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
            digest = hashlib.sha256(f"emergency {i}".encode()).digest()
            glass.append(chain.transact(fn.openBreakGlass(patient, digest), hospital2)["gasUsed"])

        rows = [
            ("grant (direct, new grant)", direct, 60_000),
            ("grantBySig (patient's first signed request)", first_signed, 75_000),
            ("grantBySig (later signed requests)", later_signed, 75_000),
            ("revoke", revoke, None),
            ("openBreakGlass", glass, None),
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

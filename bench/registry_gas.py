"""Gas used by each InstitutionRegistry operation, measured on a fresh local Anvil chain.

    make bench        (or: .venv/bin/python -m bench.registry_gas)

Runs through the SDK (web3.py), so the figures are what any client pays; it prints a table.
Set ``MEDCHAIN_CHAIN_PORT`` to pick the chain's port.
"""

from __future__ import annotations

import hashlib
import os

from rich.console import Console
from rich.table import Table

from medchain.artifacts import Artifacts
from medchain.chain import Chain
from medchain.localchain import LocalChain
from medchain.types import GovernanceAction, Kind


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def main() -> None:
    rows: list[tuple[str, int, str]] = []
    port = int(os.environ.get("MEDCHAIN_CHAIN_PORT", "0")) or None
    with LocalChain("anvil", port=port) as w3:
        chain = Chain(w3, Artifacts())
        acct = list(w3.eth.accounts)
        founder, members = acct[0], acct[1:6]
        _, receipt = chain.deploy("InstitutionRegistry", founder, founder, 90, digest("f"), 0, 3 * 24 * 3600)
        rows.append(("deploy registry", receipt["gasUsed"], "constructor admits the founder"))
        registry = chain.contract("InstitutionRegistry", receipt["contractAddress"])
        fn = registry.functions
        r = chain.transact(fn.bootstrapMember(members[0], int(Kind.HOSPITAL), 80, digest("h")), founder)
        rows.append(("bootstrapMember", r["gasUsed"], "founder admits a founding member"))
        for i, account in enumerate(members[1:], start=1):
            chain.transact(fn.bootstrapMember(account, int(Kind.PHARMACY), 50 + i, digest(str(i))), founder)
        r = chain.transact(fn.endBootstrap(), founder)
        rows.append(("endBootstrap", r["gasUsed"], ""))

        newcomer = acct[7]
        r = chain.transact(fn.proposeAdmission(newcomer, int(Kind.LABORATORY), 60, digest("n")), founder)
        rows.append(("proposeAdmission", r["gasUsed"], "opens and counts the proposer's yes"))
        r = chain.transact(fn.vote(1, True), members[0])
        rows.append(("vote (below quorum)", r["gasUsed"], "yes vote, proposal stays open"))
        for voter in members[1:]:
            r = chain.transact(fn.vote(1, True), voter)
            if chain.call(fn.proposal(1))[10] != 1:  # status no longer Open: this vote executed it
                break
        rows.append(("vote reaching quorum + admit", r["gasUsed"], "executes: admits the laboratory"))

        def change(action: GovernanceAction, subject: str, rating: int = 0) -> tuple[int, int]:
            tx = chain.transact(fn.proposeChange(subject, int(action), rating), founder)
            pid = int(chain.call(fn.proposalCount()))
            last = 0
            for voter in members[:5]:
                if chain.call(fn.proposal(pid))[10] != 1:
                    break
                if voter == subject:
                    continue
                last = chain.transact(fn.vote(pid, True), voter)["gasUsed"]
            return tx["gasUsed"], last

        p, v = change(GovernanceAction.SUSPEND, members[4])
        rows += [("proposeChange (suspend)", p, ""), ("vote executing suspend", v, "")]
        p, v = change(GovernanceAction.REINSTATE, members[4])
        rows += [("proposeChange (reinstate)", p, ""), ("vote executing reinstate", v, "")]
        p, v = change(GovernanceAction.CHANGE_RATING, members[4], 30)
        rows += [("proposeChange (rating)", p, ""), ("vote executing rating change", v, "")]
        p, v = change(GovernanceAction.REMOVE, members[4])
        rows += [("proposeChange (remove)", p, ""), ("vote executing removal", v, "")]

        chain.transact(fn.proposeAdmission(acct[8], int(Kind.INSURER), 40, digest("i")), founder)
        pid = int(chain.call(fn.proposalCount()))
        w3.provider.make_request("evm_increaseTime", [3 * 24 * 3600 + 1])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        r = chain.transact(fn.expire(pid), members[0])
        rows.append(("expire", r["gasUsed"], "closes a proposal past its deadline"))

    table = Table(title="InstitutionRegistry gas (Anvil, solc 0.8.28, optimizer 200 runs)")
    table.add_column("operation")
    table.add_column("gas used", justify="right")
    table.add_column("note")
    for name, gas, note in rows:
        table.add_row(name, f"{gas:,}", note)
    Console().print(table)


if __name__ == "__main__":
    main()

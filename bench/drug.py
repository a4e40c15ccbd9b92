"""Drug provenance figures: gas of commission, ship, receive, dispense, recall; and the latency of
tracing a batch with 1,000 events (one block each: Anvil auto-mine) from a fresh client.

    .venv/bin/python -m bench.drug      (part of `make bench`)

MEDCHAIN_CHAIN_PORT, when set, is the port the throw-away Anvil listens on.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import time

from rich.console import Console
from rich.table import Table
from web3 import Web3

from bench.common import deploy_with
from medchain.drug import SerialTree, ShipmentRef, lot_bytes
from medchain.localchain import LocalChain
from medchain.suite import Suite
from medchain.types import Kind

GTIN = 9506000134352
TRACE_EVENTS = 1000
SERIALS = [f"SN{i:06d}" for i in range(1000)]
"""Each benchmark batch's 1,000 pack serials (a proof is 10 hashes long)."""


def main() -> None:
    port = int(os.environ["MEDCHAIN_CHAIN_PORT"]) if os.environ.get("MEDCHAIN_CHAIN_PORT") else None
    with LocalChain("anvil", port=port) as w3:
        chain, suite, acct, manifest = deploy_with(w3, Kind.MANUFACTURER, Kind.DISTRIBUTOR, Kind.PHARMACY)
        regulator, maker, dist, pharm = acct[0], acct[1], acct[2], acct[3]
        fn = suite.drugs.contract.functions
        # registerProduct's GTIN check loops over the GTIN's digits: one product of each length.
        gas: dict[str, list[int]] = {
            f"registerProduct (GTIN-{len(written)})": [
                chain.transact(fn.registerProduct(int(written)), maker)["gasUsed"]
            ]
            for written in ("96385074", "614141000036", f"{GTIN}", "10614141000033")
        }
        now = int(w3.eth.get_block("latest")["timestamp"])
        gas |= {
            k: []
            for k in (
                "commission",
                "ship",
                "ship (distributor)",
                "receive (new holder)",
                "receive (existing holder)",
                "dispense",
                "dispenseSerial (1,000-serial batch)",
                "quarantine (manufacturer)",
                "release (manufacturer)",
                "quarantine (regulator)",
                "release (regulator)",
                "recall (active batch, 3 holders)",
                "recall (quarantined batch, 3 holders)",
            )
        }
        batches = []
        tree = SerialTree(SERIALS)
        for i in range(6):
            r = chain.transact(
                fn.commission(
                    GTIN,
                    lot_bytes(f"L{i}"),
                    now,
                    now + 10**7,
                    1000,
                    hashlib.sha256(b"c").digest(),
                    tree.root,
                ),
                maker,
            )
            gas["commission"].append(r["gasUsed"])
            batch = bytes(
                suite.drugs.contract.events.BatchCommissioned().process_receipt(r)[0]["args"]["batchId"]
            )
            batches.append(batch)
            for label in ("receive (new holder)", "receive (existing holder)"):
                r = chain.transact(fn.ship(batch, dist, 10), maker)
                gas["ship"].append(r["gasUsed"])
                ref = suite.drugs.contract.events.Shipped().process_receipt(r)[0]["args"]["ref"]
                tup = (
                    ref["batchId"],
                    ref["from"],
                    ref["to"],
                    ref["quantity"],
                    ref["nonce"],
                    ref["shippedAt"],
                )
                gas[label].append(chain.transact(fn.receiveShipment(tup), dist)["gasUsed"])
            r = chain.transact(fn.ship(batch, pharm, 5), dist)
            gas["ship (distributor)"].append(r["gasUsed"])
            ref = suite.drugs.contract.events.Shipped().process_receipt(r)[0]["args"]["ref"]
            suite.drugs.receive(pharm, ShipmentRef.from_event(ref))
            gas["dispense"].append(chain.transact(fn.dispense(batch, 1, b"\2" * 32), pharm)["gasUsed"])
            serial = SERIALS[i * 7]
            r = chain.transact(fn.dispenseSerial(batch, serial, tree.proof(serial), b"\3" * 32), pharm)
            gas["dispenseSerial (1,000-serial batch)"].append(r["gasUsed"])
            for who, authority in (("manufacturer", maker), ("regulator", regulator)):
                r = chain.transact(fn.quarantine(batch, 1), authority)
                gas[f"quarantine ({who})"].append(r["gasUsed"])
                gas[f"release ({who})"].append(chain.transact(fn.release(batch), authority)["gasUsed"])
            holders = sorted([maker, dist, pharm], key=lambda a: int(a, 16))
            label = "recall (active batch, 3 holders)"
            if i % 2:
                chain.transact(fn.quarantine(batch, 1), maker)
                label = "recall (quarantined batch, 3 holders)"
            gas[label].append(chain.transact(fn.recall(batch, 1, holders), maker)["gasUsed"])

        # A batch with 1,000 events: pipelined ships from the manufacturer to the distributor.
        r = chain.transact(
            fn.commission(
                GTIN, lot_bytes("TRACE"), now, now + 10**7, 10_000, hashlib.sha256(b"c").digest(), b"\1" * 32
            ),
            maker,
        )
        trace_batch = bytes(
            suite.drugs.contract.events.BatchCommissioned().process_receipt(r)[0]["args"]["batchId"]
        )
        ship = fn.ship(trace_batch, dist, 1)
        hashes = [ship.transact({"from": maker, "gas": 150_000}) for _ in range(TRACE_EVENTS - 1)]
        w3.eth.wait_for_transaction_receipt(hashes[-1], timeout=300)

        fresh = Web3(Web3.HTTPProvider(w3.provider.endpoint_uri))  # type: ignore[attr-defined]
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            client = Suite.from_manifest(fresh, manifest).drugs
            events = client.history(trace_batch)
            timings.append(time.perf_counter() - start)
        assert len(events) == TRACE_EVENTS, len(events)

    table = Table(title="DrugProvenance gas (Anvil, median)")
    for col in ("operation", "gas (median)", "goal"):
        table.add_column(col)
    goals = {
        "ship": "<= 60,000",
        "receive (new holder)": "<= 60,000",
        "receive (existing holder)": "<= 60,000",
    }
    for name, values in gas.items():
        table.add_row(name, f"{int(statistics.median(values)):,}", goals.get(name, ""))
    Console().print(table)
    t2 = Table(title=f"Trace of a batch with {TRACE_EVENTS:,} events, fresh client (median of 5)")
    t2.add_column("step")
    t2.add_column("seconds", justify="right")
    t2.add_row(
        "load manifest + full history (getLogs + decode + block times)", f"{statistics.median(timings):.3f}"
    )
    t2.add_row("goal", "< 1")
    Console().print(t2)


if __name__ == "__main__":
    main()

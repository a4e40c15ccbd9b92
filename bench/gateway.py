"""Custodian gateway figures: authenticated releases per second with the gateway on one core, and
the latency a reader sees (challenge + signature + release over HTTP), p50 and p95.

The gateway runs as `medchain gateway serve` in its own process pinned to CPU 0; the readers run
here, pinned to CPU 1 where the machine has two. Every release is the full protocol: a fresh
challenge, an EIP-712 signature, public-key recovery, the header and the access event read from
the chain, consent re-checked (`checkAccess`), the data key unwrapped and re-wrapped (ECIES).

    .venv/bin/python -m bench.gateway      (part of `make bench`)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from eth_account import Account
from rich.console import Console
from rich.table import Table

from bench.common import deploy_with
from bench.ehr import typical_observation
from medchain import crypto
from medchain.consent import GrantTerms
from medchain.ehr import KeyVault
from medchain.gateway import GatewayClient
from medchain.localchain import LocalChain, dev_private_keys, free_port
from medchain.store import LocalFolderStore
from medchain.types import Actions, Kind, Purpose

RECORDS = 20
SEQUENTIAL = 200
THREADS = 4
PER_THREAD = 100


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


def main() -> None:
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="medchain-gateway-bench-"))
    with LocalChain("anvil") as w3:
        _chain, suite, accounts, manifest = deploy_with(w3, Kind.HOSPITAL, Kind.SPECIALIST_HOSPITAL)
        keys = dev_private_keys()
        hospital, reader_address, patient = accounts[1], accounts[2], accounts[5]
        reader = Account.from_key(keys[reader_address])
        for grantee, actions in ((hospital, Actions.READ | Actions.APPEND), (reader_address, Actions.READ)):
            suite.consent.grant(patient, GrantTerms.for_all(patient, grantee, actions, Purpose.TREAT))
        store = LocalFolderStore(work / "store")
        vault = KeyVault(work / "vault.sqlite")
        ehr = suite.ehr(store)
        custodian_key = crypto.ReaderKey.from_private_key(keys[hospital])
        records = []
        for i in range(RECORDS):
            resource = {**typical_observation(), "id": f"bench-{i}"}
            records.append(ehr.anchor_resource(hospital, resource, patient, vault, (custodian_key,)))
            ehr.access(reader_address, records[-1], Purpose.TREAT)

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "medchain.cli",
                "--rpc",
                w3.provider.endpoint_uri,  # type: ignore[attr-defined]
                "--manifest",
                str(manifest),
                "gateway",
                "serve",
                "--port",
                str(port),
                "--vault",
                str(work / "vault.sqlite"),
                "--store",
                str(work / "store"),
                "--log",
                str(work / "releases.jsonl"),
                "--rate-per-client",
                "100000",
                "--rate-per-reader",
                "100000",
            ],
            env={**os.environ, "MEDCHAIN_PRIVATE_KEY": "0x" + keys[hospital].hex()},
            preexec_fn=lambda: _pin(0),
        )
        try:
            _wait(url, server)
            _pin(1)
            client = GatewayClient(url)
            for record in records:  # warm-up: headers cached, connections open
                client.fetch(ehr, record.id, reader)
            latencies = []
            for i in range(SEQUENTIAL):
                started = time.perf_counter()
                client.fetch(ehr, records[i % RECORDS].id, reader)
                latencies.append(time.perf_counter() - started)

            def worker(n: int) -> None:
                own = GatewayClient(url)
                for i in range(PER_THREAD):
                    own.fetch(ehr, records[(n + i) % RECORDS].id, reader)
                own.close()

            threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            opened = ehr.open(client.fetch(ehr, records[0].id, reader), bytes(reader.key))
            assert opened["id"] == "bench-0"
            client.close()
        finally:
            server.terminate()
            server.wait(timeout=10)

    table = Table(title="Custodian gateway: authenticated releases (gateway pinned to one core)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    ordered = sorted(latencies)
    table.add_row(
        "reader latency p50 (challenge + sign + release, sequential)", f"{_ms(statistics.median(ordered))}"
    )
    table.add_row("reader latency p95", f"{_ms(ordered[int(0.95 * len(ordered)) - 1])}")
    table.add_row("releases/s, one reader sequential", f"{len(latencies) / sum(latencies):.0f}")
    table.add_row(f"releases/s, {THREADS} concurrent readers", f"{THREADS * PER_THREAD / elapsed:.0f}")
    console.print(table)
    console.print(
        f"{RECORDS} records of ~2 KB, {SEQUENTIAL} sequential + {THREADS}x{PER_THREAD} concurrent releases; "
        "each checks the access event and consent on chain (Anvil, same machine)"
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _wait(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the gateway exited before serving")
        try:
            if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the gateway did not start within 60 s")


if __name__ == "__main__":
    main()

"""`medchain gateway serve` and `medchain ehr read` as a hospital runs them, and bad input ending in
one line (run as real processes: what a user sees on the terminal, no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from brownie import web3 as brownie_web3
from eth_account import Account

from medchain import crypto
from medchain.consent import GrantTerms
from medchain.ehr import KeyVault
from medchain.localchain import free_port
from medchain.store import LocalFolderStore
from medchain.types import Actions, Purpose

LICENCE = "00" * 32
ADDRESS = "0x" + "11" * 20
RESOURCE = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
    "valueQuantity": {"value": 13.2, "unit": "g/dL"},
}


def medchain(*args, env=None, timeout=120):
    """Runs the installed command in a child process; returns (exit code, stdout, stderr)."""
    full_env = {k: v for k, v in os.environ.items() if k != "MEDCHAIN_PRIVATE_KEY"}
    full_env.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "medchain.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def one_line_error(code, stderr):
    assert code != 0
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    return stderr.strip()


@pytest.fixture
def deployed(deploy_to, tmp_path, patient, hospital, private_key):
    manifest = tmp_path / "manifest.json"
    suite = deploy_to(manifest)
    suite.consent.grant(
        patient.address,
        GrantTerms.for_all(patient.address, hospital.address, Actions.READ | Actions.APPEND, Purpose.TREAT),
    )
    store_dir, vault_path = tmp_path / "store", tmp_path / "vault.sqlite"
    record = suite.ehr(LocalFolderStore(store_dir)).anchor_resource(
        hospital.address,
        RESOURCE,
        patient.address,
        KeyVault(vault_path),
        (
            crypto.ReaderKey.from_private_key(private_key(hospital)),
            crypto.ReaderKey.from_private_key(private_key(patient)),
        ),
    )
    rpc = brownie_web3.provider.endpoint_uri
    return {
        "suite": suite,
        "manifest": manifest,
        "store": store_dir,
        "vault": vault_path,
        "record": record,
        "base": ["--rpc", rpc, "--manifest", str(manifest)],
    }


@pytest.fixture
def served(deployed, tmp_path, hospital, private_key):
    port = free_port()
    log = tmp_path / "releases.jsonl"
    env = {**os.environ, "MEDCHAIN_PRIVATE_KEY": "0x" + private_key(hospital).hex()}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medchain.cli",
            *deployed["base"],
            "gateway",
            "serve",
            "--port",
            str(port),
            "--vault",
            str(deployed["vault"]),
            "--store",
            str(deployed["store"]),
            "--log",
            str(log),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            out, err = proc.communicate(timeout=5)
            pytest.fail(f"gateway did not start: {err or out}")
        time.sleep(0.2)
    yield {**deployed, "url": url, "log": log}
    proc.terminate()
    proc.wait(timeout=10)


def test_hospital_reads_through_the_served_gateway_with_ehr_read(
    served, patient, hospital2, private_key, tmp_path
):
    suite = served["suite"]
    suite.consent.grant(
        patient.address,
        GrantTerms.for_category(
            patient.address, hospital2.address, "Observation", Actions.READ, Purpose.TREAT
        ),
    )
    out = tmp_path / "read.json"
    code, stdout, stderr = medchain(
        *served["base"],
        "ehr",
        "read",
        "0x" + served["record"].id.hex(),
        "--gateway",
        served["url"],
        "-o",
        str(out),
        env={"MEDCHAIN_PRIVATE_KEY": "0x" + private_key(hospital2).hex()},
    )
    assert code == 0, stderr
    assert json.loads(out.read_text()) == RESOURCE
    # The read left its audit event on chain and a release line in the gateway's log.
    [event] = suite.ehr(LocalFolderStore(served["store"])).access_history(record_id=served["record"].id)
    assert event.accessor == hospital2.address
    lines = [json.loads(x) for x in served["log"].read_text().splitlines()]
    assert [(x["event"], x["reader"], x["basis"]) for x in lines] == [
        ("release", hospital2.address, "consent")
    ]
    code, stdout, _ = medchain("gateway", "verify-log", str(served["log"]))
    assert code == 0
    assert "1 entries, hash chain intact" in stdout


def test_served_log_is_signed_by_the_custodian(served, patient, hospital, hospital2, private_key):
    """The served gateway signs its log with the custodian's key: verify-log --custodian checks
    who wrote it, which the keyless hash chain cannot."""
    code, _out, stderr = medchain(
        *served["base"],
        "ehr",
        "read",
        "0x" + served["record"].id.hex(),
        "--gateway",
        served["url"],
        env={"MEDCHAIN_PRIVATE_KEY": "0x" + private_key(patient).hex()},
    )
    assert code == 0, stderr
    code, stdout, stderr = medchain(
        "gateway", "verify-log", str(served["log"]), "--custodian", hospital.address
    )
    assert code == 0, stderr
    assert f"1 entries, hash chain intact, every line signed by {hospital.address}" in stdout
    code, _out, stderr = medchain(
        "gateway", "verify-log", str(served["log"]), "--custodian", hospital2.address
    )
    assert "not signed by the custodian" in one_line_error(code, stderr)


def test_ehr_read_without_consent_is_one_line(served, outsider, private_key):
    code, _out, stderr = medchain(
        *served["base"],
        "ehr",
        "read",
        "0x" + served["record"].id.hex(),
        "--gateway",
        served["url"],
        env={"MEDCHAIN_PRIVATE_KEY": "0x" + private_key(outsider).hex()},
    )
    line = one_line_error(code, stderr)
    assert "access denied" in line
    assert "recorded on chain (AccessDenied)" in line  # the refusal is in the audit trail


def test_patient_reads_own_record_with_no_access_call(served, patient, private_key):
    code, stdout, stderr = medchain(
        *served["base"],
        "ehr",
        "read",
        "0x" + served["record"].id.hex(),
        "--gateway",
        served["url"],
        env={"MEDCHAIN_PRIVATE_KEY": "0x" + private_key(patient).hex()},
    )
    assert code == 0, stderr
    assert json.loads(stdout) == RESOURCE


# ─── Bad input: one line each ───────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["institution", "admit", "0xZZ", "--kind", "hospital", "--rating", "50", "--licence", "00" * 32],
            "address",
        ),
        (
            [
                "institution",
                "admit",
                "0x" + "11" * 20,
                "--kind",
                "hospital",
                "--rating",
                "300",
                "--licence",
                "00" * 32,
            ],
            "300",
        ),
        (["patient", "grants", "not-an-address"], "no account named"),
        (["patient", "grants", "0x1234"], "not an Ethereum address"),
        (["patient", "grant", "0x" + "22" * 20, "--scope", "category:" + "X" * 40], "1 to 32"),
        (["drug", "ship", "09506000134352", "LOT1", "0x12", "5"], "address"),
        (["claim", "deny", "0x" + "33" * 32, "--reason", "70000"], "70000"),
    ],
)
def test_bad_input_is_one_line(deployed, regulator, args, expected):
    code, _out, stderr = medchain(*deployed["base"], "--from", regulator.address, *args)
    line = one_line_error(code, stderr)
    assert expected in line


def test_restarted_chain_under_an_old_manifest_is_one_line(deployed, tmp_path, regulator):
    """A local chain restarted without state keeps its chain id but has no code at the addresses."""
    data = json.loads(deployed["manifest"].read_text())
    data["contracts"]["EHRIndex"]["address"] = Account.create().address
    stale = tmp_path / "stale.json"
    data["abi_source"] = str((deployed["manifest"].parent / data["abi_source"]).resolve())
    stale.write_text(json.dumps(data))
    rpc = brownie_web3.provider.endpoint_uri
    code, _out, stderr = medchain("--rpc", rpc, "--manifest", str(stale), "institution", "list")
    line = one_line_error(code, stderr)
    assert "no contract code" in line
    assert "EHRIndex" in line


def test_unreachable_node_is_one_line(deployed):
    code, _out, stderr = medchain("--rpc", f"http://127.0.0.1:{free_port()}", "institution", "list")
    assert "no Ethereum node answers" in one_line_error(code, stderr)


def test_corrupt_vault_for_gateway_is_one_line(deployed, tmp_path, hospital, private_key):
    bad = tmp_path / "bad-vault.sqlite"
    bad.write_bytes(b"garbage" * 500)
    code, _out, stderr = medchain(
        *deployed["base"],
        "gateway",
        "serve",
        "--port",
        str(free_port()),
        "--vault",
        str(bad),
        env={"MEDCHAIN_PRIVATE_KEY": "0x" + private_key(hospital).hex()},
    )
    assert "corrupt" in one_line_error(code, stderr)


def test_unwritable_read_output_is_one_line(served, patient, private_key, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _out, stderr = medchain(
        *served["base"],
        "ehr",
        "read",
        "0x" + served["record"].id.hex(),
        "--gateway",
        served["url"],
        "-o",
        str(blocker / "out.json"),
        env={"MEDCHAIN_PRIVATE_KEY": "0x" + private_key(patient).hex()},
    )
    assert "cannot write" in one_line_error(code, stderr)

"""`medchain patient` and `medchain ehr` as patients and custodians run them, against the test chain.

Commands run in-process through ``medchain.cli.main`` (the real entry point: one-line errors, exit
codes) with a fresh $MEDCHAIN_HOME and keystore accounts named after their roles, so that names
work wherever an account is expected. A few run as child processes, as a user's terminal sees them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from brownie import web3 as brownie_web3
from click.testing import CliRunner

from medchain.cli import main
from medchain.gateway import GatewayService, GatewaySettings, ReleaseLog
from medchain.gateway.app import BackgroundGateway
from medchain.localchain import free_port
from medchain.store import LocalFolderStore
from medchain.vault import KeyVault
from tests.integration.test_cli_gateway import one_line_error

MARKER = "ZEBRAFISH-7731"
"""A string no on-chain byte may contain: it stands for the health data in a record."""


def observation(value: float, marker: str = MARKER) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "2339-0", "display": f"Glucose {marker}"}]
        },
        "valueQuantity": {"value": value, "unit": "mmol/L"},
    }


class Medchain:
    """Runs `medchain` commands in-process with one data directory and deployment."""

    def __init__(self, home, manifest, rpc):
        self.home = home
        self.manifest = manifest
        self.rpc = rpc
        self.env = {"MEDCHAIN_HOME": str(home), "MEDCHAIN_PASSWORD": "pw", "MEDCHAIN_PRIVATE_KEY": None}

    def raw(self, *args, env=None):
        """(exit code, stdout, stderr) of ``medchain ARGS`` through the real entry point."""
        runner = CliRunner()
        with runner.isolation(env={**self.env, **(env or {})}) as (out, err, _mixed):
            saved = sys.argv
            sys.argv = ["medchain", *map(str, args)]
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                sys.argv = saved
            return code, out.getvalue().decode(), err.getvalue().decode()

    def __call__(self, sender, *args, env=None):
        """``medchain --json [--from SENDER] ARGS`` on this deployment; its JSON output, parsed."""
        base = ["--rpc", self.rpc, "--manifest", self.manifest, "--json"]
        code, out, err = self.raw(*base, *(["--from", sender] if sender else []), *args, env=env)
        assert code == 0, err
        return json.loads(out)

    def fails(self, sender, *args, env=None, base=True):
        """The one error line of a command that must fail (exit code non-zero, no traceback)."""
        head = ["--rpc", self.rpc, "--manifest", self.manifest] if base else []
        code, _out, err = self.raw(*head, *(["--from", sender] if sender else []), *args, env=env)
        return one_line_error(code, err)


@pytest.fixture
def m(deploy_to, tmp_path, private_key, patient, hospital, hospital2, laboratory):
    """A deployment, a data directory, and keystore accounts alice (the patient), hospital-a,
    hospital-b and lab holding the test chain's keys."""
    manifest = tmp_path / "manifest.json"
    suite = deploy_to(manifest)
    runner = Medchain(tmp_path / "home", manifest, brownie_web3.provider.endpoint_uri)
    runner.suite = suite
    for name, account in (
        ("alice", patient),
        ("hospital-a", hospital),
        ("hospital-b", hospital2),
        ("lab", laboratory),
    ):
        key_file = tmp_path / f"{name}.key"
        key_file.write_text(private_key(account).hex())
        runner(None, "account", "import", name, "--key-file", key_file, "--light-kdf")
    return runner


@pytest.fixture
def gateway(m, private_key):
    """Factory: a custodian's gateway (in this process) over the CLI's default store and vault."""
    running = []

    def _start(custodian):
        port = free_port()
        service = GatewayService(
            m.suite,
            LocalFolderStore(m.home / "store"),
            KeyVault(m.home / "vault.sqlite"),
            private_key(custodian),
            GatewaySettings(public_url=f"http://127.0.0.1:{port}"),
            log=ReleaseLog(None),
        )
        running.append(BackgroundGateway(service).__enter__())
        return running[-1].url

    yield _start
    for server in running:
        server.__exit__(None, None, None)


def chain_bytes(w3, from_block):
    """Every transaction input and event (topics and data) since ``from_block``, as one blob."""
    blob = bytearray()
    for number in range(from_block, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            blob += bytes(tx["input"])
            for log in w3.eth.get_transaction_receipt(tx["hash"])["logs"]:
                blob += bytes(log["data"]) + b"".join(bytes(t) for t in log["topics"])
    return bytes(blob)


# ─── Consent ────────────────────────────────────────────────────────────────────────────────────


def test_patient_grants_signs_offline_and_revokes(m, patient, hospital, hospital2, outsider, tmp_path):
    granted = m("alice", "patient", "grant", "hospital-a", "--actions", "read,append", "--days", "30")
    assert (granted["patient"], granted["grantee"], granted["scope"], granted["actions"]) == (
        patient.address,
        hospital.address,
        "all",
        "read,append",
    )
    # Signed with no node at all: the domain from the manifest, the nonce given.
    signed = tmp_path / "consent.json"
    offline = [
        "--rpc",
        f"http://127.0.0.1:{free_port()}",
        "--manifest",
        m.manifest,
        "--json",
        "--from",
        "alice",
    ]
    code, out, err = m.raw(
        *offline, "patient", "sign-grant", "hospital-b", "--scope", "category:Observation",
        "--purpose", "TREAT", "--purpose", "HRESCH", "--nonce", "0", "--deadline-days", "365", "-o", signed,
    )  # fmt: skip
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["chain_id"], shown["consent_manager"]) == (
        m.suite.chain.chain_id,
        m.suite.consent.address,
    )
    document = json.loads(signed.read_text())
    assert document["terms"]["scope"] == "category:Observation"
    assert document["terms"]["purposes"] == ["TREAT", "HRESCH"]
    # Offline without --nonce: one line saying what to give.
    code, _out, err = m.raw(*offline, "patient", "sign-grant", "hospital-b", "-o", tmp_path / "x.json")
    assert "give --nonce" in one_line_error(code, err)
    assert not (tmp_path / "x.json").exists()
    # Terms changed after signing no longer match the signature.
    tampered = tmp_path / "tampered.json"
    tampered.write_text(signed.read_text().replace('"scope": "category:Observation"', '"scope": "all"'))
    assert "terms or the signature were changed" in m.fails("hospital-b", "patient", "submit-grant", tampered)
    # The grantee submits it (and pays); a second submission carries a used nonce.
    submitted = m("hospital-b", "patient", "submit-grant", signed)
    assert submitted["signer"] == patient.address
    assert "nonce 0" in m.fails("hospital-b", "patient", "submit-grant", signed)
    grants = {g["grantee"]: g for g in m("alice", "patient", "grants")}
    assert grants[hospital2.address]["id"] == submitted["grant"]
    assert (grants[hospital2.address]["via"], grants[hospital2.address]["purposes"]) == (
        "signature",
        "TREAT,HRESCH",
    )
    assert grants[hospital.address]["via"] == "transaction"
    # A guardian grants for the patient, by the patient's account name; removal lapses that grant.
    added = m("alice", "patient", "guardian", "add", outsider.address)
    assert added["is_guardian"] is True
    by_guardian = m(
        outsider.address, "patient", "grant", "lab", "--patient", "alice", "--scope", "category:Condition"
    )
    assert by_guardian["patient"] == patient.address
    assert m("alice", "patient", "guardian", "remove", outsider.address)["is_guardian"] is False
    statuses = {g["id"]: g["status"] for g in m(None, "patient", "grants", "alice")}
    assert statuses[by_guardian["grant"]] == "lapsed"
    # Revoking by id.
    revoked = m("alice", "patient", "revoke", submitted["grant"])
    assert (revoked["revoked"], revoked["status"]) == (submitted["grant"], "revoked")


# ─── Records ────────────────────────────────────────────────────────────────────────────────────


def test_record_anchored_read_amended_and_retracted_without_health_data_on_chain(
    m, gateway, patient, hospital, hospital2, private_key, tmp_path
):
    start = brownie_web3.eth.block_number + 1
    m("alice", "patient", "grant", "hospital-a", "--actions", "read,append")
    m("alice", "patient", "grant", "hospital-b", "--scope", "category:Observation")
    key = m("alice", "patient", "public-key")["public_key"]
    first = tmp_path / "glucose.json"
    first.write_text(json.dumps(observation(7.2)))
    code, out, err = m.raw(
        "--rpc", m.rpc, "--manifest", m.manifest, "--json", "--from", "hospital-a",
        "ehr", "anchor", first, "--patient", "alice", "--patient-key", key,
    )  # fmt: skip
    assert code == 0, err
    anchored = json.loads(out)
    assert MARKER not in out + err
    assert anchored["category"] == "Observation"
    assert anchored["readers"] == [hospital.address, patient.address]
    record = anchored["record"]
    url = gateway(hospital)
    # Another hospital reads it under the patient's category consent (audited on chain).
    out_file = tmp_path / "read.json"
    code, _out, err = m.raw(
        "--rpc", m.rpc, "--manifest", m.manifest, "--from", "hospital-b",
        "ehr", "read", record, "--gateway", url, "-o", out_file,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out_file.read_text()) == observation(7.2)
    # The old path: a raw key in $MEDCHAIN_PRIVATE_KEY, no --from; the patient reads to stdout.
    code, out, err = m.raw(
        "--rpc", m.rpc, "--manifest", m.manifest, "ehr", "read", record, "--gateway", url,
        env={"MEDCHAIN_PRIVATE_KEY": "0x" + private_key(patient).hex()},
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out) == observation(7.2)
    # A new version, then retraction.
    second = tmp_path / "glucose-2.json"
    second.write_text(json.dumps(observation(7.4)))
    assert "EHRCustodianMismatch" in m.fails(
        "hospital-b", "ehr", "entered-in-error", record, "--reason", "duplicate"
    )
    assert "only its custodian amends it" in m.fails("hospital-b", "ehr", "amend", record, second)
    amended = m("hospital-a", "ehr", "amend", record, second)
    assert amended["amends"] == record
    retracted = m("hospital-a", "ehr", "entered-in-error", amended["record"], "--reason", "wrong-content")
    assert (retracted["reason"], retracted["status"]) == ("wrong-content", "entered_in_error")
    records = {r["id"]: r for r in m("alice", "ehr", "records")}
    assert records[record]["status"] == "superseded"
    assert (records[amended["record"]]["status"], records[amended["record"]]["previous"]) == (
        "entered_in_error",
        record,
    )
    history = m(None, "ehr", "history", amended["record"])
    assert [(e["event"], e["version"]) for e in history] == [
        ("anchored", record),
        ("accessed", record),
        ("anchored", amended["record"]),
        ("amended", record),
        ("entered-in-error", amended["record"]),
    ]
    assert (history[1]["by"], history[1]["purpose"], history[3]["next_version"]) == (
        hospital2.address,
        "TREAT",
        amended["record"],
    )
    assert history[4]["reason"] == "wrong-content"
    # The patient's audit trail, as a table's JSON and as FHIR AuditEvents.
    [access] = m("alice", "patient", "history")
    assert (access["record"], access["reader"], access["break_glass"]) == (record, hospital2.address, False)
    code, out, err = m.raw("--rpc", m.rpc, "--manifest", m.manifest, "patient", "history", "alice", "--fhir")
    assert code == 0, err
    [event] = json.loads(out)
    assert event["resourceType"] == "AuditEvent"
    # No health data reached the chain: the marker is in no transaction input and no event.
    on_chain = chain_bytes(brownie_web3, start)
    assert bytes.fromhex(record[2:]) in on_chain  # the scan sees what was anchored
    assert MARKER.encode() not in on_chain
    assert json.dumps(observation(7.2)).encode() not in on_chain


def test_decrypted_record_written_by_ehr_read_is_owner_only(m, gateway, hospital, tmp_path):
    # The record is health data in clear: a -o file must not be readable by the machine's other users.
    m("alice", "patient", "grant", "hospital-a", "--actions", "read,append")
    m("alice", "patient", "grant", "hospital-b", "--scope", "category:Observation")
    key = m("alice", "patient", "public-key")["public_key"]
    source = tmp_path / "glucose.json"
    source.write_text(json.dumps(observation(5.1)))
    record = m("hospital-a", "ehr", "anchor", source, "--patient", "alice", "--patient-key", key)["record"]
    url = gateway(hospital)
    out_file = tmp_path / "read.json"
    out_file.write_text("")
    os.chmod(out_file, 0o644)  # an earlier, readable file of that name
    previous = os.umask(0o022)
    try:
        code, _out, err = m.raw(
            "--rpc", m.rpc, "--manifest", m.manifest, "--from", "hospital-b",
            "ehr", "read", record, "--gateway", url, "-o", out_file,
        )  # fmt: skip
    finally:
        os.umask(previous)
    assert code == 0, err
    assert json.loads(out_file.read_text()) == observation(5.1)
    assert out_file.stat().st_mode & 0o777 == 0o600


def test_lab_batch_break_glass_and_batched_retraction(m, gateway, patient, hospital2, laboratory, tmp_path):
    start = brownie_web3.eth.block_number + 1
    m("alice", "patient", "grant", "lab", "--actions", "append", "--scope", "category:Observation")
    m("alice", "patient", "grant", "hospital-a", "--actions", "read")
    night = tmp_path / "night"
    night.mkdir()
    for i in range(3):
        (night / f"glucose-{i}.json").write_text(json.dumps(observation(5 + i / 10)))
    assert "whose records are these" in m.fails("lab", "ehr", "batch", night)
    (night / "patients.json").write_text(json.dumps({"glucose-0.json": "alice", "glucose-1.json": "alice"}))
    assert "no patient for glucose-2.json" in m.fails("lab", "ehr", "batch", night)
    (night / "patients.json").write_text(
        json.dumps({f"glucose-{i}.json": a for i, a in enumerate(["alice", "alice", hospital2.address])})
    )
    (night / "bad.json").write_text(json.dumps({"resourceType": "Observation", "status": "final"}))
    assert "no patient for bad.json" in m.fails("lab", "ehr", "batch", night)
    mapping = json.loads((night / "patients.json").read_text())
    (night / "patients.json").write_text(json.dumps({**mapping, "bad.json": "alice"}))
    assert "bad.json: invalid FHIR Observation" in m.fails("lab", "ehr", "batch", night)
    (night / "bad.json").unlink()
    (night / "patients.json").write_text(json.dumps(mapping))
    code, out, err = m.raw(
        "--rpc", m.rpc, "--manifest", m.manifest, "--json", "--from", "lab", "ehr", "batch", night
    )  # fmt: skip
    assert code == 0, err
    assert MARKER not in out
    assert err == ""  # no progress bar when stderr is not a terminal
    rows = json.loads(out)
    assert [r["file"] for r in rows] == ["glucose-0.json", "glucose-1.json", "glucose-2.json"]
    assert {r["batch"] for r in rows} == {1}
    assert [r["patient"] for r in rows] == [patient.address, patient.address, hospital2.address]
    # The patient reads a batched result through the lab's gateway.
    url = gateway(laboratory)
    code, out, err = m.raw(
        "--rpc",
        m.rpc,
        "--manifest",
        m.manifest,
        "--from",
        "alice",
        "ehr",
        "read",
        rows[0]["record"],
        "--gateway",
        url,
    )
    assert code == 0, err
    assert json.loads(out) == observation(5.0)
    # A batched record is retracted with the proof from the lab's vault.
    retracted = m("lab", "ehr", "entered-in-error", rows[2]["record"], "--reason", "wrong-patient")
    assert (retracted["batch"], retracted["status"]) == (1, "entered_in_error")
    [event] = m(None, "ehr", "history", rows[2]["record"])
    assert (event["event"], event["reason"]) == ("entered-in-error", "wrong-patient")
    # Break-glass: only a salted digest goes on chain; the text stays with the hospital.
    justification = f"unconscious in the emergency room {MARKER}"
    opened = m("hospital-b", "ehr", "break-glass", "open", "alice", "--justification", justification)
    kept = json.loads(Path(opened["justification_kept_in"]).read_text())
    assert oct(os.stat(opened["justification_kept_in"]).st_mode & 0o777) == "0o600"
    salt = bytes.fromhex(kept["salt"][2:])
    assert "0x" + hashlib.sha256(salt + justification.encode()).hexdigest() == opened["justification_digest"]
    assert kept["justification"] == justification
    [session] = m("alice", "ehr", "break-glass", "list")
    assert (session["session"], session["review"], session["institution"]) == (
        opened["session"],
        "pending",
        hospital2.address,
    )
    assert "ConsentNotReviewer" in m.fails(
        "hospital-b", "ehr", "break-glass", "review", opened["session"], "accept"
    )
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**kept, "justification": "routine check"}))
    review = ["ehr", "break-glass", "review", opened["session"]]
    assert "does not match session" in m.fails("alice", *review, "dispute", "--justification-file", forged)
    reviewed = m("alice", *review, "dispute", "--justification-file", opened["justification_kept_in"])
    assert (reviewed["review"], reviewed["justification"]) == ("disputed", justification)
    assert reviewed["disputed_sessions_of_institution"] == 1
    on_chain = chain_bytes(brownie_web3, start)
    assert bytes.fromhex(opened["justification_digest"][2:]) in on_chain
    assert MARKER.encode() not in on_chain
    assert hashlib.sha256(justification.encode()).digest() not in on_chain


# ─── Bad input: one line each ───────────────────────────────────────────────────────────────────


def test_bad_input_is_one_line(m, outsider, regulator, tmp_path):
    unknown = "0x" + "ab" * 32
    good = tmp_path / "good.json"
    good.write_text(json.dumps(observation(6.1)))
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"resourceType": "Observation", "status": "final"}))
    foreign = tmp_path / "foreign.json"
    data = json.loads(m.manifest.read_text())
    data["chain_id"] += 1
    foreign.write_text(json.dumps(data))
    other_chain = tmp_path / "other-chain.json"
    m("alice", "patient", "sign-grant", "hospital-b", "--chain-id", "5", "--consent-manager",
      m.suite.consent.address, "--nonce", "0", "-o", other_chain)  # fmt: skip
    lab_grant = m("alice", "patient", "grant", "lab")["grant"]
    cases = [
        # malformed address, hex, option values
        (("alice", "patient", "grant", "0x12"), "not an Ethereum address"),
        (("alice", "patient", "grants", "nobody"), "no account named 'nobody'"),
        (("alice", "ehr", "history", "0xzz"), "is not a record id"),
        (("alice", "patient", "revoke", "0x1234"), "is not a grant id"),
        (
            ("alice", "patient", "grant", "hospital-a", "--scope", "category:Observatoin"),
            "not a FHIR R4 resource type",
        ),
        (("alice", "patient", "grant", "hospital-a", "--actions", "delete"), "unknown action"),
        (("hospital-a", "ehr", "entered-in-error", unknown, "--reason", "oops"), "is not a reason"),
        (
            ("hospital-a", "ehr", "anchor", good, "--patient", "alice", "--patient-key", "0x1234"),
            "is not a public key",
        ),
        # unknown ids
        (("alice", "ehr", "history", unknown), f"no record {unknown} on this deployment"),
        (("hospital-a", "ehr", "amend", unknown, good), f"no record {unknown} on this deployment"),
        (("hospital-a", "ehr", "entered-in-error", unknown, "--reason", "duplicate"), f"no record {unknown}"),
        (("alice", "patient", "revoke", unknown), f"no grant {unknown} on this deployment"),
        ((regulator.address, "ehr", "break-glass", "review", "99", "accept"), "no break-glass session 99"),
        # files
        (("hospital-a", "ehr", "anchor", invalid, "--patient", "alice"), "invalid FHIR Observation"),
        (
            ("hospital-a", "ehr", "anchor", tmp_path / "missing.json", "--patient", "alice"),
            "cannot read FHIR resource",
        ),
        (("hospital-b", "patient", "submit-grant", good), "is not a medchain-signed-grant/1 file"),
        (("hospital-b", "patient", "submit-grant", other_chain), "signed for chain 5"),
        (("hospital-a", "ehr", "batch", tmp_path / "none"), "is not a folder"),
        # keys and contract rejections
        ((regulator.address, "ehr", "anchor", good, "--patient", "alice"), "needs the key itself"),
        (("hospital-a", "ehr", "anchor", good, "--patient", "alice"), "EHRNoTreatmentRelationship"),
        (("lab", "ehr", "break-glass", "open", "alice", "--justification", "x"), "ConsentNotCareProvider"),
        ((outsider.address, "patient", "revoke", lab_grant), "ConsentNotPatientOrGuardian"),
    ]
    for args, expected in cases:
        line = m.fails(*args)
        assert expected in line, (args, line)
    # Wrong keystore password, missing or foreign manifest, unreachable node, offline signing.
    assert "wrong password for account 'alice'" in m.fails(
        "alice", "patient", "grant", "hospital-a", env={"MEDCHAIN_PASSWORD": "not-pw"}
    )
    rpc = ["--rpc", m.rpc]
    assert "no deployment manifest" in m.fails(
        None, *rpc, "--manifest", tmp_path / "nope.json", "ehr", "records", "alice", base=False
    )
    assert "the manifest is for chain" in m.fails(
        None, *rpc, "--manifest", foreign, "patient", "grants", "alice", base=False
    )
    assert "no Ethereum node answers" in m.fails(
        None, "--rpc", f"http://127.0.0.1:{free_port()}", "patient", "history", "alice", base=False
    )
    offline = ["--rpc", f"http://127.0.0.1:{free_port()}"]
    sign = ["patient", "sign-grant", "lab", "-o", tmp_path / "s.json"]
    assert "holds manifests for chains: none" in m.fails("alice", *offline, *sign, base=False)
    assert "no node answers" in m.fails("alice", *offline, "--manifest", m.manifest, *sign, base=False)
    assert not (tmp_path / "s.json").exists()


def test_unknown_record_is_one_line_in_a_terminal(m):
    """The same, as a child process: what a person sees."""
    unknown = "0x" + "cd" * 32
    env = {k: v for k, v in os.environ.items() if k != "MEDCHAIN_PRIVATE_KEY"}
    env["MEDCHAIN_HOME"] = str(m.home)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "medchain.cli",
            "--rpc",
            m.rpc,
            "--manifest",
            m.manifest,
            "ehr",
            "history",
            unknown,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert f"no record {unknown} on this deployment" in one_line_error(done.returncode, done.stderr)

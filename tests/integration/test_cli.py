"""The `medchain` command's write paths per role, run in-process against the test chain."""

from __future__ import annotations

import json

import pytest
from brownie import chain
from brownie import web3 as brownie_web3
from click.testing import CliRunner
from eth_account import Account

from medchain import crypto
from medchain.claims import CoverageTable, PlanTerms
from medchain.cli import cli
from medchain.consent import GrantTerms
from medchain.drug import lot_bytes
from medchain.ehr import KeyVault
from medchain.store import LocalFolderStore
from medchain.types import Actions, ClaimStatus, Purpose

USD = 10**6
GTIN = "09506000134352"


@pytest.fixture
def run(deploy_to, tmp_path):
    manifest = tmp_path / "manifest.json"
    suite = deploy_to(manifest)
    runner = CliRunner()

    def _run(sender, *args):
        base = [
            "--rpc",
            brownie_web3.provider.endpoint_uri,
            "--manifest",
            str(manifest),
            "--json",
            "--from",
            sender.address,
        ]
        return runner.invoke(cli, [*base, *args])

    _run.suite = suite
    return _run


def test_patient_grants_and_revokes(run, patient, hospital2):
    result = run(
        patient,
        "patient",
        "grant",
        hospital2.address,
        "--scope",
        "category:Observation",
        "--actions",
        "read,share",
        "--purpose",
        "TREAT",
        "--purpose",
        "HRESCH",
        "--days",
        "30",
    )
    assert result.exit_code == 0, result.output
    grant_id = json.loads(result.output)["grant"]
    [grant] = json.loads(run(patient, "patient", "grants", patient.address).output)
    assert (grant["id"], grant["actions"], grant["purposes"], grant["status"]) == (
        grant_id,
        "read,share",
        "TREAT,HRESCH",
        "active",
    )
    assert run(patient, "patient", "revoke", grant_id).exit_code == 0
    [grant] = json.loads(run(patient, "patient", "grants", patient.address).output)
    assert grant["status"] == "revoked"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--scope", "ward:7", "use all, category"),
        ("--actions", "delete", "unknown action"),
        ("--purpose", "MARKETING", "unknown purpose"),
    ],
)
def test_patient_grant_rejects_bad_options(run, patient, hospital2, option, value, message):
    result = run(patient, "patient", "grant", hospital2.address, option, value)
    assert result.exit_code == 2
    assert message in result.output


def test_drug_ship_receive_recall(run, manufacturer, distributor):
    d = run.suite.drugs
    d.register_product(manufacturer.address, GTIN)
    now = chain[-1].timestamp
    d.commission(manufacturer.address, GTIN, "CLI-1", now, now + 10**7, 50, b"\1" * 32)
    assert run(manufacturer, "drug", "ship", GTIN, "CLI-1", distributor.address, "20").exit_code == 0
    received = json.loads(run(distributor, "drug", "receive", GTIN, "CLI-1").output)
    assert received == {"received": 1, "units": 20}
    nothing = run(distributor, "drug", "receive", GTIN, "CLI-1")
    assert "no pending shipment" in str(nothing.exception)
    holders = json.loads(run(manufacturer, "drug", "recall", GTIN, "CLI-1", "--reason", "5").output)
    assert holders == {manufacturer.address: 30, distributor.address: 20}
    batch = d.contract.functions.batchIdOf(int(GTIN), lot_bytes("CLI-1")).call()
    assert d.status(bytes(batch)).name == "RECALLED"


def test_insurer_approves_and_denies_claims(
    run, token, regulator, insurer, hospital, patient, private_key, tmp_path
):
    suite = run.suite
    patient_key = Account.from_key(private_key(patient))
    suite.consent.grant(
        patient.address,
        GrantTerms.for_all(patient.address, hospital.address, Actions.READ | Actions.APPEND, Purpose.TREAT),
    )
    suite.consent.grant(
        patient.address, GrantTerms.for_all(patient.address, insurer.address, Actions.READ, Purpose.HPAYMT)
    )
    table = CoverageTable({"70450": 900 * USD})
    plan = suite.claims.create_plan(
        insurer.address, PlanTerms(table.root, 0, 0, 1000 * USD, 5000 * USD, 100 * USD)
    )
    suite.chain.transact(suite.token.functions.mint(insurer.address, 5000 * USD), regulator.address)
    suite.claims.fund(insurer.address, plan, 5000 * USD)
    now = chain[-1].timestamp
    deadline, sig = suite.claims.sign_enrolment(patient_key, plan, now - 60, now + 86400 * 30)
    suite.claims.enrol(insurer.address, plan, patient.address, now - 60, now + 86400 * 30, deadline, sig)
    ehr = suite.ehr(LocalFolderStore(tmp_path))
    service, proof = table.service("70450")
    ids = []
    for i in range(2):
        chain.sleep(86400)
        record = ehr.anchor_resource(
            hospital.address,
            {"resourceType": "Encounter", "status": "finished", "id": str(i), "class": {"code": "AMB"}},
            patient.address,
            KeyVault(),
            (crypto.ReaderKey.from_private_key(private_key(hospital)),),
        )
        ids.append(
            suite.claims.submit(
                hospital.address, plan, patient.address, [record], service, proof, 900 * USD
            ).id
        )
    pending = json.loads(run(insurer, "claim", "pending", str(plan)).output)
    assert [p["status"] for p in pending] == ["pended", "pended"]
    approved = json.loads(run(insurer, "claim", "approve", "0x" + ids[0].hex(), "--amount", "800").output)
    assert approved["status"] == "paid"
    denied = run(hospital, "claim", "deny", "0x" + ids[1].hex(), "--reason", "3")
    assert "ClaimsNotPlanInsurer" in str(denied.exception)
    assert (
        json.loads(run(insurer, "claim", "deny", "0x" + ids[1].hex(), "--reason", "3").output)["status"]
        == "denied"
    )
    assert suite.claims.claim(ids[1]).status == ClaimStatus.DENIED

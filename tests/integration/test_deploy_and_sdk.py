"""The one deploy path, its manifest, and the SDK talking to the suite with web3.py alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from brownie import web3 as brownie_web3
from click.testing import CliRunner
from eth_account import Account
from web3 import Web3

from medchain.chain import Chain
from medchain.cli import cli
from medchain.deploy import SuiteConfig, deploy_suite
from medchain.errors import ConfigurationError, ContractRevert, ManifestError
from medchain.manifest import Deployment
from medchain.suite import Suite
from medchain.types import Kind, MemberStatus
from tests.fixtures.deployments import KINDS, RATINGS, licence


@pytest.fixture
def manifest_path(tmp_path):
    return tmp_path / "deployments" / "local.json"


@pytest.fixture
def plain_web3():
    """A web3 connection of our own: nothing from brownie but the node's URL."""
    return Web3(Web3.HTTPProvider(brownie_web3.provider.endpoint_uri))


def test_deploy_writes_manifest_that_round_trips(deploy_to, manifest_path, regulator):
    suite = deploy_to(manifest_path)
    loaded = Deployment.load(manifest_path)
    assert loaded == suite.deployment
    data = json.loads(manifest_path.read_text())
    assert data["format"] == "medchain-deployment/1"
    assert data["chain_id"] == brownie_web3.eth.chain_id
    assert data["deployer"] == regulator.address
    assert set(data["contracts"]) == {
        "InstitutionRegistry",
        "ConsentManager",
        "EHRIndex",
        "DrugProvenance",
        "ClaimsProcessor",
        "SettlementToken",
    }
    assert data["deploy_block"] == data["contracts"]["InstitutionRegistry"]["block"]
    assert data["abi_source"].endswith("build/contracts")


def test_sdk_reads_deployment_with_web3_alone(deploy_to, manifest_path, plain_web3, hospital, insurer):
    deploy_to(manifest_path)
    suite = Suite.from_manifest(plain_web3, manifest_path)
    members = {m.address: m for m in suite.registry.members()}
    assert members[hospital.address].kind == Kind.HOSPITAL
    assert members[insurer.address].rating == RATINGS["insurer"]
    assert all(m.status == MemberStatus.ACTIVE for m in members.values())
    assert suite.registry.is_active(hospital.address, Kind.HOSPITAL, Kind.SPECIALIST_HOSPITAL)
    assert not suite.registry.is_active(hospital.address, Kind.PHARMACY)


def test_sdk_names_contract_errors(suite, outsider, applicant):
    with pytest.raises(ContractRevert) as info:
        suite.registry.propose_admission(outsider.address, applicant.address, Kind.HOSPITAL, 50, licence("a"))
    assert info.value.error == "RegistryNotActiveMember"
    assert info.value.args_ == (outsider.address,)
    assert "RegistryNotActiveMember" in str(info.value)


def test_sdk_names_contract_errors_over_plain_web3(deploy_to, manifest_path, plain_web3, outsider):
    deploy_to(manifest_path)
    suite = Suite.from_manifest(plain_web3, manifest_path)
    with pytest.raises(ContractRevert) as info:
        suite.registry.vote(outsider.address, 1, True)
    assert info.value.error == "RegistryUnknownProposal"
    assert info.value.args_ == (1,)


def test_sdk_signs_with_a_local_key(suite, regulator, applicant):
    key_holder = Account.create()
    regulator.transfer(key_holder.address, "1 ether")
    before = suite.registry.proposal_count()
    # A key that is not a member is refused by the contract, after being signed and estimated locally.
    with pytest.raises(ContractRevert, match="RegistryNotActiveMember"):
        suite.registry.propose_admission(key_holder, applicant.address, Kind.HOSPITAL, 50, licence("a"))
    assert suite.registry.proposal_count() == before


def test_deploy_with_local_key_makes_key_the_founder(sdk_chain, regulator, manifest_path):
    key_holder = Account.create()
    regulator.transfer(key_holder.address, "10 ether")
    suite = deploy_suite(sdk_chain, key_holder, SuiteConfig(founder_licence=licence("k")), manifest_path)
    assert suite.registry.member(key_holder.address).kind == Kind.REGULATOR


def test_real_network_requires_settlement_token(manifest_path, regulator):
    class TestnetChain(Chain):
        @property
        def chain_id(self) -> int:
            return 11155111

    with pytest.raises(ConfigurationError, match="settlement-token"):
        deploy_suite(
            TestnetChain(brownie_web3),
            regulator.address,
            SuiteConfig(founder_licence=licence("r")),
            manifest_path,
        )
    assert not manifest_path.exists()


def test_existing_token_is_recorded_not_deployed(sdk_chain, regulator, manifest_path, token):
    config = SuiteConfig(founder_licence=licence("r"), settlement_token=token.address)
    suite = deploy_suite(sdk_chain, regulator.address, config, manifest_path)
    assert suite.deployment.address_of("SettlementToken") == token.address
    assert suite.deployment.contracts["SettlementToken"].tx_hash == ""


def test_manifest_of_another_chain_is_refused(deploy_to, manifest_path, plain_web3):
    deploy_to(manifest_path)
    data = json.loads(manifest_path.read_text())
    data["chain_id"] = 1
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="chain 1"):
        Suite.from_manifest(plain_web3, manifest_path)


@pytest.mark.parametrize("text", ["{}", "not json", '{"format": "medchain-deployment/1"}'])
def test_malformed_manifest_is_refused(tmp_path, plain_web3, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ManifestError):
        Suite.from_manifest(plain_web3, path)


def test_missing_manifest_says_what_to_do(tmp_path, plain_web3):
    with pytest.raises(ManifestError, match="deploy first"):
        Suite.from_manifest(plain_web3, tmp_path / "none.json")


def test_cli_lists_members_as_json(deploy_to, manifest_path):
    deploy_to(manifest_path)
    url = brownie_web3.provider.endpoint_uri
    result = CliRunner().invoke(
        cli, ["--rpc", url, "--manifest", str(manifest_path), "--json", "institution", "list"]
    )
    assert result.exit_code == 0, result.output
    members = json.loads(result.output)
    assert [m["kind"] for m in members] == ["regulator", *[k.label for k in KINDS.values()]]


def test_cli_reports_unreachable_node_in_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from medchain.cli import main; main()",
            "--rpc",
            "http://127.0.0.1:9",
            "--manifest",
            str(tmp_path / "m.json"),
            "institution",
            "list",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: no Ethereum node answers at http://127.0.0.1:9")
    assert "Traceback" not in result.stderr


def test_cli_rejects_bad_kind_without_traceback(deploy_to, manifest_path, regulator, applicant):
    deploy_to(manifest_path)
    url = brownie_web3.provider.endpoint_uri
    result = CliRunner().invoke(
        cli,
        [
            "--rpc",
            url,
            "--manifest",
            str(manifest_path),
            "--from",
            regulator.address,
            "institution",
            "admit",
            applicant.address,
            "--kind",
            "spa",
            "--rating",
            "5",
            "--licence",
            "0x" + "11" * 32,
        ],
    )
    assert result.exit_code == 2
    assert "unknown kind 'spa'" in result.output


def test_cli_role_views(deploy_to, manifest_path, patient, hospital, insurer, manufacturer):
    """Read-only views per role: a patient's grants, a batch trace, a plan report."""
    from medchain.consent import GrantTerms
    from medchain.types import Actions, Purpose

    suite = deploy_to(manifest_path)
    suite.consent.grant(
        patient.address, GrantTerms.for_all(patient.address, hospital.address, Actions.READ, Purpose.TREAT)
    )
    suite.drugs.register_product(manufacturer.address, "09506000134352")
    suite.drugs.commission(manufacturer.address, "09506000134352", "L1", 1, 2**39, 10, b"\1" * 32)
    url = brownie_web3.provider.endpoint_uri
    base = ["--rpc", url, "--manifest", str(manifest_path), "--json"]
    runner = CliRunner()
    grants = json.loads(runner.invoke(cli, [*base, "patient", "grants", patient.address]).output)
    assert [(g["grantee"], g["actions"], g["purposes"], g["status"]) for g in grants] == [
        (hospital.address, "read", "TREAT", "active")
    ]
    trace = json.loads(runner.invoke(cli, [*base, "drug", "trace", "09506000134352", "L1"]).output)
    assert [(t["event"], t["units"]) for t in trace] == [("commissioned", 10)]
    result = runner.invoke(cli, [*base, "drug", "trace", "09506000134353", "L1"])
    assert result.exit_code == 2
    assert "check digit" in result.output
    unknown = runner.invoke(cli, [*base, "claim", "pending", "1"])
    assert isinstance(unknown.exception, ContractRevert)
    assert unknown.exception.error == "ClaimsUnknownPlan"

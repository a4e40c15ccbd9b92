"""`medchain chain`, `account` and `deploy --dev-consortium` as a user runs them: separate processes,
a persistent Anvil of their own, a private MEDCHAIN_HOME; and the one-line errors for bad set-ups."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medchain.localchain import free_port

ROOT = Path(__file__).resolve().parents[2]


def medchain(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medchain", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """The failure is one `error:` line on stderr naming the problem, a non-zero exit, no traceback."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A chain started by `medchain chain up` with the suite and the development consortium."""
    path = tmp_path_factory.mktemp("medchain-home")
    env = {
        **os.environ,
        "MEDCHAIN_HOME": str(path),
        "MEDCHAIN_CHAIN_PORT": str(free_port()),
        "MEDCHAIN_PASSWORD": "correct horse",
        "PATH": f"{ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}",
    }
    for name in ("MEDCHAIN_RPC", "MEDCHAIN_MANIFEST", "MEDCHAIN_PRIVATE_KEY"):
        env.pop(name, None)
    up = medchain(env, "--json", "chain", "up")
    assert up.returncode == 0, up.stderr
    try:
        deployed = medchain(env, "--json", "deploy", "--dev-consortium")
        assert deployed.returncode == 0, deployed.stderr
        yield env, json.loads(deployed.stdout)
    finally:
        medchain(env, "chain", "down")


def test_dev_consortium_accounts_sign_by_name(home):
    env, deployed = home
    assert set(deployed["accounts"]) == {
        "regulator",
        "hospital-a",
        "hospital-b",
        "laboratory",
        "pharmacy",
        "manufacturer",
        "distributor",
        "insurer",
    }
    listed = json.loads(medchain(env, "--json", "account", "list").stdout)
    assert {a["name"]: a["address"] for a in listed} == deployed["accounts"]
    shown = json.loads(medchain(env, "--json", "institution", "show", "hospital-a").stdout)
    assert (shown["address"], shown["kind"], shown["status"]) == (
        deployed["accounts"]["hospital-a"],
        "hospital",
        "active",
    )
    # A keystore name signs: the regulator opens a proposal to suspend the laboratory.
    proposed = medchain(
        env, "--json", "--from", "regulator", "institution", "propose", "suspend", "laboratory"
    )
    assert proposed.returncode == 0, proposed.stderr
    assert json.loads(proposed.stdout)["subject"] == deployed["accounts"]["laboratory"]


def test_dev_consortium_members_get_demonstration_glns(home):
    """Every development role has a GLN (GS1 Prefix 952, or the example GTIN's prefix for the
    manufacturer) with a right check digit, so the tour's EPCIS export names everyone."""
    from stdnum import ean

    env, deployed = home
    listed = json.loads(medchain(env, "--json", "institution", "directory", "show").stdout)
    assert {row["address"] for row in listed} == set(deployed["accounts"].values())
    assert all(ean.is_valid(row["gln"]) and row["gln"].startswith(row["company_prefix"]) for row in listed)
    maker = json.loads(medchain(env, "--json", "institution", "directory", "show", "manufacturer").stdout)
    assert maker["company_prefix"] == "9506000"


def test_chain_state_survives_down_and_up(home):
    env, _ = home
    created = medchain(env, "--json", "account", "new", "alice", "--light-kdf")
    assert created.returncode == 0, created.stderr
    alice = json.loads(created.stdout)["address"]
    assert medchain(env, "chain", "fund", "alice", "--eth", "7").returncode == 0
    before = json.loads(medchain(env, "--json", "chain", "status").stdout)
    assert before["suite"] == "deployed"
    assert medchain(env, "chain", "down").returncode == 0
    stopped = json.loads(medchain(env, "--json", "chain", "down").stdout)
    assert stopped["running"] is False
    assert medchain(env, "chain", "up").returncode == 0
    after = json.loads(medchain(env, "--json", "chain", "status").stdout)
    assert (after["chain_id"], after["block"], after["suite"]) == (
        before["chain_id"],
        before["block"],
        "deployed",
    )
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(after["rpc"]))
    assert w3.eth.get_balance(alice) == 7 * 10**18


def test_account_import_reads_the_key_from_stdin_never_from_arguments(home):
    env, _ = home
    key = "0x" + "5a" * 32
    imported = medchain(env, "--json", "account", "import", "bob", "--light-kdf", stdin=key + "\n")
    assert imported.returncode == 0, imported.stderr
    from eth_account import Account

    assert json.loads(imported.stdout)["address"] == Account.from_key(key).address
    assert key.removeprefix("0x") not in (Path(env["MEDCHAIN_HOME"]) / "keystore" / "bob.json").read_text()
    one_line_error(medchain(env, "account", "import", "carol", key), "unexpected extra argument")
    one_line_error(medchain(env, "account", "import", "bob", stdin=key + "\n"), "exists already")
    one_line_error(medchain(env, "account", "import", "dave", stdin="not a key\n"), "not a private key")


def test_wrong_keystore_password_is_one_line(home):
    env, _ = home
    wrong = {**env, "MEDCHAIN_PASSWORD": "wrong"}
    one_line_error(
        medchain(wrong, "--from", "regulator", "institution", "propose", "suspend", "pharmacy"),
        "wrong password for account 'regulator'",
    )
    one_line_error(
        medchain(env, "--from", "nobody", "institution", "vote", "1", "yes"), "no account named 'nobody'"
    )


def test_bad_addresses_and_names_are_one_line(home):
    env, _ = home
    one_line_error(medchain(env, "chain", "fund", "0x1234"), "not an Ethereum address")
    one_line_error(medchain(env, "institution", "show", "Bad Name!"), "not a usable account name")
    one_line_error(
        medchain(env, "--from", "0xzz", "institution", "vote", "1", "yes"), "not an Ethereum address"
    )
    one_line_error(medchain(env, "account", "new", "UPPER"), "not a usable account name")


def test_unreachable_node_is_one_line(home):
    env, _ = home
    one_line_error(
        medchain(env, "--rpc", f"http://127.0.0.1:{free_port()}", "institution", "list"),
        "no Ethereum node answers",
    )


def test_missing_and_foreign_manifests_are_one_line(home, tmp_path):
    env, _ = home
    one_line_error(
        medchain(env, "--manifest", str(tmp_path / "none.json"), "institution", "list"),
        "no deployment manifest",
    )
    manifest = json.loads((Path(env["MEDCHAIN_HOME"]) / "deployments" / "31337.json").read_text())
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({**manifest, "chain_id": 11155111}))
    one_line_error(
        medchain(env, "--manifest", str(foreign), "institution", "list"),
        "the manifest is for chain 11155111 but the node is chain 31337",
    )
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    one_line_error(medchain(env, "--manifest", str(garbage), "institution", "list"), "manifest")


def test_contract_rejection_names_the_solidity_error(home):
    env, _ = home
    # The proposer's yes is counted when it opens the proposal: a second vote is refused by name.
    opened = medchain(env, "--json", "--from", "hospital-a", "institution", "propose", "suspend", "pharmacy")
    assert opened.returncode == 0, opened.stderr
    pid = str(json.loads(opened.stdout)["id"])
    line = one_line_error(
        medchain(env, "--from", "hospital-a", "institution", "vote", pid, "yes"), "Registry"
    )
    assert line.endswith(")"), line  # the error's arguments are shown
    assert f"({pid}, " in line, line


def test_help_is_fast_and_lists_every_group():
    env = {**os.environ}
    result = medchain(env, "--help")
    assert result.returncode == 0
    for group in (
        "chain",
        "account",
        "deploy",
        "institution",
        "patient",
        "ehr",
        "drug",
        "claim",
        "gateway",
        "demo",
    ):
        assert f"  {group} " in result.stdout


def test_demo_keep_leaves_a_chain_the_other_commands_find(tmp_path):
    env = {
        **os.environ,
        "MEDCHAIN_HOME": str(tmp_path / "home"),
        "MEDCHAIN_CHAIN_PORT": str(free_port()),
        "MEDCHAIN_PASSWORD": "demo password",
        "PATH": f"{ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}",
    }
    for name in ("MEDCHAIN_RPC", "MEDCHAIN_MANIFEST", "MEDCHAIN_PRIVATE_KEY"):
        env.pop(name, None)
    try:
        demo = medchain(env, "demo", "--keep")
        assert demo.returncode == 0, demo.stderr[-2000:]
        assert "try next:" in demo.stdout
        # No --rpc, no --manifest: the chain and the deployment are found where demo --keep left them.
        members = json.loads(medchain(env, "--json", "institution", "list").stdout)
        assert len(members) >= 8
        report = medchain(env, "--json", "--from", "insurer", "claim", "report", "1")
        assert report.returncode == 0, report.stderr
        assert json.loads(report.stdout)["claims"] >= 1
        status = json.loads(medchain(env, "--json", "chain", "status").stdout)
        assert status["suite"] == "deployed"
    finally:
        medchain(env, "chain", "down")

"""The regional-alliance scenario (medchain.scenario) at a small size, on Anvils of its own.

One run (rates raised so that a dozen patients over five days do everything) is checked against
the raw chain: the refusals by error, no PHI anywhere on chain, and the chain-only definitions of
the module docstring (retrieval times, repeat examinations) giving the simulator's own figures.
A second run with the same seed on a fresh chain must be the same run. The CLI is run as a user
runs it, bad input included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from medchain.chain import Chain
from medchain.cli import main
from medchain.cli import scenario as cli_scenario
from medchain.localchain import LocalChain, free_port
from medchain.manifest import Deployment
from medchain.scenario import (
    DEFAULT_DAYS,
    DEFAULT_PATIENTS,
    FRAUD_KINDS,
    ScenarioConfig,
    ScenarioResult,
    Workload,
    run_scenario,
)
from medchain.types import category_text

ROOT = Path(__file__).resolve().parents[2]
MARKER = "PHI-CANARY-7f3a91"
BUSY = Workload(
    primary_visit_rate=0.3,
    referral_share=0.6,
    transfer_share=0.6,
    emergency_rate=0.05,
    snoop_rate=1.0,
    revoke_share=0.6,
    follow_up_attempt_share=1.0,
    deny_share=0.5,
    appeal_share=1.0,
    history_share=0.6,
)
SMALL = ScenarioConfig(
    patients=12,
    days=5,
    seed=11,
    hospitals=2,
    clinics=3,
    specialists=2,
    phi_marker=MARKER,
    workload=BUSY,
)
DAY = 86_400


def run_small(tmp: Path) -> tuple[Web3, ScenarioResult, Any]:
    chain = LocalChain("anvil", accounts=1)
    w3 = chain.start()
    return w3, run_scenario(w3, SMALL, tmp / "manifest.json", tmp), chain


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    w3, result, chain = run_small(tmp_path_factory.mktemp("scenario"))
    try:
        yield w3, result
    finally:
        chain.stop()


@pytest.fixture(scope="module")
def logged(small):
    """The small run's events and transactions, read from the chain once for the module."""
    w3, result = small
    return events(w3, result), transactions(w3, result)


# ─── Reading the run back from the chain ────────────────────────────────────────────────────────


def contracts(w3: Web3, result: ScenarioResult) -> dict[str, Any]:
    deployment = Deployment.load(result.manifest_path)
    chain = Chain(w3)
    return {name: chain.contract(name, deployment.address_of(name)) for name in deployment.contracts}


def events(w3: Web3, result: ScenarioResult) -> list[tuple[str, str, dict[str, Any], int, int]]:
    """Every event of the run, decoded: (contract, event, args, block, block time), in chain order."""
    by_address = {c.address: (name, c) for name, c in contracts(w3, result).items()}
    logs = w3.eth.get_logs({"fromBlock": result.from_block, "toBlock": result.to_block})
    times = {n: int(w3.eth.get_block(n)["timestamp"]) for n in {int(log["blockNumber"]) for log in logs}}
    out = []
    for log in logs:
        name, contract = by_address[log["address"]]
        for event in contract.events:
            try:
                decoded = event().process_log(log)
            except Exception:
                continue
            out.append(
                (
                    name,
                    decoded["event"],
                    dict(decoded["args"]),
                    int(log["blockNumber"]),
                    times[int(log["blockNumber"])],
                )
            )
            break
    return out


def transactions(w3: Web3, result: ScenarioResult) -> list[tuple[Any, Any]]:
    """(transaction, receipt) of every block of the run."""
    out = []
    for number in range(result.from_block, result.to_block + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        receipts = {r["transactionHash"]: r for r in w3.eth.get_block_receipts(number)}
        out += [(tx, receipts[tx["hash"]]) for tx in block["transactions"]]
    return out


class _Revert(Exception):
    def __init__(self, data: str) -> None:
        super().__init__("revert")
        self.data = data


def refusals_on_chain(
    w3: Web3, result: ScenarioResult, sent: list[tuple[Any, Any]]
) -> dict[str, Counter[str]]:
    """The failed transactions of the run, replayed by the node: error names per contract."""
    names = {c.address: name for name, c in contracts(w3, result).items()}
    decoder = Chain(w3)
    found: dict[str, Counter[str]] = {}
    for tx, receipt in sent:
        if receipt["status"] == 1:
            continue
        trace = w3.provider.make_request(
            "debug_traceTransaction", [tx["hash"].to_0x_hex(), {"tracer": "callTracer"}]
        )
        error = decoder.decode_revert(_Revert(trace["result"]["output"]))
        found.setdefault(names[tx["to"]], Counter())[getattr(error, "error", str(error))] += 1
    return found


RANDOM = {
    "recordId",
    "fingerprint",
    "cid",
    "root",
    "claimId",
    "dispenseId",
    "patientRef",
    "evidence",
    "justificationDigest",
}
"""Event fields drawn at random on purpose (record salts, data keys, dispense salts) or hashed from them."""
TIMES = {
    "notBefore",
    "notAfter",
    "start",
    "end",
    "submittedAt",
    "shippedAt",
    "expiresAt",
    "manufacturedAt",
    "expiry",
    "deadline",
}


def key_fields(value: Any, started_at: int, names: dict[str, str], key: str = "") -> Any:
    """An event's fields that a seed decides: random ones dropped, times relative to the first day,
    contract addresses by name."""
    if isinstance(value, Mapping):
        return {k: key_fields(v, started_at, names, k) for k, v in sorted(value.items()) if k not in RANDOM}
    if isinstance(value, list | tuple):
        return [key_fields(v, started_at, names) for v in value]
    if key in TIMES and isinstance(value, int) and value < 2**39:
        return value - started_at
    if isinstance(value, str) and value in names:
        return names[value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def sequence(w3: Web3, result: ScenarioResult, logs: list[Any]) -> list[Any]:
    names = {c.address: name for name, c in contracts(w3, result).items()}
    return [
        (contract, event, key_fields(args, result.started_at, names), at - result.started_at)
        for contract, event, args, _block, at in logs
    ]


# ─── The run ────────────────────────────────────────────────────────────────────────────────────


def test_small_scenario_does_every_activity(small):
    _w3, result = small
    s = result.simulated
    assert s.institutions == 1 + 2 + 3 + 2 + 1 + 2 + 2 + 3 + 2
    assert s.admitted_by_vote == s.institutions - s.founders
    for name in (
        "primary_visits",
        "referral_visits",
        "emergency_visits",
        "visit_consents",
        "consents_revoked",
        "records_anchored",
        "lab_batches",
        "cross_institution_reads",
        "emergency_reads",
        "exams_done",
        "reexams_avoided",
        "unauthorised_attempts_blocked",
        "break_glass_sessions",
        "dispenses",
        "recalls",
        "recalled_dispenses_blocked",
        "claims_paid_on_submission",
        "claims_pended",
        "claims_denied",
        "claims_appealed",
    ):
        assert getattr(s, name) > 0, name
    assert s.unauthorised_reads == 0
    # Every pended claim was reviewed and every appeal decided (the follow-up days finish them),
    # and the pools were funded enough that every approval paid at once.
    assert s.claims_approved + s.claims_denied == s.claims_pended + s.claims_appealed
    assert s.claims_paid == s.claims_paid_on_submission + s.claims_approved
    assert s.recall_units_located == s.recall_units_outstanding  # the recall found every unit
    assert result.from_block < result.first_day_block <= result.to_block
    # Every refusal but a read without consent is a failed transaction; a refused read succeeds as a
    # transaction that records AccessDenied (EHRIndex.tryAccessRecord).
    failed = {error: n for error, n in s.refusals.items() if error != "AccessDenied"}
    assert result.refused_transactions == sum(failed.values())


def test_each_fraudulent_claim_kind_is_refused_with_its_error(small, logged):
    w3, result = small
    rounds = max(1, SMALL.patients // 25)
    assert result.simulated.fraud_attempts == len(FRAUD_KINDS) * rounds
    for error in FRAUD_KINDS.values():
        assert result.simulated.refusals[error] == rounds, error
    on_chain = refusals_on_chain(w3, result, logged[1])
    # Read back from the chain alone: the failed submitClaim transactions, replayed.
    assert on_chain["ClaimsProcessor"] == Counter(dict.fromkeys(FRAUD_KINDS.values(), rounds))
    assert "EHRIndex" not in on_chain  # refused reads are recorded, not reverted
    denied = w3.eth.get_logs(
        {
            "fromBlock": result.from_block,
            "toBlock": result.to_block,
            "topics": [Web3.keccak(text="AccessDenied(bytes32,address,address,uint8)").to_0x_hex()],
        }
    )
    assert len(denied) == result.simulated.unauthorised_attempts_blocked > 0
    assert on_chain["DrugProvenance"] == Counter(
        {"DrugBatchNotActive": result.simulated.recalled_dispenses_blocked}
    )


def test_no_phi_reaches_the_chain(small, logged):
    _w3, result = small
    marker = MARKER.encode()
    checked = 0
    for tx, receipt in logged[1]:
        assert marker not in bytes(tx["input"]), tx["hash"].to_0x_hex()
        for log in receipt["logs"]:
            assert marker not in bytes(log["data"])
            assert all(marker not in bytes(t) for t in log["topics"])
        checked += 1
    assert checked == result.transactions
    # The bytes the custodians stored off chain are ciphertext: the marker is not in them either.
    stored = [p for p in (result.work_dir / "store").rglob("*") if p.is_file()]
    assert stored
    assert all(marker not in p.read_bytes() for p in stored)


def test_the_same_seed_gives_the_same_run(small, logged, tmp_path):
    w3, first = small
    w3_again, again, chain = run_small(tmp_path)
    try:
        assert again.simulated == first.simulated
        assert (again.transactions, again.blocks, again.refused_transactions) == (
            first.transactions,
            first.blocks,
            first.refused_transactions,
        )

        def relative(r: ScenarioResult) -> Any:
            t, at = r.timings, r.started_at
            return (
                [
                    (x.patient, x.reader, x.batched, x.requested_at - at, x.accessed_at - at)
                    for x in t.retrievals
                ],
                [(x.patient, x.custodian, x.anchored_at - at, x.duplicate) for x in t.exams],
                [(x.provider, x.submitted_at - at, x.paid_at and x.paid_at - at) for x in t.claims],
                [(x.session_id, x.opened_at - at, x.disputed) for x in t.sessions],
            )

        assert relative(again) == relative(first)
        assert sequence(w3_again, again, events(w3_again, again)) == sequence(w3, first, logged[0])
    finally:
        chain.stop()


def test_retrieval_times_follow_from_consent_and_access_events(small, logged):
    """The module's definition: request = the latest ConsentGranted of the grant an access relied on."""
    _w3, result = small
    granted: dict[bytes, int] = {}
    from_chain = []
    for _contract, event, args, _block, at in logged[0]:
        if event == "ConsentGranted":
            granted[bytes(args["grantId"])] = at
        elif event == "RecordAccessed" and not args["breakGlass"]:
            requested = granted[bytes(args["authorization"])]
            from_chain.append((args["patient"], args["accessor"], requested, at))
    simulated = [(r.patient, r.reader, r.requested_at, r.accessed_at) for r in result.timings.retrievals]
    assert sorted(from_chain) == sorted(simulated)
    assert all(accessed > requested for _p, _r, requested, accessed in from_chain)


def test_repeat_and_avoided_examinations_follow_from_anchors_and_reads(small, logged):
    _w3, result = small
    window = SMALL.workload.recent_result_days * DAY
    reports: dict[str, list[int]] = {}
    scans: set[bytes] = set()
    exams = repeats = avoided = 0
    for _contract, event, args, block, at in logged[0]:
        if event == "RecordAccessed" and bytes(args["recordId"]) in scans and not args["breakGlass"]:
            avoided += 1
        if event != "RecordAnchored" or category_text(bytes(args["category"])) != "DiagnosticReport":
            continue
        scans.add(bytes(args["recordId"]))
        earlier = reports.setdefault(args["patient"], [])
        if block >= result.first_day_block:
            exams += 1
            repeats += any(at - t <= window for t in earlier)
        earlier.append(at)
    s = result.simulated
    assert (exams, repeats, avoided) == (s.exams_done, s.duplicate_exams, s.reexams_avoided)


def test_claim_dispute_and_recall_figures_follow_from_their_events(small, logged):
    _w3, result = small
    submitted, paid, appealed, decided = {}, {}, {}, {}
    opened, reviewed = {}, {}
    holders, commissioned, dispensed, recalled_at = 0, {}, Counter(), None
    recalled = bytes.fromhex(result.timings.recalls[0].batch_id[2:])
    for _contract, event, args, _block, at in logged[0]:
        if event == "ClaimSubmitted":
            submitted["0x" + bytes(args["claimId"]).hex()] = at
        elif event == "ClaimPaid":
            paid["0x" + bytes(args["claimId"]).hex()] = at
        elif event == "ClaimAppealed":
            appealed["0x" + bytes(args["claimId"]).hex()] = at
        elif event == "ClaimReviewed" and "0x" + bytes(args["claimId"]).hex() in appealed:
            decided["0x" + bytes(args["claimId"]).hex()] = at
        elif event == "BreakGlassOpened":
            opened[args["sessionId"]] = at
        elif event == "BreakGlassReviewed":
            reviewed[args["sessionId"]] = (at, args["review"] == 3)  # Review.Disputed
        elif event == "BatchCommissioned":
            commissioned[bytes(args["batchId"])] = args["quantity"]
        elif event == "Dispensed" and recalled_at is None:
            dispensed[bytes(args["batchId"])] += args["quantity"]
        elif event == "HolderAtRecall":
            holders += args["available"] + args["inTransit"]
            recalled_at = at
    claims = {c.claim_id: c for c in result.timings.claims}
    assert set(submitted) == set(claims)
    assert {k: paid.get(k) for k in submitted} == {k: c.paid_at for k, c in claims.items()}
    assert appealed == {k: c.appealed_at for k, c in claims.items() if c.appealed_at is not None}
    assert decided == {k: c.appeal_decided_at for k, c in claims.items() if c.appeal_decided_at is not None}
    sessions = {s.session_id: s for s in result.timings.sessions}
    assert opened == {k: s.opened_at for k, s in sessions.items()}
    assert reviewed == {k: (s.reviewed_at, s.disputed) for k, s in sessions.items() if s.reviewed_at}
    [recall] = result.timings.recalls
    assert (holders, recalled_at) == (recall.units_located, recall.recalled_at)
    assert commissioned[recalled] - dispensed[recalled] == recall.units_outstanding


# ─── The command ────────────────────────────────────────────────────────────────────────────────


def medchain(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medchain", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def in_process(env: dict[str, str], monkeypatch, capsys, *args: str) -> subprocess.CompletedProcess[str]:
    """`medchain ARGS` through the CLI's entry point in this process (quicker than a new one)."""
    for name, value in env.items():
        if name.startswith("MEDCHAIN_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["medchain", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def env(tmp_path):
    env = {**os.environ, "MEDCHAIN_HOME": str(tmp_path / "home"), "MEDCHAIN_CHAIN_PORT": str(free_port())}
    for name in ("MEDCHAIN_RPC", "MEDCHAIN_MANIFEST", "MEDCHAIN_PRIVATE_KEY"):
        env.pop(name, None)
    return env


TINY = (
    "--patients",
    "4",
    "--days",
    "2",
    "--seed",
    "5",
    "--hospitals",
    "1",
    "--clinics",
    "2",
    "--specialists",
    "1",
)


def test_scenario_run_prints_its_summary_as_json(env):
    done = medchain(env, "--json", "scenario", "run", *TINY)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["patients"], summary["days"], summary["seed"]) == (4, 2, 5)
    assert summary["simulated_institutions"] == 15
    assert summary["transactions"] > summary["refused_transactions"] > 0
    assert set(FRAUD_KINDS.values()) <= set(summary["simulated_refusals"])
    assert summary["from_block"] < summary["first_day_block"] <= summary["to_block"]
    assert "throw-away chain was stopped" in done.stderr


def test_scenario_keep_leaves_a_chain_the_other_commands_use(env):
    try:
        done = medchain(env, "--json", "scenario", "run", "--keep", *TINY)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        manifest = Path(summary["manifest"])
        assert manifest == Path(env["MEDCHAIN_HOME"]) / "deployments" / "31337.json"
        members = medchain(env, "--json", "institution", "list")
        assert members.returncode == 0, members.stderr
        assert len(json.loads(members.stdout)) == summary["simulated_institutions"]
        assert list((Path(env["MEDCHAIN_HOME"]) / "scenario").glob("*/plans/plan-1.json"))
    finally:
        medchain(env, "chain", "down")


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--patients", "0", ("--patients 0", "1 to 2000")),
        ("--patients", "100000", ("--patients 100000", "hours")),
        ("--days", "-1", ("--days -1", "1 to 365")),
        ("--days", "400", ("--days 400", "coverage year")),
        ("--hospitals", "0", ("--hospitals 0", "alliance needs")),
        ("--clinics", "0", ("--clinics 0", "alliance needs")),
    ],
)
def test_a_size_the_scenario_cannot_run_is_one_line(env, monkeypatch, capsys, option, value, words):
    one_line_error(in_process(env, monkeypatch, capsys, "scenario", "run", option, value), *words)


def test_a_manifest_of_another_chain_is_one_line(env, tmp_path, monkeypatch, capsys):
    foreign = tmp_path / "foreign.json"
    foreign.write_text(
        Deployment(
            chain_id=11155111,
            deployer="0x" + "11" * 20,
            deploy_block=1,
            deployed_at=0,
            abi_source="build/contracts",
            contracts={},
        ).to_json()
    )
    line = one_line_error(
        in_process(env, monkeypatch, capsys, "--manifest", str(foreign), "scenario", "run", *TINY),
        "manifest of chain 11155111",
    )
    assert "31337" in line
    assert json.loads(foreign.read_text())["chain_id"] == 11155111  # not overwritten


def test_the_commands_defaults_are_the_scenarios():
    assert (cli_scenario.DEFAULT_PATIENTS, cli_scenario.DEFAULT_DAYS) == (DEFAULT_PATIENTS, DEFAULT_DAYS)

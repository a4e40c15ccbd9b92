"""The KPI report against a known workload (tests/fixtures/report.py): each figure equals an
independent count from the raw logs (eth_getLogs, topics and data decoded here with eth_abi from
hand-written event signatures, not through the report's code) and the figure the workload was
built to produce; refused transactions are found by scanning receipts and their errors read by an
``eth_call`` replay (the report uses the node's tracer); the value models against the paper's
inputs; the CLI, its HTML page and its bad input."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from brownie import chain as brownie_chain
from brownie import web3
from click.testing import CliRunner
from eth_abi.abi import decode
from web3 import Web3

from medchain.cli import cli
from medchain.report import TABLE1, build_report
from medchain.types import category_code

MINUTE, HOUR, DAY = 60, 3600, 86400
TERMS = "(address,address,uint8,bytes32,uint8,uint8,uint40,uint40)"
CLAIM_RECORD = "(uint32,address,address,bytes32,bytes32,uint64,uint64,uint64,uint64,uint32,uint40)"
SHIPMENT_REF = "(bytes32,address,address,uint64,uint64,uint40)"
# name -> (indexed types, data types), in declaration order: written from the interfaces by hand.
EVENTS = {
    "ConsentGranted": (["bytes32", "address", "address"], ["address", TERMS, "bool"]),
    "ConsentRevoked": (["bytes32", "address"], ["address"]),
    "RecordAnchored": (["bytes32", "address", "address"], ["bytes32", "bytes32", "bytes32", "bytes"]),
    "RecordAccessed": (["bytes32", "address", "address"], ["uint8", "bytes32", "bool"]),
    "AccessDenied": (["bytes32", "address", "address"], ["uint8"]),
    "BatchAnchored": (["uint256", "address"], ["bytes32", "uint32", "bytes"]),
    "BreakGlassOpened": (["uint256", "address", "address"], ["uint40", "bytes32"]),
    "BreakGlassReviewed": (["uint256", "address"], ["uint8", "uint256"]),
    "ClaimSubmitted": (["bytes32", "uint256", "address"], [CLAIM_RECORD, "uint8"]),
    "ClaimReviewed": (["bytes32", "address"], ["uint8", "uint64", "uint16"]),
    "ClaimAppealed": (["bytes32", "address"], ["uint64", "uint64", "uint64"]),
    "ClaimPaid": (["bytes32", "address"], ["uint64"]),
    "BatchCommissioned": (
        ["bytes32", "uint64", "address"],
        ["bytes20", "uint40", "uint40", "uint64", "bytes32", "bytes32"],
    ),
    "Shipped": (["bytes32", "bytes32", "address"], [SHIPMENT_REF]),
    "Dispensed": (["bytes32", "bytes32", "address"], ["bytes32", "uint64"]),
    "UnitsDestroyed": (["bytes32", "address"], ["uint64"]),
    "HolderAtRecall": (["bytes32", "address"], ["uint64", "uint64"]),
    "BatchStatusChanged": (["bytes32"], ["uint8", "uint8", "address", "uint16"]),
}
ERRORS = {
    "ClaimsDuplicateService(address,bytes32,uint256)",
    "ClaimsNoPaymentConsent(address,bytes32)",
    "ClaimsInvalidEvidence(bytes32)",
    "ClaimsNoEvidence()",
    "EHRAccessDenied(bytes32,address,uint8)",
    "DrugBatchNotActive(bytes32,uint8)",
}
SUBMIT_CLAIM = (
    "submitClaim(uint256,address,(address,address,bytes32,bytes32,bytes32)[],(bytes32,uint64,uint64,bytes32[]),"
    "uint64,(bytes20,bytes32,uint64,uint64,uint256))"
)


def _selector(signature: str) -> bytes:
    return bytes(Web3.keccak(text=signature)[:4])


@dataclass
class Log:
    name: str
    block: int
    index: int
    tx: str
    time: int
    topics: list
    data: tuple

    @property
    def position(self):
        return (self.block, self.index)


class Raw:
    """The deployment's logs and failed transactions, read straight from the node."""

    def __init__(self, suite, first, last):
        self.first, self.last = first, last
        self.contracts = {name: rec.address for name, rec in suite.deployment.contracts.items()}
        deploy = suite.deployment.deploy_block
        self.times = {}
        self.logs = {}
        for name, (indexed, data) in EVENTS.items():
            types = ",".join([*indexed, *data])  # declaration order is indexed-first in every event above
            topic = Web3.keccak(text=f"{name}({types})")
            found = web3.eth.get_logs({"fromBlock": deploy, "toBlock": last, "topics": [topic]})
            self.logs[name] = [self._decode(name, entry, indexed, data) for entry in found]

    def _decode(self, name, entry, indexed, data):
        block = int(entry["blockNumber"])
        if block not in self.times:
            self.times[block] = int(web3.eth.get_block(block)["timestamp"])
        topics = [decode([t], bytes(raw))[0] for t, raw in zip(indexed, entry["topics"][1:], strict=True)]
        return Log(
            name,
            block,
            int(entry["logIndex"]),
            "0x" + bytes(entry["transactionHash"]).hex(),
            self.times[block],
            topics,
            decode(data, bytes(entry["data"])),
        )

    def all(self, name):
        return self.logs[name]

    def in_range(self, name):
        return [log for log in self.logs[name] if log.block >= self.first]

    def failed(self, contract):
        """(tx hash, function selector, error name, error args) of failed calls to ``contract``,
        errors read by replaying the call with eth_call at the parent block."""
        address = self.contracts[contract].lower()
        errors = {_selector(sig): sig for sig in ERRORS}
        out = []
        for number in range(self.first, self.last + 1):
            for tx in web3.eth.get_block(number, full_transactions=True)["transactions"]:
                if str(tx["to"] or "").lower() != address:
                    continue
                if web3.eth.get_transaction_receipt(tx["hash"])["status"] != 0:
                    continue
                call = {
                    "from": tx["from"],
                    "to": tx["to"],
                    "data": "0x" + bytes(tx["input"]).hex(),
                    "gas": hex(tx["gas"]),
                }
                answer = web3.provider.make_request("eth_call", [call, hex(number - 1)])
                data = bytes.fromhex(answer["error"]["data"][2:])
                signature = errors[data[:4]]
                args = decode(
                    signature[signature.index("(") + 1 : -1].split(",") if "()" not in signature else [],
                    data[4:],
                )
                out.append(
                    ("0x" + bytes(tx["hash"]).hex(), bytes(tx["input"])[:4], signature.split("(")[0], args)
                )
        return out


def p90(values):
    data = sorted(values)
    return data[0] if len(data) == 1 else statistics.quantiles(data, n=10, method="inclusive")[8]


def durations(values):
    return (len(values), statistics.median(values), p90(values)) if values else (0, None, None)


def of(d):
    return (d.count, d.median, d.p90)


# ─── Independent counts ─────────────────────────────────────────────────────────────────────


def care_providers(raw):
    """Members admitted as a hospital, community clinic or specialist hospital (kinds 1-3), from
    MemberAdmitted(address indexed account, uint8 indexed kind, uint8, bytes32, uint256 indexed)."""
    topic = Web3.keccak(text="MemberAdmitted(address,uint8,uint8,bytes32,uint256)")
    found = web3.eth.get_logs({"fromBlock": 0, "toBlock": raw.last, "topics": [topic]})
    return {
        decode(["address"], bytes(e["topics"][1]))[0]
        for e in found
        if 1 <= decode(["uint8"], bytes(e["topics"][2]))[0] <= 3
    }


def retrieval_times(raw):
    treating = care_providers(raw)
    requests = [
        g
        for g in raw.in_range("ConsentGranted")
        if g.data[1][4] & 1 and g.data[1][5] & 1 and g.topics[2] != g.topics[1] and g.topics[2] in treating
    ]
    times = []
    for g in requests:
        again = [
            h.position
            for h in raw.all("ConsentGranted")
            if h.topics[0] == g.topics[0] and h.position > g.position
        ]
        until = min(again, default=(10**18, 0))
        reads = [
            r
            for r in raw.in_range("RecordAccessed")
            if r.data[1] == g.topics[0]
            and not r.data[2]
            and r.topics[1] == g.topics[2]
            and r.topics[2] == g.topics[1]
            and g.position < r.position < until
        ]
        if reads:
            times.append(reads[0].time - g.time)
    return len(requests), times


def exam_counts(raw, window_days=60):
    report_code = category_code("DiagnosticReport")
    anchors = [a for a in raw.all("RecordAnchored") if a.data[1] == report_code]
    grants = raw.all("ConsentGranted")
    revoked = raw.all("ConsentRevoked")
    exams = [a for a in anchors if a.block >= raw.first]
    duplicates = repeats = 0
    for e in exams:
        patient, custodian = e.topics[1], e.topics[2]
        priors = [
            a
            for a in anchors
            if a.topics[1] == patient
            and a.topics[2] != custodian
            and a.position < e.position
            and e.time - a.time <= window_days * DAY
        ]
        if not priors:
            continue
        readable = any(
            g.topics[1] == patient
            and g.topics[2] == custodian
            and g.position < e.position
            and g.data[1][4] & 1
            and g.data[1][5] & 1
            and (g.data[1][2] == 3 or (g.data[1][2] == 2 and g.data[1][3] == report_code))
            and not any(r.topics[0] == g.topics[0] and g.position < r.position < e.position for r in revoked)
            for g in grants
        )
        duplicates += readable
        repeats += not readable
    by_id = {a.topics[0]: a for a in anchors}
    treating = care_providers(raw)
    avoided = 0
    for r in raw.in_range("RecordAccessed"):
        scan = by_id.get(r.topics[0])
        if scan is None or scan.topics[2] == r.topics[1] or r.topics[1] not in treating:
            continue
        redone = any(
            e.topics[2] == r.topics[1] and e.topics[1] == scan.topics[1] and e.position > r.position
            for e in exams
        )
        avoided += not redone
    return len(exams), duplicates, repeats, avoided


# ─── The report against them ────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def ranges(kpi_workload):
    """The workload's range, and a later part of it (from the first claim on)."""
    w = kpi_workload
    raw = Raw(w.suite, w.start_block, w.end_block)
    first_claim = min(log.block for log in raw.all("ClaimSubmitted"))
    return {"whole": (w.start_block, w.end_block), "claims on": (first_claim, w.end_block)}


@pytest.fixture(scope="module", params=["whole", "claims on"])
def both(request, kpi_workload, ranges):
    first, last = ranges[request.param]
    return build_report(kpi_workload.suite, first, last), Raw(kpi_workload.suite, first, last), request.param


def test_retrieval_time_is_request_to_audited_access(both, kpi_workload):
    report, raw, which = both
    requests, times = retrieval_times(raw)
    assert (report.retrieval.requests, report.retrieval.fulfilled) == (requests, len(times))
    assert of(report.retrieval.times) == durations(times)
    if which == "whole":
        expected = kpi_workload.expected
        assert (requests, len(times)) == (expected["requests"], expected["fulfilled"])
        assert [round(t / MINUTE) for t in sorted(times)] == sorted(expected["retrieval_minutes"])


def test_duplicate_examinations_need_a_shareable_recent_result(both, kpi_workload):
    report, raw, which = both
    performed, duplicates, repeats, avoided = exam_counts(raw)
    e = report.examinations
    assert (e.performed, e.duplicates, e.repeats_not_shareable, e.avoided) == (
        performed,
        duplicates,
        repeats,
        avoided,
    )
    if which == "whole":
        x = kpi_workload.expected
        assert (performed, duplicates, repeats, avoided) == (
            x["examinations"],
            x["duplicates"],
            x["repeats_not_shareable"],
            x["avoided"],
        )
        assert e.rate == pytest.approx(duplicates / performed)


def test_unauthorised_attempts_are_blocked_and_none_succeeds(both, kpi_workload):
    report, raw, which = both
    u = report.unauthorised
    reverted = [f for f in raw.failed("EHRIndex") if f[2] == "EHRAccessDenied"]
    assert u.blocked_recorded == len(raw.in_range("AccessDenied"))
    assert u.blocked_reverted == len(reverted)
    assert u.reads == len(raw.in_range("RecordAccessed"))
    assert u.break_glass_reads == sum(1 for r in raw.in_range("RecordAccessed") if r.data[2])
    assert (u.without_basis, u.unverifiable, u.incidents_per_quarter) == ((), 0, 0.0)
    if which == "whole":
        x = kpi_workload.expected
        assert (u.blocked_recorded, u.blocked_reverted, u.reads) == (
            x["blocked_recorded"],
            x["blocked_reverted"],
            x["reads"],
        )
        assert [f[0] for f in reverted] == kpi_workload.refused_txs["EHRAccessDenied"]


def test_claim_turnaround_and_refused_claims_by_error(both, kpi_workload):
    report, raw, which = both
    c = report.claims
    submitted = {s.topics[0]: s for s in raw.all("ClaimSubmitted")}
    paid = raw.in_range("ClaimPaid")
    assert of(c.turnaround) == durations([p.time - submitted[p.topics[0]].time for p in paid])
    later = [p.time - submitted[p.topics[0]].time for p in paid if p.tx != submitted[p.topics[0]].tx]
    assert of(c.turnaround_reviewed) == durations(later)
    assert c.submitted == len(raw.in_range("ClaimSubmitted"))
    assert c.paid == len(paid)
    assert c.paid_amount == sum(p.data[0] for p in paid)
    assert c.paid_at_submission == sum(
        1 for s in raw.in_range("ClaimSubmitted") if s.tx in {p.tx for p in paid}
    )
    assert c.pended == sum(1 for s in raw.in_range("ClaimSubmitted") if s.data[1] == 1)
    assert c.denied == sum(1 for r in raw.in_range("ClaimReviewed") if r.data[0] == 4)
    assert c.appealed == len(raw.in_range("ClaimAppealed"))
    refused = [f for f in raw.failed("ClaimsProcessor") if f[1] == _selector(SUBMIT_CLAIM)]
    tally = {}
    for f in refused:
        tally[f[2]] = tally.get(f[2], 0) + 1
    assert dict(c.refused_by_error) == tally
    assert c.refused == len(refused)
    assert report.revert_source == "trace"  # Anvil answers debug_traceTransaction
    if which == "whole":
        x = kpi_workload.expected
        assert (c.submitted, c.paid, c.paid_at_submission, c.pended, c.denied, c.appealed) == (
            x["claims_submitted"],
            x["claims_paid"],
            x["claims_paid_at_once"],
            x["claims_pended"],
            x["claims_denied"],
            x["claims_appealed"],
        )
        assert tally == x["claims_refused"]
        assert sorted(f[0] for f in refused) == sorted(
            h for e in x["claims_refused"] for h in kpi_workload.refused_txs[e]
        )


def test_dispute_handling_pools_break_glass_reviews_and_appeals(both, kpi_workload):
    report, raw, which = both
    opened = {o.topics[0]: o for o in raw.all("BreakGlassOpened")}
    reviews = [r.time - opened[r.topics[0]].time for r in raw.in_range("BreakGlassReviewed")]
    decisions = []
    for a in raw.all("ClaimAppealed"):
        after = [
            r for r in raw.all("ClaimReviewed") if r.topics[0] == a.topics[0] and r.position > a.position
        ]
        if after and after[0].block >= raw.first:
            decisions.append(after[0].time - a.time)
    d = report.disputes
    assert of(d.break_glass_review) == durations(reviews)
    assert of(d.appeal_decision) == durations(decisions)
    assert of(d.pooled) == durations(reviews + decisions)
    assert d.sessions_disputed == sum(1 for r in raw.in_range("BreakGlassReviewed") if r.data[0] == 3)
    if which == "whole":
        x = kpi_workload.expected
        assert [round(t / DAY, 1) for t in sorted(reviews)] == [2.0, 3.0]
        assert [round(t / DAY) for t in decisions] == x["appeal_days"]
        assert (d.sessions_opened, d.sessions_disputed) == (x["sessions_opened"], x["sessions_disputed"])


def test_recall_reach_counts_located_units_against_those_in_circulation(both, kpi_workload):
    report, raw, which = both
    r = report.recalls
    recalls = [s for s in raw.in_range("BatchStatusChanged") if s.data[1] == 3]
    circulating = located = 0
    for recall in recalls:
        batch = recall.topics[0]
        made = sum(c.data[3] for c in raw.all("BatchCommissioned") if c.topics[0] == batch)
        gone = sum(
            x.data[-1]
            for name in ("Dispensed", "UnitsDestroyed")
            for x in raw.all(name)
            if (x.topics[1] if name == "Dispensed" else x.topics[0]) == batch and x.position < recall.position
        )
        circulating += made - gone
        located += sum(h.data[0] + h.data[1] for h in raw.all("HolderAtRecall") if h.tx == recall.tx)
    assert (r.recalls, r.in_circulation, r.located) == (len(recalls), circulating, located)
    refused = [f for f in raw.failed("DrugProvenance") if f[2] == "DrugBatchNotActive" and f[3][1] == 3]
    assert r.refused_movements == len(refused)
    if which == "whole":
        x = kpi_workload.expected
        assert (r.in_circulation, r.located, r.blocked, r.reach) == (
            x["recall_circulation"],
            x["recall_located"],
            90,
            1.0,
        )
        assert r.refused_movements == x["refused_movements"]


def test_counts_of_records_consents_and_claims(both):
    report, raw, _which = both
    a = report.activity
    assert a.records_single == len(raw.in_range("RecordAnchored"))
    assert a.record_batches == len(raw.in_range("BatchAnchored"))
    assert a.records_batched == sum(b.data[1] for b in raw.in_range("BatchAnchored"))
    assert a.consents_granted == len(raw.in_range("ConsentGranted"))
    assert a.consents_by_signature == sum(1 for g in raw.in_range("ConsentGranted") if g.data[2])
    assert a.consents_revoked == len(raw.in_range("ConsentRevoked"))


def test_table_before_column_is_table1_and_after_is_labelled_simulated(both):
    report, _raw, _which = both
    rows = {r.key: r for r in report.rows}
    for baseline in TABLE1:
        row = rows[baseline.key]
        assert (row.before_value, row.paper_after_value, row.source) == (
            baseline.before,
            baseline.paper_after,
            "Table 1 (2023)",
        )
    assert rows["retrieval"].before == "45 min"
    assert rows["duplicate_exams"].before == "31.0 %"
    assert rows["unauthorised"].before == "12 per quarter"
    assert rows["disputes"].before == "42 days"
    assert {r.basis for r in report.rows} == {"simulated", "not on chain"}
    assert rows["exam_cost"].basis == "not on chain"
    assert rows["unauthorised"].change == "-100.0 %"
    assert "doi:10.12677/ssem.2026.152043" in report.sources["before"]


def test_value_models_with_the_papers_inputs_and_the_chains_timings(both):
    report, raw, _which = both
    v = report.value
    assert v.paper_efficiency.eta == pytest.approx(0.991)  # 1 - 0.4 x 0.15 x 0.3 x 0.5
    assert v.printed_eta == 0.981
    assert "98.1" in v.eta_remark
    assert "99.1" in v.eta_remark
    assert v.cost.after == pytest.approx(456.1)
    assert v.cost.saving_rate == pytest.approx(0.375, abs=5e-4)
    assert v.table1_saving == pytest.approx(0.4)
    _requests, times = retrieval_times(raw)
    if times:
        assert v.measured is not None
        assert v.measured.eta == pytest.approx(1 - statistics.median(times) / (45 * MINUTE))
        assert v.measured.inputs.alphas[1] == 0.0  # feedback: not on chain, taken as unchanged
    else:
        assert v.measured is None
        assert "No request" in v.measured_note


# ─── The command ────────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def manifest(kpi_workload, tmp_path_factory):
    path = tmp_path_factory.mktemp("kpi-manifest") / "manifest.json"
    kpi_workload.suite.deployment.save(path)
    return path


def medchain(*args, home):
    env = {k: v for k, v in os.environ.items() if k != "MEDCHAIN_PRIVATE_KEY"}
    env["MEDCHAIN_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-c", "from medchain.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def one_line_error(code, stderr):
    assert code != 0
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    return stderr.strip()


class _Resources(HTMLParser):
    """Collects every element attribute that would make a browser fetch something."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith(("#", "data:")):
                self.found.append((tag, name, value))


def external_resources(page):
    parser = _Resources()
    parser.feed(page)
    return parser.found


def test_report_command_prints_json_and_writes_the_html_page(kpi_workload, manifest, tmp_path):
    w = kpi_workload
    page = tmp_path / "kpi.html"
    base = ["--rpc", web3.provider.endpoint_uri, "--manifest", str(manifest)]
    result = CliRunner().invoke(
        cli,
        [
            *base,
            "report",
            "--from-block",
            str(w.start_block),
            "--to-block",
            str(w.end_block),
            "--html",
            str(page),
            "--json",
        ],
        env={"MEDCHAIN_HOME": str(tmp_path)},
    )
    assert result.exit_code == 0, (result.output, result.exception)
    data = json.loads(result.stdout)
    assert data == build_report(w.suite, w.start_block, w.end_block).to_dict()
    text = page.read_text()
    assert not (tmp_path / "kpi.html.tmp").exists()
    for chart in ("chart-table1", "chart-durations", "chart-claims", "chart-access", "chart-value"):
        assert f'id="{chart}"' in text
    assert external_resources(text) == []  # plotly.js inline: the page fetches nothing
    assert json.dumps(data, ensure_ascii=False).replace("</", "<\\/") in text
    table = CliRunner().invoke(
        cli, [*base, "report", "--from-block", str(w.start_block)], env={"MEDCHAIN_HOME": str(tmp_path)}
    )
    assert table.exit_code == 0, table.output
    assert "Cross-institution record retrieval time" in table.stdout
    assert "ClaimsNoPaymentConsent" in table.stdout
    assert "simulated" in table.stdout


def test_report_bad_input_is_one_line(kpi_workload, manifest, tmp_path):
    w = kpi_workload
    rpc = web3.provider.endpoint_uri
    base = ["--rpc", rpc, "--manifest", str(manifest)]
    deploy = w.suite.deployment.deploy_block
    # A range that ends before the deployment.
    code, _out, err = medchain(
        *base, "report", "--from-block", "0", "--to-block", str(deploy - 1), home=tmp_path
    )
    line = one_line_error(code, err)
    assert f"end before this deployment (deployed at block {deploy}" in line
    # A range after the deployment with none of its events.
    brownie_chain.mine(3)
    head = web3.eth.block_number
    code, _out, err = medchain(*base, "report", "--from-block", str(head - 2), home=tmp_path)
    assert "no events of this deployment" in one_line_error(code, err)
    # Beyond the chain's head, and an empty range.
    code, _out, err = medchain(
        *base, "report", "--from-block", "1", "--to-block", str(head + 100), home=tmp_path
    )
    assert f"beyond the chain's latest block {head}" in one_line_error(code, err)
    code, _out, err = medchain(*base, "report", "--from-block", "9", "--to-block", "3", home=tmp_path)
    assert "is empty" in one_line_error(code, err)
    # A manifest for another chain.
    foreign = tmp_path / "foreign.json"
    data = json.loads(manifest.read_text())
    data["chain_id"] = 5
    foreign.write_text(json.dumps(data))
    code, _out, err = medchain(
        "--rpc", rpc, "--manifest", str(foreign), "report", "--from-block", "0", home=tmp_path
    )
    assert "the manifest is for chain 5 but the node is chain" in one_line_error(code, err)
    # A malformed block number is a usage error.
    code, _out, err = medchain(*base, "report", "--from-block", "minus-one", home=tmp_path)
    assert code == 2
    assert "Traceback" not in err

"""`medchain drug` as manufacturer, distributor, pharmacy and regulator run it, and bad input
ending in one line. Commands run in-process through `medchain.cli.main` (the real error handling:
one `error:` line on stderr, exit code), against one deployment per module."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from brownie import web3 as brownie_web3

from medchain.claims import DispenseRef
from medchain.cli import main
from medchain.cli.drug import SerialList, load_serials, serial_list_path
from medchain.deploy import SuiteConfig, deploy_suite
from medchain.directory import EXAMPLE_GTIN_PREFIX, sample_entry
from medchain.drug import Dispense, SerialTree, batch_id_of, lot_bytes
from medchain.errors import ConfigurationError
from medchain.keystore import Keystore
from medchain.localchain import free_port
from medchain.suite import Suite
from medchain.types import BatchStatus, patient_ref
from tests.fixtures.deployments import licence

GTIN = "09506000134352"
EXPIRY = "2049-12-31"
UNKNOWN = f"no batch {GTIN} / NOPE on this deployment"


@pytest.fixture(scope="module")
def manifest(sdk_chain, regulator, founding_members, tmp_path_factory):
    """One deployment for the module (every test starts from its snapshot)."""
    path = tmp_path_factory.mktemp("drug-cli") / "manifest.json"
    config = SuiteConfig(founder_licence=licence("regulator"), founding_members=founding_members)
    deploy_suite(sdk_chain, regulator.address, config, manifest_path=path)
    return path


@pytest.fixture(scope="module")
def suite(manifest):
    return Suite.from_manifest(brownie_web3, manifest)


@pytest.fixture(scope="module")
def product(suite, manufacturer):
    suite.drugs.register_product(manufacturer.address, GTIN)
    return GTIN


@pytest.fixture
def home(tmp_path, monkeypatch):
    path = tmp_path / "home"
    monkeypatch.setenv("MEDCHAIN_HOME", str(path))
    monkeypatch.delenv("MEDCHAIN_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("MEDCHAIN_DEBUG", raising=False)
    return path


@pytest.fixture
def cli(manifest, home, monkeypatch, capsys):
    """Runs `medchain [--json] [--from SENDER] ARGS` in-process; returns (exit code, stdout, stderr)."""

    def run(sender, *args, as_json=True, stdin=None, base=None):
        argv = [
            "medchain",
            *(base or ["--rpc", brownie_web3.provider.endpoint_uri, "--manifest", str(manifest)]),
        ]
        if as_json:
            argv.append("--json")
        if sender is not None:
            argv += ["--from", getattr(sender, "address", sender)]
        monkeypatch.setattr(sys, "argv", [*argv, *args])
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    def ok(sender, *args, **kwargs):
        code, out, err = run(sender, *args, **kwargs)
        assert code == 0, err
        return json.loads(out) if kwargs.get("as_json", True) else out

    run.ok = ok
    return run


def one_line_error(code, err, expected_code=None):
    assert code != 0
    if expected_code is not None:
        assert code == expected_code, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def certificate(tmp_path):
    path = tmp_path / "coa.txt"
    path.write_text("certificate of analysis, lot A1")
    return path


@pytest.fixture
def batch(cli, product, manufacturer, certificate):
    """Lot A1 of the product, 10 packs with generated serials, commissioned through the CLI."""
    return cli.ok(
        manufacturer,
        "drug",
        "commission",
        GTIN,
        "A1",
        "--expiry",
        EXPIRY,
        "--quantity",
        "10",
        "--serial-count",
        "10",
        "--certificate",
        str(certificate),
    )


# ─── The life of a batch ────────────────────────────────────────────────────────────────────


def test_commission_anchors_the_serials_and_keeps_their_list(cli, suite, batch, home, certificate):
    batch_id = batch_id_of(GTIN, "A1")
    assert batch["batch_id"] == "0x" + batch_id.hex()
    assert (batch["gtin"], batch["lot"], batch["quantity"], batch["expiry"], batch["serials"]) == (
        GTIN,
        "A1",
        10,
        EXPIRY,
        10,
    )
    saved = Path(batch["serial_list"])
    assert saved == serial_list_path(home, batch_id)
    assert not serial_list_path(home, batch_id, pending=True).exists()
    serials = load_serials(saved)
    assert len(set(serials)) == 10
    info = suite.drugs.batch(batch_id)
    assert info.serials_root == SerialTree(serials).root == bytes.fromhex(batch["serials_root"][2:])
    assert info.certificate_digest.hex() == batch["certificate_digest"][2:]
    assert (info.quantity, info.status) == (10, BatchStatus.ACTIVE)


def test_commission_from_a_serial_file(cli, suite, product, manufacturer, certificate, tmp_path):
    listed = tmp_path / "serials.txt"
    listed.write_text("SN-1\n\nSN-2\n  SN-3  \n")
    made = cli.ok(
        manufacturer,
        "drug",
        "commission",
        GTIN,
        "B7",
        "--expiry",
        EXPIRY,
        "--quantity",
        "3",
        "--serials",
        str(listed),
        "--certificate",
        str(certificate),
        "--manufactured",
        "2020-01-01",
    )
    assert made["manufactured"] == "2020-01-01"
    assert load_serials(Path(made["serial_list"])) == ["SN-1", "SN-2", "SN-3"]
    assert (
        suite.drugs.batch(batch_id_of(GTIN, "B7")).serials_root == SerialTree(["SN-1", "SN-2", "SN-3"]).root
    )


def test_custody_from_manufacturer_to_pharmacy(
    cli, suite, batch, manufacturer, distributor, pharmacy, hospital
):
    shipped = cli.ok(manufacturer, "drug", "ship", GTIN, "A1", distributor.address, "8")
    assert (shipped["to"], shipped["quantity"], shipped["nonce"]) == (distributor.address, 8, 10)
    assert cli.ok(distributor, "drug", "receive", GTIN, "A1") == {"received": 1, "units": 8}
    cli.ok(distributor, "drug", "ship", GTIN, "A1", pharmacy.address, "3")
    cli.ok(distributor, "drug", "ship", GTIN, "A1", hospital.address, "2")
    to_hospital = cli.ok(distributor, "drug", "ship", GTIN, "A1", hospital.address, "1")
    # one specific shipment, then every other one addressed to the hospital
    assert cli.ok(distributor, "drug", "cancel", GTIN, "A1", "--shipment", to_hospital["shipment_id"]) == {
        "cancelled": 1,
        "units": 1,
    }
    assert cli.ok(distributor, "drug", "cancel", GTIN, "A1", "--to", hospital.address) == {
        "cancelled": 1,
        "units": 2,
    }
    assert cli.ok(pharmacy, "drug", "receive", GTIN, "A1") == {"received": 1, "units": 3}
    batch_id = batch_id_of(GTIN, "A1")
    assert suite.drugs.holding(batch_id, distributor.address) == (5, 0)
    assert suite.drugs.holding(batch_id, pharmacy.address) == (3, 0)
    assert suite.drugs.pending_shipments(batch_id) == []


def test_cancel_of_a_shipment_not_pending_names_its_status(cli, batch, manufacturer, distributor):
    shipped = cli.ok(manufacturer, "drug", "ship", GTIN, "A1", distributor.address, "2")
    cli.ok(distributor, "drug", "receive", GTIN, "A1")
    code, _out, err = cli(manufacturer, "drug", "cancel", GTIN, "A1", "--shipment", shipped["shipment_id"])
    line = one_line_error(code, err, 1)
    assert "is not a pending shipment" in line
    assert "received" in line
    line = one_line_error(*cli(manufacturer, "drug", "cancel", GTIN, "A1")[::2], 1)
    assert "no pending shipment" in line


def test_dispense_saves_a_record_a_drug_claim_can_use(
    cli, suite, batch, manufacturer, pharmacy, patient, home
):
    cli.ok(manufacturer, "drug", "ship", GTIN, "A1", pharmacy.address, "4")
    cli.ok(pharmacy, "drug", "receive", GTIN, "A1")
    shown = cli.ok(pharmacy, "drug", "dispense", GTIN, "A1", "2", "--patient", patient.address)
    path = Path(shown["saved"])
    assert path.parent == home / "dispenses"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = Dispense.from_json(path.read_text())
    assert "0x" + record.dispense_id.hex() == shown["dispense_id"] == path.stem
    assert "0x" + record.patient_salt.hex() == shown["patient_salt"]
    assert (record.gtin, record.lot, record.quantity, record.nonce) == (int(GTIN), "A1", 2, 4)
    assert (record.dispenser, record.patient) == (pharmacy.address, patient.address)
    assert record.patient_ref == patient_ref(patient.address, record.patient_salt)
    assert suite.drugs.contract.functions.isDispensed(record.dispense_id).call()
    # what `claim submit` builds from it names the same dispense
    ref = DispenseRef(
        lot_bytes(record.lot), record.patient_salt, record.quantity, record.nonce, record.timestamp
    )
    assert ref.dispense_id(record.gtin, record.dispenser, record.patient) == record.dispense_id


def test_dispense_record_refuses_edits(cli, suite, batch, manufacturer, pharmacy, patient, outsider):
    cli.ok(manufacturer, "drug", "ship", GTIN, "A1", pharmacy.address, "1")
    cli.ok(pharmacy, "drug", "receive", GTIN, "A1")
    path = Path(cli.ok(pharmacy, "drug", "dispense", GTIN, "A1", "1", "--patient", patient.address)["saved"])
    data = json.loads(path.read_text())
    for field, value in [
        ("patient", outsider.address),
        ("quantity", 2),
        ("lot", "A2"),
        ("patient_salt", "0x" + "00" * 32),
        ("format", "something-else"),
    ]:
        with pytest.raises(ConfigurationError):
            Dispense.from_json(json.dumps({**data, field: value}))
    with pytest.raises(ConfigurationError, match="lacks the field 'nonce'"):
        Dispense.from_json(json.dumps({k: v for k, v in data.items() if k != "nonce"}))


def test_verify_proves_a_pack_from_the_saved_serial_list(cli, batch, manufacturer, distributor):
    cli.ok(manufacturer, "drug", "ship", GTIN, "A1", distributor.address, "4")
    cli.ok(distributor, "drug", "receive", GTIN, "A1")
    serial = load_serials(Path(batch["serial_list"]))[3]
    printed = cli.ok(None, "drug", "verify", f"(01){GTIN}(17)491231(10)A1(21){serial}")
    assert printed["genuine"] is True
    assert (printed["status"], printed["expiry"], printed["expired"], printed["pack_expiry"]) == (
        "active",
        EXPIRY,
        False,
        EXPIRY,
    )
    assert printed["holders"] == {manufacturer.address: 6, distributor.address: 4}
    # as a DataMatrix scanner sends it, on standard input: FNC1 as GS and a symbology identifier
    scanned = cli.ok(None, "drug", "verify", "-", stdin=f"]d201{GTIN}10A1\x1d21{serial}\n")
    assert scanned["genuine"] is True
    fake = cli.ok(None, "drug", "verify", f"(01){GTIN}(10)A1(21)NOT-A-SERIAL")
    assert fake["genuine"] is False


def test_verify_without_the_serial_list_says_genuineness_is_unknown(cli, batch, home):
    serial = load_serials(Path(batch["serial_list"]))[0]
    Path(batch["serial_list"]).unlink()
    code, out, err = cli(None, "drug", "verify", f"(01){GTIN}(10)A1(21){serial}")
    assert code == 0
    assert json.loads(out)["genuine"] == "unknown"
    assert "no serial list" in err


def test_verify_of_a_batch_without_serials_is_never_genuine(cli, product, manufacturer, certificate):
    args = ["--expiry", EXPIRY, "--quantity", "5", "--certificate", str(certificate)]
    made = cli.ok(manufacturer, "drug", "commission", GTIN, "N1", *args)
    assert (made["serials"], made["serial_list"]) == (0, None)
    code, out, err = cli(None, "drug", "verify", f"(01){GTIN}(10)N1(21)ANY")
    assert code == 0
    assert json.loads(out)["genuine"] is False
    assert "without serial numbers" in err


def test_verify_refuses_another_batch_serial_list(cli, batch, tmp_path):
    other = tmp_path / "other.json"
    SerialList(batch_id_of(GTIN, "A1"), int(GTIN), "A1", b"\1" * 32, ["X1", "X2"]).save(other)
    line = one_line_error(
        *cli(None, "drug", "verify", f"(01){GTIN}(10)A1(21)X1", "--serials", str(other))[::2]
    )
    assert "is not the serial list of batch" in line


def test_trace_shows_history_and_each_direction(cli, batch, manufacturer, distributor, pharmacy, patient):
    cli.ok(manufacturer, "drug", "ship", GTIN, "A1", distributor.address, "5")
    cli.ok(distributor, "drug", "receive", GTIN, "A1")
    cli.ok(distributor, "drug", "ship", GTIN, "A1", pharmacy.address, "2")
    cli.ok(pharmacy, "drug", "receive", GTIN, "A1")
    cli.ok(pharmacy, "drug", "dispense", GTIN, "A1", "1", "--patient", patient.address)
    history = cli.ok(None, "drug", "trace", GTIN, "A1")
    assert [e["event"] for e in history] == [
        "commissioned",
        "shipped",
        "received",
        "shipped",
        "received",
        "dispensed",
    ]
    assert history[1]["by"] == manufacturer.address
    assert (history[1]["to"], history[1]["units"]) == (distributor.address, 5)
    forward = cli.ok(None, "drug", "trace", GTIN, "A1", "--forward", distributor.address)
    assert [e["event"] for e in forward] == ["received", "dispensed"]
    backward = cli.ok(None, "drug", "trace", GTIN, "A1", "--backward", pharmacy.address)
    assert [(e["event"], e["by"]) for e in backward] == [
        ("commissioned", manufacturer.address),
        ("shipped", manufacturer.address),
        ("shipped", distributor.address),
    ]
    table = cli.ok(None, "drug", "trace", GTIN, "A1", as_json=False)
    assert "Batch 09506000134352 / A1: active" in table


def set_glns(cli, *members):
    """Directory entries (demonstration GLNs) for ``members``; the first owns the GTIN's prefix."""
    for index, member in enumerate(members):
        entry = sample_entry(
            member.address, index + 1, f"member {index}", EXAMPLE_GTIN_PREFIX if index == 0 else None
        )
        cli.ok(
            None,
            "institution",
            "directory",
            "set",
            member.address,
            "--gln",
            entry.gln,
            "--company-prefix",
            entry.company_prefix,
            "--name",
            entry.name,
        )


def test_epcis_writes_a_validated_document(cli, batch, manufacturer, distributor, tmp_path):
    cli.ok(manufacturer, "drug", "ship", GTIN, "A1", distributor.address, "5")
    set_glns(cli, manufacturer, distributor)
    out = tmp_path / "a1.epcis.json"
    code, _out, err = cli(None, "drug", "epcis", GTIN, "A1", "-o", str(out))
    assert code == 0, err
    document = json.loads(out.read_text())
    steps = [e["bizStep"] for e in document["epcisBody"]["eventList"]]
    assert steps == ["commissioning", "shipping"]
    # Deliberately changed (issue 12): creationDate is when each document was made, so two exports
    # differ there; their events are the same.
    events = document["epcisBody"]["eventList"]
    assert cli.ok(None, "drug", "epcis", GTIN, "A1")["epcisBody"]["eventList"] == events
    assert cli.ok(None, "drug", "trace", GTIN, "A1", "--epcis")["epcisBody"]["eventList"] == events
    # The saved serial list names each pack at commissioning.
    assert len(events[0]["epcList"]) == 10


def test_quarantine_release_destroy_recall(cli, suite, batch, regulator, manufacturer, distributor):
    cli.ok(manufacturer, "drug", "ship", GTIN, "A1", distributor.address, "4")
    cli.ok(distributor, "drug", "receive", GTIN, "A1")
    held = cli.ok(regulator, "drug", "quarantine", GTIN, "A1", "--reason", "7")
    assert (held["status"], held["quarantined_by_regulator"]) == ("quarantined", True)
    line = one_line_error(*cli(manufacturer, "drug", "release", GTIN, "A1")[::2], 1)
    assert "DrugRegulatorQuarantine(" in line
    assert cli.ok(regulator, "drug", "release", GTIN, "A1")["status"] == "active"
    destroyed = cli.ok(distributor, "drug", "destroy", GTIN, "A1", "1")
    assert (destroyed["destroyed"], destroyed["you_hold"]) == (1, 3)
    holders = cli.ok(manufacturer, "drug", "recall", GTIN, "A1", "--reason", "5")
    assert holders == {manufacturer.address: 6, distributor.address: 3}
    assert suite.drugs.status(batch_id_of(GTIN, "A1")) == BatchStatus.RECALLED


# ─── Bad input: one line, non-zero exit, no traceback ───────────────────────────────────────

BATCH_COMMANDS = [
    ["ship", GTIN, "NOPE", "0x" + "11" * 20, "1"],
    ["receive", GTIN, "NOPE"],
    ["cancel", GTIN, "NOPE"],
    ["dispense", GTIN, "NOPE", "1", "--patient", "0x" + "11" * 20],
    ["quarantine", GTIN, "NOPE", "--reason", "1"],
    ["release", GTIN, "NOPE"],
    ["recall", GTIN, "NOPE", "--reason", "1"],
    ["destroy", GTIN, "NOPE", "1"],
    ["trace", GTIN, "NOPE"],
    ["epcis", GTIN, "NOPE"],
    ["verify", f"(01){GTIN}(10)NOPE(21)SN1"],
]


@pytest.mark.parametrize("args", BATCH_COMMANDS, ids=[a[0] for a in BATCH_COMMANDS])
def test_unknown_batch_is_named_by_every_command(cli, product, regulator, args):
    assert one_line_error(*cli(regulator, "drug", *args)[::2], 1) == f"error: {UNKNOWN}"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["trace", "09506000134353", "A1"], "check digit"),
        (["ship", GTIN, "A1", "0x12", "1"], "not an Ethereum address"),
        (["cancel", GTIN, "A1", "--shipment", "0xzz"], "not a shipment id"),
        (["trace", GTIN, "L" * 21], "GS1 allows at most 20"),
        (["trace", GTIN, "A 1"], "character set 82"),
        (["ship", GTIN, "A1", "0x" + "11" * 20, "0"], "'0' is not a number of units"),
        (["quarantine", GTIN, "A1", "--reason", "70000"], "70000"),
        (["verify", "not a scan"], "malformed GS1 element string"),
        (["verify", f"(01){GTIN}(10)A1"], "lacks AI 21"),
        (["trace", GTIN, "A1", "--forward", "0x" + "11" * 20, "--epcis"], "at most one of"),
        (["commission", GTIN, "C1", "--expiry", "31/12/2099", "--quantity", "1"], "YYYY-MM-DD"),
    ],
)
def test_malformed_input_is_a_usage_line(cli, regulator, args, expected):
    line = one_line_error(*cli(regulator, "drug", *args)[::2], 2)
    assert expected in line


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--quantity", "3", "--serial-count", "4"], "4 serial numbers for --quantity 3"),
        (["--quantity", "2", "--serial-count", "2", "--serials", "{serials}"], "not both"),
        (["--quantity", "2", "--expiry", "2000-01-01"], "must be after the manufacture time"),
        (["--quantity", "3", "--serials", "{bad}"], "is not a GS1 serial"),
        (["--quantity", "3", "--serials", "{twice}"], "appears twice"),
    ],
)
def test_commission_checks_its_options(
    cli, product, manufacturer, certificate, tmp_path, home, options, expected
):
    files = {"serials": "A\nB\n", "bad": "A\nB C\nD\n", "twice": "A\nB\nA\n"}
    for name, text in files.items():
        (tmp_path / f"{name}.txt").write_text(text)
    options = [o.format(**{n: str(tmp_path / f"{n}.txt") for n in files}) for o in options]
    if "--expiry" not in options:
        options += ["--expiry", EXPIRY]
    line = one_line_error(
        *cli(manufacturer, "drug", "commission", GTIN, "C1", *options, "--certificate", str(certificate))[::2]
    )
    assert expected in line
    assert not (home / "serials").exists() or not any((home / "serials").iterdir())


def test_refused_commission_keeps_no_serial_list(cli, product, distributor, certificate, home):
    args = ["--expiry", EXPIRY, "--quantity", "2", "--serial-count", "2", "--certificate", str(certificate)]
    line = one_line_error(*cli(distributor, "drug", "commission", GTIN, "C2", *args)[::2], 1)
    assert f"DrugNotManufacturer({distributor.address})" in line
    assert not any((home / "serials").iterdir())


def test_existing_batch_is_not_commissioned_again(cli, batch, manufacturer, certificate, home):
    before = Path(batch["serial_list"]).read_text()
    args = ["--expiry", EXPIRY, "--quantity", "2", "--serial-count", "2", "--certificate", str(certificate)]
    line = one_line_error(*cli(manufacturer, "drug", "commission", GTIN, "A1", *args)[::2], 1)
    assert f"batch {GTIN} / A1 already exists" in line
    assert Path(batch["serial_list"]).read_text() == before


def test_contract_rejection_names_the_error(cli, batch, outsider, manufacturer, distributor):
    line = one_line_error(*cli(outsider, "drug", "register-product", "00012345600012")[::2], 1)
    assert f"DrugNotManufacturer({outsider.address})" in line
    line = one_line_error(*cli(manufacturer, "drug", "ship", GTIN, "A1", distributor.address, "11")[::2], 1)
    assert "DrugInsufficientHolding(" in line


def test_unwritable_epcis_output_leaves_no_file(cli, batch, manufacturer, tmp_path):
    set_glns(cli, manufacturer)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = one_line_error(*cli(None, "drug", "epcis", GTIN, "A1", "-o", str(blocker / "out.json"))[::2])
    assert "cannot write" in line
    out = tmp_path / "nope.json"
    one_line_error(*cli(None, "drug", "epcis", GTIN, "NOPE", "-o", str(out))[::2], 1)
    assert not out.exists()


def test_wrong_keystore_password_is_one_line(
    cli, batch, manufacturer, distributor, private_key, home, monkeypatch
):
    Keystore(home / "keystore").store("maker", private_key(manufacturer), "right", light=True)
    monkeypatch.setenv("MEDCHAIN_PASSWORD", "wrong")
    line = one_line_error(*cli("maker", "drug", "ship", GTIN, "A1", distributor.address, "1")[::2], 1)
    assert "wrong password for account 'maker'" in line
    monkeypatch.setenv("MEDCHAIN_PASSWORD", "right")
    assert cli.ok("maker", "drug", "ship", GTIN, "A1", distributor.address, "1")["quantity"] == 1


def test_missing_or_foreign_manifest_and_dead_node_are_one_line(cli, manifest, tmp_path):
    rpc = brownie_web3.provider.endpoint_uri
    missing = ["--rpc", rpc, "--manifest", str(tmp_path / "none.json")]
    assert "no deployment manifest" in one_line_error(
        *cli(None, "drug", "trace", GTIN, "A1", base=missing)[::2]
    )
    data = json.loads(manifest.read_text())
    data["chain_id"] = 1
    data["abi_source"] = str((manifest.parent / data["abi_source"]).resolve())
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps(data))
    line = one_line_error(
        *cli(None, "drug", "trace", GTIN, "A1", base=["--rpc", rpc, "--manifest", str(foreign)])[::2]
    )
    assert "the manifest is for chain 1" in line
    dead = ["--rpc", f"http://127.0.0.1:{free_port()}", "--manifest", str(manifest)]
    assert "no Ethereum node answers" in one_line_error(
        *cli(None, "drug", "trace", GTIN, "A1", base=dead)[::2]
    )


def test_a_real_process_prints_one_line(manifest):
    """The same refusal from the command as a person runs it: a child process, no traceback."""
    env = {k: v for k, v in os.environ.items() if k != "MEDCHAIN_PRIVATE_KEY"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from medchain.cli import main; main()",
            "--rpc",
            brownie_web3.provider.endpoint_uri,
            "--manifest",
            str(manifest),
            "drug",
            "trace",
            GTIN,
            "NOPE",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert one_line_error(done.returncode, done.stderr, 1) == f"error: {UNKNOWN}"
    assert done.stdout == ""


# ─── Issue 12: the directory, serial-level dispensing and trace, EPCIS bad input ────────────


def test_directory_set_and_show(cli, manufacturer):
    entry = sample_entry(manufacturer.address, 1, "Acme", EXAMPLE_GTIN_PREFIX)
    shown = cli.ok(
        None,
        "institution",
        "directory",
        "set",
        manufacturer.address,
        "--gln",
        entry.gln,
        "--company-prefix",
        EXAMPLE_GTIN_PREFIX,
        "--name",
        "Acme",
    )
    assert (shown["gln"], shown["company_prefix"], shown["name"]) == (entry.gln, EXAMPLE_GTIN_PREFIX, "Acme")
    assert cli.ok(None, "institution", "directory", "show", manufacturer.address)["gln"] == entry.gln
    listed = cli.ok(None, "institution", "directory", "show")
    assert [row["address"] for row in listed] == [manufacturer.address]


def test_directory_refuses_a_gln_with_a_wrong_check_digit(cli, manufacturer, home):
    good = sample_entry(manufacturer.address, 1, "Acme", EXAMPLE_GTIN_PREFIX).gln
    wrong = good[:-1] + str((int(good[-1]) + 1) % 10)
    line = one_line_error(
        *cli(
            None,
            "institution",
            "directory",
            "set",
            manufacturer.address,
            "--gln",
            wrong,
            "--company-prefix",
            EXAMPLE_GTIN_PREFIX,
        )[::2],
        2,
    )
    assert f"check digit is {wrong[-1]}, should be {good[-1]}" in line
    assert not (home / "directory").exists()


def test_epcis_with_a_wrong_check_digit_in_the_directory_file_writes_nothing(
    cli, batch, manufacturer, home, tmp_path
):
    set_glns(cli, manufacturer)
    path = next((home / "directory").glob("*.json"))
    data = json.loads(path.read_text())
    fields = data["members"][manufacturer.address]
    fields["gln"] = fields["gln"][:-1] + str((int(fields["gln"][-1]) + 1) % 10)
    path.write_text(json.dumps(data))
    out = tmp_path / "a1.json"
    line = one_line_error(*cli(None, "drug", "epcis", GTIN, "A1", "-o", str(out))[::2], 1)
    assert "check digit" in line
    assert not out.exists()


def test_epcis_without_a_members_gln_names_it_and_writes_nothing(
    cli, batch, manufacturer, distributor, tmp_path
):
    cli.ok(manufacturer, "drug", "ship", GTIN, "A1", distributor.address, "2")
    set_glns(cli, manufacturer)
    out = tmp_path / "a1.json"
    line = one_line_error(*cli(None, "drug", "epcis", GTIN, "A1", "-o", str(out))[::2], 1)
    assert distributor.address in line
    assert "institution directory set" in line
    assert not out.exists()


def test_epcis_of_a_lot_gs1_does_not_allow_is_a_usage_line(cli, tmp_path):
    out = tmp_path / "x.json"
    line = one_line_error(*cli(None, "drug", "epcis", GTIN, "A#1", "-o", str(out))[::2], 2)
    assert "character set 82" in line
    assert not out.exists()


def test_dispense_by_serial_refuses_a_copy_and_verify_warns(
    cli, suite, batch, home, manufacturer, distributor, pharmacy, patient, hospital
):
    cli.ok(manufacturer, "drug", "ship", GTIN, "A1", pharmacy.address, "3")
    cli.ok(pharmacy, "drug", "receive", GTIN, "A1")
    serial = load_serials(serial_list_path(home, batch_id_of(GTIN, "A1")))[2]
    given = cli.ok(
        pharmacy, "drug", "dispense", GTIN, "A1", "1", "--patient", patient.address, "--serial", serial
    )
    assert given["serial"] == serial
    line = one_line_error(
        *cli(pharmacy, "drug", "dispense", GTIN, "A1", "1", "--patient", patient.address, "--serial", serial)[
            ::2
        ],
        1,
    )
    assert "DrugSerialAlreadyDispensed(" in line
    code, out, err = cli(None, "drug", "verify", f"(01){GTIN}(10)A1(21){serial}")
    assert code == 0, err
    verdict = json.loads(out)
    assert (verdict["genuine"], verdict["dispensed"], verdict["dispense_id"]) == (
        True,
        True,
        given["dispense_id"],
    )
    assert "may be a copy" in err
    line = one_line_error(
        *cli(
            pharmacy, "drug", "dispense", GTIN, "A1", "1", "--patient", patient.address, "--serial", "NOTOURS"
        )[::2],
        1,
    )
    assert "not a serial of batch" in line
    line = one_line_error(
        *cli(pharmacy, "drug", "dispense", GTIN, "A1", "2", "--patient", patient.address, "--serial", serial)[
            ::2
        ],
        2,
    )
    assert "QUANTITY must be 1" in line


def test_trace_and_epcis_follow_one_pack(cli, batch, home, manufacturer, distributor, pharmacy, patient):
    cli.ok(manufacturer, "drug", "ship", GTIN, "A1", distributor.address, "4")
    cli.ok(distributor, "drug", "receive", GTIN, "A1")
    cli.ok(distributor, "drug", "ship", GTIN, "A1", pharmacy.address, "2")
    cli.ok(pharmacy, "drug", "receive", GTIN, "A1")
    serial = load_serials(serial_list_path(home, batch_id_of(GTIN, "A1")))[0]
    cli.ok(pharmacy, "drug", "dispense", GTIN, "A1", "1", "--patient", patient.address, "--serial", serial)
    steps = cli.ok(None, "drug", "trace", GTIN, "A1", "--serial", serial)
    assert [s["event"] for s in steps] == [
        "commissioned",
        "shipped",
        "received",
        "shipped",
        "received",
        "dispensed",
    ]
    set_glns(cli, manufacturer, distributor, pharmacy)
    document = cli.ok(None, "drug", "epcis", GTIN, "A1", "--serial", serial, "--digital-link")
    named = [e for e in document["epcisBody"]["eventList"] if "epcList" in e]
    assert {i for e in named for i in e["epcList"]} == {f"https://id.gs1.org/01/{GTIN}/21/{serial}"}
    line = one_line_error(*cli(None, "drug", "trace", GTIN, "A1", "--serial", "NOTOURS")[::2], 1)
    assert "not a serial of batch" in line

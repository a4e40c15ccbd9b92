"""`medchain claim` and `medchain patient sign-enrolment` as an insurer, providers and a patient
run them (in-process, --json parsed), and their bad input ending in one line (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from brownie import chain
from brownie import web3 as brownie_web3
from click.testing import CliRunner
from eth_account import Account

from medchain import crypto
from medchain.claims import PlanFile, SignedEnrolment, format_amount
from medchain.cli import cli
from medchain.consent import GrantTerms
from medchain.ehr import KeyVault
from medchain.keystore import Keystore
from medchain.localchain import free_port
from medchain.store import LocalFolderStore
from medchain.types import Actions, ClaimStatus, Purpose

USD = 10**6
GTIN = "09506000134352"
EXAMPLE_TABLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "coverage-table.json"
ENCOUNTER = {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}}


class Cli:
    """Runs `medchain --rpc … --manifest … --json [--from ACCOUNT] ARGS` in-process."""

    def __init__(self, manifest: Path, home: Path) -> None:
        self.manifest = manifest
        self.home = home
        self.runner = CliRunner()

    def base(self, sender: object | None = None) -> list[str]:
        args = ["--rpc", brownie_web3.provider.endpoint_uri, "--manifest", str(self.manifest), "--json"]
        if sender is not None:
            args += ["--from", getattr(sender, "address", sender)]
        return args

    def __call__(self, sender: object | None, *args: str, env: dict[str, str] | None = None) -> object:
        result = self.runner.invoke(
            cli, [*self.base(sender), *args], env={"MEDCHAIN_HOME": str(self.home), **(env or {})}
        )
        assert result.exit_code == 0, (result.output, result.exception)
        return json.loads(result.stdout)

    def fails(self, sender: object | None, *args: str, env: dict[str, str] | None = None) -> Failure:
        result = self.runner.invoke(
            cli, [*self.base(sender), *args], env={"MEDCHAIN_HOME": str(self.home), **(env or {})}
        )
        assert result.exit_code != 0, result.output
        assert result.exception is not None
        return Failure(result.exception, result.output)


class Failure:
    """A failed in-process run: the exception (``.error`` names a contract's custom error) and its
    text (a usage error is printed, other errors are in the exception)."""

    def __init__(self, exception: BaseException, output: str) -> None:
        self.exception = exception
        self.error = getattr(exception, "error", None)
        self.text = f"{output} {exception}"

    def __str__(self) -> str:
        return self.text


def medchain(*args: str, home: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The command as a user runs it, in a child process: (exit code, stdout, stderr)."""
    full_env = {k: v for k, v in os.environ.items() if k != "MEDCHAIN_PRIVATE_KEY"}
    full_env.update({"MEDCHAIN_HOME": str(home), **(env or {})})
    done = subprocess.run(
        [sys.executable, "-c", "from medchain.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def one_line_error(code: int, stderr: str) -> str:
    assert code != 0
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    return stderr.strip()


@pytest.fixture
def world(deploy_to, tmp_path, regulator, insurer, hospital, patient, pharmacy, private_key):
    """A deployment with its manifest, the insurer's tokens, and the patient's consents: treatment
    for the hospital, dispensing for the pharmacy, payment for the insurer."""
    manifest = tmp_path / "manifest.json"
    suite = deploy_to(manifest)
    token = suite.token
    suite.chain.transact(token.functions.mint(insurer.address, 50_000 * USD), regulator.address)
    suite.chain.transact(token.functions.mint(patient.address, 1_000 * USD), regulator.address)
    consent = suite.consent
    consent.grant(
        patient.address,
        GrantTerms.for_all(patient.address, hospital.address, Actions.READ | Actions.APPEND, Purpose.TREAT),
    )
    consent.grant(
        patient.address,
        GrantTerms.for_category(
            patient.address, pharmacy.address, "MedicationDispense", Actions.APPEND, Purpose.TREAT
        ),
    )
    consent.grant(
        patient.address, GrantTerms.for_all(patient.address, insurer.address, Actions.READ, Purpose.HPAYMT)
    )
    ehr = suite.ehr(LocalFolderStore(tmp_path / "store"))
    reader = crypto.ReaderKey.from_private_key(private_key(hospital))

    def encounter(label: str) -> str:
        record = ehr.anchor_resource(
            hospital.address, {**ENCOUNTER, "id": label}, patient.address, KeyVault(), (reader,)
        )
        return "0x" + record.id.hex()

    patient_env = {"MEDCHAIN_PRIVATE_KEY": "0x" + private_key(patient).hex()}
    return {
        "suite": suite,
        "manifest": manifest,
        "run": Cli(manifest, tmp_path / "home"),
        "encounter": encounter,
        "patient_env": patient_env,
        "home": tmp_path / "home",
    }


def create_enrolled_plan(world, insurer, patient, tmp_path, fund: str = "1000") -> int:
    run = world["run"]
    created = run(insurer, "claim", "plan", "create", str(EXAMPLE_TABLE))
    plan = created["plan"]
    run(insurer, "claim", "plan", "fund", str(plan), fund)
    signature = tmp_path / f"enrol-{plan}.json"
    run(
        None,
        "patient",
        "sign-enrolment",
        str(plan),
        "--start",
        "-1h",
        "--end",
        "+365d",
        "-o",
        str(signature),
        env=world["patient_env"],
    )
    run(insurer, "claim", "enrol", str(signature))
    return int(plan)


# ─── Plans ──────────────────────────────────────────────────────────────────────────────────────


def test_plan_create_keeps_the_salted_table_and_the_chain_holds_only_its_root(world, insurer):
    run, suite = world["run"], world["suite"]
    created = run(insurer, "claim", "plan", "create", str(EXAMPLE_TABLE))
    plan_id = created["plan"]
    path = Path(created["plan_file"])
    assert path == world["home"] / "plans" / f"{suite.chain.chain_id}-{plan_id}.json"
    saved = PlanFile.from_json(path.read_text())
    assert (saved.plan_id, saved.chain_id, saved.claims_processor) == (
        plan_id,
        suite.chain.chain_id,
        suite.claims.address,
    )
    assert saved.salt is not None
    on_chain = suite.claims.plan(plan_id)
    assert on_chain.terms == saved.terms()
    assert (on_chain.terms.deductible, on_chain.terms.coinsurance_bps) == (100 * USD, 2000)
    assert list((world["home"] / "plans").iterdir()) == [path]  # no leftover of the pre-write
    shown = run(None, "claim", "plan", "show", str(plan_id))
    assert (shown["pool"], shown["coinsurance"], shown["plan_file"]) == ("0.00", "20%", str(path))
    assert shown["services"] == ["99213", "70450", "80053", f"J3490 (GTIN {GTIN})"]
    funded = run(insurer, "claim", "plan", "fund", str(plan_id), "2500.50")
    assert (funded["pool"], funded["surplus"]) == ("2500.50", "2500.50")
    assert suite.claims.plan(plan_id).pool == 2500_500_000
    withdrawn = run(insurer, "claim", "plan", "withdraw", str(plan_id), "500.50")
    assert withdrawn["pool"] == "2000.00"


def test_plan_import_saves_a_shared_plan_file_for_a_provider(world, insurer, tmp_path):
    run = world["run"]
    created = run(insurer, "claim", "plan", "create", str(EXAMPLE_TABLE), "-o", str(tmp_path / "shared.json"))
    provider = Cli(world["manifest"], tmp_path / "provider-home")
    imported = provider(None, "claim", "plan", "import", str(tmp_path / "shared.json"))
    assert Path(imported["plan_file"]).read_text() == Path(created["plan_file"]).read_text()
    damaged = tmp_path / "damaged.json"
    damaged.write_text((tmp_path / "shared.json").read_text().replace('"150.00"', '"1500.00"'))
    assert "damaged file" in str(provider.fails(None, "claim", "plan", "import", str(damaged)))
    unsalted = provider.fails(None, "claim", "plan", "import", str(EXAMPLE_TABLE))
    assert "without a plan" in str(unsalted)


def test_rejected_plan_creation_leaves_no_salt_file(world, hospital):
    error = world["run"].fails(hospital, "claim", "plan", "create", str(EXAMPLE_TABLE))
    assert error.error == "ClaimsNotInsurer"
    assert not list((world["home"] / "plans").glob("*.json"))


# ─── Enrolment ──────────────────────────────────────────────────────────────────────────────────


def test_patient_signs_enrolment_offline_and_insurer_enrols(world, insurer, patient, tmp_path, private_key):
    run, suite = world["run"], world["suite"]
    plan = run(insurer, "claim", "plan", "create", str(EXAMPLE_TABLE))["plan"]
    signature = tmp_path / "enrol.json"
    offline = CliRunner().invoke(
        cli,
        [
            "--rpc",
            f"http://127.0.0.1:{free_port()}",  # nothing answers: the patient is offline
            "--manifest",
            str(world["manifest"]),
            "--json",
            "patient",
            "sign-enrolment",
            str(plan),
            "--start",
            "2020-01-01",
            "--end",
            "2099-12-31T23:59",
            "--nonce",
            "0",
            "-o",
            str(signature),
        ],
        env={"MEDCHAIN_HOME": str(world["home"]), **world["patient_env"]},
    )
    assert offline.exit_code == 0, offline.output
    assert json.loads(offline.stdout)["nonce_from"] == "--nonce (offline)"
    signed = SignedEnrolment.from_json(signature.read_text())
    assert (signed.plan_id, signed.patient, signed.start, signed.end) == (
        plan,
        patient.address,
        1577836800,
        4102444740,
    )
    # The offline signature is the one the SDK makes with the domain it reads from the contract.
    _deadline, online_signature = suite.claims.sign_enrolment(
        Account.from_key(private_key(patient)), plan, signed.start, signed.end, signed.deadline
    )
    assert online_signature == signed.signature
    enrolled = run(insurer, "claim", "enrol", str(signature))
    assert (enrolled["patient"], enrolled["start"], enrolled["end"]) == (
        patient.address,
        "2020-01-01T00:00:00Z",
        "2099-12-31T23:59:00Z",
    )
    assert suite.claims.enrolment(plan, patient.address).end == 4102444740
    assert suite.claims.enrol_nonce(patient.address) == 1
    # Online, the nonce comes from the chain.
    again = run(
        None,
        "patient",
        "sign-enrolment",
        str(plan),
        "--end",
        "+30d",
        "-o",
        str(tmp_path / "again.json"),
        env=world["patient_env"],
    )
    assert (again["nonce"], again["nonce_from"]) == (1, "chain")


def test_enrolment_file_for_another_deployment_is_refused(world, insurer, patient, tmp_path, private_key):
    plan = world["run"](insurer, "claim", "plan", "create", str(EXAMPLE_TABLE))["plan"]
    foreign = SignedEnrolment.sign(
        Account.from_key(private_key(patient)),
        world["suite"].chain.chain_id,
        Account.create().address,
        plan,
        0,
        2**39,
        0,
        2**39,
    )
    path = tmp_path / "foreign.json"
    path.write_text(foreign.to_json())
    error = world["run"].fails(insurer, "claim", "enrol", str(path))
    assert "not this deployment's" in str(error)


# ─── Claims ─────────────────────────────────────────────────────────────────────────────────────


def test_claims_from_submission_to_payment(world, insurer, hospital, patient, tmp_path):
    """Auto-paid, pended and approved, denied then appealed, approved without funds then paid out,
    the patient's share settled; status, pending, report and the FHIR export along the way."""
    run, suite = world["run"], world["suite"]
    plan = create_enrolled_plan(world, insurer, patient, tmp_path, fund="1000")

    visit = run(
        hospital,
        "claim",
        "submit",
        str(plan),
        "--patient",
        patient.address,
        "--code",
        "99213",
        "--billed",
        "150",
        "--evidence",
        world["encounter"]("visit"),
    )
    assert (visit["status"], visit["approved"], visit["patient_share"], visit["deductible_part"]) == (
        "paid",
        "40.00",
        "110.00",
        "100.00",
    )

    scan = run(
        hospital,
        "claim",
        "submit",
        str(plan),
        "--patient",
        patient.address,
        "--code",
        "70450",
        "--billed",
        "900",
        "--evidence",
        world["encounter"]("scan"),
    )
    assert (scan["status"], scan["max_payable"], scan["approved"]) == ("pended", "720.00", None)
    assert [c["claim"] for c in run(insurer, "claim", "pending", str(plan))] == [scan["claim"]]
    approved = run(insurer, "claim", "approve", scan["claim"], "--amount", "700")
    assert (approved["status"], approved["approved"]) == ("paid", "700.00")

    chain.sleep(86400)  # the same service for the same patient is a duplicate on the same day
    second = run(
        hospital,
        "claim",
        "submit",
        str(plan),
        "--patient",
        patient.address,
        "--code",
        "70450",
        "--billed",
        "900",
        "--evidence",
        world["encounter"]("scan-2"),
    )
    denied = run(insurer, "claim", "deny", second["claim"], "--reason", "12")
    assert (denied["status"], denied["reason"]) == ("denied", 12)
    appealed = run(hospital, "claim", "appeal", second["claim"])
    assert (appealed["status"], appealed["appealed"]) == ("appealed", True)
    # The pool holds 260 after 40 + 700 paid: approving 720 leaves the claim waiting for funds.
    waiting = run(insurer, "claim", "approve", second["claim"])
    assert (waiting["status"], waiting["approved"]) == ("approved", "720.00")
    run(insurer, "claim", "plan", "fund", str(plan), "1000")
    paid = run(hospital, "claim", "pay-out", second["claim"])
    assert paid["status"] == "paid"
    assert suite.claims.claim(bytes.fromhex(second["claim"][2:])).status == ClaimStatus.PAID

    settled = run(patient, "claim", "settle-share", visit["claim"])
    assert (settled["settled"], settled["share_settled"]) == ("110.00", True)
    status = run(None, "claim", "status", scan["claim"])
    assert (status["status"], status["billed"], status["plan"]) == ("paid", "900.00", plan)

    report = run(None, "claim", "report", str(plan))
    assert report["by_status"] == {"paid": 3}
    assert (report["claims"], report["paid"]) == (3, format_amount(40 * USD + 700 * USD + 720 * USD))
    assert report["patient_shares_open"] == "360.00"  # the two scans' 180 each; the visit's is settled

    export = CliRunner().invoke(
        cli, [*run.base(), "claim", "export", scan["claim"]], env={"MEDCHAIN_HOME": str(run.home)}
    )
    assert export.exit_code == 0, export.output
    resources = json.loads(export.stdout)
    assert resources["claim"]["resourceType"] == "Claim"
    assert resources["claim"]["item"][0]["productOrService"]["coding"][0]["code"] == "70450"
    assert resources["claimResponse"]["outcome"] == "complete"


def test_drug_claim_bills_the_pharmacy_dispense(world, insurer, patient, pharmacy, manufacturer, tmp_path):
    run, suite = world["run"], world["suite"]
    plan = create_enrolled_plan(world, insurer, patient, tmp_path)
    drugs = suite.drugs
    drugs.register_product(manufacturer.address, GTIN)
    now = chain[-1].timestamp
    batch = drugs.commission(manufacturer.address, GTIN, "LOT-7", now, now + 10**7, 100, b"\1" * 32)
    drugs.receive(pharmacy.address, drugs.ship(manufacturer.address, batch, pharmacy.address, 10))
    dispense = drugs.dispense_to_patient(pharmacy.address, batch, 1, patient.address)
    # The dispense record as `medchain drug dispense` saves it under $MEDCHAIN_HOME/dispenses.
    record = {
        "format": "medchain-dispense-v1",
        "dispense_id": "0x" + dispense.dispense_id.hex(),
        "batch_id": "0x" + dispense.batch_id.hex(),
        "gtin": GTIN,
        "lot": "LOT-7",
        "dispenser": dispense.dispenser,
        "patient": patient.address,
        "patient_ref": "0x" + dispense.patient_ref.hex(),
        "patient_salt": "0x" + dispense.patient_salt.hex(),
        "quantity": dispense.quantity,
        "nonce": dispense.nonce,
        "timestamp": dispense.timestamp,
    }
    folder = world["home"] / "dispenses"
    folder.mkdir(parents=True)
    name = "0x" + dispense.dispense_id.hex()
    (folder / f"{name}.json").write_text(json.dumps(record))

    no_dispense = run.fails(
        pharmacy,
        "claim",
        "submit",
        str(plan),
        "--patient",
        patient.address,
        "--code",
        "J3490",
        "--billed",
        "40",
    )
    assert "--dispense" in str(no_dispense)
    without = run.fails(
        pharmacy,
        "claim",
        "submit",
        str(plan),
        "--patient",
        patient.address,
        "--code",
        "J3490",
        "--billed",
        "40",
        "--evidence",
        world["encounter"]("x"),
    )
    assert "drug service" in str(without)
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps({**record, "quantity": 2}))
    assert "does not follow" in str(
        run.fails(
            pharmacy,
            "claim",
            "submit",
            str(plan),
            "--patient",
            patient.address,
            "--code",
            "J3490",
            "--billed",
            "40",
            "--dispense",
            str(tampered),
        )
    )
    claimed = run(
        pharmacy,
        "claim",
        "submit",
        str(plan),
        "--patient",
        patient.address,
        "--code",
        "J3490",
        "--billed",
        "40",
        "--dispense",
        name,
    )
    assert (claimed["status"], claimed["evidence"], claimed["allowed"]) == ("paid", name, "40.00")
    again = run.fails(
        pharmacy,
        "claim",
        "submit",
        str(plan),
        "--patient",
        patient.address,
        "--code",
        "J3490",
        "--billed",
        "40",
        "--dispense",
        name,
    )
    assert again.error == "ClaimsDispenseAlreadyClaimed"


# ─── Bad input: one line each, as a user sees it ────────────────────────────────────────────────


def test_bad_input_ends_in_one_line(world, insurer, hospital, patient, tmp_path, private_key):
    plan = create_enrolled_plan(world, insurer, patient, tmp_path)
    home = world["home"]
    rpc = brownie_web3.provider.endpoint_uri
    base = ["--rpc", rpc, "--manifest", str(world["manifest"])]
    unknown_claim = "0x" + "33" * 32
    Keystore(home / "keystore").store("carol", private_key(patient), "right", light=True)
    foreign_manifest = tmp_path / "foreign.json"
    data = json.loads(world["manifest"].read_text())
    data["chain_id"] = 999
    data["abi_source"] = str((world["manifest"].parent / data["abi_source"]).resolve())
    foreign_manifest.write_text(json.dumps(data))
    bad_table = tmp_path / "bad-table.json"
    bad_table.write_text(EXAMPLE_TABLE.read_text().replace('"20%"', '"20"'))

    cases: list[tuple[list[str], dict[str, str], list[str]]] = [
        # unknown ids
        ([*base, "claim", "status", unknown_claim], {}, [f"no claim {unknown_claim} on this deployment"]),
        ([*base, "claim", "report", "77"], {}, ["no plan 77 on this deployment"]),
        # malformed hex, amount, address
        ([*base, "claim", "approve", "0x1234"], {}, ["not a claim id"]),
        (
            [*base, "--from", insurer.address, "claim", "plan", "fund", str(plan), "12.3456789"],
            {},
            ["6 decimals"],
        ),
        (
            [
                *base,
                "--from",
                hospital.address,
                "claim",
                "submit",
                str(plan),
                "--patient",
                "0x12",
                "--code",
                "1",
            ],
            {},
            ["--patient", "not an Ethereum address"],
        ),
        # a file that is not a coverage table
        ([*base, "--from", insurer.address, "claim", "plan", "create", str(bad_table)], {}, ["coinsurance"]),
        # a contract rejection, by error name and arguments
        (
            [*base, "--from", hospital.address, "claim", "plan", "fund", str(plan), "5"],
            {},
            ["ERC20InsufficientBalance", hospital.address],
        ),
        # wrong keystore password
        (
            [
                *base,
                "--from",
                "carol",
                "patient",
                "sign-enrolment",
                str(plan),
                "--end",
                "+1d",
                "-o",
                "x.json",
            ],
            {"MEDCHAIN_PASSWORD": "wrong"},
            ["wrong password", "carol"],
        ),
        # unreachable node; offline signing without a nonce
        (
            ["--rpc", f"http://127.0.0.1:{free_port()}", "claim", "pending", str(plan)],
            {},
            ["no Ethereum node"],
        ),
        (
            [
                "--rpc",
                f"http://127.0.0.1:{free_port()}",
                "--manifest",
                str(world["manifest"]),
                "patient",
                "sign-enrolment",
                str(plan),
                "--end",
                "+1d",
                "-o",
                str(tmp_path / "x.json"),
            ],
            {"MEDCHAIN_PRIVATE_KEY": "0x" + private_key(patient).hex()},
            ["--nonce"],
        ),
        # a manifest of another chain
        (
            ["--rpc", rpc, "--manifest", str(foreign_manifest), "claim", "plan", "show", str(plan)],
            {},
            ["chain 999"],
        ),
        # a provider without the plan's coverage file
        (
            [
                *base,
                *("--from", hospital.address, "claim", "submit", str(plan), "--patient", patient.address),
                *("--code", "99213", "--billed", "1", "--evidence", unknown_claim),
            ],
            {"MEDCHAIN_HOME": str(tmp_path / "empty-home")},
            ["no coverage file", "plan import"],
        ),
    ]
    for args, env, expected in cases:
        code, _out, stderr = medchain(*args, home=home, env=env)
        line = one_line_error(code, stderr)
        for words in expected:
            assert words in line, (args, line)

"""The drug client: GS1 parsing, custody through the SDK, pack verification, trace, recall, EPCIS."""

from __future__ import annotations

import copy
import hashlib
import io

import pytest
from brownie import chain
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from rich.console import Console
from web3 import Web3

import medchain.drug
from medchain import claims as claims_sdk
from medchain.demo import drug_step
from medchain.directory import EXAMPLE_GTIN_PREFIX, sample_directory, sample_entry
from medchain.drug import DrugClient, GS1Error, Pack, SerialTree, parse_gtin, patient_ref
from medchain.epcis import EpcisExportError, epcis_document, validate_epcis
from medchain.errors import ContractRevert
from medchain.types import BatchStatus, GovernanceAction

GTIN = "09506000134352"
SERIALS = [f"SN{i:05d}" for i in range(16)]
GS = "\x1d"


def element_string(serial: str, lot: str = "LOT-7", expiry: str = "281231") -> str:
    return f"01{GTIN}17{expiry}10{lot}{GS}21{serial}"


@pytest.fixture
def journey(suite, manufacturer, distributor, pharmacy, patient):
    d = suite.drugs
    d.register_product(manufacturer.address, GTIN)
    now = chain[-1].timestamp
    batch = d.commission(
        manufacturer.address,
        GTIN,
        "LOT-7",
        now - 86400,
        now + 700 * 86400,
        100,
        hashlib.sha256(b"CoA").digest(),
        SERIALS,
    )
    ref = d.ship(manufacturer.address, batch, distributor.address, 60)
    d.receive(distributor.address, ref)
    ref = d.ship(distributor.address, batch, pharmacy.address, 10)
    d.receive(pharmacy.address, ref)
    d.dispense_to_patient(pharmacy.address, batch, 1, patient.address)
    return batch


def test_gs1_parsing():
    pack = Pack.parse(element_string("SN00003"))
    assert (pack.gtin, pack.lot, pack.serial, pack.expiry) == (
        9506000134352,
        "LOT-7",
        "SN00003",
        "2028-12-31",
    )
    assert parse_gtin("96385074") == 96385074
    with pytest.raises(GS1Error, match="check digit"):
        parse_gtin("09506000134353")
    with pytest.raises(GS1Error, match="malformed"):
        Pack.parse("01095060001343521799")
    with pytest.raises(GS1Error, match="lacks AI 21"):
        Pack.parse(f"01{GTIN}10LOT-7")


def test_verify_pack_from_element_string(suite, journey, manufacturer, distributor, pharmacy):
    tree = SerialTree(SERIALS)
    verdict = suite.drugs.verify_pack(element_string("SN00003"), tree.proof("SN00003"))
    assert verdict.genuine
    assert verdict.status == BatchStatus.ACTIVE
    assert verdict.holders == {manufacturer.address: 40, distributor.address: 50, pharmacy.address: 9}
    fake = suite.drugs.verify_pack(element_string("SN99999"), tree.proof("SN00003"))
    assert not fake.genuine


def test_trace_backward_and_forward(suite, journey, manufacturer, distributor, pharmacy):
    d = suite.drugs
    history = d.history(journey)
    assert [e.kind for e in history] == [
        "commissioned",
        "shipped",
        "received",
        "shipped",
        "received",
        "dispensed",
    ]
    back = d.trace_backward(journey, pharmacy.address)
    assert [(e.kind, e.args.get("from")) for e in back] == [
        ("commissioned", None),
        ("shipped", manufacturer.address),
        ("shipped", distributor.address),
    ]
    forward = d.trace_forward(journey, manufacturer.address)
    assert [(e.kind, e.args.get("to") or e.args.get("dispenser")) for e in forward] == [
        ("received", distributor.address),
        ("received", pharmacy.address),
        ("dispensed", pharmacy.address),
    ]


def test_recall_through_sdk_stops_the_batch(suite, journey, manufacturer, distributor, pharmacy):
    d = suite.drugs
    ref = d.ship(distributor.address, journey, pharmacy.address, 5)
    holders = d.recall(manufacturer.address, journey, 4)
    assert holders == {manufacturer.address: 40, distributor.address: 50, pharmacy.address: 9}
    assert d.status(journey) == BatchStatus.RECALLED
    with pytest.raises(ContractRevert, match="DrugBatchNotActive"):
        d.receive(pharmacy.address, ref)
    with pytest.raises(ContractRevert, match="DrugBatchNotActive"):
        d.dispense(pharmacy.address, journey, 1, b"\1" * 32)
    kinds = [e.kind for e in d.history(journey)]
    assert kinds.count("holder_at_recall") == 3


@pytest.fixture
def directory(suite, accounts, manufacturer):
    """Demonstration GLNs for every account; the manufacturer owns the GTIN's prefix (9506000)."""
    names = {a.address: f"account {i}" for i, a in enumerate(accounts)}
    sample = sample_directory(suite.chain.chain_id, names)
    return sample.with_entry(sample_entry(manufacturer.address, 0, "maker", EXAMPLE_GTIN_PREFIX))


def test_epcis_export_is_schema_valid(suite, journey, manufacturer, directory):
    d = suite.drugs
    d.quarantine(manufacturer.address, journey, 2)
    d.release(manufacturer.address, journey)
    document = epcis_document(d, journey, GTIN, "LOT-7", directory)
    events = document["epcisBody"]["eventList"]
    assert [e["bizStep"] for e in events] == [
        "commissioning",
        "shipping",
        "receiving",
        "shipping",
        "receiving",
        "dispensing",
        "holding",
        "holding",
    ]
    # Deliberately changed (issue 12): the class is an LGTIN (EPC URI) split by the manufacturer's
    # GS1 Company Prefix from the directory; Digital Link is the other form (--digital-link).
    assert events[1]["quantityList"][0]["epcClass"] == "urn:epc:class:lgtin:9506000.013435.LOT-7"
    assert events[-2]["disposition"] == "non_sellable_other"


def test_epcis_validation_catches_a_broken_document(suite, journey, directory):
    document = epcis_document(suite.drugs, journey, GTIN, "LOT-7", directory)
    broken = copy.deepcopy(document)
    broken["epcisBody"]["eventList"][0]["action"] = "TELEPORT"
    with pytest.raises(EpcisExportError):
        validate_epcis(broken)


def test_bad_input_has_named_errors(suite, journey, distributor, pharmacy, outsider):
    d = suite.drugs
    with pytest.raises(ContractRevert, match="DrugInvalidRecipient"):
        d.ship(distributor.address, journey, outsider.address, 1)
    with pytest.raises(ContractRevert, match="DrugInsufficientHolding"):
        d.ship(distributor.address, journey, pharmacy.address, 500)
    with pytest.raises(ContractRevert, match="DrugUnknownBatch"):
        d.quarantine(distributor.address, b"\x09" * 32, 1)


def test_block_times_fallback_matches_the_chain(suite, journey, web3):
    """Nodes without `blockTimestamp` in logs get times from batched block requests."""
    blocks = sorted({e.block for e in suite.drugs.history(journey)})
    times = suite.chain.block_times(blocks)
    assert times == {b: web3.eth.get_block(b)["timestamp"] for b in blocks}
    assert [e.timestamp for e in suite.drugs.history(journey)] == [
        times[e.block] for e in suite.drugs.history(journey)
    ]


# ─── Recall that a receive cannot block ─────────────────────────────────────────────────────


def govern(suite, regulator, subject, action):
    """Suspends, reinstates or removes ``subject`` by the regulator's proposal and the members' votes."""
    pid = suite.registry.propose_change(regulator.address, subject.address, action)
    for member in suite.registry.members():
        if suite.registry.proposal(pid).status.name != "OPEN":
            break
        if member.address not in (regulator.address, subject.address):
            suite.registry.vote(member.address, pid, True)
    assert suite.registry.proposal(pid).status.name == "EXECUTED"


def land_after_holder_list(monkeypatch, *moves):
    """Makes each ``move`` run right after the SDK reads the holder list the first time (as if
    another party's transaction landed between the list and the recall); returns what each did."""
    original = DrugClient.holders
    outcomes: list[str] = []

    def holders_then_moves(self, batch_id, include_in_transit=False):
        listed = original(self, batch_id, include_in_transit)
        if not outcomes:
            for move in moves:
                try:
                    move()
                    outcomes.append("done")
                except ContractRevert as exc:
                    outcomes.append(exc.error)
        return listed

    monkeypatch.setattr(DrugClient, "holders", holders_then_moves)
    return outcomes


def test_recall_cannot_be_blocked_by_a_receive_landing_after_the_holder_list(
    suite, journey, monkeypatch, manufacturer, distributor, pharmacy, hospital
):
    d = suite.drugs
    ref = d.ship(distributor.address, journey, hospital.address, 5)  # the hospital holds nothing yet
    outcomes = land_after_holder_list(monkeypatch, lambda: d.receive(hospital.address, ref))
    held = d.recall(manufacturer.address, journey, 4)
    assert outcomes == ["DrugBatchNotActive"]  # the batch was on hold: the receive could not land
    assert d.status(journey) == BatchStatus.RECALLED
    assert held == {manufacturer.address: 40, distributor.address: 50, pharmacy.address: 9}
    assert d.holding(journey, hospital.address) == (0, 0)


def test_sdk_recall_puts_the_batch_on_hold_first(suite, journey, manufacturer):
    d = suite.drugs
    d.recall(manufacturer.address, journey, 4)
    status = [(e.args["previous"], e.args["current"]) for e in d.history(journey) if e.kind == "status"]
    assert status == [
        (BatchStatus.ACTIVE, BatchStatus.QUARANTINED),
        (BatchStatus.QUARANTINED, BatchStatus.RECALLED),
    ]


def test_sdk_recall_by_manufacturer_keeps_a_regulator_quarantine(
    suite, journey, monkeypatch, manufacturer, distributor, hospital, regulator
):
    d = suite.drugs
    ref = d.ship(distributor.address, journey, hospital.address, 5)
    d.quarantine(regulator.address, journey, 2)
    outcomes = land_after_holder_list(monkeypatch, lambda: d.receive(hospital.address, ref))
    d.recall(manufacturer.address, journey, 4)  # it cannot quarantine again, and need not
    assert outcomes == ["DrugBatchNotActive"]
    assert d.status(journey) == BatchStatus.RECALLED


def test_sdk_recall_by_regulator_takes_over_a_manufacturer_quarantine(
    suite, journey, monkeypatch, manufacturer, distributor, hospital, regulator
):
    d = suite.drugs
    ref = d.ship(distributor.address, journey, hospital.address, 5)
    d.quarantine(manufacturer.address, journey, 2)
    outcomes = land_after_holder_list(
        monkeypatch,
        lambda: d.release(manufacturer.address, journey),  # the manufacturer tries to reopen the batch
        lambda: d.receive(hospital.address, ref),
    )
    d.recall(regulator.address, journey, 4)
    assert outcomes == ["DrugRegulatorQuarantine", "DrugBatchNotActive"]
    assert d.status(journey) == BatchStatus.RECALLED


def test_sdk_recall_tries_again_when_the_hold_is_lifted(
    suite, journey, monkeypatch, manufacturer, distributor, hospital, regulator
):
    d = suite.drugs
    ref = d.ship(distributor.address, journey, hospital.address, 5)
    outcomes = land_after_holder_list(
        monkeypatch,
        lambda: d.release(regulator.address, journey),  # a regulator lifts the manufacturer's hold
        lambda: d.receive(hospital.address, ref),
    )
    held = d.recall(manufacturer.address, journey, 4)
    assert outcomes == ["done", "done"]
    assert held[hospital.address] == 5  # listed on the second attempt
    assert d.status(journey) == BatchStatus.RECALLED


@pytest.mark.parametrize("action", [GovernanceAction.SUSPEND, GovernanceAction.REMOVE])
def test_sdk_recall_by_suspended_manufacturer_is_refused(suite, journey, manufacturer, regulator, action):
    d = suite.drugs
    govern(suite, regulator, manufacturer, action)
    with pytest.raises(ContractRevert, match="DrugNotAuthority"):
        d.recall(manufacturer.address, journey, 4)
    assert d.status(journey) == BatchStatus.ACTIVE
    d.recall(regulator.address, journey, 4)  # the regulator still can
    assert d.status(journey) == BatchStatus.RECALLED


def test_batch_info_shows_who_quarantined(suite, journey, manufacturer, regulator):
    d = suite.drugs
    d.quarantine(manufacturer.address, journey, 2)
    assert not d.batch(journey).quarantined_by_regulator
    d.quarantine(regulator.address, journey, 2)
    info = d.batch(journey)
    assert (info.status, info.quarantined_by_regulator, info.manufacturer) == (
        BatchStatus.QUARANTINED,
        True,
        manufacturer.address,
    )
    with pytest.raises(ContractRevert, match="DrugRegulatorQuarantine"):
        d.release(manufacturer.address, journey)


# ─── Dispensing under a random salt ─────────────────────────────────────────────────────────


def test_dispense_to_patient_draws_a_fresh_random_salt(suite, journey, pharmacy, patient):
    d = suite.drugs
    first = d.dispense_to_patient(pharmacy.address, journey, 1, patient.address)
    second = d.dispense_to_patient(pharmacy.address, journey, 1, patient.address)
    assert len(first.patient_salt) == len(second.patient_salt) == 32
    assert first.patient_salt != second.patient_salt
    assert first.patient_ref != second.patient_ref  # two dispenses to one patient are not linkable
    on_chain = [e.args["patientRef"] for e in d.history(journey) if e.kind == "dispensed"]
    assert on_chain[-2:] == [first.patient_ref, second.patient_ref]
    assert first.patient_ref == patient_ref(patient.address, first.patient_salt)


def test_dispense_patient_ref_matches_the_claims_processor_commitment(
    suite, journey, drugs, pharmacy, patient
):
    d = suite.drugs
    dispensed = d.dispense_to_patient(pharmacy.address, journey, 2, patient.address)
    # ClaimsProcessor: patientRef = keccak256(abi.encode(patient, salt)), then the dispense id from
    # the DrugDispense fields and the claiming provider (the dispenser).
    assert dispensed.patient_ref == claims_sdk.patient_ref(patient.address, dispensed.patient_salt)
    batch_id, salt, quantity, nonce, timestamp = (
        dispensed.batch_id,
        dispensed.patient_salt,
        dispensed.quantity,
        dispensed.nonce,
        dispensed.timestamp,
    )
    ref = claims_sdk.patient_ref(patient.address, salt)
    types = ["bytes32", "address", "bytes32", "uint64", "uint64", "uint256"]
    expected = Web3.keccak(abi_encode(types, [batch_id, pharmacy.address, ref, quantity, nonce, timestamp]))
    assert bytes(expected) == dispensed.dispense_id
    assert drugs.isDispensed(dispensed.dispense_id)
    assert (quantity, nonce) == (2, 9)  # the pharmacy held 9 before this dispense


def test_patient_ref_rejects_a_short_salt():
    with pytest.raises(ValueError, match="32 bytes"):
        patient_ref("0x" + "11" * 20, b"salt")


def test_demo_dispenses_under_a_random_salt(suite, accounts, web3, regulator, distributor, monkeypatch):
    drawn: list[bytes] = []
    real = medchain.drug.secrets.token_bytes

    def recording(n: int) -> bytes:
        drawn.append(real(n))
        return drawn[-1]

    monkeypatch.setattr(medchain.drug.secrets, "token_bytes", recording)
    govern(suite, regulator, distributor, GovernanceAction.SUSPEND)  # the demo reinstates it
    patient = Account.create()
    names = {a: f"account {i}" for i, a in enumerate(web3.eth.accounts)}
    dispensed = drug_step(suite, list(web3.eth.accounts), names, patient, Console(file=io.StringIO()))
    assert dispensed.patient_salt == drawn[0]
    assert len(drawn[0]) == 32
    on_chain = [
        e.args["patientRef"] for e in suite.drugs.history(dispensed.batch_id) if e.kind == "dispensed"
    ]
    assert on_chain == [patient_ref(patient.address, drawn[0])]
    old_constant = hashlib.sha256(b"pharmacy salt|" + patient.address.encode()).digest()
    assert on_chain[0] not in (old_constant, claims_sdk.patient_ref(patient.address, old_constant))

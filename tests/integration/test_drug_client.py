"""The drug client: GS1 parsing, custody through the SDK, pack verification, trace, recall, EPCIS."""

from __future__ import annotations

import copy
import hashlib

import pytest
from brownie import chain

from medchain.drug import (
    BatchStatus,
    EpcisExportError,
    GS1Error,
    Pack,
    SerialTree,
    parse_gtin,
    validate_epcis,
)
from medchain.errors import ContractRevert

GTIN = "09506000134352"
SERIALS = [f"SN{i:05d}" for i in range(16)]
GS = "\x1d"


def element_string(serial: str, lot: str = "LOT-7", expiry: str = "281231") -> str:
    return f"01{GTIN}17{expiry}10{lot}{GS}21{serial}"


@pytest.fixture
def journey(suite, manufacturer, distributor, pharmacy):
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
    d.dispense(pharmacy.address, batch, 1, hashlib.sha256(b"salt|patient-1").digest())
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


def test_epcis_export_is_schema_valid(suite, journey, manufacturer):
    d = suite.drugs
    d.quarantine(manufacturer.address, journey, 2)
    d.release(manufacturer.address, journey)
    document = d.epcis_document(journey, GTIN, "LOT-7")
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
    assert events[0]["quantityList"][0]["epcClass"] == f"https://id.gs1.org/01/{GTIN}/10/LOT-7"
    assert events[-2]["disposition"] == "non_sellable_other"


def test_epcis_validation_catches_a_broken_document(suite, journey):
    document = suite.drugs.epcis_document(journey, GTIN, "LOT-7")
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

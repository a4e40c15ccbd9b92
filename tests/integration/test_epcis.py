"""EPCIS 2.0 / CBV 2.0 semantics of the drug export, each rule by its own test, and single-pack trace.

One journey: commissioned with serials at the manufacturer, shipped to the distributor and
received, on to the pharmacy and received, a shipment to the hospital voided, one pack dispensed by
serial and one unit by class, then recalled. The documents are checked against GS1's schema and by
GS1's own epcis2.js and digital-link.js (tools/epcis-check).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from brownie import chain

from medchain.directory import DirectoryError, sample_directory
from medchain.drug import GS1Error, SerialTree, UnknownBatchError
from medchain.epcis import MEDCHAIN_NAMESPACE, EpcisExportError, epcis_document
from medchain.gs1 import lgtin_uri, pgln_uri, sgln_uri, sgtin_uri
from tests.helpers import epcis_check

GTIN = "09506000134352"
PREFIX = "9506000"
LOT = "A/1%?&"
SERIALS = [f"PK{i:04d}" for i in range(12)]
PACK = SERIALS[5]


@pytest.fixture(scope="module")
def directory(suite, regulator, manufacturer, distributor, pharmacy, hospital):
    names = {
        regulator.address: "Health Regulator",
        manufacturer.address: "Acme Pharma",
        distributor.address: "MedLogistics",
        pharmacy.address: "Main Street Pharmacy",
        hospital.address: "City General Hospital",
    }
    sample = sample_directory(suite.chain.chain_id, names)
    maker = sample.entry(manufacturer.address)
    assert maker is not None
    # The manufacturer's own GS1 Company Prefix is the one inside its GTIN.
    from medchain.directory import DirectoryEntry
    from medchain.gs1 import gln_with_check_digit

    own = DirectoryEntry(manufacturer.address, gln_with_check_digit(PREFIX + "00001"), PREFIX, "Acme Pharma")
    return sample.with_entry(own)


@pytest.fixture(scope="module")
def journey(suite, manufacturer, distributor, pharmacy, hospital, regulator, patient):
    d = suite.drugs
    d.register_product(manufacturer.address, GTIN)
    now = chain[-1].timestamp
    batch = d.commission(
        manufacturer.address,
        GTIN,
        LOT,
        now - 86400,
        now + 700 * 86400,
        12,
        hashlib.sha256(b"CoA").digest(),
        SERIALS,
    )
    d.receive(distributor.address, d.ship(manufacturer.address, batch, distributor.address, 10))
    d.receive(pharmacy.address, d.ship(distributor.address, batch, pharmacy.address, 4))
    d.cancel(distributor.address, d.ship(distributor.address, batch, hospital.address, 2))
    d.dispense_to_patient(pharmacy.address, batch, 1, patient.address, PACK, SerialTree(SERIALS).proof(PACK))
    d.dispense_to_patient(pharmacy.address, batch, 1, patient.address)
    d.ship(distributor.address, batch, pharmacy.address, 1)  # in transit at the recall
    d.recall(regulator.address, batch, 9)
    return batch


@pytest.fixture(scope="module")
def document(suite, journey, directory):
    return epcis_document(suite.drugs, journey, GTIN, LOT, directory, serials=SERIALS)


def events_of(document, step):
    return [e for e in document["epcisBody"]["eventList"] if e["bizStep"] == step]


def loc(directory, account):
    entry = directory.entry(account.address)
    return sgln_uri(entry.gln, entry.company_prefix)


def party(directory, account):
    entry = directory.entry(account.address)
    return pgln_uri(entry.gln, entry.company_prefix)


# ─── Where each event happened (EPCIS 2.0 §7.3.4/§7.3.5: readPoint, bizLocation) ─────────────


def test_commissioning_happens_at_the_manufacturer(document, directory, manufacturer):
    (event,) = events_of(document, "commissioning")
    assert event["action"] == "ADD"
    assert event["readPoint"]["id"] == event["bizLocation"]["id"] == loc(directory, manufacturer)


def test_shipping_event_is_at_the_shipper_in_transit(document, directory, manufacturer, distributor):
    first = events_of(document, "shipping")[0]
    assert first["readPoint"]["id"] == loc(directory, manufacturer)
    assert "bizLocation" not in first  # in transit: at no business location until received
    assert first["disposition"] == "in_transit"


def test_receiving_event_is_at_the_receiver(document, directory, distributor, pharmacy):
    at = [e["readPoint"]["id"] for e in events_of(document, "receiving")]
    assert at == [loc(directory, distributor), loc(directory, pharmacy)]
    assert [e["bizLocation"]["id"] for e in events_of(document, "receiving")] == at


def test_transfers_name_source_and_destination_with_cbv_types(document, directory, manufacturer, distributor):
    first = events_of(document, "shipping")[0]
    assert first["sourceList"] == [
        {"type": "owning_party", "source": party(directory, manufacturer)},
        {"type": "location", "source": loc(directory, manufacturer)},
    ]
    assert first["destinationList"] == [
        {"type": "owning_party", "destination": party(directory, distributor)},
        {"type": "location", "destination": loc(directory, distributor)},
    ]


def test_dispensing_is_at_the_dispenser_and_names_the_pack(document, directory, pharmacy):
    by_serial, by_class = events_of(document, "dispensing")
    assert by_serial["readPoint"]["id"] == by_class["readPoint"]["id"] == loc(directory, pharmacy)
    assert by_serial["epcList"] == [sgtin_uri(GTIN, PACK, PREFIX)]
    assert by_class["quantityList"] == [{"epcClass": lgtin_uri(GTIN, LOT, PREFIX), "quantity": 1}]
    assert by_serial["disposition"] == "dispensed"


# ─── CBV: void shipping, recall, ILMD ───────────────────────────────────────────────────────


def test_cancelled_shipment_is_cbv_void_shipping(document, directory, distributor, hospital):
    (void,) = events_of(document, "void_shipping")
    assert (void["action"], void["disposition"]) == ("OBSERVE", "in_progress")
    assert void["readPoint"]["id"] == void["bizLocation"]["id"] == loc(directory, distributor)
    assert void["destinationList"][0]["destination"] == party(directory, hospital)
    assert "receiving" not in [e["bizStep"] for e in document["epcisBody"]["eventList"] if e is void]
    assert not [e for e in document["epcisBody"]["eventList"] if e["disposition"] == "returned"]


def test_recall_names_the_lot_and_its_packs(document, directory, regulator):
    notice = [e for e in events_of(document, "holding") if "epcList" in e]
    assert len(notice) == 1
    (recall,) = notice
    assert recall["disposition"] == "recalled"
    assert recall["quantityList"] == [{"epcClass": lgtin_uri(GTIN, LOT, PREFIX)}]
    assert recall["epcList"] == [sgtin_uri(GTIN, s, PREFIX) for s in SERIALS]
    assert recall["readPoint"]["id"] == loc(directory, regulator)


def test_each_holders_blocked_stock_appears_at_its_location(
    document, directory, manufacturer, distributor, pharmacy
):
    blocked = [
        e for e in events_of(document, "holding") if e["disposition"] == "recalled" and "epcList" not in e
    ]
    seen = {
        (e["readPoint"]["id"], e.get("bizLocation", {}).get("id"), e["quantityList"][0]["quantity"])
        for e in blocked
    }
    assert seen == {
        (loc(directory, manufacturer), loc(directory, manufacturer), 2),
        (loc(directory, distributor), loc(directory, distributor), 5),
        (loc(directory, distributor), None, 1),  # shipped to the pharmacy, not yet received
        (loc(directory, pharmacy), loc(directory, pharmacy), 2),
    }
    assert [e.get("medchain:inTransit") for e in blocked if "bizLocation" not in e] == [True]


def test_commissioning_carries_ilmd(document):
    (event,) = events_of(document, "commissioning")
    ilmd = event["ilmd"]
    assert ilmd["cbvmda:lotNumber"] == LOT
    assert len(ilmd["cbvmda:itemExpirationDate"]) == 10  # xsd:date
    assert ilmd["medchain:certificateDigest"] == "0x" + hashlib.sha256(b"CoA").hexdigest()
    assert event["epcList"] == [sgtin_uri(GTIN, s, PREFIX) for s in SERIALS]


def test_creation_date_is_when_the_document_was_made(suite, journey, directory):
    before = datetime.now(UTC).replace(microsecond=0)
    made = epcis_document(suite.drugs, journey, GTIN, LOT, directory)
    created = datetime.fromisoformat(made["creationDate"].replace("Z", "+00:00"))
    assert before <= created <= datetime.now(UTC)
    fixed = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert epcis_document(suite.drugs, journey, GTIN, LOT, directory, created=fixed)["creationDate"] == (
        "2030-01-02T03:04:05.000Z"
    )


# ─── Identifiers ────────────────────────────────────────────────────────────────────────────


def test_class_and_instance_ids_are_lgtin_and_sgtin_with_tds_escaping(document):
    (event,) = events_of(document, "shipping")[:1]
    assert event["quantityList"][0]["epcClass"] == "urn:epc:class:lgtin:9506000.013435.A%2F1%25%3F%26"
    assert events_of(document, "dispensing")[0]["epcList"] == ["urn:epc:id:sgtin:9506000.013435.PK0005"]


def test_digital_link_form_percent_encodes_the_lot(suite, journey, directory, manufacturer):
    made = epcis_document(suite.drugs, journey, GTIN, LOT, directory, identifiers="digital-link")
    shipping = events_of(made, "shipping")[0]
    assert shipping["quantityList"][0]["epcClass"] == "https://id.gs1.org/01/09506000134352/10/A%2F1%25%3F%26"
    gln = directory.entry(manufacturer.address).gln
    assert shipping["readPoint"]["id"] == f"https://id.gs1.org/414/{gln}"
    assert shipping["sourceList"][0]["source"] == f"https://id.gs1.org/417/{gln}"
    check = epcis_check(made)
    assert check["ok"], check["errors"]
    assert check["links"] > 5


def test_blockchain_account_stays_as_a_declared_extension(document, suite, manufacturer):
    assert {"medchain": MEDCHAIN_NAMESPACE} in document["@context"]
    (event,) = events_of(document, "commissioning")
    assert event["medchain:account"] == f"eip155:{suite.chain.chain_id}:{manufacturer.address}"
    assert event["medchain:transaction"].startswith("0x")
    assert all(e["eventID"].startswith("urn:uuid:") for e in document["epcisBody"]["eventList"])


def test_document_passes_gs1_epcis2js_validator(document):
    check = epcis_check(document)
    assert check["ok"], check["errors"]


def test_undeclared_extension_is_caught_by_the_independent_validator(document):
    broken = dict(document, **{"@context": document["@context"][:1]})
    check = epcis_check(broken)
    assert not check["ok"]
    assert any("medchain" in e for e in check["errors"])


# ─── One pack ───────────────────────────────────────────────────────────────────────────────


def test_single_pack_trace_follows_the_pack(suite, journey, manufacturer, distributor, pharmacy):
    steps = suite.drugs.pack_history(journey, PACK)
    kinds = [e.kind for e in steps]
    assert kinds[0] == "commissioned"
    assert kinds.count("dispensed") == 1
    # The custody path that brought the pharmacy its units, and nothing else: no void shipment.
    shipped = [(e.args["from"], e.args["to"]) for e in steps if e.kind == "shipped"]
    assert shipped == [(manufacturer.address, distributor.address), (distributor.address, pharmacy.address)]
    assert "cancelled" not in kinds
    assert kinds[-1] == "status"  # the recall holds this pack too


def test_single_pack_export_names_only_that_pack(suite, journey, directory):
    made = epcis_document(suite.drugs, journey, GTIN, LOT, directory, serials=SERIALS, serial=PACK)
    pack_id = sgtin_uri(GTIN, PACK, PREFIX)
    named = [e for e in made["epcisBody"]["eventList"] if "epcList" in e]
    assert {s for e in named for s in e["epcList"]} == {pack_id}
    # commissioned, dispensed, then held: the recall quarantines the batch first, then recalls it
    assert [(e["bizStep"], e["disposition"]) for e in named] == [
        ("commissioning", "active"),
        ("dispensing", "dispensed"),
        ("holding", "non_sellable_other"),
        ("holding", "recalled"),
    ]
    assert epcis_check(made)["ok"]


def test_pack_not_of_the_batch_is_refused(suite, journey, directory):
    with pytest.raises(EpcisExportError, match="not a serial of batch"):
        epcis_document(suite.drugs, journey, GTIN, LOT, directory, serials=SERIALS, serial="FAKE1")


def test_pack_already_dispensed_is_reported_by_verify(suite, journey):
    verdict = suite.drugs.verify_pack(f"(01){GTIN}(10)A/1%?&(21){PACK}", SerialTree(SERIALS).proof(PACK))
    assert verdict.genuine
    assert verdict.dispensed_by is not None
    other = suite.drugs.verify_pack(
        f"(01){GTIN}(10)A/1%?&(21){SERIALS[0]}", SerialTree(SERIALS).proof(SERIALS[0])
    )
    assert other.dispensed_by is None


# ─── Bad input: one clear error each ────────────────────────────────────────────────────────


def test_export_of_an_unknown_batch_is_one_error(suite, directory):
    with pytest.raises(UnknownBatchError, match="no batch 0x0909"):
        epcis_document(suite.drugs, b"\x09" * 32, GTIN, LOT, directory)


def test_member_without_a_gln_is_named(suite, journey, directory, distributor):
    partial = type(directory)(
        directory.chain_id, {a: e for a, e in directory.entries.items() if a != distributor.address}
    )
    with pytest.raises(DirectoryError, match=f"no GLN for {distributor.address}"):
        epcis_document(suite.drugs, journey, GTIN, LOT, partial)


def test_lot_gs1_does_not_allow_is_refused(suite, journey, directory):
    with pytest.raises(GS1Error, match="character set 82"):
        epcis_document(suite.drugs, journey, GTIN, "A 1", directory)


def test_another_serial_list_is_refused(suite, journey, directory):
    with pytest.raises(EpcisExportError, match="not that of batch"):
        epcis_document(suite.drugs, journey, GTIN, LOT, directory, serials=SERIALS[:-1])

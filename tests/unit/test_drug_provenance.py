"""DrugProvenance: products, batches, two-step custody, dispensing, status machine; reverts by name."""

from __future__ import annotations

import hashlib

import pytest
from brownie import DrugProvenance, chain, network  # noqa: F401 - network is used by skipif

from medchain.drug import SerialTree, lot_bytes
from medchain.types import BatchStatus, GovernanceAction
from tests.helpers import reverts

ZERO = "0x0000000000000000000000000000000000000000"
GTIN = 9506000134352  # valid check digit
BAD_GTIN = 9506000134353
LOT = lot_bytes("AB-123")
CERT = hashlib.sha256(b"certificate of analysis").digest()
SERIALS = [f"SER{i:04d}" for i in range(8)]
PATIENT_REF = hashlib.sha256(b"salt|patient").digest()
PENDING, RECEIVED, CANCELLED = 1, 2, 3


def ref_of(tx):
    r = tx.events["Shipped"]["ref"]
    return (r["batchId"], r["from"], r["to"], r["quantity"], r["nonce"], r["shippedAt"])


@pytest.fixture
def product(drugs, manufacturer):
    drugs.registerProduct(GTIN, {"from": manufacturer})
    return GTIN


@pytest.fixture
def batch(drugs, product, manufacturer):
    now = chain[-1].timestamp
    tx = drugs.commission(
        GTIN, LOT, now - 86400, now + 365 * 86400, 100, CERT, SerialTree(SERIALS).root, {"from": manufacturer}
    )
    return tx.events["BatchCommissioned"]["batchId"]


def move(drugs, batch, frm, to, qty):
    tx = drugs.ship(batch, to, qty, {"from": frm})
    drugs.receiveShipment(ref_of(tx), {"from": to})


@pytest.fixture
def at_pharmacy(drugs, batch, manufacturer, distributor, pharmacy):
    move(drugs, batch, manufacturer, distributor, 60)
    move(drugs, batch, distributor, pharmacy, 20)
    return batch


# ─── Products ──────────────────────────────────────────────────────────────────────────────


def test_register_product(drugs, manufacturer):
    tx = drugs.registerProduct(GTIN, {"from": manufacturer})
    assert tx.events["ProductRegistered"]["gtin"] == GTIN
    assert drugs.manufacturerOf(GTIN) == manufacturer


@pytest.mark.parametrize("gtin", [BAD_GTIN, 1234567, 123456789012345, 0])
def test_register_rejects_bad_gtin(drugs, manufacturer, gtin):
    with reverts("DrugInvalidGtin", gtin):
        drugs.registerProduct(gtin, {"from": manufacturer})


def test_register_accepts_gtin8(drugs, manufacturer):
    drugs.registerProduct(96385074, {"from": manufacturer})  # a valid GTIN-8
    assert drugs.manufacturerOf(96385074) == manufacturer


def test_register_twice_reverts(drugs, product, manufacturer):
    with reverts("DrugProductExists", GTIN, manufacturer):
        drugs.registerProduct(GTIN, {"from": manufacturer})


def test_register_by_non_manufacturer_reverts(drugs, pharmacy, outsider):
    for account in (pharmacy, outsider):
        with reverts("DrugNotManufacturer", account):
            drugs.registerProduct(GTIN, {"from": account})


# ─── Commissioning ─────────────────────────────────────────────────────────────────────────


def test_commission_gives_manufacturer_all_units(drugs, batch, manufacturer):
    b = drugs.batch(batch)
    assert (b["manufacturer"], b["status"], b["quantity"]) == (manufacturer, BatchStatus.ACTIVE, 100)
    assert drugs.holding(batch, manufacturer) == (100, 0)
    assert drugs.batchIdOf(GTIN, LOT) == batch


def test_commission_unknown_product_reverts(drugs, manufacturer):
    with reverts("DrugUnknownProduct", GTIN):
        drugs.commission(GTIN, LOT, 1, 2, 1, CERT, b"\0" * 32, {"from": manufacturer})


def test_commission_by_other_reverts(drugs, product, distributor):
    with reverts("DrugNotManufacturer", distributor):
        drugs.commission(GTIN, LOT, 1, 2, 1, CERT, b"\0" * 32, {"from": distributor})


@pytest.mark.parametrize(
    ("lot", "made", "expiry", "qty", "cert"),
    [(b"\0" * 20, 1, 2, 1, CERT), (LOT, 1, 2, 0, CERT), (LOT, 2, 2, 1, CERT), (LOT, 1, 2, 1, b"\0" * 32)],
)
def test_commission_rejects_bad_batch(drugs, product, manufacturer, lot, made, expiry, qty, cert):
    with reverts("DrugInvalidBatch"):
        drugs.commission(GTIN, lot, made, expiry, qty, cert, b"\0" * 32, {"from": manufacturer})


def test_commission_twice_reverts(drugs, batch, manufacturer):
    with reverts("DrugBatchExists", batch):
        drugs.commission(GTIN, LOT, 1, 2, 1, CERT, b"\0" * 32, {"from": manufacturer})


# ─── Shipping and receiving ────────────────────────────────────────────────────────────────


def test_two_step_custody(drugs, batch, manufacturer, distributor):
    tx = drugs.ship(batch, distributor, 30, {"from": manufacturer})
    sid = tx.events["Shipped"]["shipmentId"]
    assert drugs.holding(batch, manufacturer) == (70, 30)
    assert drugs.holding(batch, distributor) == (0, 0)
    assert drugs.shipmentStatus(sid) == PENDING
    tx = drugs.receiveShipment(ref_of(tx), {"from": distributor})
    assert tx.events["Received"]["quantity"] == 30
    assert drugs.holding(batch, manufacturer) == (70, 0)
    assert drugs.holding(batch, distributor) == (30, 0)
    assert drugs.shipmentStatus(sid) == RECEIVED


def test_receiving_twice_reverts(drugs, batch, manufacturer, distributor):
    tx = drugs.ship(batch, distributor, 30, {"from": manufacturer})
    drugs.receiveShipment(ref_of(tx), {"from": distributor})
    with reverts("DrugShipmentNotPending", tx.events["Shipped"]["shipmentId"], RECEIVED):
        drugs.receiveShipment(ref_of(tx), {"from": distributor})


def test_receive_by_someone_else_reverts(drugs, batch, manufacturer, distributor, pharmacy):
    tx = drugs.ship(batch, distributor, 30, {"from": manufacturer})
    with reverts("DrugNotParty", tx.events["Shipped"]["shipmentId"], pharmacy):
        drugs.receiveShipment(ref_of(tx), {"from": pharmacy})


def test_receive_with_altered_reference_reverts(drugs, batch, manufacturer, distributor):
    tx = drugs.ship(batch, distributor, 30, {"from": manufacturer})
    ref = list(ref_of(tx))
    ref[3] = 31  # claim more units than were shipped
    with reverts("DrugUnknownShipment"):
        drugs.receiveShipment(tuple(ref), {"from": distributor})


def test_cancel_returns_units(drugs, batch, manufacturer, distributor):
    tx = drugs.ship(batch, distributor, 30, {"from": manufacturer})
    out = drugs.cancelShipment(ref_of(tx), {"from": manufacturer})
    assert out.events["ShipmentCancelled"]["quantity"] == 30
    assert drugs.holding(batch, manufacturer) == (100, 0)
    with reverts("DrugShipmentNotPending", tx.events["Shipped"]["shipmentId"], CANCELLED):
        drugs.receiveShipment(ref_of(tx), {"from": distributor})


def test_cancel_by_addressee_reverts(drugs, batch, manufacturer, distributor):
    tx = drugs.ship(batch, distributor, 30, {"from": manufacturer})
    with reverts("DrugNotParty", tx.events["Shipped"]["shipmentId"], distributor):
        drugs.cancelShipment(ref_of(tx), {"from": distributor})


def test_partial_quantities_split_holdings(drugs, at_pharmacy, manufacturer, distributor, pharmacy):
    assert drugs.holding(at_pharmacy, manufacturer)[0] == 40
    assert drugs.holding(at_pharmacy, distributor)[0] == 40
    assert drugs.holding(at_pharmacy, pharmacy)[0] == 20


@pytest.mark.parametrize("qty", [0, 101])
def test_ship_more_than_held_reverts(drugs, batch, manufacturer, distributor, qty):
    with reverts("DrugInsufficientHolding", batch, manufacturer, 100, qty):
        drugs.ship(batch, distributor, qty, {"from": manufacturer})


def test_ship_by_non_holder_reverts(drugs, batch, distributor, pharmacy):
    with reverts("DrugInsufficientHolding", batch, pharmacy, 0, 1):
        drugs.ship(batch, distributor, 1, {"from": pharmacy})


@pytest.mark.parametrize("who", ["outsider", "insurer", "laboratory", "self"])
def test_ship_to_non_recipient_reverts(drugs, batch, manufacturer, outsider, insurer, laboratory, who):
    to = {"outsider": outsider, "insurer": insurer, "laboratory": laboratory, "self": manufacturer}[who]
    with reverts("DrugInvalidRecipient", to):
        drugs.ship(batch, to, 1, {"from": manufacturer})


def test_ship_unknown_batch_reverts(drugs, manufacturer, distributor):
    with reverts("DrugUnknownBatch", b"\7" * 32):
        drugs.ship(b"\7" * 32, distributor, 1, {"from": manufacturer})


def test_suspended_distributor_cannot_be_shipped_to(
    drugs, registry, batch, manufacturer, distributor, regulator, accounts
):
    pid = registry.proposeChange(distributor, GovernanceAction.SUSPEND, 0, {"from": regulator}).events[
        "ProposalOpened"
    ]["proposalId"]
    for voter in (accounts[1], accounts[2], accounts[7], accounts[3]):
        if registry.proposal(pid)["status"] == 1:
            registry.vote(pid, True, {"from": voter})
    with reverts("DrugInvalidRecipient", distributor):
        drugs.ship(batch, distributor, 1, {"from": manufacturer})


# ─── Dispensing ────────────────────────────────────────────────────────────────────────────


def test_dispense_to_patient(drugs, at_pharmacy, pharmacy):
    tx = drugs.dispense(at_pharmacy, 2, PATIENT_REF, {"from": pharmacy})
    event = tx.events["Dispensed"]
    assert (event["dispenser"], event["patientRef"], event["quantity"]) == (
        pharmacy,
        "0x" + PATIENT_REF.hex(),
        2,
    )
    assert drugs.isDispensed(event["dispenseId"])
    assert drugs.holding(at_pharmacy, pharmacy)[0] == 18
    assert drugs.batch(at_pharmacy)["dispensed"] == 2


def test_dispense_more_than_held_reverts(drugs, at_pharmacy, pharmacy):
    with reverts("DrugInsufficientHolding", at_pharmacy, pharmacy, 20, 21):
        drugs.dispense(at_pharmacy, 21, PATIENT_REF, {"from": pharmacy})


def test_dispense_by_distributor_reverts(drugs, at_pharmacy, distributor):
    with reverts("DrugNotDispenser", distributor):
        drugs.dispense(at_pharmacy, 1, PATIENT_REF, {"from": distributor})


def test_dispense_without_patient_ref_reverts(drugs, at_pharmacy, pharmacy):
    with reverts("DrugInvalidPatientRef"):
        drugs.dispense(at_pharmacy, 1, b"\0" * 32, {"from": pharmacy})


def test_expired_batch_cannot_be_dispensed(drugs, at_pharmacy, pharmacy):
    expiry = drugs.batch(at_pharmacy)["expiry"]
    chain.sleep(366 * 86400)
    chain.mine()
    with reverts("DrugBatchExpired", at_pharmacy, expiry):
        drugs.dispense(at_pharmacy, 1, PATIENT_REF, {"from": pharmacy})


# ─── Status machine ────────────────────────────────────────────────────────────────────────


def test_quarantine_blocks_movement_and_release_restores(
    drugs, at_pharmacy, manufacturer, distributor, pharmacy
):
    tx = drugs.quarantine(at_pharmacy, 7, {"from": manufacturer})
    e = tx.events["BatchStatusChanged"]
    assert (e["previous"], e["current"], e["reason"]) == (BatchStatus.ACTIVE, BatchStatus.QUARANTINED, 7)
    with reverts("DrugBatchNotActive", at_pharmacy, BatchStatus.QUARANTINED):
        drugs.ship(at_pharmacy, pharmacy, 1, {"from": distributor})
    with reverts("DrugBatchNotActive", at_pharmacy, BatchStatus.QUARANTINED):
        drugs.dispense(at_pharmacy, 1, PATIENT_REF, {"from": pharmacy})
    drugs.release(at_pharmacy, {"from": manufacturer})
    drugs.dispense(at_pharmacy, 1, PATIENT_REF, {"from": pharmacy})


def test_regulator_may_quarantine(drugs, batch, regulator):
    drugs.quarantine(batch, 1, {"from": regulator})
    assert drugs.batch(batch)["status"] == BatchStatus.QUARANTINED


def test_status_changes_by_others_revert(drugs, batch, distributor, outsider):
    for account in (distributor, outsider):
        with reverts("DrugNotAuthority", account):
            drugs.quarantine(batch, 1, {"from": account})
        with reverts("DrugNotAuthority", account):
            drugs.recall(batch, 1, [], {"from": account})


def test_invalid_transitions_revert(drugs, batch, manufacturer):
    with reverts("DrugInvalidTransition", batch, BatchStatus.ACTIVE):
        drugs.release(batch, {"from": manufacturer})
    drugs.quarantine(batch, 1, {"from": manufacturer})
    with reverts("DrugInvalidTransition", batch, BatchStatus.QUARANTINED):
        drugs.quarantine(batch, 1, {"from": manufacturer})


def test_recall_lists_holders_and_blocks_everything(drugs, at_pharmacy, manufacturer, distributor, pharmacy):
    pending = drugs.ship(at_pharmacy, pharmacy, 5, {"from": distributor})
    holders = sorted([manufacturer.address, distributor.address, pharmacy.address], key=lambda a: int(a, 16))
    tx = drugs.recall(at_pharmacy, 3, holders, {"from": manufacturer})
    listed = {e["holder"]: (e["available"], e["inTransit"]) for e in tx.events["HolderAtRecall"]}
    assert listed == {manufacturer.address: (40, 0), distributor.address: (35, 5), pharmacy.address: (20, 0)}
    assert drugs.batch(at_pharmacy)["status"] == BatchStatus.RECALLED
    with reverts("DrugBatchNotActive", at_pharmacy, BatchStatus.RECALLED):
        drugs.ship(at_pharmacy, distributor, 1, {"from": manufacturer})
    with reverts("DrugBatchNotActive", at_pharmacy, BatchStatus.RECALLED):
        drugs.receiveShipment(ref_of(pending), {"from": pharmacy})
    with reverts("DrugBatchNotActive", at_pharmacy, BatchStatus.RECALLED):
        drugs.dispense(at_pharmacy, 1, PATIENT_REF, {"from": pharmacy})
    drugs.cancelShipment(ref_of(pending), {"from": distributor})  # units go back for destruction
    with reverts("DrugInvalidTransition", at_pharmacy, BatchStatus.RECALLED):
        drugs.release(at_pharmacy, {"from": manufacturer})


def test_recall_with_incomplete_holder_list_reverts(drugs, at_pharmacy, manufacturer, distributor):
    partial = sorted([manufacturer.address, distributor.address], key=lambda a: int(a, 16))
    with reverts("DrugIncompleteHolderList", 100, 80):
        drugs.recall(at_pharmacy, 3, partial, {"from": manufacturer})


def test_recall_with_unsorted_or_duplicate_list_reverts(
    drugs, at_pharmacy, manufacturer, distributor, pharmacy
):
    ordered = sorted([manufacturer.address, distributor.address, pharmacy.address], key=lambda a: int(a, 16))
    with reverts("DrugHolderListUnsorted"):
        drugs.recall(at_pharmacy, 3, list(reversed(ordered)), {"from": manufacturer})
    with reverts("DrugHolderListUnsorted"):
        drugs.recall(at_pharmacy, 3, [ordered[0], ordered[0], ordered[1], ordered[2]], {"from": manufacturer})


def test_destroy_and_final_state(drugs, batch, manufacturer, pharmacy):
    tx = drugs.destroy(batch, 40, {"from": manufacturer})
    assert tx.events["UnitsDestroyed"]["quantity"] == 40
    assert drugs.batch(batch)["status"] == BatchStatus.ACTIVE
    tx = drugs.destroy(batch, 60, {"from": manufacturer})
    assert tx.events["BatchStatusChanged"]["current"] == BatchStatus.DESTROYED
    with reverts("DrugInvalidTransition", batch, BatchStatus.DESTROYED):
        drugs.destroy(batch, 1, {"from": manufacturer})
    with reverts("DrugInvalidTransition", batch, BatchStatus.DESTROYED):
        drugs.recall(batch, 1, [], {"from": manufacturer})


def test_destroy_more_than_held_reverts(drugs, batch, pharmacy, manufacturer):
    with reverts("DrugInsufficientHolding", batch, pharmacy, 0, 1):
        drugs.destroy(batch, 1, {"from": pharmacy})
    with reverts("DrugInsufficientHolding", batch, manufacturer, 100, 0):
        drugs.destroy(batch, 0, {"from": manufacturer})


def test_recalled_units_can_be_destroyed(drugs, at_pharmacy, manufacturer, distributor, pharmacy):
    holders = sorted([manufacturer.address, distributor.address, pharmacy.address], key=lambda a: int(a, 16))
    drugs.recall(at_pharmacy, 3, holders, {"from": manufacturer})
    drugs.destroy(at_pharmacy, 20, {"from": pharmacy})
    assert drugs.holding(at_pharmacy, pharmacy)[0] == 0


# ─── Pack verification ─────────────────────────────────────────────────────────────────────


def test_verify_pack(drugs, batch):
    tree = SerialTree(SERIALS)
    genuine, status, expiry = drugs.verifyPack(GTIN, LOT, "SER0003", tree.proof("SER0003"))
    assert genuine
    assert status == BatchStatus.ACTIVE
    assert expiry == drugs.batch(batch)["expiry"]
    assert not drugs.verifyPack(GTIN, LOT, "SER9999", tree.proof("SER0003"))[0]
    assert not drugs.verifyPack(GTIN, lot_bytes("OTHER"), "SER0003", tree.proof("SER0003"))[0]


def test_constructor_rejects_zero_registry(regulator):
    with reverts("DrugZeroAddress"):
        DrugProvenance.deploy(ZERO, {"from": regulator})


@pytest.mark.skipif("network.show_active() != 'development'", reason="pins block timestamps with Anvil")
def test_identical_shipment_in_the_same_second_reverts(drugs, batch, manufacturer, distributor, web3):
    # Every block pinned to one second (a tick between blocks would otherwise make the ids differ).
    second = web3.eth.get_block("latest")["timestamp"] + 60
    pin = lambda: web3.provider.make_request("evm_setNextBlockTimestamp", [second])  # noqa: E731
    pin()
    first = drugs.ship(batch, distributor, 10, {"from": manufacturer})
    pin()
    drugs.cancelShipment(ref_of(first), {"from": manufacturer})  # holding is back to what it was
    pin()
    with reverts("DrugShipmentExists", first.events["Shipped"]["shipmentId"]):
        drugs.ship(batch, distributor, 10, {"from": manufacturer})
    web3.provider.make_request("evm_mine", [])  # uses up the pinned time if the refused call made no block


def test_release_by_others_reverts(drugs, batch, manufacturer, distributor, outsider):
    drugs.quarantine(batch, 1, {"from": manufacturer})
    for account in (distributor, outsider):
        with reverts("DrugNotAuthority", account):
            drugs.release(batch, {"from": account})
    assert drugs.batch(batch)["status"] == BatchStatus.QUARANTINED


# ─── Membership: suspended or removed members (registry governance) ────────────────────────


MEMBERS = range(8)  # regulator, hospital, hospital2, laboratory, pharmacy, manufacturer, distributor, insurer


def govern(registry, accounts, subject, action):
    """Suspends, reinstates or removes ``subject`` by a regulator's proposal and members' votes."""
    proposer = accounts[0]
    pid = registry.proposeChange(subject, action, 0, {"from": proposer}).events["ProposalOpened"][
        "proposalId"
    ]
    for i in MEMBERS:
        voter = accounts[i]
        if registry.proposal(pid)["status"] != 1:
            break
        if voter not in (proposer, subject):
            registry.vote(pid, True, {"from": voter})
    assert registry.proposal(pid)["status"] == 2, "the proposal did not pass"


def holders_of(*accounts):
    return sorted({a.address for a in accounts}, key=lambda a: int(a, 16))


# ─── Rule: only a regulator lifts a regulator's quarantine ─────────────────────────────────


def test_manufacturer_cannot_release_a_regulator_quarantine(drugs, batch, manufacturer, regulator):
    drugs.quarantine(batch, 5, {"from": regulator})
    with reverts("DrugRegulatorQuarantine", batch, manufacturer):
        drugs.release(batch, {"from": manufacturer})
    assert drugs.batch(batch)["status"] == BatchStatus.QUARANTINED
    drugs.release(batch, {"from": regulator})
    assert drugs.batch(batch)["status"] == BatchStatus.ACTIVE


def test_batch_remembers_who_quarantined_it(drugs, batch, manufacturer, regulator):
    drugs.quarantine(batch, 5, {"from": regulator})
    assert drugs.batch(batch)["quarantinedByRegulator"]
    drugs.release(batch, {"from": regulator})
    assert not drugs.batch(batch)["quarantinedByRegulator"]
    drugs.quarantine(batch, 5, {"from": manufacturer})
    assert not drugs.batch(batch)["quarantinedByRegulator"]
    drugs.release(batch, {"from": manufacturer})  # its own quarantine: it may lift it


def test_regulator_may_release_a_manufacturer_quarantine(drugs, batch, manufacturer, regulator):
    drugs.quarantine(batch, 5, {"from": manufacturer})
    tx = drugs.release(batch, {"from": regulator})
    e = tx.events["BatchStatusChanged"]
    assert (e["previous"], e["current"], e["by"]) == (BatchStatus.QUARANTINED, BatchStatus.ACTIVE, regulator)


def test_regulator_takes_over_a_manufacturer_quarantine(drugs, batch, manufacturer, regulator):
    drugs.quarantine(batch, 5, {"from": manufacturer})
    tx = drugs.quarantine(batch, 6, {"from": regulator})
    e = tx.events["BatchStatusChanged"]
    assert (e["previous"], e["current"], e["by"], e["reason"]) == (
        BatchStatus.QUARANTINED,
        BatchStatus.QUARANTINED,
        regulator,
        6,
    )
    assert drugs.batch(batch)["quarantinedByRegulator"]
    with reverts("DrugRegulatorQuarantine", batch, manufacturer):
        drugs.release(batch, {"from": manufacturer})
    with reverts("DrugInvalidTransition", batch, BatchStatus.QUARANTINED):
        drugs.quarantine(batch, 7, {"from": regulator})  # already the regulator's
    with reverts("DrugInvalidTransition", batch, BatchStatus.QUARANTINED):
        drugs.quarantine(batch, 7, {"from": manufacturer})


def test_manufacturer_may_recall_a_regulator_quarantined_batch(drugs, batch, manufacturer, regulator):
    drugs.quarantine(batch, 5, {"from": regulator})
    drugs.recall(batch, 3, [manufacturer], {"from": manufacturer})  # a recall only tightens the hold
    b = drugs.batch(batch)
    assert (b["status"], b["quarantinedByRegulator"]) == (BatchStatus.RECALLED, False)


def test_regulator_quarantine_cannot_be_lifted_by_another_path(
    drugs, at_pharmacy, manufacturer, distributor, pharmacy, regulator
):
    drugs.quarantine(at_pharmacy, 5, {"from": regulator})
    with reverts("DrugInvalidTransition", at_pharmacy, BatchStatus.QUARANTINED):
        drugs.quarantine(at_pharmacy, 5, {"from": manufacturer})  # no re-quarantine to reset the flag
    for account in (distributor, pharmacy):
        with reverts("DrugNotAuthority", account):
            drugs.release(at_pharmacy, {"from": account})
    with reverts("DrugBatchNotActive", at_pharmacy, BatchStatus.QUARANTINED):
        drugs.ship(at_pharmacy, pharmacy, 1, {"from": distributor})


# ─── Rule: a suspended or removed manufacturer loses authority over its batches ─────────────


@pytest.mark.parametrize("action", [GovernanceAction.SUSPEND, GovernanceAction.REMOVE])
def test_suspended_manufacturer_cannot_quarantine_release_or_recall(
    drugs, registry, accounts, batch, manufacturer, action
):
    drugs.quarantine(batch, 5, {"from": manufacturer})
    govern(registry, accounts, manufacturer, action)
    with reverts("DrugNotAuthority", manufacturer):
        drugs.release(batch, {"from": manufacturer})
    with reverts("DrugNotAuthority", manufacturer):
        drugs.recall(batch, 3, [manufacturer], {"from": manufacturer})
    assert drugs.batch(batch)["status"] == BatchStatus.QUARANTINED


def test_suspended_manufacturer_cannot_quarantine(drugs, registry, accounts, batch, manufacturer):
    govern(registry, accounts, manufacturer, GovernanceAction.SUSPEND)
    with reverts("DrugNotAuthority", manufacturer):
        drugs.quarantine(batch, 5, {"from": manufacturer})


def test_suspended_manufacturer_cannot_register_commission_or_ship(
    drugs, registry, accounts, batch, manufacturer, distributor
):
    govern(registry, accounts, manufacturer, GovernanceAction.SUSPEND)
    with reverts("DrugNotManufacturer", manufacturer):
        drugs.registerProduct(96385074, {"from": manufacturer})
    with reverts("DrugNotManufacturer", manufacturer):
        drugs.commission(GTIN, lot_bytes("AB-124"), 1, 2, 1, CERT, b"\0" * 32, {"from": manufacturer})
    with reverts("DrugHolderNotActive", manufacturer):
        drugs.ship(batch, distributor, 1, {"from": manufacturer})


def test_regulator_keeps_authority_over_a_suspended_manufacturers_batch(
    drugs, registry, accounts, batch, manufacturer, regulator
):
    govern(registry, accounts, manufacturer, GovernanceAction.SUSPEND)
    drugs.quarantine(batch, 5, {"from": regulator})
    drugs.release(batch, {"from": regulator})
    drugs.recall(batch, 3, [manufacturer], {"from": regulator})
    assert drugs.batch(batch)["status"] == BatchStatus.RECALLED


def test_reinstated_manufacturer_regains_authority(drugs, registry, accounts, batch, manufacturer):
    govern(registry, accounts, manufacturer, GovernanceAction.SUSPEND)
    govern(registry, accounts, manufacturer, GovernanceAction.REINSTATE)
    drugs.quarantine(batch, 5, {"from": manufacturer})
    drugs.release(batch, {"from": manufacturer})


# ─── Rule: a suspended or removed holder can neither ship nor receive ──────────────────────


@pytest.mark.parametrize("action", [GovernanceAction.SUSPEND, GovernanceAction.REMOVE])
def test_suspended_holder_cannot_ship(drugs, registry, accounts, at_pharmacy, distributor, pharmacy, action):
    govern(registry, accounts, distributor, action)
    with reverts("DrugHolderNotActive", distributor):
        drugs.ship(at_pharmacy, pharmacy, 1, {"from": distributor})


@pytest.mark.parametrize("action", [GovernanceAction.SUSPEND, GovernanceAction.REMOVE])
def test_suspended_holder_cannot_receive(drugs, registry, accounts, batch, manufacturer, distributor, action):
    tx = drugs.ship(batch, distributor, 10, {"from": manufacturer})
    govern(registry, accounts, distributor, action)
    with reverts("DrugHolderNotActive", distributor):
        drugs.receiveShipment(ref_of(tx), {"from": distributor})
    assert drugs.holding(batch, distributor) == (0, 0)
    drugs.cancelShipment(ref_of(tx), {"from": manufacturer})  # the way back
    assert drugs.holding(batch, manufacturer) == (100, 0)


def test_suspended_dispenser_cannot_dispense_or_receive(
    drugs, registry, accounts, at_pharmacy, distributor, pharmacy
):
    tx = drugs.ship(at_pharmacy, pharmacy, 5, {"from": distributor})
    govern(registry, accounts, pharmacy, GovernanceAction.SUSPEND)
    with reverts("DrugNotDispenser", pharmacy):
        drugs.dispense(at_pharmacy, 1, PATIENT_REF, {"from": pharmacy})
    with reverts("DrugHolderNotActive", pharmacy):
        drugs.receiveShipment(ref_of(tx), {"from": pharmacy})


def test_suspended_holder_may_destroy_and_cancel(
    drugs, registry, accounts, at_pharmacy, distributor, pharmacy
):
    tx = drugs.ship(at_pharmacy, pharmacy, 5, {"from": distributor})
    govern(registry, accounts, distributor, GovernanceAction.SUSPEND)
    drugs.cancelShipment(ref_of(tx), {"from": distributor})
    assert drugs.holding(at_pharmacy, distributor) == (40, 0)
    drugs.destroy(at_pharmacy, 40, {"from": distributor})
    assert drugs.holding(at_pharmacy, distributor) == (0, 0)


def test_shipment_sent_before_the_senders_suspension_can_be_received(
    drugs, registry, accounts, at_pharmacy, distributor, pharmacy
):
    tx = drugs.ship(at_pharmacy, pharmacy, 5, {"from": distributor})
    govern(registry, accounts, distributor, GovernanceAction.SUSPEND)
    drugs.receiveShipment(ref_of(tx), {"from": pharmacy})
    assert drugs.holding(at_pharmacy, pharmacy) == (25, 0)


def test_reinstated_holder_may_ship_and_receive_again(
    drugs, registry, accounts, at_pharmacy, manufacturer, distributor, pharmacy
):
    pending = drugs.ship(at_pharmacy, distributor, 5, {"from": manufacturer})
    govern(registry, accounts, distributor, GovernanceAction.SUSPEND)
    govern(registry, accounts, distributor, GovernanceAction.REINSTATE)
    drugs.receiveShipment(ref_of(pending), {"from": distributor})
    move(drugs, at_pharmacy, distributor, pharmacy, 1)


@pytest.mark.parametrize("who", ["outsider", "insurer", "laboratory"])
def test_non_holder_kinds_cannot_ship(drugs, batch, distributor, outsider, insurer, laboratory, who):
    caller = {"outsider": outsider, "insurer": insurer, "laboratory": laboratory}[who]
    with reverts("DrugHolderNotActive", caller):
        drugs.ship(batch, distributor, 1, {"from": caller})


# ─── Rule: an expired batch cannot ship ────────────────────────────────────────────────────


def test_expired_batch_cannot_be_shipped(drugs, at_pharmacy, manufacturer, distributor, pharmacy):
    expiry = drugs.batch(at_pharmacy)["expiry"]
    chain.sleep(366 * 86400)
    chain.mine()
    for sender, to in ((manufacturer, distributor), (distributor, pharmacy)):
        with reverts("DrugBatchExpired", at_pharmacy, expiry):
            drugs.ship(at_pharmacy, to, 1, {"from": sender})


@pytest.mark.skipif("network.show_active() != 'development'", reason="pins block timestamps with Anvil")
def test_batch_cannot_be_shipped_from_its_expiry_second_on(drugs, batch, manufacturer, distributor, web3):
    expiry = drugs.batch(batch)["expiry"]
    web3.provider.make_request("evm_setNextBlockTimestamp", [expiry - 1])
    drugs.ship(batch, distributor, 1, {"from": manufacturer})  # the last second before expiry
    web3.provider.make_request("evm_setNextBlockTimestamp", [expiry])
    with reverts("DrugBatchExpired", batch, expiry):
        drugs.ship(batch, distributor, 1, {"from": manufacturer})


def test_shipment_in_transit_at_expiry_can_be_received_but_not_moved_on(
    drugs, at_pharmacy, distributor, pharmacy, hospital
):
    expiry = drugs.batch(at_pharmacy)["expiry"]
    tx = drugs.ship(at_pharmacy, pharmacy, 5, {"from": distributor})
    chain.sleep(366 * 86400)
    chain.mine()
    drugs.receiveShipment(ref_of(tx), {"from": pharmacy})  # the ledger follows the goods
    assert drugs.holding(at_pharmacy, pharmacy) == (25, 0)
    with reverts("DrugBatchExpired", at_pharmacy, expiry):
        drugs.ship(at_pharmacy, hospital, 1, {"from": pharmacy})
    with reverts("DrugBatchExpired", at_pharmacy, expiry):
        drugs.dispense(at_pharmacy, 1, PATIENT_REF, {"from": pharmacy})
    drugs.destroy(at_pharmacy, 25, {"from": pharmacy})  # what is left to do with expired stock


def test_shipment_in_transit_at_expiry_can_be_cancelled(drugs, at_pharmacy, distributor, pharmacy):
    tx = drugs.ship(at_pharmacy, pharmacy, 5, {"from": distributor})
    chain.sleep(366 * 86400)
    chain.mine()
    drugs.cancelShipment(ref_of(tx), {"from": distributor})
    assert drugs.holding(at_pharmacy, distributor) == (40, 0)

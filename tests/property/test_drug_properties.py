"""Properties: whatever the sequence of ships, receives, cancellations, dispenses and destructions,
holdings (available + in transit) sum to quantity - dispensed - destroyed, and a recalled batch
never moves; whatever the sequence of quarantines, releases and recalls by the manufacturer and a
regulator, only a regulator lifts a regulator's quarantine; whatever the time, a batch ships and
dispenses only before its expiry, while shipments in transit can still be received."""

from __future__ import annotations

import hashlib

import brownie
import pytest
from brownie import chain, network  # noqa: F401 - network is used by skipif
from brownie.test import strategy

from medchain.drug import lot_bytes
from medchain.types import BatchStatus
from tests.helpers import reverts

GTIN = 9506000134352
# brownie's state_machine snapshots the chain itself, so the products each test registers outlive
# it: each test registers its own GTIN.
AUTHORITY_GTIN = 96385074
EXPIRY_GTIN = 4006381333931


def commission(drugs, manufacturer, gtin, lot, expiry_in):
    now = chain[-1].timestamp
    tx = drugs.commission(
        gtin,
        lot_bytes(lot),
        now - 1,
        now + expiry_in,
        1000,
        hashlib.sha256(b"cert").digest(),
        b"\0" * 32,
        {"from": manufacturer},
    )
    return tx.events["BatchCommissioned"]["batchId"]


@pytest.fixture
def batch(drugs, manufacturer):
    drugs.registerProduct(GTIN, {"from": manufacturer})
    now = chain[-1].timestamp
    tx = drugs.commission(
        GTIN,
        lot_bytes("P-1"),
        now,
        now + 10 * 365 * 86400,
        500,
        hashlib.sha256(b"cert").digest(),
        b"\0" * 32,
        {"from": manufacturer},
    )
    return tx.events["BatchCommissioned"]["batchId"]


class CustodyMachine:
    pick = strategy("uint8")
    qty = strategy("uint16", min_value=1, max_value=120)

    def __init__(cls, drugs, batch, parties, regulator):  # noqa: N805 - brownie calls it on the class
        cls.drugs, cls.batch, cls.parties, cls.regulator = drugs, batch, parties, regulator

    def setup(self):
        self.pending = []  # shipment references
        self.dispensed = 0
        self.destroyed = 0
        self.recalled = False

    def _holder(self, pick):
        return self.parties[pick % len(self.parties)]

    def rule_ship(self, pick, qty):
        frm, to = self._holder(pick), self._holder(pick // 3 + 1)
        available = self.drugs.holding(self.batch, frm)[0]
        if frm == to or self.recalled or qty > available or to == self.parties[0]:
            return
        tx = self.drugs.ship(self.batch, to, qty, {"from": frm})
        r = tx.events["Shipped"]["ref"]
        self.pending.append((r["batchId"], r["from"], r["to"], r["quantity"], r["nonce"], r["shippedAt"]))

    def rule_receive(self, pick):
        if not self.pending:
            return
        ref = self.pending[pick % len(self.pending)]
        if self.recalled:
            with brownie.reverts():
                self.drugs.receiveShipment(ref, {"from": ref[2]})
            return
        self.drugs.receiveShipment(ref, {"from": ref[2]})
        self.pending.remove(ref)

    def rule_cancel(self, pick):
        if not self.pending:
            return
        ref = self.pending[pick % len(self.pending)]
        self.drugs.cancelShipment(ref, {"from": ref[1]})
        self.pending.remove(ref)

    def rule_dispense(self, pick, qty):
        who = self._holder(pick)
        if who in (self.parties[0], self.parties[1]):  # manufacturer, distributor cannot dispense
            return
        available = self.drugs.holding(self.batch, who)[0]
        if qty > available:
            return
        if self.recalled:
            with brownie.reverts():
                self.drugs.dispense(self.batch, qty, b"\1" * 32, {"from": who})
            return
        self.drugs.dispense(self.batch, qty, b"\1" * 32, {"from": who})
        self.dispensed += qty

    def rule_destroy(self, pick, qty):
        who = self._holder(pick)
        available = self.drugs.holding(self.batch, who)[0]
        if qty > available or self.drugs.batch(self.batch)["status"] == BatchStatus.DESTROYED:
            return
        self.drugs.destroy(self.batch, qty, {"from": who})
        self.destroyed += qty

    def rule_recall(self):
        if self.recalled:
            return
        holders = sorted({p.address for p in self.parties}, key=lambda a: int(a, 16))
        self.drugs.recall(self.batch, 9, holders, {"from": self.regulator})
        self.recalled = True

    def invariant_holdings_sum(self):
        total = sum(sum(self.drugs.holding(self.batch, p)) for p in self.parties)
        b = self.drugs.batch(self.batch)
        assert total == b["quantity"] - b["dispensed"] - b["destroyed"]
        assert (b["dispensed"], b["destroyed"]) == (self.dispensed, self.destroyed)

    def invariant_recalled_batch_does_not_move(self):
        if self.recalled:
            frm = self.parties[0]
            if self.drugs.holding(self.batch, frm)[0] > 0:
                with brownie.reverts():
                    self.drugs.ship(self.batch, self.parties[1], 1, {"from": frm})


def test_holdings_always_balance(
    state_machine, drugs, batch, manufacturer, distributor, pharmacy, hospital, regulator
):
    state_machine(
        CustodyMachine,
        drugs,
        batch,
        [manufacturer, distributor, pharmacy, hospital],
        regulator,
        settings={"max_examples": 15, "stateful_step_count": 15},
    )


# ─── Quarantine authority ──────────────────────────────────────────────────────────────────


class AuthorityMachine:
    """A model of the status machine with who-quarantined; the contract must agree at every step."""

    regulator_acts = strategy("bool")

    def __init__(cls, drugs, batch, manufacturer, regulator, distributor):  # noqa: N805
        cls.drugs, cls.batch = drugs, batch
        cls.manufacturer, cls.regulator, cls.distributor = manufacturer, regulator, distributor

    def setup(self):
        self.status = BatchStatus.ACTIVE
        self.by_regulator = False

    def _who(self, regulator_acts):
        return self.regulator if regulator_acts else self.manufacturer

    def rule_quarantine(self, regulator_acts):
        take_over = self.status == BatchStatus.QUARANTINED and regulator_acts and not self.by_regulator
        if self.status != BatchStatus.ACTIVE and not take_over:
            with reverts("DrugInvalidTransition", self.batch, self.status):
                self.drugs.quarantine(self.batch, 1, {"from": self._who(regulator_acts)})
            return
        self.drugs.quarantine(self.batch, 1, {"from": self._who(regulator_acts)})
        self.status, self.by_regulator = BatchStatus.QUARANTINED, regulator_acts

    def rule_release(self, regulator_acts):
        who = self._who(regulator_acts)
        if self.status != BatchStatus.QUARANTINED:
            with reverts("DrugInvalidTransition", self.batch, self.status):
                self.drugs.release(self.batch, {"from": who})
        elif self.by_regulator and not regulator_acts:
            with reverts("DrugRegulatorQuarantine", self.batch, who):
                self.drugs.release(self.batch, {"from": who})
        else:
            self.drugs.release(self.batch, {"from": who})
            self.status, self.by_regulator = BatchStatus.ACTIVE, False

    def rule_recall(self, regulator_acts):
        who = self._who(regulator_acts)
        if self.status not in (BatchStatus.ACTIVE, BatchStatus.QUARANTINED):
            with reverts("DrugInvalidTransition", self.batch, self.status):
                self.drugs.recall(self.batch, 2, [self.manufacturer], {"from": who})
            return
        self.drugs.recall(self.batch, 2, [self.manufacturer], {"from": who})
        self.status, self.by_regulator = BatchStatus.RECALLED, False

    def invariant_contract_agrees_with_the_model(self):
        b = self.drugs.batch(self.batch)
        assert (b["status"], b["quarantinedByRegulator"]) == (self.status, self.by_regulator)

    def invariant_only_an_active_batch_ships(self):
        if self.status != BatchStatus.ACTIVE:
            with reverts("DrugBatchNotActive", self.batch, self.status):
                self.drugs.ship(self.batch, self.distributor, 1, {"from": self.manufacturer})


def test_only_a_regulator_lifts_a_regulator_quarantine(
    state_machine, drugs, manufacturer, regulator, distributor
):
    drugs.registerProduct(AUTHORITY_GTIN, {"from": manufacturer})
    batch = commission(drugs, manufacturer, AUTHORITY_GTIN, "Q-1", 10 * 365 * 86400)
    state_machine(
        AuthorityMachine,
        drugs,
        batch,
        manufacturer,
        regulator,
        distributor,
        settings={"max_examples": 15, "stateful_step_count": 12},
    )


# ─── Expiry ────────────────────────────────────────────────────────────────────────────────


class ExpiryMachine:
    """Pins each transaction's block time (Anvil) around the expiry of a short-lived batch."""

    step = strategy("uint16", min_value=1, max_value=60)
    pick = strategy("uint8")

    def __init__(cls, drugs, web3, manufacturer, pharmacy):  # noqa: N805
        cls.drugs, cls.web3, cls.manufacturer, cls.pharmacy = drugs, web3, manufacturer, pharmacy

    def setup(self):
        self._at(1)  # block times relative to the snapshot, not the wall clock: runs replay exactly
        self.batch = commission(self.drugs, self.manufacturer, EXPIRY_GTIN, "E-1", 90)
        self.expiry = self.drugs.batch(self.batch)["expiry"]
        self.pending = []

    def _at(self, step):
        """The timestamp the next transaction will carry."""
        ts = chain[-1].timestamp + step
        self.web3.provider.make_request("evm_setNextBlockTimestamp", [ts])
        return ts

    def rule_ship(self, step):
        ts = self._at(step)
        if ts >= self.expiry:
            with reverts("DrugBatchExpired", self.batch, self.expiry):
                self.drugs.ship(self.batch, self.pharmacy, 1, {"from": self.manufacturer})
            return
        tx = self.drugs.ship(self.batch, self.pharmacy, 1, {"from": self.manufacturer})
        r = tx.events["Shipped"]["ref"]
        self.pending.append((r["batchId"], r["from"], r["to"], r["quantity"], r["nonce"], r["shippedAt"]))

    def rule_receive(self, step, pick):
        if not self.pending:
            return
        self._at(step)  # before or after expiry: a shipment in transit is received
        ref = self.pending.pop(pick % len(self.pending))
        self.drugs.receiveShipment(ref, {"from": self.pharmacy})

    def rule_dispense(self, step):
        if self.drugs.holding(self.batch, self.pharmacy)[0] == 0:
            return
        ts = self._at(step)
        if ts >= self.expiry:
            with reverts("DrugBatchExpired", self.batch, self.expiry):
                self.drugs.dispense(self.batch, 1, b"\1" * 32, {"from": self.pharmacy})
            return
        self.drugs.dispense(self.batch, 1, b"\1" * 32, {"from": self.pharmacy})


@pytest.mark.skipif("network.show_active() != 'development'", reason="pins block timestamps with Anvil")
def test_batches_move_only_before_expiry(state_machine, drugs, web3, manufacturer, pharmacy):
    drugs.registerProduct(EXPIRY_GTIN, {"from": manufacturer})
    state_machine(
        ExpiryMachine,
        drugs,
        web3,
        manufacturer,
        pharmacy,
        settings={"max_examples": 15, "stateful_step_count": 25},
    )

"""Property: whatever the sequence of ships, receives, cancellations, dispenses and destructions,
holdings (available + in transit) sum to quantity - dispensed - destroyed, and a recalled batch
never moves."""

from __future__ import annotations

import hashlib

import brownie
import pytest
from brownie import chain
from brownie.test import strategy

from medchain.drug import BatchStatus, lot_bytes

GTIN = 9506000134352


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

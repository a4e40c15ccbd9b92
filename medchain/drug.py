"""Drug provenance client: GS1 identifiers, custody, dispensing, recall, pack verification, trace.

The GS1 EPCIS export of a batch's history is in :mod:`medchain.epcis`."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_messages import GS1Message
from eth_abi.abi import encode as abi_encode
from web3 import Web3
from web3.contract import Contract

from medchain.artifacts import abi_type
from medchain.chain import Chain, ContractClient, Sender, log_decoder
from medchain.errors import ChainError, ConfigurationError, ContractRevert, MedChainError
from medchain.gs1 import GS1Error as GS1Error  # re-exported: callers catch medchain.drug.GS1Error
from medchain.gs1 import check_ai82
from medchain.merkle import MerkleTree
from medchain.types import (
    ZERO32,
    BatchId,
    BatchStatus,
    DispenseId,
    ShipmentId,
    ShipmentStatus,
    ascii_text,
    fixed_ascii,
    patient_ref,
)

RECALL_ATTEMPTS = 3
"""How many times `DrugClient.recall` puts the batch on hold and lists holders before giving up."""


GTIN_LENGTHS = (8, 12, 13, 14)
"""The lengths a GTIN is written in: GTIN-8, GTIN-12 (U.P.C.), GTIN-13 and GTIN-14."""
MAX_GTIN = 10**14 - 1
"""The largest GTIN value: GTINs are stored as the value of their 14-digit form."""


def parse_gtin(value: str | int) -> int:
    """A GTIN as the contract stores it: the value of its 14-digit form (GS1's database form).

    The rule is the contract's (`IDrugProvenance.registerProduct`), python-stdnum's (`stdnum.ean`)
    and biip's, except that the all-zero GTIN is refused (no trade item's GTIN; 0 means "no product"
    on chain). See docs/architecture.md, "Drug provenance".

    Args:
        value: the GTIN as written, 8, 12, 13 or 14 ASCII digits (leading zeros kept; surrounding
            whitespace ignored), or as an integer (the 14-digit form's value, e.g. what a contract
            returned): 1 to 99,999,999,999,999.

    Returns:
        The GTIN's value: GTIN-8 "01234565" and GTIN-14 "00000001234565" are both 1234565.

    Raises:
        GS1Error: not digits, a wrong length or range, a wrong check digit, or all zeros.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise GS1Error(f"invalid GTIN {value!r}: give its digits as a string, or an integer")
    if isinstance(value, int):
        if not 0 <= value <= MAX_GTIN:
            raise GS1Error(f"invalid GTIN {value}: a GTIN's value is 1 to {MAX_GTIN} (at most 14 digits)")
        text = f"{value:014d}"
    else:
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            raise GS1Error(f"invalid GTIN {value!r}: only the digits 0-9 (no spaces or separators)")
        if len(text) not in GTIN_LENGTHS:
            raise GS1Error(f"invalid GTIN {value!r}: {len(text)} digits; a GTIN has 8, 12, 13 or 14")
    expected = gs1_standard_check_digit(text[:-1])  # biip: GS1 General Specifications 7.9
    if int(text[-1]) != expected:
        raise GS1Error(f"invalid GTIN {value!r}: check digit is {text[-1]}, should be {expected}")
    number = int(text)
    if number == 0:
        raise GS1Error(f"invalid GTIN {value!r}: all zeros is no product's GTIN")
    return number


def lot_bytes(lot: str) -> bytes:
    """A lot number (GS1 AI 10: 1 to 20 characters of GS1 set 82) as the contract's bytes20.

    Raises:
        GS1Error: a character GS1 does not allow in a lot (a space, a non-ASCII letter...), or too long.
    """
    check_ai82(lot, "lot")
    try:
        return fixed_ascii(lot, 20, "lot")
    except ValueError as exc:
        raise GS1Error(str(exc)) from None


def lot_text(raw: bytes) -> str:
    return ascii_text(raw)


@dataclass(frozen=True)
class Pack:
    """What a pack's DataMatrix says: GTIN (01), expiry (17), lot (10), serial (21)."""

    gtin: int
    lot: str
    serial: str
    expiry: str | None

    @classmethod
    def parse(cls, element_string: str) -> Pack:
        """Parses a GS1 element string with biip, as a scanner sends it or as printed.

        Accepted: FNC1 separators as ASCII 29 (GS), the human-readable form with the AIs in
        parentheses (``(01)09506000134352(17)270630(10)A1(21)SN1``), and either with a leading
        symbology identifier (``]d2`` DataMatrix, ``]C1`` GS1-128, ``]Q3`` QR, ``]e0`` DataBar).
        """
        text = SYMBOLOGY_IDENTIFIER.sub("", element_string.strip(), count=1)
        try:
            message = GS1Message.parse_hri(text) if text.startswith("(") else GS1Message.parse(text)
        except ParseError as exc:
            raise GS1Error(f"malformed GS1 element string: {exc}") from None
        found = {es.ai.ai: es for es in message.element_strings}
        missing = [ai for ai in ("01", "10", "21") if ai not in found]
        if missing:
            raise GS1Error(
                f"the element string lacks AI {', '.join(missing)} (GTIN 01, lot 10, serial 21 needed)"
            )
        expiry = found["17"].date.isoformat() if "17" in found and found["17"].date else None
        return cls(parse_gtin(found["01"].value), found["10"].value, found["21"].value, expiry)


SYMBOLOGY_IDENTIFIER = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
"""The ISO/IEC 15424 prefix some scanners put before the data (``]d2`` for a GS1 DataMatrix)."""

SERIAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""Characters of generated serial numbers: GS1 AI 21 safe, without the look-alikes 0/O and 1/I."""


def generate_serials(count: int, length: int = 12) -> list[str]:
    """``count`` distinct random serial numbers (``secrets``) for a batch's packs (GS1 AI 21)."""
    serials: dict[str, None] = {}
    while len(serials) < count:
        serials["".join(secrets.choice(SERIAL_ALPHABET) for _ in range(length))] = None
    return list(serials)


def batch_id_of(gtin: str | int, lot: str) -> BatchId:
    """keccak256(abi.encode(gtin, lot)): a batch's id, as the contract's ``batchIdOf`` computes it."""
    return BatchId(bytes(Web3.keccak(abi_encode(["uint64", "bytes20"], [parse_gtin(gtin), lot_bytes(lot)]))))


def dispense_id_of(
    batch_id: bytes, dispenser: str, patient_ref: bytes, quantity: int, nonce: int, timestamp: int
) -> DispenseId:
    """A dispense's id, as DrugProvenance computes it (ClaimsProcessor checks drug claims against it)."""
    fields = [batch_id, Web3.to_checksum_address(dispenser), patient_ref, quantity, nonce, timestamp]
    types = ["bytes32", "address", "bytes32", "uint64", "uint64", "uint256"]
    return DispenseId(bytes(Web3.keccak(abi_encode(types, fields))))


def new_patient_salt() -> bytes:
    """32 random bytes (``secrets``): the salt of one dispense's patient reference."""
    return secrets.token_bytes(32)


def serial_leaf_id(serial: str) -> bytes:
    """keccak256(abi.encode(serial)): the contract's leaf is keccak256 of this value."""
    return bytes(Web3.keccak(abi_encode(["string"], [serial])))


def serial_leaf(serial: str) -> bytes:
    """A pack's leaf in its batch's serials tree, as the contract computes it (``DrugIds.serialLeaf``):
    keccak256(bytes.concat(keccak256(abi.encode(serial)))). ``SerialDispensed`` events carry it."""
    return bytes(Web3.keccak(serial_leaf_id(serial)))


class SerialTree:
    """The Merkle tree of a batch's serial numbers (so one pack can be proven genuine)."""

    def __init__(self, serials: list[str]) -> None:
        self.tree = MerkleTree([serial_leaf_id(s) for s in serials])

    @property
    def root(self) -> bytes:
        return self.tree.root

    def proof(self, serial: str) -> list[bytes]:
        return self.tree.proof(serial_leaf_id(serial))


@dataclass(frozen=True)
class BatchEvent:
    """One step of a batch's history, from chain events."""

    kind: str  # commissioned, shipped, received, cancelled, dispensed, status, holder_at_recall, destroyed
    # A dispense by serial carries the pack's leaf (`serial_leaf`) as args["serialLeaf"].
    block: int
    log_index: int
    tx: str
    timestamp: int
    args: dict[str, Any]


@dataclass(frozen=True)
class ShipmentRef:
    """A shipment as the contract identifies it (``IDrugProvenance.ShipmentRef``): what the
    addressee needs to receive it, or the sender to cancel it."""

    batch_id: BatchId
    sender: str
    to: str
    quantity: int
    nonce: int
    shipped_at: int

    @property
    def id(self) -> ShipmentId:
        """keccak256 of the ABI-encoded reference, as the contract computes it."""
        types = ["(bytes32,address,address,uint64,uint64,uint40)"]
        return ShipmentId(bytes(Web3.keccak(abi_encode(types, [self.as_tuple()]))))

    def as_tuple(self) -> tuple[bytes, str, str, int, int, int]:
        return (self.batch_id, self.sender, self.to, self.quantity, self.nonce, self.shipped_at)

    @classmethod
    def from_event(cls, ref: Any) -> ShipmentRef:
        """From the ``ref`` field of a ``Shipped`` event (web3's decoded struct)."""
        return cls(
            BatchId(bytes(ref["batchId"])),
            Web3.to_checksum_address(ref["from"]),
            Web3.to_checksum_address(ref["to"]),
            int(ref["quantity"]),
            int(ref["nonce"]),
            int(ref["shippedAt"]),
        )


@dataclass(frozen=True)
class BatchInfo:
    """A batch as the contract stores it."""

    manufacturer: str
    manufactured_at: int
    expiry: int
    status: BatchStatus
    quarantined_by_regulator: bool  # while quarantined: only a regulator may lift it
    quantity: int
    dispensed: int
    destroyed: int
    certificate_digest: bytes
    serials_root: bytes


DISPENSE_FORMAT = "medchain-dispense-v1"
"""The ``format`` tag of a saved dispense (:meth:`Dispense.to_json`)."""


@dataclass(frozen=True)
class Dispense:
    """A dispense as the chain recorded it, with the salt behind its patient reference.

    The pharmacy keeps ``patient_salt`` with its dispensing record and gives it to the patient:
    with it, the patient (or a drug claim, through ClaimsProcessor's ``DrugDispense``) can show the
    dispense was theirs; without it, nobody can link the patient to the product. ``gtin``, ``lot``
    and ``patient`` are not on chain: they are kept so that the record alone is enough to bill it
    (a drug claim's ``DispenseRef`` is the lot, salt, quantity, nonce and timestamp).
    """

    dispense_id: DispenseId
    batch_id: BatchId
    gtin: int
    lot: str
    dispenser: str
    patient: str
    patient_ref: bytes
    patient_salt: bytes
    quantity: int
    nonce: int  # the dispenser's available units before dispensing (part of the dispense id)
    timestamp: int
    serial: str | None = None  # the pack's serial (GS1 AI 21) when dispensed by serial

    def to_json(self) -> str:
        """The dispense as a JSON object: hex strings for bytes, the GTIN as its 14 digits.

        ``{"format": "medchain-dispense-v1", "dispense_id": "0x…", "batch_id": "0x…",
        "gtin": "09506000134352", "lot": "A1", "dispenser": "0x…", "patient": "0x…",
        "patient_ref": "0x…", "patient_salt": "0x…", "quantity": 1, "nonce": 30,
        "timestamp": 1767225600}``
        """
        data = {
            "format": DISPENSE_FORMAT,
            "dispense_id": "0x" + self.dispense_id.hex(),
            "batch_id": "0x" + self.batch_id.hex(),
            "gtin": f"{self.gtin:014d}",
            "lot": self.lot,
            "dispenser": self.dispenser,
            "patient": self.patient,
            "patient_ref": "0x" + self.patient_ref.hex(),
            "patient_salt": "0x" + self.patient_salt.hex(),
            "quantity": self.quantity,
            "nonce": self.nonce,
            "timestamp": self.timestamp,
        }
        if self.serial is not None:
            data["serial"] = self.serial
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "dispense record") -> Dispense:
        """Reads :meth:`to_json`'s output back, checking that its ids follow from its fields.

        Raises:
            ConfigurationError: not JSON, not a dispense record, a field missing or malformed, or
                ids that do not match the rest (an edited or damaged record).
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{source} is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != DISPENSE_FORMAT:
            raise ConfigurationError(f"{source} is not a dispense record (no format {DISPENSE_FORMAT!r})")
        try:
            batch_id = _hex32(data["batch_id"], "batch_id")
            gtin = parse_gtin(str(data["gtin"]))
            lot = str(data["lot"])
            dispenser = _address(data["dispenser"], "dispenser")
            patient = _address(data["patient"], "patient")
            salt = _hex32(data["patient_salt"], "patient_salt")
            dispense = cls(
                dispense_id=DispenseId(_hex32(data["dispense_id"], "dispense_id")),
                batch_id=BatchId(batch_id),
                gtin=gtin,
                lot=lot,
                dispenser=dispenser,
                patient=patient,
                patient_ref=_hex32(data["patient_ref"], "patient_ref"),
                patient_salt=salt,
                quantity=_count(data["quantity"], "quantity"),
                nonce=_count(data["nonce"], "nonce"),
                timestamp=_count(data["timestamp"], "timestamp"),
                serial=str(data["serial"]) if data.get("serial") is not None else None,
            )
        except KeyError as exc:
            raise ConfigurationError(f"{source} lacks the field {exc.args[0]!r}") from None
        except (GS1Error, ValueError) as exc:
            raise ConfigurationError(f"{source}: {exc}") from None
        dispense.check()
        return dispense

    def check(self) -> None:
        """Raises ConfigurationError unless the batch id, patient reference and dispense id follow
        from the other fields (as the contract computed them)."""
        if batch_id_of(self.gtin, self.lot) != self.batch_id:
            raise ConfigurationError(
                f"dispense record: batch_id is not that of GTIN {self.gtin:014d} lot {self.lot}"
            )
        if patient_ref(self.patient, self.patient_salt) != self.patient_ref:
            raise ConfigurationError(
                "dispense record: patient_ref does not follow from patient and patient_salt"
            )
        expected = dispense_id_of(
            self.batch_id, self.dispenser, self.patient_ref, self.quantity, self.nonce, self.timestamp
        )
        if expected != self.dispense_id:
            raise ConfigurationError("dispense record: dispense_id does not follow from its fields")


class UnknownBatchError(MedChainError):
    """No batch with this GTIN and lot was commissioned on this deployment."""


@dataclass(frozen=True)
class BatchLabel:
    """What a batch's packs print: its GTIN and lot (read from its commissioning event)."""

    gtin: int
    lot: str


@dataclass(frozen=True)
class PackVerdict:
    genuine: bool
    status: BatchStatus
    expiry: int
    holders: dict[str, int]
    dispensed_by: bytes | None = None
    """The dispense that took a pack with this serial (``dispenseSerial``): a second pack carrying
    the same serial is a copy."""


class DrugClient(ContractClient):
    """Manufacturer, distributor, pharmacy and regulator operations on DrugProvenance."""

    def __init__(self, chain: Chain, contract: Contract, from_block: int = 0) -> None:
        super().__init__(chain, contract, from_block)
        self._decoder_cache: dict[bytes, tuple[str, Any]] | None = None

    # ─── Writes ─────────────────────────────────────────────────────────────────────────────

    def register_product(self, manufacturer: Sender, gtin: str | int) -> int:
        code = parse_gtin(gtin)
        self._send(manufacturer, "registerProduct", code)
        return code

    def commission(
        self,
        manufacturer: Sender,
        gtin: str | int,
        lot: str,
        manufactured_at: int,
        expiry: int,
        quantity: int,
        certificate_digest: bytes,
        serials: list[str] | None = None,
    ) -> BatchId:
        """Commissions a batch; with ``serials`` their Merkle root is anchored. Returns the batch id."""
        root = SerialTree(serials).root if serials else ZERO32
        receipt = self._send(
            manufacturer,
            "commission",
            parse_gtin(gtin),
            lot_bytes(lot),
            manufactured_at,
            expiry,
            quantity,
            certificate_digest,
            root,
        )
        return BatchId(bytes(self._emitted_field(receipt, "BatchCommissioned", "batchId")))

    def batch_id(self, gtin: str | int, lot: str) -> bytes:
        return bytes(self._call("batchIdOf", parse_gtin(gtin), lot_bytes(lot)))

    def existing_batch(self, gtin: str | int, lot: str) -> BatchId:
        """The id of batch ``gtin`` + ``lot``, which must have been commissioned.

        Raises:
            GS1Error: the GTIN or lot is malformed.
            UnknownBatchError: no such batch on this deployment.
        """
        batch_id = batch_id_of(gtin, lot)
        if self.batch(batch_id).status == BatchStatus.NONE:
            raise UnknownBatchError(f"no batch {parse_gtin(gtin):014d} / {lot} on this deployment")
        return batch_id

    def label(self, batch_id: bytes) -> BatchLabel:
        """A batch's GTIN and lot, from its commissioning event.

        Raises:
            UnknownBatchError: no batch with this id was commissioned on this deployment.
        """
        found = self._events("BatchCommissioned", batchId=batch_id)
        if not found:
            raise UnknownBatchError(f"no batch 0x{batch_id.hex()} on this deployment")
        args = found[0]["args"]
        return BatchLabel(int(args["gtin"]), lot_text(bytes(args["lot"])))

    def ship(self, sender: Sender, batch_id: bytes, to: str, quantity: int) -> ShipmentRef:
        """Ships units; returns the shipment reference the addressee needs to receive it."""
        receipt = self._send(sender, "ship", batch_id, Web3.to_checksum_address(to), quantity)
        return ShipmentRef.from_event(self._emitted_field(receipt, "Shipped", "ref"))

    def receive(self, addressee: Sender, ref: ShipmentRef) -> None:
        self._send(addressee, "receiveShipment", ref.as_tuple())

    def cancel(self, sender: Sender, ref: ShipmentRef) -> None:
        self._send(sender, "cancelShipment", ref.as_tuple())

    def dispense(self, dispenser: Sender, batch_id: bytes, quantity: int, patient_ref: bytes) -> DispenseId:
        """Dispenses to a patient reference the caller built; returns the dispense id.

        Prefer :meth:`dispense_to_patient`, which draws the salt: a reference built from a constant
        or guessable salt links the patient to the product for anyone who can guess it.
        """
        receipt = self._send(dispenser, "dispense", batch_id, quantity, patient_ref)
        return DispenseId(bytes(self._emitted_field(receipt, "Dispensed", "dispenseId")))

    def dispense_to_patient(
        self,
        dispenser: Sender,
        batch_id: bytes,
        quantity: int,
        patient: str,
        serial: str | None = None,
        proof: list[bytes] | None = None,
    ) -> Dispense:
        """Dispenses to ``patient`` under a fresh random salt; returns the dispense and its salt.

        The reference on chain is :func:`patient_ref` (ClaimsProcessor's commitment) with 32 random
        bytes as salt, so the chain shows no link between the patient and the product. The caller
        keeps the returned salt and hands it to the patient; a drug claim needs it, with the nonce
        and timestamp (what a drug claim's ``DispenseRef`` repeats, with the batch's lot).

        With ``serial`` (and its Merkle ``proof`` against the batch's serials root), one pack is
        dispensed by ``dispenseSerial``: ``quantity`` must be 1, and the chain refuses a serial
        dispensed before (``DrugSerialAlreadyDispensed``: the pack in hand is a copy).

        Raises:
            ContractRevert: the contract refused the dispense.
            ChainError: the dispense happened but other transactions of the dispenser on the same
                batch in the same block hide its nonce (the dispense id in the message still holds).
        """
        if serial is not None and quantity != 1:
            raise ValueError("a dispense by serial is of one pack: quantity must be 1")
        salt = new_patient_salt()
        patient = Web3.to_checksum_address(patient)
        commitment = patient_ref(patient, salt)
        who = _address_of(dispenser)
        label = self.label(batch_id)
        before = self.holding(batch_id, who)[0]
        if serial is None:
            receipt = self._send(dispenser, "dispense", batch_id, quantity, commitment)
        else:
            receipt = self._send(dispenser, "dispenseSerial", batch_id, serial, proof or [], commitment)
        dispense_id = DispenseId(bytes(self._emitted_field(receipt, "Dispensed", "dispenseId")))
        block = int(receipt["blockNumber"])
        timestamp = self.chain.block_times([block])[block]
        after = self._call("holding", batch_id, who, block=block)[0]
        for nonce in dict.fromkeys((before, int(after) + quantity)):
            if dispense_id_of(batch_id, who, commitment, quantity, nonce, timestamp) == dispense_id:
                return Dispense(
                    dispense_id=dispense_id,
                    batch_id=BatchId(bytes(batch_id)),
                    gtin=label.gtin,
                    lot=label.lot,
                    dispenser=who,
                    patient=patient,
                    patient_ref=commitment,
                    patient_salt=salt,
                    quantity=quantity,
                    nonce=nonce,
                    timestamp=timestamp,
                    serial=serial,
                )
        raise ChainError(
            f"dispensed (id 0x{dispense_id.hex()}, salt 0x{salt.hex()}) but its nonce is unknown: other "
            f"transactions of {who} changed its holding in block {block}"
        )

    def serial_dispense(self, batch_id: bytes, serial: str) -> bytes | None:
        """The id of the dispense that took the pack with ``serial`` (by ``dispenseSerial``), if any."""
        found = bytes(self._call("serialDispense", batch_id, serial_leaf(serial)))
        return found if any(found) else None

    def quarantine(self, authority: Sender, batch_id: bytes, reason: int) -> None:
        """Puts a batch on hold; a regulator may also take over its manufacturer's quarantine."""
        self._send(authority, "quarantine", batch_id, reason)

    def release(self, authority: Sender, batch_id: bytes) -> None:
        """Lifts a quarantine (a regulator's only by a regulator)."""
        self._send(authority, "release", batch_id)

    def recall(self, authority: Sender, batch_id: bytes, reason: int) -> dict[str, int]:
        """Recalls a batch; returns the units each holder had at the recall (available + in transit).

        The contract wants every holder listed, so a receive landing between listing the holders
        and the recall would make the recall revert: a distributor could block a recall by timing
        its receive. So the batch is put on hold first: under quarantine nobody can receive, ship
        or dispense, and the set of holders can only shrink (cancel and destroy keep the list
        complete). A hold already in place is kept when it suffices: a regulator's quarantine, or
        the manufacturer's own when the manufacturer recalls; a regulator takes a manufacturer's
        quarantine over, so that the manufacturer cannot lift it in between. Should the hold be
        lifted anyway (by a regulator) and the list come out incomplete, it tries again.

        Raises:
            ContractRevert: the caller may not recall (``DrugNotAuthority``), the batch is unknown
                or already recalled or destroyed, or the list stayed incomplete.
        """
        caller = _address_of(authority)
        for attempt in range(1, RECALL_ATTEMPTS + 1):
            self._hold(authority, caller, batch_id, reason)
            holders = sorted(self.holders(batch_id, include_in_transit=True), key=lambda a: int(a, 16))
            try:
                receipt = self._send(authority, "recall", batch_id, reason, holders)
            except ContractRevert as exc:
                if exc.error == "DrugIncompleteHolderList" and attempt < RECALL_ATTEMPTS:
                    continue
                raise
            listed = self._emitted(receipt, "HolderAtRecall")
            units = {
                str(e["args"]["holder"]): int(e["args"]["available"] + e["args"]["inTransit"]) for e in listed
            }
            return {holder: n for holder, n in units.items() if n}
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _hold(self, authority: Sender, caller: str, batch_id: bytes, reason: int) -> None:
        """Makes sure the batch is quarantined by a hold ``caller`` can rely on (see :meth:`recall`)."""
        for _ in range(RECALL_ATTEMPTS):
            info = self.batch(batch_id)
            if info.status == BatchStatus.QUARANTINED:
                if info.quarantined_by_regulator or caller == info.manufacturer:
                    return
            elif info.status != BatchStatus.ACTIVE:
                return  # unknown, recalled or destroyed: the recall reports it
            try:
                self.quarantine(authority, batch_id, reason)
                return
            except ContractRevert as exc:
                if exc.error != "DrugInvalidTransition":  # someone else changed the status meanwhile
                    raise

    def destroy(self, holder: Sender, batch_id: bytes, quantity: int) -> None:
        self._send(holder, "destroy", batch_id, quantity)

    # ─── Reads ──────────────────────────────────────────────────────────────────────────────

    def pending_shipments(
        self, batch_id: bytes, to: str | None = None, sender: str | None = None
    ) -> list[ShipmentRef]:
        """Shipments of a batch still waiting to be received, optionally only those addressed to
        ``to`` and only those ``sender`` sent."""
        filters: dict[str, Any] = {"batchId": batch_id}
        if sender is not None:
            filters["from"] = Web3.to_checksum_address(sender)
        pending = []
        for log in self._events("Shipped", **filters):
            ref = ShipmentRef.from_event(log["args"]["ref"])
            if to is not None and ref.to != Web3.to_checksum_address(to):
                continue
            if self.shipment_status(ShipmentId(bytes(log["args"]["shipmentId"]))) == ShipmentStatus.PENDING:
                pending.append(ref)
        return pending

    def shipment_status(self, shipment_id: bytes) -> ShipmentStatus:
        return ShipmentStatus(int(self._call("shipmentStatus", shipment_id)))

    def status(self, batch_id: bytes) -> BatchStatus:
        return self.batch(batch_id).status

    def batch(self, batch_id: bytes) -> BatchInfo:
        """A batch's stored state (all zero, status NONE, if unknown)."""
        (maker, made, expiry, status, by_regulator, quantity, dispensed, destroyed, cert, root) = self._call(
            "batch", batch_id
        )
        return BatchInfo(
            Web3.to_checksum_address(maker),
            int(made),
            int(expiry),
            BatchStatus(status),
            bool(by_regulator),
            int(quantity),
            int(dispensed),
            int(destroyed),
            bytes(cert),
            bytes(root),
        )

    def holding(self, batch_id: bytes, holder: str) -> tuple[int, int]:
        available, in_transit = self._call("holding", batch_id, Web3.to_checksum_address(holder))
        return int(available), int(in_transit)

    def holders(self, batch_id: bytes, include_in_transit: bool = False) -> dict[str, int]:
        """Current holders and their units (the addresses come from the history, amounts from state)."""
        parties: set[str] = set()
        for e in self.history(batch_id):
            for key in ("manufacturer", "from", "to", "dispenser", "holder"):
                if key in e.args:
                    parties.add(e.args[key])
        result = {}
        for party in parties:
            available, in_transit = self.holding(batch_id, party)
            units = available + (in_transit if include_in_transit else 0)
            if units:
                result[party] = units
        return result

    def verify_pack(self, element_string: str, proof: list[bytes]) -> PackVerdict:
        """Reads a pack's GS1 element string and asks the chain whether it is genuine."""
        pack = Pack.parse(element_string)
        genuine, status, expiry = self._call("verifyPack", pack.gtin, lot_bytes(pack.lot), pack.serial, proof)
        batch_id = self.batch_id(pack.gtin, pack.lot)
        holders = self.holders(batch_id) if status else {}
        dispensed_by = self.serial_dispense(batch_id, pack.serial) if status else None
        return PackVerdict(bool(genuine), BatchStatus(status), int(expiry), holders, dispensed_by)

    def history(self, batch_id: bytes) -> list[BatchEvent]:
        """Every event of a batch in chain order: two eth_getLogs calls, decoded locally.

        Block times come with the logs where the node provides them (Anvil's ``blockTimestamp``),
        otherwise from batched ``eth_getBlockByNumber`` requests.
        """
        topic = "0x" + batch_id.hex()
        raw: list[Any] = []
        for topics in ([None, topic], [None, None, topic]):
            request = {
                "address": self.contract.address,
                "fromBlock": hex(self.from_block),
                "toBlock": "latest",
                "topics": topics,
            }
            raw += self.chain.w3.provider.make_request("eth_getLogs", [request]).get("result") or []  # type: ignore[arg-type]
        raw.sort(key=lambda entry: (int(entry["blockNumber"], 16), int(entry["logIndex"], 16)))
        missing = sorted({int(e["blockNumber"], 16) for e in raw if "blockTimestamp" not in e})
        times = self.chain.block_times(missing)
        decoders = self._decoders()
        shipments: dict[bytes, dict[str, Any]] = {}
        events = []
        for log in raw:
            found = decoders.get(bytes.fromhex(log["topics"][0][2:]))
            if found is None:
                continue
            kind, decode = found
            args = decode(log)
            block = int(log["blockNumber"], 16)
            if "ref" in args:
                args.update({k: v for k, v in args["ref"].items() if k in ("from", "to", "quantity")})
            if kind in ("received", "cancelled"):  # name both parties, as the shipment did
                args = {**shipments.get(args["shipmentId"], {}), **args}
            elif kind == "shipped":
                shipments[args["shipmentId"]] = {"from": args["from"], "to": args["to"]}
            timestamp = int(log["blockTimestamp"], 16) if "blockTimestamp" in log else times[block]
            events.append(
                BatchEvent(kind, block, int(log["logIndex"], 16), log["transactionHash"], timestamp, args)
            )
        # A dispense by serial logs Dispensed then SerialDispensed: one step, the pack's leaf on it.
        leaves = {e.args["dispenseId"]: e.args["serialLeaf"] for e in events if e.kind == "serial_dispensed"}
        return [
            BatchEvent(e.kind, e.block, e.log_index, e.tx, e.timestamp, {**e.args, "serialLeaf": leaves[key]})
            if e.kind == "dispensed" and (key := e.args["dispenseId"]) in leaves
            else e
            for e in events
            if e.kind != "serial_dispensed"
        ]

    def _decoders(self) -> dict[bytes, tuple[str, Any]]:
        """Per event topic: its kind and a decoder of raw JSON-RPC logs (eth_abi, no web3 formatting)."""
        if self._decoder_cache is None:
            kinds = {
                "BatchCommissioned": "commissioned",
                "Shipped": "shipped",
                "Received": "received",
                "ShipmentCancelled": "cancelled",
                "Dispensed": "dispensed",
                "BatchStatusChanged": "status",
                "HolderAtRecall": "holder_at_recall",
                "UnitsDestroyed": "destroyed",
                "SerialDispensed": "serial_dispensed",
            }
            self._decoder_cache = {}
            events: list[dict[str, Any]] = [dict(e) for e in self.contract.abi if e.get("type") == "event"]
            for abi in events:
                name = str(abi["name"])
                if name in kinds:
                    topic = bytes(Web3.keccak(text=_signature(abi)))
                    self._decoder_cache[topic] = (kinds[name], log_decoder(abi))
        return self._decoder_cache

    def trace_forward(self, batch_id: bytes, holder: str) -> list[BatchEvent]:
        """Where units went from ``holder`` onwards (shipments out, recursively, and dispenses)."""
        history = self.history(batch_id)
        frontier, seen, out = {Web3.to_checksum_address(holder)}, set(), []
        while frontier:
            party = frontier.pop()
            seen.add(party)
            for e in history:
                if e.kind == "received" and any(
                    s.kind == "shipped"
                    and s.args["shipmentId"] == e.args["shipmentId"]
                    and s.args["from"] == party
                    for s in history
                ):
                    out.append(e)
                    if e.args["to"] not in seen:
                        frontier.add(e.args["to"])
                elif e.kind == "dispensed" and e.args["dispenser"] == party:
                    out.append(e)
        unique = {(e.block, e.log_index): e for e in out}
        return [unique[k] for k in sorted(unique)]

    def trace_backward(self, batch_id: bytes, holder: str) -> list[BatchEvent]:
        """Where ``holder``'s units came from, back to commissioning."""
        history = self.history(batch_id)
        shipped = {e.args["shipmentId"]: e for e in history if e.kind == "shipped"}
        path, party = [], Web3.to_checksum_address(holder)
        for _ in range(len(history)):
            receipts = [e for e in history if e.kind == "received" and e.args["to"] == party]
            if not receipts:
                break
            ship = shipped[receipts[0].args["shipmentId"]]
            path.append(ship)
            party = ship.args["from"]
        path += [e for e in history if e.kind == "commissioned"]
        return sorted(path, key=lambda e: (e.block, e.log_index))

    def pack_history(self, batch_id: bytes, serial: str) -> list[BatchEvent]:
        """What the chain says about one pack of a batch, in chain order.

        The chain records custody per batch, not per pack; a pack is named only when it is dispensed
        by serial (``dispenseSerial``). So a pack's history is: the batch's commissioning; the batch's
        status changes (a quarantine or recall holds every pack); its dispense by serial, if any, and
        then the custody path that brought the dispenser its units (shipments received along the way
        back to the manufacturer: the pack travelled that way). The caller checks that ``serial`` is
        one of the batch's (its serial list, or a Merkle proof).
        """
        history = self.history(batch_id)
        leaf = serial_leaf(serial)
        dispensed = [e for e in history if e.kind == "dispensed" and e.args.get("serialLeaf") == leaf]
        picked = {(e.block, e.log_index): e for e in history if e.kind in ("commissioned", "status")}
        for e in dispensed:
            picked[(e.block, e.log_index)] = e
            path = self.trace_backward(batch_id, e.args["dispenser"])
            shipments = {s.args["shipmentId"] for s in path if s.kind == "shipped"}
            for step in history:
                on_path = step.kind in ("shipped", "received") and step.args["shipmentId"] in shipments
                if on_path and step.timestamp <= e.timestamp:
                    picked[(step.block, step.log_index)] = step
        return [picked[k] for k in sorted(picked)]


def _signature(entry: dict[str, Any]) -> str:
    return f"{entry['name']}({','.join(abi_type(i) for i in entry['inputs'])})"


def _address_of(sender: Sender) -> str:
    return Web3.to_checksum_address(sender if isinstance(sender, str) else sender.address)


def _hex32(value: Any, field: str) -> bytes:
    text = str(value)
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"{field} {text!r} is not 32 bytes of hex")
    return raw


def _address(value: Any, field: str) -> str:
    if not Web3.is_address(str(value)):
        raise ValueError(f"{field} {value!r} is not an Ethereum address")
    return str(Web3.to_checksum_address(str(value)))


def _count(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{field} {value!r} is not a non-negative integer")
    return value

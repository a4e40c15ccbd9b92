"""``medchain drug``: products, batches, two-step custody, dispensing, pack checks, recall, trace.

Every command naming a batch takes its GTIN and lot (what a pack prints) and refuses a batch that
was never commissioned on this deployment with one line, before sending anything.

Two kinds of local files live under $MEDCHAIN_HOME:

``serials/0x<batch id>.json`` (written by ``drug commission`` when the batch has serial numbers,
read by ``drug verify``)
    The chain keeps only the Merkle root of a batch's serials; proving one pack genuine needs the
    whole list, so the manufacturer keeps it: ``{"format": "medchain-serials-v1", "batch_id":
    "0x…", "gtin": "09506000134352", "lot": "A1", "serials_root": "0x…", "serials": ["…", …]}``.
    The file is written (as ``….pending.json``) before the commissioning transaction and renamed
    once it succeeds, so generated serials are never lost: a refused commission removes it, one
    whose fate is unknown (not mined in time, node gone) leaves it and says where.

``dispenses/0x<dispense id>.json`` (written by ``drug dispense``, readable by its owner only)
    A :class:`medchain.drug.Dispense` as :meth:`~medchain.drug.Dispense.to_json` writes it: the
    dispense with its patient salt, GTIN, lot and patient, everything a drug claim needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from medchain.cli._context import Context
from medchain.cli._options import ACCOUNT, GTIN, REASON, Hex32Param, read_json, write_atomically
from medchain.cli._render import Column

if TYPE_CHECKING:  # the SDK is imported on use: `medchain drug --help` stays fast
    from medchain.drug import BatchEvent, DrugClient, ShipmentRef
    from medchain.types import BatchId

T = TypeVar("T")

SERIALS_FORMAT = "medchain-serials-v1"
"""The ``format`` tag of a saved serial list."""
MAX_UNITS = 2**64 - 1
"""Quantities are uint64 on chain."""


# ─── Parameters ─────────────────────────────────────────────────────────────────────────────


class LotParam(click.ParamType[Any]):
    """A lot number (GS1 AI 10): 1 to 20 ASCII characters."""

    name = "lot"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from medchain.drug import GS1Error, lot_bytes

        text = str(value).strip()
        try:
            lot_bytes(text)
        except GS1Error as exc:
            self.fail(str(exc), param, ctx)
        return text


class UnitsParam(click.ParamType[Any]):
    """A number of units: a whole number from 1 (uint64 on chain)."""

    name = "n"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_UNITS:
            self.fail(f"{text!r} is not a number of units (a whole number from 1)", param, ctx)
        return int(text)


class DayParam(click.ParamType[Any]):
    """A calendar day written YYYY-MM-DD, as the Unix time of its start (00:00 UTC)."""

    name = "yyyy-mm-dd"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        try:
            day = date.fromisoformat(text)
        except ValueError:
            self.fail(f"{text!r} is not a date written YYYY-MM-DD", param, ctx)
        return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


LOT = LotParam()
DAY = DayParam()
UNITS = UnitsParam()
SHIPMENT_ID = Hex32Param("a shipment id")


# ─── Group ──────────────────────────────────────────────────────────────────────────────────


@click.group()
def drug() -> None:
    """Drug provenance: products, batches, custody, dispensing, pack checks, recall and trace.

    A batch is named by its GTIN and lot, as printed on its packs.

    \b
    A batch's life, one command per role:
      medchain --from manufacturer drug register-product 09506000134352
      medchain --from manufacturer drug commission 09506000134352 A1 --expiry 2027-06-30 \\
          --quantity 100 --serial-count 100 --certificate coa.pdf
      medchain --from manufacturer drug ship 09506000134352 A1 distributor 40
      medchain --from distributor drug receive 09506000134352 A1
      medchain --from pharmacy drug dispense 09506000134352 A1 1 --patient alice
      medchain drug verify '(01)09506000134352(17)270630(10)A1(21)K7M2Q9XH4TRP'
      medchain drug trace 09506000134352 A1
    """


# ─── Products and batches ───────────────────────────────────────────────────────────────────


@drug.command("register-product", short_help="Register a product (GTIN) as the sender's.")
@click.argument("gtin", type=GTIN)
@click.pass_obj
def drug_register_product(obj: Context, gtin: int) -> None:
    """Register product GTIN (8 to 14 digits, check digit verified) as the sender's.

    The sender must be an active manufacturer; only it may then commission batches of GTIN.

    \b
    Example:
      medchain --from manufacturer drug register-product 09506000134352
    """
    obj.suite.drugs.register_product(obj.sender(), _digits(gtin))
    obj.show_one(f"Product {gtin:014d}", {"gtin": f"{gtin:014d}", "manufacturer": obj.sender_address()})


@drug.command("commission", short_help="Commission a batch; prints its id.")
@click.argument("gtin", type=GTIN)
@click.argument("lot", type=LOT)
@click.option(
    "--expiry", type=DAY, required=True, help="Expiry date (the batch expires at 00:00 UTC that day)."
)
@click.option("--quantity", type=UNITS, required=True, help="Units (packs) in the batch.")
@click.option(
    "--serials",
    "serials_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="File of the packs' serial numbers (GS1 AI 21), one per line; as many as --quantity.",
)
@click.option(
    "--serial-count",
    type=UNITS,
    default=None,
    help="Generate this many random serial numbers instead (must equal --quantity).",
)
@click.option(
    "--certificate",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The certificate of analysis; only its SHA-256 digest goes on chain.",
)
@click.option(
    "--manufactured",
    type=DAY,
    default=None,
    help="Manufacture date [default: now, by the chain's clock].",
)
@click.pass_obj
def drug_commission(
    obj: Context,
    gtin: int,
    lot: str,
    expiry: int,
    quantity: int,
    serials_file: Path | None,
    serial_count: int | None,
    certificate: Path,
    manufactured: int | None,
) -> None:
    """Commission batch LOT of product GTIN: the sender (its manufacturer) holds every unit.

    With --serials or --serial-count, the Merkle root of the packs' serial numbers goes on chain
    and the list is kept in $MEDCHAIN_HOME/serials/<batch id>.json, from which `drug verify` proves
    a pack genuine. Prints the batch id.

    \b
    Example:
      medchain --from manufacturer drug commission 09506000134352 A1 \\
          --expiry 2027-06-30 --quantity 100 --serial-count 100 --certificate coa.pdf
    """
    from medchain.drug import SerialTree, batch_id_of, generate_serials
    from medchain.errors import ContractRevert, MedChainError
    from medchain.types import BatchStatus

    if serials_file is not None and serial_count is not None:
        raise click.UsageError("give --serials FILE or --serial-count N, not both")
    serials: list[str] | None = None
    if serials_file is not None:
        serials = read_serial_lines(serials_file)
    elif serial_count is not None:
        serials = generate_serials(serial_count)
    if serials is not None and len(serials) != quantity:
        raise click.UsageError(f"{len(serials)} serial numbers for --quantity {quantity}: give one per unit")
    digest = _sha256(certificate)
    client = obj.suite.drugs
    made = manufactured if manufactured is not None else client.now()
    if expiry <= made:
        raise click.UsageError(f"--expiry {_when(expiry)} must be after the manufacture time {_when(made)}")
    batch_id = batch_id_of(_digits(gtin), lot)
    if client.batch(batch_id).status != BatchStatus.NONE:
        raise MedChainError(
            f"batch {gtin:014d} / {lot} already exists on this deployment (0x{batch_id.hex()})"
        )
    sender = obj.sender()
    saved: Path | None = None
    root = b"\0" * 32
    if serials:
        root = SerialTree(serials).root
        pending = serial_list_path(obj.home, batch_id, pending=True)
        SerialList(batch_id, gtin, lot, root, serials).save(pending)
        try:
            client.commission(sender, _digits(gtin), lot, made, expiry, quantity, digest, serials)
        except ContractRevert:
            with contextlib.suppress(OSError):
                pending.unlink(missing_ok=True)  # refused: no batch holds these serials
            raise
        except MedChainError as exc:  # not mined in time, node gone: the batch may yet exist
            raise MedChainError(f"{exc} (the serial list is kept at {pending})") from None
        saved = serial_list_path(obj.home, batch_id)
        try:
            pending.replace(saved)
        except OSError as exc:
            raise MedChainError(
                f"batch 0x{batch_id.hex()} commissioned, but its serial list stayed at {pending} "
                f"({exc.strerror or exc}): move it to {saved}"
            ) from None
    else:
        client.commission(sender, _digits(gtin), lot, made, expiry, quantity, digest)
    obj.show_one(
        f"Commissioned {gtin:014d} / {lot}",
        {
            "batch_id": batch_id,
            "gtin": f"{gtin:014d}",
            "lot": lot,
            "quantity": quantity,
            "manufactured": _when(made),
            "expiry": _when(expiry),
            "certificate_digest": digest,
            "serials": len(serials or ()),
            "serials_root": root,
            "serial_list": saved,
        },
    )


# ─── Custody ────────────────────────────────────────────────────────────────────────────────


@drug.command("ship", short_help="Ship units to another holder.")
@click.argument("gtin", type=GTIN)
@click.argument("lot", type=LOT)
@click.argument("to", type=ACCOUNT)
@click.argument("quantity", type=UNITS)
@click.pass_obj
def drug_ship(obj: Context, gtin: int, lot: str, to: str, quantity: int) -> None:
    """Ship QUANTITY units of batch GTIN + LOT from the sender to TO (an address or account name).

    The units stay pending until TO runs `drug receive` (or the sender `drug cancel`).

    \b
    Example:
      medchain --from manufacturer drug ship 09506000134352 A1 distributor 40
    """
    client = obj.suite.drugs
    ref = client.ship(obj.sender(), _batch(client, gtin, lot), to, quantity)
    obj.show_one(f"Shipped {gtin:014d} / {lot}", _shipment_fields(ref))


@drug.command("receive", short_help="Receive the shipments addressed to the sender.")
@click.argument("gtin", type=GTIN)
@click.argument("lot", type=LOT)
@click.pass_obj
def drug_receive(obj: Context, gtin: int, lot: str) -> None:
    """Receive every pending shipment of batch GTIN + LOT addressed to the sender.

    \b
    Example:
      medchain --from distributor drug receive 09506000134352 A1
    """
    from medchain.errors import MedChainError

    client = obj.suite.drugs
    batch_id = _batch(client, gtin, lot)
    me = obj.sender_address()
    refs = client.pending_shipments(batch_id, to=me)
    if not refs:
        raise MedChainError(f"no pending shipment of {gtin:014d} / {lot} is addressed to {me}")
    sender = obj.sender()
    for ref in _progress(refs, "receiving"):
        client.receive(sender, ref)
    obj.show_one(
        f"Received {gtin:014d} / {lot}", {"received": len(refs), "units": sum(r.quantity for r in refs)}
    )


@drug.command("cancel", short_help="Cancel the sender's pending shipments.")
@click.argument("gtin", type=GTIN)
@click.argument("lot", type=LOT)
@click.option(
    "--shipment",
    "shipment_id",
    type=SHIPMENT_ID,
    default=None,
    help="Cancel only this shipment (its id, as `drug ship` printed it).",
)
@click.option("--to", type=ACCOUNT, default=None, help="Cancel only the shipments addressed to this account.")
@click.pass_obj
def drug_cancel(obj: Context, gtin: int, lot: str, shipment_id: bytes | None, to: str | None) -> None:
    """Cancel the sender's pending shipments of batch GTIN + LOT: the units come back to it.

    Without options every pending shipment the sender sent is cancelled.

    \b
    Example:
      medchain --from manufacturer drug cancel 09506000134352 A1 --to distributor
    """
    from medchain.errors import MedChainError

    client = obj.suite.drugs
    batch_id = _batch(client, gtin, lot)
    me = obj.sender_address()
    refs = client.pending_shipments(batch_id, to=to, sender=me)
    if shipment_id is not None:
        refs = [r for r in refs if r.id == shipment_id]
        if not refs:
            status = client.shipment_status(shipment_id).name.lower()
            raise MedChainError(
                f"shipment 0x{shipment_id.hex()} is not a pending shipment of {gtin:014d} / {lot} sent by "
                f"{me} (its status: {status})"
            )
    if not refs:
        raise MedChainError(f"{me} has no pending shipment of {gtin:014d} / {lot} to cancel")
    sender = obj.sender()
    for ref in _progress(refs, "cancelling"):
        client.cancel(sender, ref)
    obj.show_one(
        f"Cancelled shipments of {gtin:014d} / {lot}",
        {"cancelled": len(refs), "units": sum(r.quantity for r in refs)},
    )


@drug.command("dispense", short_help="Dispense units to a patient; saves the salt.")
@click.argument("gtin", type=GTIN)
@click.argument("lot", type=LOT)
@click.argument("quantity", type=UNITS)
@click.option("--patient", type=ACCOUNT, required=True, help="The patient (address or account name).")
@click.option(
    "--serial",
    default=None,
    help="Dispense this one pack by its serial number (GS1 AI 21; QUANTITY must be 1): the chain "
    "records the serial, and refuses a second pack carrying it (a copy).",
)
@click.option(
    "--serials",
    "serials_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The batch's serial list, for the pack's proof [default: $MEDCHAIN_HOME/serials/<batch id>.json].",
)
@click.pass_obj
def drug_dispense(
    obj: Context,
    gtin: int,
    lot: str,
    quantity: int,
    patient: str,
    serial: str | None,
    serials_file: Path | None,
) -> None:
    """Dispense QUANTITY units of batch GTIN + LOT to a patient (sender: a pharmacy or hospital).

    The chain records only a salted commitment to the patient. The random salt is printed and
    saved with the dispense in $MEDCHAIN_HOME/dispenses/<dispense id>.json (readable by you only):
    give the salt to the patient, and keep the file, since a drug claim (`medchain claim submit`)
    needs it. Without the salt nobody can link the patient to the product.

    \b
    With --serial, one pack is dispensed by its serial number, proven against the batch's serial
    list; the chain refuses a serial dispensed before (DrugSerialAlreadyDispensed).

    \b
    Examples:
      medchain --from pharmacy drug dispense 09506000134352 A1 1 --patient alice
      medchain --from pharmacy drug dispense 09506000134352 A1 1 --patient alice --serial K7M2Q9XH4TRP
    """
    from medchain.drug import SerialTree
    from medchain.errors import ConfigurationError

    client = obj.suite.drugs
    batch_id = _batch(client, gtin, lot)
    proof: list[bytes] | None = None
    if serial is not None:
        if quantity != 1:
            raise click.UsageError(f"--serial names one pack: QUANTITY must be 1, not {quantity}")
        _check_serial(serial)
        serials = batch_serials(obj, client, batch_id, serials_file)
        if serials is None:
            raise ConfigurationError(
                f"dispensing by serial needs the serial list of batch {gtin:014d} / {lot} "
                "(give --serials FILE)"
            )
        if serial not in serials:
            raise ConfigurationError(
                f"{serial!r} is not a serial of batch {gtin:014d} / {lot}: the pack may be counterfeit"
            )
        proof = SerialTree(serials).proof(serial)
    given = client.dispense_to_patient(obj.sender(), batch_id, quantity, patient, serial, proof)
    path = dispense_path(obj.home, given.dispense_id)
    try:
        write_private(path, given.to_json())
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"dispensed (id 0x{given.dispense_id.hex()}, patient salt 0x{given.patient_salt.hex()}, nonce "
            f"{given.nonce}, time {given.timestamp}) but could not save the record: {exc}"
        ) from None
    obj.show_one(
        f"Dispensed {gtin:014d} / {lot}",
        {
            "dispense_id": given.dispense_id,
            "batch_id": given.batch_id,
            "gtin": f"{given.gtin:014d}",
            "lot": given.lot,
            "quantity": given.quantity,
            "patient": given.patient,
            "patient_salt": given.patient_salt,
            "nonce": given.nonce,
            "timestamp": given.timestamp,
            "serial": given.serial,
            "saved": path,
        },
    )


@drug.command("destroy", short_help="Destroy units the sender holds.")
@click.argument("gtin", type=GTIN)
@click.argument("lot", type=LOT)
@click.argument("quantity", type=UNITS)
@click.pass_obj
def drug_destroy(obj: Context, gtin: int, lot: str, quantity: int) -> None:
    """Destroy QUANTITY units of batch GTIN + LOT that the sender holds (expired, recalled, damaged).

    \b
    Example:
      medchain --from distributor drug destroy 09506000134352 A1 5
    """
    client = obj.suite.drugs
    batch_id = _batch(client, gtin, lot)
    client.destroy(obj.sender(), batch_id, quantity)
    _show_batch(obj, client, batch_id, f"Destroyed {quantity} of {gtin:014d} / {lot}")


# ─── Authority: quarantine, release, recall ─────────────────────────────────────────────────


@drug.command("quarantine", short_help="Put a batch on hold.")
@click.argument("gtin", type=GTIN)
@click.argument("lot", type=LOT)
@click.option("--reason", type=REASON, required=True, help="Reason code (0-65535).")
@click.pass_obj
def drug_quarantine(obj: Context, gtin: int, lot: str, reason: int) -> None:
    """Put batch GTIN + LOT on hold: no ship, receive or dispense until released.

    The sender is the batch's manufacturer or a regulator; a regulator's quarantine (or one it
    takes over from the manufacturer) is lifted only by a regulator.

    \b
    Example:
      medchain --from regulator drug quarantine 09506000134352 A1 --reason 7
    """
    client = obj.suite.drugs
    batch_id = _batch(client, gtin, lot)
    client.quarantine(obj.sender(), batch_id, reason)
    _show_batch(obj, client, batch_id, f"Quarantined {gtin:014d} / {lot}")


@drug.command("release", short_help="Lift a batch's quarantine.")
@click.argument("gtin", type=GTIN)
@click.argument("lot", type=LOT)
@click.pass_obj
def drug_release(obj: Context, gtin: int, lot: str) -> None:
    """Lift the quarantine of batch GTIN + LOT (its manufacturer, unless a regulator imposed it).

    \b
    Example:
      medchain --from regulator drug release 09506000134352 A1
    """
    client = obj.suite.drugs
    batch_id = _batch(client, gtin, lot)
    client.release(obj.sender(), batch_id)
    _show_batch(obj, client, batch_id, f"Released {gtin:014d} / {lot}")


@drug.command("recall", short_help="Recall a batch; prints who held what.")
@click.argument("gtin", type=GTIN)
@click.argument("lot", type=LOT)
@click.option("--reason", type=REASON, required=True, help="Reason code (0-65535).")
@click.pass_obj
def drug_recall(obj: Context, gtin: int, lot: str, reason: int) -> None:
    """Recall batch GTIN + LOT (its manufacturer or a regulator); prints who held how many units.

    The batch is quarantined first, so that no receive can slip in while the holders are listed.

    \b
    Example:
      medchain --from manufacturer drug recall 09506000134352 A1 --reason 5
    """
    client = obj.suite.drugs
    batch_id = _batch(client, gtin, lot)
    holders = client.recall(obj.sender(), batch_id, reason)
    serials = batch_serials(obj, client, batch_id, None)
    if serials is not None:
        from medchain.drug import serial_leaf

        leaves = {e.args["serialLeaf"] for e in client.history(batch_id) if "serialLeaf" in e.args}
        gone = sum(serial_leaf(s) in leaves for s in serials)
        obj.note(
            f"the {len(serials)} packs of lot {lot} are under this recall ({gone} already dispensed by "
            "serial); "
            f"`medchain drug epcis {gtin:014d} {lot}` lists their serials"
        )
    obj.show_one(f"Recalled {gtin:014d} / {lot}: units held at the recall", holders)


# ─── Checks and history ─────────────────────────────────────────────────────────────────────


@drug.command("verify", short_help="Check a scanned pack: genuine, status, expiry.")
@click.argument("scan")
@click.option(
    "--serials",
    "serials_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The batch's serial list: a file saved by `drug commission`, or one serial per line "
    "[default: $MEDCHAIN_HOME/serials/<batch id>.json].",
)
@click.pass_obj
def drug_verify(obj: Context, scan: str, serials_file: Path | None) -> None:
    """Check a pack: is it genuine, and what are its batch's status, expiry and holders?

    SCAN is the GS1 element string of the pack's DataMatrix as the scanner sends it (FNC1 as the
    GS character, ASCII 29, a leading ]d2 allowed) or as printed, with the AIs in parentheses; it
    must carry the GTIN (01), lot (10) and serial (21). `-` reads it from standard input. The
    proof that the serial belongs to the batch comes from the batch's serial list (see --serials).

    \b
    Examples:
      medchain drug verify '(01)09506000134352(17)270630(10)A1(21)K7M2Q9XH4TRP'
      scanner-read | medchain drug verify -
    """
    from medchain.drug import GS1Error, Pack, SerialTree
    from medchain.errors import ConfigurationError

    text = sys.stdin.readline() if scan == "-" else scan
    try:
        pack = Pack.parse(text)
    except GS1Error as exc:
        raise click.BadParameter(str(exc), param_hint="SCAN") from None
    client = obj.suite.drugs
    batch_id = _batch(client, pack.gtin, pack.lot)
    info = client.batch(batch_id)
    path = serials_file or serial_list_path(obj.home, batch_id)
    serials: list[str] | None = None
    if info.serials_root == b"\0" * 32:
        obj.note(
            f"note: batch 0x{batch_id.hex()} was commissioned without serial numbers, so no pack of it "
            "can be proven genuine"
        )
    elif serials_file is not None or path.is_file():
        serials = load_serials(path)
        if SerialTree(serials).root != info.serials_root:
            raise ConfigurationError(f"{path} is not the serial list of batch {pack.gtin:014d} / {pack.lot}")
    else:
        obj.note(f"note: no serial list for batch 0x{batch_id.hex()} at {path}: genuineness not checked")
    proof = SerialTree(serials).proof(pack.serial) if serials and pack.serial in serials else []
    verdict = client.verify_pack(text, proof)
    genuine: bool | None = verdict.genuine if serials is not None or not any(info.serials_root) else None
    expiry = _when(verdict.expiry)
    if pack.expiry is not None and pack.expiry != expiry[:10]:
        obj.note(f"note: the pack says it expires {pack.expiry}, the chain says {expiry}")
    if verdict.dispensed_by is not None:
        obj.note(
            f"warning: a pack with serial {pack.serial} was already dispensed (dispense "
            f"0x{verdict.dispensed_by.hex()}): the pack in hand may be a copy"
        )
    obj.show_one(
        f"Pack {pack.serial} of {pack.gtin:014d} / {pack.lot}",
        {
            "genuine": "unknown" if genuine is None else genuine,
            "gtin": f"{pack.gtin:014d}",
            "lot": pack.lot,
            "serial": pack.serial,
            "batch_id": batch_id,
            "status": verdict.status,
            "expiry": expiry,
            "expired": verdict.expiry <= client.now(),
            "pack_expiry": pack.expiry,
            "dispensed": verdict.dispensed_by is not None,
            "dispense_id": verdict.dispensed_by,
            "holders": verdict.holders,
        },
    )


def _by(e: BatchEvent) -> Any:
    return (
        e.args.get("from")
        or e.args.get("manufacturer")
        or e.args.get("dispenser")
        or e.args.get("by")
        or e.args.get("holder")
        or ""
    )


EVENT_COLUMNS: list[Column[BatchEvent]] = [
    Column("block", lambda e: e.block),
    Column("time", lambda e: _when(e.timestamp, day_only=False)),
    Column("event", lambda e: e.kind),
    Column("by", _by),
    Column("to", lambda e: e.args.get("to")),
    Column("units", lambda e: e.args.get("quantity", e.args.get("available"))),
    Column("tx", lambda e: e.tx, short=True),
]


SERIAL_OPTION = click.option(
    "--serial",
    default=None,
    help="Only what the chain says about this one pack (GS1 AI 21 serial): the batch's commissioning "
    "and status changes, its dispense by serial and the custody path that led there.",
)
SERIALS_OPTION = click.option(
    "--serials",
    "serials_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The batch's serial list [default: $MEDCHAIN_HOME/serials/<batch id>.json, if there].",
)


@drug.command("trace", short_help="A batch's history, one holder's part, or one pack's.")
@click.argument("gtin", type=GTIN)
@click.argument("lot", type=LOT)
@click.option(
    "--forward", type=ACCOUNT, default=None, metavar="HOLDER", help="Only where HOLDER's units went on to."
)
@click.option(
    "--backward", type=ACCOUNT, default=None, metavar="HOLDER", help="Only where HOLDER's units came from."
)
@SERIAL_OPTION
@SERIALS_OPTION
@click.option("--epcis", is_flag=True, help="Print the history as GS1 EPCIS 2.0 JSON (as `drug epcis`).")
@click.pass_obj
def drug_trace(
    obj: Context,
    gtin: int,
    lot: str,
    forward: str | None,
    backward: str | None,
    serial: str | None,
    serials_file: Path | None,
    epcis: bool,
) -> None:
    """The history of batch GTIN + LOT in chain order, one holder's part of it, or one pack's.

    \b
    Examples:
      medchain drug trace 09506000134352 A1
      medchain drug trace 09506000134352 A1 --forward distributor    where its units went
      medchain drug trace 09506000134352 A1 --backward pharmacy      how they got there
      medchain drug trace 09506000134352 A1 --serial K7M2Q9XH4TRP    one pack
    """
    chosen = [
        name
        for name, given in (("--forward", forward), ("--backward", backward), ("--serial", serial))
        if given
    ]
    if epcis and (forward or backward):
        chosen.append("--epcis")
    if len(chosen) > 1:
        raise click.UsageError(
            f"give at most one of --forward, --backward and --serial (--epcis goes with --serial), "
            f"not {' and '.join(chosen)}"
        )
    client = obj.suite.drugs
    batch_id = _batch(client, gtin, lot)
    if epcis:
        click.echo(
            json.dumps(_epcis(obj, client, batch_id, gtin, lot, serial, serials_file, False), indent=2)
        )
        return
    status = client.status(batch_id).name.lower()
    title = f"Batch {gtin:014d} / {lot}: {status}"
    if forward is not None:
        events = client.trace_forward(batch_id, forward)
        title += f"; onwards from {forward}"
    elif backward is not None:
        events = client.trace_backward(batch_id, backward)
        title += f"; how {backward} got its units"
    elif serial is not None:
        _pack_of(obj, client, batch_id, gtin, lot, serial, serials_file)
        events = client.pack_history(batch_id, serial)
        title = f"Pack {serial} of {gtin:014d} / {lot}: batch {status}"
        if not any(e.kind == "dispensed" for e in events):
            obj.note(
                f"note: pack {serial} was not dispensed by serial; the chain records custody per batch, so "
                "where this pack is now is not known"
            )
    else:
        events = client.history(batch_id)
    obj.show(title, events, EVENT_COLUMNS)


@drug.command("epcis", short_help="Export a batch's (or a pack's) history as GS1 EPCIS 2.0.")
@click.argument("gtin", type=GTIN)
@click.argument("lot", type=LOT)
@SERIAL_OPTION
@SERIALS_OPTION
@click.option(
    "--digital-link",
    is_flag=True,
    help="Name objects, parties and locations by GS1 Digital Link URIs (https://id.gs1.org/...) "
    "instead of EPC URIs (urn:epc:class:lgtin, urn:epc:id:sgtin/sgln/pgln).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the document to this file (whole or not at all) [default: standard output].",
)
@click.pass_obj
def drug_epcis(
    obj: Context,
    gtin: int,
    lot: str,
    serial: str | None,
    serials_file: Path | None,
    digital_link: bool,
    output: Path | None,
) -> None:
    """Export the history of batch GTIN + LOT (or of one pack) as a GS1 EPCIS 2.0 document
    (JSON-LD, CBV 2.0 vocabulary), validated against GS1's schema.

    Parties and locations are named by GLN, from the deployment's directory
    ($MEDCHAIN_HOME/directory/<chain id>.json, kept with `medchain institution directory set`);
    every member the history names needs an entry, and the manufacturer's GS1 Company Prefix
    splits the GTIN for EPC URIs. With the batch's serial list, packs are named by SGTIN.

    \b
    Examples:
      medchain drug epcis 09506000134352 A1 -o A1.epcis.json
      medchain drug epcis 09506000134352 A1 --serial K7M2Q9XH4TRP --digital-link
    """
    client = obj.suite.drugs
    batch_id = _batch(client, gtin, lot)
    document = _epcis(obj, client, batch_id, gtin, lot, serial, serials_file, digital_link)
    text = json.dumps(document, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    write_atomically(output, text)
    obj.note(f"wrote {len(document['epcisBody']['eventList'])} EPCIS events to {output}")


def _epcis(
    obj: Context,
    client: DrugClient,
    batch_id: BatchId,
    gtin: int,
    lot: str,
    serial: str | None,
    serials_file: Path | None,
    digital_link: bool,
) -> dict[str, Any]:
    from medchain.directory import Directory, default_directory_path
    from medchain.epcis import epcis_document

    chain_id = obj.chain.chain_id
    directory = Directory.load(default_directory_path(chain_id), chain_id)
    serials = batch_serials(obj, client, batch_id, serials_file)
    if serial is not None:
        _pack_of(obj, client, batch_id, gtin, lot, serial, serials_file)
    return epcis_document(
        client,
        batch_id,
        _digits(gtin),
        lot,
        directory,
        serials=serials,
        serial=serial,
        identifiers="digital-link" if digital_link else "epc",
    )


def _pack_of(
    obj: Context,
    client: DrugClient,
    batch_id: BatchId,
    gtin: int,
    lot: str,
    serial: str,
    serials_file: Path | None,
) -> None:
    """Refuses a serial GS1 does not allow, or one the batch's serial list (when known) lacks."""
    from medchain.errors import MedChainError

    _check_serial(serial)
    serials = batch_serials(obj, client, batch_id, serials_file)
    if serials is not None and serial not in serials:
        raise MedChainError(
            f"{serial!r} is not a serial of batch {gtin:014d} / {lot}: the pack may be counterfeit"
        )


def _check_serial(serial: str) -> None:
    from medchain.drug import GS1Error
    from medchain.gs1 import check_ai82

    try:
        check_ai82(serial, "serial")
    except GS1Error as exc:
        raise click.BadParameter(str(exc), param_hint="--serial") from None


def batch_serials(obj: Context, client: DrugClient, batch_id: bytes, given: Path | None) -> list[str] | None:
    """The batch's serial list: ``given``, else the one `drug commission` kept, else None. Checked
    against the batch's serials root."""
    from medchain.drug import SerialTree
    from medchain.errors import ConfigurationError

    path = given or serial_list_path(obj.home, batch_id)
    if given is None and not path.is_file():
        return None
    serials = load_serials(path)
    if SerialTree(serials).root != client.batch(batch_id).serials_root:
        raise ConfigurationError(f"{path} is not the serial list of batch 0x{batch_id.hex()}")
    return serials


# ─── Local files ────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class SerialList:
    """A batch's serial numbers as ``drug commission`` keeps them (see the module docstring)."""

    batch_id: bytes
    gtin: int
    lot: str
    serials_root: bytes
    serials: list[str]

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "format": SERIALS_FORMAT,
                    "batch_id": "0x" + self.batch_id.hex(),
                    "gtin": f"{self.gtin:014d}",
                    "lot": self.lot,
                    "serials_root": "0x" + self.serials_root.hex(),
                    "serials": self.serials,
                },
                indent=1,
            )
            + "\n"
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, self.to_json())


def serial_list_path(home: Path, batch_id: bytes, pending: bool = False) -> Path:
    """Where ``drug commission`` keeps a batch's serial list."""
    return home / "serials" / f"0x{batch_id.hex()}{'.pending' if pending else ''}.json"


def dispense_path(home: Path, dispense_id: bytes) -> Path:
    """Where ``drug dispense`` keeps a dispense record (a :class:`medchain.drug.Dispense`)."""
    return home / "dispenses" / f"0x{dispense_id.hex()}.json"


def read_serial_lines(path: Path) -> list[str]:
    """Serial numbers from a text file, one per line (blank lines skipped), checked for GS1 AI 21."""
    from medchain.errors import ConfigurationError

    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read serial numbers from {path}: {exc}") from None
    return check_serials([line.strip() for line in lines if line.strip()], str(path))


def load_serials(path: Path) -> list[str]:
    """A serial list saved by ``drug commission``, or a text file of serial numbers."""
    from medchain.errors import ConfigurationError

    if path.suffix != ".json":
        return read_serial_lines(path)
    data = read_json(path, "serial list")
    if not isinstance(data, dict) or data.get("format") != SERIALS_FORMAT:
        raise ConfigurationError(f"{path} is not a serial list saved by `medchain drug commission`")
    serials = data.get("serials")
    if not isinstance(serials, list) or not all(isinstance(s, str) for s in serials):
        raise ConfigurationError(f"{path}: 'serials' is not a list of serial numbers")
    return check_serials(serials, str(path))


def check_serials(serials: list[str], source: str) -> list[str]:
    """The serials, unless one is not a GS1 serial (1-20 characters of GS1 set 82) or repeats."""
    import re

    from medchain.errors import ConfigurationError

    allowed = re.compile(r"^[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}$")
    if not serials:
        raise ConfigurationError(f"{source} lists no serial number")
    seen: set[str] = set()
    for number, serial in enumerate(serials, 1):
        if not allowed.match(serial):
            raise ConfigurationError(
                f"{source}: serial {number} {serial!r} is not a GS1 serial (1 to 20 letters, digits or "
                "GS1 punctuation, no spaces)"
            )
        if serial in seen:
            raise ConfigurationError(f"{source}: serial {serial!r} appears twice")
        seen.add(serial)
    return serials


def write_private(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` whole or not at all, readable and writable by the owner only."""
    from medchain.errors import ConfigurationError

    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write {path}: {exc.strerror or exc}") from None


# ─── Helpers ────────────────────────────────────────────────────────────────────────────────


def _batch(client: DrugClient, gtin: int, lot: str) -> BatchId:
    """The id of a batch commissioned on this deployment; one clear line if there is none."""
    return client.existing_batch(_digits(gtin), lot)


def _digits(gtin: int) -> str:
    """A GTIN as the SDK takes it: its 14 digits. (``parse_gtin`` reads an int through ``str``, which
    drops the leading zeros a GTIN-14 of fewer than 12 significant digits needs.)"""
    return f"{gtin:014d}"


def _show_batch(obj: Context, client: DrugClient, batch_id: bytes, title: str) -> None:
    info = client.batch(batch_id)
    available, in_transit = client.holding(batch_id, obj.sender_address())
    obj.show_one(
        title,
        {
            "batch_id": batch_id,
            "status": info.status,
            "quarantined_by_regulator": info.quarantined_by_regulator,
            "quantity": info.quantity,
            "dispensed": info.dispensed,
            "destroyed": info.destroyed,
            "expiry": _when(info.expiry),
            "you_hold": available,
            "you_have_in_transit": in_transit,
        },
    )


def _shipment_fields(ref: ShipmentRef) -> dict[str, Any]:
    return {
        "shipment_id": ref.id,
        "from": ref.sender,
        "to": ref.to,
        "quantity": ref.quantity,
        "nonce": ref.nonce,
        "shipped_at": _when(ref.shipped_at, day_only=False),
    }


def _sha256(path: Path) -> bytes:
    from medchain.errors import ConfigurationError

    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.digest()


def _when(timestamp: int, day_only: bool = True) -> str:
    """A chain time in UTC: the day alone when it is midnight (dates given as YYYY-MM-DD)."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    if day_only and moment.hour == moment.minute == moment.second == 0:
        return moment.date().isoformat()
    return moment.isoformat().replace("+00:00", "Z")


def _progress(items: Sequence[T], what: str) -> Iterator[T]:
    """Iterates ``items`` with a progress bar on stderr when there are several and it is a terminal."""
    if len(items) < 2 or not sys.stderr.isatty():
        yield from items
        return
    from rich.console import Console
    from rich.progress import track

    yield from track(items, description=what, console=Console(stderr=True), transient=True)

"""``medchain ehr``: health records anchored on chain, stored encrypted off chain.

A custodian (hospital or laboratory) anchors FHIR resources: each is validated, encrypted under a
fresh key, stored by CID in the record store (--store), its key wrapped for its readers in the
custodian's vault (--vault), and only its salted fingerprint, category and CID go on chain. Readers
get records through the custodian's gateway after a consent-checked, audited access on chain.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from medchain import settings
from medchain.cli._context import Context
from medchain.cli._options import (
    ACCOUNT,
    PURPOSE,
    RECORD_ID,
    read_json,
    store_option,
    vault_option,
    write_atomically,
)
from medchain.cli._render import Column
from medchain.cli.patient import when
from medchain.consent import BreakGlassSession, ConsentClient
from medchain.crypto import ReaderKey
from medchain.ehr import AnchoredRecord, EHRClient, RecordEvent, RecordNotFoundError, vault_record
from medchain.errors import ConfigurationError, ContractRevert, MedChainError
from medchain.types import Purpose, RecordStatus

RETRACTION_REASONS = {"wrong-patient": 1, "wrong-content": 2, "duplicate": 3}
"""EHRIndex's entered-in-error reason codes (other non-zero codes are the custodian's own)."""
PATIENTS_FILE = "patients.json"


# ─── Parameter types ────────────────────────────────────────────────────────────────────────────


class ReasonParam(click.ParamType[Any]):
    """wrong-patient, wrong-content, duplicate, or a custodian-defined code 4-65535."""

    name = "reason"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text in RETRACTION_REASONS:
            return RETRACTION_REASONS[text]
        if not (text.isdigit() and 1 <= int(text) <= 65535):
            self.fail(
                f"{value!r} is not a reason: use wrong-patient, wrong-content, duplicate, or a code 1-65535",
                param,
                ctx,
            )
        return int(text)


class PublicKeyParam(click.ParamType[Any]):
    """A secp256k1 public key in hex (64 or 65 bytes, or 33 compressed), or a file holding one."""

    name = "pubkey"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> bytes:
        from eth_keys.datatypes import PublicKey

        if isinstance(value, bytes):
            return value
        text = str(value).strip()
        if not text.startswith("0x") and Path(text).is_file():
            try:
                text = Path(text).read_text().strip()
            except OSError as exc:
                self.fail(f"cannot read {value}: {exc.strerror}", param, ctx)
        try:
            raw = bytes.fromhex(text.removeprefix("0x"))
            if len(raw) == 33:
                raw = PublicKey.from_compressed_bytes(raw).to_bytes()
            elif len(raw) == 65 and raw[0] == 4:
                raw = raw[1:]
            return bytes(PublicKey(raw).to_bytes())
        except Exception:  # eth_keys raises ValidationError (not a ValueError) on bad sizes
            self.fail(
                f"{str(value)[:80]!r} is not a public key (hex of 64 bytes, 65 starting 04, or 33 "
                "compressed; `medchain patient public-key` prints one) nor a file holding one",
                param,
                ctx,
            )


REASON_CODE = ReasonParam()
PUBLIC_KEY = PublicKeyParam()
REASON_NAMES = {code: name for name, code in RETRACTION_REASONS.items()}


def patient_key_option(fn: Any) -> Any:
    return click.option(
        "--patient-key",
        type=PUBLIC_KEY,
        default=None,
        help="The patient's public key (hex, or a file; `medchain patient public-key` prints it): the "
        "record key is then wrapped for the patient too. Without it only the custodian's key opens the "
        "record, and the patient reads it through the custodian's gateway like any reader.",
    )(fn)


# ─── Rendering ──────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Listed:
    """A record with its status now, as `ehr records` lists it."""

    record: AnchoredRecord
    status: RecordStatus


RECORD_COLUMNS: list[Column[Listed]] = [
    Column("record", lambda r: r.record.id, key="id", short=True),
    Column("category", lambda r: r.record.header.category_text),
    Column("custodian", lambda r: r.record.header.custodian),
    Column("status", lambda r: r.status),
    Column(
        "amends",
        lambda r: r.record.header.previous if any(r.record.header.previous) else None,
        key="previous",
        short=True,
    ),
    Column("cid", lambda r: r.record.cid),
    Column("fingerprint", lambda r: r.record.header.fingerprint, short=True),
    Column("block", lambda r: r.record.block),
]

EVENT_COLUMNS: list[Column[RecordEvent]] = [
    Column("time", lambda e: when(e.timestamp)),
    Column("event", lambda e: e.kind),
    Column("version", lambda e: e.record_id, short=True),
    Column("by", lambda e: e.actor),
    Column("purpose", lambda e: e.purpose.name if e.purpose is not None else None),
    Column("break-glass", lambda e: e.break_glass if e.kind == "accessed" else None),
    Column("reason", lambda e: REASON_NAMES.get(e.reason, e.reason) if e.reason is not None else None),
    Column("new version", lambda e: e.next_version, key="next_version", short=True),
    Column("block", lambda e: e.block),
    Column("tx", lambda e: e.tx, short=True),
]

SESSION_COLUMNS: list[Column[BreakGlassSession]] = [
    Column("session", lambda s: s.id),
    Column("patient", lambda s: s.patient),
    Column("institution", lambda s: s.institution),
    Column("opened", lambda s: when(s.opened_at)),
    Column("expires", lambda s: when(s.expires_at)),
    Column("review", lambda s: s.review),
    Column("justification digest", lambda s: s.justification_digest, short=True),
]


def record_fields(record: AnchoredRecord) -> dict[str, Any]:
    h = record.header
    return {
        "record": record.id,
        "cid": record.cid,
        "patient": h.patient,
        "custodian": h.custodian,
        "category": h.category_text,
        "fingerprint": h.fingerprint,
        "block": record.block,
    }


# ─── Commands ───────────────────────────────────────────────────────────────────────────────────


@click.group()
def ehr() -> None:
    """Health records: anchor, batch, read, amend, retract, break-glass.

    \b
    Only a salted fingerprint, the FHIR resource type, the patient's and custodian's addresses
    and the CID of the ciphertext go on chain; the record itself is encrypted in --store and its
    keys are in the custodian's --vault (both under $MEDCHAIN_HOME by default).
    """


@ehr.command("anchor")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--patient",
    "patient_account",
    type=ACCOUNT,
    required=True,
    help="Whose record (address or account name).",
)
@patient_key_option
@store_option
@vault_option
@click.pass_obj
def ehr_anchor(
    obj: Context,
    file: Path,
    patient_account: str,
    patient_key: bytes | None,
    store_path: Path | None,
    vault_path: Path | None,
) -> None:
    """Encrypt, store and anchor one FHIR resource.

    FILE is a FHIR R4 resource (JSON); it becomes a record of --patient held by the sender.

    The sender is the custodian (a hospital or laboratory the patient gave append consent for
    treatment); its own key must be local (--from a keystore account) because the record key is
    wrapped for it. After a failure (a time-out, a crash) run the same command again: it finishes
    the staged attempt instead of anchoring twice. After a success it would anchor a second copy.

    \b
    Example:
      medchain --from hospital-a ehr anchor glucose.json --patient alice
    """
    custodian = obj.local_key("anchoring a record (the record key is wrapped for the custodian)")
    resource = read_json(file, "FHIR resource")
    readers = _readers(custodian.key, patient_account, patient_key)
    record = obj.ehr(store_path).anchor_resource(
        custodian, resource, patient_account, obj.vault(vault_path), readers
    )
    obj.show_one("Record anchored", {**record_fields(record), "readers": [r.address for r in readers]})


@ehr.command("batch")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--patient",
    "patient_account",
    type=ACCOUNT,
    default=None,
    help=f"The patient of every file [default: each file's patient from DIRECTORY/{PATIENTS_FILE}].",
)
@store_option
@vault_option
@click.pass_obj
def ehr_batch(
    obj: Context,
    directory: Path,
    patient_account: str | None,
    store_path: Path | None,
    vault_path: Path | None,
) -> None:
    """Anchor a folder of FHIR resources under one Merkle root.

    Every *.json file in DIRECTORY is a FHIR R4 resource; one transaction anchors them all, as a
    laboratory's night run.

    Each file needs its patient: --patient for all of them, or a file DIRECTORY/patients.json
    mapping each file name to an address or account name, e.g. {"glucose-1.json": "alice"}.
    The record keys are wrapped for the custodian only (patients read through its gateway).

    \b
    Example:
      medchain --from laboratory ehr batch results/ --patient alice
    """
    from medchain.ehr import FhirValidationError, validate_fhir

    custodian = obj.local_key("anchoring records (the record keys are wrapped for the custodian)")
    files = sorted(p for p in _listing(directory) if p.name != PATIENTS_FILE)
    if not files:
        raise ConfigurationError(f"no *.json files in {directory}")
    patients = _patients_of(obj, directory, files, patient_account)
    items = [(patients[f.name], read_json(f, "FHIR resource")) for f in _progress(files, "reading")]
    client = obj.ehr(store_path)
    try:
        batch_id, records = client.anchor_batch(
            custodian, items, obj.vault(vault_path), ReaderKey.from_private_key(bytes(custodian.key))
        )
    except FhirValidationError:
        for f, (_patient, resource) in zip(files, items, strict=True):
            try:
                validate_fhir(resource)
            except FhirValidationError as exc:
                raise FhirValidationError(f"{f.name}: {exc}; nothing was anchored") from None
        raise
    rows = list(zip(files, records, strict=True))
    columns: list[Column[tuple[Path, AnchoredRecord]]] = [
        Column("file", lambda r: r[0].name),
        Column("batch", lambda r: batch_id),
        Column("record", lambda r: r[1].id, short=True),
        Column("patient", lambda r: r[1].header.patient),
        Column("category", lambda r: r[1].header.category_text),
        Column("cid", lambda r: r[1].cid),
    ]
    obj.show(f"Batch {batch_id}: {len(records)} records under one root", rows, columns)


@ehr.command("read")
@click.argument("record_id", type=RECORD_ID)
@click.option(
    "--gateway",
    "gateway_url",
    default=lambda: settings.GATEWAY.get(),
    required=True,
    help=f"The custodian's gateway URL [default: ${settings.GATEWAY.name}].",
)
@click.option(
    "--purpose",
    type=PURPOSE,
    default="TREAT",
    show_default=True,
    help="Purpose of use recorded with the access: TREAT, HPAYMT, HRESCH or ETREAT (break-glass).",
)
@click.option("--no-access", is_flag=True, help="Skip the on-chain access call (a recent one exists).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the FHIR JSON here [default: stdout].",
)
@store_option
@click.pass_obj
def ehr_read(
    obj: Context,
    record_id: bytes,
    gateway_url: str,
    purpose: Purpose,
    no_access: bool,
    output: Path | None,
    store_path: Path | None,
) -> None:
    """Read a record: audited access, gateway, decrypt, verify.

    RECORD_ID is accessed on chain (consent-checked, leaves an audit event), fetched from the
    custodian's gateway, decrypted and checked against its anchored fingerprint.

    The sender's key signs the gateway's challenge and decrypts (--from a keystore account, or
    $MEDCHAIN_PRIVATE_KEY). The patient and the custodian need no access call.

    \b
    Example:
      medchain --from hospital-b ehr read 0x3f… --gateway http://hospital-a:8610 -o record.json
    """
    from medchain.gateway import GatewayClient

    reader = obj.local_key("reading a record (the key signs the gateway's challenge and decrypts)")
    client = obj.ehr(store_path)
    if not no_access:
        try:
            record: AnchoredRecord | None = client.record(record_id)
        except RecordNotFoundError:
            record = None  # batched: its patient or custodian reads it; others need its proof (--no-access)
        others = record is not None and reader.address not in (record.header.patient, record.header.custodian)
        if record is not None and others and not client.attempt(reader, record, purpose):
            from medchain.errors import MedChainError

            raise MedChainError(
                f"access denied: no consent lets {reader.address} read record 0x{record_id.hex()} for "
                f"{purpose.name}; the refused attempt is recorded on chain (AccessDenied)"
            )
    gateway = GatewayClient(gateway_url)
    try:
        resource = gateway.read(client, record_id, reader)
    finally:
        gateway.close()
    text = json.dumps(resource, indent=2)
    if output is None:
        click.echo(text)
        return
    write_atomically(output, text + "\n", private=True)  # health data in clear: the owner only
    obj.note(f"record 0x{record_id.hex()} written to {output} (verified against its anchored fingerprint)")


@ehr.command("records")
@click.argument("patient_account", metavar="[PATIENT]", type=ACCOUNT, required=False)
@click.pass_obj
def ehr_records(obj: Context, patient_account: str | None) -> None:
    """List a patient's records and their status.

    Every version anchored for PATIENT (default: the sender).

    Records anchored in a batch are not listed (the chain holds only the batch's root); their
    custodian's vault knows them.
    """
    subject = patient_account or obj.sender_address()
    client = obj.ehr(None)
    rows = [Listed(r, client.status(r.id)) for r in client.records_of(subject)]
    obj.show(f"Records of {subject}", rows, RECORD_COLUMNS)


@ehr.command("history")
@click.argument("record_id", type=RECORD_ID)
@click.pass_obj
def ehr_history(obj: Context, record_id: bytes) -> None:
    """A record's versions, retraction and accesses, in order.

    For RECORD_ID and all its versions: each anchored or amended, a retraction, and every
    audited access (who read it, when, for what purpose, break-glass or not).
    """
    events = obj.ehr(None).history(record_id)
    obj.show(f"History of record 0x{record_id.hex()}", events, EVENT_COLUMNS)


@ehr.command("amend")
@click.argument("record_id", type=RECORD_ID)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@patient_key_option
@store_option
@vault_option
@click.pass_obj
def ehr_amend(
    obj: Context,
    record_id: bytes,
    file: Path,
    patient_key: bytes | None,
    store_path: Path | None,
    vault_path: Path | None,
) -> None:
    """Anchor a new version of a record the sender holds.

    FILE (a FHIR R4 resource) becomes the new version of RECORD_ID; the old version stays on
    chain, marked superseded.

    \b
    Example:
      medchain --from hospital-a ehr amend 0x3f… glucose-corrected.json
    """
    custodian = obj.local_key("amending a record (the record key is wrapped for the custodian)")
    client = obj.ehr(store_path)
    previous = _single_record(client, record_id, "amended")
    if previous.header.custodian != custodian.address:
        raise MedChainError(
            f"record 0x{record_id.hex()} is held by {previous.header.custodian}; only its custodian amends it"
        )
    resource = read_json(file, "FHIR resource")
    readers = _readers(custodian.key, previous.header.patient, patient_key)
    record = client.anchor_resource(
        custodian, resource, previous.header.patient, obj.vault(vault_path), readers, previous=previous
    )
    obj.show_one(
        "Record amended",
        {**record_fields(record), "amends": previous.id, "readers": [r.address for r in readers]},
    )


@ehr.command("entered-in-error")
@click.argument("record_id", type=RECORD_ID)
@click.option(
    "--reason",
    type=REASON_CODE,
    required=True,
    help="wrong-patient, wrong-content, duplicate (or a code of the custodian's own, 4-65535).",
)
@vault_option
@click.pass_obj
def ehr_entered_in_error(obj: Context, record_id: bytes, reason: int, vault_path: Path | None) -> None:
    """Retract a record the sender holds (entered in error).

    RECORD_ID can no longer be read or amended. A record of a batch is proven by the custodian's
    vault (--vault).

    \b
    Example:
      medchain --from hospital-a ehr entered-in-error 0x3f… --reason wrong-patient
    """
    client = obj.ehr(None)
    sender = obj.sender()
    if client.status(record_id) != RecordStatus.NONE:
        client.mark_entered_in_error(sender, record_id, reason)
        batch = 0
    else:
        record = vault_record(obj.vault(vault_path), record_id)
        if record is None or not record.batch_id:
            raise MedChainError(
                f"no record 0x{record_id.hex()} on this deployment: a batched record needs the proof in "
                "its custodian's vault (--vault), and this vault has none for it"
            )
        client.mark_batched_entered_in_error(sender, record, reason)
        batch = int(record.batch_id)
    obj.show_one(
        "Record entered in error",
        {
            "record": record_id,
            "reason": REASON_NAMES.get(reason, reason),
            "batch": batch or None,
            "status": client.status(record_id),
        },
    )


@ehr.group("break-glass")
def break_glass() -> None:
    """Emergency access without consent: open, review, list.

    A session is time-boxed, justified, and reviewed afterwards by the patient, a guardian or a
    regulator.
    """


@break_glass.command("open")
@click.argument("patient_account", metavar="PATIENT", type=ACCOUNT)
@click.option(
    "--justification",
    required=True,
    help="Why (e.g. 'unconscious in the emergency room, no consent on file'), or - to read it from "
    "stdin (kept out of the shell history). Only a salted digest goes on chain; the text and salt are "
    "kept in $MEDCHAIN_HOME/break-glass for the reviewer.",
)
@click.pass_obj
def break_glass_open(obj: Context, patient_account: str, justification: str) -> None:
    """Open an emergency read session for a patient.

    The sender is a hospital or clinic. Reads of PATIENT's records for ETREAT are allowed until the
    session expires, each audited as break-glass; the session awaits review by the patient, a
    guardian or a regulator.

    \b
    Example:
      medchain --from hospital-b ehr break-glass open alice --justification "unconscious, ER"
      medchain --from hospital-b ehr read 0x3f… --purpose ETREAT --gateway http://hospital-a:8610
    """
    if justification == "-":
        justification = sys.stdin.read()
    text = justification.strip()
    if not text:
        raise click.BadParameter("an empty justification justifies nothing", param_hint="--justification")
    consent = obj.suite.consent
    salt = os.urandom(32)
    digest = hashlib.sha256(salt + text.encode()).digest()
    folder = obj.home / "break-glass" / str(obj.chain.chain_id)
    pending = folder / f"pending-{digest.hex()}.json"
    note = {
        "patient": patient_account,
        "justification": text,
        "salt": "0x" + salt.hex(),
        "digest": "0x" + digest.hex(),
    }
    _write_private(pending, note, "nothing was sent")  # first: a digest on chain never lacks its text
    try:
        session_id = consent.open_break_glass(obj.sender(), patient_account, digest)
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    kept = folder / f"session-{session_id}.json"
    _write_private(
        kept,
        {"session": session_id, "institution": obj.sender_address(), **note},
        f"the text is in {pending}",
    )
    pending.unlink(missing_ok=True)
    session = consent.session(session_id)
    obj.show_one(
        f"Break-glass session {session_id} open",
        {
            "session": session_id,
            "patient": session.patient,
            "institution": session.institution,
            "expires": when(session.expires_at),
            "justification_digest": digest,
            "justification_kept_in": kept,
        },
    )


@break_glass.command("review")
@click.argument("session_id", type=click.IntRange(min=1))
@click.argument("verdict", type=click.Choice(["accept", "dispute"]))
@click.option(
    "--justification-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The hospital's session-N.json (from `break-glass open`): its text and salt are checked "
    "against the digest on chain before the review is sent, and the text is shown.",
)
@click.pass_obj
def break_glass_review(obj: Context, session_id: int, verdict: str, justification_file: Path | None) -> None:
    """Accept or dispute an emergency session.

    The sender is the patient, a guardian or a regulator. A dispute ends SESSION_ID at once and
    counts against the institution.

    \b
    Example:
      medchain --from regulator ehr break-glass review 3 accept
    """
    consent = obj.suite.consent
    justification = _checked_justification(_session(consent, session_id), justification_file)
    consent.review_break_glass(obj.sender(), session_id, verdict == "accept")
    session = consent.session(session_id)
    obj.show_one(
        f"Break-glass session {session_id} reviewed",
        {
            "session": session_id,
            **({"justification": justification} if justification is not None else {}),
            "patient": session.patient,
            "institution": session.institution,
            "review": session.review,
            "expires": when(session.expires_at),
            "disputed_sessions_of_institution": consent.disputed_sessions(session.institution),
        },
    )


@break_glass.command("list")
@click.argument("patient_account", metavar="[PATIENT]", type=ACCOUNT, required=False)
@click.pass_obj
def break_glass_list(obj: Context, patient_account: str | None) -> None:
    """List the emergency sessions opened for a patient.

    For PATIENT (default: the sender), with their review state.
    """
    subject = patient_account or obj.sender_address()
    obj.show(f"Break-glass sessions for {subject}", obj.suite.consent.sessions_of(subject), SESSION_COLUMNS)


# ─── Helpers ────────────────────────────────────────────────────────────────────────────────────


def _readers(custodian_key: bytes, patient: str, patient_key: bytes | None) -> tuple[ReaderKey, ...]:
    """The custodian's reader key, and the patient's when its public key is given (checked against
    the patient's address: a key filed under the wrong reader would open for someone else)."""
    readers = [ReaderKey.from_private_key(bytes(custodian_key))]
    if patient_key is not None:
        readers.append(ReaderKey.from_public_key(patient, patient_key))
    return tuple(readers)


def _single_record(client: EHRClient, record_id: bytes, what: str) -> AnchoredRecord:
    try:
        return client.record(record_id)
    except RecordNotFoundError:
        raise MedChainError(
            f"no record 0x{record_id.hex()} on this deployment "
            f"(a record anchored in a batch cannot be {what})"
        ) from None


def _session(consent: ConsentClient, session_id: int) -> BreakGlassSession:
    try:
        return consent.session(session_id)
    except ContractRevert as exc:
        if exc.error == "ConsentUnknownSession":
            raise MedChainError(f"no break-glass session {session_id} on this deployment") from None
        raise


def _checked_justification(session: BreakGlassSession, kept: Path | None) -> str | None:
    """The justification text of a kept file, if its salted digest is the session's on chain."""
    if kept is None:
        return None
    note = read_json(kept, "justification file")
    try:
        text = str(note["justification"])
        digest = hashlib.sha256(bytes.fromhex(str(note["salt"]).removeprefix("0x")) + text.encode()).digest()
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"{kept} is not a break-glass justification file ({exc})") from None
    if digest != session.justification_digest:
        raise MedChainError(
            f"the justification in {kept} does not match session {session.id}'s digest on chain "
            f"(0x{session.justification_digest.hex()}); nothing was sent"
        )
    return text


def _listing(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ConfigurationError(f"{directory} is not a folder")
    try:
        return list(directory.glob("*.json"))
    except OSError as exc:
        raise ConfigurationError(f"cannot list {directory}: {exc.strerror or exc}") from None


def _patients_of(obj: Context, directory: Path, files: list[Path], everyone: str | None) -> dict[str, str]:
    """Each file's patient address: --patient for all, else DIRECTORY/patients.json."""
    if everyone is not None:
        return {f.name: everyone for f in files}
    mapping_path = directory / PATIENTS_FILE
    if not mapping_path.is_file():
        raise ConfigurationError(
            f"whose records are these? give --patient ACCOUNT for all files, or write {mapping_path} "
            'mapping each file name to its patient ({"a.json": "alice", "b.json": "0x…"})'
        )
    mapping = read_json(mapping_path, "patient mapping")
    if not isinstance(mapping, dict):
        raise ConfigurationError(f"{mapping_path} must map file names to patients (a JSON object)")
    names = {f.name for f in files}
    missing = sorted(names - set(mapping))
    unknown = sorted(set(mapping) - names)
    if missing or unknown:
        raise ConfigurationError(
            f"{mapping_path} does not match the folder: "
            + "; ".join(
                part
                for part in (
                    f"no patient for {', '.join(missing)}" if missing else "",
                    f"no such file {', '.join(unknown)}" if unknown else "",
                )
                if part
            )
        )
    out = {}
    for name, who in mapping.items():
        try:
            out[name] = obj.account_address(str(who))
        except MedChainError as exc:
            raise ConfigurationError(f"{mapping_path}: {name}: {exc}") from None
    return out


def _progress(files: list[Path], what: str) -> Iterator[Path]:
    """Iterates ``files`` with a progress bar on stderr (never on stdout, where --json goes)."""
    from rich.console import Console
    from rich.progress import track

    console = Console(stderr=True)
    yield from track(
        files,
        description=f"{what} {len(files)} files",
        console=console,
        transient=True,
        disable=not console.is_terminal,  # not even a blank line in a log or a pipe
    )


def _write_private(path: Path, data: dict[str, Any], if_failed: str) -> None:
    """A small JSON file only this user can read (it holds a justification, possibly clinical)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror or exc}; {if_failed}") from None

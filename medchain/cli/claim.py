"""``medchain claim``: insurance plans, enrolment, claims, review, payment and reports.

Who runs what: the insurer creates, funds and shows plans, enrols patients (with the patient's
signature file from ``medchain patient sign-enrolment``), reviews pending claims and reports; a
provider (hospital, laboratory, pharmacy) submits and appeals claims; anyone may pay out an
approved claim once the pool holds the funds; the patient settles its co-payment.

Files: a plan's salted coverage file lives in ``$MEDCHAIN_HOME/plans/<chain id>-<plan id>.json``
(see :class:`medchain.claims.PlanFile`); the enrolment signature file is
:class:`medchain.claims.SignedEnrolment`; a drug claim bills a dispense record that ``medchain drug
dispense`` saved (``$MEDCHAIN_HOME/dispenses/``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from medchain.claims import (
    ClaimView,
    DispenseRef,
    PlanFile,
    PlanReport,
    PlanView,
    SignedEnrolment,
    format_amount,
    format_coinsurance,
)
from medchain.cli._context import Context
from medchain.cli._options import ACCOUNT, AMOUNT, CLAIM_ID, REASON, RECORD_ID, write_atomically
from medchain.cli._render import Column
from medchain.errors import ChainError, ConfigurationError, ContractRevert, MedChainError
from medchain.manifest import Deployment, default_manifest_path
from medchain.types import ClaimStatus

PLAN_ID = click.IntRange(1, 2**32 - 1)
"""A plan number (ClaimsProcessor numbers plans from 1; claim records hold it as uint32)."""
FILE = click.Path(dir_okay=False, path_type=Path)


def when(ts: int) -> str:
    """A Unix time as ISO 8601 UTC (``2026-01-31T09:00:00Z``)."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


# ─── Columns: one list gives the table and the JSON of a claim ──────────────────────────────────

PAYABLE = (ClaimStatus.APPROVED, ClaimStatus.PAID)

PENDING_COLUMNS: list[Column[ClaimView]] = [
    Column("claim", lambda c: c.id, short=True),
    Column("status", lambda c: c.status),
    Column("provider", lambda c: c.provider),
    Column("patient", lambda c: c.patient),
    Column("billed", lambda c: format_amount(c.billed)),
    Column("max payable", lambda c: format_amount(c.max_payable)),
    Column("patient share", lambda c: format_amount(c.patient_share)),
    Column("submitted", lambda c: when(c.submitted_at)),
]
CLAIM_DETAIL: list[Column[ClaimView]] = [
    PENDING_COLUMNS[0],
    Column("plan", lambda c: c.plan_id),
    *PENDING_COLUMNS[1:6],
    Column("approved", lambda c: format_amount(c.amount) if c.status in PAYABLE else None),
    *PENDING_COLUMNS[6:],
    Column("deductible part", lambda c: format_amount(c.deductible_part)),
    Column("coverage year", lambda c: c.year),
    Column("appealed", lambda c: c.appealed),
    Column("share settled", lambda c: c.share_settled),
    Column("evidence", lambda c: c.record.evidence),
    Column("service commitment", lambda c: c.record.service_commitment),
]

PLAN_FIELDS: list[Column[PlanView]] = [
    Column("plan", lambda p: p.id),
    Column("insurer", lambda p: p.insurer),
    Column("pool", lambda p: format_amount(p.pool)),
    Column("reserved", lambda p: format_amount(p.reserved)),
    Column("surplus", lambda p: format_amount(p.surplus)),
    Column("deductible", lambda p: format_amount(p.terms.deductible)),
    Column("coinsurance", lambda p: format_coinsurance(p.terms.coinsurance_bps)),
    Column("per claim limit", lambda p: format_amount(p.terms.per_claim_limit)),
    Column("annual limit", lambda p: format_amount(p.terms.annual_limit)),
    Column("auto pay ceiling", lambda p: format_amount(p.terms.auto_pay_ceiling)),
    Column("covered root", lambda p: p.terms.covered_root),
]

REPORT_FIELDS: list[Column[PlanReport]] = [
    Column("plan", lambda r: r.plan),
    Column("insurer", lambda r: r.insurer),
    Column("claims", lambda r: r.claims),
    Column("by status", lambda r: dict(r.by_status)),
    Column("paid", lambda r: format_amount(r.paid)),
    Column("pool", lambda r: format_amount(r.pool)),
    Column("reserved", lambda r: format_amount(r.reserved)),
    Column("patient shares open", lambda r: format_amount(r.patient_shares_open)),
]


def fields_of(row: Any, columns: Sequence[Column[Any]]) -> dict[str, Any]:
    """One row as the field/value mapping ``show_one`` prints (keys as the JSON has them)."""
    return {c.json_key: c.value(row) for c in columns}


def show_claim(obj: Context, claim: ClaimView, title: str = "Claim", **extra: Any) -> None:
    obj.show_one(title, {**fields_of(claim, CLAIM_DETAIL), **extra})


# ─── Files ──────────────────────────────────────────────────────────────────────────────────────


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def plan_path(obj: Context, chain_id: int, plan_id: int) -> Path:
    """Where a plan's salted coverage file is kept: ``$MEDCHAIN_HOME/plans/<chain>-<plan>.json``."""
    return obj.home / "plans" / f"{chain_id}-{plan_id}.json"


def save_plan_file(obj: Context, path: Path, plan_file: PlanFile) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create {path.parent}: {exc.strerror or exc}") from None
    write_atomically(path, plan_file.to_json())


def load_plan_file(obj: Context, plan: PlanView, given: Path | None) -> tuple[PlanFile, Path]:
    """The coverage file of ``plan``, checked against the chain (plan, contract, covered root).

    Raises:
        ConfigurationError: no file (says how to get one), or a file for another plan.
    """
    claims = obj.suite.claims
    chain_id = obj.chain.chain_id
    path = given or plan_path(obj, chain_id, plan.id)
    if given is None and not path.is_file():
        raise ConfigurationError(
            f"no coverage file for plan {plan.id} at {path}: the insurer shares it (`medchain claim plan "
            "create` wrote it); save it with `medchain claim plan import FILE` or pass --plan-file FILE"
        )
    plan_file = PlanFile.from_json(read_text(path, "coverage file"), str(path))
    plan_file.check_plan(plan, chain_id, claims.address)
    return plan_file, path


@dataclass(frozen=True)
class BilledDispense:
    """A dispense record as a drug claim needs it: the product, the dispense, who and to whom."""

    dispense_id: bytes
    gtin: int
    dispenser: str
    patient: str
    ref: DispenseRef


def read_dispense(obj: Context, given: Path) -> BilledDispense:
    """Reads a dispense record saved by ``medchain drug dispense`` (format ``medchain-dispense-v1``:
    dispense_id, batch_id, gtin, lot, dispenser, patient, patient_ref, patient_salt, quantity,
    nonce, timestamp) and checks that its dispense id follows from its fields.

    ``given`` is a path, or a file name under ``$MEDCHAIN_HOME/dispenses`` (``.json`` optional).
    """
    from medchain.drug import Dispense, lot_bytes

    candidates = [given, obj.home / "dispenses" / given, obj.home / "dispenses" / f"{given}.json"]
    path = next((p for p in candidates if p.is_file()), given)
    record = Dispense.from_json(read_text(path, "dispense record"), source=str(path))
    ref = DispenseRef(
        lot_bytes(record.lot), record.patient_salt, record.quantity, record.nonce, record.timestamp
    )
    if ref.dispense_id(record.gtin, record.dispenser, record.patient) != record.dispense_id:
        raise ConfigurationError(f"{path}: dispense_id does not follow from its fields (a damaged record)")
    return BilledDispense(record.dispense_id, record.gtin, record.dispenser, record.patient, ref)


# ─── Time options ───────────────────────────────────────────────────────────────────────────────

_RELATIVE = re.compile(r"^([+-])(\d+)([hdwy])$")
_UNIT = {"h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
TIME_HELP = "now, YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (UTC), Unix seconds, or relative to now: +30d, -1d, +1y"


def parse_time(text: str, now: int, option: str) -> int:
    """A time given as ``now``, an ISO date or date-time (UTC), Unix seconds, or ``+N{h,d,w,y}``."""
    value = text.strip()
    if value.lower() == "now":
        return now
    if value.isdigit():
        return int(value)
    relative = _RELATIVE.match(value.lower())
    if relative:
        sign, count, unit = relative.groups()
        delta = int(count) * _UNIT[unit]
        return now + delta if sign == "+" else now - delta
    try:
        parsed = datetime.fromisoformat(value.removesuffix("Z"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a time: use {TIME_HELP}", param_hint=option) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


# ─── Group ──────────────────────────────────────────────────────────────────────────────────────


@click.group()
def claim() -> None:
    """Insurance: plans, enrolment, claims, review, payment and reports.

    \b
    Amounts are decimal settlement-token units (12.50). Typical flow:
      medchain --from insurer claim plan create docs/examples/coverage-table.json
      medchain --from insurer claim plan fund 1 20000
      medchain --from alice patient sign-enrolment 1 --end +365d -o enrol.json
      medchain --from insurer claim enrol enrol.json
      medchain --from hospital-a claim submit 1 --patient alice --code 99213 --billed 150 --evidence 0x…
      medchain --from insurer claim pending 1
    """


@claim.group("plan")
def plan_group() -> None:
    """An insurer's plans: create from a coverage table, fund, show, import a shared plan file."""


@plan_group.command("create")
@click.argument("table_file", type=FILE)
@click.option(
    "-o",
    "--output",
    type=FILE,
    default=None,
    help="Also write the salted plan file here (to send to providers).",
)
@click.pass_obj
def plan_create(obj: Context, table_file: Path, output: Path | None) -> None:
    """Create a plan from TABLE_FILE, a coverage table (see docs/examples/coverage-table.json):
    billing codes with allowed amounts (a drug service also names its GTIN) and the plan terms
    (deductible, coinsurance "20%" or "2000 bps", per-claim limit, annual limit, auto-pay ceiling).

    A fresh random salt hides the billing codes: only the Merkle root of the salted table goes on
    chain. The salted table is saved as $MEDCHAIN_HOME/plans/<chain id>-<plan id>.json; share that
    file with network providers (they cannot claim without it, and must not publish it).
    """
    spec = PlanFile.from_json(read_text(table_file, "coverage table"), str(table_file))
    sender = obj.sender()
    suite = obj.suite
    chain_id = suite.chain.chain_id
    salted = spec.salted()
    # The salt is written down before the plan exists: were the file lost after the transaction,
    # nobody could ever prove a service covered.
    pending = obj.home / "plans" / f"{chain_id}-new-{salted.table().root.hex()[:16]}.json"
    save_plan_file(obj, pending, salted)
    try:
        plan_id = suite.claims.create_plan(sender, salted.terms())
    except ContractRevert:
        pending.unlink(missing_ok=True)  # rejected: no plan has this root
        raise
    except MedChainError as exc:
        raise MedChainError(f"{exc} (the salted table is kept in {pending})") from None
    created = salted.for_plan(plan_id, chain_id, suite.claims.address)
    path = plan_path(obj, chain_id, plan_id)
    save_plan_file(obj, path, created)
    pending.unlink(missing_ok=True)
    if output is not None:
        write_atomically(output, created.to_json())
    plan = suite.claims.plan(plan_id)
    obj.show_one(
        f"Plan {plan_id} created",
        {
            **fields_of(plan, PLAN_FIELDS),
            "services": len(created.services),
            "plan_file": path,
            **({"copy": output} if output else {}),
        },
    )
    obj.note(f"share {output or path} with network providers: it holds the salt that proves coverage")


@plan_group.command("fund")
@click.argument("plan_id", type=PLAN_ID)
@click.argument("amount", type=AMOUNT)
@click.pass_obj
def plan_fund(obj: Context, plan_id: int, amount: int) -> None:
    """Move AMOUNT settlement tokens from the sender into PLAN_ID's pool (a decimal amount: 20000,
    12.50). The token allowance is approved first; claims that waited for funds can then be paid
    out with `claim pay-out`."""
    claims = obj.suite.claims
    claims.plan(plan_id)
    claims.fund(obj.sender(), plan_id, amount)
    obj.show_one(f"Plan {plan_id} funded", {**fields_of(claims.plan(plan_id), PLAN_FIELDS[:5])})


@plan_group.command("withdraw")
@click.argument("plan_id", type=PLAN_ID)
@click.argument("amount", type=AMOUNT)
@click.pass_obj
def plan_withdraw(obj: Context, plan_id: int, amount: int) -> None:
    """The plan's insurer takes AMOUNT of the pool back: only the surplus above reserved claims."""
    claims = obj.suite.claims
    claims.plan(plan_id)
    claims.withdraw(obj.sender(), plan_id, amount)
    obj.show_one(f"Plan {plan_id}", {**fields_of(claims.plan(plan_id), PLAN_FIELDS[:5])})


@plan_group.command("show")
@click.argument("plan_id", type=PLAN_ID)
@click.pass_obj
def plan_show(obj: Context, plan_id: int) -> None:
    """PLAN_ID's insurer, pool, reserved amount, surplus and terms, and the local coverage file."""
    plan = obj.suite.claims.plan(plan_id)
    path = plan_path(obj, obj.chain.chain_id, plan_id)
    extra: dict[str, Any] = {"plan_file": None, "services": None}
    if path.is_file():
        plan_file, _ = load_plan_file(obj, plan, path)
        extra = {
            "plan_file": path,
            "services": [f"{s.code} (GTIN {s.gtin:014d})" if s.gtin else s.code for s in plan_file.services],
        }
    obj.show_one(f"Plan {plan_id}", {**fields_of(plan, PLAN_FIELDS), **extra})


@plan_group.command("import")
@click.argument("plan_file", type=FILE)
@click.pass_obj
def plan_import(obj: Context, plan_file: Path) -> None:
    """Save a plan file an insurer shared (checked against the chain) where `claim submit` finds it."""
    shared = PlanFile.from_json(read_text(plan_file, "plan file"), str(plan_file))
    if shared.plan_id is None:
        raise ConfigurationError(
            f"{plan_file} is a coverage table without a plan (no salt and plan id): "
            "`medchain claim plan create` makes a plan from it"
        )
    plan = obj.suite.claims.plan(shared.plan_id)
    shared.check_plan(plan, obj.chain.chain_id, obj.suite.claims.address)
    path = plan_path(obj, obj.chain.chain_id, plan.id)
    save_plan_file(obj, path, shared)
    obj.show_one(
        f"Plan {plan.id} imported",
        {"plan": plan.id, "insurer": plan.insurer, "services": len(shared.services), "plan_file": path},
    )


# ─── Enrolment ──────────────────────────────────────────────────────────────────────────────────


@claim.command("enrol")
@click.argument("signature_file", type=FILE)
@click.pass_obj
def claim_enrol(obj: Context, signature_file: Path) -> None:
    """Enrol a patient (the sender is the plan's insurer) with the SIGNATURE_FILE the patient wrote
    with `medchain patient sign-enrolment`. A patient whose coverage ended is renewed: the coverage
    year and its totals carry on."""
    signed = SignedEnrolment.from_json(read_text(signature_file, "enrolment file"), str(signature_file))
    claims = obj.suite.claims
    claims.plan(signed.plan_id)
    enrolment = claims.enrol_signed(obj.sender(), signed)
    obj.show_one(
        "Patient enrolled",
        {
            "plan": signed.plan_id,
            "patient": signed.patient,
            "start": when(enrolment.start),
            "end": when(enrolment.end),
            "coverage_years_from": when(enrolment.year_origin),
        },
    )


def sign_enrolment(
    obj: Context,
    plan_id: int,
    start: str,
    end: str,
    valid_days: int,
    nonce: int | None,
    chain_id: int | None,
    output: str | Path,
) -> None:
    """``medchain patient sign-enrolment`` (declared in medchain/cli/patient.py)."""
    output = Path(output)
    patient = obj.local_key("signing an enrolment")
    online = True
    try:
        suite = obj.suite
    except ChainError:
        online = False
    if online:
        claims = suite.claims
        claims.plan(plan_id)
        if chain_id is not None and chain_id != suite.chain.chain_id:
            raise ConfigurationError(
                f"--chain-id {chain_id}, but the node at {obj.rpc} is chain {suite.chain.chain_id}"
            )
        chain_id = suite.chain.chain_id
        processor = claims.address
        now = claims.now()
        current = claims.enrol_nonce(patient.address)
        if nonce is not None and nonce != current:
            obj.note(f"warning: --nonce {nonce}, but the chain has {current} for {patient.address}")
        nonce = current if nonce is None else nonce
    else:
        deployment = offline_deployment(obj, chain_id)
        chain_id = deployment.chain_id
        processor = deployment.address_of("ClaimsProcessor")
        if nonce is None:
            raise ConfigurationError(
                f"no node answers at {obj.rpc}, so your enrolment nonce cannot be read: give --nonce N "
                "(0 if you never enrolled in a plan on this deployment; one more per enrolment since)"
            )
        now = int(time.time())
    starts = parse_time(start, now, "--start")
    ends = parse_time(end, now, "--end")
    if ends <= starts:
        raise click.BadParameter(
            f"the coverage ends ({when(ends)}) before it starts ({when(starts)})", param_hint="--end"
        )
    signed = SignedEnrolment.sign(
        patient, chain_id, processor, plan_id, starts, ends, nonce, now + valid_days * 86400
    )
    write_atomically(output, signed.to_json())
    obj.show_one(
        "Enrolment signed",
        {
            "file": output,
            "plan": plan_id,
            "patient": signed.patient,
            "start": when(starts),
            "end": when(ends),
            "nonce": nonce,
            "submit_before": when(signed.deadline),
            "chain_id": chain_id,
            "claims_processor": processor,
            "nonce_from": "chain" if online else "--nonce (offline)",
        },
    )
    obj.note(f"give {output} to the insurer: `medchain claim enrol {output}`")


def offline_deployment(obj: Context, chain_id: int | None) -> Deployment:
    """The deployment to sign for when no node answers: --manifest, else $MEDCHAIN_MANIFEST or the
    manifest of --chain-id, else the only manifest under $MEDCHAIN_HOME/deployments."""
    if obj.manifest_option is not None:
        path = obj.manifest_option
    elif chain_id is not None:
        path = default_manifest_path(chain_id)
    else:
        from medchain import settings

        found = sorted((obj.home / "deployments").glob("*.json"))
        if settings.MANIFEST.get():
            path = default_manifest_path(0)
        elif len(found) == 1:
            path = found[0]
        else:
            known = ", ".join(p.stem for p in found) or "none"
            raise ConfigurationError(
                f"no node answers at {obj.rpc}: say which deployment the enrolment is for with "
                f"--chain-id N (manifests for chains: {known}) or --manifest FILE"
            )
    deployment = Deployment.load(path)
    if chain_id is not None and deployment.chain_id != chain_id:
        raise ConfigurationError(
            f"the manifest {path} is for chain {deployment.chain_id}, not --chain-id {chain_id}"
        )
    return deployment


# ─── Claims ─────────────────────────────────────────────────────────────────────────────────────


@claim.command("submit")
@click.argument("plan_id", type=PLAN_ID)
@click.option("--patient", required=True, type=ACCOUNT, help="The patient (address or keystore name).")
@click.option("--code", required=True, help="The billing code, as in the plan's coverage table.")
@click.option("--billed", required=True, type=AMOUNT, help="The amount billed (decimal, e.g. 150.00).")
@click.option(
    "--evidence",
    "evidence_ids",
    multiple=True,
    type=RECORD_ID,
    metavar="RECORD_ID",
    help="An EHR record of the encounter, anchored by the sender for this patient (repeat for several).",
)
@click.option(
    "--dispense",
    "dispense_file",
    type=FILE,
    default=None,
    help="For a drug service: the dispense record `medchain drug dispense` saved (a path, or its "
    "file name under $MEDCHAIN_HOME/dispenses).",
)
@click.option(
    "--plan-file",
    type=FILE,
    default=None,
    help="The plan's salted coverage file [default: $MEDCHAIN_HOME/plans/<chain id>-<plan id>.json].",
)
@click.pass_obj
def claim_submit(
    obj: Context,
    plan_id: int,
    patient: str,
    code: str,
    billed: int,
    evidence_ids: tuple[bytes, ...],
    dispense_file: Path | None,
    plan_file: Path | None,
) -> None:
    """Submit a claim to PLAN_ID (the sender is the provider). The contract checks the evidence,
    the insurer's payment consent, coverage, duplicates and the plan's rules, then pays at once
    (under the auto-pay ceiling) or pends the claim for the insurer's review.

    \b
    Example:
      medchain --from hospital-a claim submit 1 --patient alice --code 99213 --billed 150 \\
          --evidence 0x5c1e…
    A pharmacy's drug claim may bill the dispense alone: --dispense FILE and no --evidence.
    """
    suite = obj.suite
    claims = suite.claims
    plan = claims.plan(plan_id)
    coverage, _path = load_plan_file(obj, plan, plan_file)
    provider = obj.sender_address()
    dispense = read_dispense(obj, dispense_file) if dispense_file is not None else None
    if dispense is not None:
        if dispense.dispenser != provider:
            raise ConfigurationError(
                f"the dispense was made by {dispense.dispenser}, not by the sender {provider}: "
                "only the dispenser bills it"
            )
        if dispense.patient != patient:
            raise ConfigurationError(f"the dispense is to patient {dispense.patient}, not {patient}")
    if not evidence_ids and dispense is None:
        raise click.UsageError("give the encounter's record(s) with --evidence RECORD_ID, or --dispense FILE")
    service, proof = coverage.service(code, dispense.gtin if dispense else 0)
    ehr = obj.ehr(None)
    evidence = [ehr.record(record_id) for record_id in evidence_ids]
    submitted = claims.submit(
        obj.sender(), plan_id, patient, evidence, service, proof, billed, dispense.ref if dispense else None
    )
    show_claim(obj, submitted, "Claim submitted", service=code, allowed=format_amount(service.allowed_amount))


@claim.command("status")
@click.argument("claim_id", type=CLAIM_ID)
@click.pass_obj
def claim_status(obj: Context, claim_id: bytes) -> None:
    """A claim's status and figures: billed, maximum payable, approved, patient share, deductible."""
    show_claim(obj, obj.suite.claims.claim(claim_id))


@claim.command("pending")
@click.argument("plan_id", type=PLAN_ID)
@click.pass_obj
def claim_pending(obj: Context, plan_id: int) -> None:
    """Claims of PLAN_ID waiting for the insurer's review (pended or appealed)."""
    pending = obj.suite.claims.pending_claims(plan_id)
    obj.show(f"Pending claims of plan {plan_id}", pending, PENDING_COLUMNS)


@claim.command("approve")
@click.argument("claim_id", type=CLAIM_ID)
@click.option(
    "--amount",
    type=AMOUNT,
    default=None,
    help="Amount to approve (decimal) [default: the claim's maximum payable].",
)
@click.pass_obj
def claim_approve(obj: Context, claim_id: bytes, amount: int | None) -> None:
    """Approve a pended or appealed claim (the sender is the plan's insurer); it is paid at once if
    the pool holds enough, otherwise it waits as approved (see `claim pay-out`)."""
    claims = obj.suite.claims
    view = claims.claim(claim_id)
    claims.approve(obj.sender(), view, view.max_payable if amount is None else amount)
    show_claim(obj, claims.claim(claim_id), "Claim approved")


@claim.command("deny")
@click.argument("claim_id", type=CLAIM_ID)
@click.option(
    "--reason", type=REASON, required=True, help="Reason code (0-65535), as your insurer's code list."
)
@click.pass_obj
def claim_deny(obj: Context, claim_id: bytes, reason: int) -> None:
    """Deny a pended or appealed claim with a reason code (the sender is the plan's insurer)."""
    claims = obj.suite.claims
    claims.deny(obj.sender(), claims.claim(claim_id), reason)
    show_claim(obj, claims.claim(claim_id), "Claim denied", reason=reason)


@claim.command("appeal")
@click.argument("claim_id", type=CLAIM_ID)
@click.pass_obj
def claim_appeal(obj: Context, claim_id: bytes) -> None:
    """Appeal a denied claim, once (the sender is its provider): it is re-adjudicated against its
    coverage year as it stands now and waits for the insurer's review again."""
    claims = obj.suite.claims
    show_claim(obj, claims.appeal(obj.sender(), claims.claim(claim_id)), "Claim appealed")


@claim.command("pay-out")
@click.argument("claim_id", type=CLAIM_ID)
@click.pass_obj
def claim_pay_out(obj: Context, claim_id: bytes) -> None:
    """Pay an approved claim that waited for pool funds (anyone may send this)."""
    claims = obj.suite.claims
    claims.pay_out(obj.sender(), claims.claim(claim_id))
    show_claim(obj, claims.claim(claim_id), "Claim paid")


@claim.command("settle-share")
@click.argument("claim_id", type=CLAIM_ID)
@click.pass_obj
def claim_settle_share(obj: Context, claim_id: bytes) -> None:
    """The patient pays its share of a paid claim to the provider (approves the token, then pays)."""
    claims = obj.suite.claims
    paid = claims.settle_share(obj.sender(), claims.claim(claim_id))
    show_claim(obj, claims.claim(claim_id), "Patient share settled", settled=format_amount(paid))


@claim.command("report")
@click.argument("plan_id", type=PLAN_ID)
@click.pass_obj
def claim_report(obj: Context, plan_id: int) -> None:
    """Totals of PLAN_ID: claims by status, amount paid, pool left and reserved, open patient shares."""
    obj.show_one(f"Plan {plan_id}", fields_of(obj.suite.claims.report(plan_id), REPORT_FIELDS))


@claim.command("export")
@click.argument("claim_id", type=CLAIM_ID)
@click.option("-o", "--output", type=FILE, default=None, help="Write the JSON here instead of stdout.")
@click.option(
    "--plan-file",
    type=FILE,
    default=None,
    help="The plan's salted coverage file (it names the billed code) [default: the saved one].",
)
@click.option(
    "--diagnosis",
    "diagnoses",
    multiple=True,
    metavar="ICD10",
    help="An ICD-10 diagnosis code of the encounter, e.g. J18.9 (repeatable; from the provider's record).",
)
@click.pass_obj
def claim_export(
    obj: Context, claim_id: bytes, output: Path | None, plan_file: Path | None, diagnoses: tuple[str, ...]
) -> None:
    """A claim as FHIR R4 Claim and ClaimResponse resources (JSON: {"claim": …, "claimResponse": …}).

    The billing code and its code system come from the plan's coverage file; the evidence the Claim
    cites is what the contract checked, read back from the chain (docs/fhir.md)."""
    from medchain.fhir import ICD10, claim_resources

    claims = obj.suite.claims
    view = claims.claim(claim_id)
    plan = claims.plan(view.plan_id)
    coverage, path = load_plan_file(obj, plan, plan_file)
    service = coverage.by_commitment(view.record.service_commitment)
    if service is None:
        raise ConfigurationError(f"the claim's service is not in {path}")
    resources = claim_resources(
        view,
        insurer=plan.insurer,
        chain_id=obj.chain.chain_id,
        service=service,
        evidence=claims.evidence(view),
        timeline=claims.timeline(view.id),
        diagnoses=[(ICD10, code) for code in diagnoses],
    )
    text = json.dumps(resources, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    write_atomically(output, text, private=True)  # diagnoses and the patient: the owner only
    obj.note(f"wrote {output}")

"""``medchain patient``: a patient's consents (sent, or signed offline for anyone to submit),
guardians, public key, and the audit trail of who read the patient's records."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from medchain.cli._context import Context
from medchain.cli._options import ACCOUNT, ADDRESS, GRANT_ID, PURPOSE, read_json, write_atomically
from medchain.cli._render import Column
from medchain.consent import (
    Grant,
    GrantTerms,
    SignedGrant,
    actions_text,
    consent_domain,
    parse_actions,
    parse_scope,
    sign_grant_offline,
)
from medchain.ehr import AccessEvent, DeniedAccess
from medchain.errors import ChainError, ConfigurationError, MedChainError
from medchain.types import NO_END, GrantStatus, Purpose, ScopeKind

F = TypeVar("F", bound=Callable[..., Any])
DAY = 86_400


# ─── Parameter types ────────────────────────────────────────────────────────────────────────────


class ScopeParam(click.ParamType[Any]):
    """``all``, ``category:<FHIR resource type>`` or ``record:<0x record id>``."""

    name = "scope"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[ScopeKind, bytes]:
        if isinstance(value, tuple):
            return value
        try:
            kind, scope_value = parse_scope(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if kind == ScopeKind.CATEGORY:
            _check_resource_type(str(value).partition(":")[2], self, param, ctx)
        return kind, scope_value


class ActionsParam(click.ParamType[Any]):
    """A comma list of read, append, share, as the actions bitmap."""

    name = "actions"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_actions(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _check_resource_type(
    name: str, param_type: click.ParamType[Any], param: click.Parameter | None, ctx: click.Context | None
) -> None:
    """A category grant names a FHIR resource type: a typo would grant nothing, silently."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        get_fhir_model_class(name)
    except (KeyError, ValueError):
        param_type.fail(
            f"{name!r} is not a FHIR R4 resource type (for example Observation, Condition, "
            "MedicationRequest; the case matters)",
            param,
            ctx,
        )


SCOPE = ScopeParam()
ACTIONS = ActionsParam()


def grant_options(fn: F) -> F:
    """The terms of a grant, shared by ``grant`` and ``sign-grant``."""
    options = [
        click.option(
            "--scope",
            type=SCOPE,
            default="all",
            show_default=True,
            help="What the grant covers: all, category:<FHIR resource type> (e.g. category:Observation) "
            "or record:<0x record id>.",
        ),
        click.option(
            "--actions",
            type=ACTIONS,
            default="read",
            show_default=True,
            help="What the grantee may do: a comma list of read, append, share. A hospital that writes "
            "your records needs append.",
        ),
        click.option(
            "--purpose",
            "purposes",
            type=PURPOSE,
            multiple=True,
            default=("TREAT",),
            show_default=True,
            help="Purpose of use (repeat for several): TREAT, HPAYMT (payment), HRESCH (research), "
            "ETREAT (emergency).",
        ),
        click.option(
            "--days",
            type=click.IntRange(min=1),
            default=None,
            help="Valid for this many days [default: no end].",
        ),
        click.option(
            "--patient",
            "patient_account",
            type=ACCOUNT,
            default=None,
            help="Whose data, when a guardian acts for its ward [default: the sender].",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


# ─── Rendering ──────────────────────────────────────────────────────────────────────────────────


def when(timestamp: int) -> str:
    """A chain timestamp as people read it (UTC, ISO 8601)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def until(timestamp: int) -> str:
    return "no end" if timestamp >= NO_END else when(timestamp)


def purposes_text(mask: int) -> str:
    return ",".join(p.name for p in Purpose.from_mask(mask))


def terms_fields(terms: GrantTerms) -> dict[str, Any]:
    return {
        "patient": terms.patient,
        "grantee": terms.grantee,
        "scope": terms.scope_text,
        "actions": actions_text(terms.actions),
        "purposes": purposes_text(terms.purposes),
        "not_after": until(terms.not_after),
    }


GRANT_COLUMNS: list[Column[Grant]] = [
    Column("grant", lambda g: g.id, key="id", short=True),
    Column("grantee", lambda g: g.terms.grantee),
    Column("scope", lambda g: g.terms.scope_text),
    Column("actions", lambda g: actions_text(g.terms.actions)),
    Column("purposes", lambda g: purposes_text(g.terms.purposes)),
    Column("status", lambda g: g.status),
    Column("until", lambda g: until(g.terms.not_after), key="not_after"),
    Column("via", lambda g: "signature" if g.via_signature else "transaction"),
    Column("actor", lambda g: g.actor),
]

ACCESS_COLUMNS: list[Column[AccessEvent | DeniedAccess]] = [
    Column("time", lambda e: when(e.timestamp)),
    Column("record", lambda e: e.record_id, short=True),
    Column("reader", lambda e: e.accessor),
    Column("purpose", lambda e: e.purpose.name),
    Column("outcome", lambda e: "read" if isinstance(e, AccessEvent) else "refused"),
    Column("break-glass", lambda e: isinstance(e, AccessEvent) and e.break_glass),
    Column("authorization", lambda e: e.authorization if isinstance(e, AccessEvent) else None, short=True),
    Column("block", lambda e: e.block),
    Column("tx", lambda e: e.tx, short=True),
]


# ─── Commands ───────────────────────────────────────────────────────────────────────────────────


@click.group()
def patient() -> None:
    """A patient's consents, guardians and access history.

    \b
    The patient (or a guardian) gives consent with `grant` (a transaction the patient pays for),
    or signs it offline with `sign-grant` and lets the hospital send it with `submit-grant`.
    """


@patient.command("grant")
@click.argument("grantee", type=ACCOUNT)
@grant_options
@click.pass_obj
def patient_grant(
    obj: Context,
    grantee: str,
    scope: tuple[ScopeKind, bytes],
    actions: int,
    purposes: tuple[Purpose, ...],
    days: int | None,
    patient_account: str | None,
) -> None:
    """Grant GRANTEE access to a patient's data (a transaction).

    GRANTEE is an address or an account name. The sender is the patient, or one of its
    guardians with --patient; it pays the gas.

    \b
    Examples:
      medchain --from alice patient grant 0xHospital… --actions read,append
      medchain --from alice patient grant hospital-b --scope category:Observation --days 30
    """
    consent = obj.suite.consent
    subject = patient_account or obj.sender_address()
    not_after = consent.now() + days * DAY if days else NO_END
    terms = GrantTerms(subject, grantee, scope[0], scope[1], actions, Purpose.mask(*purposes), 0, not_after)
    grant_id = consent.grant(obj.sender(), terms)
    obj.show_one("Consent granted", {"grant": grant_id, **terms_fields(terms)})


@patient.command("sign-grant")
@click.argument("grantee", type=ACCOUNT)
@grant_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The file to write: the terms and the signature, as JSON.",
)
@click.option(
    "--nonce",
    type=click.IntRange(min=0),
    default=None,
    help="The patient's current ConsentManager nonce [default: read from the node if it answers; "
    "required offline].",
)
@click.option(
    "--deadline-days",
    type=click.IntRange(1, 365),
    default=7,
    show_default=True,
    help="Days (by this computer's clock) during which the signature may be submitted.",
)
@click.option(
    "--chain-id",
    type=click.IntRange(min=1),
    default=None,
    help="The chain the grant is for [default: from the deployment manifest].",
)
@click.option(
    "--consent-manager",
    type=ADDRESS,
    default=None,
    help="The ConsentManager address [default: from the deployment manifest].",
)
@click.pass_obj
def patient_sign_grant(
    obj: Context,
    grantee: str,
    scope: tuple[ScopeKind, bytes],
    actions: int,
    purposes: tuple[Purpose, ...],
    days: int | None,
    patient_account: str | None,
    output: Path,
    nonce: int | None,
    deadline_days: int,
    chain_id: int | None,
    consent_manager: str | None,
) -> None:
    """Sign a grant offline into a file that anyone may submit.

    The grant to GRANTEE is signed as EIP-712 typed data and written with its terms to -o FILE:
    no transaction, no gas, no node needed. Anyone (often the grantee) then sends it with
    `medchain patient submit-grant FILE`.

    The sender's key signs (a keystore account: --from NAME). The grant is bound to one chain and
    ConsentManager, taken from the deployment manifest (--manifest, or the one under
    $MEDCHAIN_HOME/deployments) or given with --chain-id and --consent-manager. Offline, give
    --nonce too: the patient's current nonce (0 before its first signed request).

    \b
    Examples:
      medchain --from alice patient sign-grant hospital-b --scope category:Observation -o consent.json
      medchain --from alice patient sign-grant 0xHosp… --chain-id 31337 \\
          --consent-manager 0xCM… --nonce 0 -o consent.json
    """
    signer = obj.local_key("signing a grant")
    subject = patient_account or signer.address
    domain = _consent_domain(obj, chain_id, consent_manager)
    if nonce is None:
        nonce = _nonce_from_node(obj, domain, subject)
    now = int(time.time())
    not_after = now + days * DAY if days else NO_END
    terms = GrantTerms(subject, grantee, scope[0], scope[1], actions, Purpose.mask(*purposes), 0, not_after)
    request = sign_grant_offline(signer, terms, domain, nonce, now + deadline_days * DAY)
    write_atomically(output, SignedGrant(terms, domain, request).to_json() + "\n")
    obj.show_one(
        f"Grant signed, written to {output}",
        {
            "file": output,
            **terms_fields(terms),
            "signer": request.signer,
            "nonce": request.nonce,
            "deadline": when(request.deadline),
            "chain_id": domain["chainId"],
            "consent_manager": domain["verifyingContract"],
        },
    )


@patient.command("submit-grant")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def patient_submit_grant(obj: Context, file: Path) -> None:
    """Send a signed grant FILE; the sender pays the gas.

    FILE comes from `medchain patient sign-grant`; the sender may be any account (often the
    grantee hospital).

    The file is checked first: signed for this chain and ConsentManager, by the key it names,
    not expired, and carrying the patient's current nonce.

    \b
    Example:
      medchain --from hospital-b patient submit-grant consent.json
    """
    signed = SignedGrant.from_json(read_json(file, "signed grant"), str(file))
    grant_id = obj.suite.consent.submit(obj.sender(), signed)
    obj.show_one(
        "Signed consent submitted",
        {"grant": grant_id, **terms_fields(signed.terms), "signer": signed.request.signer},
    )


@patient.command("revoke")
@click.argument("grant_id", type=GRANT_ID)
@click.pass_obj
def patient_revoke(obj: Context, grant_id: bytes) -> None:
    """Revoke a consent (as the patient or a guardian).

    GRANT_ID is listed by `medchain patient grants`.
    """
    consent = obj.suite.consent
    if consent.status(grant_id) == GrantStatus.NONE:
        raise MedChainError(f"no grant 0x{grant_id.hex()} on this deployment")
    consent.revoke(obj.sender(), grant_id)
    obj.show_one("Consent revoked", {"revoked": grant_id, "status": consent.status(grant_id)})


@patient.command("grants")
@click.argument("patient_account", metavar="[PATIENT]", type=ACCOUNT, required=False)
@click.pass_obj
def patient_grants(obj: Context, patient_account: str | None) -> None:
    """List the consents a patient gave, with their status.

    PATIENT is an address or account name (default: the sender). The status is active, revoked,
    expired, pending (not yet valid) or lapsed (the guardian who gave it left office).
    """
    subject = patient_account or obj.sender_address()
    obj.show(f"Consents of {subject}", obj.suite.consent.grants_of(subject), GRANT_COLUMNS)


@patient.group("guardian")
def patient_guardian() -> None:
    """Appoint or remove the sender's guardians.

    A guardian may grant and revoke consent for the patient (a minor's parent, a carer).
    """


@patient_guardian.command("add")
@click.argument("guardian", type=ACCOUNT)
@click.pass_obj
def patient_guardian_add(obj: Context, guardian: str) -> None:
    """Appoint GUARDIAN for the sender (the patient).

    Appointing a former guardian again voids the requests the patient signed before.
    """
    obj.suite.consent.add_guardian(obj.sender(), guardian)
    _show_guardian(obj, "Guardian added", guardian)


@patient_guardian.command("remove")
@click.argument("guardian", type=ACCOUNT)
@click.pass_obj
def patient_guardian_remove(obj: Context, guardian: str) -> None:
    """Remove GUARDIAN; the grants it gave stop permitting access."""
    obj.suite.consent.remove_guardian(obj.sender(), guardian)
    _show_guardian(obj, "Guardian removed", guardian)


def _show_guardian(obj: Context, title: str, guardian: str) -> None:
    subject = obj.sender_address()
    in_office = obj.suite.consent.is_guardian(subject, guardian)
    obj.show_one(title, {"patient": subject, "guardian": guardian, "is_guardian": in_office})


@patient.command("history")
@click.argument("patient_account", metavar="[PATIENT]", type=ACCOUNT, required=False)
@click.option("--fhir", is_flag=True, help="Print the trail as FHIR R4 AuditEvents (JSON).")
@click.pass_obj
def patient_history(obj: Context, patient_account: str | None, fhir: bool) -> None:
    """Who read a patient's records, or tried to, when and why (audit trail).

    For PATIENT (default: the sender): every audited access on chain, with the reader, the
    purpose, and the consent or break-glass session that allowed it, and every refused attempt
    recorded on chain (outcome "refused"; nothing was released).

    Emergency sessions opened for the patient are listed by `medchain ehr break-glass list`.
    """
    subject = patient_account or obj.sender_address()
    ehr = obj.ehr(None)
    reads = ehr.access_history(patient=subject)
    refused = ehr.denied_attempts(patient=subject)
    trail: list[AccessEvent | DeniedAccess] = sorted([*reads, *refused], key=lambda e: (e.block, e.tx))
    if fhir:
        import json

        from medchain.fhir import access_audit_events, denied_audit_events

        chain_id, observer = ehr.chain.chain_id, ehr.address
        resources = access_audit_events(reads, chain_id, observer) + denied_audit_events(
            refused, chain_id, observer
        )
        resources.sort(key=lambda r: str(r["recorded"]))
        click.echo(json.dumps(resources, indent=2))
        return
    obj.show(f"Access history of {subject}", trail, ACCESS_COLUMNS)


@patient.command("public-key")
@click.pass_obj
def patient_public_key(obj: Context) -> None:
    """Print the sender's public key, to give to hospitals.

    With it (`medchain ehr anchor --patient-key`) the records a hospital anchors open with your
    own key too.
    """
    from medchain.crypto import ReaderKey

    key = ReaderKey.from_private_key(bytes(obj.local_key("showing the public key").key))
    obj.show_one("Public key", {"address": key.address, "public_key": key.public_key})


# ─── Helpers ────────────────────────────────────────────────────────────────────────────────────


def _consent_domain(obj: Context, chain_id: int | None, consent_manager: str | None) -> dict[str, Any]:
    """The EIP-712 domain to sign for, with no node: from the options, else from the manifest."""
    if chain_id is not None and consent_manager is not None:
        return consent_domain(chain_id, consent_manager)
    from medchain.manifest import Deployment

    deployment = Deployment.load(_offline_manifest_path(obj, chain_id))
    if chain_id is not None and chain_id != deployment.chain_id:
        raise ConfigurationError(
            f"--chain-id {chain_id} but the manifest is for chain {deployment.chain_id}; "
            "give --manifest for the right deployment"
        )
    return consent_domain(deployment.chain_id, consent_manager or deployment.address_of("ConsentManager"))


def _offline_manifest_path(obj: Context, chain_id: int | None) -> Path:
    """The manifest without asking the node its chain id, when that can be told."""
    from medchain import settings
    from medchain.manifest import default_manifest_path

    if obj.manifest_option is not None or settings.MANIFEST.get() or chain_id is not None:
        return obj.manifest_path(chain_id or 0)
    try:
        return obj.manifest_path(obj.chain.chain_id)
    except ChainError:
        pass
    folder = default_manifest_path(0).parent
    found = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if len(found) == 1:
        return found[0]
    known = ", ".join(p.stem for p in found) or "none"
    raise ConfigurationError(
        f"no node answers at {obj.rpc} and {folder} holds manifests for chains: {known}; say which "
        "deployment: --chain-id N (with --consent-manager, or a manifest for it), or --manifest FILE"
    )


def _nonce_from_node(obj: Context, domain: dict[str, Any], subject: str) -> int:
    """The patient's nonce from the node, if it answers and runs the domain's chain."""
    from medchain.consent import ConsentClient

    hint = "give --nonce (the patient's current nonce; 0 before its first signed request)"
    try:
        chain = obj.chain
    except ChainError:
        raise ConfigurationError(
            f"signing offline: no node answers at {obj.rpc} to read the nonce; {hint}"
        ) from None
    if chain.chain_id != domain["chainId"]:
        raise ConfigurationError(
            f"the node at {obj.rpc} is chain {chain.chain_id}, the grant is for chain "
            f"{domain['chainId']}; {hint}"
        )
    address = domain["verifyingContract"]
    if not bytes(chain.w3.eth.get_code(address)):
        raise ConfigurationError(f"no ConsentManager at {address} on chain {chain.chain_id}; {hint}")
    return ConsentClient(chain, chain.contract("ConsentManager", address)).nonce(subject)


@patient.command("sign-enrolment")
@click.argument("plan_id", type=click.IntRange(1, 2**32 - 1))
@click.option(
    "--start",
    default="now",
    show_default=True,
    metavar="TIME",
    help="When coverage starts: now, YYYY-MM-DD, YYYY-MM-DDTHH:MM (UTC), Unix seconds, or +30d / -1d.",
)
@click.option(
    "--end",
    required=True,
    metavar="TIME",
    help="When coverage ends (same forms as --start, e.g. +365d or 2027-01-01).",
)
@click.option(
    "--valid-for",
    "valid_days",
    type=click.IntRange(1, 365),
    default=7,
    show_default=True,
    help="Days the insurer has to submit the signature.",
)
@click.option(
    "--nonce",
    type=click.IntRange(min=0),
    default=None,
    help="Your enrolment nonce [default: read from the chain]; needed when no node answers.",
)
@click.option(
    "--chain-id",
    type=click.IntRange(min=1),
    default=None,
    help="Offline: which deployment's manifest to sign for, when $MEDCHAIN_HOME has several.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the signature file for the insurer.",
)
@click.pass_context
def patient_sign_enrolment(
    ctx: click.Context,
    plan_id: int,
    start: str,
    end: str,
    valid_days: int,
    nonce: int | None,
    chain_id: int | None,
    output: str,
) -> None:
    """Sign your agreement to join insurance plan PLAN_ID for a coverage period (an EIP-712 Enrol
    message) and write it to a file the insurer submits with `medchain claim enrol FILE`. No transaction,
    no gas: the sender must be a local key (--from a keystore account).

    Works offline: the domain comes from the deployment manifest and the nonce from --nonce when
    no node answers (otherwise both are read from the chain).

    \b
    Example:
      medchain --from alice patient sign-enrolment 1 --end +365d -o alice-plan1.json
    """
    from medchain.cli.claim import sign_enrolment

    sign_enrolment(ctx.obj, plan_id, start, end, valid_days, nonce, chain_id, output)

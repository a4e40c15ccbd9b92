"""The `medchain` command: one entry point, a sub-command group per role."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table

from medchain import demo as demo_module
from medchain.artifacts import Artifacts
from medchain.chain import Chain, Sender, connect
from medchain.consent import GrantTerms
from medchain.deploy import SuiteConfig, deploy_suite
from medchain.drug import DrugClient, GS1Error
from medchain.ehr import KeyVault, RecordNotFoundError
from medchain.epcis import epcis_document
from medchain.errors import ConfigurationError, MedChainError
from medchain.fhir import access_audit_events
from medchain.gateway import GatewayClient, GatewayService, GatewaySettings, ReleaseLog, verify_log
from medchain.gateway.app import serve
from medchain.localchain import CHAINS, LocalChain
from medchain.manifest import default_manifest_path
from medchain.store import LocalFolderStore
from medchain.suite import Suite
from medchain.types import NO_END, Actions, GovernanceAction, Kind, Purpose

KEY_ENV = "MEDCHAIN_PRIVATE_KEY"
GATEWAY_ENV = "MEDCHAIN_GATEWAY"
DATA_DIR = Path(os.environ.get("MEDCHAIN_HOME", ".medchain"))
"""Where the CLI keeps its store, vault and logs unless told otherwise ($MEDCHAIN_HOME)."""
ACTION_NAMES = ((Actions.READ, "read"), (Actions.APPEND, "append"), (Actions.SHARE, "share"))
console = Console()


class Context:
    """Options shared by every sub-command: node, manifest, sender, output format."""

    def __init__(self, rpc: str, manifest: Path | None, sender: str | None, as_json: bool) -> None:
        self.rpc = rpc
        self.manifest = manifest
        self.sender_option = sender
        self.as_json = as_json

    def chain(self) -> Chain:
        return Chain(connect(self.rpc))

    def suite(self) -> Suite:
        chain = self.chain()
        path = self.manifest or default_manifest_path(chain.chain_id)
        return Suite.from_manifest(chain.w3, path)

    def sender(self) -> Sender:
        """The account that signs: a key from $MEDCHAIN_PRIVATE_KEY, else --from (unlocked on the node)."""
        key = os.environ.get(KEY_ENV)
        if key:
            try:
                account: LocalAccount = Account.from_key(key)
                return account
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(f"${KEY_ENV} is not a valid private key ({exc})") from None
        if self.sender_option:
            from web3 import Web3

            if not Web3.is_address(self.sender_option):
                raise ConfigurationError(f"--from {self.sender_option!r} is not an Ethereum address")
            return Web3.to_checksum_address(self.sender_option)
        raise ConfigurationError(
            f"say who signs: set ${KEY_ENV}, or pass --from ADDRESS for an account the node unlocks"
        )

    def local_key(self, why: str) -> LocalAccount:
        """The sender as a local key: needed to sign challenges and decrypt, not only to send."""
        sender = self.sender()
        if not isinstance(sender, LocalAccount):
            raise ConfigurationError(f"{why} needs the private key itself: set ${KEY_ENV}")
        return sender

    def emit(self, data: Any, table: Table | None = None) -> None:
        if self.as_json or table is None:
            click.echo(json.dumps(data, indent=2, default=_json_default))
        else:
            console.print(table)


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Kind | GovernanceAction):
        return value.name.lower()
    return str(value)


class AddressParam(click.ParamType[str]):
    """An Ethereum address (any case), returned checksummed; anything else is a one-line usage error."""

    name = "address"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from web3 import Web3

        text = str(value).strip()
        if not Web3.is_address(text):
            self.fail(f"{text!r} is not an Ethereum address (0x followed by 40 hex digits)", param, ctx)
        return str(Web3.to_checksum_address(text))


ADDRESS = AddressParam()
RATING = click.IntRange(1, 100)
REASON = click.IntRange(0, 65535)


def _parse_digest(text: str) -> bytes:
    raw = text.removeprefix("0x")
    try:
        digest = bytes.fromhex(raw)
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise click.BadParameter(f"{text!r} is not a 32-byte hex digest (64 hex digits)")
    return digest


@click.group()
@click.option(
    "--rpc",
    default=lambda: os.environ.get("MEDCHAIN_RPC", "http://127.0.0.1:8545"),
    show_default="$MEDCHAIN_RPC or http://127.0.0.1:8545",
    help="JSON-RPC URL of the node.",
)
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    default=None,
    help="Deployment manifest (default deployments/<chain id>.json).",
)
@click.option(
    "--from", "sender", default=None, help=f"Sender address unlocked on the node (else ${KEY_ENV})."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def cli(ctx: click.Context, rpc: str, manifest: Path | None, sender: str | None, as_json: bool) -> None:
    """MedChain: consent, EHR index, drug provenance and claims on any EVM chain."""
    ctx.obj = Context(rpc, manifest, sender, as_json)


@cli.command()
@click.option(
    "--chain",
    "chain_kind",
    type=click.Choice(CHAINS),
    default="anvil",
    show_default=True,
    help="Local chain to start for the demo.",
)
@click.option("--use-rpc", is_flag=True, help="Use the node at --rpc instead of starting a local chain.")
@click.pass_obj
def demo(obj: Context, chain_kind: str, use_rpc: bool) -> None:
    """Start a local chain, deploy the suite and run the end-to-end scenario."""
    manifest = obj.manifest or DATA_DIR / "demo-manifest.json"
    store = DATA_DIR / "store"
    if use_rpc:
        demo_module.run(obj.chain(), manifest, console, store)
        return
    with LocalChain(chain_kind) as w3:
        console.print(f"started {chain_kind} on {w3.provider.endpoint_uri}")  # type: ignore[attr-defined]
        demo_module.run(Chain(w3, Artifacts()), manifest, console, store)
    console.print("[green]demo finished[/green]; the local chain was stopped")


@cli.command()
@click.option(
    "--licence", "licence_hex", required=True, help="SHA-256 digest (hex) of the founder's licence."
)
@click.option("--rating", type=RATING, default=90, show_default=True, help="Founder's credit rating (1-100).")
@click.option("--quorum-bps", default=0, help="Quorum in basis points (default two thirds).")
@click.option(
    "--voting-period", default=3 * 24 * 3600, show_default=True, help="Seconds a proposal stays open."
)
@click.option(
    "--settlement-token", default=None, help="Existing stablecoin address (required off local chains)."
)
@click.option("--keep-bootstrap", is_flag=True, help="Leave bootstrap open to admit founding members later.")
@click.pass_obj
def deploy(
    obj: Context,
    licence_hex: str,
    rating: int,
    quorum_bps: int,
    voting_period: int,
    settlement_token: str | None,
    keep_bootstrap: bool,
) -> None:
    """Deploy the suite; the sender becomes the founding regulator."""
    chain = obj.chain()
    config = SuiteConfig(
        founder_licence=_parse_digest(licence_hex),
        founder_rating=rating,
        quorum_bps=quorum_bps,
        voting_period=voting_period,
        settlement_token=settlement_token,
        end_bootstrap=not keep_bootstrap,
    )
    path = obj.manifest or default_manifest_path(chain.chain_id)
    suite = deploy_suite(chain, obj.sender(), config, path)
    data = {name: rec.address for name, rec in suite.deployment.contracts.items()}
    table = Table(title=f"Deployed on chain {suite.deployment.chain_id} (manifest {path})")
    table.add_column("contract")
    table.add_column("address")
    for name, address in data.items():
        table.add_row(name, address)
    obj.emit({"manifest": str(path), "contracts": data}, table)


@cli.group()
def institution() -> None:
    """Consortium membership and governance."""


@institution.command("list")
@click.pass_obj
def institution_list(obj: Context) -> None:
    """List every member with kind, status, rating and weight."""
    members = obj.suite().registry.members()
    table = Table(title="Consortium members")
    for column in ("address", "kind", "status", "rating", "weight"):
        table.add_column(column)
    for m in members:
        table.add_row(m.address, m.kind.label, m.status.name.lower(), str(m.rating), str(m.weight))
    obj.emit([{**asdict(m), "kind": m.kind.label, "status": m.status.name.lower()} for m in members], table)


@institution.command("admit")
@click.argument("account", type=ADDRESS)
@click.option(
    "--kind",
    required=True,
    help="hospital, community-clinic, specialist-hospital, laboratory, pharmacy, "
    "manufacturer, distributor, insurer or regulator.",
)
@click.option("--rating", required=True, type=RATING, help="Credit rating 1-100.")
@click.option("--licence", "licence_hex", required=True, help="SHA-256 digest (hex) of the licence.")
@click.pass_obj
def institution_admit(obj: Context, account: str, kind: str, rating: int, licence_hex: str) -> None:
    """Propose admitting ACCOUNT (the sender's vote counts as yes)."""
    try:
        parsed = Kind.parse(kind)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--kind") from None
    suite = obj.suite()
    pid = suite.registry.propose_admission(obj.sender(), account, parsed, rating, _parse_digest(licence_hex))
    _show_proposal(obj, suite, pid)


@institution.command("propose")
@click.argument("action", type=click.Choice(["suspend", "reinstate", "remove", "change-rating"]))
@click.argument("member", type=ADDRESS)
@click.option(
    "--rating", type=click.IntRange(0, 100), default=0, help="New rating (1-100) for change-rating."
)
@click.pass_obj
def institution_propose(obj: Context, action: str, member: str, rating: int) -> None:
    """Propose to suspend, reinstate, remove or re-rate MEMBER."""
    suite = obj.suite()
    pid = suite.registry.propose_change(
        obj.sender(), member, GovernanceAction[action.upper().replace("-", "_")], rating
    )
    _show_proposal(obj, suite, pid)


@institution.command("vote")
@click.argument("proposal_id", type=int)
@click.argument("choice", type=click.Choice(["yes", "no"]))
@click.pass_obj
def institution_vote(obj: Context, proposal_id: int, choice: str) -> None:
    """Vote yes or no on PROPOSAL_ID with the sender's credit weight."""
    suite = obj.suite()
    suite.registry.vote(obj.sender(), proposal_id, choice == "yes")
    _show_proposal(obj, suite, proposal_id)


@cli.group()
def patient() -> None:
    """A patient's consents."""


@patient.command("grants")
@click.argument("address", type=ADDRESS)
@click.pass_obj
def patient_grants(obj: Context, address: str) -> None:
    """List the consents ADDRESS has given (from chain events) with their current status."""
    grants = obj.suite().consent.grants_of(address)
    table = Table(title=f"Consents of {address}")
    for column in ("grant", "grantee", "scope", "actions", "purposes", "status", "via"):
        table.add_column(column)
    rows = []
    for g in grants:
        t = g.terms
        scope = t.scope_kind.name.lower() + (
            "" if t.scope_kind.name == "ALL" else f":{t.scope_value.hex()[:12]}"
        )
        purposes = ",".join(p.name for p in Purpose.from_mask(t.purposes))
        actions = ",".join(
            str(a.name).lower() for a in (Actions.READ, Actions.APPEND, Actions.SHARE) if t.actions & a
        )
        via = "signature" if g.via_signature else "transaction"
        table.add_row("0x" + g.id.hex()[:12], t.grantee, scope, actions, purposes, g.status.name.lower(), via)
        rows.append(
            {
                "id": "0x" + g.id.hex(),
                "grantee": t.grantee,
                "scope": scope,
                "actions": actions,
                "purposes": purposes,
                "status": g.status.name.lower(),
                "actor": g.actor,
            }
        )
    obj.emit(rows, table)


def _scope(
    text: str, patient_address: str, grantee: str, actions: int, purposes: list[Purpose], until: int
) -> GrantTerms:
    kind, _, value = text.partition(":")
    if kind == "all" and not value:
        return GrantTerms.for_all(patient_address, grantee, actions, *purposes, not_after=until)
    if kind == "category" and value:
        try:
            return GrantTerms.for_category(
                patient_address, grantee, value, actions, *purposes, not_after=until
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--scope") from None
    if kind == "record" and value:
        return GrantTerms.for_record(
            patient_address, grantee, _parse_digest(value), actions, *purposes, not_after=until
        )
    raise click.BadParameter(
        f"{text!r}: use all, category:<FHIR type> or record:<0x record id>", param_hint="--scope"
    )


@patient.command("grant")
@click.argument("grantee", type=ADDRESS)
@click.option(
    "--scope",
    "scope_text",
    default="all",
    show_default=True,
    help="all, category:<FHIR resource type> or record:<0x record id>.",
)
@click.option("--actions", default="read", show_default=True, help="Comma list of read, append, share.")
@click.option(
    "--purpose",
    "purpose_texts",
    multiple=True,
    default=("TREAT",),
    show_default=True,
    help="PurposeOfUse code: TREAT, HPAYMT, HRESCH or ETREAT (repeatable).",
)
@click.option("--days", type=int, default=None, help="Valid for this many days (default: no end).")
@click.pass_obj
def patient_grant(
    obj: Context,
    grantee: str,
    scope_text: str,
    actions: str,
    purpose_texts: tuple[str, ...],
    days: int | None,
) -> None:
    """Grant GRANTEE access to the sender's data (the sender is the patient or its guardian)."""
    names = {name: flag for flag, name in ACTION_NAMES}
    try:
        action_bits = sum(int(names[a.strip()]) for a in actions.split(","))
        purposes = [Purpose.parse(p) for p in purpose_texts]
    except KeyError as exc:
        raise click.BadParameter(
            f"unknown action {exc}; use read, append, share", param_hint="--actions"
        ) from None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--purpose") from None
    suite = obj.suite()
    sender = obj.sender()
    patient_address = sender if isinstance(sender, str) else sender.address
    now = int(suite.chain.w3.eth.get_block("latest")["timestamp"])
    until = now + days * 86400 if days else NO_END
    terms = _scope(scope_text, patient_address, grantee, action_bits, purposes, until)
    grant_id = suite.consent.grant(sender, terms)
    obj.emit({"grant": "0x" + grant_id.hex()}, _one_row("Consent granted", "grant", "0x" + grant_id.hex()))


@patient.command("revoke")
@click.argument("grant_id")
@click.pass_obj
def patient_revoke(obj: Context, grant_id: str) -> None:
    """Revoke GRANT_ID (the sender is the patient or its guardian)."""
    suite = obj.suite()
    suite.consent.revoke(obj.sender(), _parse_digest(grant_id))
    obj.emit({"revoked": grant_id}, _one_row("Consent revoked", "grant", grant_id))


@cli.group()
def ehr() -> None:
    """Health record index: records and their access history."""


@ehr.command("records")
@click.argument("patient_address", type=ADDRESS)
@click.pass_obj
def ehr_records(obj: Context, patient_address: str) -> None:
    """List the records anchored for PATIENT_ADDRESS."""
    client = obj.suite().ehr(LocalFolderStore(DATA_DIR / "store"))
    table = Table(title=f"Records of {patient_address}")
    rows = []
    for column in ("record", "category", "custodian", "cid", "block"):
        table.add_column(column)
    for r in client.records_of(patient_address):
        table.add_row("0x" + r.id.hex()[:12], r.header.category_text, r.header.custodian, r.cid, str(r.block))
        rows.append(
            {
                "id": "0x" + r.id.hex(),
                "category": r.header.category_text,
                "custodian": r.header.custodian,
                "cid": r.cid,
                "fingerprint": "0x" + r.header.fingerprint.hex(),
                "block": r.block,
            }
        )
    obj.emit(rows, table)


@ehr.command("history")
@click.argument("patient_address", type=ADDRESS)
@click.option("--fhir", is_flag=True, help="Print the history as FHIR AuditEvents (JSON).")
@click.pass_obj
def ehr_history(obj: Context, patient_address: str, fhir: bool) -> None:
    """Who read PATIENT_ADDRESS's records, when, for what purpose (the audit trail)."""
    client = obj.suite().ehr(LocalFolderStore(DATA_DIR / "store"))
    if fhir:
        click.echo(
            json.dumps(
                access_audit_events(
                    client.access_history(patient=patient_address), client.chain.chain_id, client.address
                ),
                indent=2,
            )
        )
        return
    events = client.access_history(patient=patient_address)
    table = Table(title=f"Access history of {patient_address}")
    for column in ("block", "record", "accessor", "purpose", "break-glass"):
        table.add_column(column)
    for e in events:
        table.add_row(
            str(e.block),
            "0x" + e.record_id.hex()[:12],
            e.accessor,
            e.purpose.name,
            "yes" if e.break_glass else "",
        )
    obj.emit([{**asdict(e), "purpose": e.purpose.name} for e in events], table)


@ehr.command("read")
@click.argument("record_id")
@click.option(
    "--gateway",
    "gateway_url",
    default=lambda: os.environ.get(GATEWAY_ENV),
    required=True,
    help=f"The custodian's gateway URL (default ${GATEWAY_ENV}).",
)
@click.option(
    "--purpose",
    "purpose_text",
    default="TREAT",
    show_default=True,
    help="PurposeOfUse of the audited access: TREAT, HPAYMT, HRESCH or ETREAT.",
)
@click.option("--no-access", is_flag=True, help="Skip the on-chain access call (a recent one exists).")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the FHIR JSON here."
)
@click.pass_obj
def ehr_read(
    obj: Context, record_id: str, gateway_url: str, purpose_text: str, no_access: bool, output: Path | None
) -> None:
    """Read RECORD_ID: audited access on chain, then the custodian's gateway, decrypted and verified.

    The sender ($MEDCHAIN_PRIVATE_KEY) signs the gateway's challenge and decrypts; patients and
    custodians need no access call.
    """
    try:
        purpose = Purpose.parse(purpose_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--purpose") from None
    rid = _parse_digest(record_id)
    reader = obj.local_key("reading a record")
    suite = obj.suite()
    client = suite.ehr(LocalFolderStore(DATA_DIR / "store"))
    if not no_access:
        try:
            record = client.record(rid)
        except RecordNotFoundError:
            record = None  # batched: the patient or custodian reads it; others pass --no-access
        if record is not None and reader.address not in (record.header.patient, record.header.custodian):
            client.access(reader, record, purpose)
    gateway = GatewayClient(gateway_url)
    try:
        resource = gateway.read(client, rid, reader)
    finally:
        gateway.close()
    text = json.dumps(resource, indent=2)
    if output is None:
        click.echo(text)
        return
    try:
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(output)
    except OSError as exc:
        raise ConfigurationError(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"record {record_id} written to {output} (verified against its anchored commitment)", err=True)


@cli.group()
def gateway() -> None:
    """A custodian's gateway: releases record keys to readers the chain permits."""


@gateway.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8610, show_default=True, help="TCP port.")
@click.option(
    "--public-url", default=None, help="URL readers use (signed into challenges; default from host:port)."
)
@click.option(
    "--vault",
    "vault_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: DATA_DIR / "vault.sqlite",
    show_default="$MEDCHAIN_HOME/vault.sqlite",
    help="The custodian's key vault.",
)
@click.option(
    "--store",
    "store_path",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: DATA_DIR / "store",
    show_default="$MEDCHAIN_HOME/store",
    help="Folder of ciphertexts.",
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: DATA_DIR / "gateway-releases.jsonl",
    show_default="$MEDCHAIN_HOME/gateway-releases.jsonl",
    help="Append-only log of releases and refusals.",
)
@click.option(
    "--access-window",
    type=click.IntRange(1),
    default=3600,
    show_default=True,
    help="Seconds an access event counts.",
)
@click.option(
    "--rate-per-client",
    type=click.FloatRange(min=0.1),
    default=GatewaySettings.rate_per_client,
    show_default=True,
    help="Requests per second per client address (burst twice that).",
)
@click.option(
    "--rate-per-reader",
    type=click.FloatRange(min=0.1),
    default=GatewaySettings.rate_per_reader,
    show_default=True,
    help="Releases per second per authenticated reader (burst twice that).",
)
@click.pass_obj
def gateway_serve(
    obj: Context,
    host: str,
    port: int,
    public_url: str | None,
    vault_path: Path,
    store_path: Path,
    log_path: Path,
    access_window: int,
    rate_per_client: float,
    rate_per_reader: float,
) -> None:
    """Serve this custodian's records over HTTP (the custodian's key is $MEDCHAIN_PRIVATE_KEY)."""
    custodian = obj.local_key("the gateway")
    suite = obj.suite()
    url = (public_url or f"http://{host}:{port}").rstrip("/")
    service = GatewayService(
        suite,
        LocalFolderStore(store_path),
        KeyVault(vault_path),
        bytes(custodian.key),
        GatewaySettings(
            public_url=url,
            access_window=access_window,
            rate_per_client=rate_per_client,
            burst_per_client=max(1, round(2 * rate_per_client)),
            rate_per_reader=rate_per_reader,
            burst_per_reader=max(1, round(2 * rate_per_reader)),
        ),
        log=ReleaseLog(log_path, signing_key=bytes(custodian.key)),
    )
    console.print(
        f"gateway of custodian {service.custodian} on chain {service.chain_id} serving at {url} "
        f"(vault {vault_path}, log {log_path}); Ctrl-C stops it",
        highlight=False,
    )
    serve(service, host, port)


@gateway.command("verify-log")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--custodian",
    type=ADDRESS,
    default=None,
    help="The custodian whose gateway wrote the log: every line must carry its signature.",
)
def gateway_verify_log(path: Path, custodian: str | None) -> None:
    """Check a gateway release log's hash chain (detects edited, removed or reordered lines) and,
    with --custodian, that the custodian's key signed every line (detects a rewritten log)."""
    try:
        count = verify_log(path, custodian)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{path} is not a readable release log ({exc})") from None
    signed = (
        f", every line signed by {custodian}" if custodian else " (add --custodian to check who wrote it)"
    )
    click.echo(f"{path}: {count} entries, hash chain intact{signed}")


@cli.group()
def drug() -> None:
    """Drug provenance: trace and export a batch."""


@drug.command("trace")
@click.argument("gtin")
@click.argument("lot")
@click.option("--epcis", is_flag=True, help="Print the history as a GS1 EPCIS 2.0 document (JSON).")
@click.pass_obj
def drug_trace(obj: Context, gtin: str, lot: str, epcis: bool) -> None:
    """The full history of batch GTIN + LOT, in chain order."""
    client = obj.suite().drugs
    try:
        batch_id = client.batch_id(gtin, lot)
    except GS1Error as exc:
        raise click.BadParameter(str(exc)) from None
    if epcis:
        click.echo(json.dumps(epcis_document(client, batch_id, gtin, lot), indent=2))
        return
    history = client.history(batch_id)
    if not history:
        raise MedChainError(f"no batch {gtin} / {lot} on this chain")
    table = Table(title=f"Batch {gtin} lot {lot}: {client.status(batch_id).name.lower()}")
    for column in ("block", "event", "from / by", "to", "units"):
        table.add_column(column)
    rows = []
    for e in history:
        by = (
            e.args.get("from")
            or e.args.get("manufacturer")
            or e.args.get("dispenser")
            or e.args.get("by")
            or e.args.get("holder")
            or ""
        )
        units = e.args.get("quantity", e.args.get("available", ""))
        table.add_row(str(e.block), e.kind, str(by), str(e.args.get("to", "")), str(units))
        rows.append({"block": e.block, "event": e.kind, "by": by, "to": e.args.get("to"), "units": units})
    obj.emit(rows, table)


@drug.command("ship")
@click.argument("gtin")
@click.argument("lot")
@click.argument("to", type=ADDRESS)
@click.argument("quantity", type=click.IntRange(min=1))
@click.pass_obj
def drug_ship(obj: Context, gtin: str, lot: str, to: str, quantity: int) -> None:
    """Ship QUANTITY units of batch GTIN + LOT from the sender to TO (pending until received)."""
    client = obj.suite().drugs
    ref = client.ship(obj.sender(), _batch(client, gtin, lot), to, quantity)
    obj.emit({"to": ref.to, "quantity": ref.quantity}, _one_row("Shipped", "to", f"{ref.to} x{quantity}"))


@drug.command("receive")
@click.argument("gtin")
@click.argument("lot")
@click.pass_obj
def drug_receive(obj: Context, gtin: str, lot: str) -> None:
    """Receive every pending shipment of batch GTIN + LOT addressed to the sender."""
    client = obj.suite().drugs
    sender = obj.sender()
    me = sender if isinstance(sender, str) else sender.address
    refs = client.pending_shipments(_batch(client, gtin, lot), to=me)
    if not refs:
        raise MedChainError(f"no pending shipment of {gtin} / {lot} is addressed to {me}")
    for ref in refs:
        client.receive(sender, ref)
    total = sum(r.quantity for r in refs)
    obj.emit(
        {"received": len(refs), "units": total}, _one_row("Received", "units", f"{total} in {len(refs)}")
    )


@drug.command("recall")
@click.argument("gtin")
@click.argument("lot")
@click.option("--reason", type=REASON, required=True, help="Reason code (0-65535).")
@click.pass_obj
def drug_recall(obj: Context, gtin: str, lot: str, reason: int) -> None:
    """Recall batch GTIN + LOT (manufacturer or regulator); prints who held how much."""
    client = obj.suite().drugs
    holders = client.recall(obj.sender(), _batch(client, gtin, lot), reason)
    table = Table(title=f"Recalled {gtin} / {lot}: holders at recall")
    table.add_column("holder")
    table.add_column("units")
    for holder, units in holders.items():
        table.add_row(holder, str(units))
    obj.emit(holders, table)


def _batch(client: DrugClient, gtin: str, lot: str) -> bytes:
    try:
        return client.batch_id(gtin, lot)
    except GS1Error as exc:
        raise click.BadParameter(str(exc)) from None


@cli.group()
def claim() -> None:
    """Insurance claims: reports and pending reviews."""


@claim.command("report")
@click.argument("plan_id", type=int)
@click.pass_obj
def claim_report(obj: Context, plan_id: int) -> None:
    """Totals of PLAN_ID: claims by status, amount paid, pool left, open patient shares."""
    report = obj.suite().claims.report(plan_id)
    table = Table(title=f"Plan {plan_id}")
    table.add_column("field")
    table.add_column("value")
    data = asdict(report)
    for key, value in data.items():
        table.add_row(key, str(value))
    obj.emit(data, table)


@claim.command("pending")
@click.argument("plan_id", type=int)
@click.pass_obj
def claim_pending(obj: Context, plan_id: int) -> None:
    """Claims of PLAN_ID waiting for the insurer's review."""
    pending = obj.suite().claims.pending_claims(plan_id)
    table = Table(title=f"Pending claims of plan {plan_id}")
    for column in ("claim", "provider", "patient", "billed", "max payable", "status"):
        table.add_column(column)
    rows = []
    for c in pending:
        table.add_row(
            "0x" + c.id.hex()[:12],
            c.provider,
            c.patient,
            str(c.billed),
            str(c.max_payable),
            c.status.name.lower(),
        )
        rows.append(
            {
                "id": "0x" + c.id.hex(),
                "provider": c.provider,
                "patient": c.patient,
                "billed": c.billed,
                "max_payable": c.max_payable,
                "status": c.status.name.lower(),
            }
        )
    obj.emit(rows, table)


@claim.command("approve")
@click.argument("claim_id")
@click.option(
    "--amount", type=int, default=None, help="Amount in token units (default: the claim's maximum)."
)
@click.pass_obj
def claim_approve(obj: Context, claim_id: str, amount: int | None) -> None:
    """Approve a pended or appealed claim (the sender is the plan's insurer)."""
    claims = obj.suite().claims
    view = claims.claim(_parse_digest(claim_id))
    status = claims.approve(obj.sender(), view, view.max_payable if amount is None else amount)
    obj.emit(
        {"claim": claim_id, "status": status.name.lower()}, _one_row("Claim", "status", status.name.lower())
    )


@claim.command("deny")
@click.argument("claim_id")
@click.option("--reason", type=REASON, required=True, help="Reason code (0-65535).")
@click.pass_obj
def claim_deny(obj: Context, claim_id: str, reason: int) -> None:
    """Deny a pended or appealed claim with a reason code (the sender is the plan's insurer)."""
    claims = obj.suite().claims
    claims.deny(obj.sender(), claims.claim(_parse_digest(claim_id)), reason)
    obj.emit({"claim": claim_id, "status": "denied"}, _one_row("Claim", "status", "denied"))


def _one_row(title: str, field: str, value: str) -> Table:
    table = Table(title=title)
    table.add_column(field)
    table.add_row(value)
    return table


def _show_proposal(obj: Context, suite: Suite, proposal_id: int) -> None:
    p = suite.registry.proposal(proposal_id)
    data = {
        **asdict(p),
        "action": p.action.name.lower(),
        "kind": p.kind.label,
        "status": p.status.name.lower(),
    }
    table = Table(title=f"Proposal {proposal_id}")
    table.add_column("field")
    table.add_column("value")
    for key, value in data.items():
        table.add_row(key, str(value))
    obj.emit(data, table)


def main() -> None:
    """Entry point: expected failures print one line, no traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        # One line, like every other expected failure, with where to look for help.
        where = f" (try '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{where}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MedChainError as exc:
        if os.environ.get("MEDCHAIN_DEBUG"):
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except (ValueError, TypeError) as exc:
        # Input that slipped past the option checks and was refused while encoding a call (an
        # out-of-range number, a malformed value): one line; MEDCHAIN_DEBUG=1 shows the traceback.
        if os.environ.get("MEDCHAIN_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        click.echo(f"error: invalid input: {first}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()

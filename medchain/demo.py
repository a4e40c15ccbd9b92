"""The end-to-end scenario behind `make demo`, written against the SDK only (no brownie)."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table

from medchain import devnet
from medchain.chain import Chain
from medchain.claims import (
    MEDICATION_DISPENSE,
    CoverageTable,
    DispenseRef,
    PlanTerms,
    lot_code,
)
from medchain.consent import GrantTerms
from medchain.crypto import ReaderKey
from medchain.deploy import FoundingMember, SuiteConfig, deploy_suite
from medchain.devnet import licence_digest
from medchain.directory import EXAMPLE_GTIN_PREFIX, sample_directory, sample_entry
from medchain.drug import Dispense, SerialTree
from medchain.ehr import AnchoredRecord, KeyVault
from medchain.epcis import epcis_document
from medchain.errors import ContractRevert
from medchain.fhir import (
    ICD10,
    access_audit_events,
    break_glass_audit_event,
    claim_resources,
    consent_resource,
)
from medchain.gateway import GatewayClient, GatewayError, GatewayService, GatewaySettings
from medchain.gateway.app import BackgroundGateway
from medchain.localchain import dev_private_keys, free_port
from medchain.registry import Member
from medchain.store import CachedStore, LocalFolderStore
from medchain.suite import Suite
from medchain.types import Actions, Address, GovernanceAction, Kind, Purpose

# Who plays which role among the node's unlocked accounts (Anvil and Ganache both provide them):
# the development consortium of medchain.devnet, in the same order.
ROLES: tuple[tuple[str, Kind, int], ...] = tuple((r.name, r.kind, r.rating) for r in devnet.ROLES)


def members_table(suite: Suite, names: Mapping[str, str]) -> Table:
    table = Table(title="Consortium members", show_lines=False)
    for column in ("institution", "address", "kind", "status", "rating", "weight"):
        table.add_column(column)
    members: Sequence[Member] = suite.registry.members()
    for m in members:
        short = f"{m.address[:6]}…{m.address[-4:]}"
        table.add_row(
            names.get(m.address, "?"),
            short,
            m.kind.label,
            m.status.name.lower(),
            str(m.rating),
            str(m.weight),
        )
    return table


def run(
    chain: Chain,
    manifest_path: Path | None = None,
    console: Console | None = None,
    store_dir: Path | None = None,
) -> Suite:
    """Deploys the suite to ``chain`` and walks through the scenario, printing each step."""
    out = console or Console()
    accounts = list(chain.w3.eth.accounts)
    if len(accounts) < len(ROLES) + 3:
        raise RuntimeError(f"the demo needs {len(ROLES) + 3} unlocked accounts; the node has {len(accounts)}")
    regulator = accounts[0]
    names: dict[str, str] = {regulator: "Health Regulator (founder)"}
    founding = []
    for account, (name, kind, rating) in zip(accounts[1:], ROLES, strict=False):
        names[account] = name
        founding.append(FoundingMember(account, kind, rating, licence_digest(name)))

    out.rule("[bold]1. Deploy the suite")
    suite = deploy_suite(
        chain,
        regulator,
        SuiteConfig(founder_licence=licence_digest("Health Regulator"), founding_members=tuple(founding)),
        manifest_path,
    )
    out.print(f"chain id {suite.deployment.chain_id}, deployed at block {suite.deployment.deploy_block}")
    for name, record in suite.deployment.contracts.items():
        out.print(f"  {name:<22} {record.address}")
    out.print(f"manifest written to {manifest_path or 'deployments/'}")
    out.print(members_table(suite, names))

    out.rule("[bold]2. Consortium governance: admit a community clinic by credit-weighted vote")
    clinic = accounts[len(ROLES) + 1]
    names[clinic] = "Northside Community Clinic"
    pid = suite.registry.propose_admission(
        regulator, clinic, Kind.COMMUNITY_CLINIC, 40, licence_digest("Northside Community Clinic")
    )
    total = suite.registry.total_active_weight()
    out.print(f"proposal {pid} opened by the regulator; quorum base {total}, needs two thirds")
    for voter in accounts[1 : len(ROLES) + 1]:
        status = suite.registry.vote(voter, pid, True)
        p = suite.registry.proposal(pid)
        out.print(f"  {names[voter]} votes yes: {p.yes_weight}/{p.total_weight} -> {status.name.lower()}")
        if status.name != "OPEN":
            break
    out.print(f"clinic active: {suite.registry.is_active(clinic, Kind.COMMUNITY_CLINIC)}")

    out.rule("[bold]3. Suspend a member whose licence lapsed")
    distributor = accounts[6]
    pid = suite.registry.propose_change(regulator, distributor, GovernanceAction.SUSPEND)
    for voter in accounts[1 : len(ROLES) + 1]:
        if voter != distributor and suite.registry.vote(voter, pid, True).name != "OPEN":
            break
    active = suite.registry.is_active(distributor, Kind.DISTRIBUTOR)
    out.print(f"{names[distributor]} active as distributor: {active}")
    out.print(members_table(suite, names))

    patient = consent_step(suite, accounts, names, out)
    ehr_step(suite, accounts, names, patient, out, store_dir)
    drug_step(suite, accounts, names, patient, out)
    claims_step(suite, accounts, names, patient, out, store_dir)
    return suite


def consent_step(suite: Suite, accounts: list[Address], names: dict[str, str], out: Console) -> LocalAccount:
    """A patient signs a consent off chain, a guardian acts for a minor, break-glass is reviewed."""
    c = suite.consent
    chain_id = suite.deployment.chain_id
    hospital, hospital2, funder = accounts[1], accounts[2], accounts[0]
    w3 = suite.chain.w3

    out.rule("[bold]4. Patient consent signed off chain (EIP-712), submitted by the hospital")
    patient: LocalAccount = Account.create()  # an ordinary wallet key: the patient never pays gas here
    out.print(f"patient wallet {patient.address} (pseudonymous: no name or record on chain)")
    terms = GrantTerms.for_category(patient.address, hospital2, "Observation", Actions.READ, Purpose.TREAT)
    signed = c.sign_grant(patient, terms)
    grant_id = c.submit_signed_grant(hospital, terms, signed)
    out.print(f"{names[hospital]} submitted the signed grant {grant_id.hex()[:16]}… for {names[hospital2]}")
    for category in ("Observation", "Condition"):
        d = c.check(patient.address, hospital2, Actions.READ, Purpose.TREAT, category=category)
        out.print(f"  may {names[hospital2]} read {category} for treatment? {'yes' if d.allowed else 'no'}")
    [grant] = c.grants_of(patient.address)
    fhir_consent = consent_resource(grant, chain_id)
    out.print(
        f"FHIR Consent export: status {fhir_consent['status']}, "
        f"class {fhir_consent['provision']['class'][0]['code']}, "
        f"purpose {fhir_consent['provision']['purpose'][0]['code']} (validated)"
    )

    out.rule("[bold]5. A guardian acts for a minor")
    minor = Account.create()
    guardian = accounts[len(ROLES) + 2]
    suite.chain.transact_value(funder, minor.address, w3.to_wei(1, "ether"))
    c.add_guardian(minor, guardian)
    minor_grant = c.grant(
        guardian, GrantTerms.for_all(minor.address, hospital, Actions.READ | Actions.APPEND, Purpose.TREAT)
    )
    [g] = c.grants_of(minor.address)
    out.print(
        f"guardian {guardian[:10]}… granted {names[hospital]} read+append on all of the minor's data "
        f"(grant {minor_grant.hex()[:16]}…, recorded actor {g.actor[:10]}…)"
    )

    out.rule("[bold]6. Break-glass: emergency access, then review")
    justification = hashlib.sha256(b"patient unconscious in the emergency room; no consent on file").digest()
    sid = c.open_break_glass(hospital2, patient.address, justification)
    d = c.check(patient.address, hospital2, Actions.READ, Purpose.ETREAT, category="Condition")
    out.print(
        f"{names[hospital2]} opened session {sid}; emergency read allowed: {d.allowed} "
        f"(break-glass: {d.break_glass})"
    )
    c.review_break_glass(funder, sid, accept=True)
    session = c.session(sid)
    out.print(
        f"regulator reviewed session {sid}: {session.review.name.lower()}; "
        f"disputed sessions of {names[hospital2]}: {c.disputed_sessions(hospital2)}"
    )
    audit = break_glass_audit_event(session, chain_id, c.address)
    out.print(
        f"FHIR AuditEvent export: subtype {audit['subtype'][0]['code']}, purpose "
        f"{audit['purposeOfEvent'][0]['coding'][0]['code']} (validated)"
    )
    return patient


def ehr_step(
    suite: Suite,
    accounts: list[Address],
    names: dict[str, str],
    patient: LocalAccount,
    out: Console,
    store_dir: Path | None,
) -> None:
    """FHIR records anchored at one hospital, read under consent at another, an outsider refused,
    and a laboratory's night run anchored as one Merkle batch."""
    keys = dev_private_keys()
    hospital, hospital2, lab = accounts[1], accounts[2], accounts[3]
    outsider = accounts[len(ROLES) + 3]
    store = CachedStore(LocalFolderStore(store_dir or Path(tempfile.mkdtemp(prefix="medchain-store-"))))
    ehr = suite.ehr(store)
    vaults = {hospital: KeyVault(), lab: KeyVault()}  # each custodian keeps its own (a file in production)
    reader = {a: ReaderKey.from_private_key(keys[a]) for a in (hospital, hospital2, lab)}
    reader[patient.address] = ReaderKey.from_private_key(bytes(patient.key))
    c = suite.consent

    out.rule("[bold]7. EHR: encrypted records anchored at the hospital, read under consent elsewhere")
    treat = GrantTerms.for_all(patient.address, hospital, Actions.READ | Actions.APPEND, Purpose.TREAT)
    c.submit_signed_grant(hospital, treat, c.sign_grant(patient, treat))
    out.print(f"patient signed read+append for treatment to {names[hospital]} (its treatment relationship)")
    records = {}
    for resource in (DEMO_CONDITION, DEMO_OBSERVATION):
        rec = ehr.anchor_resource(
            hospital, resource, patient.address, vaults[hospital], (reader[hospital], reader[patient.address])
        )
        records[resource["resourceType"]] = rec
        out.print(
            f"  anchored {resource['resourceType']:<12} id {rec.id.hex()[:12]}…  CID {rec.cid[:20]}…  "
            f"salted fingerprint {rec.header.fingerprint.hex()[:12]}…"
        )
    port = free_port()
    service = GatewayService(
        suite, store, vaults[hospital], keys[hospital], GatewaySettings(public_url=f"http://127.0.0.1:{port}")
    )
    with BackgroundGateway(service) as running:
        client = GatewayClient(running.url)
        out.print(f"{names[hospital]}'s custodian gateway serves at {running.url} (signed challenges)")
        obs = records["Observation"]
        ehr.access(hospital2, obs, Purpose.TREAT)
        resource = client.read(ehr, obs.id, Account.from_key(keys[hospital2]))
        value = resource["valueQuantity"]
        out.print(
            f"{names[hospital2]} read the Observation under the patient's consent: "
            f"{resource['code']['coding'][0]['display']} {value['value']} {value['unit']} "
            "(audited on chain, authenticated at the gateway, decrypted, commitment ok)"
        )
        for who, rec in ((hospital2, records["Condition"]), (outsider, obs)):
            who_name = names.get(who, "an outsider")
            if ehr.attempt(who, rec, Purpose.TREAT):
                out.print(f"[red]unexpected: {who_name} was allowed to read[/red]")
            else:
                out.print(f"  {who_name} reading the {rec.header.category_text}: refused, recorded on chain")
        denied = ehr.denied_attempts(patient=patient.address)
        out.print(f"  the patient's audit trail shows {len(denied)} refused attempts (AccessDenied events)")
        try:
            client.read(ehr, obs.id, Account.from_key(keys[outsider]))
            out.print("[red]unexpected: the gateway released to an outsider[/red]")
        except GatewayError as exc:
            out.print(f"  an outsider asking the gateway directly: refused ({type(exc).__name__})")
        client.close()

    out.rule("[bold]8. Laboratory night run: one Merkle root for many results")
    lab_patients = [patient, *(Account.create() for _ in range(4))]
    for p in lab_patients:
        t = GrantTerms.for_category(p.address, lab, "Observation", Actions.APPEND, Purpose.TREAT)
        c.submit_signed_grant(lab, t, c.sign_grant(p, t))
    items = [
        (
            p.address,
            {**DEMO_OBSERVATION, "valueQuantity": {"value": round(5.1 + i / 10, 1), "unit": "mmol/L"}},
        )
        for i, p in enumerate(lab_patients)
    ]
    batch_id, batch = ehr.anchor_batch(
        lab, items, vaults[lab], reader[lab], {patient.address: reader[patient.address]}
    )
    out.print(
        f"{names[lab]} anchored batch {batch_id}: {len(batch)} results under one Merkle root "
        "(its public index lists record ids only)"
    )
    mine = batch[0]
    ehr.access(hospital, mine, Purpose.TREAT)  # City General holds the patient's all-data read consent
    port = free_port()
    lab_service = GatewayService(
        suite, store, vaults[lab], keys[lab], GatewaySettings(public_url=f"http://127.0.0.1:{port}")
    )
    with BackgroundGateway(lab_service) as running:
        client = GatewayClient(running.url)
        seen_by_hospital = client.read(ehr, mine.id, Account.from_key(keys[hospital]))
        result = client.read(ehr, mine.id, patient)
        client.close()
    same = seen_by_hospital == result
    out.print(
        f"{names[hospital]} read the patient's batched result with a {len(mine.proof)}-step Merkle proof "
        f"(audited; same bytes as the patient's: {same}); "
        f"the patient opened it: {result['valueQuantity']['value']} {result['valueQuantity']['unit']}"
    )
    history = ehr.access_history(patient=patient.address)
    fhir_events = access_audit_events(
        ehr.access_history(patient=patient.address), ehr.chain.chain_id, ehr.address
    )
    out.print(
        f"audit trail for the patient: {len(history)} access events, exported as {len(fhir_events)} FHIR "
        f"AuditEvents; store cache hits {store.hits}, misses {store.misses}"
    )


DEMO_CONDITION: dict[str, Any] = {
    "resourceType": "Condition",
    "clinicalStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
    },
    "code": {
        "coding": [{"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes type 2"}]
    },
    "subject": {"reference": "Patient/example"},
}
DEMO_OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
    "subject": {"reference": "Patient/example"},
    "valueQuantity": {"value": 7.2, "unit": "mmol/L"},
}


def drug_step(
    suite: Suite, accounts: list[Address], names: dict[str, str], patient: LocalAccount, out: Console
) -> Dispense:
    """A batch from the manufacturer to the pharmacy, a pack dispensed and verified, then recalled.

    Returns the dispense with its salt: the pharmacy keeps it and the patient is given it (a drug
    claim for the dispense needs it).
    """
    d = suite.drugs
    pharmacy, maker, distributor, regulator = accounts[4], accounts[5], accounts[6], accounts[0]
    gtin, lot = "09506000134352", "AMX-2611"
    serials = [f"SN{i:06d}" for i in range(1, 101)]
    w3 = suite.chain.w3
    now = int(w3.eth.get_block("latest")["timestamp"])

    out.rule("[bold]9. Drug provenance: commission, ship, receive, dispense")
    d.register_product(maker, gtin)
    batch = d.commission(
        maker,
        gtin,
        lot,
        now - 86400,
        now + 2 * 365 * 86400,
        100,
        hashlib.sha256(b"certificate of analysis AMX-2611").digest(),
        serials,
    )
    out.print(f"{names[maker]} commissioned GTIN {gtin} lot {lot}: 100 packs, serials root anchored")
    try:
        d.ship(maker, batch, distributor, 10)
    except ContractRevert as exc:
        out.print(f"shipping to the suspended {names[distributor]}: refused ({exc.error})")
    pid = suite.registry.propose_change(regulator, distributor, GovernanceAction.REINSTATE)
    for voter in accounts[1 : len(ROLES) + 1]:
        if voter != distributor and suite.registry.vote(voter, pid, True).name != "OPEN":
            break
    out.print(f"{names[distributor]} renewed its licence and was reinstated by vote (proposal {pid})")
    ref = d.ship(maker, batch, distributor, 40)
    d.receive(distributor, ref)
    ref = d.ship(distributor, batch, pharmacy, 12)
    d.receive(pharmacy, ref)
    out.print(
        f"{names[maker]} -> {names[distributor]} (40) -> {names[pharmacy]} (12), "
        "each step shipped then received"
    )
    dispensed = d.dispense_to_patient(pharmacy, batch, 1, patient.address)
    out.print(
        f"{names[pharmacy]} dispensed one pack to the patient under a fresh random salt "
        f"(commitment {dispensed.patient_ref.hex()[:16]}…, no identity on chain); the pharmacy keeps "
        "the salt and hands it to the patient, who needs it to claim the dispense"
    )

    scanned = f"01{gtin}17{_yymmdd(now + 2 * 365 * 86400)}10{lot}\x1d21SN000042"
    verdict = d.verify_pack(scanned, SerialTree(serials).proof("SN000042"))
    holders = ", ".join(f"{names[a]} {n}" for a, n in verdict.holders.items())
    printable = scanned.replace(chr(29), "<GS>")
    out.print(
        f"pack scan {printable}: genuine {verdict.genuine}, status {verdict.status.name.lower()}, "
        f"holders {holders}"
    )
    fake = d.verify_pack(scanned.replace("SN000042", "SN999999"), SerialTree(serials).proof("SN000042"))
    out.print(f"counterfeit serial SN999999: genuine {fake.genuine}")

    out.rule("[bold]10. Recall: every movement stops")
    held = d.recall(regulator, batch, 3)
    out.print(
        "recalled by the regulator (quarantined first, so no receive can slip in before the holder list); "
        "holders at recall: " + ", ".join(f"{names[a]} {n}" for a, n in held.items())
    )
    try:
        d.dispense_to_patient(pharmacy, batch, 1, patient.address)
    except ContractRevert as exc:
        out.print(f"{names[pharmacy]} trying to dispense: refused ({exc.error})")
    table = Table(title=f"Trace of lot {lot}")
    for column in ("block", "event", "from / by", "to", "units"):
        table.add_column(column)
    for e in d.history(batch):
        if e.kind == "holder_at_recall":
            continue
        by = (
            e.args.get("from")
            or e.args.get("manufacturer")
            or e.args.get("dispenser")
            or e.args.get("by")
            or ""
        )
        units = e.args.get("quantity", "")
        table.add_row(
            str(e.block), e.kind, names.get(by, by[:10]), names.get(e.args.get("to", ""), ""), str(units)
        )
    out.print(table)
    # Demonstration GLNs (GS1 Prefix 952); the manufacturer owns the example GTIN's prefix.
    directory = sample_directory(suite.chain.chain_id, names)
    directory = directory.with_entry(sample_entry(maker, 0, names[maker], EXAMPLE_GTIN_PREFIX))
    document = epcis_document(d, batch, gtin, lot, directory, serials=serials)
    count = len(document["epcisBody"]["eventList"])
    out.print(f"EPCIS 2.0 export: {count} ObjectEvents, valid against the GS1 schema")
    return dispensed


def _yymmdd(ts: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC).strftime("%y%m%d")


def claims_step(
    suite: Suite,
    accounts: list[Address],
    names: dict[str, str],
    patient: LocalAccount,
    out: Console,
    store_dir: Path | None,
) -> None:
    """An insurer's plan end to end: auto-paid claim, pended and approved claim, a duplicate, an
    amended encounter and a claim without consent refused, a pharmacy's drug claim backed by its
    dispense, the patient's co-payment settled, and the insurer taking back only surplus."""
    usd = 10**6
    regulator, hospital, insurer = accounts[0], accounts[1], accounts[7]
    pharmacy, maker = accounts[4], accounts[5]
    gtin = 9506000134352
    c, consent, token = suite.claims, suite.consent, suite.token
    keys = dev_private_keys()
    w3 = suite.chain.w3

    out.rule("[bold]11. Insurance: a plan, a funded pool, a signed enrolment")
    table = CoverageTable(
        {"99213 office visit": 150 * usd, "70450 CT head": 900 * usd, ("J3490 drug", gtin): 40 * usd}
    )
    terms = PlanTerms(
        table.root,
        deductible=100 * usd,
        coinsurance_bps=2000,
        per_claim_limit=1_000 * usd,
        annual_limit=5_000 * usd,
        auto_pay_ceiling=500 * usd,
    )
    plan = c.create_plan(insurer, terms)
    suite.chain.transact(token.functions.mint(insurer, 100_000 * usd), regulator)
    c.fund(insurer, plan, 20_000 * usd)
    now = int(w3.eth.get_block("latest")["timestamp"])
    deadline, signature = c.sign_enrolment(patient, plan, now - 60, now + 365 * 86400)
    c.enrol(insurer, plan, patient.address, now - 60, now + 365 * 86400, deadline, signature)
    out.print(
        f"{names[insurer]} created plan {plan}: deductible 100, coinsurance 20 %, per-claim limit 1,000, "
        "auto-pay up to 500 (mUSD); covered services are a salted Merkle root (drugs bound to their GTIN); "
        "pool 20,000; patient enrolled with its own signature"
    )
    payment = GrantTerms.for_category(patient.address, insurer, "Encounter", Actions.READ, Purpose.HPAYMT)
    consent.submit_signed_grant(insurer, payment, consent.sign_grant(patient, payment))
    out.print(f"the patient signed a payment-purpose consent for {names[insurer]} over its Encounter records")

    ehr = suite.ehr(LocalFolderStore(store_dir or Path(tempfile.mkdtemp(prefix="medchain-store-"))))
    vault = KeyVault()
    readers = (ReaderKey.from_private_key(keys[hospital]), ReaderKey.from_private_key(bytes(patient.key)))

    def encounter(label: str) -> AnchoredRecord:
        resource = {
            "resourceType": "Encounter",
            "status": "finished",
            "id": label,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        }
        return ehr.anchor_resource(hospital, resource, patient.address, vault, readers)

    def advance_a_day() -> None:
        w3.provider.make_request("evm_increaseTime", [86400])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    out.rule("[bold]12. Claims: adjudicated by the contract")
    visit, proof = table.service("99213 office visit")
    before = token.functions.balanceOf(hospital).call()
    paid = c.submit(hospital, plan, patient.address, [encounter("visit-1")], visit, proof, 150 * usd)
    received = (token.functions.balanceOf(hospital).call() - before) / usd
    out.print(
        f"office visit billed 150: {paid.status.name.lower()} in the same transaction, {names[hospital]} "
        f"received {received:.2f}; patient share {paid.patient_share / usd:.2f} (deductible + coinsurance)"
    )
    first_visit = ehr.records_of(patient.address)[-1]
    corrected = ehr.anchor_resource(
        hospital,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "id": "visit-1-corrected",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        },
        patient.address,
        vault,
        readers,
        previous=first_visit,
    )
    attempts: list[tuple[str, list[AnchoredRecord]]] = [
        ("the same visit again (same evidence)", [first_visit]),
        ("the same visit through its amended record", [corrected]),
        ("a second office visit the same day", [encounter("visit-2")]),
    ]
    for label, evidence in attempts:
        try:
            c.submit(hospital, plan, patient.address, evidence, visit, proof, 150 * usd)
            out.print(f"[red]unexpected: {label} was accepted[/red]")
        except ContractRevert as exc:
            out.print(f"  {label}: refused ({exc.error})")
    advance_a_day()
    scan, scan_proof = table.service("70450 CT head")
    pended = c.submit(hospital, plan, patient.address, [encounter("ct-1")], scan, scan_proof, 900 * usd)
    out.print(
        f"CT billed 900: {pended.status.name.lower()} (payable {pended.max_payable / usd:.2f} is above the "
        "auto-pay ceiling)"
    )
    pending = c.pending_claims(plan)
    c.approve(insurer, pending[0], pending[0].max_payable)
    out.print(
        f"{names[insurer]} reviewed {len(pending)} pended claim and approved "
        f"{pending[0].max_payable / usd:.2f}: {c.claim(pending[0].id).status.name.lower()}"
    )

    # The patient never gave the insurer a payment consent over Observation records.
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"}}
    lab_record = ehr.anchor_resource(hospital, obs, patient.address, vault, readers)
    advance_a_day()
    try:
        c.submit(hospital, plan, patient.address, [lab_record], visit, proof, 150 * usd)
    except ContractRevert as exc:
        out.print(f"a claim whose evidence the insurer may not see for payment: refused ({exc.error})")

    out.rule("[bold]13. A pharmacy bills what it dispensed")
    d = suite.drugs
    now = int(w3.eth.get_block("latest")["timestamp"])
    batch = d.commission(
        maker,
        gtin,
        "AMX-2612",
        now - 86400,
        now + 2 * 365 * 86400,
        50,
        hashlib.sha256(b"CoA AMX-2612").digest(),
    )
    d.receive(pharmacy, d.ship(maker, batch, pharmacy, 10))
    # A fresh random salt per dispense: the pharmacy keeps it and gives it to the patient.
    given = d.dispense_to_patient(pharmacy, batch, 1, patient.address)
    dispensed = DispenseRef(
        lot_code("AMX-2612"), given.patient_salt, given.quantity, given.nonce, given.timestamp
    )
    medication = GrantTerms.for_category(
        patient.address, insurer, MEDICATION_DISPENSE, Actions.READ, Purpose.HPAYMT
    )
    consent.submit_signed_grant(insurer, medication, consent.sign_grant(patient, medication))
    # The patient's treatment relationship with its pharmacy: only then may it bill a dispense
    # (a dispense names the patient by the pharmacy's own commitment, which proves no visit).
    treated = GrantTerms.for_category(
        patient.address, pharmacy, MEDICATION_DISPENSE, Actions.APPEND, Purpose.TREAT
    )
    consent.submit_signed_grant(pharmacy, treated, consent.sign_grant(patient, treated))
    drug, drug_proof = table.service("J3490 drug", gtin)
    drug_claim = c.submit(pharmacy, plan, patient.address, [], drug, drug_proof, 40 * usd, dispensed)
    out.print(
        f"{names[pharmacy]} dispensed lot AMX-2612 to the patient and billed it with the dispense as "
        f"evidence (the patient let {names[insurer]} see dispenses for payment, and is the "
        f"pharmacy's patient): "
        f"{drug_claim.status.name.lower()}, plan pays {drug_claim.amount / usd:.2f}"
    )
    try:
        c.submit(pharmacy, plan, patient.address, [], drug, drug_proof, 40 * usd, dispensed)
        out.print("[red]unexpected: the same dispense was paid twice[/red]")
    except ContractRevert as exc:
        out.print(f"  the same dispense billed again: refused ({exc.error})")

    out.rule("[bold]14. The patient settles its co-payment; the insurer takes back surplus")
    suite.chain.transact(token.functions.mint(patient.address, 1_000 * usd), regulator)
    suite.chain.transact_value(
        regulator, patient.address, w3.to_wei(1, "ether")
    )  # gas for its two transactions
    share = c.settle_share(patient, paid)
    out.print(f"the patient approved and paid {share / usd:.2f} to {names[hospital]} (allowance + pull)")
    surplus = c.plan(plan).surplus
    c.withdraw(insurer, plan, surplus // 2)
    report = c.report(plan)
    out.print(
        f"{names[insurer]} withdrew {surplus // 2 / usd:.2f} of surplus (never what open claims reserve); "
        f"plan {plan} report: {report.claims} claims {dict(report.by_status)}, paid "
        f"{report.paid / usd:.2f}, pool left {report.pool / usd:.2f}, "
        f"reserved {report.reserved / usd:.2f}"
    )
    fhir = claim_resources(
        c.claim(paid.id),
        insurer=insurer,
        chain_id=suite.deployment.chain_id,
        service=visit,
        evidence=c.evidence(paid),
        timeline=c.timeline(paid.id),
        diagnoses=[(ICD10, "J18.9")],
    )
    out.print(
        f"FHIR export: Claim total {fhir['claim']['total']['value']}, ClaimResponse outcome "
        f"{fhir['claimResponse']['outcome']} (validated)"
    )

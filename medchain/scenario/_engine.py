"""The simulation: an agenda of timed steps, run block by block on the simulated clock."""

from __future__ import annotations

import hashlib
import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD
from web3.types import TxReceipt

from medchain.claims import (
    MEDICATION_DISPENSE,
    NO_DRUG,
    ClaimView,
    DispenseRef,
    PlanFile,
    SignedEnrolment,
    lot_code,
)
from medchain.consent import GrantTerms
from medchain.crypto import ReaderKey
from medchain.deploy import LOCAL_CHAIN_IDS, SuiteConfig, deploy_suite
from medchain.drug import Dispense
from medchain.ehr import AnchoredRecord, EHRClient
from medchain.errors import ConfigurationError, ContractRevert, ManifestError
from medchain.manifest import Deployment
from medchain.scenario._alliance import (
    Alliance,
    Governance,
    Institution,
    admit_by_vote,
    build_alliance,
    derive_key,
    founding_members,
    licence_of,
)
from medchain.scenario._chain import ScenarioError, SimChain
from medchain.scenario._model import (
    CONSULTATION,
    CT_HEAD,
    DAY,
    DRUG,
    FINDINGS,
    FOLLOW_UP_DAYS,
    HOUR,
    MINUTE,
    OFFICE_VISIT,
    PRODUCTS,
    SLOT,
    USD,
    WORKLOAD,
    Product,
    Workload,
    encounter,
    imaging_report,
    lab_result,
    plan_files,
    vital_signs,
)
from medchain.scenario._result import (
    ClaimTiming,
    Exam,
    RecallTiming,
    Retrieval,
    ScenarioResult,
    SessionTiming,
    SimulatorCounts,
    SimulatorTimings,
    kind_counts,
)
from medchain.store import LocalFolderStore, cid_bytes
from medchain.suite import Suite
from medchain.types import Actions, ClaimStatus, Kind, PlanId, Purpose
from medchain.vault import KeyVault

DEFAULT_PATIENTS = 100
DEFAULT_DAYS = 30
MAX_PATIENTS = 2_000
"""More patients than this would take the better part of an hour on one local node."""
MAX_DAYS = 365
"""Patients are enrolled for one coverage year; a longer run would need renewals."""
LIMITS = {"hospitals": (1, 20), "clinics": (1, 60), "specialists": (1, 40)}
DENIAL_REASON = 7
"""The insurer's reason code on a denial (an insurer's own code list; only the number is on chain)."""
RECALL_REASON = 3
PACKS_PER_LOT = 600
PHARMACY_STOCK = 40
"""Packs of each product a pharmacy receives at a delivery."""
RESTOCK_BELOW = 10

# The kinds of fraudulent claim the contract must refuse, and the error each must get.
FRAUD_KINDS = {
    "duplicate service": "ClaimsDuplicateService",
    "no evidence": "ClaimsNoEvidence",
    "foreign evidence": "ClaimsInvalidEvidence",
    "no payment consent": "ClaimsNoPaymentConsent",
    "drug never dispensed": "ClaimsInvalidDispense",
}


@dataclass(frozen=True)
class ScenarioConfig:
    """A run's size and seed. The alliance defaults to the Changzhou one (3 tertiary hospitals,
    12 community clinics, 8 specialist hospitals)."""

    patients: int = DEFAULT_PATIENTS
    days: int = DEFAULT_DAYS
    seed: int = 1
    hospitals: int = 3
    clinics: int = 12
    specialists: int = 8
    phi_marker: str = "SIMULATED PATIENT"
    """Written into every FHIR resource (the patient's display name); it must never reach the chain."""
    workload: Workload = WORKLOAD

    def check(self) -> None:
        """Raises ConfigurationError (one line) for a size the scenario cannot run."""
        if not 1 <= self.patients <= MAX_PATIENTS:
            raise ConfigurationError(
                f"--patients {self.patients}: the scenario runs 1 to {MAX_PATIENTS} patients on one local "
                "chain (more would take hours)"
            )
        if not 1 <= self.days <= MAX_DAYS:
            raise ConfigurationError(
                f"--days {self.days}: the scenario runs 1 to {MAX_DAYS} days (patients are enrolled for one "
                "coverage year)"
            )
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigurationError(
                    f"--{name} {value}: the alliance needs {low} to {high} {name.replace('_', ' ')}"
                )
        if not 0 <= self.seed < 2**64:
            raise ConfigurationError(f"--seed {self.seed}: a seed is 0 to 2^64 - 1")


class Progress(Protocol):
    """Where the run reports how far it got (the CLI shows a progress bar)."""

    def stage(self, description: str, total: int) -> None: ...

    def advance(self, steps: int = 1) -> None: ...


class _Silent:
    def stage(self, description: str, total: int) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass


# ─── State ──────────────────────────────────────────────────────────────────────────────────────


@dataclass
class _Held:
    """A record the simulator knows of: anchored (singly or in a batch) at a time."""

    record: AnchoredRecord
    anchored_at: int

    @property
    def custodian(self) -> str:
        return str(self.record.header.custodian)


@dataclass
class _Consent:
    grant_id: bytes
    actions: int
    not_after: int
    granted_at: int
    revoked: bool = False

    def reads(self, at: int) -> bool:
        return not self.revoked and bool(self.actions & Actions.READ) and at <= self.not_after


@dataclass
class _Patient:
    index: int
    account: LocalAccount
    home: Institution
    pharmacy: Institution
    insurer: int
    shares: bool
    insured: bool
    sig_nonce: int = 0
    consents: dict[str, _Consent] = field(default_factory=dict)
    reports: list[_Held] = field(default_factory=list)
    labs: list[_Held] = field(default_factory=list)
    records: list[_Held] = field(default_factory=list)
    visit_days: set[int] = field(default_factory=set)

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def label(self) -> str:
        return f"P{self.index:04d}"


@dataclass
class _Lot:
    batch_id: bytes
    product: Product
    lot: str
    manufacturer: Institution
    dispensed: int = 0
    recalled: bool = False


@dataclass
class _Plan:
    id: PlanId
    insurer: Institution
    file: PlanFile


@dataclass
class _ClaimLife:
    provider: str
    insurer: Institution
    submitted_at: int
    first_review_at: int | None = None
    appealed_at: int | None = None
    appeal_decided_at: int | None = None
    paid_at: int | None = None


COUNTERS = [f for f in SimulatorCounts.__dataclass_fields__ if f != "refusals"]


class Simulation:
    """One run: set-up (deployment, governance, plans, supply, patients), then the days."""

    def __init__(
        self,
        chain: SimChain,
        config: ScenarioConfig,
        work_dir: Path,
        manifest_path: Path,
        progress: Progress,
    ) -> None:
        self.chain = chain
        self.config = config
        self.model = config.workload
        self.rng = random.Random(config.seed)
        self.work_dir = work_dir
        self.manifest_path = manifest_path
        self.progress = progress
        self.alliance: Alliance = build_alliance(
            config.seed, config.hospitals, config.clinics, config.specialists
        )
        self.keys = {m.address: m.account for m in self.alliance.members}
        self.n: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.refusals: dict[str, int] = {}
        self.retrievals: list[Retrieval] = []
        self.exams: list[Exam] = []
        self.claim_lives: dict[bytes, _ClaimLife] = {}
        self.sessions: dict[int, SessionTiming] = {}
        self.recalls: list[RecallTiming] = []
        self.agenda: list[tuple[int, int, bool, Callable[[], None]]] = []
        self._seq = 0
        self._signing: set[int] = set()
        self.plans: list[_Plan] = []
        self.lots: list[_Lot] = []
        self.holdings: dict[tuple[bytes, str], int] = {}
        self.restocking: set[tuple[str, int]] = set()
        self.billed: set[tuple[int, str, int]] = set()
        self.lab_queue: list[tuple[_Patient, dict[str, Any]]] = []
        self.patients: list[_Patient] = []
        self.vault = KeyVault()
        self.store = LocalFolderStore(work_dir / "store")
        # The simulated period starts at the first UTC midnight a day after the chain's clock; the
        # set-up (deployment, governance, enrolment, deliveries) runs in the evening before.
        self.t0 = (chain.last_timestamp // DAY + 2) * DAY
        self.end = self.t0 + config.days * DAY

    # ─── The run ────────────────────────────────────────────────────────────────────────────

    def run(self) -> Suite:
        self.chain.clock = self.t0 - 12 * HOUR
        suite = self._deploy()
        self.suite = suite
        self.ehr: EHRClient = suite.ehr(self.store)
        self._plans()
        self._supply()
        self._patients()
        self._days()
        return suite

    def _deploy(self) -> Suite:
        a = self.alliance
        self.progress.stage("alliance: deploy and admit by vote", len(a.first_wave) + len(a.second_wave))
        self.chain.fund([m.address for m in a.members], 10**24)
        suite = deploy_suite(
            self.chain,
            a.regulator.account,
            SuiteConfig(
                founder_licence=licence_of(a.regulator.name),
                founder_rating=a.regulator.rating,
                founding_members=founding_members(a),
            ),
            self.manifest_path,
        )
        quorum = int(suite.deployment.settings.get("quorum_bps", 6667))
        tally = Governance()
        admit_by_vote(
            self.chain,
            suite.registry,
            quorum,
            a.regulator,
            a.first_wave,
            self.keys,
            tally,
            self.progress.advance,
        )
        admit_by_vote(
            self.chain,
            suite.registry,
            quorum,
            a.hospitals[0],
            a.second_wave,
            self.keys,
            tally,
            self.progress.advance,
        )
        self.n["founders"] = 1 + len(a.founders)
        self.n["admitted_by_vote"] = tally.proposals
        self.n["votes_cast"] = tally.votes
        self.n["institutions"] = len(a.members)
        return suite

    def _plans(self) -> None:
        """Each insurer creates a plan from its coverage table and funds its pool."""
        token, claims = self.suite.token, self.suite.claims
        regulator = self.alliance.regulator
        pool = max(20_000, 2_500 * self.config.patients) * USD
        created: dict[str, PlanId] = {}
        files: dict[str, PlanFile] = {}
        for insurer, plan in zip(self.alliance.insurers, plan_files(), strict=True):
            salt = bytes(
                Web3.keccak(
                    b"medchain-scenario/plan" + self.config.seed.to_bytes(8, "big") + insurer.address.encode()
                )
            )
            salted = plan.salted(salt)
            files[insurer.address] = salted
            self.chain.queue(
                f"mint for {insurer.name}", regulator.account, token, "mint", insurer.address, pool
            )

            def record(receipt: TxReceipt, who: str = insurer.address) -> None:
                event = claims.contract.events.PlanCreated().process_receipt(receipt, errors=DISCARD)[0]
                created[who] = PlanId(int(event["args"]["planId"]))

            self.chain.queue(
                f"{insurer.name} creates its plan",
                insurer.account,
                claims.contract,
                "createPlan",
                salted.terms().as_tuple(),
                then=record,
            )
        self.chain.flush()
        plans_dir = self.work_dir / "plans"
        plans_dir.mkdir(parents=True, exist_ok=True)
        for insurer in self.alliance.insurers:
            plan_id = created[insurer.address]
            plan_file = files[insurer.address].for_plan(plan_id, self.chain.chain_id, claims.address)
            (plans_dir / f"plan-{plan_id}.json").write_text(plan_file.to_json())
            self.plans.append(_Plan(plan_id, insurer, plan_file))
            self.chain.queue("approve the pool", insurer.account, token, "approve", claims.address, pool)
            self.chain.queue(f"fund plan {plan_id}", insurer.account, claims.contract, "fund", plan_id, pool)
        self.chain.flush()

    def _supply(self) -> None:
        """Products registered, two lots each commissioned, the first lot delivered through the
        distributors to every pharmacy."""
        drugs = self.suite.drugs
        a = self.alliance
        now = self.chain.clock
        for product in PRODUCTS:
            maker = a.manufacturers[product.manufacturer]
            drugs.register_product(maker.account, product.gtin)
            self.n["products"] += 1
            for letter in "AB":
                code = f"L{product.gtin[-5:]}{letter}"
                batch_id = drugs.commission(
                    maker.account,
                    product.gtin,
                    code,
                    now - 30 * DAY,
                    now + 2 * 365 * DAY,
                    PACKS_PER_LOT,
                    hashlib.sha256(f"certificate of analysis {code}".encode()).digest(),
                )
                self.lots.append(_Lot(batch_id, product, code, maker))
                self.holdings[(batch_id, maker.address)] = PACKS_PER_LOT
                self.n["batches_commissioned"] += 1
        for lot in self.lots[::2]:  # the A lots
            for distributor in a.distributors:
                self._ship(lot, lot.manufacturer, distributor, 200)
            for i, pharmacy in enumerate(a.pharmacies):
                self._ship(lot, a.distributors[i % len(a.distributors)], pharmacy, PHARMACY_STOCK)

    def _patients(self) -> None:
        """Keys, funding, enrolment (the patient's signature) and standing consents, also signed:
        the laboratory and the pharmacy may add results and dispenses (their treatment
        relationship), the insurer may see encounters and dispenses for payment."""
        cfg, a, model = self.config, self.alliance, self.model
        self.progress.stage("patients: enrol and consent", cfg.patients)
        for i in range(cfg.patients):
            self.patients.append(
                _Patient(
                    index=i,
                    account=derive_key(cfg.seed, f"patient-{i}"),
                    home=a.clinics[i % len(a.clinics)],
                    pharmacy=a.pharmacies[i % len(a.pharmacies)],
                    insurer=i % len(a.insurers),
                    # Patient 0 shares and claims: every run has someone to attempt fraud on.
                    shares=i == 0 or self.rng.random() < model.sharing_share,
                    insured=i == 0 or self.rng.random() < model.payment_consent_share,
                )
            )
        self.chain.fund([p.address for p in self.patients], 10**21)
        self.n["patients"] = cfg.patients
        self.n["sharing_patients"] = sum(p.shares for p in self.patients)
        self.n["payment_consenting_patients"] = sum(p.insured for p in self.patients)
        start = self.chain.clock
        claims = self.suite.claims
        for p in self.patients:
            plan = self.plans[p.insurer]
            end = start + 365 * DAY
            signed = SignedEnrolment.sign(
                p.account, self.chain.chain_id, claims.address, plan.id, start, end, 0, start + DAY
            )
            self.chain.queue(
                f"enrol {p.label}",
                plan.insurer.account,
                claims.contract,
                "enrol",
                plan.id,
                p.address,
                start,
                end,
                signed.deadline,
                signed.signature,
            )
            self._standing(p, a.laboratory, "Observation", Actions.APPEND, Purpose.TREAT)
        self.chain.flush()
        for p in self.patients:
            self._standing(p, p.pharmacy, MEDICATION_DISPENSE, Actions.APPEND, Purpose.TREAT)
        self.chain.flush()
        for category in ("Encounter", MEDICATION_DISPENSE):
            for p in self.patients:
                if p.insured:
                    self._standing(p, a.insurers[p.insurer], category, Actions.READ, Purpose.HPAYMT)
            self.chain.flush()
        self._onboard_history()
        self.progress.advance(cfg.patients)

    def _onboard_history(self) -> None:
        """Some patients join with a recent scan: the hospital that made it anchors its report when
        the alliance onboards the patient (with the patient's consent to add records, not to read)."""
        hospitals = (*self.alliance.hospitals, *self.alliance.specialists)
        made: list[tuple[_Patient, Institution]] = []
        for p in self.patients:
            if self.rng.random() < self.model.history_share:
                hospital = self.rng.choice(hospitals)
                terms = GrantTerms.for_all(
                    p.address,
                    hospital.address,
                    int(Actions.APPEND),
                    Purpose.TREAT,
                    not_after=self.chain.clock + DAY,
                )
                self._sign_and_submit(p, hospital, terms, f"{p.label} lets {hospital.name} add its records")
                made.append((p, hospital))
        self.chain.flush()
        marker = self.config.phi_marker
        for p, hospital in made:
            taken = self.chain.clock - self.rng.randint(2, 40) * DAY
            report = imaging_report(p.label, taken, self.rng.choice(FINDINGS), marker)
            self._anchor(p, hospital, report, [p.reports])
        self.chain.flush()

    def _days(self) -> None:
        cfg = self.config
        self.progress.stage(f"days: {cfg.patients} patients, {cfg.days} days", cfg.days)
        for day in range(cfg.days):
            self.at(self.t0 + day * DAY, partial(self._plan_day, day))
        rounds = max(1, cfg.patients // 25)
        for k in range(rounds):
            day = min(cfg.days - 1, (k + 1) * cfg.days // (rounds + 1))
            self.at(self.t0 + day * DAY + 14 * HOUR, partial(self._fraud_visit, day))
        self.at(self.t0 + (cfg.days // 2) * DAY + 10 * HOUR, self._recall)
        cap = self.end + FOLLOW_UP_DAYS * DAY
        while self.agenda:
            when, _seq, admin, step = heapq.heappop(self.agenda)
            if when >= cap:
                break
            if when >= self.end and not admin:
                continue
            if when > self.chain.clock:
                self.chain.flush()
                self.chain.clock = when
                self._signing.clear()
            step()
        self.chain.flush()

    def at(self, when: int, step: Callable[[], None], admin: bool = False) -> None:
        """Schedules ``step`` at ``when`` (rounded up to the next five-minute mark). ``admin``
        steps (reviews, appeals, deliveries) still run after the last day; new care does not."""
        when = -(-when // SLOT) * SLOT
        self._seq += 1
        heapq.heappush(self.agenda, (when, self._seq, admin, step))

    def _plan_day(self, day: int) -> None:
        """Draws the day's visits and emergencies, in patient order (so a seed gives one run)."""
        base = self.t0 + day * DAY
        model = self.model
        for p in self.patients:
            if self.rng.random() < model.primary_visit_rate:
                when = base + 8 * HOUR + self.rng.randrange(0, 9 * 60, 5) * MINUTE
                self.at(when, partial(self._primary_visit, p))
            if self.rng.random() < model.emergency_rate:
                when = base + self.rng.randrange(0, 24 * 60, 5) * MINUTE
                hospital = self.rng.choice(self.alliance.hospitals)
                self.at(when, partial(self._emergency, p, hospital))
        if self.rng.random() < model.snoop_rate:
            self.at(base + 11 * HOUR + self.rng.randrange(0, 6 * 60, 5) * MINUTE, self._snoop)
        self.at(base + 20 * HOUR, self._lab_night_run)
        self.progress.advance()

    # ─── Consents ───────────────────────────────────────────────────────────────────────────

    def _may_sign(self, p: _Patient, step: Callable[[], None]) -> bool:
        """One signed request per patient per block: two would race for the patient's nonce.
        A second one waits five minutes."""
        if p.index in self._signing:
            self.at(self.chain.clock + SLOT, step)
            return False
        self._signing.add(p.index)
        return True

    def _sign_and_submit(self, p: _Patient, submitter: Institution, terms: GrantTerms, label: str) -> None:
        signed = self.suite.consent.sign_grant(
            p.account, terms, deadline=self.chain.clock + DAY, nonce=p.sig_nonce
        )
        p.sig_nonce += 1
        grantee = terms.grantee

        def granted(receipt: TxReceipt) -> None:
            event = self.suite.consent.contract.events.ConsentGranted().process_receipt(
                receipt, errors=DISCARD
            )[0]
            p.consents[grantee] = _Consent(
                bytes(event["args"]["grantId"]), terms.actions, terms.not_after, self._time(receipt)
            )

        self.chain.queue(
            label,
            submitter.account,
            self.suite.consent.contract,
            "grantBySig",
            terms.as_tuple(),
            signed.signer,
            signed.nonce,
            signed.deadline,
            signed.signature,
            then=granted,
        )
        self.n["consents_signed"] += 1

    def _standing(
        self, p: _Patient, grantee: Institution, category: str, actions: int, purpose: Purpose
    ) -> None:
        terms = GrantTerms.for_category(p.address, grantee.address, category, actions, purpose)
        self._sign_and_submit(p, grantee, terms, f"{p.label}'s standing consent for {grantee.name}")

    def _check_in(self, p: _Patient, inst: Institution) -> None:
        """The request: at check-in the patient signs a visit consent for the institution (read and
        write if the patient shares, write only otherwise), which the institution submits."""
        actions = Actions.READ | Actions.APPEND if p.shares else Actions.APPEND
        terms = GrantTerms.for_all(
            p.address,
            inst.address,
            int(actions),
            Purpose.TREAT,
            not_after=self.chain.clock + self.model.visit_consent_days * DAY,
        )
        self._sign_and_submit(p, inst, terms, f"{p.label} checks in at {inst.name}")
        self.n["visit_consents"] += 1

    def _revoke(self, p: _Patient, inst: Institution) -> None:
        if not self._may_sign(p, lambda: self._revoke(p, inst)):
            return
        consent = p.consents.get(inst.address)
        if consent is None or consent.revoked or consent.not_after < self.chain.clock:
            return
        client = self.suite.consent
        signed = client.sign_revoke(p.account, consent.grant_id, p.address, deadline=self.chain.clock + DAY)
        if signed.nonce != p.sig_nonce:
            raise ScenarioError(f"{p.label}'s signature nonce is {signed.nonce} on chain, {p.sig_nonce} here")
        p.sig_nonce += 1

        def revoked(_receipt: TxReceipt) -> None:
            consent.revoked = True
            self.n["consents_revoked"] += 1

        self.chain.queue(
            f"{p.label} revokes {inst.name}'s consent",
            p.home.account,
            client.contract,
            "revokeBySig",
            consent.grant_id,
            signed.signer,
            signed.nonce,
            signed.deadline,
            signed.signature,
            then=revoked,
        )
        if self.rng.random() < self.model.follow_up_attempt_share:
            later = self._daytime(self._day() + self.rng.randint(1, 3), 9, 17)
            self.at(later, lambda: self._follow_up_attempt(p, inst))

    # ─── Records ────────────────────────────────────────────────────────────────────────────

    def _anchor(
        self,
        p: _Patient,
        custodian: Institution,
        resource: dict[str, Any],
        into: list[list[_Held]],
        exam: bool = False,
    ) -> None:
        """Encrypts the resource into the store and anchors its salted fingerprint. An ``exam`` is
        an imaging report made in the simulated period: a repeat when the patient has another
        report from the last ``recent_result_days`` (the rule a report applies to the chain)."""
        prepared = self.ehr.prepare(resource, p.address, custodian.address)
        cid = self.store.put(prepared.ciphertext)
        header = prepared.header

        def anchored(receipt: TxReceipt) -> None:
            record = AnchoredRecord(header.record_id, header, cid, int(receipt["blockNumber"]))
            held = _Held(record, self._time(receipt))
            p.records.append(held)
            for bucket in into:
                bucket.append(held)
            self.n["records_anchored"] += 1
            if exam:
                window = self.model.recent_result_days * DAY
                duplicate = any(
                    r is not held and held.anchored_at - r.anchored_at <= window for r in p.reports
                )
                self.exams.append(
                    Exam(
                        p.address,
                        custodian.address,
                        "0x" + header.record_id.hex(),
                        held.anchored_at,
                        duplicate,
                    )
                )
                self.n["exams_done"] += 1
                self.n["duplicate_exams"] += duplicate

        self.chain.queue(
            f"{custodian.name} anchors a {resource['resourceType']} of {p.label}",
            custodian.account,
            self.ehr.contract,
            "anchor",
            header.as_tuple(),
            cid_bytes(cid),
            then=anchored,
        )

    def _read(self, p: _Patient, reader: Institution, held: _Held, purpose: Purpose = Purpose.TREAT) -> None:
        """An audited access (RecordAccessed), as EHRClient.access sends it."""
        record = held.record
        requested = p.consents[reader.address].granted_at if purpose == Purpose.TREAT else None

        def accessed(receipt: TxReceipt) -> None:
            if requested is None:
                self.n["emergency_reads"] += 1
                return
            self.n["cross_institution_reads"] += 1
            self.retrievals.append(
                Retrieval(
                    p.address,
                    reader.address,
                    "0x" + record.id.hex(),
                    bool(record.batch_id),
                    requested,
                    self._time(receipt),
                )
            )

        label = f"{reader.name} reads a {record.header.category_text} of {p.label}"
        if record.batch_id:
            self.chain.queue(
                label,
                reader.account,
                self.ehr.contract,
                "accessBatchedRecord",
                record.header.as_tuple(),
                record.batch_id,
                list(record.proof),
                int(purpose),
                then=accessed,
            )
        else:
            self.chain.queue(
                label,
                reader.account,
                self.ehr.contract,
                "accessRecord",
                record.header.as_tuple(),
                int(purpose),
                then=accessed,
            )

    def attempt_read_without_consent(self, reader: Institution, p: _Patient, held: _Held) -> None:
        """A read tried without consent: it must be refused, and the refusal stays on chain.

        The read goes through ``tryAccessRecord`` (``EHRClient.attempt``): the transaction succeeds
        and EHRIndex records the refusal as an ``AccessDenied`` event instead of reverting, so the
        chain's audit trail shows every blocked attempt (issue 11, item 2) and the KPI report counts
        them from those events.
        """
        if self.ehr.attempt(reader.account, held.record, Purpose.TREAT):
            self.n["unauthorised_reads"] += 1
            raise ScenarioError(
                f"{reader.name} read a record of {p.label} without consent and the chain let it"
            )
        self._refused("AccessDenied")
        self.n["unauthorised_attempts_blocked"] += 1

    def _lab_night_run(self) -> None:
        """The laboratory anchors the day's results as one Merkle batch (EHRClient.anchor_batch)."""
        if not self.lab_queue:
            return
        queue, self.lab_queue = self.lab_queue, []
        lab = self.alliance.laboratory
        _batch, records = self.ehr.anchor_batch(
            lab.account,
            [(p.address, resource) for p, resource in queue],
            self.vault,
            ReaderKey.from_private_key(bytes(lab.account.key)),
        )
        at = self.chain.last_timestamp
        for (p, _resource), record in zip(queue, records, strict=True):
            p.labs.append(_Held(record, at))
        self.n["lab_batches"] += 1
        self.n["lab_results_batched"] += len(records)

    # ─── Care ───────────────────────────────────────────────────────────────────────────────

    def _primary_visit(self, p: _Patient, fraud: bool = False) -> None:
        """A visit to the patient's community clinic: check-in, the clinician opens shared lab
        results, notes and vitals are anchored, a lab panel or a prescription may follow, the visit
        is billed, and some patients are referred on."""
        if not self._may_sign(p, lambda: self._primary_visit(p, fraud)):
            return
        clinic, model, day = p.home, self.model, self._day()
        if day in p.visit_days and not fraud:
            return  # one clinic visit a day
        p.visit_days.add(day)
        self.n["primary_visits"] += 1
        self._check_in(p, clinic)
        now = self.chain.clock
        self.at(now + self._read_delay(), lambda: self._open_history(p, clinic, imaging=False))
        encounters: list[_Held] = []
        vitals: list[_Held] = []
        marker = self.config.phi_marker

        def document() -> None:
            self._anchor(
                p, clinic, encounter(p.label, clinic.name, now, "clinic visit", marker), [encounters]
            )
            if fraud or self.rng.random() < 0.3:
                value = float(self.rng.randint(105, 165))
                self._anchor(p, clinic, vital_signs(p.label, now, value, marker), [vitals])
            if fraud:  # a second note, the evidence of the duplicate claim
                self._anchor(
                    p, clinic, encounter(p.label, clinic.name, now, "follow-up note", marker), [encounters]
                )

        self.at(now + 45 * MINUTE, document)
        if not fraud and self.rng.random() < model.lab_order_share:
            value = round(self.rng.uniform(4.2, 9.8), 1)
            self.lab_queue.append((p, lab_result(p.label, now, value, marker)))
        if p.insured:
            self.at(now + 2 * HOUR, lambda: self._claim(clinic, p, OFFICE_VISIT, encounters[:1]), admin=True)
        if fraud:
            self.at(
                now + 2 * HOUR + 30 * MINUTE, lambda: self._frauds(p, clinic, encounters, vitals), admin=True
            )
            return
        if self.rng.random() < model.prescription_share:
            product = self.rng.choice(PRODUCTS)
            self.at(now + self.rng.randint(1, 3) * HOUR, lambda: self._dispense(p, product))
        if self.rng.random() < model.referral_share:
            to = self.rng.choice((*self.alliance.specialists, *self.alliance.hospitals))
            later = self._daytime(day + self.rng.randint(1, 5), 8, 16)
            self.at(later, lambda: self._hospital_visit(p, to, transfer=False))

    def _hospital_visit(self, p: _Patient, hospital: Institution, transfer: bool) -> None:
        """A referral (or transfer) visit: check-in; the clinician reads recent shared results and,
        if imaging is needed, reads a recent scan from elsewhere instead of repeating it, or
        performs the examination when none can be read; the consultation and any scan are billed."""
        if not self._may_sign(p, lambda: self._hospital_visit(p, hospital, transfer)):
            return
        model, now, day = self.model, self.chain.clock, self._day()
        self.n["transfer_visits" if transfer else "referral_visits"] += 1
        self._check_in(p, hospital)
        imaging = self.rng.random() < model.imaging_share
        prescribe = self.rng.random() < model.prescription_share * 2 / 3
        product = self.rng.choice(PRODUCTS)
        self.at(now + self._read_delay(), lambda: self._open_history(p, hospital, imaging))
        consult: list[_Held] = []
        scan: list[_Held] = []
        marker = self.config.phi_marker

        def document() -> None:
            self._anchor(
                p, hospital, encounter(p.label, hospital.name, now, "consultation", marker), [consult]
            )
            if imaging and not self._recent_readable(p, hospital):
                finding = self.rng.choice(FINDINGS)
                self._anchor(
                    p, hospital, imaging_report(p.label, now, finding, marker), [p.reports], exam=True
                )
                self._anchor(
                    p, hospital, encounter(p.label, hospital.name, now, "CT examination", marker), [scan]
                )

        self.at(now + HOUR, document)
        if p.insured:

            def bill() -> None:
                self._claim(hospital, p, CONSULTATION, consult)
                if scan:
                    self._claim(hospital, p, CT_HEAD, scan)

            self.at(now + 2 * HOUR, bill, admin=True)
        if prescribe:
            self.at(now + 3 * HOUR, lambda: self._dispense(p, product))
        if self.rng.random() < model.revoke_share:
            self.at(self._daytime(day + self.rng.randint(1, 3), 18, 22), lambda: self._revoke(p, hospital))
        if (
            not transfer
            and hospital.kind == Kind.SPECIALIST_HOSPITAL
            and self.rng.random() < model.transfer_share
        ):
            to = self.rng.choice(self.alliance.hospitals)
            self.at(
                self._daytime(day + self.rng.randint(1, 4), 8, 16),
                lambda: self._hospital_visit(p, to, transfer=True),
            )

    def _open_history(self, p: _Patient, reader: Institution, imaging: bool) -> None:
        """The clinician opens what the visit needs: the latest lab result, and (for imaging) the
        latest recent scan from another institution, if the patient lets it read them."""
        consent = p.consents.get(reader.address)
        if consent is None or not consent.reads(self.chain.clock):
            return
        recent = self.chain.clock - self.model.recent_result_days * DAY
        labs = [h for h in p.labs if h.anchored_at >= recent]
        if labs:
            self._read(p, reader, labs[-1])
        if imaging:
            scan = self._recent_scan(p, reader)
            if scan is not None:
                self._read(p, reader, scan)
                self.n["reexams_avoided"] += 1

    def _recent_scan(self, p: _Patient, reader: Institution) -> _Held | None:
        recent = self.chain.clock - self.model.recent_result_days * DAY
        found = [h for h in p.reports if h.anchored_at >= recent and h.custodian != reader.address]
        return found[-1] if found else None

    def _recent_readable(self, p: _Patient, reader: Institution) -> bool:
        """Whether the visit could use a recent scan instead of a new one: its own (no exchange
        needed, so not counted as avoided by sharing), or another institution's that the patient
        lets it read (read in :meth:`_open_history`)."""
        recent = self.chain.clock - self.model.recent_result_days * DAY
        own = any(h.anchored_at >= recent and h.custodian == reader.address for h in p.reports)
        consent = p.consents.get(reader.address)
        shared = (
            consent is not None
            and consent.reads(self.chain.clock)
            and self._recent_scan(p, reader) is not None
        )
        return own or shared

    def _emergency(self, p: _Patient, hospital: Institution) -> None:
        """An emergency: the hospital has no consent, breaks the glass, reads the latest records,
        and the session is reviewed days later (by the patient, or the regulator)."""
        consent = p.consents.get(hospital.address)
        if not p.records or (consent is not None and consent.reads(self.chain.clock)):
            return
        self.n["emergency_visits"] += 1
        justification = hashlib.sha256(f"emergency admission {p.label} {self.chain.clock}".encode()).digest()
        try:
            session = self.suite.consent.open_break_glass(hospital.account, p.address, justification)
        except ContractRevert as exc:
            if exc.error not in ("ConsentBreakGlassLimitReached", "ConsentBreakGlassDisputedForPatient"):
                raise ScenarioError(f"{hospital.name} breaking the glass for {p.label}: {exc}") from None
            self._refused(exc.error)
            return
        self.n["break_glass_sessions"] += 1
        opened = self.chain.last_timestamp
        self.sessions[session] = SessionTiming(session, hospital.address, p.address, opened, None, False)
        latest = [h for h in p.records if h.custodian != hospital.address][-2:]

        def read() -> None:
            for held in latest:
                self._read(p, hospital, held, Purpose.ETREAT)

        self.at(self.chain.clock + 15 * MINUTE, read)
        reviewer = p.account if self.rng.random() < 0.7 else self.alliance.regulator.account
        accept = self.rng.random() >= self.model.dispute_share
        when = self._daytime(self._day() + self.rng.randint(1, 5), 10, 17)
        self.at(when, lambda: self._review_session(session, reviewer, accept), admin=True)

    def _review_session(self, session: int, reviewer: LocalAccount, accept: bool) -> None:
        self.suite.consent.review_break_glass(reviewer, session, accept)
        self.n["break_glass_accepted" if accept else "break_glass_disputed"] += 1
        old = self.sessions[session]
        self.sessions[session] = SessionTiming(
            session, old.institution, old.patient, old.opened_at, self.chain.last_timestamp, not accept
        )

    def _follow_up_attempt(self, p: _Patient, inst: Institution) -> None:
        """After the patient revoked its consent, the hospital tries to open the record again."""
        consent = p.consents.get(inst.address)
        if consent is not None and consent.reads(self.chain.clock):
            return  # the patient came back and consented again
        others = [h for h in p.records if h.custodian != inst.address]
        if others:
            self.attempt_read_without_consent(inst, p, others[-1])

    def _snoop(self) -> None:
        """An institution looks up a patient it has no consent for (refused)."""
        reader = self.rng.choice(self.alliance.providers)
        candidates = [
            p
            for p in self.patients
            if any(h.custodian != reader.address for h in p.records)
            and not (reader.address in p.consents and p.consents[reader.address].reads(self.chain.clock))
        ]
        if not candidates:
            return
        p = self.rng.choice(candidates)
        held = [h for h in p.records if h.custodian != reader.address][-1]
        self.attempt_read_without_consent(reader, p, held)

    # ─── Medicines ──────────────────────────────────────────────────────────────────────────

    def _ship(self, lot: _Lot, source: Institution, to: Institution, quantity: int) -> None:
        """Ships and receives (DrugClient.ship / receive)."""
        drugs = self.suite.drugs
        ref = drugs.ship(source.account, lot.batch_id, to.address, quantity)
        drugs.receive(to.account, ref)
        self.holdings[(lot.batch_id, source.address)] -= quantity
        key = (lot.batch_id, to.address)
        self.holdings[key] = self.holdings.get(key, 0) + quantity
        self.n["shipments"] += 1

    def _stock(self, holder: Institution, product: Product) -> list[_Lot]:
        return [
            lot
            for lot in self.lots
            if lot.product == product
            and not lot.recalled
            and self.holdings.get((lot.batch_id, holder.address), 0) > 0
        ]

    def _dispense(self, p: _Patient, product: Product) -> None:
        """The patient's pharmacy dispenses a pack (DrugClient.dispense_to_patient) and bills it
        with the dispense as evidence."""
        pharmacy = p.pharmacy
        lots = self._stock(pharmacy, product)
        if not lots:
            self.n["stock_outs"] += 1
            self._restock(pharmacy, product)
            return
        lot = lots[0]
        given = self.suite.drugs.dispense_to_patient(pharmacy.account, lot.batch_id, 1, p.address)
        self.holdings[(lot.batch_id, pharmacy.address)] -= 1
        lot.dispensed += 1
        self.n["dispenses"] += 1
        if (
            sum(self.holdings.get((x.batch_id, pharmacy.address), 0) for x in self._stock(pharmacy, product))
            < RESTOCK_BELOW
        ):
            self._restock(pharmacy, product)
        if p.insured:
            self.at(
                self.chain.clock + 30 * MINUTE,
                lambda: self._drug_claim(p, pharmacy, product, given),
                admin=True,
            )

    def _restock(self, pharmacy: Institution, product: Product) -> None:
        """Orders a delivery for tomorrow morning from the pharmacy's distributor, which first
        takes the next active lot from the manufacturer if it has none."""
        key = (pharmacy.address, PRODUCTS.index(product))
        if key in self.restocking:
            return
        self.restocking.add(key)
        index = self.alliance.pharmacies.index(pharmacy)
        distributor = self.alliance.distributors[index % len(self.alliance.distributors)]

        def deliver() -> None:
            self.restocking.discard(key)
            lots = [
                lot
                for lot in self._stock(distributor, product)
                if self.holdings[(lot.batch_id, distributor.address)] >= PHARMACY_STOCK
            ]
            if not lots:
                maker = self.alliance.manufacturers[product.manufacturer]
                fresh = [
                    lot
                    for lot in self._stock(maker, product)
                    if self.holdings[(lot.batch_id, maker.address)] >= 200
                ]
                if not fresh:
                    return
                self._ship(fresh[0], maker, distributor, 200)
                lots = [fresh[0]]
            self._ship(lots[0], distributor, pharmacy, PHARMACY_STOCK)

        self.at(self._daytime(self._day() + 1, 9, 9), deliver, admin=True)

    def _recall(self) -> None:
        """The regulator recalls the most widely spread lot (DrugClient.recall); a pharmacy that has
        not yet heard of it tries to dispense from it and is refused."""
        lot = self.lots[0]
        units = self.suite.drugs.recall(self.alliance.regulator.account, lot.batch_id, RECALL_REASON)
        lot.recalled = True
        self.n["recalls"] += 1
        located = sum(units.values())
        outstanding = PACKS_PER_LOT - lot.dispensed
        self.n["recall_units_located"] += located
        self.n["recall_units_outstanding"] += outstanding
        self.recalls.append(
            RecallTiming("0x" + lot.batch_id.hex(), self.chain.last_timestamp, located, outstanding)
        )
        holders = [
            ph for ph in self.alliance.pharmacies if self.holdings.get((lot.batch_id, ph.address), 0) > 0
        ]
        if holders:
            self.at(self.chain.clock + 2 * HOUR, lambda: self._dispense_recalled(holders[0], lot))
        for pharmacy in holders:
            self._restock(pharmacy, lot.product)

    def _dispense_recalled(self, pharmacy: Institution, lot: _Lot) -> None:
        patient = next(p for p in self.patients if p.pharmacy.address == pharmacy.address)
        try:
            self.suite.drugs.dispense_to_patient(pharmacy.account, lot.batch_id, 1, patient.address)
        except ContractRevert as exc:
            if exc.error != "DrugBatchNotActive":
                raise ScenarioError(f"{pharmacy.name} dispensing from the recalled lot: {exc}") from None
            self._refused(exc.error)
            self.n["recalled_dispenses_blocked"] += 1
            return
        raise ScenarioError(f"{pharmacy.name} dispensed from the recalled lot {lot.lot}")

    # ─── Claims ─────────────────────────────────────────────────────────────────────────────

    def _claim(
        self,
        provider: Institution,
        p: _Patient,
        code: str,
        evidence: list[_Held],
        product: Product | None = None,
        drug: DispenseRef | None = None,
        expect: str | None = None,
    ) -> None:
        """Submits a claim as ClaimsClient.submit does; a fraud attempt names the error expected."""
        plan = self.plans[p.insurer]
        service, proof = plan.file.service(code, int(product.gtin) if product else 0)
        what = f"{provider.name}'s claim {code} for {p.label}"
        if expect is None:
            if not evidence and product is None:
                raise ScenarioError(f"{what}: no evidence was anchored")
            # The contract pays one claim per patient, service code and day (a drug's code is one
            # for every product): a second one the same day is billed the next morning.
            billed = (p.index, code, self.chain.clock // DAY)
            if billed in self.billed:
                later = (self.chain.clock // DAY + 1) * DAY + 9 * HOUR
                self.at(later, lambda: self._claim(provider, p, code, evidence, product, drug), admin=True)
                return
            self.billed.add(billed)

        def submitted(receipt: TxReceipt) -> None:
            events = self.suite.claims.contract.events
            event = events.ClaimSubmitted().process_receipt(receipt, errors=DISCARD)[0]
            claim_id = bytes(event["args"]["claimId"])
            at = self._time(receipt)
            life = _ClaimLife(provider.address, plan.insurer, at)
            self.claim_lives[claim_id] = life
            self.n["claims_submitted"] += 1
            if events.ClaimPaid().process_receipt(receipt, errors=DISCARD):
                life.paid_at = at
                self.n["claims_paid_on_submission"] += 1
                self.n["claims_paid"] += 1
            elif ClaimStatus(int(event["args"]["status"])) == ClaimStatus.PENDED:
                self.n["claims_pended"] += 1
                low, high = self.model.review_delay_days
                when = self._daytime(self._day() + self.rng.randint(low, high), 10, 17)
                self.at(when, lambda: self._review(claim_id, provider), admin=True)

        def refused(exc: ContractRevert) -> None:
            self._refused(exc.error)
            self.n["fraud_attempts"] += 1

        self.chain.queue(
            what,
            provider.account,
            self.suite.claims.contract,
            "submitClaim",
            plan.id,
            p.address,
            [h.record.header.as_tuple() for h in evidence],
            (service.commitment, service.allowed_amount, service.gtin, proof),
            service.allowed_amount,
            drug.as_tuple() if drug else NO_DRUG,
            expect=expect,
            then=submitted,
            refused=refused,
        )

    def _drug_claim(self, p: _Patient, pharmacy: Institution, product: Product, given: Dispense) -> None:
        ref = DispenseRef(
            lot_code(given.lot), given.patient_salt, given.quantity, given.nonce, given.timestamp
        )
        self._claim(pharmacy, p, DRUG, [], product, ref)

    def _review(self, claim_id: bytes, provider: Institution) -> None:
        """The insurer reviews a pended claim: approves it (paid at once) or denies it; a denied
        claim may be appealed."""
        claims, life = self.suite.claims, self.claim_lives[claim_id]
        view = claims.claim(claim_id)
        if self.rng.random() >= self.model.deny_share:
            self._approve(claim_id, view, after_appeal=False)
            return
        claims.deny(life.insurer.account, view, DENIAL_REASON)
        life.first_review_at = self.chain.last_timestamp
        self.n["claims_denied"] += 1
        if self.rng.random() < self.model.appeal_share:
            when = self._daytime(self._day() + self.rng.randint(1, 3), 9, 17)
            self.at(when, lambda: self._appeal(claim_id, provider), admin=True)

    def _approve(self, claim_id: bytes, view: ClaimView, after_appeal: bool) -> None:
        life = self.claim_lives[claim_id]
        status = self.suite.claims.approve(life.insurer.account, view, view.max_payable)
        at = self.chain.last_timestamp
        if after_appeal:
            life.appeal_decided_at = at
        else:
            life.first_review_at = at
        self.n["claims_approved"] += 1
        if status == ClaimStatus.PAID:
            life.paid_at = at
            self.n["claims_paid"] += 1

    def _appeal(self, claim_id: bytes, provider: Institution) -> None:
        claims, life = self.suite.claims, self.claim_lives[claim_id]
        claims.appeal(provider.account, claims.claim(claim_id))
        life.appealed_at = self.chain.last_timestamp
        self.n["claims_appealed"] += 1
        when = self._daytime(self._day() + self.rng.randint(2, 6), 10, 17)

        def decide() -> None:
            if self.rng.random() < self.model.appeal_approve_share:
                self._approve(claim_id, claims.claim(claim_id), after_appeal=True)
                return
            claims.deny(life.insurer.account, claims.claim(claim_id), DENIAL_REASON)
            life.appeal_decided_at = self.chain.last_timestamp
            self.n["claims_denied"] += 1

        self.at(when, decide, admin=True)

    # ─── Fraud ──────────────────────────────────────────────────────────────────────────────

    def _fraud_visit(self, day: int) -> None:
        """A clinic visit billed honestly, then every kind of fraudulent claim the contract refuses."""
        candidates = [p for p in self.patients if p.insured and day not in p.visit_days]
        p = self.rng.choice(candidates) if candidates else self.patients[0]
        self._primary_visit(p, fraud=True)

    def _frauds(self, p: _Patient, clinic: Institution, encounters: list[_Held], vitals: list[_Held]) -> None:
        other = self.alliance.specialists[p.index % len(self.alliance.specialists)]
        product = PRODUCTS[0]
        attempts: list[tuple[Institution, list[_Held], str, Product | None, DispenseRef | None]] = [
            # The same service for the same patient the same day, on fresh evidence.
            (clinic, encounters[1:2], OFFICE_VISIT, None, None),
            # No record at all.
            (clinic, [], OFFICE_VISIT, None, None),
            # Another provider's record as evidence.
            (other, encounters[1:2], OFFICE_VISIT, None, None),
            # A record the insurer may not see for payment (vital signs: no payment consent).
            (clinic, vitals[:1], OFFICE_VISIT, None, None),
            # A drug claim for a dispense that never happened.
            (
                p.pharmacy,
                [],
                DRUG,
                product,
                DispenseRef(lot_code(self.lots[1].lot), self.rng.randbytes(32), 1, 7, self.chain.clock),
            ),
        ]
        for (provider, evidence, code, prod, drug), expected in zip(
            attempts, FRAUD_KINDS.values(), strict=True
        ):
            self._claim(provider, p, code, evidence, prod, drug, expect=expected)

    # ─── Helpers ────────────────────────────────────────────────────────────────────────────

    def _refused(self, error: str) -> None:
        self.refusals[error] = self.refusals.get(error, 0) + 1

    def _time(self, receipt: TxReceipt) -> int:
        return self.chain.time_of(int(receipt["blockNumber"]))

    def _day(self) -> int:
        return (self.chain.clock - self.t0) // DAY

    def _daytime(self, day: int, first_hour: int, last_hour: int) -> int:
        minutes = self.rng.randrange(0, (last_hour - first_hour) * 60 + 1, 5)
        return self.t0 + day * DAY + first_hour * HOUR + minutes * MINUTE

    def _read_delay(self) -> int:
        low, mode, high = self.model.read_delay_minutes
        return int(self.rng.triangular(low, high, mode)) * MINUTE

    # ─── Result ─────────────────────────────────────────────────────────────────────────────

    def counts(self) -> SimulatorCounts:
        return SimulatorCounts(**self.n, refusals=dict(sorted(self.refusals.items())))

    def timings(self) -> SimulatorTimings:
        claims = tuple(
            ClaimTiming(
                "0x" + cid.hex(),
                life.provider,
                life.submitted_at,
                life.first_review_at,
                life.appealed_at,
                life.appeal_decided_at,
                life.paid_at,
            )
            for cid, life in self.claim_lives.items()
        )
        return SimulatorTimings(
            tuple(self.retrievals),
            tuple(self.exams),
            claims,
            tuple(self.sessions.values()),
            tuple(self.recalls),
        )


# ─── Entry point ────────────────────────────────────────────────────────────────────────────────


def check_node(w3: Web3) -> None:
    """Raises ConfigurationError unless ``w3`` is a local Anvil (the scenario sets balances, mines
    blocks and replays refusals through Anvil's own methods)."""
    chain_id = int(w3.eth.chain_id)
    if chain_id not in LOCAL_CHAIN_IDS:
        raise ConfigurationError(
            f"chain {chain_id} is not a local development chain: the scenario mints ether and tokens and "
            "mines its own blocks, so it runs on a local Anvil only"
        )
    try:
        client = str(w3.provider.make_request("web3_clientVersion", []).get("result", ""))  # type: ignore[arg-type]
    except Exception:
        client = ""
    if not client.lower().startswith("anvil"):
        raise ConfigurationError(
            f"the node is {client or 'unknown'}, not Anvil: the scenario needs Anvil's evm_mine with a "
            "timestamp, anvil_setBalance and debug_traceTransaction"
        )
    base_fee = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    if base_fee:
        raise ConfigurationError(
            f"the chain's base fee is {base_fee} wei: the scenario sends at gas price 0, so it needs an "
            "Anvil started with --block-base-fee-per-gas 0 (as `medchain chain up` and the throw-away chain)"
        )


def check_manifest_target(path: Path, chain_id: int) -> None:
    """Refuses to overwrite a manifest of another chain (one line)."""
    if not path.is_file():
        return
    try:
        existing = Deployment.from_json(path.read_text(), source=str(path))
    except ManifestError:
        return  # not a manifest we could lose
    if existing.chain_id != chain_id:
        raise ManifestError(
            f"{path} is the manifest of chain {existing.chain_id}, not of this chain ({chain_id}); give "
            "another --manifest for the scenario's deployment"
        )


def run_scenario(
    w3: Web3,
    config: ScenarioConfig,
    manifest_path: Path,
    work_dir: Path,
    progress: Progress | None = None,
) -> ScenarioResult:
    """Deploys the suite on a local Anvil, builds the alliance through governance and runs the
    seeded workload; returns what it did.

    Args:
        w3: A connection to a local Anvil (the scenario controls its mining while it runs).
        config: Size and seed.
        manifest_path: Where the deployment manifest is written.
        work_dir: Where the off-chain store and the plans' coverage files are kept.
        progress: Told about each stage and step (a progress bar, for example).

    Raises:
        ConfigurationError: a size the scenario cannot run, or a node that is not a local Anvil.
        ManifestError: ``manifest_path`` holds the manifest of another chain.
        ScenarioError: something the scenario expected did not happen on chain.
    """
    config.check()
    check_node(w3)
    chain_id = int(w3.eth.chain_id)
    check_manifest_target(manifest_path, chain_id)
    started = time.monotonic()
    chain = SimChain(w3)
    chain.start()
    try:
        sim = Simulation(chain, config, work_dir, manifest_path, progress or _Silent())
        suite = sim.run()
    except BaseException:
        chain.abandon()
        raise
    chain.stop()
    wall = time.monotonic() - started
    institutions = kind_counts([m.kind for m in sim.alliance.members])
    return ScenarioResult(
        manifest_path=manifest_path,
        chain_id=chain_id,
        from_block=suite.deployment.deploy_block,
        first_day_block=chain.first_block_from(sim.t0),
        to_block=chain.head,
        seed=config.seed,
        patients=config.patients,
        days=config.days,
        institutions=institutions,
        started_at=sim.t0,
        ended_at=chain.last_timestamp,
        wall_seconds=round(wall, 2),
        transactions=chain.sent,
        refused_transactions=chain.failed,
        blocks=chain.blocks,
        simulated=sim.counts(),
        timings=sim.timings(),
        work_dir=work_dir,
    )

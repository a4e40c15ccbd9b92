"""Insurer- and provider-facing clients for ClaimsProcessor and salted coverage tables.

The FHIR Claim / ClaimResponse export is in :mod:`medchain.fhir`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from medchain.chain import Chain, ContractClient, Sender
from medchain.ehr import AnchoredRecord, RecordHeader
from medchain.eip712 import sign_typed
from medchain.errors import ChainError, MedChainError
from medchain.merkle import MerkleTree
from medchain.types import (
    ZERO32,
    ClaimId,
    ClaimStatus,
    DispenseId,
    PlanId,
    RecordId,
    fixed_ascii,
    patient_ref,
)

ENROL_FIELDS = [
    {"name": "planId", "type": "uint256"},
    {"name": "patient", "type": "address"},
    {"name": "start", "type": "uint40"},
    {"name": "end", "type": "uint40"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
CONSORTIUM_BILLING = "urn:medchain:billing-code"
"""The consortium's own billing code system, for services without a CPT or HCPCS code."""
MEDICATION_DISPENSE = "MedicationDispense"
"""The consent category of dispenses. To bill one, the insurer needs the patient's READ consent for
HPAYMT on it (or on the dispense id, or on all data), and the dispenser the patient's treatment
relationship: APPEND consent for TREAT on it (or on all data), as a custodian needs for a record."""

# RecordAnchored(bytes32 indexed recordId, address indexed patient, address indexed custodian,
#                bytes32 fingerprint, bytes32 category, bytes32 previous, bytes cid)
_RECORD_ANCHORED = Web3.keccak(
    text="RecordAnchored(bytes32,address,address,bytes32,bytes32,bytes32,bytes)"
).to_0x_hex()


class ClaimNotFoundError(MedChainError):
    """No claim with that id was submitted."""


@dataclass(frozen=True)
class CoveredService:
    """A billing code and its allowed amount; the salt hides the code from outsiders on chain.

    A drug service also names its product (``gtin``): it can only be claimed with a dispense of a
    batch of that GTIN. Other services have ``gtin`` 0.
    """

    code: str
    allowed_amount: int
    salt: bytes
    gtin: int = 0
    system: str = CONSORTIUM_BILLING
    """The code's code system (CPT, HCPCS or the consortium's schedule); kept off chain, for exports."""

    @property
    def commitment(self) -> bytes:
        return bytes(Web3.keccak(abi_encode(["string", "bytes32"], [self.code, self.salt])))

    @property
    def leaf_id(self) -> bytes:
        return bytes(
            Web3.keccak(
                abi_encode(["bytes32", "uint64", "uint64"], [self.commitment, self.allowed_amount, self.gtin])
            )
        )


ServiceKey = str | tuple[str, int]
"""A coverage table key: a billing code, or (billing code, GTIN) for a drug product."""


class CoverageTable:
    """A plan's covered services; its Merkle root goes on chain, the table to network providers.

    Keys are billing codes, or (billing code, GTIN) pairs for drugs: one code may cover several
    products, each with its own allowed amount.
    """

    def __init__(
        self,
        services: Mapping[ServiceKey, int],
        salt: bytes | None = None,
        systems: Mapping[str, str] | None = None,
    ) -> None:
        """Args:
        services: Allowed amount per billing code (or per (code, GTIN) for drugs).
        salt: The table's salt (a fresh random one by default).
        systems: Code system per billing code (default: the consortium's schedule).
        """
        self.salt = salt or os.urandom(32)
        self.services: dict[tuple[str, int], CoveredService] = {}
        for key, amount in services.items():
            code, gtin = (key, 0) if isinstance(key, str) else key
            system = (systems or {}).get(code, CONSORTIUM_BILLING)
            self.services[(code, gtin)] = CoveredService(code, amount, self.salt, gtin, system)
        self.tree = MerkleTree([s.leaf_id for s in self.services.values()])

    @property
    def root(self) -> bytes:
        return self.tree.root

    def service(self, code: str, gtin: int = 0) -> tuple[CoveredService, list[bytes]]:
        """The covered service and its Merkle proof.

        Raises:
            KeyError: the plan does not cover ``code`` (for product ``gtin``).
        """
        try:
            service = self.services[(code, gtin)]
        except KeyError:
            product = f" for GTIN {gtin}" if gtin else ""
            raise KeyError(f"{code}{product} is not a covered service of this plan") from None
        return service, self.tree.proof(service.leaf_id)


@dataclass(frozen=True)
class PlanTerms:
    covered_root: bytes
    deductible: int
    coinsurance_bps: int
    per_claim_limit: int
    annual_limit: int
    auto_pay_ceiling: int

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.covered_root,
            self.deductible,
            self.coinsurance_bps,
            self.per_claim_limit,
            self.annual_limit,
            self.auto_pay_ceiling,
        )


@dataclass(frozen=True)
class PlanView:
    """A plan's pool: ``reserved`` is what pended, appealed and approved-unpaid claims need."""

    id: int
    insurer: str
    pool: int
    reserved: int
    terms: PlanTerms

    @property
    def surplus(self) -> int:
        """What the insurer may withdraw."""
        return max(self.pool - self.reserved, 0)


@dataclass(frozen=True)
class EnrolmentView:
    """A patient's coverage period and the totals of its latest coverage year with a claim."""

    start: int
    end: int
    year: int
    deductible_met: int
    paid_in_year: int
    year_origin: int


def lot_code(lot: str | bytes) -> bytes:
    """A lot as DrugProvenance's bytes20 (ASCII, zero-padded)."""
    return lot.ljust(20, b"\0") if isinstance(lot, bytes) else fixed_ascii(lot, 20, "lot")


@dataclass(frozen=True)
class DispenseRef:
    """A dispense a drug claim bills: the lot of the batch (the service gives the GTIN), the
    pharmacy's patient salt, and the quantity, nonce (the dispenser's available units before the
    dispense) and block time that DrugProvenance hashed into the dispense id."""

    lot: bytes
    patient_salt: bytes
    quantity: int
    nonce: int
    timestamp: int

    def as_tuple(self) -> tuple[Any, ...]:
        return (lot_code(self.lot), self.patient_salt, self.quantity, self.nonce, self.timestamp)

    def dispense_id(self, gtin: int, dispenser: str, patient: str) -> bytes:
        """The id DrugProvenance gave this dispense (what the claim proves and uses up)."""
        batch_id = Web3.keccak(abi_encode(["uint64", "bytes20"], [gtin, lot_code(self.lot)]))
        values = [
            batch_id,
            Web3.to_checksum_address(dispenser),
            patient_ref(patient, self.patient_salt),
            self.quantity,
            self.nonce,
            self.timestamp,
        ]
        types = ["bytes32", "address", "bytes32", "uint64", "uint64", "uint256"]
        return bytes(Web3.keccak(abi_encode(types, values)))


NO_DRUG = (b"\0" * 20, ZERO32, 0, 0, 0)


@dataclass(frozen=True)
class ClaimRecord:
    """A claim's immutable record (``IClaimsProcessor.ClaimRecord``): what the contract hashed into
    its id and what every later call on the claim repeats."""

    plan_id: PlanId
    provider: str
    patient: str
    evidence: bytes
    """keccak256 of the evidence headers (or of the dispense for a pharmacy's drug claim)."""
    service_commitment: bytes
    billed: int
    max_payable: int
    patient_share: int
    deductible_part: int
    year: int
    submitted_at: int

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.plan_id,
            self.provider,
            self.patient,
            self.evidence,
            self.service_commitment,
            self.billed,
            self.max_payable,
            self.patient_share,
            self.deductible_part,
            self.year,
            self.submitted_at,
        )

    @classmethod
    def from_event(cls, record: Any) -> ClaimRecord:
        """From the ``record`` field of a ``ClaimSubmitted`` event (web3's decoded struct)."""
        return cls(
            PlanId(int(record["planId"])),
            Web3.to_checksum_address(record["provider"]),
            Web3.to_checksum_address(record["patient"]),
            bytes(record["evidence"]),
            bytes(record["serviceCommitment"]),
            int(record["billed"]),
            int(record["maxPayable"]),
            int(record["patientShare"]),
            int(record["deductiblePart"]),
            int(record["year"]),
            int(record["submittedAt"]),
        )


@dataclass(frozen=True)
class ClaimView:
    """A claim: its immutable record (from the ClaimSubmitted event) and its current state.

    ``amount`` is the maximum payable while pended or appealed, the approved amount after;
    ``patient_share`` and ``deductible_part`` are the current figures (an appeal re-adjudicates
    them; a denied claim takes nothing). The submission figures stay in ``record``. The CLI's
    approve defaults to ``max_payable``, which follows an appeal's re-adjudication.
    """

    id: ClaimId
    record: ClaimRecord
    status: ClaimStatus
    appealed: bool
    share_settled: bool
    amount: int
    deductible_part: int
    patient_share: int

    @property
    def plan_id(self) -> PlanId:
        return self.record.plan_id

    @property
    def provider(self) -> str:
        return self.record.provider

    @property
    def patient(self) -> str:
        return self.record.patient

    @property
    def max_payable(self) -> int:
        """The most the insurer may approve: the current maximum while the claim is pended or
        appealed (an appeal re-adjudicates it), the figure adjudicated at submission otherwise."""
        if self.status in (ClaimStatus.PENDED, ClaimStatus.APPEALED):
            return self.amount
        return self.record.max_payable

    @property
    def billed(self) -> int:
        return self.record.billed

    @property
    def year(self) -> int:
        return self.record.year

    @property
    def submitted_at(self) -> int:
        return self.record.submitted_at


@dataclass(frozen=True)
class PlanReport:
    """A plan's totals: claims per status, amounts paid, the pool left and what of it is reserved."""

    plan: PlanId
    insurer: str
    claims: int
    by_status: Mapping[str, int]
    paid: int
    pool: int
    reserved: int
    patient_shares_open: int


@dataclass(frozen=True)
class ClaimEvidence:
    """What the contract checked for a claim, read back from the chain.

    ``headers`` are the evidence record headers the submitting transaction passed (amended records
    followed by their earlier versions), each hashed to its id; the first id is the one the claim's
    record names. ``dispense_id`` is the dispense a drug claim billed.
    """

    headers: tuple[RecordHeader, ...]
    dispense_id: DispenseId | None

    @property
    def record_ids(self) -> tuple[RecordId, ...]:
        return tuple(h.record_id for h in self.headers)


@dataclass(frozen=True)
class ClaimTimeline:
    """When a claim was decided, from its events (chain time, seconds)."""

    submitted_at: int
    reviewed_at: int | None
    """The insurer's latest approve or deny (None while the claim was never reviewed)."""
    denial_reason: int | None
    appealed_at: int | None
    paid_at: int | None
    paid_amount: int


def version_chain(header: RecordHeader, earlier: Mapping[bytes, RecordHeader]) -> list[RecordHeader]:
    """``header`` followed by its earlier versions, newest first, as a claim's evidence lists them.

    Raises:
        MedChainError: a version ``header`` descends from is not in ``earlier``.
    """
    chain = [header]
    while chain[-1].previous != ZERO32:
        previous = earlier.get(chain[-1].previous)
        if previous is None or previous.record_id != chain[-1].previous:
            raise MedChainError(f"version 0x{chain[-1].previous.hex()} of an amended record was not found")
        chain.append(previous)
    return chain


class ClaimsClient(ContractClient):
    """Plans, enrolment, claims, review and reports over one ClaimsProcessor."""

    def __init__(self, chain: Chain, contract: Contract, token: Contract, from_block: int = 0) -> None:
        super().__init__(chain, contract, from_block)
        self.token = token

    # ─── Insurer ────────────────────────────────────────────────────────────────────────────

    def create_plan(self, insurer: Sender, terms: PlanTerms) -> PlanId:
        receipt = self._send(insurer, "createPlan", terms.as_tuple())
        return PlanId(int(self._emitted_field(receipt, "PlanCreated", "planId")))

    def fund(self, funder: Sender, plan_id: int, amount: int) -> None:
        """Approves the token allowance and moves ``amount`` into the plan's pool."""
        self._approve_token(funder, amount)
        self._send(funder, "fund", plan_id, amount)

    def withdraw(self, insurer: Sender, plan_id: int, amount: int) -> int:
        """The plan's insurer takes ``amount`` of the pool's surplus back; returns the pool left.

        Raises:
            ContractRevert: ``ClaimsWithdrawalAboveSurplus`` beyond what reserved claims leave.
        """
        self._send(insurer, "withdraw", plan_id, amount)
        return self.plan(plan_id).pool

    def sign_enrolment(
        self, patient: LocalAccount, plan_id: int, start: int, end: int, deadline: int | None = None
    ) -> tuple[int, bytes]:
        """The patient's signed agreement to join (or renew) a plan; returns (deadline, signature)."""
        nonce = int(self._call("enrolNonce", patient.address))
        deadline = deadline or self.now() + 3600
        message = {
            "planId": plan_id,
            "patient": patient.address,
            "start": start,
            "end": end,
            "nonce": nonce,
            "deadline": deadline,
        }
        return deadline, sign_typed(self.chain, self.contract, patient, "Enrol", ENROL_FIELDS, message)

    def enrol(
        self,
        insurer: Sender,
        plan_id: int,
        patient: str,
        start: int,
        end: int,
        deadline: int,
        signature: bytes,
    ) -> None:
        """Enrols the patient, or renews a lapsed enrolment (a period starting after the last one
        ended; coverage years and their totals carry on)."""
        self._send(
            insurer, "enrol", plan_id, Web3.to_checksum_address(patient), start, end, deadline, signature
        )

    def approve(self, insurer: Sender, claim: ClaimView, amount: int) -> ClaimStatus:
        """Approves a pended or appealed claim for ``amount`` (at most its current maximum,
        ``claim.amount``); returns its status."""
        self._send(insurer, "approve", claim.record.as_tuple(), amount)
        return self.claim(claim.id).status

    def deny(self, insurer: Sender, claim: ClaimView, reason: int) -> None:
        self._send(insurer, "deny", claim.record.as_tuple(), reason)

    def pending_claims(self, plan_id: int) -> list[ClaimView]:
        """Claims of a plan waiting for the insurer (pended or appealed).

        Raises:
            ContractRevert: ``ClaimsUnknownPlan`` for a plan that does not exist.
        """
        self._call("plan", plan_id)
        return [
            c for c in self.claims_of_plan(plan_id) if c.status in (ClaimStatus.PENDED, ClaimStatus.APPEALED)
        ]

    def report(self, plan_id: int) -> PlanReport:
        """Totals per status, amounts paid, the pool left and what of it is reserved."""
        claims = self.claims_of_plan(plan_id)
        by_status: dict[str, int] = {}
        for c in claims:
            by_status[c.status.name.lower()] = by_status.get(c.status.name.lower(), 0) + 1
        plan = self.plan(plan_id)
        return PlanReport(
            plan=PlanId(plan_id),
            insurer=plan.insurer,
            claims=len(claims),
            by_status=by_status,
            paid=int(self._call("totalPaid", plan_id)),
            pool=plan.pool,
            reserved=plan.reserved,
            patient_shares_open=sum(
                c.patient_share for c in claims if c.status == ClaimStatus.PAID and not c.share_settled
            ),
        )

    # ─── Provider ───────────────────────────────────────────────────────────────────────────

    def submit(
        self,
        provider: Sender,
        plan_id: int,
        patient: str,
        evidence: Sequence[AnchoredRecord],
        service: CoveredService,
        proof: list[bytes],
        billed: int,
        drug: DispenseRef | None = None,
    ) -> ClaimView:
        """Submits a claim; returns it as adjudicated (paid, approved awaiting funds, or pended).

        Args:
            evidence: The encounter's records (amended ones are sent with their earlier versions,
                looked up on chain). Empty for a pharmacy's drug claim: the dispense is the evidence.
            service: A drug service (one with a GTIN) needs ``drug``, a dispense of that product
                by ``provider`` to ``patient``; other services take no dispense.

        Raises:
            ContractRevert: the contract's refusal by name, e.g. ``ClaimsNoPaymentConsent`` (the
                insurer may not see the evidence for payment) or ``ClaimsNoTreatmentRelationship``
                (the patient gave the dispenser no APPEND/TREAT consent over ``MedicationDispense``).
        """
        headers: list[RecordHeader] = []
        for record in evidence:
            headers += version_chain(record.header, self._earlier_versions(record.header))
        receipt = self._send(
            provider,
            "submitClaim",
            plan_id,
            Web3.to_checksum_address(patient),
            [h.as_tuple() for h in headers],
            (service.commitment, service.allowed_amount, service.gtin, proof),
            billed,
            drug.as_tuple() if drug else NO_DRUG,
        )
        claim_id = ClaimId(bytes(self._emitted_field(receipt, "ClaimSubmitted", "claimId")))
        return self.claim(claim_id)

    def appeal(self, provider: Sender, claim: ClaimView) -> ClaimView:
        """Appeals a denied claim (once); returns it re-adjudicated and waiting for review."""
        self._send(provider, "appeal", claim.record.as_tuple())
        return self.claim(claim.id)

    def pay_out(self, sender: Sender, claim: ClaimView) -> None:
        """Pays an approved claim that waited for pool funds."""
        self._send(sender, "payOut", claim.record.as_tuple())

    # ─── Patient ────────────────────────────────────────────────────────────────────────────

    def settle_share(self, patient: Sender, claim: ClaimView) -> int:
        """The patient approves and pays its co-payment to the provider through the contract."""
        share = claim.patient_share
        self._approve_token(patient, share)
        self._send(patient, "settlePatientShare", claim.record.as_tuple())
        return share

    # ─── Reads ──────────────────────────────────────────────────────────────────────────────

    def plan(self, plan_id: int) -> PlanView:
        insurer, pool, terms, reserved = self._call("plan", plan_id)
        return PlanView(plan_id, str(insurer), int(pool), int(reserved), PlanTerms(*terms))

    def enrolment(self, plan_id: int, patient: str) -> EnrolmentView:
        raw = self._call("enrolment", plan_id, Web3.to_checksum_address(patient))
        return EnrolmentView(*(int(v) for v in raw))

    def year_usage(self, plan_id: int, patient: str, year: int) -> tuple[int, int]:
        """(deductible met, paid or reserved) by the claims of coverage year ``year``."""
        met, paid = self._call("yearUsage", plan_id, Web3.to_checksum_address(patient), year)
        return int(met), int(paid)

    def claim(self, claim_id: bytes) -> ClaimView:
        """A claim by id: its record from the ClaimSubmitted event, its state from the contract.

        Raises:
            ClaimNotFoundError: no claim with that id was submitted.
        """
        logs = self._events("ClaimSubmitted", claimId=claim_id)
        if not logs:
            raise ClaimNotFoundError(f"no claim 0x{claim_id.hex()} was submitted")
        return self._view(ClaimId(claim_id), ClaimRecord.from_event(logs[0]["args"]["record"]))

    def claims_of_plan(self, plan_id: int) -> list[ClaimView]:
        return [
            self._view(ClaimId(bytes(log["args"]["claimId"])), ClaimRecord.from_event(log["args"]["record"]))
            for log in self._events("ClaimSubmitted", planId=plan_id)
        ]

    def _view(self, claim_id: ClaimId, record: ClaimRecord) -> ClaimView:
        status, appealed, settled, amount, deductible, share = self._call("claim", claim_id)
        return ClaimView(
            claim_id,
            record,
            ClaimStatus(status),
            bool(appealed),
            bool(settled),
            int(amount),
            int(deductible),
            int(share),
        )

    def evidence(self, claim: ClaimView) -> ClaimEvidence:
        """The evidence the contract checked, decoded from the submitting transaction's input.

        The chain stores only the first evidence id in the claim's record; the full list travels in
        the ``submitClaim`` call. Each header is hashed to its id and the first is checked against
        the record, so nothing here is taken on trust.

        Raises:
            ChainError: the claim was submitted through another contract (its input is not a
                ``submitClaim`` call), or the decoded evidence does not match the claim's record.
        """
        logs = self._events("ClaimSubmitted", claimId=claim.id)
        if not logs:
            raise ClaimNotFoundError(f"no claim 0x{claim.id.hex()} was submitted")
        tx = self.chain.w3.eth.get_transaction(logs[0]["transactionHash"])
        try:
            function, args = self.contract.decode_function_input(tx["input"])
        except ValueError:
            function, args = None, {}
        if function is None or function.fn_name != "submitClaim" or tx.get("to") != self.contract.address:
            raise ChainError(
                f"claim 0x{claim.id.hex()} was submitted through another contract; its evidence list is "
                "not in a direct submitClaim call"
            )
        headers = tuple(
            RecordHeader(
                Web3.to_checksum_address(h["patient"]),
                Web3.to_checksum_address(h["custodian"]),
                bytes(h["fingerprint"]),
                bytes(h["category"]),
                bytes(h["previous"]),
            )
            for h in args["evidence"]
        )
        gtin, drug = int(args["service"]["gtin"]), args["drug"]
        dispense: DispenseId | None = None
        if gtin:
            ref = DispenseRef(
                bytes(drug["lot"]),
                bytes(drug["patientSalt"]),
                int(drug["quantity"]),
                int(drug["nonce"]),
                int(drug["timestamp"]),
            )
            dispense = DispenseId(ref.dispense_id(gtin, claim.provider, claim.patient))
        first = headers[0].record_id if headers else dispense
        if first != claim.record.evidence:
            raise ChainError(f"the evidence decoded for claim 0x{claim.id.hex()} does not match its record")
        return ClaimEvidence(headers, dispense)

    def timeline(self, claim_id: bytes) -> ClaimTimeline:
        """When the claim was submitted, reviewed, appealed and paid (from its events)."""
        claim = self.claim(claim_id)
        reviewed = self._events("ClaimReviewed", claimId=claim_id)
        appealed = self._events("ClaimAppealed", claimId=claim_id)
        paid = self._events("ClaimPaid", claimId=claim_id)
        blocks = sorted({int(log["blockNumber"]) for log in (*reviewed, *appealed, *paid)})
        times = self.chain.block_times(blocks)

        def at(logs: list[Any]) -> int | None:
            return times[int(logs[-1]["blockNumber"])] if logs else None

        last_review = reviewed[-1]["args"] if reviewed else None
        denied = last_review is not None and ClaimStatus(last_review["status"]) == ClaimStatus.DENIED
        return ClaimTimeline(
            submitted_at=claim.submitted_at,
            reviewed_at=at(reviewed),
            denial_reason=int(last_review["reason"]) if denied and last_review is not None else None,
            appealed_at=at(appealed),
            paid_at=at(paid),
            paid_amount=sum(int(log["args"]["amount"]) for log in paid),
        )

    def _approve_token(self, owner: Sender, amount: int) -> None:
        """Lets the contract take ``amount`` of the settlement token from ``owner``."""
        self.chain.transact(self.token.functions.approve(self.contract.address, amount), owner)

    def _earlier_versions(self, header: RecordHeader) -> dict[bytes, RecordHeader]:
        """The earlier versions of an amended record, from the chain's RecordAnchored events.

        Each header is checked against its id (the hash the contract checks too), so the lookup
        can trust any log that carries the event, whichever contract emitted it.
        """
        found: dict[bytes, RecordHeader] = {}
        wanted = header.previous
        while wanted != ZERO32:
            logs = self.chain.w3.eth.get_logs(
                {
                    "fromBlock": self.from_block,
                    "toBlock": "latest",
                    "topics": [_RECORD_ANCHORED, "0x" + wanted.hex()],
                }
            )
            match = next((h for h in map(_header_from_log, logs) if h.record_id == wanted), None)
            if match is None:
                raise MedChainError(f"version 0x{wanted.hex()} of an amended record is not anchored")
            found[wanted] = match
            wanted = match.previous
        return found


def _header_from_log(log: Any) -> RecordHeader:
    topics = log["topics"]
    fingerprint, category, previous, _cid = abi_decode(
        ["bytes32", "bytes32", "bytes32", "bytes"], bytes(log["data"])
    )
    return RecordHeader(
        Web3.to_checksum_address(bytes(topics[2])[12:]),
        Web3.to_checksum_address(bytes(topics[3])[12:]),
        bytes(fingerprint),
        bytes(category),
        bytes(previous),
    )

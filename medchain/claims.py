"""Insurer- and provider-facing clients for ClaimsProcessor, salted coverage tables, FHIR export."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from medchain.chain import Chain, ContractClient, Sender
from medchain.ehr import AnchoredRecord, RecordHeader
from medchain.eip712 import sign_typed
from medchain.errors import MedChainError
from medchain.merkle import MerkleTree
from medchain.types import fixed_ascii, patient_ref

ZERO32 = b"\0" * 32
ENROL_FIELDS = [
    {"name": "planId", "type": "uint256"},
    {"name": "patient", "type": "address"},
    {"name": "start", "type": "uint40"},
    {"name": "end", "type": "uint40"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
MEDICATION_DISPENSE = "MedicationDispense"
"""The consent category of dispenses. To bill one, the insurer needs the patient's READ consent for
HPAYMT on it (or on the dispense id, or on all data), and the dispenser the patient's treatment
relationship: APPEND consent for TREAT on it (or on all data), as a custodian needs for a record."""

# RecordAnchored(bytes32 indexed recordId, address indexed patient, address indexed custodian,
#                bytes32 fingerprint, bytes32 category, bytes32 previous, bytes cid)
_RECORD_ANCHORED = Web3.keccak(
    text="RecordAnchored(bytes32,address,address,bytes32,bytes32,bytes32,bytes)"
).to_0x_hex()


class ClaimStatus(IntEnum):
    NONE = 0
    PENDED = 1
    APPROVED = 2
    PAID = 3
    DENIED = 4
    APPEALED = 5


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

    def __init__(self, services: Mapping[ServiceKey, int], salt: bytes | None = None) -> None:
        self.salt = salt or os.urandom(32)
        self.services: dict[tuple[str, int], CoveredService] = {}
        for key, amount in services.items():
            code, gtin = (key, 0) if isinstance(key, str) else key
            self.services[(code, gtin)] = CoveredService(code, amount, self.salt, gtin)
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


RECORD_FIELDS = (
    "planId",
    "provider",
    "patient",
    "evidence",
    "serviceCommitment",
    "billed",
    "maxPayable",
    "patientShare",
    "deductiblePart",
    "year",
    "submittedAt",
)


@dataclass(frozen=True)
class ClaimView:
    """A claim: its immutable record (from the ClaimSubmitted event) and its current state.

    ``amount`` is the maximum payable while pended or appealed, the approved amount after;
    ``patient_share`` and ``deductible_part`` are the current figures (an appeal re-adjudicates
    them; a denied claim takes nothing). The submission figures stay in ``record``. The CLI's
    approve defaults to ``max_payable``, which follows an appeal's re-adjudication.
    """

    id: bytes
    record: tuple[Any, ...]
    status: ClaimStatus
    appealed: bool
    share_settled: bool
    amount: int
    deductible_part: int
    patient_share: int

    def _field(self, name: str) -> Any:
        return self.record[RECORD_FIELDS.index(name)]

    @property
    def plan_id(self) -> int:
        return int(self._field("planId"))

    @property
    def provider(self) -> str:
        return str(self._field("provider"))

    @property
    def patient(self) -> str:
        return str(self._field("patient"))

    @property
    def max_payable(self) -> int:
        """The most the insurer may approve: the current maximum while the claim is pended or
        appealed (an appeal re-adjudicates it), the figure adjudicated at submission otherwise."""
        if self.status in (ClaimStatus.PENDED, ClaimStatus.APPEALED):
            return self.amount
        return int(self._field("maxPayable"))

    @property
    def billed(self) -> int:
        return int(self._field("billed"))

    @property
    def year(self) -> int:
        return int(self._field("year"))

    @property
    def submitted_at(self) -> int:
        return int(self._field("submittedAt"))


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

    def create_plan(self, insurer: Sender, terms: PlanTerms) -> int:
        receipt = self.chain.transact(self.contract.functions.createPlan(terms.as_tuple()), insurer)
        return int(
            self.contract.events.PlanCreated().process_receipt(receipt, errors=DISCARD)[0]["args"]["planId"]
        )

    def fund(self, funder: Sender, plan_id: int, amount: int) -> None:
        """Approves the token allowance and moves ``amount`` into the plan's pool."""
        self.chain.transact(self.token.functions.approve(self.contract.address, amount), funder)
        self.chain.transact(self.contract.functions.fund(plan_id, amount), funder)

    def withdraw(self, insurer: Sender, plan_id: int, amount: int) -> int:
        """The plan's insurer takes ``amount`` of the pool's surplus back; returns the pool left.

        Raises:
            ContractRevert: ``ClaimsWithdrawalAboveSurplus`` beyond what reserved claims leave.
        """
        self.chain.transact(self.contract.functions.withdraw(plan_id, amount), insurer)
        return self.plan(plan_id).pool

    def sign_enrolment(
        self, patient: LocalAccount, plan_id: int, start: int, end: int, deadline: int | None = None
    ) -> tuple[int, bytes]:
        """The patient's signed agreement to join (or renew) a plan; returns (deadline, signature)."""
        nonce = int(self.chain.call(self.contract.functions.enrolNonce(patient.address)))
        deadline = deadline or int(self.chain.w3.eth.get_block("latest")["timestamp"]) + 3600
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
        fn = self.contract.functions.enrol(
            plan_id, Web3.to_checksum_address(patient), start, end, deadline, signature
        )
        self.chain.transact(fn, insurer)

    def approve(self, insurer: Sender, claim: ClaimView, amount: int) -> ClaimStatus:
        """Approves a pended or appealed claim for ``amount`` (at most its current maximum,
        ``claim.amount``); returns its status."""
        self.chain.transact(self.contract.functions.approve(claim.record, amount), insurer)
        return self.claim(claim.id).status

    def deny(self, insurer: Sender, claim: ClaimView, reason: int) -> None:
        self.chain.transact(self.contract.functions.deny(claim.record, reason), insurer)

    def pending_claims(self, plan_id: int) -> list[ClaimView]:
        """Claims of a plan waiting for the insurer (pended or appealed).

        Raises:
            ContractRevert: ``ClaimsUnknownPlan`` for a plan that does not exist.
        """
        self.chain.call(self.contract.functions.plan(plan_id))
        return [
            c for c in self.claims_of_plan(plan_id) if c.status in (ClaimStatus.PENDED, ClaimStatus.APPEALED)
        ]

    def report(self, plan_id: int) -> dict[str, Any]:
        """Totals per status, amounts paid, the pool left and what of it is reserved."""
        claims = self.claims_of_plan(plan_id)
        by_status: dict[str, int] = {}
        for c in claims:
            by_status[c.status.name.lower()] = by_status.get(c.status.name.lower(), 0) + 1
        plan = self.plan(plan_id)
        return {
            "plan": plan_id,
            "insurer": plan.insurer,
            "claims": len(claims),
            "by_status": by_status,
            "paid": int(self.chain.call(self.contract.functions.totalPaid(plan_id))),
            "pool": plan.pool,
            "reserved": plan.reserved,
            "patient_shares_open": sum(
                c.patient_share for c in claims if c.status == ClaimStatus.PAID and not c.share_settled
            ),
        }

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
        fn = self.contract.functions.submitClaim(
            plan_id,
            Web3.to_checksum_address(patient),
            [h.as_tuple() for h in headers],
            (service.commitment, service.allowed_amount, service.gtin, proof),
            billed,
            drug.as_tuple() if drug else NO_DRUG,
        )
        receipt = self.chain.transact(fn, provider)
        claim_id = bytes(
            self.contract.events.ClaimSubmitted().process_receipt(receipt, errors=DISCARD)[0]["args"][
                "claimId"
            ]
        )
        return self.claim(claim_id)

    def appeal(self, provider: Sender, claim: ClaimView) -> ClaimView:
        """Appeals a denied claim (once); returns it re-adjudicated and waiting for review."""
        self.chain.transact(self.contract.functions.appeal(claim.record), provider)
        return self.claim(claim.id)

    def pay_out(self, sender: Sender, claim: ClaimView) -> None:
        """Pays an approved claim that waited for pool funds."""
        self.chain.transact(self.contract.functions.payOut(claim.record), sender)

    # ─── Patient ────────────────────────────────────────────────────────────────────────────

    def settle_share(self, patient: Sender, claim: ClaimView) -> int:
        """The patient approves and pays its co-payment to the provider through the contract."""
        share = claim.patient_share
        self.chain.transact(self.token.functions.approve(self.contract.address, share), patient)
        self.chain.transact(self.contract.functions.settlePatientShare(claim.record), patient)
        return share

    # ─── Reads ──────────────────────────────────────────────────────────────────────────────

    def plan(self, plan_id: int) -> PlanView:
        insurer, pool, terms, reserved = self.chain.call(self.contract.functions.plan(plan_id))
        return PlanView(plan_id, str(insurer), int(pool), int(reserved), PlanTerms(*terms))

    def enrolment(self, plan_id: int, patient: str) -> EnrolmentView:
        raw = self.chain.call(self.contract.functions.enrolment(plan_id, Web3.to_checksum_address(patient)))
        return EnrolmentView(*(int(v) for v in raw))

    def year_usage(self, plan_id: int, patient: str, year: int) -> tuple[int, int]:
        """(deductible met, paid or reserved) by the claims of coverage year ``year``."""
        met, paid = self.chain.call(
            self.contract.functions.yearUsage(plan_id, Web3.to_checksum_address(patient), year)
        )
        return int(met), int(paid)

    def claim(self, claim_id: bytes) -> ClaimView:
        """A claim by id: its record from the ClaimSubmitted event, its state from the contract."""
        logs = self.contract.events.ClaimSubmitted().get_logs(
            from_block=self.from_block, argument_filters={"claimId": claim_id}
        )
        if not logs:
            raise MedChainError(f"no claim 0x{claim_id.hex()} was submitted")
        return self._view(claim_id, _record_tuple(logs[0]["args"]["record"]))

    def claims_of_plan(self, plan_id: int) -> list[ClaimView]:
        logs = self.contract.events.ClaimSubmitted().get_logs(
            from_block=self.from_block, argument_filters={"planId": plan_id}
        )
        return [
            self._view(bytes(log["args"]["claimId"]), _record_tuple(log["args"]["record"])) for log in logs
        ]

    def _view(self, claim_id: bytes, record: tuple[Any, ...]) -> ClaimView:
        status, appealed, settled, amount, deductible, share = self.chain.call(
            self.contract.functions.claim(claim_id)
        )
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


def _record_tuple(record: Any) -> tuple[Any, ...]:
    return tuple(record[name] for name in RECORD_FIELDS)


def claim_resources(
    claim: ClaimView,
    insurer: str,
    chain_id: int,
    billed: int,
    service: CoveredService,
    evidence: list[AnchoredRecord],
    currency: str = "USD",
    decimals: int = 6,
) -> dict[str, Any]:
    """A claim as a validated FHIR R4 Claim and ClaimResponse (R4B package); amounts in currency units."""
    from fhir.resources.R4B.claim import Claim
    from fhir.resources.R4B.claimresponse import ClaimResponse

    from medchain.fhir import FhirExportError, chain_identifier

    created = datetime.fromtimestamp(claim.submitted_at, tz=UTC).isoformat().replace("+00:00", "Z")

    def money(units: int) -> dict[str, Any]:
        return {"value": units / 10**decimals, "currency": currency}

    ident = {"system": "urn:medchain:claim", "value": "0x" + claim.id.hex()}
    fhir_claim = {
        "resourceType": "Claim",
        "identifier": [ident],
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]
        },
        "use": "claim",
        "patient": {"identifier": chain_identifier(chain_id, claim.patient)},
        "created": created,
        "provider": {"identifier": chain_identifier(chain_id, claim.provider)},
        "insurer": {"identifier": chain_identifier(chain_id, insurer)},
        "priority": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]
        },
        "insurance": [
            {
                "sequence": 1,
                "focal": True,
                "coverage": {"identifier": {"system": "urn:medchain:plan", "value": str(claim.plan_id)}},
            }
        ],
        "supportingInfo": [
            {
                "sequence": i + 1,
                "category": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/claiminformationcategory",
                            "code": "info",
                        }
                    ]
                },
                "valueReference": {
                    "identifier": {"system": "urn:medchain:record", "value": "0x" + r.id.hex()}
                },
            }
            for i, r in enumerate(evidence)
        ],
        "item": [
            {
                "sequence": 1,
                "productOrService": {
                    "coding": [{"system": "urn:medchain:billing-code", "code": service.code}]
                    + (
                        [{"system": "https://www.gs1.org/gtin", "code": f"{service.gtin:014d}"}]
                        if service.gtin
                        else []
                    )
                },
                "net": money(billed),
            }
        ],
        "total": money(billed),
    }
    outcome = {ClaimStatus.PAID: "complete", ClaimStatus.DENIED: "error"}.get(claim.status, "queued")
    response = {
        "resourceType": "ClaimResponse",
        "identifier": [ident],
        "status": "active",
        "type": fhir_claim["type"],
        "use": "claim",
        "patient": fhir_claim["patient"],
        "created": created,
        "insurer": fhir_claim["insurer"],
        "outcome": outcome,
        "disposition": claim.status.name.lower(),
        "total": [
            {
                "category": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": "benefit"}
                    ]
                },
                "amount": money(claim.amount),
            },
            {
                "category": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": "copay"}
                    ]
                },
                "amount": money(claim.patient_share),
            },
        ],
    }
    try:
        return {
            "claim": Claim.model_validate(fhir_claim).model_dump(mode="json", exclude_none=True),
            "claimResponse": ClaimResponse.model_validate(response).model_dump(
                mode="json", exclude_none=True
            ),
        }
    except Exception as exc:
        raise FhirExportError(f"FHIR Claim export is not valid: {exc}") from exc

"""Insurer- and provider-facing clients for ClaimsProcessor, salted coverage tables, FHIR export."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from medchain.chain import Chain, ContractClient, Sender
from medchain.ehr import AnchoredRecord
from medchain.eip712 import sign_typed
from medchain.errors import MedChainError
from medchain.merkle import MerkleTree

ZERO32 = b"\0" * 32
ENROL_FIELDS = [
    {"name": "planId", "type": "uint256"},
    {"name": "patient", "type": "address"},
    {"name": "start", "type": "uint40"},
    {"name": "end", "type": "uint40"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


class ClaimStatus(IntEnum):
    NONE = 0
    PENDED = 1
    APPROVED = 2
    PAID = 3
    DENIED = 4
    APPEALED = 5


@dataclass(frozen=True)
class CoveredService:
    """A billing code and its allowed amount; the salt hides the code from outsiders on chain."""

    code: str
    allowed_amount: int
    salt: bytes

    @property
    def commitment(self) -> bytes:
        return bytes(Web3.keccak(abi_encode(["string", "bytes32"], [self.code, self.salt])))

    @property
    def leaf_id(self) -> bytes:
        return bytes(Web3.keccak(abi_encode(["bytes32", "uint64"], [self.commitment, self.allowed_amount])))


class CoverageTable:
    """A plan's covered services; its Merkle root goes on chain, the table to network providers."""

    def __init__(self, services: dict[str, int], salt: bytes | None = None) -> None:
        self.salt = salt or os.urandom(32)
        self.services = {code: CoveredService(code, amount, self.salt) for code, amount in services.items()}
        self.tree = MerkleTree([s.leaf_id for s in self.services.values()])

    @property
    def root(self) -> bytes:
        return self.tree.root

    def service(self, code: str) -> tuple[CoveredService, list[bytes]]:
        try:
            service = self.services[code]
        except KeyError:
            raise KeyError(f"{code} is not a covered service of this plan") from None
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
class DispenseRef:
    """A dispense a drug claim bills (from DrugProvenance's Dispensed event and the pharmacy's salt)."""

    batch_id: bytes
    patient_salt: bytes
    quantity: int
    nonce: int
    timestamp: int

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.batch_id, self.patient_salt, self.quantity, self.nonce, self.timestamp)


NO_DRUG = (ZERO32, ZERO32, 0, 0, 0)


def patient_ref(patient: str, salt: bytes) -> bytes:
    """The salted commitment a pharmacy dispenses to: keccak256(abi.encode(patient, salt))."""
    return bytes(Web3.keccak(abi_encode(["address", "bytes32"], [Web3.to_checksum_address(patient), salt])))


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
    """A claim: its immutable record (from the ClaimSubmitted event) and its current state."""

    id: bytes
    record: tuple[Any, ...]
    status: ClaimStatus
    appealed: bool
    share_settled: bool
    amount: int

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
        return int(self._field("maxPayable"))

    @property
    def patient_share(self) -> int:
        return int(self._field("patientShare"))

    @property
    def billed(self) -> int:
        return int(self._field("billed"))

    @property
    def submitted_at(self) -> int:
        return int(self._field("submittedAt"))


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

    def sign_enrolment(
        self, patient: LocalAccount, plan_id: int, start: int, end: int, deadline: int | None = None
    ) -> tuple[int, bytes]:
        """The patient's signed agreement to join a plan; returns (deadline, signature)."""
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
        fn = self.contract.functions.enrol(
            plan_id, Web3.to_checksum_address(patient), start, end, deadline, signature
        )
        self.chain.transact(fn, insurer)

    def approve(self, insurer: Sender, claim: ClaimView, amount: int) -> ClaimStatus:
        """Approves a pended or appealed claim for ``amount`` (at most its maximum); returns its status."""
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
        """Totals per status, amounts paid and the pool left."""
        claims = self.claims_of_plan(plan_id)
        by_status: dict[str, int] = {}
        for c in claims:
            by_status[c.status.name.lower()] = by_status.get(c.status.name.lower(), 0) + 1
        insurer, pool, _terms = self.chain.call(self.contract.functions.plan(plan_id))
        return {
            "plan": plan_id,
            "insurer": insurer,
            "claims": len(claims),
            "by_status": by_status,
            "paid": int(self.chain.call(self.contract.functions.totalPaid(plan_id))),
            "pool": int(pool),
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
        evidence: list[AnchoredRecord],
        service: CoveredService,
        proof: list[bytes],
        billed: int,
        drug: DispenseRef | None = None,
    ) -> ClaimView:
        """Submits a claim; returns it as adjudicated (paid, approved awaiting funds, or pended)."""
        fn = self.contract.functions.submitClaim(
            plan_id,
            Web3.to_checksum_address(patient),
            [r.header.as_tuple() for r in evidence],
            (service.commitment, service.allowed_amount, proof),
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

    def appeal(self, provider: Sender, claim_id: bytes) -> None:
        self.chain.transact(self.contract.functions.appeal(claim_id), provider)

    def pay_out(self, sender: Sender, claim_id: bytes) -> None:
        self.chain.transact(self.contract.functions.payOut(claim_id), sender)

    # ─── Patient ────────────────────────────────────────────────────────────────────────────

    def settle_share(self, patient: Sender, claim: ClaimView) -> int:
        """The patient approves and pays its co-payment to the provider through the contract."""
        share = claim.patient_share
        self.chain.transact(self.token.functions.approve(self.contract.address, share), patient)
        self.chain.transact(self.contract.functions.settlePatientShare(claim.record), patient)
        return share

    # ─── Reads ──────────────────────────────────────────────────────────────────────────────

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
        status, appealed, settled, amount = self.chain.call(self.contract.functions.claim(claim_id))
        return ClaimView(claim_id, record, ClaimStatus(status), bool(appealed), bool(settled), int(amount))


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

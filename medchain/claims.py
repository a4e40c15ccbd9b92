"""Insurer- and provider-facing clients for ClaimsProcessor and salted coverage tables.

The FHIR Claim / ClaimResponse export is in :mod:`medchain.fhir`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from medchain.chain import Chain, ContractClient, Sender
from medchain.eip712 import DOMAIN_FIELDS, sign_typed
from medchain.errors import ChainError, ConfigurationError, ContractRevert, MedChainError
from medchain.merkle import MerkleTree
from medchain.types import (
    ZERO32,
    AnchoredRecord,
    ClaimId,
    ClaimStatus,
    DispenseId,
    PlanId,
    RecordHeader,
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
CODE_SYSTEMS = {
    "cpt": "http://www.ama-assn.org/go/cpt",
    "hcpcs": "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "consortium": CONSORTIUM_BILLING,
}
"""Billing code systems a coverage table may name, by the short name the file uses."""


def _system_uri(name: object, what: str) -> str:
    if not isinstance(name, str) or name.strip().lower() not in CODE_SYSTEMS:
        raise ConfigurationError(f"{what}: system must be one of {', '.join(CODE_SYSTEMS)}, not {name!r}")
    return CODE_SYSTEMS[name.strip().lower()]


def _system_name(uri: str) -> str:
    return next(name for name, known in CODE_SYSTEMS.items() if known == uri)


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


class PlanNotFoundError(ContractRevert):
    """No plan with that id exists (the contract's ``ClaimsUnknownPlan``, said plainly)."""

    def __init__(self, plan_id: int) -> None:
        super().__init__("ClaimsUnknownPlan", (plan_id,))
        self.plan_id = plan_id

    def __str__(self) -> str:
        return f"no plan {self.plan_id} on this deployment (ClaimsUnknownPlan)"


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


# ─── Files an insurer, a provider and a patient exchange ─────────────────────────────────────────

AMOUNT_DECIMALS = 6
"""Decimals of the settlement token: amounts in files are decimal text in its units (``"12.50"``)."""
PLAN_FILE_FORMAT = "medchain-coverage/1"
"""The ``format`` tag of a coverage table / plan file (:class:`PlanFile`)."""
ENROLMENT_FORMAT = "medchain-enrolment/1"
"""The ``format`` tag of a patient's signed enrolment (:class:`SignedEnrolment`)."""
CLAIMS_DOMAIN_NAME = "MedChain ClaimsProcessor"
CLAIMS_DOMAIN_VERSION = "1"
"""ClaimsProcessor's EIP-712 domain name and version (its constructor's ``EIP712(...)``): with the
chain id and the contract's address they let a patient sign an enrolment without a node."""


def parse_amount(value: Any, what: str) -> int:
    """A decimal amount (``"12.50"``, ``12.5`` or ``12``) as settlement-token units.

    Raises:
        ConfigurationError: not a number, negative, or more than :data:`AMOUNT_DECIMALS` decimals.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigurationError(f"{what} must be an amount such as '12.50', not {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigurationError(f"{what} {value!r} is not an amount (a number such as 12.50)") from None
    units = amount * 10**AMOUNT_DECIMALS
    if not amount.is_finite() or amount < 0 or units != units.to_integral_value():
        raise ConfigurationError(f"{what} {value!r} must be positive with at most {AMOUNT_DECIMALS} decimals")
    return int(units)


def format_amount(units: int) -> str:
    """Settlement-token units as exact decimal text with at least two decimals (``"12.50"``)."""
    text = f"{Decimal(units) / 10**AMOUNT_DECIMALS:.{AMOUNT_DECIMALS}f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def parse_coinsurance(value: Any) -> int:
    """Coinsurance as basis points, from ``"20%"`` or ``"2000 bps"`` (a bare number is ambiguous).

    Raises:
        ConfigurationError: no unit, not a number, below 0 or above 100 %.
    """
    text = str(value).strip().lower().replace(" ", "")
    for unit, scale in (("%", 100), ("bps", 1)):
        if text.endswith(unit):
            try:
                bps = Decimal(text.removesuffix(unit)) * scale
            except InvalidOperation:
                break
            if bps.is_finite() and bps == bps.to_integral_value() and 0 <= bps <= 10_000:
                return int(bps)
            raise ConfigurationError(f"coinsurance {value!r} must be a whole number of bps from 0 to 100 %")
    raise ConfigurationError(
        f'coinsurance {value!r} must be a percentage ("20%") or basis points ("2000 bps")'
    )


def format_coinsurance(bps: int) -> str:
    """Basis points as a percentage (``2000`` -> ``"20%"``, ``2050`` -> ``"20.5%"``)."""
    return f"{(Decimal(bps) / 100).normalize():f}%"


def _gtin_code(value: Any) -> int:
    """A GTIN-8/12/13/14 (digits, as text) with a valid GS1 check digit, as an integer."""
    text = str(value).strip()
    if not text.isdigit() or len(text) not in (8, 12, 13, 14):
        raise ConfigurationError(f"gtin {value!r} must be a GTIN of 8, 12, 13 or 14 digits (as text)")
    digits = [int(c) for c in text.zfill(14)]
    check = (10 - sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits[:13])) % 10) % 10
    if check != digits[13]:
        raise ConfigurationError(f"gtin {text} has a wrong check digit (expected {check})")
    return int(text)


def _hex_bytes(value: Any, what: str, size: int | None = 32) -> bytes:
    text = str(value).strip()
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if not raw or (size is not None and len(raw) != size):
        length = f"{size} bytes" if size else "bytes"
        raise ConfigurationError(f"{what} must be 0x-prefixed hex of {length}, not {text!r}")
    return raw


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{what} must be a whole number, not {value!r}")
    return int(value)


def _address(value: Any, what: str) -> str:
    if not isinstance(value, str) or not Web3.is_address(value):
        raise ConfigurationError(f"{what} must be an Ethereum address, not {value!r}")
    return str(Web3.to_checksum_address(value))


def _object(value: Any, what: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigurationError(f"{what} must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigurationError(
            f"{what} has unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed))}"
        )
    missing = sorted(required - set(value))
    if missing:
        raise ConfigurationError(f"{what} lacks the field(s) {', '.join(missing)}")
    return value


@dataclass(frozen=True)
class PlanService:
    """One line of a coverage table: a billing code, its allowed amount, and for a drug its GTIN.

    ``description`` is for people reading the file; it never goes on chain.
    """

    code: str
    allowed_amount: int
    gtin: int = 0
    description: str = ""
    system: str = CONSORTIUM_BILLING
    """The billing code's code system: CPT, HCPCS, or the consortium's schedule (see CODE_SYSTEMS)."""

    @property
    def key(self) -> tuple[str, int]:
        return (self.code, self.gtin)


@dataclass(frozen=True)
class PlanFile:
    """A plan's coverage table and terms as one JSON file (format ``medchain-coverage/1``).

    The insurer writes it without ``salt`` and ``plan`` (docs/examples/coverage-table.json) and
    ``medchain claim plan create`` reads it; the command draws the salt that hides the billing
    codes, creates the plan, and writes the file back *salted*, with the plan's id, chain and
    contract. That salted file is what the insurer shares with network providers: without it
    nobody can prove a service is covered (and nobody reading the chain learns the codes)::

        {
          "format": "medchain-coverage/1",
          "terms": {"deductible": "100.00", "coinsurance": "20%", "per_claim_limit": "1000.00",
                    "annual_limit": "5000.00", "auto_pay_ceiling": "500.00"},
          "services": [
            {"code": "99213", "allowed": "150.00", "description": "office visit"},
            {"code": "J3490", "allowed": "40.00", "gtin": "09506000134352"}
          ],
          "salt": "0x…32 bytes…",
          "plan": {"id": 1, "chain_id": 31337, "claims_processor": "0x…", "covered_root": "0x…"}
        }

    Amounts are decimal text (or JSON numbers) in settlement-token units, up to
    :data:`AMOUNT_DECIMALS` decimals; coinsurance is ``"20%"`` or ``"2000 bps"``; a GTIN is its
    digits as text. ``covered_root`` is checked against the table on reading (a damaged file).
    """

    services: tuple[PlanService, ...]
    deductible: int
    coinsurance_bps: int
    per_claim_limit: int
    annual_limit: int
    auto_pay_ceiling: int
    salt: bytes | None = None
    plan_id: PlanId | None = None
    chain_id: int | None = None
    claims_processor: str | None = None

    def __post_init__(self) -> None:
        if not self.services:
            raise ConfigurationError("a coverage table needs at least one service")
        seen: set[tuple[str, int]] = set()
        for s in self.services:
            if s.key in seen:
                product = f" for GTIN {s.gtin:014d}" if s.gtin else ""
                raise ConfigurationError(f"service {s.code}{product} is listed twice")
            seen.add(s.key)
        if not 0 <= self.coinsurance_bps <= 10_000:
            raise ConfigurationError("coinsurance must be between 0 and 100 %")
        if self.salt is not None and len(self.salt) != 32:
            raise ConfigurationError("the salt must be 32 bytes")

    # ─── The table and the terms ──────────────────────────────────────────────────────────────

    def table(self) -> CoverageTable:
        """The salted coverage table (its Merkle root is the plan's ``coveredRoot``).

        Raises:
            ConfigurationError: the file has no salt yet (an unsalted table proves nothing).
        """
        return self._salted_table

    @cached_property
    def _salted_table(self) -> CoverageTable:
        if self.salt is None:
            raise ConfigurationError("the coverage table has no salt: it is not a created plan's file")
        return CoverageTable(
            {s.key: s.allowed_amount for s in self.services},
            self.salt,
            {s.code: s.system for s in self.services},
        )

    def terms(self) -> PlanTerms:
        """The plan terms ``createPlan`` takes (needs the salt: the root depends on it)."""
        return PlanTerms(
            self.table().root,
            self.deductible,
            self.coinsurance_bps,
            self.per_claim_limit,
            self.annual_limit,
            self.auto_pay_ceiling,
        )

    def salted(self, salt: bytes | None = None) -> PlanFile:
        """This table under a fresh salt (32 random bytes unless given), with no plan yet."""
        return replace(self, salt=salt or os.urandom(32), plan_id=None, chain_id=None, claims_processor=None)

    def for_plan(self, plan_id: int, chain_id: int, claims_processor: str) -> PlanFile:
        """This salted table as the file of plan ``plan_id`` of the ClaimsProcessor ``claims_processor``."""
        return replace(
            self,
            plan_id=PlanId(plan_id),
            chain_id=chain_id,
            claims_processor=Web3.to_checksum_address(claims_processor),
        )

    def service(self, code: str, gtin: int = 0) -> tuple[CoveredService, list[bytes]]:
        """The covered service ``code`` (for product ``gtin``) and its Merkle proof.

        Raises:
            ConfigurationError: the plan does not cover it; the message lists what it does cover.
        """
        try:
            return self.table().service(code, gtin)
        except KeyError:
            products = [s.gtin for s in self.services if s.code == code]
            if products and gtin == 0:
                shown = ", ".join(f"{g:014d}" for g in products)
                raise ConfigurationError(
                    f"{code} is a drug service (GTIN {shown}): the claim needs the dispense it bills"
                ) from None
            if products:
                raise ConfigurationError(f"{code} is not covered for GTIN {gtin:014d} by this plan") from None
            raise ConfigurationError(
                f"{code} is not a covered service of this plan; covered: "
                + ", ".join(sorted({s.code for s in self.services}))
            ) from None

    def by_commitment(self, commitment: bytes) -> CoveredService | None:
        """The covered service whose salted commitment is ``commitment`` (what a claim names)."""
        return next((s for s in self.table().services.values() if s.commitment == commitment), None)

    def check_plan(self, plan: PlanView, chain_id: int, claims_processor: str) -> None:
        """Checks that this file is the coverage of ``plan`` on this deployment.

        Raises:
            ConfigurationError: the file is for another plan, chain or contract, or its table does
                not give the plan's covered-services root.
        """
        where = (self.plan_id, self.chain_id, self.claims_processor)
        if where != (plan.id, chain_id, Web3.to_checksum_address(claims_processor)):
            raise ConfigurationError(
                f"the coverage file is for plan {self.plan_id} of ClaimsProcessor {self.claims_processor} on "
                f"chain {self.chain_id}, not plan {plan.id} of {claims_processor} on chain {chain_id}"
            )
        if self.terms().covered_root != plan.terms.covered_root:
            raise ConfigurationError(
                f"the coverage file's table does not give plan {plan.id}'s covered-services root "
                f"0x{plan.terms.covered_root.hex()}: it is not that plan's table"
            )

    # ─── JSON ───────────────────────────────────────────────────────────────────────────────

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "format": PLAN_FILE_FORMAT,
            "terms": {
                "deductible": format_amount(self.deductible),
                "coinsurance": format_coinsurance(self.coinsurance_bps),
                "per_claim_limit": format_amount(self.per_claim_limit),
                "annual_limit": format_amount(self.annual_limit),
                "auto_pay_ceiling": format_amount(self.auto_pay_ceiling),
            },
            "services": [
                {
                    "code": s.code,
                    "allowed": format_amount(s.allowed_amount),
                    **({"gtin": f"{s.gtin:014d}"} if s.gtin else {}),
                    **({"system": _system_name(s.system)} if s.system != CONSORTIUM_BILLING else {}),
                    **({"description": s.description} if s.description else {}),
                }
                for s in self.services
            ],
        }
        if self.salt is not None:
            data["salt"] = "0x" + self.salt.hex()
        if self.plan_id is not None:
            data["plan"] = {
                "id": self.plan_id,
                "chain_id": self.chain_id,
                "claims_processor": self.claims_processor,
                "covered_root": "0x" + self.table().root.hex(),
            }
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "coverage table") -> PlanFile:
        """Reads a coverage table (unsalted) or a plan's salted file.

        Raises:
            ConfigurationError: one line naming what is wrong (not JSON, unknown or missing field,
                malformed amount, GTIN or coinsurance, a duplicate service, a damaged plan file).
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{source} is not valid JSON ({exc})") from None
        try:
            return cls._from_data(data)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{source}: {exc}") from None

    @classmethod
    def _from_data(cls, data: Any) -> PlanFile:
        top = _object(
            data, "the file", {"format", "terms", "services", "salt", "plan"}, {"terms", "services"}
        )
        if top.get("format", PLAN_FILE_FORMAT) != PLAN_FILE_FORMAT:
            raise ConfigurationError(f"format {top['format']!r} is not {PLAN_FILE_FORMAT!r}")
        amounts = {"deductible", "per_claim_limit", "annual_limit", "auto_pay_ceiling"}
        terms = _object(top["terms"], "terms", amounts | {"coinsurance"}, amounts | {"coinsurance"})
        rows = top["services"]
        if not isinstance(rows, list):
            raise ConfigurationError("services must be a list of {code, allowed[, gtin, description]}")
        services = []
        for i, row in enumerate(rows, start=1):
            entry = _object(
                row, f"service {i}", {"code", "allowed", "gtin", "system", "description"}, {"code", "allowed"}
            )
            code = entry["code"]
            if not isinstance(code, str) or not code.strip():
                raise ConfigurationError(f"service {i}: code must be non-empty text")
            services.append(
                PlanService(
                    code,
                    parse_amount(entry["allowed"], f"service {code} allowed"),
                    _gtin_code(entry["gtin"]) if entry.get("gtin") not in (None, "", 0) else 0,
                    str(entry.get("description", "")),
                    _system_uri(entry.get("system", "consortium"), f"service {code}"),
                )
            )
        salt = _hex_bytes(top["salt"], "salt") if "salt" in top else None
        plan_id, chain_id, processor, root = None, None, None, None
        if "plan" in top:
            keys = {"id", "chain_id", "claims_processor", "covered_root"}
            plan = _object(top["plan"], "plan", keys, keys)
            plan_id = PlanId(_whole(plan["id"], "plan id"))
            chain_id = _whole(plan["chain_id"], "plan chain_id")
            processor = _address(plan["claims_processor"], "plan claims_processor")
            root = _hex_bytes(plan["covered_root"], "plan covered_root")
            if salt is None:
                raise ConfigurationError("a plan's file needs its salt")
        loaded = cls(
            tuple(services),
            parse_amount(terms["deductible"], "deductible"),
            parse_coinsurance(terms["coinsurance"]),
            parse_amount(terms["per_claim_limit"], "per_claim_limit"),
            parse_amount(terms["annual_limit"], "annual_limit"),
            parse_amount(terms["auto_pay_ceiling"], "auto_pay_ceiling"),
            salt,
            plan_id,
            chain_id,
            processor,
        )
        if root is not None and loaded.table().root != root:
            raise ConfigurationError(
                "the services and salt do not give the plan's covered_root (a damaged file)"
            )
        return loaded


ENROLMENT_KEYS = {
    "format",
    "chain_id",
    "claims_processor",
    "plan_id",
    "patient",
    "start",
    "end",
    "nonce",
    "deadline",
    "signature",
}


@dataclass(frozen=True)
class SignedEnrolment:
    """A patient's EIP-712 ``Enrol`` signature and what it signs: the file ``medchain patient
    sign-enrolment`` writes and ``medchain claim enrol`` submits (format ``medchain-enrolment/1``)::

        {"format": "medchain-enrolment/1", "chain_id": 31337, "claims_processor": "0x…",
         "plan_id": 1, "patient": "0x…", "start": 1767225600, "end": 1798761600,
         "nonce": 0, "deadline": 1767830400, "signature": "0x…65 bytes…"}

    Times are Unix seconds; ``nonce`` is the patient's ``enrolNonce`` at signing (one enrolment
    uses it up); the insurer must submit before ``deadline``. It carries no health data.
    """

    chain_id: int
    claims_processor: str
    plan_id: PlanId
    patient: str
    start: int
    end: int
    nonce: int
    deadline: int
    signature: bytes

    @classmethod
    def sign(
        cls,
        patient: LocalAccount,
        chain_id: int,
        claims_processor: str,
        plan_id: int,
        start: int,
        end: int,
        nonce: int,
        deadline: int,
    ) -> SignedEnrolment:
        """Signs with the patient's key, offline: the domain is ClaimsProcessor's known name and
        version with ``chain_id`` and ``claims_processor``; ``nonce`` is the patient's enrolNonce."""
        unsigned = cls(
            chain_id,
            Web3.to_checksum_address(claims_processor),
            PlanId(plan_id),
            str(patient.address),
            start,
            end,
            nonce,
            deadline,
            b"",
        )
        signature = Account.sign_message(encode_typed_data(full_message=unsigned.typed_data()), patient.key)
        return replace(unsigned, signature=bytes(signature.signature))

    def typed_data(self) -> dict[str, Any]:
        """The EIP-712 document signed (``eth_signTypedData_v4`` shape)."""
        return {
            "types": {"EIP712Domain": DOMAIN_FIELDS, "Enrol": ENROL_FIELDS},
            "primaryType": "Enrol",
            "domain": {
                "name": CLAIMS_DOMAIN_NAME,
                "version": CLAIMS_DOMAIN_VERSION,
                "chainId": self.chain_id,
                "verifyingContract": self.claims_processor,
            },
            "message": {
                "planId": self.plan_id,
                "patient": self.patient,
                "start": self.start,
                "end": self.end,
                "nonce": self.nonce,
                "deadline": self.deadline,
            },
        }

    def signer(self) -> str:
        """The address whose key made ``signature`` (the patient's, if the file is intact).

        Raises:
            ConfigurationError: the signature is malformed.
        """
        try:
            return str(
                Account.recover_message(
                    encode_typed_data(full_message=self.typed_data()), signature=self.signature
                )
            )
        except Exception as exc:  # eth_keys raises BadSignature, ValueError or TypeError
            raise ConfigurationError(f"the enrolment signature is malformed ({type(exc).__name__})") from None

    def to_json(self) -> str:
        data = {
            "format": ENROLMENT_FORMAT,
            "chain_id": self.chain_id,
            "claims_processor": self.claims_processor,
            "plan_id": self.plan_id,
            "patient": self.patient,
            "start": self.start,
            "end": self.end,
            "nonce": self.nonce,
            "deadline": self.deadline,
            "signature": "0x" + self.signature.hex(),
        }
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "enrolment file") -> SignedEnrolment:
        """Reads :meth:`to_json`'s output, checking that the signature is the patient's.

        Raises:
            ConfigurationError: not JSON, not an enrolment file, a field missing or malformed, or a
                signature that is not the patient's over these fields (an edited file).
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{source} is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != ENROLMENT_FORMAT:
            raise ConfigurationError(f"{source} is not a signed enrolment (format {ENROLMENT_FORMAT!r})")
        try:
            _object(data, "the file", ENROLMENT_KEYS, ENROLMENT_KEYS)
            signed = cls(
                _whole(data["chain_id"], "chain_id"),
                _address(data["claims_processor"], "claims_processor"),
                PlanId(_whole(data["plan_id"], "plan_id")),
                _address(data["patient"], "patient"),
                _whole(data["start"], "start"),
                _whole(data["end"], "end"),
                _whole(data["nonce"], "nonce"),
                _whole(data["deadline"], "deadline"),
                _hex_bytes(data["signature"], "signature", None),
            )
            if signed.signer() != signed.patient:
                raise ConfigurationError(
                    f"the signature is not patient {signed.patient}'s over these terms (an edited file?)"
                )
        except ConfigurationError as exc:
            raise ConfigurationError(f"{source}: {exc}") from None
        return signed


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

    def enrol_nonce(self, patient: str) -> int:
        """The nonce the patient's next enrolment signature must carry."""
        return int(self._call("enrolNonce", Web3.to_checksum_address(patient)))

    def enrol_signed(self, insurer: Sender, signed: SignedEnrolment) -> EnrolmentView:
        """Enrols (or renews) the patient of a signed enrolment file; returns the enrolment.

        Raises:
            ConfigurationError: the file was signed for another chain or ClaimsProcessor.
            ContractRevert: the contract's refusal, e.g. ``ClaimsSignatureExpired`` or
                ``ClaimsInvalidSignature`` (the nonce was used up by another enrolment).
        """
        here = (self.chain.chain_id, Web3.to_checksum_address(self.address))
        if (signed.chain_id, signed.claims_processor) != here:
            raise ConfigurationError(
                f"the enrolment was signed for ClaimsProcessor {signed.claims_processor} on chain "
                f"{signed.chain_id}, not this deployment's ({here[1]} on chain {here[0]})"
            )
        self.enrol(
            insurer,
            signed.plan_id,
            signed.patient,
            signed.start,
            signed.end,
            signed.deadline,
            signed.signature,
        )
        return self.enrolment(signed.plan_id, signed.patient)

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
            PlanNotFoundError: the plan does not exist (a ``ContractRevert``: ``ClaimsUnknownPlan``).
        """
        self.plan(plan_id)
        return [
            c for c in self.claims_of_plan(plan_id) if c.status in (ClaimStatus.PENDED, ClaimStatus.APPEALED)
        ]

    def report(self, plan_id: int) -> PlanReport:
        """Totals per status, amounts paid, the pool left and what of it is reserved.

        Raises:
            PlanNotFoundError: the plan does not exist.
        """
        plan = self.plan(plan_id)
        claims = self.claims_of_plan(plan_id)
        by_status: dict[str, int] = {}
        for c in claims:
            by_status[c.status.name.lower()] = by_status.get(c.status.name.lower(), 0) + 1
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
        """A plan's insurer, pool, reserved amount and terms.

        Raises:
            PlanNotFoundError: no plan ``plan_id`` (a ``ContractRevert``: ``ClaimsUnknownPlan``).
        """
        try:
            insurer, pool, terms, reserved = self._call("plan", plan_id)
        except ContractRevert as exc:
            if exc.error == "ClaimsUnknownPlan":
                raise PlanNotFoundError(plan_id) from None
            raise
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
            raise ClaimNotFoundError(f"no claim 0x{claim_id.hex()} on this deployment")
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
            raise ClaimNotFoundError(f"no claim 0x{claim.id.hex()} on this deployment")
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

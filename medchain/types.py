"""The ground floor of the SDK: typed ids, the enums that mirror Solidity enums, shared vocabulary.

Every other module imports from here; this module imports nothing of medchain. Each ``IntEnum``
mirrors the interface enum named in its docstring member for member (tests/unit/test_enums.py
checks them against the compiled interfaces).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import NewType

from eth_abi.abi import encode as abi_encode
from eth_typing import ChecksumAddress
from web3 import Web3

Address = ChecksumAddress
Digest = NewType("Digest", bytes)
"""A 32-byte SHA-256 digest."""

# ─── Typed ids ──────────────────────────────────────────────────────────────────────────────────

RecordId = NewType("RecordId", bytes)
"""An EHRIndex record id: keccak256 of the ABI-encoded record header (32 bytes)."""
GrantId = NewType("GrantId", bytes)
"""A ConsentManager grant id (32 bytes)."""
BatchId = NewType("BatchId", bytes)
"""A DrugProvenance batch id: keccak256(abi.encode(gtin, lot)) (32 bytes)."""
ShipmentId = NewType("ShipmentId", bytes)
"""A DrugProvenance shipment id: keccak256 of the ABI-encoded shipment reference (32 bytes)."""
DispenseId = NewType("DispenseId", bytes)
"""A DrugProvenance dispense id (32 bytes)."""
ClaimId = NewType("ClaimId", bytes)
"""A ClaimsProcessor claim id: keccak256 of the ABI-encoded claim record (32 bytes)."""
PlanId = NewType("PlanId", int)
"""A ClaimsProcessor plan number (from 1)."""
SessionId = NewType("SessionId", int)
"""A ConsentManager break-glass session number (from 1)."""
ProposalId = NewType("ProposalId", int)
"""An InstitutionRegistry proposal number (from 1)."""
RecordBatchId = NewType("RecordBatchId", int)
"""An EHRIndex record batch number (from 1)."""

ZERO32 = b"\0" * 32
ZERO_ADDRESS = "0x" + "0" * 40
NO_END = 2**40 - 1
"""``notAfter`` of a consent grant that does not expire."""

# ─── InstitutionRegistry ────────────────────────────────────────────────────────────────────────


class Kind(IntEnum):
    """Institution kinds, mirroring ``IInstitutionRegistry.Kind``."""

    NONE = 0
    HOSPITAL = 1
    COMMUNITY_CLINIC = 2
    SPECIALIST_HOSPITAL = 3
    LABORATORY = 4
    PHARMACY = 5
    MANUFACTURER = 6
    DISTRIBUTOR = 7
    INSURER = 8
    REGULATOR = 9

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def parse(cls, text: str) -> Kind:
        """Reads a kind from its label (``community-clinic``) or name, case-insensitively."""
        key = text.strip().upper().replace("-", "_").replace(" ", "_")
        try:
            kind = cls[key]
        except KeyError:
            raise ValueError(_unknown("kind", text, [k.label for k in cls if k is not cls.NONE])) from None
        if kind is cls.NONE:
            raise ValueError(_unknown("kind", text, [k.label for k in cls if k is not cls.NONE]))
        return kind


class MemberStatus(IntEnum):
    """Membership status, mirroring ``IInstitutionRegistry.Status``."""

    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2
    REVOKED = 3


class GovernanceAction(IntEnum):
    """What a governance proposal would change, mirroring ``IInstitutionRegistry.Action``.

    (Not to be confused with :class:`Actions`, what a consent lets a grantee do.)"""

    ADMIT = 0
    SUSPEND = 1
    REINSTATE = 2
    CHANGE_RATING = 3
    REMOVE = 4


class ProposalStatus(IntEnum):
    """Proposal states, mirroring ``IInstitutionRegistry.ProposalStatus``."""

    NONE = 0
    OPEN = 1
    EXECUTED = 2
    REJECTED = 3
    EXPIRED = 4
    SUPERSEDED = 5
    """It reached quorum after another executed proposal had made its change unfit."""


# ─── ConsentManager ─────────────────────────────────────────────────────────────────────────────


class Actions(IntFlag):
    """What a grantee may do (ConsentManager's actions bitmap)."""

    READ = 1
    APPEND = 2
    SHARE = 4


class Purpose(IntEnum):
    """HL7 v3 PurposeOfUse codes ConsentManager knows, by index (bit ``1 << index``)."""

    TREAT = 0
    HPAYMT = 1
    HRESCH = 2
    ETREAT = 3

    @property
    def display(self) -> str:
        return _PURPOSE_DISPLAY[self]

    @classmethod
    def mask(cls, *purposes: Purpose) -> int:
        bits = 0
        for p in purposes:
            bits |= 1 << int(p)
        return bits

    @classmethod
    def from_mask(cls, mask: int) -> list[Purpose]:
        return [p for p in cls if mask & (1 << int(p))]

    @classmethod
    def parse(cls, text: str) -> Purpose:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown purpose of use {text!r}; expected one of: TREAT, HPAYMT, HRESCH, ETREAT"
            ) from None


_PURPOSE_DISPLAY = {
    Purpose.TREAT: "treatment",
    Purpose.HPAYMT: "healthcare payment",
    Purpose.HRESCH: "healthcare research",
    Purpose.ETREAT: "emergency treatment",
}


class ScopeKind(IntEnum):
    """What a grant covers, mirroring ``IConsentManager.ScopeKind``."""

    NONE = 0
    RECORD = 1
    CATEGORY = 2
    ALL = 3


class GrantStatus(IntEnum):
    """A grant's state, mirroring ``IConsentManager.GrantStatus``."""

    NONE = 0
    ACTIVE = 1
    REVOKED = 2
    EXPIRED = 3
    PENDING = 4
    LAPSED = 5
    """A guardian gave it and that guardianship has ended: it no longer permits access."""


class Review(IntEnum):
    """A break-glass session's review, mirroring ``IConsentManager.Review``."""

    NONE = 0
    PENDING = 1
    ACCEPTED = 2
    DISPUTED = 3


def category_code(code: str) -> bytes:
    """A data category (a FHIR resource type such as ``Observation``) as the contracts' bytes32."""
    return fixed_ascii(code, 32, "category code")


def category_text(value: bytes) -> str:
    """Reverses :func:`category_code`."""
    return ascii_text(value)


# ─── EHRIndex ───────────────────────────────────────────────────────────────────────────────────


class RecordStatus(IntEnum):
    """A record's state, mirroring ``IEHRIndex.RecordStatus``."""

    NONE = 0
    CURRENT = 1
    SUPERSEDED = 2
    ENTERED_IN_ERROR = 3


# ─── DrugProvenance ─────────────────────────────────────────────────────────────────────────────


class BatchStatus(IntEnum):
    """A batch's state, mirroring ``IDrugProvenance.BatchStatus``."""

    NONE = 0
    ACTIVE = 1
    QUARANTINED = 2
    RECALLED = 3
    DESTROYED = 4


class ShipmentStatus(IntEnum):
    """A shipment's state, mirroring ``IDrugProvenance.ShipmentStatus``."""

    NONE = 0
    PENDING = 1
    RECEIVED = 2
    CANCELLED = 3


# ─── ClaimsProcessor ────────────────────────────────────────────────────────────────────────────


class ClaimStatus(IntEnum):
    """A claim's state, mirroring ``IClaimsProcessor.ClaimStatus``."""

    NONE = 0
    PENDED = 1
    APPROVED = 2
    PAID = 3
    DENIED = 4
    APPEALED = 5


# ─── Helpers ────────────────────────────────────────────────────────────────────────────────────


def kind_mask(*kinds: Kind) -> int:
    """The bitmask ``isActiveAny`` expects for a set of kinds."""
    mask = 0
    for kind in kinds:
        mask |= 1 << int(kind)
    return mask


def _unknown(what: str, value: str, choices: list[str]) -> str:
    return f"unknown {what} {value!r}; expected one of: {', '.join(choices)}"


def fixed_ascii(text: str, size: int, what: str) -> bytes:
    """``text`` as a left-aligned, zero-padded ``bytes<size>`` value (codes, lots)."""
    raw = text.encode("ascii") if text.isascii() else b""
    if not raw or len(raw) > size:
        raise ValueError(f"{what} {text!r} must be 1 to {size} ASCII characters")
    return raw.ljust(size, b"\0")


def ascii_text(raw: bytes) -> str:
    """Reverses :func:`fixed_ascii`: the text without its zero padding."""
    return raw.rstrip(b"\0").decode("ascii", errors="replace")


def patient_ref(patient: str, salt: bytes) -> bytes:
    """The salted commitment a dispense names instead of the patient: keccak256(abi.encode(patient,
    salt)); DrugProvenance stores it, ClaimsProcessor recomputes it from a drug claim's patient and
    salt. Without the 32-byte random salt nobody can link the patient to the product."""
    if len(salt) != 32:
        raise ValueError(f"a patient salt is 32 bytes, not {len(salt)}")
    return bytes(Web3.keccak(abi_encode(["address", "bytes32"], [Web3.to_checksum_address(patient), salt])))


# ─── Shared records ───────────────────────────────────────────────────────────────────────────

HEADER_TYPE = "(address,address,bytes32,bytes32,bytes32)"
"""The ABI type of ``IEHRIndex.RecordHeader``."""


@dataclass(frozen=True)
class RecordHeader:
    """Mirror of ``IEHRIndex.RecordHeader``; its keccak256 ABI encoding is the record id."""

    patient: str
    custodian: str
    fingerprint: bytes
    category: bytes
    previous: bytes = ZERO32

    def __post_init__(self) -> None:
        for name in ("fingerprint", "category", "previous"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 32:
                raise ValueError(
                    f"{name} must be 32 bytes, got {len(value) if isinstance(value, bytes) else value!r}"
                )

    def as_tuple(self) -> tuple[str, str, bytes, bytes, bytes]:
        return (
            Web3.to_checksum_address(self.patient),
            Web3.to_checksum_address(self.custodian),
            self.fingerprint,
            self.category,
            self.previous,
        )

    @property
    def record_id(self) -> RecordId:
        return RecordId(bytes(Web3.keccak(abi_encode([HEADER_TYPE], [self.as_tuple()]))))

    @property
    def category_text(self) -> str:
        return category_text(self.category)


@dataclass(frozen=True)
class AnchoredRecord:
    """A record as anchored: its id, header and ciphertext CID; batched ones carry batch and proof."""

    id: RecordId
    header: RecordHeader
    cid: str
    block: int
    batch_id: RecordBatchId | int = 0
    proof: tuple[bytes, ...] = ()

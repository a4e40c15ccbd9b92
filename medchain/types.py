"""Domain value types shared across the SDK."""

from __future__ import annotations

from enum import IntEnum
from typing import NewType

from eth_abi.abi import encode as abi_encode
from eth_typing import ChecksumAddress
from web3 import Web3

Address = ChecksumAddress
Digest = NewType("Digest", bytes)
"""A 32-byte SHA-256 digest."""


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


class Action(IntEnum):
    """Governance actions, mirroring ``IInstitutionRegistry.Action``."""

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

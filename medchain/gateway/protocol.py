"""What a reader signs to prove who it is to a custodian's gateway (EIP-712 typed data).

A release is requested in two steps. The gateway issues a challenge: a fresh random nonce bound
to the gateway's public origin (as EIP-4361's ``domain``), the custodian, the record, the chain and
the EHRIndex deployment (the EIP-712 domain), with an issue and an expiry time. The reader signs it
with its Ethereum key. From the signature alone the gateway recovers the reader's public key,
hence its address (whose on-chain access is checked) and the key the data key is wrapped to: a
reader cannot claim to be someone else, nor have a key wrapped to a key it does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.messages import encode_typed_data
from eth_keys.datatypes import PrivateKey, PublicKey, Signature
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError
from web3 import Web3

from medchain.eip712 import DOMAIN_FIELDS
from medchain.errors import MedChainError

DOMAIN_NAME = "MedChain Custodian Gateway"
DOMAIN_VERSION = "1"
PRIMARY_TYPE = "ReleaseRequest"
TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": DOMAIN_FIELDS,
    PRIMARY_TYPE: [
        {"name": "gateway", "type": "string"},
        {"name": "custodian", "type": "address"},
        {"name": "recordId", "type": "bytes32"},
        {"name": "nonce", "type": "bytes32"},
        {"name": "issuedAt", "type": "uint256"},
        {"name": "expiresAt", "type": "uint256"},
    ],
}


class SignatureError(MedChainError):
    """A signature is malformed or does not recover to a public key."""


@dataclass(frozen=True)
class Challenge:
    """One single-use release challenge, as the gateway issued it (its own copy, never the reader's)."""

    gateway: str
    chain_id: int
    ehr_index: str
    custodian: str
    record_id: bytes
    nonce: bytes
    issued_at: int
    expires_at: int

    def typed_data(self) -> dict[str, Any]:
        """The EIP-712 document the reader signs."""
        return {
            "types": TYPES,
            "primaryType": PRIMARY_TYPE,
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": self.chain_id,
                "verifyingContract": Web3.to_checksum_address(self.ehr_index),
            },
            "message": {
                "gateway": self.gateway,
                "custodian": Web3.to_checksum_address(self.custodian),
                "recordId": "0x" + self.record_id.hex(),
                "nonce": "0x" + self.nonce.hex(),
                "issuedAt": self.issued_at,
                "expiresAt": self.expires_at,
            },
        }

    @classmethod
    def from_typed_data(cls, typed: Any) -> Challenge:
        """Reads a challenge back from typed data a gateway sent (the reader checks it before signing)."""
        try:
            if typed["primaryType"] != PRIMARY_TYPE or typed["types"] != TYPES:
                raise ValueError("not a MedChain release request")
            domain, message = typed["domain"], typed["message"]
            if domain["name"] != DOMAIN_NAME or domain["version"] != DOMAIN_VERSION:
                raise ValueError("not a MedChain gateway domain")
            return cls(
                gateway=str(message["gateway"]),
                chain_id=int(domain["chainId"]),
                ehr_index=Web3.to_checksum_address(domain["verifyingContract"]),
                custodian=Web3.to_checksum_address(message["custodian"]),
                record_id=_bytes32(message["recordId"]),
                nonce=_bytes32(message["nonce"]),
                issued_at=int(message["issuedAt"]),
                expires_at=int(message["expiresAt"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SignatureError(f"the gateway sent a malformed challenge ({exc})") from None


def digest(challenge: Challenge) -> bytes:
    """The EIP-712 hash of a challenge: ``keccak256(0x19 0x01 || domainSeparator || structHash)``."""
    signable = encode_typed_data(full_message=challenge.typed_data())
    return bytes(Web3.keccak(b"\x19" + signable.version + signable.header + signable.body))


def recover_public_key(challenge: Challenge, signature: bytes) -> PublicKey:
    """The public key that signed ``challenge`` (65-byte r || s || v, v in {0, 1, 27, 28}).

    Raises:
        SignatureError: the signature is malformed or recovers to no key.
    """
    if len(signature) != 65:
        raise SignatureError(f"a signature is 65 bytes (r, s, v), got {len(signature)}")
    v = signature[64]
    if v >= 27:
        v -= 27
    try:
        sig = Signature(signature_bytes=signature[:64] + bytes([v]))
        return sig.recover_public_key_from_msg_hash(digest(challenge))
    except (BadSignature, ValidationError, ValueError) as exc:
        raise SignatureError(f"the signature does not recover to a public key ({exc})") from None


def sign(challenge: Challenge, private_key: bytes) -> bytes:
    """Signs a challenge with a reader's key (r || s || v with v in {27, 28})."""
    signature = PrivateKey(private_key).sign_msg_hash(digest(challenge))
    return signature.to_bytes()[:64] + bytes([signature.v + 27])


def _bytes32(value: object) -> bytes:
    raw = bytes.fromhex(str(value).removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError(f"{value!r} is not 32 bytes")
    return raw

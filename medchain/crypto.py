"""Record encryption: canonical FHIR JSON, SHA-256 fingerprints, AES-256-GCM, ECIES key wrapping.

No primitive is home-made: canonical JSON is RFC 8785 (``rfc8785``), AES-GCM comes from
``cryptography``, ECIES on secp256k1 from ``eciespy`` (coincurve), key handling from ``eth_keys``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import ecies
import rfc8785
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_keys.datatypes import PrivateKey, PublicKey
from web3 import Web3

from medchain.errors import MedChainError

NONCE_BYTES = 12
KEY_BYTES = 32


class CryptoError(MedChainError):
    """Decryption or key unwrapping failed: wrong key, tampered bytes, or wrong record."""


def canonical_json(resource: dict[str, Any]) -> bytes:
    """RFC 8785 canonical JSON: the same resource always gives the same bytes (and fingerprint)."""
    try:
        return rfc8785.dumps(resource)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise MedChainError(f"the resource cannot be canonicalised as JSON ({exc})") from None


SALT_BYTES = 32
RECORD_MAGIC = b"MCR1"
"""Marks a sealed record plaintext: ``MCR1 || salt (32 bytes) || canonical JSON``."""


def fingerprint(data: bytes) -> bytes:
    """Plain SHA-256 of some bytes (integrity of public objects; NOT what a record anchors)."""
    return hashlib.sha256(data).digest()


def new_salt() -> bytes:
    """A fresh 32-byte random salt, one per record version."""
    return os.urandom(SALT_BYTES)


def commitment(salt: bytes, canonical: bytes) -> bytes:
    """The anchored fingerprint of a record: SHA-256 over ``salt || canonical plaintext``.

    An unsalted digest of a templated resource (a diagnosis code, a lab value) can be recovered by
    hashing guesses; with 256 random bits in front, only someone holding the salt (which travels
    inside the encrypted record, so: the key holders) can check a guess or the record.
    """
    if len(salt) != SALT_BYTES:
        raise CryptoError(f"a record salt is {SALT_BYTES} bytes, got {len(salt)}")
    return hashlib.sha256(salt + canonical).digest()


def seal_plaintext(salt: bytes, canonical: bytes) -> bytes:
    """What gets encrypted for a record: the magic, the salt, then the canonical JSON."""
    return RECORD_MAGIC + salt + canonical


def open_plaintext(sealed: bytes) -> tuple[bytes, bytes]:
    """Splits a decrypted record into ``(salt, canonical JSON)``."""
    head = len(RECORD_MAGIC) + SALT_BYTES
    if len(sealed) < head or not sealed.startswith(RECORD_MAGIC):
        raise CryptoError("the decrypted bytes are not a MedChain record (no MCR1 header)")
    return sealed[len(RECORD_MAGIC) : head], sealed[head:]


def new_data_key() -> bytes:
    """A fresh AES-256 key, one per record version."""
    return AESGCM.generate_key(bit_length=256)


def encrypt(data_key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    """AES-256-GCM: ``nonce || ciphertext+tag``; ``associated`` (the record id) is authenticated."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(data_key).encrypt(nonce, plaintext, associated)


def decrypt(data_key: bytes, blob: bytes, associated: bytes) -> bytes:
    """Reverses :func:`encrypt`; any change to the bytes, key or record id fails."""
    if len(blob) < NONCE_BYTES + 16:
        raise CryptoError("ciphertext too short to be an AES-GCM record")
    try:
        return AESGCM(data_key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)
    except (InvalidTag, ValueError):
        raise CryptoError(
            "the ciphertext does not decrypt under this key and record id "
            "(tampered bytes, wrong key, or a ciphertext of another record)"
        ) from None


@dataclass(frozen=True)
class ReaderKey:
    """A reader's secp256k1 public key, checked against its Ethereum address."""

    address: str
    public_key: bytes  # 64 bytes, uncompressed without prefix

    @classmethod
    def from_public_key(cls, address: str, public_key: bytes) -> ReaderKey:
        try:
            pk = PublicKey(public_key)
        except Exception as exc:
            raise CryptoError(f"not a secp256k1 public key ({exc})") from None
        if pk.to_checksum_address() != Web3.to_checksum_address(address):
            raise CryptoError(f"the public key does not belong to {address}")
        return cls(Web3.to_checksum_address(address), bytes(pk.to_bytes()))

    @classmethod
    def from_private_key(cls, private_key: bytes) -> ReaderKey:
        pk = PrivateKey(private_key).public_key
        return cls(pk.to_checksum_address(), bytes(pk.to_bytes()))


def wrap_key(data_key: bytes, reader: ReaderKey) -> bytes:
    """ECIES-encrypts a data key to a reader's Ethereum public key (the key envelope)."""
    return bytes(ecies.encrypt(reader.public_key.hex(), data_key))


def unwrap_key(envelope: bytes, private_key: bytes) -> bytes:
    """Opens a key envelope with the reader's private key."""
    try:
        key = bytes(ecies.decrypt(private_key.hex(), envelope))
    except Exception:
        raise CryptoError("the key envelope does not open with this key") from None
    if len(key) != KEY_BYTES:
        raise CryptoError("the key envelope does not hold an AES-256 key")
    return key


def seal_for(reader: ReaderKey, data: bytes) -> bytes:
    """ECIES-encrypts any small object to a reader's Ethereum public key."""
    return bytes(ecies.encrypt(reader.public_key.hex(), data))


def open_sealed(blob: bytes, private_key: bytes) -> bytes:
    """Reverses :func:`seal_for` with the reader's private key."""
    try:
        return bytes(ecies.decrypt(private_key.hex(), blob))
    except Exception:
        raise CryptoError("the sealed object does not open with this key") from None

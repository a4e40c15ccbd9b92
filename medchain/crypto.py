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
TAG_BYTES = 16
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
"""Marks an unpadded record plaintext (records sealed before padding): ``MCR1 || salt || canonical JSON``."""
PADDED_MAGIC = b"MCR2"
"""Marks a padded record plaintext: ``MCR2 || salt || uint32 length || canonical JSON || zero bytes``."""
PAD_QUANTUM = 512
"""Sealed records are a multiple of this many bytes at least (larger ones: Padmé's coarser steps)."""
PAD_LIMIT = 1024 * 1024 - NONCE_BYTES - TAG_BYTES
"""The largest padded plaintext: its ciphertext fills one store block (``medchain.store.MAX_BLOCK``)."""


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
    """What gets encrypted for a record: the magic, the salt, the length, the canonical JSON, padding.

    The store is public and a ciphertext is as long as its plaintext: unpadded, two results of one
    template ("Detected" / "Not detected") would differ in size. Padding to :func:`padded_length`
    leaves an outsider only a coarse size class.
    """
    body = PADDED_MAGIC + salt + len(canonical).to_bytes(4, "big") + canonical
    return body + bytes(padded_length(len(body)) - len(body))


def padded_length(n: int) -> int:
    """The padded size of ``n`` bytes: Padmé (Nikitin et al., PETS 2019), in steps of at least
    :data:`PAD_QUANTUM`, never past :data:`PAD_LIMIT` for what fits unpadded.

    Padmé rounds ``n`` up so that only O(log log n) bits of the length remain, at most ~12 % more
    bytes for large records; the quantum hides small differences in small records entirely.
    """
    exponent = max(n.bit_length() - 1, 0)  # floor(log2 n)
    step = max(PAD_QUANTUM, 1 << max(exponent - exponent.bit_length(), 0))
    padded = -(-n // step) * step
    return max(n, PAD_LIMIT) if padded > PAD_LIMIT else padded


def open_plaintext(sealed: bytes) -> tuple[bytes, bytes]:
    """Splits a decrypted record into ``(salt, canonical JSON)`` (padded MCR2, or MCR1)."""
    head = len(PADDED_MAGIC) + SALT_BYTES
    if sealed.startswith(PADDED_MAGIC) and len(sealed) >= head + 4:
        length = int.from_bytes(sealed[head : head + 4], "big")
        end = head + 4 + length
        if end <= len(sealed) and not any(sealed[end:]):
            return sealed[len(PADDED_MAGIC) : head], sealed[head + 4 : end]
        raise CryptoError("the decrypted record's length or padding is malformed")
    if len(sealed) < head or not sealed.startswith(RECORD_MAGIC):
        raise CryptoError("the decrypted bytes are not a MedChain record (no MCR2 or MCR1 header)")
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
    if len(blob) < NONCE_BYTES + TAG_BYTES:
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
    """A reader's secp256k1 public key, checked against its Ethereum address on construction.

    An envelope is filed in a vault under ``address`` and wrapped to ``public_key``: the two must
    be one reader's, or a key filed as the custodian's could open for someone else only.
    """

    address: str
    public_key: bytes  # 64 bytes, uncompressed without prefix

    def __post_init__(self) -> None:
        try:
            key = PublicKey(self.public_key)
            claimed = Web3.to_checksum_address(self.address)
        except Exception as exc:
            raise CryptoError(f"not a secp256k1 public key and an address ({exc})") from None
        if key.to_checksum_address() != claimed:
            raise CryptoError(f"the public key does not belong to {self.address}")
        object.__setattr__(self, "address", claimed)
        object.__setattr__(self, "public_key", bytes(key.to_bytes()))

    @classmethod
    def from_public_key(cls, address: str, public_key: bytes) -> ReaderKey:
        return cls(address, public_key)

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

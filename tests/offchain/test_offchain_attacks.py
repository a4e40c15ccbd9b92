"""An outsider's attacks on the off-chain parts that need no chain: record sizes, reader keys, the
release log, request parsing and client buckets (the chain-side attacks are in
tests/integration/test_offchain_attacks.py)."""

from __future__ import annotations

import json
import os

import pytest
from eth_account import Account
from pydantic import ValidationError

from medchain import crypto
from medchain.gateway.app import ChallengeRequest, ReleaseRequest, client_key
from medchain.gateway.protocol import Challenge, SignatureError, recover_public_key, sign
from medchain.gateway.service import GatewayError, GatewayUnavailable, ReleaseLog, verify_log
from medchain.store import MAX_BLOCK
from medchain.vault import KeyVault, StagedAnchor


def observation(result: str) -> dict[str, object]:
    """A templated laboratory result: only the interpretation differs between patients."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "7917-8", "display": "HIV 1 Ab"}]},
        "valueString": result,
    }


def seal_and_encrypt(resource: dict[str, object]) -> bytes:
    sealed = crypto.seal_plaintext(crypto.new_salt(), crypto.canonical_json(resource))
    return crypto.encrypt(crypto.new_data_key(), sealed, b"\x01" * 32)


# ─── What the public store tells an outsider ───────────────────────────────────────────────


def test_ciphertext_length_does_not_tell_detected_from_not_detected():
    """The store is public (IPFS): a ciphertext one byte per plaintext byte longer than another
    tells apart two results of one template. Records are padded before encryption."""
    detected = seal_and_encrypt(observation("Detected"))
    not_detected = seal_and_encrypt(observation("Not detected"))
    assert len(detected) == len(not_detected)


def test_padded_record_opens_to_its_salt_and_canonical_bytes():
    salt, canonical = crypto.new_salt(), crypto.canonical_json(observation("Detected"))
    sealed = crypto.seal_plaintext(salt, canonical)
    assert len(sealed) % crypto.PAD_QUANTUM == 0
    assert crypto.open_plaintext(sealed) == (salt, canonical)
    # Records sealed before padding existed (MCR1) still open.
    assert crypto.open_plaintext(b"MCR1" + salt + canonical) == (salt, canonical)


def test_padding_never_pushes_a_record_over_the_store_limit():
    assert crypto.PAD_LIMIT + crypto.NONCE_BYTES + crypto.TAG_BYTES == MAX_BLOCK
    canonical = b"x" * (crypto.PAD_LIMIT - 100)  # fits unpadded; Padme alone would round it past the limit
    sealed = crypto.seal_plaintext(crypto.new_salt(), canonical)
    assert len(sealed) == crypto.PAD_LIMIT
    assert crypto.open_plaintext(sealed)[1] == canonical


@pytest.mark.parametrize("tamper", ["short", "length-past-end", "nonzero-padding"])
def test_malformed_padded_plaintext_is_refused(tamper):
    salt, canonical = crypto.new_salt(), b'{"resourceType":"Observation"}'
    sealed = bytearray(crypto.seal_plaintext(salt, canonical))
    if tamper == "short":
        sealed = sealed[:30]
    elif tamper == "length-past-end":
        sealed[36:40] = (len(sealed)).to_bytes(4, "big")
    else:
        sealed[-1] = 1
    with pytest.raises(crypto.CryptoError):
        crypto.open_plaintext(bytes(sealed))


# ─── Reader keys: an envelope is filed under the address whose key opens it ─────────────────


def test_reader_key_cannot_file_a_key_under_another_address():
    """A ReaderKey naming the custodian but holding an attacker's public key would file an envelope
    under the custodian's address in the vault that only the attacker can open."""
    custodian, attacker = Account.create(), Account.create()
    attacker_public = crypto.ReaderKey.from_private_key(bytes(attacker.key)).public_key
    with pytest.raises(crypto.CryptoError, match="does not belong"):
        crypto.ReaderKey(custodian.address, attacker_public)
    with pytest.raises(crypto.CryptoError):
        crypto.ReaderKey(custodian.address, b"\x00" * 63)
    key = crypto.ReaderKey(
        custodian.address.lower(), crypto.ReaderKey.from_private_key(bytes(custodian.key)).public_key
    )
    assert key.address == custodian.address  # one spelling, as the vault files it


# ─── The vault: what a copy of it (a backup) tells ─────────────────────────────────────────


def _staged(request_key: bytes, batch_key: bytes | None = None) -> StagedAnchor:
    return StagedAnchor(
        request_key=request_key,
        record_id=os.urandom(32),
        patient="0x" + "aa" * 20,
        custodian="0x" + "bb" * 20,
        fingerprint=os.urandom(32),
        category=b"Observation".ljust(32, b"\0"),
        previous=b"\0" * 32,
        cid="bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
        batch_key=batch_key,
        confirmed_block=None,
    )


def test_confirmed_anchor_leaves_no_unsalted_plaintext_hash_in_the_vault_file(tmp_path):
    """The retry key hashes the plaintext without a salt: kept after the anchor is confirmed, a
    vault backup lets anyone confirm a guess ("Detected" or "Not detected") by hashing it."""
    from medchain.ehr import request_key
    from medchain.types import ZERO32

    path = tmp_path / "vault.sqlite"
    vault = KeyVault(path)
    guesses = {
        result: request_key(
            "0x" + "aa" * 20, "0x" + "bb" * 20, ZERO32, crypto.canonical_json(observation(result))
        )
        for result in ("Detected", "Not detected")
    }
    single = _staged(guesses["Detected"])
    batch_key = os.urandom(32)
    batched = _staged(guesses["Not detected"], batch_key)
    vault.stage([single], [])
    vault.stage([batched], [], {batched.record_id: os.urandom(32)})
    assert (
        vault.pending(guesses["Detected"]).record_id == single.record_id
    )  # a retry needs it until confirmed
    vault.confirm([single.record_id], 7)
    vault.confirm([batched.record_id], 8, batch_id=1)
    assert vault.pending(guesses["Detected"]) is None
    entry = vault.anchor(batched.record_id)  # what the gateway serves from stays
    assert entry is not None
    assert (entry[0].record_id, entry[1]) == (batched.record_id, 1)
    vault.close()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (*guesses.values(), batch_key):
        assert secret not in data


# ─── Signatures ─────────────────────────────────────────────────────────────────────────────


def _challenge() -> Challenge:
    return Challenge(
        gateway="http://127.0.0.1:8610",
        chain_id=31337,
        ehr_index="0x" + "11" * 20,
        custodian="0x" + "22" * 20,
        record_id=b"\x33" * 32,
        nonce=os.urandom(32),
        issued_at=1,
        expires_at=121,
    )


@pytest.mark.parametrize("v", [2, 26, 29, 35, 36, 255])
def test_signature_v_values_outside_0_1_27_28_do_not_recover(v):
    reader = Account.create()
    challenge = _challenge()
    signature = sign(challenge, bytes(reader.key))
    for good in (signature[64], signature[64] - 27):
        assert (
            recover_public_key(challenge, signature[:64] + bytes([good])).to_checksum_address()
            == reader.address
        )
    with pytest.raises(SignatureError):
        recover_public_key(challenge, signature[:64] + bytes([v]))


# ─── Request parsing ────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "value",
    [
        "0x" + "00" * 31 + "  ",  # bytes.fromhex skips spaces: 64 characters, 31 bytes
        "0x" + "ab" * 31 + "\t\n",
        "0x" + "00" * 30 + " 0 0",
        "0X" + "00" * 32,
        "0x" + "00" * 32 + "\n",
    ],
)
def test_hex_ids_must_be_exactly_32_bytes_of_hex(value):
    with pytest.raises(ValidationError):
        ChallengeRequest(record_id=value)
    with pytest.raises(ValidationError):
        ReleaseRequest(challenge=value, signature="0x" + "00" * 65)


def test_signature_with_whitespace_is_a_bad_request_not_a_short_signature():
    with pytest.raises(ValidationError):
        ReleaseRequest(challenge="0x" + "00" * 32, signature="0x" + "00" * 64 + "  ")


def test_ipv6_clients_share_one_bucket_per_64_prefix():
    """One IPv6 host holds a /64 (2^64 addresses): per-address buckets would not limit it."""
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"  # IPv4 over an IPv6 socket
    assert client_key("testclient") == "testclient"


# ─── The release log ────────────────────────────────────────────────────────────────────────

CUSTODIAN_KEY = bytes(range(1, 33))


def _entry(n: int, status: int = 200) -> dict[str, object]:
    return {
        "event": "release" if status == 200 else "refusal",
        "client": "127.0.0.1",
        "reader": "0x" + "aa" * 20,
        "record": "0x" + f"{n:064x}",
        "status": status,
    }


def test_failed_log_write_leaves_no_half_line(tmp_path, monkeypatch):
    """A write that fails (full disk at fsync) is refused and leaves the file as it was, so the
    next entry still chains to the last good one."""
    path = tmp_path / "releases.jsonl"
    log = ReleaseLog(path)
    log.append(_entry(1))
    real_fsync = os.fsync

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(GatewayUnavailable):
        log.append(_entry(2))
    monkeypatch.setattr(os, "fsync", real_fsync)
    log.append(_entry(3))
    assert verify_log(path) == 2
    assert [json.loads(x)["record"][-1] for x in path.read_text().splitlines()] == ["1", "3"]


def test_log_rewritten_with_recomputed_hashes_is_caught_by_the_custodian_signature(tmp_path):
    """The hash chain alone is keyless: whoever can write the file can rewrite a refusal as a
    release, or drop a line, and recompute every hash after it. Each line is signed by the
    custodian's key, which the rewriter does not hold."""
    from medchain.gateway import service

    path = tmp_path / "releases.jsonl"
    log = ReleaseLog(path, signing_key=CUSTODIAN_KEY)
    for n, status in ((1, 200), (2, 403), (3, 200)):
        log.append(_entry(n, status))
    custodian = Account.from_key(CUSTODIAN_KEY).address
    assert verify_log(path, custodian=custodian) == 3

    # The rewriter drops the refusal and recomputes the chain with its own key or none.
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    kept = [lines[0], lines[2]]
    for forger_key in (None, bytes(range(2, 34))):
        previous = ReleaseLog.GENESIS
        out = []
        for seq, line in enumerate(kept, start=1):
            forged = {k: v for k, v in line.items() if k not in ("hash", "sig")}
            forged.update(seq=seq, prev=previous)
            forged["hash"] = service._line_hash(forged)
            if forger_key is not None:
                forged["sig"] = service._sign_line(forged["hash"], forger_key)
            previous = forged["hash"]
            out.append(json.dumps(forged, sort_keys=True))
        path.write_text("\n".join(out) + "\n")
        assert verify_log(path) == 2  # the keyless chain is intact: that alone proves nothing
        with pytest.raises(GatewayError, match="line 1"):
            verify_log(path, custodian=custodian)


def test_unsigned_line_after_signed_ones_is_broken(tmp_path):
    """Signing can begin on a log kept without it, but never stop: a stripped signature shows."""
    path = tmp_path / "releases.jsonl"
    ReleaseLog(path).append(_entry(1))
    ReleaseLog(path, signing_key=CUSTODIAN_KEY).append(_entry(2))
    assert verify_log(path) == 2
    ReleaseLog(path).append(_entry(3))
    with pytest.raises(GatewayError, match="line 3"):
        verify_log(path)


def test_log_signed_by_one_key_with_a_line_signed_by_another_is_broken(tmp_path):
    path = tmp_path / "releases.jsonl"
    ReleaseLog(path, signing_key=CUSTODIAN_KEY).append(_entry(1))
    ReleaseLog(path, signing_key=bytes(range(2, 34))).append(_entry(2))  # chains on, other key
    with pytest.raises(GatewayError, match="line 2"):
        verify_log(path)


@pytest.mark.parametrize("garbage", ["not json", "[1, 2]", "42", '{"seq": 1'])
def test_verify_log_names_a_garbled_line(tmp_path, garbage):
    path = tmp_path / "releases.jsonl"
    log = ReleaseLog(path)
    log.append(_entry(1))
    with path.open("a") as fh:
        fh.write(garbage + "\n")
    with pytest.raises(GatewayError, match="line 2"):
        verify_log(path)

"""Off-chain parts that need no chain: CIDs, the stores, the cache, record crypto, Merkle trees."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar
from urllib.parse import parse_qs

import pytest
from eth_account import Account

from medchain import crypto
from medchain.ehr import FhirValidationError, RecordHeader, validate_fhir
from medchain.merkle import MerkleTree, verify
from medchain.store import (
    MAX_BLOCK,
    CachedStore,
    ContentMismatchError,
    InvalidCidError,
    IpfsHttpStore,
    LocalFolderStore,
    StoreError,
    cid_bytes,
    cid_of,
    cid_text,
    parse_cid,
)

# ─── CIDs ──────────────────────────────────────────────────────────────────────────────────


def test_cid_matches_what_ipfs_computes():
    # `echo "hello world" | ipfs add --cid-version=1 --raw-leaves` gives this CID.
    assert cid_of(b"hello world\n") == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"


def test_cid_binary_round_trip():
    cid = cid_of(b"x")
    raw = cid_bytes(cid)
    assert len(raw) == 36
    assert raw[:4] == b"\x01\x55\x12\x20"
    assert cid_text(raw) == cid


@pytest.mark.parametrize("text", ["not-a-cid", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", ""])
def test_bad_cids_are_named(text):
    with pytest.raises(InvalidCidError):
        parse_cid(text)


# ─── Stores ────────────────────────────────────────────────────────────────────────────────


def test_local_store_round_trip(tmp_path):
    store = LocalFolderStore(tmp_path)
    cid = store.put(b"ciphertext")
    assert store.has(cid)
    assert store.get(cid) == b"ciphertext"
    assert store.put(b"ciphertext") == cid  # content addressing: same bytes, same CID


def test_local_store_detects_tampering(tmp_path):
    store = LocalFolderStore(tmp_path)
    cid = store.put(b"original")
    path = tmp_path / cid[-2:] / cid
    path.write_bytes(b"tampered")
    with pytest.raises(ContentMismatchError):
        store.get(cid)


def test_local_store_refuses_oversized_objects(tmp_path):
    with pytest.raises(StoreError, match="single-block limit"):
        LocalFolderStore(tmp_path).put(b"\0" * (MAX_BLOCK + 1))


def test_missing_object_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="not in the store"):
        LocalFolderStore(tmp_path).get(cid_of(b"never stored"))


def test_cache_counts_hits_and_misses_and_evicts(tmp_path):
    inner = LocalFolderStore(tmp_path)
    cids = [inner.put(f"obj{i}".encode()) for i in range(3)]
    cache = CachedStore(inner, capacity=2)
    cache.get(cids[0])
    cache.get(cids[0])
    cache.get(cids[1])
    cache.get(cids[2])  # evicts cids[0]
    cache.get(cids[0])
    assert (cache.hits, cache.misses) == (1, 4)


class FakeIpfs(BaseHTTPRequestHandler):
    """Enough of Kubo's RPC API (/api/v0/add, /api/v0/cat) to exercise the adapter."""

    blocks: ClassVar[dict[str, bytes]] = {}
    params_seen: ClassVar[list[str]] = []
    corrupt = False

    def do_POST(self):
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if path == "/api/v0/add":
            FakeIpfs.params_seen.append(query)
            boundary = self.headers["Content-Type"].split("boundary=")[1].encode()
            part = body.split(b"--" + boundary)[1]
            data = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
            cid = cid_of(data)
            FakeIpfs.blocks[cid] = data
            self._answer(200, json.dumps({"Name": cid, "Hash": cid, "Size": str(len(data))}).encode())
        elif path == "/api/v0/cat":
            cid = parse_qs(query)["arg"][0]
            data = FakeIpfs.blocks.get(cid)
            if data is None:
                self._answer(500, b'{"Message":"block not found"}')
            else:
                self._answer(200, b"evil" if FakeIpfs.corrupt else data)
        else:
            self._answer(404, b"")

    def _answer(self, code, payload):
        self.send_response(code)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def ipfs():
    server = HTTPServer(("127.0.0.1", 0), FakeIpfs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeIpfs.corrupt = False
    yield IpfsHttpStore(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()


def test_ipfs_adapter_round_trip(ipfs):
    cid = ipfs.put(b"encrypted record")
    assert cid == cid_of(b"encrypted record")
    assert ipfs.get(cid) == b"encrypted record"
    assert "raw-leaves=true" in FakeIpfs.params_seen[-1]
    assert "cid-version=1" in FakeIpfs.params_seen[-1]


def test_ipfs_adapter_detects_tampering(ipfs):
    cid = ipfs.put(b"encrypted record")
    FakeIpfs.corrupt = True
    with pytest.raises(ContentMismatchError):
        ipfs.get(cid)


def test_ipfs_adapter_reports_node_errors(ipfs):
    with pytest.raises(StoreError, match="HTTP 500"):
        ipfs.get(cid_of(b"absent"))


def test_ipfs_adapter_reports_unreachable_node():
    with pytest.raises(StoreError, match="no IPFS API answers"):
        IpfsHttpStore("http://127.0.0.1:9", timeout=2).put(b"x")


# ─── Crypto ────────────────────────────────────────────────────────────────────────────────

OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
    "valueQuantity": {"value": 6.3, "unit": "mmol/L"},
}


def test_canonical_json_is_stable_across_key_order():
    shuffled = dict(reversed(list(OBSERVATION.items())))
    assert crypto.canonical_json(OBSERVATION) == crypto.canonical_json(shuffled)
    assert crypto.fingerprint(crypto.canonical_json(OBSERVATION)) == crypto.fingerprint(
        crypto.canonical_json(shuffled)
    )


def test_encryption_binds_the_record_id():
    key = crypto.new_data_key()
    blob = crypto.encrypt(key, b"plaintext", b"record-a")
    assert crypto.decrypt(key, blob, b"record-a") == b"plaintext"
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(key, blob, b"record-b")  # a ciphertext served for another record
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(crypto.new_data_key(), blob, b"record-a")  # a wrong key
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(key, tampered, b"record-a")


def test_fresh_nonce_and_key_per_encryption():
    key = crypto.new_data_key()
    assert crypto.encrypt(key, b"same", b"id") != crypto.encrypt(key, b"same", b"id")
    assert crypto.new_data_key() != crypto.new_data_key()


def test_key_wrapping_is_per_reader():
    reader, other = Account.create(), Account.create()
    data_key = crypto.new_data_key()
    envelope = crypto.wrap_key(data_key, crypto.ReaderKey.from_private_key(bytes(reader.key)))
    assert crypto.unwrap_key(envelope, bytes(reader.key)) == data_key
    with pytest.raises(crypto.CryptoError):
        crypto.unwrap_key(envelope, bytes(other.key))


def test_reader_key_must_match_address():
    reader, other = Account.create(), Account.create()
    public = crypto.ReaderKey.from_private_key(bytes(reader.key)).public_key
    assert crypto.ReaderKey.from_public_key(reader.address, public).address == reader.address
    with pytest.raises(crypto.CryptoError, match="does not belong"):
        crypto.ReaderKey.from_public_key(other.address, public)


# ─── FHIR validation and headers ───────────────────────────────────────────────────────────


def test_fhir_validation_names_the_problem():
    assert validate_fhir(OBSERVATION) == "Observation"
    with pytest.raises(FhirValidationError, match="unknown FHIR resource type"):
        validate_fhir({"resourceType": "Diagnosis"})
    with pytest.raises(FhirValidationError, match="valueQuantity"):
        validate_fhir({**OBSERVATION, "valueQuantity": "six"})
    without_code = {k: v for k, v in OBSERVATION.items() if k != "code"}
    with pytest.raises(FhirValidationError, match="code"):
        validate_fhir(without_code)
    with pytest.raises(FhirValidationError, match="no resourceType"):
        validate_fhir({"status": "final"})


def test_header_rejects_digest_of_wrong_length():
    with pytest.raises(ValueError, match="fingerprint must be 32 bytes"):
        RecordHeader("0x" + "11" * 20, "0x" + "22" * 20, b"\1" * 20, b"\2" * 32)


# ─── Merkle ────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("n", [1, 2, 3, 7, 100])
def test_merkle_proofs_verify(n):
    ids = [os.urandom(32) for _ in range(n)]
    tree = MerkleTree(ids)
    assert all(verify(tree.proof(i), tree.root, i) for i in ids)
    assert not verify(tree.proof(ids[0]), tree.root, os.urandom(32))

"""Content-addressed storage of ciphertext: IPFS CIDv1 (raw, sha2-256) identifiers.

A record's ciphertext is one block of at most 1 MiB, so its CID is the one an IPFS node computes
for the same bytes with ``ipfs add --cid-version=1 --raw-leaves --chunker=size-1048576``: the
multihash of the bytes themselves. Two backends sit behind :class:`ContentStore`: a local folder
(default) and an IPFS node's HTTP RPC API. :class:`CachedStore` puts a small LRU cache of hot
records in front of either.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from multiformats import CID, multihash

from medchain.errors import MedChainError

MAX_BLOCK = 1024 * 1024
"""Largest object stored as a single raw block (IPFS's maximum chunk size)."""


class StoreError(MedChainError):
    """The content store could not store or return an object."""


class InvalidCidError(StoreError, ValueError):
    """A string or byte string is not a CIDv1 with a sha2-256 multihash."""


class ContentMismatchError(StoreError):
    """Bytes returned for a CID do not hash to that CID (tampering or corruption)."""


def cid_of(data: bytes) -> str:
    """The CIDv1 (raw codec, sha2-256, base32) of ``data``: what IPFS computes for a raw block."""
    return str(CID("base32", 1, "raw", multihash.digest(data, "sha2-256")))


def parse_cid(text: str | bytes) -> CID:
    """Parses a CID string or its binary form; only CIDv1 raw or dag-pb with sha2-256 is accepted."""
    try:
        cid = CID.decode(text)
    except (ValueError, KeyError, TypeError) as exc:
        shown = text.hex() if isinstance(text, bytes) else text
        raise InvalidCidError(f"{shown!r} is not a CID ({exc})") from None
    if cid.version != 1 or cid.codec.name not in ("raw", "dag-pb") or cid.hashfun.name != "sha2-256":
        raise InvalidCidError(f"{cid} is not a CIDv1 raw/dag-pb sha2-256 CID")
    return cid


def cid_bytes(text: str) -> bytes:
    """The binary CID the contract stores (36 bytes for CIDv1 sha2-256)."""
    return bytes(parse_cid(text))


def cid_text(raw: bytes) -> str:
    return str(parse_cid(raw).set(base="base32"))


def verify(cid: str, data: bytes) -> None:
    """Raises :class:`ContentMismatchError` unless ``data`` hashes to ``cid``."""
    parsed = parse_cid(cid)
    if parsed.codec.name != "raw":
        raise StoreError(f"{cid} is a dag-pb root; only raw blocks are verified locally")
    if bytes(parsed.raw_digest) != multihash.digest(data, "sha2-256")[2:]:
        raise ContentMismatchError(f"the bytes returned for {cid} do not hash to it")


class ContentStore(Protocol):
    """Stores bytes by their CID."""

    def put(self, data: bytes) -> str:
        """Stores ``data`` and returns its CID."""
        ...

    def get(self, cid: str) -> bytes:
        """Returns the bytes of ``cid``, verified against it."""
        ...

    def has(self, cid: str) -> bool: ...


def _check_size(data: bytes) -> None:
    if len(data) > MAX_BLOCK:
        raise StoreError(
            f"object of {len(data):,} bytes exceeds the single-block limit of {MAX_BLOCK:,}; "
            "store large attachments as several records (see docs/storage.md)"
        )


class LocalFolderStore:
    """Objects as files named by CID under a folder (``<root>/<last 2 chars>/<cid>``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"the store folder {root} cannot be created ({exc.strerror})") from None

    def _path(self, cid: str) -> Path:
        parse_cid(cid)
        return self.root / cid[-2:] / cid

    def put(self, data: bytes) -> str:
        _check_size(data)
        cid = cid_of(data)
        path = self._path(cid)
        if path.exists():
            return cid
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        except OSError as exc:
            raise StoreError(f"cannot write to the store at {self.root} ({exc.strerror})") from None
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)  # atomic: a reader never sees half an object
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StoreError(
                f"cannot write {cid} to the store at {self.root} ({exc.strerror}); nothing was anchored"
            ) from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return cid

    def get(self, cid: str) -> bytes:
        path = self._path(cid)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{cid} is not in the store at {self.root}") from None
        except OSError as exc:
            raise StoreError(f"cannot read {cid} from the store at {self.root} ({exc.strerror})") from None
        verify(cid, data)
        return data

    def has(self, cid: str) -> bool:
        return self._path(cid).is_file()


class IpfsHttpStore:
    """An IPFS node (Kubo) through its HTTP RPC API (``/api/v0/add``, ``/api/v0/cat``)."""

    def __init__(self, api_url: str = "http://127.0.0.1:5001", timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout

    def _post(
        self, endpoint: str, params: dict[str, str], body: bytes = b"", content_type: str = ""
    ) -> bytes:
        url = f"{self.api_url}/api/v0/{endpoint}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, data=body, method="POST")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            raise StoreError(f"IPFS {endpoint} failed: HTTP {exc.code} {exc.read()[:200]!r}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise StoreError(f"no IPFS API answers at {self.api_url} ({exc})") from None

    def put(self, data: bytes) -> str:
        _check_size(data)
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="blob"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        params = {
            "cid-version": "1",
            "raw-leaves": "true",
            "hash": "sha2-256",
            "chunker": f"size-{MAX_BLOCK}",
            "pin": "true",
            "quieter": "true",
        }
        answer = self._post("add", params, body, f"multipart/form-data; boundary={boundary}")
        try:
            cid = str(json.loads(answer.splitlines()[-1])["Hash"])
        except (ValueError, KeyError, IndexError) as exc:
            raise StoreError(f"unexpected answer from IPFS add: {answer[:200]!r}") from exc
        expected = cid_of(data)
        if cid != expected:
            raise StoreError(
                f"IPFS returned {cid} for bytes whose CID is {expected}; check the node's settings"
            )
        return cid

    def get(self, cid: str) -> bytes:
        parse_cid(cid)
        data = self._post("cat", {"arg": cid})
        verify(cid, data)
        return data

    def has(self, cid: str) -> bool:
        try:
            self.get(cid)
        except StoreError:
            return False
        return True


class CachedStore:
    """A small LRU cache of hot objects in front of another store, with hit and miss counts."""

    def __init__(self, inner: ContentStore, capacity: int = 128) -> None:
        if capacity < 1:
            raise ValueError("cache capacity must be at least 1")
        self.inner = inner
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._cache: OrderedDict[str, bytes] = OrderedDict()

    def put(self, data: bytes) -> str:
        cid = self.inner.put(data)
        self._remember(cid, data)
        return cid

    def get(self, cid: str) -> bytes:
        if cid in self._cache:
            self.hits += 1
            self._cache.move_to_end(cid)
            return self._cache[cid]
        self.misses += 1
        data = self.inner.get(cid)
        self._remember(cid, data)
        return data

    def has(self, cid: str) -> bool:
        return cid in self._cache or self.inner.has(cid)

    def _remember(self, cid: str, data: bytes) -> None:
        self._cache[cid] = data
        self._cache.move_to_end(cid)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)

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

    def has(self, cid: str) -> bool:
        """Whether the store itself holds ``cid`` now; never fetches it from elsewhere."""
        ...


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


class IpfsRpcError(StoreError):
    """An IPFS node answered an RPC request with an error.

    Attributes:
        endpoint: The RPC command, for example ``block/stat``.
        status: The HTTP status (Kubo answers 500 for a command that failed).
        message: Kubo's error message (the ``Message`` of its JSON error body), or the raw body.
    """

    def __init__(self, endpoint: str, status: int, message: str) -> None:
        self.endpoint, self.status, self.message = endpoint, status, message
        super().__init__(f"IPFS {endpoint} failed: HTTP {status} {message[:200]!r}")


def _go_duration(seconds: float) -> str:
    """A Go duration string for Kubo's global ``timeout`` option (whole milliseconds, at least 1)."""
    return f"{max(1, round(seconds * 1000))}ms"


class IpfsHttpStore:
    """An IPFS node (Kubo) through its HTTP RPC API.

    Every request is a POST with its arguments in the query string, as Kubo's RPC reference says
    (docs.ipfs.tech/reference/kubo/rpc); ``offline`` and ``timeout`` are Kubo's global options
    (``ipfs --offline``, ``ipfs --timeout``), which every command takes:

    - put: ``/api/v0/add?cid-version=1&raw-leaves=true&hash=sha2-256&chunker=size-1048576&pin=true
      &quieter=true`` with the bytes as the ``file`` part of a ``multipart/form-data`` body;
    - get: ``/api/v0/cat?arg=<cid>&timeout=<timeout>``: the node may fetch the object from its
      peers, and stops looking when the time-out passes;
    - has: ``/api/v0/block/stat?arg=<cid>&offline=true&timeout=<has_timeout>``: the node's own
      blockstore only. It never downloads the object nor searches the network for it, and answers
      within ``has_timeout`` or the call fails. An object here is one raw block (see ``put``), so
      its block is the whole object.

    Args:
        api_url: The node's RPC address.
        timeout: Seconds a ``put`` or ``get`` may take (the node is told too, for ``get``).
        has_timeout: Seconds a ``has`` may take.
    """

    def __init__(
        self, api_url: str = "http://127.0.0.1:5001", timeout: float = 30.0, has_timeout: float = 5.0
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.has_timeout = has_timeout

    def _post(
        self,
        endpoint: str,
        params: dict[str, str],
        body: bytes = b"",
        content_type: str = "",
        timeout: float | None = None,
    ) -> bytes:
        url = f"{self.api_url}/api/v0/{endpoint}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, data=body, method="POST")
        if content_type:
            request.add_header("Content-Type", content_type)
        seconds = self.timeout if timeout is None else timeout
        try:
            with urllib.request.urlopen(request, timeout=seconds) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            raise IpfsRpcError(endpoint, exc.code, _kubo_message(exc.read())) from None
        except TimeoutError:
            raise StoreError(f"IPFS {endpoint}: no answer from {self.api_url} within {seconds:g} s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise StoreError(
                    f"IPFS {endpoint}: no answer from {self.api_url} within {seconds:g} s"
                ) from None
            raise StoreError(f"no IPFS API answers at {self.api_url} ({exc})") from None
        except OSError as exc:
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
        data = self._post("cat", {"arg": cid, "timeout": _go_duration(self.timeout)})
        verify(cid, data)
        return data

    def has(self, cid: str) -> bool:
        """Whether the node holds ``cid`` itself (asked offline: nothing is downloaded).

        Raises:
            InvalidCidError: ``cid`` is not a CID the store uses.
            StoreError: the node did not answer within ``has_timeout``, or failed otherwise (an
                unreachable node is not reported as an absent object).
        """
        wanted = parse_cid(cid)
        params = {"arg": cid, "offline": "true", "timeout": _go_duration(self.has_timeout)}
        try:
            answer = self._post("block/stat", params, timeout=self.has_timeout)
        except IpfsRpcError as exc:
            if exc.status == 500 and _means_not_found(exc.message):
                return False
            raise
        try:
            key = parse_cid(str(json.loads(answer)["Key"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"unexpected answer from IPFS block/stat: {answer[:200]!r}") from exc
        if bytes(key.raw_digest) != bytes(wanted.raw_digest):
            raise StoreError(f"IPFS block/stat answered for {key}, not for {cid}")
        return True


def _kubo_message(body: bytes) -> str:
    """The ``Message`` of Kubo's JSON error body, or the body as text."""
    try:
        return str(json.loads(body)["Message"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace").strip()


def _means_not_found(message: str) -> bool:
    """Whether Kubo's error says the block is not in its blockstore.

    Offline, Kubo answers ``block was not found locally (offline): ipld: could not find <cid>``
    (older versions: ``blockstore: block not found``).
    """
    lowered = message.lower()
    return "not found" in lowered or "could not find" in lowered


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

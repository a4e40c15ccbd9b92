"""The Kubo RPC adapter against a fake Kubo that holds each request to Kubo's RPC reference
(docs.ipfs.tech/reference/kubo/rpc): POST only, a documented command, documented arguments, a
multipart body for add. `has()` must ask the node's own blockstore (block/stat, offline) with a
time limit, never download the object nor let the node search the network for it.

No IPFS binary runs here; the fake answers as Kubo does (HTTP 500 with a JSON `Message` when a
command fails, 405 for a GET).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from medchain.store import IpfsHttpStore, IpfsRpcError, StoreError, cid_of

# The arguments Kubo's RPC reference lists for each command this adapter may use.
DOCUMENTED = {
    "/api/v0/add": {
        "quiet", "quieter", "silent", "progress", "trickle", "only-hash", "wrap-with-directory",
        "chunker", "raw-leaves", "nocopy", "fscache", "cid-version", "hash", "inline",
        "inline-limit", "pin", "to-files",
    },
    "/api/v0/cat": {"arg", "offset", "length", "progress"},
    "/api/v0/block/stat": {"arg"},
    "/api/v0/block/get": {"arg"},
}  # fmt: skip
# Kubo's global options (`ipfs --offline`, `--timeout`, ...), which every command takes.
GLOBAL_OPTIONS = {"offline", "timeout", "encoding", "stream-channels", "cid-base"}
TAKES_ONE_ARG = {"/api/v0/cat", "/api/v0/block/stat", "/api/v0/block/get"}
# Commands that transfer an object's bytes (or search the network for it).
DOWNLOADS = {
    "/api/v0/cat", "/api/v0/get", "/api/v0/block/get", "/api/v0/dag/get", "/api/v0/dag/export",
    "/api/v0/refs", "/api/v0/routing/findprovs", "/api/v0/dht/findprovs",
}  # fmt: skip
GO_DURATION = re.compile(r"^\d+(ns|us|ms|s|m|h)$")
NOT_FOUND_OFFLINE = "block was not found locally (offline): ipld: could not find {cid}"


class FakeKubo(BaseHTTPRequestHandler):
    """Kubo's RPC for add, cat, block/stat and block/get, checking each request's shape."""

    blocks: dict[str, bytes]
    requests: list[tuple[str, str, dict[str, list[str]]]]
    violations: list[str]
    network_searches: list[str]
    failure: str | None  # answer every command with this error instead

    def do_GET(self):
        self._record("GET")
        self.violations.append(f"GET {self.path}: Kubo's RPC takes POST only")
        self._answer(405, b"405 - Method Not Allowed")

    def do_POST(self):
        path, query = self._record("POST")
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if path not in DOCUMENTED:
            self.violations.append(f"{path} is not a command this adapter should use")
            self._answer(404, b"404 page not found")
            return
        for name, values in query.items():
            if name not in DOCUMENTED[path] | GLOBAL_OPTIONS:
                self.violations.append(f"{path}: undocumented argument {name!r}")
            if len(values) != 1:
                self.violations.append(f"{path}: {name!r} given {len(values)} times")
        if "timeout" in query and not GO_DURATION.match(query["timeout"][0]):
            self.violations.append(f"{path}: timeout {query['timeout'][0]!r} is not a Go duration")
        if path in TAKES_ONE_ARG and len(query.get("arg", [])) != 1:
            self.violations.append(f"{path}: needs exactly one 'arg'")
        if self.failure is not None:
            self._error(self.failure)
            return
        offline = query.get("offline") == ["true"]
        if path == "/api/v0/add":
            self._add(body)
            return
        cid = query["arg"][0]
        data = self.blocks.get(cid)
        if data is None and not offline:
            # A real node would now ask its peers and the DHT, for as long as `timeout` allows.
            self.network_searches.append(f"{path} {cid}")
        if data is None:
            self._error(NOT_FOUND_OFFLINE.format(cid=cid) if offline else "context deadline exceeded")
        elif path == "/api/v0/block/stat":
            self._answer(200, json.dumps({"Key": cid, "Size": len(data)}).encode())
        else:
            self._answer(200, data)

    def _add(self, body):
        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data; boundary="):
            self.violations.append(f"add: body is {content_type!r}, not multipart/form-data")
            self._error("add: expected a multipart body")
            return
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        parts = list(message.iter_parts()) if message.is_multipart() else []
        is_file = len(parts) == 1 and parts[0].get_content_disposition() == "form-data"
        if not is_file or not parts[0].get_filename():
            self.violations.append("add: expected one form-data file part with a filename")
            self._error("add: no file")
            return
        data = parts[0].get_payload(decode=True)
        cid = cid_of(data)
        self.blocks[cid] = data
        self._answer(200, json.dumps({"Name": cid, "Hash": cid, "Size": str(len(data))}).encode())

    def _record(self, method):
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        self.requests.append((method, split.path, query))
        return split.path, query

    def _error(self, message):
        self._answer(500, json.dumps({"Message": message, "Code": 0, "Type": "error"}).encode())

    def _answer(self, code, payload):
        self.send_response(code)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def kubo():
    """A fake Kubo node; yields (its handler class, an adapter pointed at it)."""
    handler = type(
        "Node",
        (FakeKubo,),
        {"blocks": {}, "requests": [], "violations": [], "network_searches": [], "failure": None},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, IpfsHttpStore(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()
    assert handler.violations == [], handler.violations


@pytest.fixture
def hanging_node():
    """An address that accepts connections and never answers (a node stuck searching)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


# ─── has() ───────────────────────────────────────────────────────────────────────────────────


def test_has_asks_the_nodes_blockstore_offline_with_a_time_limit(kubo):
    node, store = kubo
    cid = store.put(b"ciphertext")
    node.requests.clear()
    assert store.has(cid)
    assert node.requests == [
        ("POST", "/api/v0/block/stat", {"arg": [cid], "offline": ["true"], "timeout": ["5000ms"]})
    ]


def test_has_never_downloads_the_object(kubo):
    node, store = kubo
    cid = store.put(b"a large ciphertext" * 1000)
    node.requests.clear()
    assert store.has(cid)
    assert not store.has(cid_of(b"never stored"))
    assert [path for _, path, _ in node.requests if path in DOWNLOADS] == []


def test_has_of_an_object_the_node_lacks_is_false_without_a_network_search(kubo):
    node, store = kubo
    assert not store.has(cid_of(b"never stored"))
    assert node.network_searches == []


def test_has_reports_a_failing_node_instead_of_answering_false(kubo):
    node, store = kubo
    cid = store.put(b"ciphertext")
    node.failure = "failed to get block: repo is closed"
    with pytest.raises(IpfsRpcError, match="repo is closed") as info:
        store.has(cid)
    assert info.value.status == 500


def test_has_reports_an_unreachable_node_instead_of_answering_false():
    with pytest.raises(StoreError, match="no IPFS API answers"):
        IpfsHttpStore("http://127.0.0.1:9", has_timeout=2).has(cid_of(b"x"))


def test_has_gives_up_on_a_node_that_does_not_answer(hanging_node):
    store = IpfsHttpStore(hanging_node, has_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"block/stat: no answer .* within 0\.5 s"):
        store.has(cid_of(b"ciphertext"))
    assert time.monotonic() - started < 3


def test_has_refuses_what_is_not_a_cid_before_asking_the_node(kubo):
    node, store = kubo
    with pytest.raises(StoreError, match="is not a CID"):
        store.has("../../etc/passwd")
    assert node.requests == []


# ─── put() and get() ─────────────────────────────────────────────────────────────────────────


def test_put_adds_one_multipart_file_with_our_cid_settings(kubo):
    node, store = kubo
    cid = store.put(b"ciphertext")
    assert cid == cid_of(b"ciphertext")
    method, path, query = node.requests[-1]
    assert (method, path) == ("POST", "/api/v0/add")
    assert query == {
        "cid-version": ["1"],
        "raw-leaves": ["true"],
        "hash": ["sha2-256"],
        "chunker": ["size-1048576"],
        "pin": ["true"],
        "quieter": ["true"],
    }


def test_get_tells_the_node_when_to_stop_looking(kubo):
    node, store = kubo
    cid = store.put(b"ciphertext")
    assert store.get(cid) == b"ciphertext"
    assert node.requests[-1] == ("POST", "/api/v0/cat", {"arg": [cid], "timeout": ["30000ms"]})


def test_get_gives_up_on_a_node_that_does_not_answer(hanging_node):
    store = IpfsHttpStore(hanging_node, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"cat: no answer .* within 0\.5 s"):
        store.get(cid_of(b"ciphertext"))
    assert time.monotonic() - started < 3


def test_every_request_is_one_kubo_documents(kubo):
    """The fixture fails the test on any POST-less, undocumented or malformed request."""
    node, store = kubo
    cid = store.put(b"ciphertext")
    store.get(cid)
    store.has(cid)
    store.has(cid_of(b"never stored"))
    assert {method for method, _, _ in node.requests} == {"POST"}
    assert [path for _, path, _ in node.requests] == [
        "/api/v0/add",
        "/api/v0/cat",
        "/api/v0/block/stat",
        "/api/v0/block/stat",
    ]

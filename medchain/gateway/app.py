"""The gateway as an HTTP service (FastAPI under uvicorn): `medchain gateway serve`.

Endpoints (JSON in, JSON out; binary values base64, ids 0x-hex):

- ``GET  /v1/health``: custodian, chain id, EHRIndex address.
- ``POST /v1/challenges`` ``{"record_id"}``: a single-use EIP-712 challenge to sign.
- ``POST /v1/releases`` ``{"challenge", "signature"}``: the ciphertext and a key envelope wrapped
  to the signer's own key, if the chain permits the signer to read the record.

Statuses: 400 malformed request, 401 unknown/used/expired challenge or bad signature, 403 no
permitted access, 404 unknown record or another custodian's, 408 body too slow, 410
entered-in-error, 413 body too large, 429 rate limited (``Retry-After``), 503 chain/store/vault
unavailable. The request carries no header, address or key: unknown fields are refused.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, field_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medchain.gateway.service import (
    GatewayBadRequest,
    GatewayError,
    GatewayPayloadTooLarge,
    GatewayRateLimited,
    GatewayRequestTimeout,
    GatewayService,
    GatewayUnavailable,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_HEX32 = re.compile(r"(0x)?[0-9a-fA-F]{64}")
_HEX65 = re.compile(r"(0x)?[0-9a-fA-F]{130}")


def _hex32(value: str) -> str:
    # A pattern, not bytes.fromhex alone: fromhex skips whitespace, so 64 characters may be 31 bytes.
    if not _HEX32.fullmatch(value):
        raise ValueError("must be 32 bytes as 0x-prefixed hex (64 hex digits)")
    return value.removeprefix("0x")


class ChallengeRequest(_Strict):
    record_id: str

    @field_validator("record_id")
    @classmethod
    def _check(cls, value: str) -> str:
        return _hex32(value)


class ReleaseRequest(_Strict):
    challenge: str
    signature: str

    @field_validator("challenge")
    @classmethod
    def _check_challenge(cls, value: str) -> str:
        return _hex32(value)

    @field_validator("signature")
    @classmethod
    def _check_signature(cls, value: str) -> str:
        if not _HEX65.fullmatch(value):
            raise ValueError("must be a 65-byte signature as 0x-prefixed hex")
        return value.removeprefix("0x")


class BodyLimit:
    """Refuses request bodies above ``limit`` bytes with 413, whether or not Content-Length is sent,
    and bodies not complete within ``timeout`` seconds with 408 (a slow client holding a
    connection open: the rate limits only see requests that arrived)."""

    def __init__(self, app: ASGIApp, limit: int, timeout: float) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        # Bodies here are a few hundred bytes: read the whole body first (up to the limit), so an
        # oversized one is refused before any handler sees it, chunked or not.
        body = b""
        more = True
        deadline = time.monotonic() + self.timeout
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                await _error_response(
                    GatewayRequestTimeout(f"request body not received within {self.timeout:g} s")
                )(scope, receive, send)
                return
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > self.limit:
                await _too_large(self.limit)(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int) -> JSONResponse:
    return _error_response(GatewayPayloadTooLarge(f"request body larger than {limit} bytes"))


def _error_response(error: GatewayError) -> JSONResponse:
    return JSONResponse({"error": type(error).__name__, "detail": str(error)}, status_code=error.status)


def client_key(host: str) -> str:
    """The rate-limit bucket of a client address: the address, or its /64 for IPv6 (one host or
    site holds a whole /64, so per-address buckets would not limit it)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def create_app(service: GatewayService) -> FastAPI:
    """The ASGI application of one custodian's gateway."""
    app = FastAPI(
        title="MedChain custodian gateway",
        version="1",
        summary="Releases encrypted health records to readers the chain permits",
    )

    @app.exception_handler(GatewayError)
    async def _gateway_error(_request: Request, exc: GatewayError) -> JSONResponse:
        headers = {}
        if isinstance(exc, GatewayRateLimited):
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return JSONResponse(
            {"error": type(exc).__name__, "detail": str(exc)}, status_code=exc.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        error = GatewayBadRequest(f"{where or 'body'}: {first.get('msg', 'invalid request')}")
        return JSONResponse({"error": type(error).__name__, "detail": str(error)}, status_code=400)

    def _client(request: Request) -> str:
        client = request.client.host if request.client else "?"
        service.client_limiter.take(client_key(client), f"client {client}")
        return client

    @app.get("/v1/health")
    def health(request: Request) -> dict[str, Any]:
        _client(request)
        return {
            "custodian": service.custodian,
            "chain_id": service.chain_id,
            "ehr_index": service.ehr.address,
            "public_url": service.settings.public_url,
        }

    @app.post("/v1/challenges")
    def challenge(body: ChallengeRequest, request: Request) -> dict[str, Any]:
        _client(request)
        issued = service.issue_challenge(bytes.fromhex(body.record_id))
        return {
            "challenge": "0x" + issued.nonce.hex(),
            "expires_at": issued.expires_at,
            "typed_data": issued.typed_data(),
        }

    @app.post("/v1/releases")
    def release(body: ReleaseRequest, request: Request) -> dict[str, Any]:
        client = _client(request)
        granted = service.release(bytes.fromhex(body.challenge), bytes.fromhex(body.signature), client)
        record = granted.record
        h = record.header
        return {
            "record_id": "0x" + record.id.hex(),
            "header": {
                "patient": h.patient,
                "custodian": h.custodian,
                "fingerprint": "0x" + h.fingerprint.hex(),
                "category": "0x" + h.category.hex(),
                "previous": "0x" + h.previous.hex(),
            },
            "cid": record.cid,
            "batch_id": record.batch_id,
            "proof": ["0x" + node.hex() for node in record.proof],
            "reader": granted.reader,
            "basis": granted.basis,
            "ciphertext": base64.b64encode(granted.ciphertext).decode(),
            "envelope": base64.b64encode(granted.envelope).decode(),
        }

    app.add_middleware(
        BodyLimit, limit=service.settings.max_body_bytes, timeout=service.settings.body_timeout
    )
    return app


def serve(service: GatewayService, host: str, port: int) -> None:
    """Runs the gateway under uvicorn in this process (one worker: challenges live in memory)."""
    import uvicorn

    uvicorn.run(create_app(service), host=host, port=port, workers=1, log_level="warning", access_log=False)


class BackgroundGateway:
    """Runs a gateway in a background thread of this process (demo, tests, benchmarks).

    The service's ``settings.public_url`` must name ``host:port`` (readers check it).
    """

    def __init__(self, service: GatewayService, host: str = "127.0.0.1", port: int | None = None) -> None:
        import uvicorn

        if port is None:
            port = urlsplit(service.settings.public_url).port or 80
        config = uvicorn.Config(
            create_app(service), host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self.server.run, name="medchain-gateway", daemon=True)

    def __enter__(self) -> BackgroundGateway:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise GatewayUnavailable(f"the gateway did not start at {self.url}")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)

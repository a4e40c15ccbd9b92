"""The reader's side of a custodian gateway, over HTTP: authenticate, fetch, verify, decrypt.

The reader never trusts the gateway either: it checks the challenge before signing it (its chain,
the deployment, the record asked for, the gateway's URL), and checks what it receives against the
chain (the header must be the anchored one, or proven by the batch root, and name the custodian
that challenged it) and against the anchored commitment after decryption. A malformed answer is an
``IntegrityError``, never a crash.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from web3 import Web3

from medchain.ehr import AnchoredRecord, EHRClient, IntegrityError, RecordHeader, Release
from medchain.gateway import service as errors
from medchain.gateway.protocol import Challenge, sign
from medchain.types import RecordId

_BY_STATUS: dict[int, type[errors.GatewayError]] = {
    cls.status: cls
    for cls in (
        errors.GatewayBadRequest,
        errors.GatewayUnauthenticated,
        errors.GatewayForbidden,
        errors.GatewayNotFound,
        errors.GatewayRequestTimeout,
        errors.GatewayGone,
        errors.GatewayPayloadTooLarge,
        errors.GatewayUnavailable,
    )
}


class GatewayClient:
    """Talks to one custodian's gateway.

    Args:
        url: The gateway's base URL (``http://host:port``).
        timeout: Seconds per HTTP request.
    """

    def __init__(self, url: str, timeout: float = 30.0, http: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = http or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/v1/health", None)

    def fetch(self, ehr: EHRClient, record_id: bytes, reader: LocalAccount) -> Release:
        """Authenticates as ``reader`` and fetches ``record_id``; checks the answer against the chain.

        Raises:
            GatewayError: the gateway refused (the subclass says why).
            IntegrityError: the gateway's answer does not match the chain.
        """
        issued = self._call("POST", "/v1/challenges", {"record_id": "0x" + record_id.hex()})
        challenge = Challenge.from_typed_data(issued.get("typed_data"))
        self._check_challenge(ehr, challenge, record_id)
        if challenge.gateway.rstrip("/") != self.url:
            raise IntegrityError(
                f"the challenge names gateway {challenge.gateway!r}, not {self.url!r}; not signing it"
            )
        signature = sign(challenge, bytes(reader.key))
        answer = self._call(
            "POST",
            "/v1/releases",
            {"challenge": "0x" + challenge.nonce.hex(), "signature": "0x" + signature.hex()},
        )
        record = self._record_from_chain(ehr, record_id, answer)
        if Web3.to_checksum_address(record.header.custodian) != challenge.custodian:
            raise IntegrityError(
                f"the record is held by {record.header.custodian}, not by the custodian "
                f"{challenge.custodian} whose gateway challenged the reader"
            )
        try:
            ciphertext = base64.b64decode(answer["ciphertext"], validate=True)
            envelope = base64.b64decode(answer["envelope"], validate=True)
        except (KeyError, binascii.Error) as exc:
            raise IntegrityError(f"the gateway's answer is malformed ({exc})") from None
        return Release(record, ciphertext, envelope)

    def read(self, ehr: EHRClient, record_id: bytes, reader: LocalAccount) -> dict[str, Any]:
        """Fetches, decrypts and verifies a record; returns the FHIR resource."""
        return ehr.open(self.fetch(ehr, record_id, reader), bytes(reader.key))

    # ─── Checks ─────────────────────────────────────────────────────────────────────────────

    @staticmethod
    def _check_challenge(ehr: EHRClient, challenge: Challenge, record_id: bytes) -> None:
        if challenge.record_id != record_id:
            raise IntegrityError("the gateway's challenge names another record; not signing it")
        if challenge.chain_id != ehr.chain.chain_id or challenge.ehr_index != Web3.to_checksum_address(
            ehr.address
        ):
            raise IntegrityError("the gateway's challenge is for another chain or deployment; not signing it")

    @staticmethod
    def _record_from_chain(ehr: EHRClient, record_id: bytes, answer: dict[str, Any]) -> AnchoredRecord:
        try:
            h = answer["header"]
            header = RecordHeader(
                h["patient"],
                h["custodian"],
                bytes.fromhex(h["fingerprint"].removeprefix("0x")),
                bytes.fromhex(h["category"].removeprefix("0x")),
                bytes.fromhex(h["previous"].removeprefix("0x")),
            )
            batch_id = int(answer["batch_id"])
            proof = tuple(bytes.fromhex(p.removeprefix("0x")) for p in answer["proof"])
            cid = str(answer["cid"])
            if batch_id < 0 or any(len(node) != 32 for node in proof):
                raise ValueError("a batch id is positive and a proof is a list of 32-byte nodes")
            hashed = header.record_id
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IntegrityError(f"the gateway's answer is malformed ({exc})") from None
        if hashed != record_id:
            raise IntegrityError("the gateway sent a header that does not hash to the record id")
        if batch_id == 0:
            anchored = ehr.record(record_id)
            if anchored.header != header or anchored.cid != cid:
                raise IntegrityError("the gateway's header or CID differs from the anchored one")
            return anchored
        record = AnchoredRecord(RecordId(record_id), header, cid, 0, batch_id, proof)
        if not ehr.in_batch(record):
            raise IntegrityError(f"batch {batch_id} on chain does not prove the gateway's header")
        return record

    # ─── HTTP ───────────────────────────────────────────────────────────────────────────────

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            response = self._http.request(method, self.url + path, json=body)
        except httpx.HTTPError as exc:
            raise errors.GatewayUnavailable(f"no gateway answers at {self.url} ({exc})") from None
        try:
            data: Any = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {"detail": response.text[:200]}
            if response.status_code == 200:
                raise IntegrityError(f"the gateway at {self.url} answered something other than a JSON object")
        if response.status_code == 200:
            return dict(data)
        detail = f"gateway {self.url} refused ({response.status_code}): {data.get('detail', data)}"
        if response.status_code == 429:
            raise errors.GatewayRateLimited(detail, float(response.headers.get("Retry-After", "1")))
        raise _BY_STATUS.get(response.status_code, errors.GatewayError)(detail)

"""The custodian gateway's rules, independent of HTTP: who gets which record's key, and the log.

Every fact the chain can tell is taken from the chain, never from the request:

- the reader is whoever signed a fresh, single-use challenge (address and public key recovered from
  the signature);
- the record header comes from the record's ``RecordAnchored`` event (single records) or from this
  custodian's own vault proved against the batch root on chain (batched records), and its id is
  recomputed from the header and compared;
- the reader must be the patient, the custodian, or an accessor with a ``RecordAccessed`` event for
  this record no older than ``access_window`` seconds of *chain* time, whose consent (or break-glass
  session) still holds now (``checkAccess`` again: a revocation or a disputed session stops
  releases at once);
- the data key is unwrapped with the custodian's key and wrapped to the recovered reader key only.

Each release and each refusal is appended to a hash-chained log (:class:`ReleaseLog`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_keys.datatypes import PrivateKey, PublicKey, Signature
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError
from web3 import Web3

from medchain import crypto
from medchain.consent import AccessDecision
from medchain.ehr import (
    AccessNotPermittedError,
    AnchoredRecord,
    EHRClient,
    RecordNotFoundError,
    vault_record,
)
from medchain.errors import ChainError, MedChainError
from medchain.gateway.protocol import Challenge, SignatureError, recover_public_key
from medchain.store import ContentStore, StoreError
from medchain.suite import Suite
from medchain.types import Actions, Purpose, RecordStatus
from medchain.vault import KeyNotFoundError, KeyVault, VaultError

# ─── Errors, each with the HTTP status it maps to ───────────────────────────────────────────


class GatewayError(MedChainError):
    """Root of the gateway's refusals; ``status`` is the HTTP status the service answers with."""

    status = 500


class GatewayBadRequest(GatewayError):
    """The request is malformed (not JSON, wrong fields, bad hex)."""

    status = 400


class GatewayUnauthenticated(GatewayError):
    """The challenge is unknown, used, expired, or the signature does not verify."""

    status = 401


class GatewayForbidden(GatewayError, AccessNotPermittedError):
    """The authenticated reader has no permitted access to the record on chain."""

    status = 403


class GatewayRequestTimeout(GatewayError):
    """The request body did not arrive in time (a slow client holding a connection)."""

    status = 408


class GatewayNotFound(GatewayError, RecordNotFoundError):
    """No such record, or it is held by another custodian."""

    status = 404


class GatewayGone(GatewayError):
    """The record was marked entered-in-error."""

    status = 410


class GatewayPayloadTooLarge(GatewayError):
    """The request body exceeds the limit."""

    status = 413


class GatewayRateLimited(GatewayError):
    """Too many requests from this client or reader; retry after ``retry_after`` seconds."""

    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GatewayUnavailable(GatewayError):
    """The chain, store or vault cannot be reached; nothing was released."""

    status = 503


# ─── Settings and results ───────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class GatewaySettings:
    """Tunable limits of a gateway (defaults suit one hospital's gateway)."""

    public_url: str = "http://127.0.0.1:8610"
    """The origin readers reach the gateway at; signed into each challenge (phishing protection)."""
    access_window: int = 3600
    """How old (chain seconds) a reader's RecordAccessed event may be."""
    challenge_ttl: int = 120
    """Seconds a challenge stays valid."""
    max_open_challenges: int = 10_000
    """Open challenges kept; past it the oldest is dropped (a reader answers within a second)."""
    max_body_bytes: int = 4096
    body_timeout: float = 10.0
    """Seconds a client has to send its whole request body (else 408)."""
    rate_per_client: float = 20.0
    """Requests per second per client address (token bucket)."""
    burst_per_client: int = 40
    rate_per_reader: float = 5.0
    """Releases per second per authenticated reader."""
    burst_per_reader: int = 10


@dataclass(frozen=True)
class GatewayRelease:
    """A granted release: the record (header from chain), ciphertext, and envelope for the reader."""

    record: AnchoredRecord
    ciphertext: bytes
    envelope: bytes
    reader: str
    basis: str
    """Why it was released: ``patient``, ``custodian``, ``consent`` or ``break-glass``."""


# ─── The append-only log ────────────────────────────────────────────────────────────────────


class ReleaseLog:
    """Append-only JSON-lines log of releases and refusals; each line hashes the previous one.

    Lines hold addresses, record ids, statuses and reasons: no health data. Every line is written
    and fsynced before the answer leaves the gateway; a write that fails leaves the file as it
    was. :func:`verify_log` detects an edited, removed or reordered line. The hash chain alone
    needs no key, so whoever can write the file could rewrite it whole and recompute it: with
    ``signing_key`` (the custodian's), each line also carries the custodian's signature of its
    hash, which a rewriter cannot make.
    """

    GENESIS = "0" * 64

    def __init__(self, path: Path | None, signing_key: bytes | None = None) -> None:
        self.path = path
        self._signing_key = signing_key
        self._lock = threading.Lock()
        self._last = self.GENESIS
        self._seq = 0
        self.entries: list[dict[str, Any]] = []  # in-memory copy when path is None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.is_file():
                    lines = path.read_text().splitlines()
                    if lines:
                        last = json.loads(lines[-1])
                        self._last, self._seq = str(last["hash"]), int(last["seq"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise GatewayError(f"the release log {path} cannot be read ({exc})") from None

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            line = {"seq": self._seq + 1, "time": round(time.time(), 3), **entry, "prev": self._last}
            line["hash"] = _line_hash(line)
            if self._signing_key is not None:
                line["sig"] = _sign_line(line["hash"], self._signing_key)
            if self.path is None:
                self.entries.append(line)
            else:
                try:
                    _append_durably(self.path, (json.dumps(line, sort_keys=True) + "\n").encode())
                except OSError as exc:
                    raise GatewayUnavailable(
                        f"the release log {self.path} cannot be written ({exc})"
                    ) from None
            self._seq += 1
            self._last = line["hash"]
            return line


def _append_durably(path: Path, data: bytes) -> None:
    """Appends ``data`` and fsyncs it; on failure cuts the file back, so no half line remains."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


def _line_hash(line: dict[str, Any]) -> str:
    body = {k: v for k, v in line.items() if k not in ("hash", "sig")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _sign_line(line_hash: str, key: bytes) -> str:
    return "0x" + PrivateKey(key).sign_msg_hash(bytes.fromhex(line_hash)).to_bytes().hex()


def _line_signer(line: dict[str, Any]) -> str | None:
    """The address that signed a line's hash, or None if it carries no signature.

    Raises:
        ValueError: the signature is malformed.
    """
    sig = line.get("sig")
    if sig is None:
        return None
    try:
        signature = Signature(bytes.fromhex(str(sig).removeprefix("0x")))
        key = signature.recover_public_key_from_msg_hash(bytes.fromhex(str(line["hash"])))
    except (BadSignature, ValidationError, TypeError) as exc:
        raise ValueError(str(exc)) from None
    return str(key.to_checksum_address())


def verify_log(path: Path, custodian: str | None = None) -> int:
    """Checks a release log's hash chain and signatures; returns its number of lines.

    Args:
        path: The log file.
        custodian: The address every line must be signed by. Without it, the signed lines must
            all carry one signer (whoever that is) and follow any unsigned ones: only the
            custodian's address, known from the chain, proves the log is the gateway's and not a
            rewrite.

    Raises:
        GatewayError: a line was edited, removed, inserted, reordered, garbled or not signed by
            the custodian.
    """
    expected = Web3.to_checksum_address(custodian) if custodian is not None else None
    previous = ReleaseLog.GENESIS
    signer: str | None = None
    count = 0
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        broken = f"release log {path} is broken at line {number}"
        try:
            line = json.loads(text)
        except ValueError:
            line = None
        if not isinstance(line, dict):
            raise GatewayError(f"{broken}: not a log entry (garbled or truncated)")
        if line.get("prev") != previous or line.get("hash") != _line_hash(line) or line.get("seq") != number:
            raise GatewayError(f"{broken}: edited, removed or reordered")
        try:
            signed_by = _line_signer(line)
        except ValueError:
            raise GatewayError(f"{broken}: its signature is malformed") from None
        if expected is not None and signed_by != expected:
            raise GatewayError(
                f"{broken}: not signed by the custodian {expected} ({signed_by or 'unsigned'})"
            )
        # Unsigned lines may only precede the first signed one (a log kept before signing began).
        if signer is None:
            signer = signed_by
        elif signed_by != signer:
            raise GatewayError(f"{broken}: signed by {signed_by or 'no one'}, earlier lines by {signer}")
        previous = line["hash"]
        count = number
    return count


# ─── Rate limiting ──────────────────────────────────────────────────────────────────────────


class RateLimiter:
    """Token buckets per key (client address, reader address), bounded in memory."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float], max_keys: int = 50_000) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, what: str) -> None:
        """Spends one token of ``key``'s bucket.

        Raises:
            GatewayRateLimited: the bucket is empty.
        """
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                retry = (1.0 - tokens) / self.rate
                raise GatewayRateLimited(f"too many requests from {what}; retry in {retry:.1f} s", retry)
            self._buckets[key] = (tokens - 1.0, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)


# ─── The service ────────────────────────────────────────────────────────────────────────────


class GatewayService:
    """One custodian's gateway: issues challenges and releases keys to authenticated readers.

    Args:
        suite: The deployment (chain connection and contracts).
        store: Where the custodian's ciphertexts are.
        vault: The custodian's key vault (its own envelopes, and headers of batched records).
        custodian_key: The custodian institution's private key (unwraps data keys).
        settings: Limits and the public URL.
        log: Where releases and refusals are appended.
        clock: Wall clock for challenges and rate limits (tests inject one).
    """

    def __init__(
        self,
        suite: Suite,
        store: ContentStore,
        vault: KeyVault,
        custodian_key: bytes,
        settings: GatewaySettings | None = None,
        log: ReleaseLog | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.suite = suite
        self.ehr: EHRClient = suite.ehr(store)
        self.vault = vault
        self.settings = settings or GatewaySettings()
        self.log = log or ReleaseLog(None)
        self.clock = clock
        self._key = custodian_key
        self.custodian = PrivateKey(custodian_key).public_key.to_checksum_address()
        self.chain_id = suite.chain.chain_id
        self._challenges: OrderedDict[bytes, Challenge] = OrderedDict()
        self._challenge_lock = threading.Lock()
        self._headers: dict[bytes, AnchoredRecord] = {}
        s = self.settings
        self.client_limiter = RateLimiter(s.rate_per_client, s.burst_per_client, clock)
        self.reader_limiter = RateLimiter(s.rate_per_reader, s.burst_per_reader, clock)

    # ─── Challenges ─────────────────────────────────────────────────────────────────────────

    def issue_challenge(self, record_id: bytes) -> Challenge:
        """A fresh single-use challenge for ``record_id``; says nothing about the record itself."""
        now = int(self.clock())
        challenge = Challenge(
            gateway=self.settings.public_url,
            chain_id=self.chain_id,
            ehr_index=self.ehr.address,
            custodian=self.custodian,
            record_id=record_id,
            nonce=secrets.token_bytes(32),
            issued_at=now,
            expires_at=now + self.settings.challenge_ttl,
        )
        with self._challenge_lock:
            self._drop_expired(now)
            # Full: drop the oldest rather than refuse. A flood of unanswered challenges then only
            # pushes out its own, while a refusal would lock every reader out until they expire.
            while len(self._challenges) >= self.settings.max_open_challenges:
                self._challenges.popitem(last=False)
            self._challenges[challenge.nonce] = challenge
        return challenge

    def _take_challenge(self, nonce: bytes) -> Challenge:
        """Removes and returns the challenge (single use, whether the release succeeds or not)."""
        with self._challenge_lock:
            challenge = self._challenges.pop(nonce, None)
        if challenge is None:
            raise GatewayUnauthenticated("unknown or already used challenge; ask for a new one")
        if int(self.clock()) > challenge.expires_at:
            raise GatewayUnauthenticated("the challenge expired; ask for a new one")
        return challenge

    def _drop_expired(self, now: int) -> None:
        """Drops expired challenges from the front (issued in order, they expire in order)."""
        while self._challenges:
            nonce, oldest = next(iter(self._challenges.items()))
            if oldest.expires_at >= now:
                return
            del self._challenges[nonce]

    # ─── Releases ───────────────────────────────────────────────────────────────────────────

    def release(self, nonce: bytes, signature: bytes, client: str = "?") -> GatewayRelease:
        """Releases a record to whoever signed the challenge, if the chain permits it.

        Raises:
            GatewayError: a subclass naming why (and the HTTP status to answer with).
        """
        reader = "?"
        record_id = b""
        try:
            challenge = self._take_challenge(nonce)
            record_id = challenge.record_id
            try:
                public_key = recover_public_key(challenge, signature)
            except SignatureError as exc:
                raise GatewayUnauthenticated(str(exc)) from None
            reader = public_key.to_checksum_address()
            self.reader_limiter.take(reader, reader)
            granted = self._release(challenge, public_key, reader)
        except GatewayError as exc:
            self.log.append(
                {
                    "event": "refusal",
                    "client": client,
                    "reader": reader,
                    "record": "0x" + record_id.hex() if record_id else None,
                    "status": exc.status,
                    "reason": str(exc),
                }
            )
            raise
        self.log.append(
            {
                "event": "release",
                "client": client,
                "reader": reader,
                "record": "0x" + record_id.hex(),
                "status": 200,
                "basis": granted.basis,
            }
        )
        return granted

    def _release(self, challenge: Challenge, public_key: PublicKey, reader: str) -> GatewayRelease:
        try:
            record = self._record(challenge.record_id)
            header = record.header
            patient = Web3.to_checksum_address(header.patient)
            if reader == self.custodian:
                basis = "custodian"
            else:
                # Batched records have a state only once retracted, so one check covers both kinds.
                if self.ehr.status(record.id) == RecordStatus.ENTERED_IN_ERROR:
                    raise GatewayGone(f"record 0x{record.id.hex()} was marked entered-in-error")
                basis = "patient" if reader == patient else self._permitted(record, reader)
            data_key = crypto.unwrap_key(self.vault.get(record.id, self.custodian), self._key)
            ciphertext = self.ehr.store.get(record.cid)
        except (KeyNotFoundError, crypto.CryptoError) as exc:
            raise GatewayUnavailable(
                f"this gateway cannot open record 0x{challenge.record_id.hex()}: {exc}"
            ) from None
        except (VaultError, StoreError, ChainError) as exc:
            raise GatewayUnavailable(f"nothing was released: {exc}") from None
        reader_key = crypto.ReaderKey(reader, bytes(public_key.to_bytes()))
        return GatewayRelease(record, ciphertext, crypto.wrap_key(data_key, reader_key), reader, basis)

    def _record(self, record_id: bytes) -> AnchoredRecord:
        """The record's header, from the chain (or this custodian's vault proved against the chain)."""
        cached = self._headers.get(record_id)
        if cached is not None:
            return cached
        try:
            record = self.ehr.record(record_id)
        except RecordNotFoundError:
            record = self._batched(record_id)
        if record.header.record_id != record_id:
            raise GatewayNotFound(f"record 0x{record_id.hex()}: the anchored header does not hash to its id")
        if Web3.to_checksum_address(record.header.custodian) != self.custodian:
            raise GatewayNotFound(
                f"record 0x{record_id.hex()} is held by another custodian, not by this gateway"
            )
        self._headers[record_id] = record
        return record

    def _batched(self, record_id: bytes) -> AnchoredRecord:
        record = vault_record(self.vault, record_id)
        if record is None or not record.batch_id:
            raise GatewayNotFound(f"no record 0x{record_id.hex()} is anchored by this custodian")
        if not self.ehr.in_batch(record):
            raise GatewayNotFound(
                f"record 0x{record_id.hex()} is not proven by batch {record.batch_id} on chain"
            )
        return record

    def _permitted(self, record: AnchoredRecord, reader: str) -> str:
        """``consent`` or ``break-glass`` if the chain shows a recent audited access that still holds.

        ``checkAccess`` is asked once per purpose (the only input that differs between events), so
        a reader with a thousand access events costs the node no more calls than one with four. A
        break-glass release needs an access audited under the session that holds now: a later
        session of the same pair does not inherit the reads of an earlier one, or its reviewer
        would see no read under it while records were released.
        """
        events = self.ehr.access_history(record_id=record.id, accessor=reader)
        if not events:
            raise GatewayForbidden(
                f"{reader} has no audited access to record 0x{record.id.hex()} on chain; "
                "call accessRecord first"
            )
        now = self.ehr.now()
        recent = [e for e in events if now - e.timestamp <= self.settings.access_window]
        if not recent:
            raise GatewayForbidden(
                f"{reader}'s last audited access to record 0x{record.id.hex()} is older than "
                f"{self.settings.access_window} s; call accessRecord again"
            )
        decisions: dict[Purpose, AccessDecision] = {}
        for event in reversed(recent):
            purpose = event.purpose
            if purpose not in decisions:
                decisions[purpose] = self.suite.consent.check(
                    record.header.patient,
                    reader,
                    Actions.READ,
                    purpose,
                    record_id=record.id,
                    category=record.header.category_text,
                )
            decision = decisions[purpose]
            if not decision.allowed:
                continue
            if not decision.break_glass:
                return "consent"  # a consent holds now (it may replace an emergency session)
            if event.break_glass and event.authorization == decision.grant_id:
                return "break-glass"
        raise GatewayForbidden(
            f"{reader}'s consent (or emergency session) for record 0x{record.id.hex()} no longer holds"
        )

"""Client for ConsentManager: grants (direct and EIP-712 signed), guardians, break-glass, checks."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import TxReceipt

from medchain.chain import ContractClient, Sender
from medchain.eip712 import (
    domain_of,
    make_domain,
    recover_typed_data,
    sign_typed,
    sign_typed_data,
    typed_data,
)
from medchain.errors import ConfigurationError, MedChainError
from medchain.types import (
    NO_END,
    ZERO32,
    ZERO_ADDRESS,
    Actions,
    GrantId,
    GrantStatus,
    Purpose,
    Review,
    ScopeKind,
    SessionId,
    category_code,
    category_text,
)


@dataclass(frozen=True)
class GrantTerms:
    """The terms of a consent grant, as the contract's ``GrantTerms`` struct."""

    patient: str
    grantee: str
    scope_kind: ScopeKind
    scope_value: bytes
    actions: int
    purposes: int
    not_before: int = 0
    not_after: int = NO_END

    @classmethod
    def for_all(
        cls,
        patient: str,
        grantee: str,
        actions: int,
        *purposes: Purpose,
        not_before: int = 0,
        not_after: int = NO_END,
    ) -> GrantTerms:
        """All of the patient's data."""
        return cls(
            patient,
            grantee,
            ScopeKind.ALL,
            ZERO32,
            int(actions),
            Purpose.mask(*purposes),
            not_before,
            not_after,
        )

    @classmethod
    def for_category(
        cls,
        patient: str,
        grantee: str,
        category: str,
        actions: int,
        *purposes: Purpose,
        not_before: int = 0,
        not_after: int = NO_END,
    ) -> GrantTerms:
        """One data category: a FHIR resource type such as ``Observation``."""
        return replace(
            cls.for_all(patient, grantee, actions, *purposes, not_before=not_before, not_after=not_after),
            scope_kind=ScopeKind.CATEGORY,
            scope_value=category_code(category),
        )

    @classmethod
    def for_record(
        cls,
        patient: str,
        grantee: str,
        record_id: bytes,
        actions: int,
        *purposes: Purpose,
        not_before: int = 0,
        not_after: int = NO_END,
    ) -> GrantTerms:
        """One record, by its EHRIndex id."""
        return replace(
            cls.for_all(patient, grantee, actions, *purposes, not_before=not_before, not_after=not_after),
            scope_kind=ScopeKind.RECORD,
            scope_value=record_id,
        )

    @property
    def scope_text(self) -> str:
        """The scope as people write it: ``all``, ``category:Observation`` or ``record:0x<id>``."""
        return scope_text(self.scope_kind, self.scope_value)

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            Web3.to_checksum_address(self.patient),
            Web3.to_checksum_address(self.grantee),
            int(self.scope_kind),
            self.scope_value,
            self.actions,
            self.purposes,
            self.not_before,
            self.not_after,
        )

    def as_message(self) -> dict[str, Any]:
        return {
            "patient": Web3.to_checksum_address(self.patient),
            "grantee": Web3.to_checksum_address(self.grantee),
            "scopeKind": int(self.scope_kind),
            "scopeValue": self.scope_value,
            "actions": self.actions,
            "purposes": self.purposes,
            "notBefore": self.not_before,
            "notAfter": self.not_after,
        }


@dataclass(frozen=True)
class SignedRequest:
    """A request signed off chain that any party may submit."""

    signer: str
    nonce: int
    deadline: int
    signature: bytes


@dataclass(frozen=True)
class Grant:
    """A grant as its events tell it, with its current status from the contract."""

    id: GrantId
    terms: GrantTerms
    actor: str
    via_signature: bool
    block: int
    status: GrantStatus


@dataclass(frozen=True)
class GrantGuardian:
    """Who gave a guardian's grant, and whether that guardianship still runs."""

    guardian: str
    in_office: bool


@dataclass(frozen=True)
class AccessDecision:
    """What ``checkAccess`` answers: allowed or not, under which grant, and whether by break-glass."""

    allowed: bool
    grant_id: GrantId
    break_glass: bool


@dataclass(frozen=True)
class BreakGlassSession:
    """An emergency access session and its review state."""

    id: SessionId
    patient: str
    institution: str
    opened_at: int
    expires_at: int
    review: Review
    justification_digest: bytes


GRANT_TYPES = [
    {"name": "patient", "type": "address"},
    {"name": "grantee", "type": "address"},
    {"name": "scopeKind", "type": "uint8"},
    {"name": "scopeValue", "type": "bytes32"},
    {"name": "actions", "type": "uint8"},
    {"name": "purposes", "type": "uint8"},
    {"name": "notBefore", "type": "uint40"},
    {"name": "notAfter", "type": "uint40"},
    {"name": "signer", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
REVOKE_TYPES = [
    {"name": "grantId", "type": "bytes32"},
    {"name": "signer", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


CONSENT_DOMAIN_NAME = "MedChain ConsentManager"
CONSENT_DOMAIN_VERSION = "1"
"""The EIP-712 name and version ConsentManager's constructor gives its domain."""
SIGNED_GRANT_FORMAT = "medchain-signed-grant/1"

_ACTION_NAMES = {"read": Actions.READ, "append": Actions.APPEND, "share": Actions.SHARE}


def scope_text(kind: ScopeKind, value: bytes) -> str:
    """A grant scope as people write it: ``all``, ``category:<FHIR type>`` or ``record:0x<id>``."""
    if kind == ScopeKind.ALL:
        return "all"
    if kind == ScopeKind.CATEGORY:
        return "category:" + category_text(value)
    return f"{kind.name.lower()}:0x{value.hex()}"


def parse_scope(text: str) -> tuple[ScopeKind, bytes]:
    """Reverses :func:`scope_text`.

    Raises:
        ValueError: not ``all``, ``category:<1-32 ASCII characters>`` or ``record:<64 hex digits>``.
    """
    kind, _, value = text.strip().partition(":")
    if kind == "all" and not value:
        return ScopeKind.ALL, ZERO32
    if kind == "category" and value:
        return ScopeKind.CATEGORY, category_code(value)
    if kind == "record" and value:
        raw = value.removeprefix("0x")
        try:
            record_id = bytes.fromhex(raw)
        except ValueError:
            record_id = b""
        if len(record_id) == 32 and len(raw) == 64:
            return ScopeKind.RECORD, record_id
        raise ValueError(f"{text!r}: a record id is 64 hex digits")
    raise ValueError(f"{text!r}: use all, category:<FHIR resource type> or record:<0x record id>")


def actions_text(actions: int) -> str:
    """An actions bitmap as a comma list: ``read,share``."""
    return ",".join(name for name, flag in _ACTION_NAMES.items() if actions & flag)


def parse_actions(text: str) -> int:
    """Reverses :func:`actions_text`.

    Raises:
        ValueError: an unknown or missing action name.
    """
    mask = 0
    for name in (n.strip().lower() for n in text.split(",")):
        if name not in _ACTION_NAMES:
            raise ValueError(f"unknown action {name!r}; use read, append, share (comma-separated)")
        mask |= int(_ACTION_NAMES[name])
    return mask


def consent_domain(chain_id: int, consent_manager: str) -> dict[str, Any]:
    """ConsentManager's EIP-712 domain from its chain id and address alone (offline signing)."""
    return make_domain(CONSENT_DOMAIN_NAME, CONSENT_DOMAIN_VERSION, chain_id, consent_manager)


def grant_typed_data(
    domain: dict[str, Any], terms: GrantTerms, signer: str, nonce: int, deadline: int
) -> dict[str, Any]:
    """The EIP-712 document a patient (or guardian) signs to grant ``terms``."""
    message = {
        **terms.as_message(),
        "signer": Web3.to_checksum_address(signer),
        "nonce": nonce,
        "deadline": deadline,
    }
    return typed_data(domain, "Grant", GRANT_TYPES, message)


def sign_grant_offline(
    signer: LocalAccount, terms: GrantTerms, domain: dict[str, Any], nonce: int, deadline: int
) -> SignedRequest:
    """Signs a grant with no node at all: the domain, nonce and deadline are given."""
    typed = grant_typed_data(domain, terms, signer.address, nonce, deadline)
    return SignedRequest(signer.address, nonce, deadline, sign_typed_data(signer, typed))


@dataclass(frozen=True)
class SignedGrant:
    """A signed grant with the domain it was signed for: a file any party may submit.

    The JSON form (:meth:`to_json`) names the terms as people read them (scope ``category:
    Observation``, actions ``read,share``, purpose codes); the EIP-712 message is rebuilt from
    them, so a changed term no longer matches the signature.
    """

    terms: GrantTerms
    domain: dict[str, Any]
    request: SignedRequest

    def signed_by(self) -> str:
        """The address that really signed (recovered from the signature)."""
        typed = grant_typed_data(
            self.domain, self.terms, self.request.signer, self.request.nonce, self.request.deadline
        )
        return recover_typed_data(typed, self.request.signature)

    def to_json(self) -> str:
        t = self.terms
        return json.dumps(
            {
                "format": SIGNED_GRANT_FORMAT,
                "domain": self.domain,
                "terms": {
                    "patient": Web3.to_checksum_address(t.patient),
                    "grantee": Web3.to_checksum_address(t.grantee),
                    "scope": t.scope_text,
                    "actions": actions_text(t.actions),
                    "purposes": [p.name for p in Purpose.from_mask(t.purposes)],
                    "notBefore": t.not_before,
                    "notAfter": t.not_after,
                },
                "signer": self.request.signer,
                "nonce": self.request.nonce,
                "deadline": self.request.deadline,
                "signature": "0x" + self.request.signature.hex(),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, data: Any, source: str = "the signed grant") -> SignedGrant:
        """Reads :meth:`to_json`'s document (already parsed from JSON).

        Raises:
            ConfigurationError: one line saying which part is missing or malformed.
        """
        if not isinstance(data, dict) or data.get("format") != SIGNED_GRANT_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ConfigurationError(f"{source} is not a {SIGNED_GRANT_FORMAT} file (format {found!r})")
        try:
            d, t = data["domain"], data["terms"]
            kind, value = parse_scope(str(t["scope"]))
            terms = GrantTerms(
                Web3.to_checksum_address(t["patient"]),
                Web3.to_checksum_address(t["grantee"]),
                kind,
                value,
                parse_actions(str(t["actions"])),
                Purpose.mask(*(Purpose.parse(str(p)) for p in t["purposes"])),
                int(t["notBefore"]),
                int(t["notAfter"]),
            )
            signed_domain = make_domain(
                str(d["name"]), str(d["version"]), int(d["chainId"]), d["verifyingContract"]
            )
            signature = bytes.fromhex(str(data["signature"]).removeprefix("0x"))
            request = SignedRequest(
                Web3.to_checksum_address(data["signer"]), int(data["nonce"]), int(data["deadline"]), signature
            )
        except KeyError as exc:
            raise ConfigurationError(f"{source} lacks the field {exc}") from None
        except (ValueError, TypeError, AttributeError) as exc:
            raise ConfigurationError(f"{source} has a malformed field ({exc})") from None
        return cls(terms, signed_domain, request)


class ConsentClient(ContractClient):
    """Patient-side and institution-side consent operations."""

    # ─── Direct grants ──────────────────────────────────────────────────────────────────────

    def grant(self, sender: Sender, terms: GrantTerms) -> GrantId:
        """Grants consent as the patient or a guardian; returns the grant id."""
        return self._granted_id(self._send(sender, "grant", terms.as_tuple()))

    def revoke(self, sender: Sender, grant_id: bytes) -> None:
        self._send(sender, "revoke", grant_id)

    # ─── Signed grants ──────────────────────────────────────────────────────────────────────

    def domain(self) -> dict[str, Any]:
        """The EIP-712 domain, read from the contract (ERC-5267 ``eip712Domain``)."""
        return domain_of(self.chain, self.contract)

    def nonce(self, patient: str) -> int:
        return int(self._call("nonces", Web3.to_checksum_address(patient)))

    def sign_grant(
        self, signer: LocalAccount, terms: GrantTerms, deadline: int | None = None, nonce: int | None = None
    ) -> SignedRequest:
        """Signs a grant off chain with the patient's (or a guardian's) key; no gas, no transaction."""
        nonce = self.nonce(terms.patient) if nonce is None else nonce
        deadline = deadline if deadline is not None else self.now() + 3600
        return sign_grant_offline(signer, terms, self.domain(), nonce, deadline)

    def submit_signed_grant(self, sender: Sender, terms: GrantTerms, signed: SignedRequest) -> GrantId:
        """Submits a signed grant; the sender pays the gas. Returns the grant id."""
        receipt = self._send(
            sender,
            "grantBySig",
            terms.as_tuple(),
            Web3.to_checksum_address(signed.signer),
            signed.nonce,
            signed.deadline,
            signed.signature,
        )
        return self._granted_id(receipt)

    def submit(self, sender: Sender, signed: SignedGrant) -> GrantId:
        """Checks a signed grant against this deployment, then submits it (the sender pays the gas).

        Raises:
            MedChainError: one line naming the mismatch: signed for another chain or contract,
                the signature is not the named signer's, the deadline passed, or the nonce is not
                the patient's current one (used already, or signed before a newer request).
        """
        here = self.domain()
        if signed.domain != here:
            raise MedChainError(
                f"the grant was signed for chain {signed.domain['chainId']}, contract "
                f"{signed.domain['verifyingContract']} ({signed.domain['name']} {signed.domain['version']}); "
                f"this deployment is chain {here['chainId']}, ConsentManager {here['verifyingContract']}"
            )
        request = signed.request
        recovered = signed.signed_by()
        if recovered != request.signer:
            raise MedChainError(
                f"the signature is not {request.signer}'s (it recovers to {recovered}): the terms or the "
                "signature were changed after signing"
            )
        now = self.now()
        if request.deadline < now:
            raise MedChainError(
                f"the signature expired at {request.deadline} (chain time is {now}); ask for a new one"
            )
        expected = self.nonce(signed.terms.patient)
        if request.nonce != expected:
            raise MedChainError(
                f"the signature carries nonce {request.nonce} but {signed.terms.patient}'s current nonce is "
                f"{expected}: it was used already or a newer request came first; ask for a new one"
            )
        return self.submit_signed_grant(sender, signed.terms, request)

    def sign_revoke(
        self, signer: LocalAccount, grant_id: bytes, patient: str, deadline: int | None = None
    ) -> SignedRequest:
        nonce = self.nonce(patient)
        deadline = deadline if deadline is not None else self.now() + 3600
        message = {"grantId": grant_id, "signer": signer.address, "nonce": nonce, "deadline": deadline}
        return SignedRequest(
            signer.address, nonce, deadline, self._sign(signer, "Revoke", REVOKE_TYPES, message)
        )

    def submit_signed_revoke(self, sender: Sender, grant_id: bytes, signed: SignedRequest) -> None:
        self._send(
            sender,
            "revokeBySig",
            grant_id,
            Web3.to_checksum_address(signed.signer),
            signed.nonce,
            signed.deadline,
            signed.signature,
        )

    def _sign(
        self, signer: LocalAccount, primary: str, types: list[dict[str, str]], message: dict[str, Any]
    ) -> bytes:
        return sign_typed(self.chain, self.contract, signer, primary, types, message)

    # ─── Guardians and break-glass ──────────────────────────────────────────────────────────

    def add_guardian(self, patient: Sender, guardian: str) -> None:
        """Appoints ``guardian``; appointing a former guardian again voids requests signed before."""
        self._send(patient, "addGuardian", Web3.to_checksum_address(guardian))

    def remove_guardian(self, patient: Sender, guardian: str) -> None:
        self._send(patient, "removeGuardian", Web3.to_checksum_address(guardian))

    def is_guardian(self, patient: str, guardian: str) -> bool:
        return bool(
            self._call("isGuardian", Web3.to_checksum_address(patient), Web3.to_checksum_address(guardian))
        )

    def open_break_glass(self, institution: Sender, patient: str, justification_digest: bytes) -> SessionId:
        """Opens an emergency session; returns its id."""
        receipt = self._send(
            institution, "openBreakGlass", Web3.to_checksum_address(patient), justification_digest
        )
        return SessionId(int(self._emitted_field(receipt, "BreakGlassOpened", "sessionId")))

    def review_break_glass(self, reviewer: Sender, session_id: int, accept: bool) -> None:
        self._send(reviewer, "reviewBreakGlass", session_id, accept)

    def session(self, session_id: int) -> BreakGlassSession:
        patient, institution, opened, expires, review, digest = self._call("session", session_id)
        return BreakGlassSession(
            SessionId(session_id),
            patient,
            institution,
            int(opened),
            int(expires),
            Review(review),
            bytes(digest),
        )

    def disputed_sessions(self, institution: str) -> int:
        return int(self._call("disputedSessions", Web3.to_checksum_address(institution)))

    def break_glass_blocked_until(self, institution: str, patient: str) -> int | None:
        """When disputes stop ``institution`` from breaking the glass for ``patient``: the first
        second it may again, or None when it may now."""
        until = int(
            self._call(
                "breakGlassBlockedUntil",
                Web3.to_checksum_address(institution),
                Web3.to_checksum_address(patient),
            )
        )
        return until or None

    # ─── Reads ──────────────────────────────────────────────────────────────────────────────

    def check(
        self,
        patient: str,
        accessor: str,
        action: Actions,
        purpose: Purpose,
        record_id: bytes = ZERO32,
        category: str | None = None,
    ) -> AccessDecision:
        """Asks the contract whether ``accessor`` may act on ``patient``'s data now."""
        allowed, grant_id, bg = self._call(
            "checkAccess",
            Web3.to_checksum_address(patient),
            Web3.to_checksum_address(accessor),
            record_id,
            category_code(category) if category else ZERO32,
            int(action),
            int(purpose),
        )
        return AccessDecision(bool(allowed), GrantId(bytes(grant_id)), bool(bg))

    def status(self, grant_id: bytes) -> GrantStatus:
        _record, status = self._call("grantOf", grant_id)
        return GrantStatus(status)

    def guardian_of(self, grant_id: bytes) -> GrantGuardian | None:
        """For a grant a guardian gave: that guardian and whether its guardianship runs; else None."""
        guardian, in_office = self._call("guardianOfGrant", grant_id)
        if guardian == ZERO_ADDRESS:
            return None
        return GrantGuardian(guardian, bool(in_office))

    def grants_of(self, patient: str) -> list[Grant]:
        """Every grant the patient has given, latest terms first-seen order, from chain events."""
        latest: dict[bytes, Grant] = {}
        for log in self._events("ConsentGranted", patient=Web3.to_checksum_address(patient)):
            args = log["args"]
            t = args["terms"]
            terms = GrantTerms(
                t["patient"],
                t["grantee"],
                ScopeKind(t["scopeKind"]),
                bytes(t["scopeValue"]),
                int(t["actions"]),
                int(t["purposes"]),
                int(t["notBefore"]),
                int(t["notAfter"]),
            )
            gid = GrantId(bytes(args["grantId"]))
            latest[gid] = Grant(
                gid,
                terms,
                args["actor"],
                bool(args["viaSignature"]),
                int(log["blockNumber"]),
                GrantStatus.NONE,
            )
        return [replace(g, status=self.status(g.id)) for g in latest.values()]

    def sessions_of(self, patient: str) -> list[BreakGlassSession]:
        """The patient's break-glass sessions, from events, with their current review state."""
        logs = self._events("BreakGlassOpened", patient=Web3.to_checksum_address(patient))
        return [self.session(int(log["args"]["sessionId"])) for log in logs]

    def _granted_id(self, receipt: TxReceipt) -> GrantId:
        return GrantId(bytes(self._emitted_field(receipt, "ConsentGranted", "grantId")))

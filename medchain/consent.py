"""Client for ConsentManager: grants (direct and EIP-712 signed), guardians, break-glass, checks."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum, IntFlag
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from medchain.chain import ContractClient, Sender
from medchain.eip712 import domain_of, sign_typed
from medchain.types import ascii_text, fixed_ascii

NO_END = 2**40 - 1
"""``notAfter`` of a grant that does not expire."""
ZERO32 = b"\0" * 32
ZERO_ADDRESS = "0x" + "0" * 40


class Actions(IntFlag):
    """What a grantee may do (the contract's actions bitmap)."""

    READ = 1
    APPEND = 2
    SHARE = 4


class Purpose(IntEnum):
    """HL7 v3 PurposeOfUse codes the contract knows, by index (bit ``1 << index``)."""

    TREAT = 0
    HPAYMT = 1
    HRESCH = 2
    ETREAT = 3

    @property
    def display(self) -> str:
        return _PURPOSE_DISPLAY[self]

    @classmethod
    def mask(cls, *purposes: Purpose) -> int:
        bits = 0
        for p in purposes:
            bits |= 1 << int(p)
        return bits

    @classmethod
    def from_mask(cls, mask: int) -> list[Purpose]:
        return [p for p in cls if mask & (1 << int(p))]

    @classmethod
    def parse(cls, text: str) -> Purpose:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown purpose of use {text!r}; expected one of: TREAT, HPAYMT, HRESCH, ETREAT"
            ) from None


_PURPOSE_DISPLAY = {
    Purpose.TREAT: "treatment",
    Purpose.HPAYMT: "healthcare payment",
    Purpose.HRESCH: "healthcare research",
    Purpose.ETREAT: "emergency treatment",
}


class ScopeKind(IntEnum):
    NONE = 0
    RECORD = 1
    CATEGORY = 2
    ALL = 3


class GrantStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    REVOKED = 2
    EXPIRED = 3
    PENDING = 4
    LAPSED = 5
    """A guardian gave it and that guardianship has ended: it no longer permits access."""


class Review(IntEnum):
    NONE = 0
    PENDING = 1
    ACCEPTED = 2
    DISPUTED = 3


def category_code(code: str) -> bytes:
    """A data category (a FHIR resource type such as ``Observation``) as the contract's bytes32."""
    return fixed_ascii(code, 32, "category code")


def category_text(value: bytes) -> str:
    return ascii_text(value)


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

    id: bytes
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
    allowed: bool
    grant_id: bytes
    break_glass: bool


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


class ConsentClient(ContractClient):
    """Patient-side and institution-side consent operations."""

    # ─── Direct grants ──────────────────────────────────────────────────────────────────────

    def grant(self, sender: Sender, terms: GrantTerms) -> bytes:
        """Grants consent as the patient or a guardian; returns the grant id."""
        receipt = self.chain.transact(self.contract.functions.grant(terms.as_tuple()), sender)
        return self._granted_id(receipt)

    def revoke(self, sender: Sender, grant_id: bytes) -> None:
        self.chain.transact(self.contract.functions.revoke(grant_id), sender)

    # ─── Signed grants ──────────────────────────────────────────────────────────────────────

    def domain(self) -> dict[str, Any]:
        """The EIP-712 domain, read from the contract (ERC-5267 ``eip712Domain``)."""
        return domain_of(self.chain, self.contract)

    def nonce(self, patient: str) -> int:
        return int(self.chain.call(self.contract.functions.nonces(Web3.to_checksum_address(patient))))

    def sign_grant(
        self, signer: LocalAccount, terms: GrantTerms, deadline: int | None = None, nonce: int | None = None
    ) -> SignedRequest:
        """Signs a grant off chain with the patient's (or a guardian's) key; no gas, no transaction."""
        nonce = self.nonce(terms.patient) if nonce is None else nonce
        deadline = deadline if deadline is not None else self._default_deadline()
        message = {**terms.as_message(), "signer": signer.address, "nonce": nonce, "deadline": deadline}
        return SignedRequest(
            signer.address, nonce, deadline, self._sign(signer, "Grant", GRANT_TYPES, message)
        )

    def submit_signed_grant(self, sender: Sender, terms: GrantTerms, signed: SignedRequest) -> bytes:
        """Submits a signed grant; the sender pays the gas. Returns the grant id."""
        fn = self.contract.functions.grantBySig(
            terms.as_tuple(),
            Web3.to_checksum_address(signed.signer),
            signed.nonce,
            signed.deadline,
            signed.signature,
        )
        return self._granted_id(self.chain.transact(fn, sender))

    def sign_revoke(
        self, signer: LocalAccount, grant_id: bytes, patient: str, deadline: int | None = None
    ) -> SignedRequest:
        nonce = self.nonce(patient)
        deadline = deadline if deadline is not None else self._default_deadline()
        message = {"grantId": grant_id, "signer": signer.address, "nonce": nonce, "deadline": deadline}
        return SignedRequest(
            signer.address, nonce, deadline, self._sign(signer, "Revoke", REVOKE_TYPES, message)
        )

    def submit_signed_revoke(self, sender: Sender, grant_id: bytes, signed: SignedRequest) -> None:
        fn = self.contract.functions.revokeBySig(
            grant_id, Web3.to_checksum_address(signed.signer), signed.nonce, signed.deadline, signed.signature
        )
        self.chain.transact(fn, sender)

    def _default_deadline(self) -> int:
        """One hour after the chain's latest block (the chain's clock, not this machine's)."""
        return int(self.chain.w3.eth.get_block("latest")["timestamp"]) + 3600

    def _sign(
        self, signer: LocalAccount, primary: str, types: list[dict[str, str]], message: dict[str, Any]
    ) -> bytes:
        return sign_typed(self.chain, self.contract, signer, primary, types, message)

    # ─── Guardians and break-glass ──────────────────────────────────────────────────────────

    def add_guardian(self, patient: Sender, guardian: str) -> None:
        """Appoints ``guardian``; appointing a former guardian again voids requests signed before."""
        self.chain.transact(self.contract.functions.addGuardian(Web3.to_checksum_address(guardian)), patient)

    def remove_guardian(self, patient: Sender, guardian: str) -> None:
        self.chain.transact(
            self.contract.functions.removeGuardian(Web3.to_checksum_address(guardian)), patient
        )

    def is_guardian(self, patient: str, guardian: str) -> bool:
        fn = self.contract.functions.isGuardian(
            Web3.to_checksum_address(patient), Web3.to_checksum_address(guardian)
        )
        return bool(self.chain.call(fn))

    def open_break_glass(self, institution: Sender, patient: str, justification_digest: bytes) -> int:
        """Opens an emergency session; returns its id."""
        fn = self.contract.functions.openBreakGlass(Web3.to_checksum_address(patient), justification_digest)
        receipt = self.chain.transact(fn, institution)
        events = self.contract.events.BreakGlassOpened().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["sessionId"])

    def review_break_glass(self, reviewer: Sender, session_id: int, accept: bool) -> None:
        self.chain.transact(self.contract.functions.reviewBreakGlass(session_id, accept), reviewer)

    def session(self, session_id: int) -> dict[str, Any]:
        patient, institution, opened, expires, review, digest = self.chain.call(
            self.contract.functions.session(session_id)
        )
        return {
            "id": session_id,
            "patient": patient,
            "institution": institution,
            "opened_at": int(opened),
            "expires_at": int(expires),
            "review": Review(review),
            "justification_digest": bytes(digest),
        }

    def disputed_sessions(self, institution: str) -> int:
        return int(
            self.chain.call(self.contract.functions.disputedSessions(Web3.to_checksum_address(institution)))
        )

    def break_glass_blocked_until(self, institution: str, patient: str) -> int | None:
        """When disputes stop ``institution`` from breaking the glass for ``patient``: the first
        second it may again, or None when it may now."""
        fn = self.contract.functions.breakGlassBlockedUntil(
            Web3.to_checksum_address(institution), Web3.to_checksum_address(patient)
        )
        until = int(self.chain.call(fn))
        return until or None

    # ─── Reads ──────────────────────────────────────────────────────────────────────────────

    def check(
        self,
        patient: str,
        accessor: str,
        action: Actions,
        purpose: Purpose,
        record_id: bytes = b"\0" * 32,
        category: str | None = None,
    ) -> AccessDecision:
        """Asks the contract whether ``accessor`` may act on ``patient``'s data now."""
        cat = category_code(category) if category else b"\0" * 32
        allowed, grant_id, bg = self.chain.call(
            self.contract.functions.checkAccess(
                Web3.to_checksum_address(patient),
                Web3.to_checksum_address(accessor),
                record_id,
                cat,
                int(action),
                int(purpose),
            )
        )
        return AccessDecision(bool(allowed), bytes(grant_id), bool(bg))

    def status(self, grant_id: bytes) -> GrantStatus:
        _record, status = self.chain.call(self.contract.functions.grantOf(grant_id))
        return GrantStatus(status)

    def guardian_of(self, grant_id: bytes) -> GrantGuardian | None:
        """For a grant a guardian gave: that guardian and whether its guardianship runs; else None."""
        guardian, in_office = self.chain.call(self.contract.functions.guardianOfGrant(grant_id))
        if guardian == ZERO_ADDRESS:
            return None
        return GrantGuardian(guardian, bool(in_office))

    def grants_of(self, patient: str) -> list[Grant]:
        """Every grant the patient has given, latest terms first-seen order, from chain events."""
        address = Web3.to_checksum_address(patient)
        logs = self.contract.events.ConsentGranted().get_logs(
            from_block=self.from_block, argument_filters={"patient": address}
        )
        latest: dict[bytes, Grant] = {}
        for log in logs:
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
            gid = bytes(args["grantId"])
            latest[gid] = Grant(
                gid,
                terms,
                args["actor"],
                bool(args["viaSignature"]),
                int(log["blockNumber"]),
                GrantStatus.NONE,
            )
        return [replace(g, status=self.status(g.id)) for g in latest.values()]

    def sessions_of(self, patient: str) -> list[dict[str, Any]]:
        """The patient's break-glass sessions, from events, with their current review state."""
        logs = self.contract.events.BreakGlassOpened().get_logs(
            from_block=self.from_block, argument_filters={"patient": Web3.to_checksum_address(patient)}
        )
        return [self.session(int(log["args"]["sessionId"])) for log in logs]

    def _granted_id(self, receipt: Any) -> bytes:
        events = self.contract.events.ConsentGranted().process_receipt(receipt, errors=DISCARD)
        return bytes(events[0]["args"]["grantId"])

"""Client for InstitutionRegistry: consortium members and their credit-weighted governance."""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

from medchain.chain import ContractClient, Sender
from medchain.types import (
    Address,
    GovernanceAction,
    Kind,
    MemberStatus,
    ProposalId,
    ProposalStatus,
    kind_mask,
)


@dataclass(frozen=True)
class Member:
    """A consortium member as the registry holds it."""

    address: Address
    kind: Kind
    status: MemberStatus
    rating: int
    weight: int
    since: int
    licence_digest: bytes


@dataclass(frozen=True)
class Proposal:
    """A governance proposal."""

    id: ProposalId
    action: GovernanceAction
    subject: Address
    kind: Kind
    rating: int
    proposer: Address
    deadline: int
    total_weight: int
    yes_weight: int
    no_weight: int
    status: ProposalStatus


class RegistryClient(ContractClient):
    """Reads and governs the consortium registry through web3.py."""

    # ─── Reads ──────────────────────────────────────────────────────────────────────────────

    def member(self, account: str) -> Member:
        """The member record of ``account`` (status NONE for a non-member)."""
        address = Web3.to_checksum_address(account)
        kind, status, rating, since, licence = self._call("memberOf", address)
        weight = self._call("weightOf", address)
        return Member(
            address, Kind(kind), MemberStatus(status), int(rating), int(weight), int(since), bytes(licence)
        )

    def members(self) -> list[Member]:
        """Every member ever admitted, in admission order."""
        count = int(self._call("memberCount"))
        return [self.member(self._call("memberAt", i)) for i in range(count)]

    def is_active(self, account: str, *kinds: Kind) -> bool:
        """True when ``account`` is an active member of one of ``kinds``."""
        return bool(self._call("isActiveAny", Web3.to_checksum_address(account), kind_mask(*kinds)))

    def total_active_weight(self) -> int:
        return int(self._call("totalActiveWeight"))

    def proposal(self, proposal_id: int) -> Proposal:
        raw = self._call("proposal", proposal_id)
        action, subject, kind, rating, _licence, proposer, deadline, total, yes, no, status = raw
        return Proposal(
            ProposalId(proposal_id),
            GovernanceAction(action),
            subject,
            Kind(kind),
            int(rating),
            proposer,
            int(deadline),
            int(total),
            int(yes),
            int(no),
            ProposalStatus(status),
        )

    def proposal_count(self) -> int:
        return int(self._call("proposalCount"))

    def voting_weight(self, proposal_id: int, account: str) -> int:
        """The weight ``account`` votes with on the proposal: its weight when the proposal opened."""
        return int(self._call("votingWeight", proposal_id, Web3.to_checksum_address(account)))

    def open_proposal(self, subject: str, action: GovernanceAction) -> ProposalId | None:
        """The id of the open proposal about ``subject`` for ``action``, or None."""
        proposal_id = int(self._call("openProposalOf", Web3.to_checksum_address(subject), int(action)))
        return ProposalId(proposal_id) if proposal_id else None

    def validators(self) -> list[Address]:
        """The block validators the registry names to Besu's QBFT, highest ranked first.

        The rule (eligible kinds, minimum rating, top N by weight) is the contract's
        ``getValidators``; its parameters are readable from ``validatorPolicy``.
        """
        return [Web3.to_checksum_address(a) for a in self._call("getValidators")]

    # ─── Writes ─────────────────────────────────────────────────────────────────────────────

    def bootstrap_member(
        self, founder: Sender, account: str, kind: Kind, rating: int, licence: bytes
    ) -> None:
        """Admits a founding member (founder only, during bootstrap)."""
        self._send(founder, "bootstrapMember", Web3.to_checksum_address(account), int(kind), rating, licence)

    def end_bootstrap(self, founder: Sender) -> None:
        self._send(founder, "endBootstrap")

    def propose_admission(
        self, proposer: Sender, account: str, kind: Kind, rating: int, licence: bytes
    ) -> ProposalId:
        """Opens an admission proposal (the proposer's yes is counted); returns its id."""
        receipt = self._send(
            proposer, "proposeAdmission", Web3.to_checksum_address(account), int(kind), rating, licence
        )
        return ProposalId(int(self._emitted_field(receipt, "ProposalOpened", "proposalId")))

    def propose_change(
        self, proposer: Sender, member: str, action: GovernanceAction, rating: int = 0
    ) -> ProposalId:
        """Opens a suspend / reinstate / remove / rating proposal; returns its id."""
        receipt = self._send(proposer, "proposeChange", Web3.to_checksum_address(member), int(action), rating)
        return ProposalId(int(self._emitted_field(receipt, "ProposalOpened", "proposalId")))

    def vote(self, voter: Sender, proposal_id: int, support: bool) -> ProposalStatus:
        """Casts a vote; returns the proposal's status afterwards."""
        self._send(voter, "vote", proposal_id, support)
        return self.proposal(proposal_id).status

    def expire(self, sender: Sender, proposal_id: int) -> None:
        self._send(sender, "expire", proposal_id)

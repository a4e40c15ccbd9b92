"""Client for InstitutionRegistry: consortium members and their credit-weighted governance."""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3
from web3.logs import DISCARD
from web3.types import TxReceipt

from medchain.chain import ContractClient, Sender
from medchain.types import Action, Address, Kind, MemberStatus, ProposalStatus, kind_mask


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

    id: int
    action: Action
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
        kind, status, rating, since, licence = self.chain.call(self.contract.functions.memberOf(address))
        weight = self.chain.call(self.contract.functions.weightOf(address))
        return Member(
            address, Kind(kind), MemberStatus(status), int(rating), int(weight), int(since), bytes(licence)
        )

    def members(self) -> list[Member]:
        """Every member ever admitted, in admission order."""
        count = self.chain.call(self.contract.functions.memberCount())
        return [self.member(self.chain.call(self.contract.functions.memberAt(i))) for i in range(count)]

    def is_active(self, account: str, *kinds: Kind) -> bool:
        """True when ``account`` is an active member of one of ``kinds``."""
        address = Web3.to_checksum_address(account)
        return bool(self.chain.call(self.contract.functions.isActiveAny(address, kind_mask(*kinds))))

    def total_active_weight(self) -> int:
        return int(self.chain.call(self.contract.functions.totalActiveWeight()))

    def proposal(self, proposal_id: int) -> Proposal:
        raw = self.chain.call(self.contract.functions.proposal(proposal_id))
        action, subject, kind, rating, _licence, proposer, deadline, total, yes, no, status = raw
        return Proposal(
            proposal_id,
            Action(action),
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
        return int(self.chain.call(self.contract.functions.proposalCount()))

    def voting_weight(self, proposal_id: int, account: str) -> int:
        """The weight ``account`` votes with on the proposal: its weight when the proposal opened."""
        fn = self.contract.functions.votingWeight(proposal_id, Web3.to_checksum_address(account))
        return int(self.chain.call(fn))

    def open_proposal(self, subject: str, action: Action) -> int | None:
        """The id of the open proposal about ``subject`` for ``action``, or None."""
        fn = self.contract.functions.openProposalOf(Web3.to_checksum_address(subject), int(action))
        proposal_id = int(self.chain.call(fn))
        return proposal_id or None

    def validators(self) -> list[Address]:
        """The block validators the registry names to Besu's QBFT, highest ranked first.

        The rule (eligible kinds, minimum rating, top N by weight) is the contract's
        ``getValidators``; its parameters are readable from ``validatorPolicy``.
        """
        return [Web3.to_checksum_address(a) for a in self.chain.call(self.contract.functions.getValidators())]

    # ─── Writes ─────────────────────────────────────────────────────────────────────────────

    def bootstrap_member(
        self, founder: Sender, account: str, kind: Kind, rating: int, licence: bytes
    ) -> None:
        """Admits a founding member (founder only, during bootstrap)."""
        fn = self.contract.functions.bootstrapMember(
            Web3.to_checksum_address(account), int(kind), rating, licence
        )
        self.chain.transact(fn, founder)

    def end_bootstrap(self, founder: Sender) -> None:
        self.chain.transact(self.contract.functions.endBootstrap(), founder)

    def propose_admission(
        self, proposer: Sender, account: str, kind: Kind, rating: int, licence: bytes
    ) -> int:
        """Opens an admission proposal (the proposer's yes is counted); returns its id."""
        fn = self.contract.functions.proposeAdmission(
            Web3.to_checksum_address(account), int(kind), rating, licence
        )
        return self._opened(self.chain.transact(fn, proposer))

    def propose_change(self, proposer: Sender, member: str, action: Action, rating: int = 0) -> int:
        """Opens a suspend / reinstate / remove / rating proposal; returns its id."""
        fn = self.contract.functions.proposeChange(Web3.to_checksum_address(member), int(action), rating)
        return self._opened(self.chain.transact(fn, proposer))

    def vote(self, voter: Sender, proposal_id: int, support: bool) -> ProposalStatus:
        """Casts a vote; returns the proposal's status afterwards."""
        self.chain.transact(self.contract.functions.vote(proposal_id, support), voter)
        return self.proposal(proposal_id).status

    def expire(self, sender: Sender, proposal_id: int) -> None:
        self.chain.transact(self.contract.functions.expire(proposal_id), sender)

    def _opened(self, receipt: TxReceipt) -> int:
        events = self.contract.events.ProposalOpened().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["proposalId"])

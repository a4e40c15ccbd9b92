// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IInstitutionRegistry} from "../../interfaces/IInstitutionRegistry.sol";

/// @title InstitutionRegistry
/// @notice Consortium membership with credit-weighted governance. See {IInstitutionRegistry}.
/// @dev Voting weight equals the credit rating (1..100) of an active member and 0 otherwise, so
/// the total weight fits easily in 64 bits. A voter must have been admitted before the proposal
/// was opened, so the quorum base recorded at opening cannot be outvoted by newcomers.
contract InstitutionRegistry is IInstitutionRegistry {
    // ─── Constants ──────────────────────────────────────────────────────────────────────────

    uint8 public constant MAX_RATING = 100;
    uint16 public constant DEFAULT_QUORUM_BPS = 6667; // two thirds, rounded up
    uint16 private constant BPS = 10_000;
    uint64 private constant MIN_VOTING_PERIOD = 1 hours;
    uint64 private constant MAX_VOTING_PERIOD = 90 days;

    // ─── Storage ────────────────────────────────────────────────────────────────────────────

    address private immutable FOUNDER;
    uint16 private immutable QUORUM_BPS;
    uint64 private immutable VOTING_PERIOD;

    bool private _bootstrapping = true;
    uint64 private _totalActiveWeight;
    address[] private _memberList;
    mapping(address account => Member) private _members;
    /// @dev Proposal count when the member was admitted: it may vote on later proposals only.
    mapping(address account => uint256) private _admittedAtProposal;

    Proposal[] private _proposals; // id = index + 1
    mapping(uint256 proposalId => mapping(address voter => bool)) private _voted;
    mapping(address subject => uint256) private _openProposalOf;

    // ─── Modifiers ──────────────────────────────────────────────────────────────────────────

    modifier onlyFounderBootstrapping() {
        if (msg.sender != FOUNDER) revert RegistryNotFounder(msg.sender);
        if (!_bootstrapping) revert RegistryBootstrapEnded();
        _;
    }

    modifier onlyActiveMemberGoverning() {
        if (_bootstrapping) revert RegistryBootstrapActive();
        if (_members[msg.sender].status != Status.Active) revert RegistryNotActiveMember(msg.sender);
        _;
    }

    // ─── Constructor ────────────────────────────────────────────────────────────────────────

    /// @param founder_ The founding regulator, admitted as the first member.
    /// @param founderRating Its credit rating (1..100).
    /// @param founderLicence Digest of its licence.
    /// @param quorumBps_ Quorum in basis points of active weight; 0 selects two thirds.
    /// @param votingPeriod_ Voting period in seconds (1 hour to 90 days).
    constructor(
        address founder_,
        uint8 founderRating,
        bytes32 founderLicence,
        uint16 quorumBps_,
        uint64 votingPeriod_
    ) {
        if (founder_ == address(0)) revert RegistryZeroAddress();
        if (quorumBps_ == 0) quorumBps_ = DEFAULT_QUORUM_BPS;
        if (quorumBps_ <= BPS / 2 || quorumBps_ > BPS) revert RegistryInvalidQuorum(quorumBps_);
        if (votingPeriod_ < MIN_VOTING_PERIOD || votingPeriod_ > MAX_VOTING_PERIOD) {
            revert RegistryInvalidVotingPeriod(votingPeriod_);
        }
        FOUNDER = founder_;
        QUORUM_BPS = quorumBps_;
        VOTING_PERIOD = votingPeriod_;
        _admit(founder_, Kind.Regulator, founderRating, founderLicence, 0);
    }

    // ─── Bootstrap ──────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IInstitutionRegistry
    function bootstrapMember(address account, Kind kind, uint8 rating, bytes32 licenceDigest)
        external
        onlyFounderBootstrapping
    {
        _admit(account, kind, rating, licenceDigest, 0);
    }

    /// @inheritdoc IInstitutionRegistry
    function endBootstrap() external onlyFounderBootstrapping {
        _bootstrapping = false;
        emit BootstrapEnded(FOUNDER, _memberList.length);
    }

    // ─── Governance ─────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IInstitutionRegistry
    function proposeAdmission(address account, Kind kind, uint8 rating, bytes32 licenceDigest)
        external
        onlyActiveMemberGoverning
        returns (uint256 proposalId)
    {
        _checkNewMember(account, kind, rating, licenceDigest);
        proposalId = _open(Action.Admit, account, kind, rating, licenceDigest);
    }

    /// @inheritdoc IInstitutionRegistry
    function proposeChange(address member, Action action, uint8 rating)
        external
        onlyActiveMemberGoverning
        returns (uint256 proposalId)
    {
        Member storage m = _members[member];
        if (m.status == Status.None) revert RegistryNotMember(member);
        bool fits;
        if (action == Action.Suspend) fits = m.status == Status.Active;
        else if (action == Action.Reinstate) fits = m.status == Status.Suspended;
        else if (action == Action.Remove || action == Action.ChangeRating) fits = m.status != Status.Revoked;
        if (!fits) revert RegistryInvalidTransition(member, m.status, action);
        if (action == Action.ChangeRating) {
            _checkRating(rating);
            if (rating == m.rating) revert RegistryRatingUnchanged(member, rating);
        } else if (rating != 0) {
            revert RegistryInvalidRating(rating);
        }
        proposalId = _open(action, member, Kind.None, rating, bytes32(0));
    }

    /// @inheritdoc IInstitutionRegistry
    function vote(uint256 proposalId, bool support) external {
        Proposal storage p = _proposalStorage(proposalId);
        if (p.status != ProposalStatus.Open) revert RegistryProposalNotOpen(proposalId, p.status);
        if (block.timestamp > p.deadline) revert RegistryVotingClosed(proposalId, p.deadline);
        if (_members[msg.sender].status != Status.Active) revert RegistryNotActiveMember(msg.sender);
        if (_admittedAtProposal[msg.sender] >= proposalId) revert RegistryNotEligibleVoter(proposalId, msg.sender);
        if (_voted[proposalId][msg.sender]) revert RegistryAlreadyVoted(proposalId, msg.sender);
        _castAndSettle(proposalId, p, msg.sender, support);
    }

    /// @inheritdoc IInstitutionRegistry
    function expire(uint256 proposalId) external {
        Proposal storage p = _proposalStorage(proposalId);
        if (p.status != ProposalStatus.Open) revert RegistryProposalNotOpen(proposalId, p.status);
        if (block.timestamp <= p.deadline) revert RegistryVotingStillOpen(proposalId, p.deadline);
        _close(proposalId, p, ProposalStatus.Expired);
        emit ProposalExpired(proposalId);
    }

    // ─── Internal logic ─────────────────────────────────────────────────────────────────────

    function _checkRating(uint8 rating) private pure {
        if (rating == 0 || rating > MAX_RATING) revert RegistryInvalidRating(rating);
    }

    function _checkNewMember(address account, Kind kind, uint8 rating, bytes32 licenceDigest) private view {
        if (account == address(0)) revert RegistryZeroAddress();
        if (kind == Kind.None) revert RegistryInvalidKind(uint8(kind));
        _checkRating(rating);
        if (licenceDigest == bytes32(0)) revert RegistryInvalidLicence();
        if (_members[account].status != Status.None) revert RegistryAlreadyMember(account);
    }

    function _admit(address account, Kind kind, uint8 rating, bytes32 licenceDigest, uint256 proposalId) private {
        _checkNewMember(account, kind, rating, licenceDigest);
        _members[account] = Member({
            kind: kind,
            status: Status.Active,
            rating: rating,
            since: uint64(block.timestamp),
            licenceDigest: licenceDigest
        });
        _admittedAtProposal[account] = _proposals.length;
        _memberList.push(account);
        _totalActiveWeight += _weight(rating);
        emit MemberAdmitted(account, kind, rating, licenceDigest, proposalId);
    }

    function _open(Action action, address subject, Kind kind, uint8 rating, bytes32 licenceDigest)
        private
        returns (uint256 proposalId)
    {
        uint256 pending = _openProposalOf[subject];
        if (pending != 0) {
            Proposal storage old = _proposals[pending - 1];
            if (block.timestamp <= old.deadline) revert RegistrySubjectHasOpenProposal(subject, pending);
            // The old proposal ran out of time without a decision: close it before replacing it.
            _close(pending, old, ProposalStatus.Expired);
            emit ProposalExpired(pending);
        }
        uint64 deadline = uint64(block.timestamp) + VOTING_PERIOD;
        _proposals.push(
            Proposal({
                action: action,
                subject: subject,
                kind: kind,
                rating: rating,
                licenceDigest: licenceDigest,
                proposer: msg.sender,
                deadline: deadline,
                totalWeight: _totalActiveWeight,
                yesWeight: 0,
                noWeight: 0,
                status: ProposalStatus.Open
            })
        );
        proposalId = _proposals.length;
        _openProposalOf[subject] = proposalId;
        emit ProposalOpened(proposalId, action, subject, msg.sender, deadline, _totalActiveWeight);
        _castAndSettle(proposalId, _proposals[proposalId - 1], msg.sender, true);
    }

    function _castAndSettle(uint256 proposalId, Proposal storage p, address voter, bool support) private {
        uint64 weight = _weight(_members[voter].rating);
        _voted[proposalId][voter] = true;
        if (support) p.yesWeight += weight;
        else p.noWeight += weight;
        emit VoteCast(proposalId, voter, support, weight);

        // Quorum is reached when yes * BPS >= quorum * total; products fit in 256 bits easily.
        uint256 quorumWeight = uint256(p.totalWeight) * QUORUM_BPS;
        if (uint256(p.yesWeight) * BPS >= quorumWeight) {
            _close(proposalId, p, ProposalStatus.Executed);
            emit ProposalExecuted(proposalId);
            _apply(proposalId, p);
        } else if ((uint256(p.totalWeight) - _min(p.noWeight, p.totalWeight)) * BPS < quorumWeight) {
            // Even if every remaining weight voted yes, quorum could not be reached.
            _close(proposalId, p, ProposalStatus.Rejected);
            emit ProposalRejected(proposalId);
        }
    }

    function _close(uint256 proposalId, Proposal storage p, ProposalStatus status) private {
        p.status = status;
        if (_openProposalOf[p.subject] == proposalId) delete _openProposalOf[p.subject];
    }

    function _apply(uint256 proposalId, Proposal storage p) private {
        address subject = p.subject;
        if (p.action == Action.Admit) {
            _admit(subject, p.kind, p.rating, p.licenceDigest, proposalId);
            return;
        }
        Member storage m = _members[subject];
        if (p.action == Action.ChangeRating) {
            uint8 previous = m.rating;
            if (m.status == Status.Active) _totalActiveWeight = _totalActiveWeight - _weight(previous) + _weight(p.rating);
            m.rating = p.rating;
            emit MemberRatingChanged(subject, previous, p.rating, proposalId);
            return;
        }
        Status previousStatus = m.status;
        Status next = p.action == Action.Suspend
            ? Status.Suspended
            : (p.action == Action.Reinstate ? Status.Active : Status.Revoked);
        if (previousStatus == Status.Active) _totalActiveWeight -= _weight(m.rating);
        if (next == Status.Active) _totalActiveWeight += _weight(m.rating);
        m.status = next;
        emit MemberStatusChanged(subject, previousStatus, next, proposalId);
    }

    function _proposalStorage(uint256 proposalId) private view returns (Proposal storage) {
        if (proposalId == 0 || proposalId > _proposals.length) revert RegistryUnknownProposal(proposalId);
        return _proposals[proposalId - 1];
    }

    function _weight(uint8 rating) private pure returns (uint64) {
        return rating;
    }

    function _min(uint64 a, uint64 b) private pure returns (uint64) {
        return a < b ? a : b;
    }

    // ─── Views ──────────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IInstitutionRegistry
    function isActive(address account, Kind kind) external view returns (bool) {
        Member storage m = _members[account];
        return m.status == Status.Active && m.kind == kind && kind != Kind.None;
    }

    /// @inheritdoc IInstitutionRegistry
    function isActiveAny(address account, uint256 kindMask) external view returns (bool) {
        Member storage m = _members[account];
        return m.status == Status.Active && (kindMask & (1 << uint8(m.kind))) != 0;
    }

    /// @inheritdoc IInstitutionRegistry
    function statusOf(address account) external view returns (Status) {
        return _members[account].status;
    }

    /// @inheritdoc IInstitutionRegistry
    function memberOf(address account) external view returns (Member memory) {
        return _members[account];
    }

    /// @inheritdoc IInstitutionRegistry
    function weightOf(address account) external view returns (uint64) {
        Member storage m = _members[account];
        return m.status == Status.Active ? _weight(m.rating) : 0;
    }

    /// @inheritdoc IInstitutionRegistry
    function totalActiveWeight() external view returns (uint64) {
        return _totalActiveWeight;
    }

    /// @inheritdoc IInstitutionRegistry
    function memberCount() external view returns (uint256) {
        return _memberList.length;
    }

    /// @inheritdoc IInstitutionRegistry
    function memberAt(uint256 index) external view returns (address) {
        return _memberList[index];
    }

    /// @inheritdoc IInstitutionRegistry
    function proposal(uint256 proposalId) external view returns (Proposal memory) {
        return _proposalStorage(proposalId);
    }

    /// @inheritdoc IInstitutionRegistry
    function proposalCount() external view returns (uint256) {
        return _proposals.length;
    }

    /// @inheritdoc IInstitutionRegistry
    function hasVoted(uint256 proposalId, address voter) external view returns (bool) {
        return _voted[proposalId][voter];
    }

    /// @inheritdoc IInstitutionRegistry
    function quorumBps() external view returns (uint16) {
        return QUORUM_BPS;
    }

    /// @inheritdoc IInstitutionRegistry
    function votingPeriod() external view returns (uint64) {
        return VOTING_PERIOD;
    }

    /// @inheritdoc IInstitutionRegistry
    function founder() external view returns (address) {
        return FOUNDER;
    }

    /// @inheritdoc IInstitutionRegistry
    function bootstrapping() external view returns (bool) {
        return _bootstrapping;
    }
}

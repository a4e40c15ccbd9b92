// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IInstitutionRegistry} from "../../interfaces/IInstitutionRegistry.sol";
import {ValidatorPolicy} from "../libraries/ValidatorPolicy.sol";

/// @title InstitutionRegistry
/// @notice Consortium membership with credit-weighted governance. See {IInstitutionRegistry}.
/// @dev Voting weight equals the credit rating (1..100) of an active member and 0 otherwise, so
/// the total weight fits easily in 64 bits. The registry's clock is the proposal count: every
/// weight change is checkpointed under the count at the time, and proposal `id` (opened when the
/// count went from `id - 1` to `id`) reads each voter's weight at key `id - 1`. The quorum base is
/// the total active weight at the same moment, so yes + no never exceeds it, and members admitted
/// after the opening have no weight on it.
contract InstitutionRegistry is IInstitutionRegistry {
    using Checkpoints for Checkpoints.Trace208;
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
    /// @dev Each member's weight over time, keyed by the proposal count when it changed.
    mapping(address account => Checkpoints.Trace208) private _weightHistory;

    Proposal[] private _proposals; // id = index + 1
    mapping(uint256 proposalId => mapping(address voter => bool)) private _voted;
    /// @dev The open proposal per subject and action (index `uint8(action)`); five ids, one slot.
    mapping(address subject => uint48[5]) private _openProposalOf;

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
        if (member == msg.sender) revert RegistrySelfProposal(member, action);
        Member storage m = _members[member];
        if (m.status == Status.None) revert RegistryNotMember(member);
        if (action == Action.Admit || !_fits(action, m.status)) {
            revert RegistryInvalidTransition(member, m.status, action);
        }
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
        uint64 weight = _weightAtOpening(msg.sender, proposalId);
        if (weight == 0) revert RegistryNotEligibleVoter(proposalId, msg.sender);
        if (_voted[proposalId][msg.sender]) revert RegistryAlreadyVoted(proposalId, msg.sender);
        _castAndSettle(proposalId, p, msg.sender, support, weight);
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

    /// @dev Whether a change by `action` fits a member in `status` (Admit fits only a non-member).
    function _fits(Action action, Status status) private pure returns (bool) {
        if (action == Action.Admit) return status == Status.None;
        if (action == Action.Suspend) return status == Status.Active;
        if (action == Action.Reinstate) return status == Status.Suspended;
        return status == Status.Active || status == Status.Suspended; // Remove, ChangeRating
    }

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
        _memberList.push(account);
        _setWeight(account, 0, _weight(rating));
        emit MemberAdmitted(account, kind, rating, licenceDigest, proposalId);
    }

    function _open(Action action, address subject, Kind kind, uint8 rating, bytes32 licenceDigest)
        private
        returns (uint256 proposalId)
    {
        uint256 pending = _openProposalOf[subject][uint8(action)];
        if (pending != 0) {
            Proposal storage old = _proposals[pending - 1];
            if (block.timestamp <= old.deadline) revert RegistrySubjectHasOpenProposal(subject, action, pending);
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
        _openProposalOf[subject][uint8(action)] = SafeCast.toUint48(proposalId);
        emit ProposalOpened(proposalId, action, subject, msg.sender, deadline, _totalActiveWeight);
        // The proposer is active and nothing has changed since the opening: its weight now is its
        // weight at the opening, read without a checkpoint lookup.
        uint64 proposerWeight = _weight(_members[msg.sender].rating);
        _castAndSettle(proposalId, _proposals[proposalId - 1], msg.sender, true, proposerWeight);
    }

    function _castAndSettle(uint256 proposalId, Proposal storage p, address voter, bool support, uint64 weight)
        private
    {
        _voted[proposalId][voter] = true;
        if (support) p.yesWeight += weight;
        else p.noWeight += weight;
        emit VoteCast(proposalId, voter, support, weight);

        // Quorum is reached when yes * BPS >= quorum * total; products fit in 256 bits easily.
        uint256 quorumWeight = uint256(p.totalWeight) * QUORUM_BPS;
        if (uint256(p.yesWeight) * BPS >= quorumWeight) {
            // Another executed proposal may have changed the subject since this one opened.
            Member storage subject = _members[p.subject];
            Status subjectStatus = subject.status;
            bool stale = !_fits(p.action, subjectStatus)
                || (p.action == Action.ChangeRating && p.rating == subject.rating);
            if (stale) {
                _close(proposalId, p, ProposalStatus.Superseded);
                emit ProposalSuperseded(proposalId, subjectStatus);
                return;
            }
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
        uint48[5] storage open = _openProposalOf[p.subject];
        if (open[uint8(p.action)] == proposalId) delete open[uint8(p.action)];
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
            m.rating = p.rating;
            if (m.status == Status.Active) _setWeight(subject, _weight(previous), _weight(p.rating));
            emit MemberRatingChanged(subject, previous, p.rating, proposalId);
            return;
        }
        Status previousStatus = m.status;
        Status next = p.action == Action.Suspend
            ? Status.Suspended
            : (p.action == Action.Reinstate ? Status.Active : Status.Revoked);
        m.status = next;
        uint64 full = _weight(m.rating);
        if (previousStatus == Status.Active) _setWeight(subject, full, 0);
        else if (next == Status.Active) _setWeight(subject, 0, full);
        emit MemberStatusChanged(subject, previousStatus, next, proposalId);
    }

    /// @dev Moves `account`'s weight from `previous` to `current`: the total, and a checkpoint at
    /// the current proposal count (proposals opened from now on see the new weight).
    function _setWeight(address account, uint64 previous, uint64 current) private {
        _totalActiveWeight = _totalActiveWeight - previous + current;
        _weightHistory[account].push(SafeCast.toUint48(_proposals.length), current);
    }

    /// @dev The weight `account` had when proposal `proposalId` was opened (count `proposalId - 1`).
    function _weightAtOpening(address account, uint256 proposalId) private view returns (uint64) {
        // Weights are at most MAX_RATING, so the cast cannot truncate.
        return uint64(_weightHistory[account].upperLookupRecent(SafeCast.toUint48(proposalId - 1)));
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
    function votingWeight(uint256 proposalId, address account) external view returns (uint64) {
        _proposalStorage(proposalId);
        return _weightAtOpening(account, proposalId);
    }

    /// @inheritdoc IInstitutionRegistry
    function openProposalOf(address subject, Action action) external view returns (uint256) {
        return _openProposalOf[subject][uint8(action)];
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

    // ─── Validator set (Hyperledger Besu QBFT) ──────────────────────────────────────────────

    /// @inheritdoc IInstitutionRegistry
    function getValidators() external view returns (address[] memory validators) {
        uint256[] memory top = new uint256[](ValidatorPolicy.MAX_VALIDATORS);
        uint256 size = 0; // candidates kept in `top` so far
        uint256 count = _memberList.length;
        for (uint256 i; i < count; ++i) {
            address account = _memberList[i];
            Member storage m = _members[account];
            if (m.status != Status.Active || !ValidatorPolicy.isEligibleKind(m.kind)) continue;
            uint8 rating = m.rating;
            size = ValidatorPolicy.insert(top, size, ValidatorPolicy.rankKey(account, _weight(rating), rating));
        }
        validators = ValidatorPolicy.select(top, size);
    }

    /// @inheritdoc IInstitutionRegistry
    function validatorPolicy() external pure returns (uint256 kindMask, uint8 minRating, uint256 maxValidators) {
        return (ValidatorPolicy.KIND_MASK, ValidatorPolicy.MIN_RATING, ValidatorPolicy.MAX_VALIDATORS);
    }
}

// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IInstitutionRegistry
/// @notice The consortium's single source of truth for who its members are, what kind of
/// institution each is, and whether it is active. Every other MedChain contract asks
/// `isActive` / `isActiveAny` before it lets an institution act.
/// @dev Governance is credit-weighted: each member's voting weight is derived from its credit
/// rating, and a proposal passes once the "yes" weight reaches the quorum (in basis points of the
/// total active weight recorded when the proposal was opened). A founding regulator admits the
/// founding members during a bootstrap phase; once it ends, every change goes through proposals.
///
/// Rules that keep proposals honest:
/// - Snapshot: a vote counts with the voter's weight when the proposal was opened (the same moment
///   as the quorum base), so a rating change or suspension executed meanwhile does not move it.
///   The voter must also be active when it votes: a member suspended after the opening may not
///   vote on that proposal, and one with no weight at the opening (admitted later, or suspended
///   then) may not vote either.
/// - No self-proposals: a member may not open a proposal about itself.
/// - One open proposal per (subject, action), not per subject: a harmless open proposal (say a
///   rating change) cannot shield its subject from a suspension or removal. Every change is
///   checked again against the subject's status when it reaches quorum; one that no longer fits
///   (a reinstatement after a removal, a rating change after a removal) is closed as
///   `Superseded` and changes nothing.
interface IInstitutionRegistry {
    // ─── Types ──────────────────────────────────────────────────────────────────────────────

    /// @notice What an institution is. `None` marks an address that is not a member.
    enum Kind {
        None,
        Hospital,
        CommunityClinic,
        SpecialistHospital,
        Laboratory,
        Pharmacy,
        Manufacturer,
        Distributor,
        Insurer,
        Regulator
    }

    /// @notice Membership status. `Revoked` is final: a removed address cannot come back.
    enum Status {
        None,
        Active,
        Suspended,
        Revoked
    }

    /// @notice What a proposal would change.
    enum Action {
        Admit,
        Suspend,
        Reinstate,
        ChangeRating,
        Remove
    }

    /// @notice Where a proposal stands. `Open` proposals past their deadline count as expired.
    /// `Superseded`: it reached quorum, but another executed change had made it unfit meanwhile.
    enum ProposalStatus {
        None,
        Open,
        Executed,
        Rejected,
        Expired,
        Superseded
    }

    /// @notice A consortium member.
    /// @param kind The institution's kind.
    /// @param status Active, suspended or revoked.
    /// @param rating Credit rating, 1 (lowest) to 100 (highest); the voting weight derives from it.
    /// @param since Block timestamp of admission.
    /// @param licenceDigest SHA-256 digest of the institution's licence document (kept off chain).
    struct Member {
        Kind kind;
        Status status;
        uint8 rating;
        uint64 since;
        bytes32 licenceDigest;
    }

    /// @notice A governance proposal.
    /// @param action What the proposal does.
    /// @param subject The member (or applicant) it concerns.
    /// @param kind For `Admit`: the applicant's kind.
    /// @param rating For `Admit` and `ChangeRating`: the new rating.
    /// @param licenceDigest For `Admit`: the applicant's licence digest.
    /// @param proposer The member who opened it.
    /// @param deadline Last timestamp at which votes are accepted.
    /// @param totalWeight Total active weight when the proposal was opened (the quorum's base).
    /// @param yesWeight Weight voted for.
    /// @param noWeight Weight voted against.
    /// @param status Where it stands.
    struct Proposal {
        Action action;
        address subject;
        Kind kind;
        uint8 rating;
        bytes32 licenceDigest;
        address proposer;
        uint64 deadline;
        uint64 totalWeight;
        uint64 yesWeight;
        uint64 noWeight;
        ProposalStatus status;
    }

    // ─── Errors ─────────────────────────────────────────────────────────────────────────────

    /// @notice Thrown when the zero address is given as a member or founder.
    error RegistryZeroAddress();
    /// @notice Thrown when a kind is `None` or out of range.
    error RegistryInvalidKind(uint8 kind);
    /// @notice Thrown when a credit rating is outside 1..100.
    error RegistryInvalidRating(uint8 rating);
    /// @notice Thrown when a licence digest is zero.
    error RegistryInvalidLicence();
    /// @notice Thrown when the quorum is not in (5000, 10000] basis points.
    error RegistryInvalidQuorum(uint16 quorumBps);
    /// @notice Thrown when the voting period is shorter than an hour or longer than 90 days.
    error RegistryInvalidVotingPeriod(uint64 votingPeriod);
    /// @notice Thrown when someone other than the founder acts during bootstrap.
    error RegistryNotFounder(address account);
    /// @notice Thrown when a bootstrap-only call is made after the bootstrap ended.
    error RegistryBootstrapEnded();
    /// @notice Thrown when a proposal is opened while the founder is still bootstrapping.
    error RegistryBootstrapActive();
    /// @notice Thrown when the account is already a member (in any status, revoked included).
    error RegistryAlreadyMember(address account);
    /// @notice Thrown when the account is not a member.
    error RegistryNotMember(address account);
    /// @notice Thrown when the caller must be an active member and is not.
    error RegistryNotActiveMember(address account);
    /// @notice Thrown when a proposed change does not fit the subject's status.
    error RegistryInvalidTransition(address subject, Status status, Action action);
    /// @notice Thrown when a rating change would leave the rating as it is.
    error RegistryRatingUnchanged(address subject, uint8 rating);
    /// @notice Thrown when the subject already has an open proposal for the same action.
    error RegistrySubjectHasOpenProposal(address subject, Action action, uint256 proposalId);
    /// @notice Thrown when a member opens a proposal about itself.
    error RegistrySelfProposal(address member, Action action);
    /// @notice Thrown when a proposal id does not exist.
    error RegistryUnknownProposal(uint256 proposalId);
    /// @notice Thrown when a vote is cast on a proposal that is no longer open.
    error RegistryProposalNotOpen(uint256 proposalId, ProposalStatus status);
    /// @notice Thrown when a vote arrives after the proposal's deadline.
    error RegistryVotingClosed(uint256 proposalId, uint64 deadline);
    /// @notice Thrown when a member votes twice on one proposal.
    error RegistryAlreadyVoted(uint256 proposalId, address voter);
    /// @notice Thrown when a member that had no weight when the proposal was opened (admitted
    /// after it, or not active then) tries to vote on it.
    error RegistryNotEligibleVoter(uint256 proposalId, address voter);
    /// @notice Thrown when `expire` is called on a proposal whose deadline has not passed.
    error RegistryVotingStillOpen(uint256 proposalId, uint64 deadline);

    // ─── Events ─────────────────────────────────────────────────────────────────────────────

    /// @notice Emitted when a member joins (by bootstrap or by an executed proposal).
    /// @param account The member's address.
    /// @param kind Its kind.
    /// @param rating Its credit rating.
    /// @param licenceDigest Digest of its licence.
    /// @param proposalId The proposal that admitted it, or 0 for a founding member.
    event MemberAdmitted(
        address indexed account, Kind indexed kind, uint8 rating, bytes32 licenceDigest, uint256 indexed proposalId
    );
    /// @notice Emitted when a member's status changes (suspended, reinstated, revoked).
    /// @param account The member.
    /// @param previous Its status before.
    /// @param current Its status now.
    /// @param proposalId The proposal that decided it.
    event MemberStatusChanged(address indexed account, Status previous, Status current, uint256 indexed proposalId);
    /// @notice Emitted when a member's credit rating (and so its weight) changes.
    /// @param account The member.
    /// @param previous Rating before.
    /// @param current Rating now.
    /// @param proposalId The proposal that decided it.
    event MemberRatingChanged(address indexed account, uint8 previous, uint8 current, uint256 indexed proposalId);
    /// @notice Emitted when the founder closes the bootstrap phase.
    /// @param founder The founding regulator.
    /// @param memberCount Members at that moment.
    event BootstrapEnded(address indexed founder, uint256 memberCount);
    /// @notice Emitted when a proposal is opened.
    /// @param proposalId Its id (ids start at 1).
    /// @param action What it would do.
    /// @param subject Whom it concerns.
    /// @param proposer Who opened it.
    /// @param deadline Last timestamp for votes.
    /// @param totalWeight Quorum base: active weight at opening.
    event ProposalOpened(
        uint256 indexed proposalId, Action action, address indexed subject, address indexed proposer, uint64 deadline, uint64 totalWeight
    );
    /// @notice Emitted for every vote.
    /// @param proposalId The proposal.
    /// @param voter The voting member.
    /// @param support True for yes.
    /// @param weight The voter's weight.
    event VoteCast(uint256 indexed proposalId, address indexed voter, bool support, uint64 weight);
    /// @notice Emitted when a proposal reaches quorum and its change is applied.
    event ProposalExecuted(uint256 indexed proposalId);
    /// @notice Emitted when enough weight voted no that the proposal can no longer pass.
    event ProposalRejected(uint256 indexed proposalId);
    /// @notice Emitted when a proposal's deadline passed without a decision and it is closed.
    event ProposalExpired(uint256 indexed proposalId);
    /// @notice Emitted when a proposal reaches quorum but its change no longer fits the subject
    /// (another executed proposal changed the subject's status meanwhile); nothing is changed.
    /// @param proposalId The proposal.
    /// @param subjectStatus The subject's status that the change no longer fits.
    event ProposalSuperseded(uint256 indexed proposalId, Status subjectStatus);

    // ─── Bootstrap ──────────────────────────────────────────────────────────────────────────

    /// @notice Admits a founding member without a vote.
    /// Requirements: caller is the founder; bootstrap not ended; valid account, kind, rating, licence.
    /// Emits {MemberAdmitted} with proposal id 0.
    function bootstrapMember(address account, Kind kind, uint8 rating, bytes32 licenceDigest) external;

    /// @notice Ends the bootstrap phase; from now on every change is a proposal.
    /// Requirements: caller is the founder; bootstrap not ended. Emits {BootstrapEnded}.
    function endBootstrap() external;

    // ─── Governance ─────────────────────────────────────────────────────────────────────────

    /// @notice Opens a proposal to admit `account`. The proposer's own vote is counted as yes.
    /// Requirements: bootstrap ended; caller active; account new, valid kind, rating, licence.
    /// Emits {ProposalOpened}, {VoteCast} and, if the proposer alone reaches quorum, the outcome.
    /// @return proposalId The new proposal's id.
    function proposeAdmission(address account, Kind kind, uint8 rating, bytes32 licenceDigest)
        external
        returns (uint256 proposalId);

    /// @notice Opens a proposal to suspend, reinstate or remove `member`, or to change its rating.
    /// @param action Suspend (member active), Reinstate (member suspended), Remove (active or
    /// suspended) or ChangeRating (active or suspended, `rating` new and valid). The same fitness
    /// is checked again when the proposal reaches quorum (see {ProposalSuperseded}).
    /// @param rating The new rating for ChangeRating; must be 0 otherwise.
    /// Requirements: bootstrap ended; caller active and not `member` itself; no open proposal for
    /// `member` with the same action (proposals for other actions may be open).
    /// Emits {ProposalOpened}, {VoteCast} and, if the proposer alone reaches quorum, the outcome.
    /// @return proposalId The new proposal's id.
    function proposeChange(address member, Action action, uint8 rating) external returns (uint256 proposalId);

    /// @notice Casts the caller's credit-weighted vote, with its weight when the proposal opened
    /// ({votingWeight}), not its weight now.
    /// Requirements: proposal open and before its deadline; caller active now, with weight when
    /// the proposal opened, and has not voted on it.
    /// Emits {VoteCast}; then at quorum {ProposalExecuted} (and the change's event), or
    /// {ProposalSuperseded} when the change no longer fits; or {ProposalRejected} once quorum is
    /// out of reach.
    function vote(uint256 proposalId, bool support) external;

    /// @notice Closes an open proposal whose deadline has passed, freeing its subject.
    /// Anyone may call it. Emits {ProposalExpired}.
    function expire(uint256 proposalId) external;

    // ─── Views ──────────────────────────────────────────────────────────────────────────────

    /// @notice True when `account` is an active member of kind `kind`.
    function isActive(address account, Kind kind) external view returns (bool);

    /// @notice True when `account` is an active member of any kind in `kindMask`
    /// (bit `1 << uint8(kind)` set for each accepted kind).
    function isActiveAny(address account, uint256 kindMask) external view returns (bool);

    /// @notice The membership status of `account` (`None` for a non-member); cheaper than {memberOf}.
    function statusOf(address account) external view returns (Status);

    /// @notice The member record of `account` (all zero for a non-member).
    function memberOf(address account) external view returns (Member memory);

    /// @notice Voting weight of `account`: derived from its rating, 0 unless active.
    function weightOf(address account) external view returns (uint64);

    /// @notice The weight `account` votes with on `proposalId`: its weight when the proposal was
    /// opened (0 if it was not an active member then).
    function votingWeight(uint256 proposalId, address account) external view returns (uint64);

    /// @notice The open proposal about `subject` for `action`, or 0 when there is none (an id
    /// past its deadline is returned until someone expires or replaces it).
    function openProposalOf(address subject, Action action) external view returns (uint256);

    /// @notice Sum of the weights of all active members.
    function totalActiveWeight() external view returns (uint64);

    /// @notice Number of members ever admitted (any status).
    function memberCount() external view returns (uint256);

    /// @notice The member admitted at position `index` (0-based, admission order).
    function memberAt(uint256 index) external view returns (address);

    /// @notice A proposal by id.
    function proposal(uint256 proposalId) external view returns (Proposal memory);

    /// @notice Number of proposals ever opened (ids run 1..proposalCount).
    function proposalCount() external view returns (uint256);

    /// @notice Whether `voter` has voted on `proposalId`.
    function hasVoted(uint256 proposalId, address voter) external view returns (bool);

    /// @notice Quorum in basis points of the total active weight.
    function quorumBps() external view returns (uint16);

    /// @notice Voting period in seconds.
    function votingPeriod() external view returns (uint64);

    /// @notice The founding regulator.
    function founder() external view returns (address);

    /// @notice Whether the bootstrap phase is still running.
    function bootstrapping() external view returns (bool);

    // ─── Validator set (Hyperledger Besu QBFT) ──────────────────────────────────────────────

    /// @notice The consortium's block validators: the registry serves as Besu's QBFT validator
    /// contract (genesis `qbft.validatorcontractaddress`). Besu calls this for every block, on
    /// the state after the parent block, so a governance change executed in block B applies to
    /// the validators of block B + 1 on.
    ///
    /// The rule (parameters from {validatorPolicy}):
    /// - Kind: hospitals, specialist hospitals, insurers and the regulator. They run staffed
    ///   round-the-clock IT and answer to a supervisor, and mixing providers, payers and the
    ///   regulator keeps any one side from holding the set. Community clinics (usually on shared
    ///   regional IT) and the supply chain (laboratories, pharmacies, manufacturers,
    ///   distributors) store and trace, but do not order blocks.
    /// - Status: Active only. Suspension or removal drops a validator; reinstatement restores it.
    /// - Rating: at least the minimum (60 of 100). A rating change below it drops the member.
    /// - Size: the top N (7) by governance weight ({weightOf}: the rating of an active member);
    ///   equal weights go to the lower address.
    /// - Never empty while a candidate exists: if no active member of an eligible kind meets the
    ///   minimum rating, the top N of them by weight are named regardless of rating (a chain with
    ///   no validator could never vote to repair itself). It is empty only when no hospital,
    ///   specialist hospital, insurer or regulator is active.
    /// - Bootstrap: founding members count from their admission; a registry with only its
    ///   founder names the founder.
    ///
    /// Members change only through the registry's governance (bootstrap, then credit-weighted
    /// proposals), so the validator set does too; there is no other way in or out.
    /// @dev Reads every member once: cost grows linearly with {memberCount} (revoked members
    /// included), about 4,900 gas a member that cannot validate and at most about 8,100 a
    /// candidate (each shifts at most N kept entries). Besu runs the call with the block gas
    /// limit. Figures: docs/deployment.md.
    /// @return validators In rank order, highest first (Besu sorts them by address itself).
    function getValidators() external view returns (address[] memory validators);

    /// @notice The parameters of the validator rule in {getValidators}.
    /// @return kindMask Eligible kinds, bit `1 << uint8(kind)` set for each.
    /// @return minRating Lowest credit rating that qualifies.
    /// @return maxValidators Most validators named.
    function validatorPolicy() external pure returns (uint256 kindMask, uint8 minRating, uint256 maxValidators);
}

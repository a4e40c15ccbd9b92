// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IEHRIndex} from "./IEHRIndex.sol";

/// @title IClaimsProcessor
/// @notice Insurance plans with funded pools, enrolment by patient signature, and claims that are
/// adjudicated by contract: evidence anchored in EHRIndex by the claiming provider for this
/// patient, the insurer's payment-purpose consent, coverage proven against the plan's salted
/// Merkle root, duplicate checks, drug claims matched to a dispense in DrugProvenance, then
/// deductible, coinsurance and limits. Claims under the plan's auto-pay ceiling are paid to the
/// provider in the same transaction; others pend for the insurer's review.
interface IClaimsProcessor {
    // ─── Types ──────────────────────────────────────────────────────────────────────────────

    /// @notice Claim states. Paid is final; Approved waits for pool funds; Denied may be appealed once.
    enum ClaimStatus {
        None,
        Pended,
        Approved,
        Paid,
        Denied,
        Appealed
    }

    /// @notice A plan's rules; amounts in settlement-token units.
    /// @param coveredRoot Merkle root of covered services; leaf =
    /// keccak256(bytes.concat(keccak256(abi.encode(serviceCommitment, allowedAmount)))), where
    /// serviceCommitment = keccak256(abi.encode(billingCode, salt)) and the salt is shared with
    /// network providers off chain.
    struct PlanTerms {
        bytes32 coveredRoot;
        uint64 deductible;
        uint16 coinsuranceBps;
        uint64 perClaimLimit;
        uint64 annualLimit;
        uint64 autoPayCeiling;
    }

    /// @notice A plan as stored.
    struct Plan {
        address insurer;
        uint64 pool;
        PlanTerms terms;
    }

    /// @notice A patient's enrolment and its running totals for the current coverage year.
    struct Enrolment {
        uint40 start;
        uint40 end;
        uint32 year;
        uint64 deductibleMet;
        uint64 paidInYear;
    }

    /// @notice The covered service a claim names, and its proof of coverage.
    struct Service {
        bytes32 commitment;
        uint64 allowedAmount;
        bytes32[] proof;
    }

    /// @notice For drug claims: the dispense being billed (as DrugProvenance emitted it).
    /// @param patientSalt The salt of the patientRef commitment keccak256(abi.encode(patient, salt)).
    struct DrugDispense {
        bytes32 batchId;
        bytes32 patientSalt;
        uint64 quantity;
        uint64 nonce;
        uint256 timestamp;
    }

    /// @notice A claim's immutable record; its id is keccak256(abi.encode(record)). The record is
    /// in the {ClaimSubmitted} event, and calls about a claim take it back as calldata, so a claim
    /// costs one storage slot ({ClaimState}).
    struct ClaimRecord {
        uint32 planId;
        address provider;
        address patient;
        bytes32 evidence;
        bytes32 serviceCommitment;
        uint64 billed;
        uint64 maxPayable;
        uint64 patientShare;
        uint64 deductiblePart;
        uint32 year;
        uint40 submittedAt;
    }

    /// @notice What changes over a claim's life.
    struct ClaimState {
        ClaimStatus status;
        bool appealed;
        bool shareSettled;
        uint64 amount;
    }

    // ─── Errors ─────────────────────────────────────────────────────────────────────────────

    /// @notice Thrown when a dependency given at deployment is the zero address.
    error ClaimsZeroAddress();
    /// @notice Thrown when the caller must be an active insurer and is not.
    error ClaimsNotInsurer(address account);
    /// @notice Thrown when the caller must be an active provider (hospital kinds, laboratory, pharmacy) and is not.
    error ClaimsNotProvider(address account);
    /// @notice Thrown when plan terms are invalid (zero root, coinsurance above 100 %, zero per-claim limit, annual limit below it).
    error ClaimsInvalidPlan();
    /// @notice Thrown when a plan id does not exist.
    error ClaimsUnknownPlan(uint256 planId);
    /// @notice Thrown when the caller is not the plan's insurer.
    error ClaimsNotPlanInsurer(uint256 planId, address account);
    /// @notice Thrown when an amount (funding, billed) is zero.
    error ClaimsZeroAmount();
    /// @notice Thrown when an enrolment period ends before it starts or has already ended.
    error ClaimsInvalidEnrolment(uint40 start, uint40 end);
    /// @notice Thrown when the patient is already enrolled in the plan.
    error ClaimsAlreadyEnrolled(uint256 planId, address patient);
    /// @notice Thrown when the patient's enrolment signature is past its deadline.
    error ClaimsSignatureExpired(uint256 deadline);
    /// @notice Thrown when the enrolment signature is not the patient's (for this plan, period and nonce).
    error ClaimsInvalidSignature(address patient);
    /// @notice Thrown when the patient is not enrolled in the plan.
    error ClaimsNotEnrolled(uint256 planId, address patient);
    /// @notice Thrown when the claim falls outside the patient's coverage period.
    error ClaimsCoverageExpired(uint256 planId, address patient, uint40 end);
    /// @notice Thrown when a claim names no evidence record.
    error ClaimsNoEvidence();
    /// @notice Thrown when an evidence record is not anchored, or not this patient's, or not the claiming provider's.
    error ClaimsInvalidEvidence(bytes32 recordId);
    /// @notice Thrown when an evidence record was already used by a claim.
    error ClaimsEvidenceAlreadyClaimed(bytes32 recordId);
    /// @notice Thrown when the insurer holds no payment-purpose (HPAYMT) consent covering the evidence.
    error ClaimsNoPaymentConsent(address insurer, bytes32 recordId);
    /// @notice Thrown when the service (commitment and allowed amount) is not proven in the plan's covered-services root.
    error ClaimsServiceNotCovered(bytes32 commitment);
    /// @notice Thrown when the same service was already claimed for the patient on the same day.
    error ClaimsDuplicateService(address patient, bytes32 commitment, uint256 day);
    /// @notice Thrown when a drug claim's dispense does not exist for this patient and provider, or was already claimed.
    error ClaimsInvalidDispense(bytes32 dispenseId);
    /// @notice Thrown when no claim has this record (altered or never submitted).
    error ClaimsUnknownClaim(bytes32 claimId);
    /// @notice Thrown when the claim's status does not allow the operation.
    error ClaimsInvalidTransition(bytes32 claimId, ClaimStatus status);
    /// @notice Thrown when an approved amount exceeds the claim's maximum (or the year's remaining limit on appeal).
    error ClaimsAmountAboveMaximum(uint64 amount, uint64 maxPayable);
    /// @notice Thrown when a claim is appealed a second time.
    error ClaimsAlreadyAppealed(bytes32 claimId);
    /// @notice Thrown when the caller is not the claim's provider (appeal) or patient (settlement).
    error ClaimsNotClaimParty(bytes32 claimId, address account);
    /// @notice Thrown when the plan's pool cannot pay an approved claim yet.
    error ClaimsInsufficientPool(uint256 planId, uint64 pool, uint64 needed);
    /// @notice Thrown when there is no unpaid patient share on a paid claim.
    error ClaimsNothingToSettle(bytes32 claimId);

    // ─── Events ─────────────────────────────────────────────────────────────────────────────

    /// @notice Emitted when an insurer creates a plan, with its full terms.
    event PlanCreated(uint256 indexed planId, address indexed insurer, PlanTerms terms);
    /// @notice Emitted when tokens are added to a plan's pool; `pool` is the new balance.
    event PlanFunded(uint256 indexed planId, address indexed funder, uint64 amount, uint64 pool);
    /// @notice Emitted when a patient joins a plan for [start, end].
    event PatientEnrolled(uint256 indexed planId, address indexed patient, uint40 start, uint40 end);
    /// @notice Emitted for every accepted claim with its record (computed figures included).
    event ClaimSubmitted(
        bytes32 indexed claimId, uint256 indexed planId, address indexed provider, ClaimRecord record, ClaimStatus status
    );
    /// @notice Emitted when the insurer approves (amount) or denies (reason code) a claim.
    event ClaimReviewed(bytes32 indexed claimId, address indexed insurer, ClaimStatus status, uint64 amount, uint16 reason);
    /// @notice Emitted when the provider appeals a denied claim.
    event ClaimAppealed(bytes32 indexed claimId, address indexed provider);
    /// @notice Emitted when the provider is paid from the pool.
    event ClaimPaid(bytes32 indexed claimId, address indexed provider, uint64 amount);
    /// @notice Emitted when the patient pays its share to the provider through the contract.
    event PatientShareSettled(bytes32 indexed claimId, address indexed patient, uint64 amount);

    // ─── Writes ─────────────────────────────────────────────────────────────────────────────

    /// @notice An active insurer creates a plan. Emits {PlanCreated}.
    function createPlan(PlanTerms calldata terms) external returns (uint256 planId);

    /// @notice Moves `amount` settlement tokens from the caller into the plan's pool (allowance
    /// needed). Claims that waited for funds are then paid with {payOut}. Emits {PlanFunded}.
    function fund(uint256 planId, uint64 amount) external;

    /// @notice The plan's insurer enrols `patient` for [start, end] with the patient's EIP-712
    /// signature of Enrol(planId, patient, start, end, nonce, deadline). Emits {PatientEnrolled}.
    function enrol(uint256 planId, address patient, uint40 start, uint40 end, uint256 deadline, bytes calldata signature)
        external;

    /// @notice An active provider submits a claim; see the contract description for the checks.
    /// @param drug Zero batchId for a non-drug claim.
    /// @return claimId The claim's id; its status is Paid, Approved (awaiting funds) or Pended.
    function submitClaim(
        uint256 planId,
        address patient,
        IEHRIndex.RecordHeader[] calldata evidence,
        Service calldata service,
        uint64 billed,
        DrugDispense calldata drug
    ) external returns (bytes32 claimId);

    /// @notice The insurer approves a pended or appealed claim for `amount` <= its maximum; it is
    /// paid at once if the pool allows. Emits {ClaimReviewed} (and {ClaimPaid}).
    function approve(ClaimRecord calldata record, uint64 amount) external;

    /// @notice The insurer denies a pended or appealed claim with a reason code. Emits {ClaimReviewed}.
    function deny(ClaimRecord calldata record, uint16 reason) external;

    /// @notice The provider appeals a denied claim, once. Emits {ClaimAppealed}.
    function appeal(ClaimRecord calldata record) external;

    /// @notice Pays an approved claim that waited for pool funds. Anyone may call. Emits {ClaimPaid}.
    function payOut(ClaimRecord calldata record) external;

    /// @notice The patient pays its share of a paid claim to the provider (allowance + pull).
    function settlePatientShare(ClaimRecord calldata record) external;

    // ─── Views ──────────────────────────────────────────────────────────────────────────────

    /// @notice A plan by id (ids start at 1).
    function plan(uint256 planId) external view returns (Plan memory);

    /// @notice A patient's enrolment in a plan with its running totals.
    function enrolment(uint256 planId, address patient) external view returns (Enrolment memory);

    /// @notice A claim's current state (its record is in the ClaimSubmitted event).
    function claim(bytes32 claimId) external view returns (ClaimState memory);

    /// @notice The id of a claim record.
    function claimIdOf(ClaimRecord calldata record) external pure returns (bytes32);

    /// @notice The nonce the patient's next enrolment signature must carry.
    function enrolNonce(address patient) external view returns (uint256);

    /// @notice Total paid to providers from the plan's pool.
    function totalPaid(uint256 planId) external view returns (uint256);
}

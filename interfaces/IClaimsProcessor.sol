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
///
/// Evidence. A claim's evidence is EHR records and, for a drug, the dispense. Evidence is used up
/// by encounter: an amended record is the same encounter as the record it amends (the encounter is
/// the first version, found through the headers' `previous` links, which every record id commits
/// to), so no version of an encounter can back a second claim. The service must have happened in
/// the current coverage period: the encounter's first version, and the dispense, are not older
/// than the period's start.
///
/// Drugs. A covered service with a GTIN (a drug) can only be claimed with a DrugProvenance dispense
/// of a batch of that GTIN, made by the claiming institution to this patient, and each dispense is
/// claimed once. The dispense may be a drug claim's only evidence: a pharmacy, which keeps no EHR
/// records, claims that way. Billing a dispense, with EHR evidence or without, needs the patient's
/// payment-purpose (HPAYMT) READ consent for the insurer over it: a grant on the dispense id
/// (record scope), on the `MedicationDispense` category, or on all data. A dispense names the
/// patient only by a commitment that the dispenser alone makes, so it also needs, as an EHR record
/// does at anchoring, the patient's treatment relationship with the dispenser: APPEND consent for
/// TREAT over the `MedicationDispense` category, or on all data, when the dispense is billed.
///
/// Years. Coverage years count from the start of a patient's first enrolment in the plan, and a
/// renewal keeps that origin and the year's running totals, so letting coverage lapse and
/// re-enrolling never resets the deductible or the annual limit. Each claim counts in the year it
/// was submitted in; a denial gives back what the claim took from its year, and an appeal
/// re-adjudicates the claim against its year as it stands then (the deductible may have been met
/// meanwhile, the limit may be used up), so the year's totals are always exactly what its
/// pended, appealed, approved and paid claims take.
///
/// Pools. Pended and appealed claims (at their maximum) and approved claims waiting for funds are
/// reserved; the plan's insurer may withdraw only what the pool holds above that.
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
    /// keccak256(bytes.concat(keccak256(abi.encode(serviceCommitment, allowedAmount, gtin)))), where
    /// serviceCommitment = keccak256(abi.encode(billingCode, salt)), the salt is shared with network
    /// providers off chain, and gtin (uint64) is the drug product a drug service covers, 0 otherwise.
    struct PlanTerms {
        bytes32 coveredRoot;
        uint64 deductible;
        uint16 coinsuranceBps;
        uint64 perClaimLimit;
        uint64 annualLimit;
        uint64 autoPayCeiling;
    }

    /// @notice A plan as {plan} reports it.
    /// @param pool Tokens held for the plan.
    /// @param reserved What pended and appealed claims (at their maximum) and approved claims
    /// waiting for funds need; the insurer may withdraw only `pool - reserved`.
    struct Plan {
        address insurer;
        uint64 pool;
        PlanTerms terms;
        uint64 reserved;
    }

    /// @notice A patient's enrolment and the running totals of its latest coverage year with a claim.
    /// @param start Start of the current coverage period (of the latest enrolment or renewal).
    /// @param end End of the current coverage period.
    /// @param year The coverage year the totals are for (years count from `yearOrigin`).
    /// @param yearOrigin Start of the first enrolment: coverage years count from it, across renewals.
    struct Enrolment {
        uint40 start;
        uint40 end;
        uint32 year;
        uint64 deductibleMet;
        uint64 paidInYear;
        uint40 yearOrigin;
    }

    /// @notice The covered service a claim names, and its proof of coverage.
    /// @param gtin The drug product of a drug service (as in the plan's leaf), 0 for other services.
    struct Service {
        bytes32 commitment;
        uint64 allowedAmount;
        uint64 gtin;
        bytes32[] proof;
    }

    /// @notice For drug claims: the dispense being billed, as DrugProvenance emitted it. The batch is
    /// the service's GTIN with this lot: batchId = keccak256(abi.encode(gtin, lot)).
    /// @param lot The batch's lot; zero for a service that is not a drug.
    /// @param patientSalt The salt of the patientRef commitment keccak256(abi.encode(patient, salt)).
    /// @param nonce The dispenser's available units before the dispense (part of the dispense id).
    /// @param timestamp The dispense's block time.
    struct DrugDispense {
        bytes20 lot;
        bytes32 patientSalt;
        uint64 quantity;
        uint64 nonce;
        uint256 timestamp;
    }

    /// @notice A claim's immutable record, with the figures adjudicated at submission; its id is
    /// keccak256(abi.encode(record)). The record is in the {ClaimSubmitted} event, and calls about a
    /// claim take it back as calldata, so a claim costs one storage slot ({ClaimState}).
    /// @param evidence The first evidence record's id, or the dispense id when the dispense is the
    /// only evidence.
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

    /// @notice What changes over a claim's life. The figures are the record's until an appeal
    /// re-adjudicates the claim; a denied claim takes nothing (all zero).
    /// @param amount The maximum payable while pended or appealed, the approved amount after.
    /// @param deductiblePart What the claim takes from its year's deductible.
    /// @param patientShare The patient's share of the allowed amount (settled with {settlePatientShare}).
    struct ClaimState {
        ClaimStatus status;
        bool appealed;
        bool shareSettled;
        uint64 amount;
        uint64 deductiblePart;
        uint64 patientShare;
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
    /// @notice Thrown when an amount (funding, withdrawal, billed) is zero.
    error ClaimsZeroAmount();
    /// @notice Thrown when an enrolment period ends before it starts or has already ended, or a
    /// renewal starts more than 2^32 seconds after the first enrolment.
    error ClaimsInvalidEnrolment(uint40 start, uint40 end);
    /// @notice Thrown when the patient's enrolment in the plan has not ended yet (it ends at `end`).
    error ClaimsAlreadyEnrolled(uint256 planId, address patient, uint40 end);
    /// @notice Thrown when a renewal starts before the previous coverage period ended.
    error ClaimsEnrolmentOverlap(uint256 planId, address patient, uint40 previousEnd, uint40 start);
    /// @notice Thrown when the patient's enrolment signature is past its deadline.
    error ClaimsSignatureExpired(uint256 deadline);
    /// @notice Thrown when the enrolment signature is not the patient's (for this plan, period and nonce).
    error ClaimsInvalidSignature(address patient);
    /// @notice Thrown when the patient is not enrolled in the plan.
    error ClaimsNotEnrolled(uint256 planId, address patient);
    /// @notice Thrown when the claim falls outside the patient's coverage period.
    error ClaimsCoverageExpired(uint256 planId, address patient, uint40 end);
    /// @notice Thrown when the service (the encounter's first record, or the dispense) is older than
    /// the current coverage period's start.
    /// @param evidence The record id or dispense id.
    /// @param servicedAt When it was anchored or dispensed.
    /// @param start The coverage period's start.
    error ClaimsServiceBeforeCoverage(bytes32 evidence, uint256 servicedAt, uint40 start);
    /// @notice Thrown when a claim names no evidence record and no dispense.
    error ClaimsNoEvidence();
    /// @notice Thrown when an evidence record is not anchored, or not this patient's, or not the claiming provider's.
    error ClaimsInvalidEvidence(bytes32 recordId);
    /// @notice Thrown when an amended evidence record is not followed by the header of the version it
    /// amends (`previousId`).
    error ClaimsMissingVersion(bytes32 recordId, bytes32 previousId);
    /// @notice Thrown when the encounter of an evidence record (its first version) was already used by a claim.
    error ClaimsEvidenceAlreadyClaimed(bytes32 recordId, bytes32 encounterId);
    /// @notice Thrown when the insurer holds no payment-purpose (HPAYMT) consent covering the
    /// evidence (an EHR record, or a dispense under the `MedicationDispense` category).
    error ClaimsNoPaymentConsent(address insurer, bytes32 recordId);
    /// @notice Thrown when the service (commitment, allowed amount, GTIN) is not proven in the plan's covered-services root.
    error ClaimsServiceNotCovered(bytes32 commitment);
    /// @notice Thrown when the same service was already claimed for the patient on the same day.
    error ClaimsDuplicateService(address patient, bytes32 commitment, uint256 day);
    /// @notice Thrown when a drug service (one with a GTIN) is claimed without a dispense.
    error ClaimsDispenseRequired(uint64 gtin);
    /// @notice Thrown when a dispense is given for a service that is not a drug (its GTIN is 0).
    error ClaimsUnexpectedDispense();
    /// @notice Thrown when no dispense of the service's GTIN with this lot, by the claiming
    /// institution, to this patient, matches the claim's dispense.
    error ClaimsInvalidDispense(bytes32 dispenseId);
    /// @notice Thrown when a dispense was already claimed.
    error ClaimsDispenseAlreadyClaimed(bytes32 dispenseId);
    /// @notice Thrown when a dispense is billed by a dispenser the patient has no treatment
    /// relationship with: no APPEND consent for TREAT over `MedicationDispense` (or all data) to it.
    error ClaimsNoTreatmentRelationship(address patient, address dispenser);
    /// @notice Thrown when no claim has this record (altered or never submitted).
    error ClaimsUnknownClaim(bytes32 claimId);
    /// @notice Thrown when the claim's status does not allow the operation.
    error ClaimsInvalidTransition(bytes32 claimId, ClaimStatus status);
    /// @notice Thrown when an approved amount exceeds the claim's current maximum.
    error ClaimsAmountAboveMaximum(uint64 amount, uint64 maxPayable);
    /// @notice Thrown when a claim is appealed a second time.
    error ClaimsAlreadyAppealed(bytes32 claimId);
    /// @notice Thrown when the caller is not the claim's provider (appeal) or patient (settlement).
    error ClaimsNotClaimParty(bytes32 claimId, address account);
    /// @notice Thrown when the plan's pool cannot pay an approved claim yet.
    error ClaimsInsufficientPool(uint256 planId, uint64 pool, uint64 needed);
    /// @notice Thrown when the insurer withdraws more than the pool holds above its reserved claims.
    error ClaimsWithdrawalAboveSurplus(uint256 planId, uint64 amount, uint64 surplus);
    /// @notice Thrown when there is no unpaid patient share on a paid claim.
    error ClaimsNothingToSettle(bytes32 claimId);

    // ─── Events ─────────────────────────────────────────────────────────────────────────────

    /// @notice Emitted when an insurer creates a plan, with its full terms.
    event PlanCreated(uint256 indexed planId, address indexed insurer, PlanTerms terms);
    /// @notice Emitted when tokens are added to a plan's pool; `pool` is the new balance.
    event PlanFunded(uint256 indexed planId, address indexed funder, uint64 amount, uint64 pool);
    /// @notice Emitted when the plan's insurer withdraws surplus; `pool` is the new balance.
    event PlanWithdrawn(uint256 indexed planId, address indexed insurer, uint64 amount, uint64 pool);
    /// @notice Emitted when a patient joins a plan, or renews a lapsed enrolment, for [start, end].
    /// @param renewal True when the patient was enrolled before (the year origin and totals are kept).
    event PatientEnrolled(uint256 indexed planId, address indexed patient, uint40 start, uint40 end, bool renewal);
    /// @notice Emitted for every accepted claim with its record (computed figures included).
    event ClaimSubmitted(
        bytes32 indexed claimId, uint256 indexed planId, address indexed provider, ClaimRecord record, ClaimStatus status
    );
    /// @notice Emitted when the insurer approves (amount) or denies (reason code) a claim.
    event ClaimReviewed(bytes32 indexed claimId, address indexed insurer, ClaimStatus status, uint64 amount, uint16 reason);
    /// @notice Emitted when the provider appeals a denied claim, with the figures it was re-adjudicated to.
    event ClaimAppealed(
        bytes32 indexed claimId, address indexed provider, uint64 maxPayable, uint64 patientShare, uint64 deductiblePart
    );
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

    /// @notice The plan's insurer, while active, takes `amount` of the pool's surplus (what it holds
    /// above {Plan-reserved}) back. Emits {PlanWithdrawn}.
    function withdraw(uint256 planId, uint64 amount) external;

    /// @notice The plan's insurer enrols `patient` for [start, end] with the patient's EIP-712
    /// signature of Enrol(planId, patient, start, end, nonce, deadline). A patient enrolled before
    /// may be enrolled again (renewal) only once that enrolment has ended, for a period starting
    /// after it; the year origin and the running totals are kept. Emits {PatientEnrolled}.
    function enrol(uint256 planId, address patient, uint40 start, uint40 end, uint256 deadline, bytes calldata signature)
        external;

    /// @notice An active provider submits a claim; see the contract description for the checks.
    /// @param evidence EHR records of the encounter, each amended record followed by the headers of
    /// its earlier versions, newest first (the encounter is the first version). Empty for a drug
    /// claim whose only evidence is the dispense.
    /// @param drug The dispense billed, for a service with a GTIN; all zero otherwise.
    /// @return claimId The claim's id; its status is Paid, Approved (awaiting funds) or Pended.
    function submitClaim(
        uint256 planId,
        address patient,
        IEHRIndex.RecordHeader[] calldata evidence,
        Service calldata service,
        uint64 billed,
        DrugDispense calldata drug
    ) external returns (bytes32 claimId);

    /// @notice The insurer approves a pended or appealed claim for `amount` <= its current maximum;
    /// it is paid at once if the pool allows. Emits {ClaimReviewed} (and {ClaimPaid}).
    function approve(ClaimRecord calldata record, uint64 amount) external;

    /// @notice The insurer denies a pended or appealed claim with a reason code; the claim gives
    /// back what it took from its year and its reservation. Emits {ClaimReviewed}.
    function deny(ClaimRecord calldata record, uint16 reason) external;

    /// @notice The provider appeals a denied claim, once: it is re-adjudicated against its year as
    /// it stands now, reserved again, and waits for review. Emits {ClaimAppealed}.
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

    /// @notice What the claims of coverage year `year` take: deductible met and amount paid or reserved.
    function yearUsage(uint256 planId, address patient, uint32 year)
        external
        view
        returns (uint64 deductibleMet, uint64 paidInYear);

    /// @notice A claim's current state (its record is in the ClaimSubmitted event).
    function claim(bytes32 claimId) external view returns (ClaimState memory);

    /// @notice The id of a claim record.
    function claimIdOf(ClaimRecord calldata record) external pure returns (bytes32);

    /// @notice The encounter of a record: the id of its first version. `versions` is the record's
    /// header followed by its earlier versions' headers, newest first.
    function encounterOf(IEHRIndex.RecordHeader[] calldata versions) external pure returns (bytes32);

    /// @notice Whether an encounter (or a dispense) has backed a claim.
    function isEvidenceUsed(bytes32 encounterOrDispenseId) external view returns (bool);

    /// @notice The nonce the patient's next enrolment signature must carry.
    function enrolNonce(address patient) external view returns (uint256);

    /// @notice Total paid to providers from the plan's pool.
    function totalPaid(uint256 planId) external view returns (uint256);
}

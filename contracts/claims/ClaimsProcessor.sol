// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IClaimsProcessor} from "../../interfaces/IClaimsProcessor.sol";
import {IConsentManager} from "../../interfaces/IConsentManager.sol";
import {IDrugProvenance} from "../../interfaces/IDrugProvenance.sol";
import {IEHRIndex} from "../../interfaces/IEHRIndex.sol";
import {IInstitutionRegistry} from "../../interfaces/IInstitutionRegistry.sol";

/// @title ClaimsProcessor
/// @notice Plans, pools, enrolment, automatic adjudication and payment. See {IClaimsProcessor}.
contract ClaimsProcessor is IClaimsProcessor, EIP712, Nonces, ReentrancyGuard {
    using SafeERC20 for IERC20;

    // ─── Constants ──────────────────────────────────────────────────────────────────────────

    uint16 private constant BPS = 10_000;
    uint8 private constant ACTION_READ = 1;
    uint8 private constant PURPOSE_HPAYMT = 1;
    uint256 private constant PROVIDERS = (1 << uint8(IInstitutionRegistry.Kind.Hospital))
        | (1 << uint8(IInstitutionRegistry.Kind.CommunityClinic))
        | (1 << uint8(IInstitutionRegistry.Kind.SpecialistHospital))
        | (1 << uint8(IInstitutionRegistry.Kind.Laboratory)) | (1 << uint8(IInstitutionRegistry.Kind.Pharmacy));
    bytes32 public constant ENROL_TYPEHASH =
        keccak256("Enrol(uint256 planId,address patient,uint40 start,uint40 end,uint256 nonce,uint256 deadline)");

    // ─── Storage ────────────────────────────────────────────────────────────────────────────

    IInstitutionRegistry private immutable REGISTRY;
    IConsentManager private immutable CONSENT;
    IEHRIndex private immutable EHR;
    IDrugProvenance private immutable DRUGS;
    IERC20 private immutable TOKEN;

    Plan[] private _plans; // id = index + 1
    mapping(uint256 planId => mapping(address patient => Enrolment)) private _enrolments;
    mapping(bytes32 claimId => ClaimState) private _claims;
    mapping(bytes32 recordId => bool) private _evidenceUsed;
    mapping(bytes32 patientServiceDay => bool) private _servicePaid;
    mapping(bytes32 dispenseId => bool) private _dispenseClaimed;
    mapping(uint256 planId => uint256) private _totalPaid;

    // ─── Constructor ────────────────────────────────────────────────────────────────────────

    constructor(
        IInstitutionRegistry registry,
        IConsentManager consent,
        IEHRIndex ehr,
        IDrugProvenance drugs,
        IERC20 token
    ) EIP712("MedChain ClaimsProcessor", "1") {
        if (
            address(registry) == address(0) || address(consent) == address(0) || address(ehr) == address(0)
                || address(drugs) == address(0) || address(token) == address(0)
        ) revert ClaimsZeroAddress();
        REGISTRY = registry;
        CONSENT = consent;
        EHR = ehr;
        DRUGS = drugs;
        TOKEN = token;
    }

    // ─── Plans and enrolment ────────────────────────────────────────────────────────────────

    /// @inheritdoc IClaimsProcessor
    function createPlan(PlanTerms calldata terms) external returns (uint256 planId) {
        if (!REGISTRY.isActive(msg.sender, IInstitutionRegistry.Kind.Insurer)) revert ClaimsNotInsurer(msg.sender);
        if (
            terms.coveredRoot == bytes32(0) || terms.coinsuranceBps > BPS || terms.perClaimLimit == 0
                || terms.annualLimit < terms.perClaimLimit
        ) revert ClaimsInvalidPlan();
        _plans.push(Plan({insurer: msg.sender, pool: 0, terms: terms}));
        planId = _plans.length;
        emit PlanCreated(planId, msg.sender, terms);
    }

    /// @inheritdoc IClaimsProcessor
    function fund(uint256 planId, uint64 amount) external nonReentrant {
        Plan storage p = _plan(planId);
        if (amount == 0) revert ClaimsZeroAmount();
        p.pool += amount;
        emit PlanFunded(planId, msg.sender, amount, p.pool);
        TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IClaimsProcessor
    function enrol(uint256 planId, address patient, uint40 start, uint40 end, uint256 deadline, bytes calldata signature)
        external
    {
        Plan storage p = _plan(planId);
        if (msg.sender != p.insurer) revert ClaimsNotPlanInsurer(planId, msg.sender);
        if (end <= start || end < block.timestamp) revert ClaimsInvalidEnrolment(start, end);
        if (_enrolments[planId][patient].end != 0) revert ClaimsAlreadyEnrolled(planId, patient);
        if (block.timestamp > deadline) revert ClaimsSignatureExpired(deadline);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(ENROL_TYPEHASH, planId, patient, start, end, nonces(patient), deadline))
        );
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError || signer != patient || patient == address(0)) {
            revert ClaimsInvalidSignature(patient);
        }
        _useNonce(patient);
        _enrolments[planId][patient] = Enrolment({start: start, end: end, year: 0, deductibleMet: 0, paidInYear: 0});
        emit PatientEnrolled(planId, patient, start, end);
    }

    // ─── Claims ─────────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IClaimsProcessor
    function submitClaim(
        uint256 planId,
        address patient,
        IEHRIndex.RecordHeader[] calldata evidence,
        Service calldata service,
        uint64 billed,
        DrugDispense calldata drug
    ) external nonReentrant returns (bytes32 claimId) {
        if (!REGISTRY.isActiveAny(msg.sender, PROVIDERS)) revert ClaimsNotProvider(msg.sender);
        Plan storage p = _plan(planId);
        _activeEnrolment(planId, patient);
        if (billed == 0) revert ClaimsZeroAmount();
        if (evidence.length == 0) revert ClaimsNoEvidence();
        bytes32 firstEvidence = _checkEvidence(patient, p.insurer, evidence);
        _checkCoverage(p.terms.coveredRoot, service);
        _checkDuplicate(patient, service.commitment);
        if (drug.batchId != bytes32(0)) _checkDispense(patient, drug);
        claimId = _open(planId, patient, firstEvidence, service.commitment, billed, service.allowedAmount);
    }

    /// @dev Records the claim with its computed figures and pays it at once when the rules allow.
    function _open(
        uint256 planId,
        address patient,
        bytes32 firstEvidence,
        bytes32 commitment,
        uint64 billed,
        uint64 allowedAmount
    ) private returns (bytes32 claimId) {
        Plan storage p = _plans[planId - 1];
        Enrolment storage e = _enrolments[planId][patient];
        ClaimRecord memory r;
        (r.maxPayable, r.patientShare, r.deductiblePart) = _adjudicate(p.terms, e, billed, allowedAmount);
        r.planId = uint32(planId);
        r.provider = msg.sender;
        r.patient = patient;
        r.evidence = firstEvidence;
        r.serviceCommitment = commitment;
        r.billed = billed;
        r.year = e.year;
        r.submittedAt = uint40(block.timestamp);
        claimId = keccak256(abi.encode(r));
        ClaimStatus status = r.maxPayable <= p.terms.autoPayCeiling ? ClaimStatus.Approved : ClaimStatus.Pended;
        ClaimState storage c = _claims[claimId];
        c.status = status;
        c.amount = r.maxPayable;
        emit ClaimSubmitted(claimId, planId, msg.sender, r, status);
        if (status == ClaimStatus.Approved && p.pool >= r.maxPayable) _pay(claimId, c, p, r.planId, msg.sender);
    }

    function _checkDuplicate(address patient, bytes32 commitment) private {
        uint256 day = block.timestamp / 1 days;
        bytes32 serviceKey = keccak256(abi.encode(patient, commitment, day));
        if (_servicePaid[serviceKey]) revert ClaimsDuplicateService(patient, commitment, day);
        _servicePaid[serviceKey] = true;
    }

    /// @inheritdoc IClaimsProcessor
    function approve(ClaimRecord calldata r, uint64 amount) external nonReentrant {
        (bytes32 claimId, ClaimState storage c, Plan storage p) = _reviewable(r);
        if (amount > r.maxPayable) revert ClaimsAmountAboveMaximum(amount, r.maxPayable);
        Enrolment storage e = _enrolments[r.planId][r.patient];
        if (c.status == ClaimStatus.Appealed) {
            // A denial released the reservation; an approval on appeal takes it again, within the limit.
            if (e.year == r.year) {
                uint64 room = p.terms.annualLimit - e.paidInYear;
                if (amount > room) revert ClaimsAmountAboveMaximum(amount, room);
                e.paidInYear += amount;
            }
        } else if (e.year == r.year) {
            e.paidInYear -= r.maxPayable - amount;
        }
        c.amount = amount;
        c.status = ClaimStatus.Approved;
        emit ClaimReviewed(claimId, msg.sender, ClaimStatus.Approved, amount, 0);
        if (p.pool >= amount) _pay(claimId, c, p, r.planId, r.provider);
    }

    /// @inheritdoc IClaimsProcessor
    function deny(ClaimRecord calldata r, uint16 reason) external {
        (bytes32 claimId, ClaimState storage c,) = _reviewable(r);
        if (c.status == ClaimStatus.Pended) {
            Enrolment storage e = _enrolments[r.planId][r.patient];
            if (e.year == r.year) {
                e.paidInYear -= r.maxPayable;
                e.deductibleMet -= r.deductiblePart;
            }
        }
        c.status = ClaimStatus.Denied;
        c.amount = 0;
        emit ClaimReviewed(claimId, msg.sender, ClaimStatus.Denied, 0, reason);
    }

    /// @inheritdoc IClaimsProcessor
    function appeal(ClaimRecord calldata r) external {
        (bytes32 claimId, ClaimState storage c) = _claim(r);
        if (msg.sender != r.provider) revert ClaimsNotClaimParty(claimId, msg.sender);
        if (c.status != ClaimStatus.Denied) revert ClaimsInvalidTransition(claimId, c.status);
        if (c.appealed) revert ClaimsAlreadyAppealed(claimId);
        c.appealed = true;
        c.status = ClaimStatus.Appealed;
        emit ClaimAppealed(claimId, msg.sender);
    }

    /// @inheritdoc IClaimsProcessor
    function payOut(ClaimRecord calldata r) external nonReentrant {
        (bytes32 claimId, ClaimState storage c) = _claim(r);
        if (c.status != ClaimStatus.Approved) revert ClaimsInvalidTransition(claimId, c.status);
        Plan storage p = _plans[r.planId - 1];
        if (p.pool < c.amount) revert ClaimsInsufficientPool(r.planId, p.pool, c.amount);
        _pay(claimId, c, p, r.planId, r.provider);
    }

    /// @inheritdoc IClaimsProcessor
    function settlePatientShare(ClaimRecord calldata r) external nonReentrant {
        (bytes32 claimId, ClaimState storage c) = _claim(r);
        if (msg.sender != r.patient) revert ClaimsNotClaimParty(claimId, msg.sender);
        if (c.status != ClaimStatus.Paid || c.shareSettled || r.patientShare == 0) {
            revert ClaimsNothingToSettle(claimId);
        }
        c.shareSettled = true;
        emit PatientShareSettled(claimId, msg.sender, r.patientShare);
        TOKEN.safeTransferFrom(msg.sender, r.provider, r.patientShare);
    }

    // ─── Internal logic ─────────────────────────────────────────────────────────────────────

    function _pay(bytes32 claimId, ClaimState storage c, Plan storage p, uint256 planId, address provider) private {
        uint64 amount = c.amount;
        c.status = ClaimStatus.Paid;
        p.pool -= amount;
        _totalPaid[planId] += amount;
        emit ClaimPaid(claimId, provider, amount);
        if (amount > 0) TOKEN.safeTransfer(provider, amount);
    }

    /// @dev Evidence: anchored, this patient's, this provider's, not claimed before, and the insurer
    /// holds a payment-purpose consent for it. Returns the first evidence id (which makes claim ids unique).
    function _checkEvidence(address patient, address insurer, IEHRIndex.RecordHeader[] calldata evidence)
        private
        returns (bytes32 firstEvidence)
    {
        for (uint256 i = 0; i < evidence.length; ++i) {
            IEHRIndex.RecordHeader calldata h = evidence[i];
            bytes32 recordId = keccak256(abi.encode(h));
            if (h.patient != patient || h.custodian != msg.sender || !EHR.isValidRecord(h)) {
                revert ClaimsInvalidEvidence(recordId);
            }
            if (_evidenceUsed[recordId]) revert ClaimsEvidenceAlreadyClaimed(recordId);
            (bool allowed,,) = CONSENT.checkAccess(patient, insurer, recordId, h.category, ACTION_READ, PURPOSE_HPAYMT);
            if (!allowed) revert ClaimsNoPaymentConsent(insurer, recordId);
            _evidenceUsed[recordId] = true;
            if (i == 0) firstEvidence = recordId;
        }
    }

    /// @dev The one seam for proving coverage: today a salted Merkle proof; a zero-knowledge proof
    /// of coverage will be a second implementation behind this function.
    function _checkCoverage(bytes32 coveredRoot, Service calldata service) private pure {
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(service.commitment, service.allowedAmount))));
        if (!MerkleProof.verifyCalldata(service.proof, coveredRoot, leaf)) {
            revert ClaimsServiceNotCovered(service.commitment);
        }
    }

    function _checkDispense(address patient, DrugDispense calldata d) private {
        bytes32 patientRef = keccak256(abi.encode(patient, d.patientSalt));
        bytes32 dispenseId = keccak256(abi.encode(d.batchId, msg.sender, patientRef, d.quantity, d.nonce, d.timestamp));
        if (!DRUGS.isDispensed(dispenseId) || _dispenseClaimed[dispenseId]) revert ClaimsInvalidDispense(dispenseId);
        _dispenseClaimed[dispenseId] = true;
    }

    /// @dev Deductible first, then coinsurance, then the per-claim and annual limits; whatever the
    /// plan does not pay is the patient's share. Reserves the payable amount in the member's year.
    function _adjudicate(PlanTerms storage t, Enrolment storage e, uint64 billed, uint64 allowedAmount)
        private
        returns (uint64 maxPayable, uint64 patientShare, uint64 deductiblePart)
    {
        uint32 year = uint32((block.timestamp - e.start) / 365 days);
        if (year != e.year) {
            e.year = year;
            e.deductibleMet = 0;
            e.paidInYear = 0;
        }
        uint64 allowed = billed < allowedAmount ? billed : allowedAmount;
        uint64 deductibleLeft = t.deductible - e.deductibleMet;
        deductiblePart = allowed < deductibleLeft ? allowed : deductibleLeft;
        uint64 rest = allowed - deductiblePart;
        uint64 insurerShare = rest - uint64((uint256(rest) * t.coinsuranceBps) / BPS);
        uint64 annualLeft = t.annualLimit - e.paidInYear;
        maxPayable = insurerShare;
        if (maxPayable > t.perClaimLimit) maxPayable = t.perClaimLimit;
        if (maxPayable > annualLeft) maxPayable = annualLeft;
        patientShare = allowed - maxPayable;
        e.deductibleMet += deductiblePart;
        e.paidInYear += maxPayable;
    }

    function _activeEnrolment(uint256 planId, address patient) private view returns (Enrolment storage e) {
        e = _enrolments[planId][patient];
        if (e.end == 0) revert ClaimsNotEnrolled(planId, patient);
        if (block.timestamp < e.start || block.timestamp > e.end) revert ClaimsCoverageExpired(planId, patient, e.end);
    }

    function _reviewable(ClaimRecord calldata r)
        private
        view
        returns (bytes32 claimId, ClaimState storage c, Plan storage p)
    {
        (claimId, c) = _claim(r);
        p = _plans[r.planId - 1];
        if (msg.sender != p.insurer) revert ClaimsNotPlanInsurer(r.planId, msg.sender);
        if (c.status != ClaimStatus.Pended && c.status != ClaimStatus.Appealed) {
            revert ClaimsInvalidTransition(claimId, c.status);
        }
    }

    function _plan(uint256 planId) private view returns (Plan storage) {
        if (planId == 0 || planId > _plans.length) revert ClaimsUnknownPlan(planId);
        return _plans[planId - 1];
    }

    function _claim(ClaimRecord calldata r) private view returns (bytes32 claimId, ClaimState storage c) {
        claimId = keccak256(abi.encode(r));
        c = _claims[claimId];
        if (c.status == ClaimStatus.None) revert ClaimsUnknownClaim(claimId);
    }

    // ─── Views ──────────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IClaimsProcessor
    function plan(uint256 planId) external view returns (Plan memory) {
        return _plan(planId);
    }

    /// @inheritdoc IClaimsProcessor
    function enrolment(uint256 planId, address patient) external view returns (Enrolment memory) {
        return _enrolments[planId][patient];
    }

    /// @inheritdoc IClaimsProcessor
    function claim(bytes32 claimId) external view returns (ClaimState memory) {
        return _claims[claimId];
    }

    /// @inheritdoc IClaimsProcessor
    function claimIdOf(ClaimRecord calldata record) external pure returns (bytes32) {
        return keccak256(abi.encode(record));
    }

    /// @inheritdoc IClaimsProcessor
    function enrolNonce(address patient) external view returns (uint256) {
        return nonces(patient);
    }

    /// @inheritdoc IClaimsProcessor
    function totalPaid(uint256 planId) external view returns (uint256) {
        return _totalPaid[planId];
    }
}

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
import {Actions} from "../libraries/Actions.sol";
import {ClaimIds} from "../libraries/ClaimIds.sol";
import {DrugIds} from "../libraries/DrugIds.sol";
import {KindMasks} from "../libraries/KindMasks.sol";
import {Purposes} from "../libraries/Purposes.sol";
import {RecordIds} from "../libraries/RecordIds.sol";

/// @title ClaimsProcessor
/// @notice Plans, pools, enrolment, automatic adjudication and payment. See {IClaimsProcessor}.
contract ClaimsProcessor is IClaimsProcessor, EIP712, Nonces, ReentrancyGuard {
    using SafeERC20 for IERC20;
    using RecordIds for IEHRIndex.RecordHeader;

    // ─── Constants ──────────────────────────────────────────────────────────────────────────

    uint16 private constant BPS = 10_000;
    /// @dev The consent category a dispense is disclosed under (the FHIR resource type).
    bytes32 private constant MEDICATION_DISPENSE = bytes32("MedicationDispense");
    bytes32 public constant ENROL_TYPEHASH =
        keccak256("Enrol(uint256 planId,address patient,uint40 start,uint40 end,uint256 nonce,uint256 deadline)");

    // ─── Storage ────────────────────────────────────────────────────────────────────────────

    /// @dev A plan as stored: the terms flattened so that `reserved` shares the auto-pay slot
    /// (read by every claim anyway) instead of taking a slot of its own.
    struct PlanState {
        address insurer;
        uint64 pool;
        bytes32 coveredRoot;
        uint64 deductible;
        uint16 coinsuranceBps;
        uint64 perClaimLimit;
        uint64 annualLimit;
        uint64 autoPayCeiling;
        uint64 reserved;
    }

    /// @dev An enrolment in one slot: the current period starts `startOffset` seconds after the
    /// year origin (a renewal may start at most 2^32 s, 136 years, after the first enrolment), and
    /// the totals are those of coverage year `year`. A uint16 year cannot overflow: a uint40 time
    /// is less than 35,000 years of 365 days from any origin.
    struct Member {
        uint40 yearOrigin;
        uint32 startOffset;
        uint40 end;
        uint16 year;
        uint64 deductibleMet;
        uint64 paidInYear;
    }

    /// @dev The totals of a coverage year that is no longer the member's latest.
    struct YearTotals {
        uint64 deductibleMet;
        uint64 paidInYear;
    }

    IInstitutionRegistry private immutable REGISTRY;
    IConsentManager private immutable CONSENT;
    IEHRIndex private immutable EHR;
    IDrugProvenance private immutable DRUGS;
    IERC20 private immutable TOKEN;

    PlanState[] private _plans; // id = index + 1
    mapping(uint256 planId => mapping(address patient => Member)) private _members;
    mapping(uint256 planId => mapping(address patient => mapping(uint32 year => YearTotals))) private _pastYears;
    mapping(bytes32 claimId => ClaimState) private _claims;
    mapping(bytes32 encounterOrDispenseId => bool) private _evidenceUsed;
    mapping(bytes32 patientServiceDay => bool) private _servicePaid;
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
        _plans.push(
            PlanState({
                insurer: msg.sender,
                pool: 0,
                coveredRoot: terms.coveredRoot,
                deductible: terms.deductible,
                coinsuranceBps: terms.coinsuranceBps,
                perClaimLimit: terms.perClaimLimit,
                annualLimit: terms.annualLimit,
                autoPayCeiling: terms.autoPayCeiling,
                reserved: 0
            })
        );
        planId = _plans.length;
        emit PlanCreated(planId, msg.sender, terms);
    }

    /// @inheritdoc IClaimsProcessor
    function fund(uint256 planId, uint64 amount) external nonReentrant {
        PlanState storage p = _plan(planId);
        if (amount == 0) revert ClaimsZeroAmount();
        p.pool += amount;
        emit PlanFunded(planId, msg.sender, amount, p.pool);
        TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IClaimsProcessor
    function withdraw(uint256 planId, uint64 amount) external nonReentrant {
        PlanState storage p = _plan(planId);
        if (msg.sender != p.insurer) revert ClaimsNotPlanInsurer(planId, msg.sender);
        if (!REGISTRY.isActive(msg.sender, IInstitutionRegistry.Kind.Insurer)) revert ClaimsNotInsurer(msg.sender);
        if (amount == 0) revert ClaimsZeroAmount();
        uint64 pool = p.pool;
        uint64 reserved = p.reserved;
        // Cannot underflow: the subtraction only happens when pool > reserved.
        uint64 surplus;
        unchecked {
            surplus = pool > reserved ? pool - reserved : 0;
        }
        if (amount > surplus) revert ClaimsWithdrawalAboveSurplus(planId, amount, surplus);
        // Cannot underflow: amount <= surplus <= pool.
        unchecked {
            p.pool = pool - amount;
        }
        emit PlanWithdrawn(planId, msg.sender, amount, pool - amount);
        TOKEN.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IClaimsProcessor
    function enrol(uint256 planId, address patient, uint40 start, uint40 end, uint256 deadline, bytes calldata signature)
        external
    {
        if (msg.sender != _plan(planId).insurer) revert ClaimsNotPlanInsurer(planId, msg.sender);
        if (end <= start || end < block.timestamp) revert ClaimsInvalidEnrolment(start, end);
        Member storage m = _members[planId][patient];
        bool renewal = m.end != 0;
        if (renewal) _checkRenewal(planId, patient, m, start, end);
        _useEnrolSignature(planId, patient, start, end, deadline, signature);
        if (renewal) {
            // The year origin, the year and its totals stay: a lapse does not reset the deductible.
            // Cannot overflow: _checkRenewal bounds the offset.
            m.startOffset = uint32(start - m.yearOrigin);
            m.end = end;
        } else {
            _members[planId][patient] =
                Member({yearOrigin: start, startOffset: 0, end: end, year: 0, deductibleMet: 0, paidInYear: 0});
        }
        emit PatientEnrolled(planId, patient, start, end, renewal);
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
        if (!REGISTRY.isActiveAny(msg.sender, KindMasks.BILLING_PROVIDERS)) revert ClaimsNotProvider(msg.sender);
        PlanState storage p = _plan(planId);
        uint40 start = _activeEnrolment(planId, patient);
        if (billed == 0) revert ClaimsZeroAmount();
        if (evidence.length == 0 && service.gtin == 0) revert ClaimsNoEvidence();
        bytes32 firstEvidence = _checkEvidence(patient, p.insurer, start, evidence);
        _checkCoverage(p.coveredRoot, service);
        if (service.gtin != 0) {
            bytes32 dispenseId = _checkDispense(patient, p.insurer, start, service.gtin, drug);
            if (firstEvidence == bytes32(0)) firstEvidence = dispenseId;
        } else if (drug.lot != bytes20(0)) {
            revert ClaimsUnexpectedDispense();
        }
        _checkDuplicate(patient, service.commitment);
        claimId = _open(planId, patient, firstEvidence, service.commitment, billed, service.allowedAmount);
    }

    /// @dev Records the claim with its computed figures and pays it at once when the rules allow;
    /// otherwise its payable amount is reserved in the pool.
    function _open(
        uint256 planId,
        address patient,
        bytes32 firstEvidence,
        bytes32 commitment,
        uint64 billed,
        uint64 allowedAmount
    ) private returns (bytes32 claimId) {
        PlanState storage p = _plans[planId - 1];
        Member storage m = _members[planId][patient];
        ClaimRecord memory r;
        r.year = _rollYear(planId, patient, m);
        (r.maxPayable, r.patientShare, r.deductiblePart) =
            _adjudicate(p, m.deductibleMet, m.paidInYear, billed < allowedAmount ? billed : allowedAmount);
        m.deductibleMet += r.deductiblePart;
        m.paidInYear += r.maxPayable;
        r.planId = uint32(planId);
        r.provider = msg.sender;
        r.patient = patient;
        r.evidence = firstEvidence;
        r.serviceCommitment = commitment;
        r.billed = billed;
        r.submittedAt = uint40(block.timestamp);
        claimId = ClaimIds.id(r);
        ClaimStatus status = r.maxPayable <= p.autoPayCeiling ? ClaimStatus.Approved : ClaimStatus.Pended;
        bool payNow = status == ClaimStatus.Approved && p.pool >= r.maxPayable;
        if (!payNow) p.reserved += r.maxPayable;
        _claims[claimId] = ClaimState({
            status: status,
            appealed: false,
            shareSettled: false,
            amount: r.maxPayable,
            deductiblePart: r.deductiblePart,
            patientShare: r.patientShare
        });
        emit ClaimSubmitted(claimId, planId, msg.sender, r, status);
        if (payNow) _pay(claimId, _claims[claimId], p, planId, msg.sender);
    }

    function _checkDuplicate(address patient, bytes32 commitment) private {
        uint256 day = block.timestamp / 1 days;
        bytes32 serviceKey = keccak256(abi.encode(patient, commitment, day));
        if (_servicePaid[serviceKey]) revert ClaimsDuplicateService(patient, commitment, day);
        _servicePaid[serviceKey] = true;
    }

    /// @inheritdoc IClaimsProcessor
    function approve(ClaimRecord calldata r, uint64 amount) external nonReentrant {
        (bytes32 claimId, ClaimState storage c, PlanState storage p) = _reviewable(r);
        uint64 maxPayable = c.amount;
        if (amount > maxPayable) revert ClaimsAmountAboveMaximum(amount, maxPayable);
        // Cannot underflow: amount <= maxPayable, which the claim's year holds.
        if (amount != maxPayable) _giveBack(r.planId, r.patient, r.year, 0, maxPayable - amount);
        c.amount = amount;
        c.status = ClaimStatus.Approved;
        bool payNow = p.pool >= amount;
        // Cannot underflow: the claim's maximum was reserved when it pended or was appealed.
        p.reserved = p.reserved - maxPayable + (payNow ? 0 : amount);
        emit ClaimReviewed(claimId, msg.sender, ClaimStatus.Approved, amount, 0);
        if (payNow) _pay(claimId, c, p, r.planId, r.provider);
    }

    /// @inheritdoc IClaimsProcessor
    function deny(ClaimRecord calldata r, uint16 reason) external {
        (bytes32 claimId, ClaimState storage c, PlanState storage p) = _reviewable(r);
        uint64 maxPayable = c.amount;
        _giveBack(r.planId, r.patient, r.year, c.deductiblePart, maxPayable);
        p.reserved -= maxPayable;
        c.status = ClaimStatus.Denied;
        c.amount = 0;
        c.deductiblePart = 0;
        c.patientShare = 0;
        emit ClaimReviewed(claimId, msg.sender, ClaimStatus.Denied, 0, reason);
    }

    /// @inheritdoc IClaimsProcessor
    function appeal(ClaimRecord calldata r) external {
        (bytes32 claimId, ClaimState storage c) = _claim(r);
        if (msg.sender != r.provider) revert ClaimsNotClaimParty(claimId, msg.sender);
        if (c.status != ClaimStatus.Denied) revert ClaimsInvalidTransition(claimId, c.status);
        if (c.appealed) revert ClaimsAlreadyAppealed(claimId);
        if (!REGISTRY.isActiveAny(msg.sender, KindMasks.BILLING_PROVIDERS)) revert ClaimsNotProvider(msg.sender);
        PlanState storage p = _plans[r.planId - 1];
        // The denial gave back what the claim took; take it again from the year as it stands now.
        // The allowed amount is what the plan and the patient shared: maxPayable + patientShare.
        (uint64 deductibleMet, uint64 paidInYear) = _totals(r.planId, r.patient, r.year);
        (uint64 maxPayable, uint64 patientShare, uint64 deductiblePart) =
            _adjudicate(p, deductibleMet, paidInYear, r.maxPayable + r.patientShare);
        _setTotals(r.planId, r.patient, r.year, deductibleMet + deductiblePart, paidInYear + maxPayable);
        p.reserved += maxPayable;
        c.appealed = true;
        c.status = ClaimStatus.Appealed;
        c.amount = maxPayable;
        c.deductiblePart = deductiblePart;
        c.patientShare = patientShare;
        emit ClaimAppealed(claimId, msg.sender, maxPayable, patientShare, deductiblePart);
    }

    /// @inheritdoc IClaimsProcessor
    function payOut(ClaimRecord calldata r) external nonReentrant {
        (bytes32 claimId, ClaimState storage c) = _claim(r);
        if (c.status != ClaimStatus.Approved) revert ClaimsInvalidTransition(claimId, c.status);
        PlanState storage p = _plans[r.planId - 1];
        uint64 amount = c.amount;
        if (p.pool < amount) revert ClaimsInsufficientPool(r.planId, p.pool, amount);
        p.reserved -= amount;
        _pay(claimId, c, p, r.planId, r.provider);
    }

    /// @inheritdoc IClaimsProcessor
    function settlePatientShare(ClaimRecord calldata r) external nonReentrant {
        (bytes32 claimId, ClaimState storage c) = _claim(r);
        if (msg.sender != r.patient) revert ClaimsNotClaimParty(claimId, msg.sender);
        uint64 share = c.patientShare;
        if (c.status != ClaimStatus.Paid || c.shareSettled || share == 0) revert ClaimsNothingToSettle(claimId);
        c.shareSettled = true;
        emit PatientShareSettled(claimId, msg.sender, share);
        TOKEN.safeTransferFrom(msg.sender, r.provider, share);
    }

    // ─── Internal logic ─────────────────────────────────────────────────────────────────────

    function _pay(bytes32 claimId, ClaimState storage c, PlanState storage p, uint256 planId, address provider)
        private
    {
        uint64 amount = c.amount;
        c.status = ClaimStatus.Paid;
        p.pool -= amount;
        _totalPaid[planId] += amount;
        emit ClaimPaid(claimId, provider, amount);
        if (amount > 0) TOKEN.safeTransfer(provider, amount);
    }

    /// @dev Evidence: anchored, this patient's, this provider's, its encounter (first version) not
    /// claimed before and not older than the coverage period, and the insurer holds a
    /// payment-purpose consent for it. An amended record is followed by its earlier versions'
    /// headers, newest first; each is proven by its hash, which its successor's `previous` names.
    /// Returns the first evidence id (which makes claim ids unique), or 0 for no evidence.
    function _checkEvidence(address patient, address insurer, uint40 start, IEHRIndex.RecordHeader[] calldata evidence)
        private
        returns (bytes32 firstEvidence)
    {
        uint256 i = 0;
        while (i < evidence.length) {
            IEHRIndex.RecordHeader calldata h = evidence[i];
            bytes32 recordId = h.id();
            if (h.patient != patient || h.custodian != msg.sender) revert ClaimsInvalidEvidence(recordId);
            IEHRIndex.RecordState memory s = EHR.record(recordId);
            if (s.status != IEHRIndex.RecordStatus.Current && s.status != IEHRIndex.RecordStatus.Superseded) {
                revert ClaimsInvalidEvidence(recordId);
            }
            bytes32 encounterId = recordId;
            uint256 servicedAt = s.anchoredAt;
            bytes32 previous = h.previous;
            ++i;
            if (previous != bytes32(0)) {
                do {
                    if (i == evidence.length || evidence[i].id() != previous) {
                        revert ClaimsMissingVersion(encounterId, previous);
                    }
                    encounterId = previous;
                    previous = evidence[i].previous;
                    ++i;
                } while (previous != bytes32(0));
                servicedAt = EHR.record(encounterId).anchoredAt;
            }
            if (servicedAt < start) revert ClaimsServiceBeforeCoverage(recordId, servicedAt, start);
            if (_evidenceUsed[encounterId]) revert ClaimsEvidenceAlreadyClaimed(recordId, encounterId);
            (bool allowed,,) =
                CONSENT.checkAccess(patient, insurer, recordId, h.category, Actions.READ, Purposes.HPAYMT);
            if (!allowed) revert ClaimsNoPaymentConsent(insurer, recordId);
            _evidenceUsed[encounterId] = true;
            if (firstEvidence == bytes32(0)) firstEvidence = recordId;
        }
    }

    /// @dev The one seam for proving coverage: today a salted Merkle proof; a zero-knowledge proof
    /// of coverage will be a second implementation behind this function.
    function _checkCoverage(bytes32 coveredRoot, Service calldata service) private pure {
        bytes32 leaf = ClaimIds.coverageLeaf(service.commitment, service.allowedAmount, service.gtin);
        if (!MerkleProof.verifyCalldata(service.proof, coveredRoot, leaf)) {
            revert ClaimsServiceNotCovered(service.commitment);
        }
    }

    /// @dev A drug service is claimed with a dispense of a batch of its GTIN, by the caller, to this
    /// patient, within the coverage period, not claimed before, by a dispenser the patient has a
    /// treatment relationship with (the dispense's patient reference is the dispenser's word alone),
    /// that the insurer may see for payment.
    function _checkDispense(address patient, address insurer, uint40 start, uint64 gtin, DrugDispense calldata d)
        private
        returns (bytes32 dispenseId)
    {
        if (d.lot == bytes20(0)) revert ClaimsDispenseRequired(gtin);
        bytes32 batchId = DrugIds.batchId(gtin, d.lot);
        bytes32 patientRef = DrugIds.patientRef(patient, d.patientSalt);
        dispenseId = DrugIds.dispenseId(batchId, msg.sender, patientRef, d.quantity, d.nonce, d.timestamp);
        if (!DRUGS.isDispensed(dispenseId)) revert ClaimsInvalidDispense(dispenseId);
        if (_evidenceUsed[dispenseId]) revert ClaimsDispenseAlreadyClaimed(dispenseId);
        if (d.timestamp < start) revert ClaimsServiceBeforeCoverage(dispenseId, d.timestamp, start);
        (bool allowed,,) =
            CONSENT.checkAccess(patient, insurer, dispenseId, MEDICATION_DISPENSE, Actions.READ, Purposes.HPAYMT);
        if (!allowed) revert ClaimsNoPaymentConsent(insurer, dispenseId);
        // As EHRIndex asks of a record's custodian at anchoring (category or all data).
        (bool treated,,) =
            CONSENT.checkAccess(patient, msg.sender, bytes32(0), MEDICATION_DISPENSE, Actions.APPEND, Purposes.TREAT);
        if (!treated) revert ClaimsNoTreatmentRelationship(patient, msg.sender);
        _evidenceUsed[dispenseId] = true;
    }

    /// @dev Deductible first, then coinsurance, then the per-claim and annual limits, against a
    /// year's totals; whatever the plan does not pay is the patient's share.
    function _adjudicate(PlanState storage p, uint64 deductibleMet, uint64 paidInYear, uint64 allowed)
        private
        view
        returns (uint64 maxPayable, uint64 patientShare, uint64 deductiblePart)
    {
        uint64 deductibleLeft = p.deductible - deductibleMet;
        deductiblePart = allowed < deductibleLeft ? allowed : deductibleLeft;
        uint64 rest = allowed - deductiblePart;
        uint64 insurerShare = rest - uint64((uint256(rest) * p.coinsuranceBps) / BPS);
        uint64 annualLeft = p.annualLimit - paidInYear;
        maxPayable = insurerShare;
        if (maxPayable > p.perClaimLimit) maxPayable = p.perClaimLimit;
        if (maxPayable > annualLeft) maxPayable = annualLeft;
        patientShare = allowed - maxPayable;
    }

    /// @dev The member's coverage year now; when it is a new one, the totals of the last are kept
    /// in `_pastYears` (so reviews of its claims stay exact) and the running totals start at zero.
    function _rollYear(uint256 planId, address patient, Member storage m) private returns (uint32) {
        uint16 year = uint16((block.timestamp - m.yearOrigin) / 365 days);
        uint16 last = m.year;
        if (year != last) {
            uint64 deductibleMet = m.deductibleMet;
            uint64 paidInYear = m.paidInYear;
            if (deductibleMet != 0 || paidInYear != 0) {
                _pastYears[planId][patient][last] = YearTotals(deductibleMet, paidInYear);
            }
            m.year = year;
            m.deductibleMet = 0;
            m.paidInYear = 0;
        }
        return year;
    }

    /// @dev The totals of coverage year `year` (the member's latest or an earlier one).
    function _totals(uint256 planId, address patient, uint32 year)
        private
        view
        returns (uint64 deductibleMet, uint64 paidInYear)
    {
        Member storage m = _members[planId][patient];
        if (year == m.year) return (m.deductibleMet, m.paidInYear);
        YearTotals storage t = _pastYears[planId][patient][year];
        return (t.deductibleMet, t.paidInYear);
    }

    function _setTotals(uint256 planId, address patient, uint32 year, uint64 deductibleMet, uint64 paidInYear)
        private
    {
        Member storage m = _members[planId][patient];
        if (year == m.year) {
            m.deductibleMet = deductibleMet;
            m.paidInYear = paidInYear;
        } else {
            _pastYears[planId][patient][year] = YearTotals(deductibleMet, paidInYear);
        }
    }

    /// @dev Gives back to a claim's year what the claim no longer takes.
    function _giveBack(uint256 planId, address patient, uint32 year, uint64 deductiblePart, uint64 payableAmount)
        private
    {
        (uint64 deductibleMet, uint64 paidInYear) = _totals(planId, patient, year);
        _setTotals(planId, patient, year, deductibleMet - deductiblePart, paidInYear - payableAmount);
    }

    /// @dev The member's enrolment, active now; returns the current period's start.
    function _activeEnrolment(uint256 planId, address patient) private view returns (uint40 start) {
        Member storage m = _members[planId][patient];
        uint40 end = m.end;
        if (end == 0) revert ClaimsNotEnrolled(planId, patient);
        start = m.yearOrigin + m.startOffset;
        if (block.timestamp < start || block.timestamp > end) revert ClaimsCoverageExpired(planId, patient, end);
    }

    /// @dev A renewal: the enrolment has ended, and the new period starts after it (no overlap).
    function _checkRenewal(uint256 planId, address patient, Member storage m, uint40 start, uint40 end) private view {
        uint40 previousEnd = m.end;
        if (block.timestamp <= previousEnd) revert ClaimsAlreadyEnrolled(planId, patient, previousEnd);
        if (start <= previousEnd) revert ClaimsEnrolmentOverlap(planId, patient, previousEnd, start);
        // Cannot underflow: start > previousEnd > yearOrigin.
        if (start - m.yearOrigin > type(uint32).max) revert ClaimsInvalidEnrolment(start, end);
    }

    /// @dev Checks the patient's EIP-712 Enrol signature and uses up its nonce.
    function _useEnrolSignature(
        uint256 planId,
        address patient,
        uint40 start,
        uint40 end,
        uint256 deadline,
        bytes calldata signature
    ) private {
        if (block.timestamp > deadline) revert ClaimsSignatureExpired(deadline);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(ENROL_TYPEHASH, planId, patient, start, end, nonces(patient), deadline))
        );
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError || signer != patient || patient == address(0)) {
            revert ClaimsInvalidSignature(patient);
        }
        _useNonce(patient);
    }

    function _reviewable(ClaimRecord calldata r)
        private
        view
        returns (bytes32 claimId, ClaimState storage c, PlanState storage p)
    {
        (claimId, c) = _claim(r);
        p = _plans[r.planId - 1];
        if (msg.sender != p.insurer) revert ClaimsNotPlanInsurer(r.planId, msg.sender);
        if (c.status != ClaimStatus.Pended && c.status != ClaimStatus.Appealed) {
            revert ClaimsInvalidTransition(claimId, c.status);
        }
    }

    function _plan(uint256 planId) private view returns (PlanState storage) {
        if (planId == 0 || planId > _plans.length) revert ClaimsUnknownPlan(planId);
        return _plans[planId - 1];
    }

    function _claim(ClaimRecord calldata r) private view returns (bytes32 claimId, ClaimState storage c) {
        claimId = ClaimIds.idCalldata(r);
        c = _claims[claimId];
        if (c.status == ClaimStatus.None) revert ClaimsUnknownClaim(claimId);
    }

    // ─── Views ──────────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IClaimsProcessor
    function plan(uint256 planId) external view returns (Plan memory) {
        PlanState storage p = _plan(planId);
        return Plan({
            insurer: p.insurer,
            pool: p.pool,
            terms: PlanTerms({
                coveredRoot: p.coveredRoot,
                deductible: p.deductible,
                coinsuranceBps: p.coinsuranceBps,
                perClaimLimit: p.perClaimLimit,
                annualLimit: p.annualLimit,
                autoPayCeiling: p.autoPayCeiling
            }),
            reserved: p.reserved
        });
    }

    /// @inheritdoc IClaimsProcessor
    function enrolment(uint256 planId, address patient) external view returns (Enrolment memory) {
        Member storage m = _members[planId][patient];
        return Enrolment({
            start: m.end == 0 ? 0 : m.yearOrigin + m.startOffset,
            end: m.end,
            year: m.year,
            deductibleMet: m.deductibleMet,
            paidInYear: m.paidInYear,
            yearOrigin: m.yearOrigin
        });
    }

    /// @inheritdoc IClaimsProcessor
    function yearUsage(uint256 planId, address patient, uint32 year)
        external
        view
        returns (uint64 deductibleMet, uint64 paidInYear)
    {
        if (year > _members[planId][patient].year) return (0, 0);
        return _totals(planId, patient, year);
    }

    /// @inheritdoc IClaimsProcessor
    function claim(bytes32 claimId) external view returns (ClaimState memory) {
        return _claims[claimId];
    }

    /// @inheritdoc IClaimsProcessor
    function claimIdOf(ClaimRecord calldata record) external pure returns (bytes32) {
        return ClaimIds.idCalldata(record);
    }

    /// @inheritdoc IClaimsProcessor
    function encounterOf(IEHRIndex.RecordHeader[] calldata versions) external pure returns (bytes32 encounterId) {
        for (uint256 i = 0; i < versions.length; ++i) {
            bytes32 id = versions[i].id();
            if (i > 0 && id != versions[i - 1].previous) revert ClaimsMissingVersion(encounterId, versions[i - 1].previous);
            encounterId = id;
        }
        if (versions.length == 0) revert ClaimsNoEvidence();
        bytes32 last = versions[versions.length - 1].previous;
        if (last != bytes32(0)) revert ClaimsMissingVersion(encounterId, last);
    }

    /// @inheritdoc IClaimsProcessor
    function isEvidenceUsed(bytes32 encounterOrDispenseId) external view returns (bool) {
        return _evidenceUsed[encounterOrDispenseId];
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

// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IEHRIndex} from "../../interfaces/IEHRIndex.sol";
import {IConsentManager} from "../../interfaces/IConsentManager.sol";
import {IInstitutionRegistry} from "../../interfaces/IInstitutionRegistry.sol";
import {Actions} from "../libraries/Actions.sol";
import {KindMasks} from "../libraries/KindMasks.sol";
import {Purposes} from "../libraries/Purposes.sol";
import {RecordIds} from "../libraries/RecordIds.sol";

/// @title EHRIndex
/// @notice Index of encrypted off-chain health records with consent-checked, audited access.
/// See {IEHRIndex}.
contract EHRIndex is IEHRIndex {
    using RecordIds for RecordHeader;

    // ─── Constants ──────────────────────────────────────────────────────────────────────────

    // CIDv1 prefix bytes: version 1, codec raw (0x55) or dag-pb (0x70), sha2-256 (0x12) of 32 bytes.
    uint256 private constant CID_LENGTH = 36;

    // ─── Storage ────────────────────────────────────────────────────────────────────────────

    IInstitutionRegistry private immutable REGISTRY;
    IConsentManager private immutable CONSENT;

    mapping(bytes32 recordId => RecordState) private _records;
    Batch[] private _batches; // id = index + 1

    // ─── Constructor ────────────────────────────────────────────────────────────────────────

    /// @param registry The consortium registry.
    /// @param consent The consent manager.
    constructor(IInstitutionRegistry registry, IConsentManager consent) {
        if (address(registry) == address(0) || address(consent) == address(0)) revert EHRZeroAddress();
        REGISTRY = registry;
        CONSENT = consent;
    }

    // ─── Writes ─────────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IEHRIndex
    function anchor(RecordHeader calldata header, bytes calldata cid) external returns (bytes32 recordId) {
        if (header.previous != bytes32(0)) revert EHRInvalidAmendment(header.previous);
        recordId = _anchor(header, cid);
    }

    /// @inheritdoc IEHRIndex
    function amend(RecordHeader calldata previous, RecordHeader calldata next, bytes calldata cid)
        external
        returns (bytes32 recordId)
    {
        bytes32 previousId = previous.id();
        RecordState storage old = _records[previousId];
        if (old.status == RecordStatus.None) revert EHRUnknownRecord(previousId);
        if (old.status != RecordStatus.Current) revert EHRRecordNotCurrent(previousId, old.status);
        if (next.previous != previousId || next.patient != previous.patient || next.custodian != previous.custodian) {
            revert EHRInvalidAmendment(previousId);
        }
        recordId = _anchor(next, cid);
        old.status = RecordStatus.Superseded;
        emit RecordAmended(previousId, recordId, msg.sender);
    }

    /// @inheritdoc IEHRIndex
    function markEnteredInError(bytes32 recordId, uint16 reason) external {
        RecordState storage r = _existing(recordId);
        if (r.custodian != msg.sender) revert EHRCustodianMismatch(r.custodian, msg.sender);
        // A suspended or revoked custodian keeps its records but may no longer change them.
        if (!REGISTRY.isActiveAny(msg.sender, KindMasks.CUSTODIANS)) revert EHRNotCustodian(msg.sender);
        if (r.status != RecordStatus.Current) revert EHRRecordNotCurrent(recordId, r.status);
        if (reason == 0) revert EHRInvalidReason();
        r.status = RecordStatus.EnteredInError;
        emit RecordEnteredInError(recordId, msg.sender, reason);
    }

    /// @inheritdoc IEHRIndex
    function accessRecord(RecordHeader calldata header, uint8 purpose) external returns (bytes32 recordId) {
        recordId = header.id();
        RecordState storage r = _existing(recordId);
        if (r.status == RecordStatus.EnteredInError) revert EHRRecordEnteredInError(recordId);
        _audit(recordId, header, purpose);
    }

    /// @inheritdoc IEHRIndex
    function tryAccessRecord(RecordHeader calldata header, uint8 purpose) external returns (bool granted) {
        bytes32 recordId = header.id();
        RecordState storage r = _existing(recordId);
        if (r.status == RecordStatus.EnteredInError) revert EHRRecordEnteredInError(recordId);
        granted = _tryAudit(recordId, header, purpose);
    }

    /// @inheritdoc IEHRIndex
    function tryAccessBatchedRecord(
        RecordHeader calldata header,
        uint256 batchId,
        bytes32[] calldata proof,
        uint8 purpose
    ) external returns (bool granted) {
        bytes32 recordId = _provenInBatch(header, batchId, proof);
        if (_records[recordId].status == RecordStatus.EnteredInError) revert EHRRecordEnteredInError(recordId);
        _checkTreatment(header);
        granted = _tryAudit(recordId, header, purpose);
    }

    /// @inheritdoc IEHRIndex
    function anchorBatch(bytes32 root, uint32 count, bytes calldata cid) external returns (uint256 batchId) {
        if (!REGISTRY.isActiveAny(msg.sender, KindMasks.CUSTODIANS)) revert EHRNotCustodian(msg.sender);
        if (root == bytes32(0)) revert EHRInvalidDigest();
        if (count == 0) revert EHREmptyBatch();
        _checkCid(cid);
        _batches.push(Batch({custodian: msg.sender, anchoredAt: uint40(block.timestamp), count: count, root: root}));
        batchId = _batches.length;
        emit BatchAnchored(batchId, msg.sender, root, count, cid);
    }

    /// @inheritdoc IEHRIndex
    function accessBatchedRecord(RecordHeader calldata header, uint256 batchId, bytes32[] calldata proof, uint8 purpose)
        external
        returns (bytes32 recordId)
    {
        recordId = _provenInBatch(header, batchId, proof);
        if (_records[recordId].status == RecordStatus.EnteredInError) revert EHRRecordEnteredInError(recordId);
        // A batch anchor cannot check each record's treatment relationship; it is checked here.
        _checkTreatment(header);
        _audit(recordId, header, purpose);
    }

    /// @inheritdoc IEHRIndex
    function markBatchedEnteredInError(
        RecordHeader calldata header,
        uint256 batchId,
        bytes32[] calldata proof,
        uint16 reason
    ) external {
        if (header.custodian != msg.sender) revert EHRCustodianMismatch(header.custodian, msg.sender);
        if (!REGISTRY.isActiveAny(msg.sender, KindMasks.CUSTODIANS)) revert EHRNotCustodian(msg.sender);
        bytes32 recordId = _provenInBatch(header, batchId, proof);
        RecordState storage r = _records[recordId];
        // A batched record has no state until it is retracted: any state means it already was.
        if (r.status != RecordStatus.None) revert EHRRecordNotCurrent(recordId, r.status);
        if (reason == 0) revert EHRInvalidReason();
        r.custodian = msg.sender;
        r.anchoredAt = _batches[batchId - 1].anchoredAt;
        r.status = RecordStatus.EnteredInError;
        emit RecordEnteredInError(recordId, msg.sender, reason);
    }

    // ─── Internal logic ─────────────────────────────────────────────────────────────────────

    function _anchor(RecordHeader calldata h, bytes calldata cid) private returns (bytes32 recordId) {
        if (h.custodian != msg.sender) revert EHRCustodianMismatch(h.custodian, msg.sender);
        if (!REGISTRY.isActiveAny(msg.sender, KindMasks.CUSTODIANS)) revert EHRNotCustodian(msg.sender);
        if (h.patient == address(0) || h.patient == msg.sender) revert EHRInvalidPatient(h.patient);
        if (h.fingerprint == bytes32(0) || h.category == bytes32(0)) revert EHRInvalidDigest();
        _checkCid(cid);
        _checkTreatment(h);
        recordId = h.id();
        RecordState storage r = _records[recordId];
        if (r.status != RecordStatus.None) revert EHRRecordExists(recordId);
        r.custodian = msg.sender;
        r.anchoredAt = uint40(block.timestamp);
        r.status = RecordStatus.Current;
        emit RecordAnchored(recordId, h.patient, msg.sender, h.fingerprint, h.category, h.previous, cid);
    }

    function _checkTreatment(RecordHeader calldata h) private view {
        (bool allowed,,) =
            CONSENT.checkAccess(h.patient, h.custodian, bytes32(0), h.category, Actions.APPEND, Purposes.TREAT);
        if (!allowed) revert EHRNoTreatmentRelationship(h.patient, h.custodian, h.category);
    }

    function _audit(bytes32 recordId, RecordHeader calldata h, uint8 purpose) private {
        (bool allowed, bytes32 authorization, bool breakGlass) = _decide(recordId, h, purpose);
        if (!allowed) revert EHRAccessDenied(recordId, msg.sender, purpose);
        emit RecordAccessed(recordId, msg.sender, h.patient, purpose, authorization, breakGlass);
    }

    /// @dev {_audit} that records a refusal instead of reverting it.
    function _tryAudit(bytes32 recordId, RecordHeader calldata h, uint8 purpose) private returns (bool allowed) {
        bytes32 authorization;
        bool breakGlass;
        (allowed, authorization, breakGlass) = _decide(recordId, h, purpose);
        if (allowed) emit RecordAccessed(recordId, msg.sender, h.patient, purpose, authorization, breakGlass);
        else emit AccessDenied(recordId, msg.sender, h.patient, purpose);
    }

    /// @dev Whether the caller may read the record now, and under which grant or session.
    function _decide(bytes32 recordId, RecordHeader calldata h, uint8 purpose)
        private
        view
        returns (bool allowed, bytes32 authorization, bool breakGlass)
    {
        // Checked for every caller: the patient's and custodian's own reads skip the consent check,
        // which is where an unknown purpose would otherwise be refused.
        if (!Purposes.isKnown(purpose)) revert EHRUnknownPurpose(purpose);
        if (msg.sender == h.patient || msg.sender == h.custodian) return (true, bytes32(0), false);
        return CONSENT.checkAccess(h.patient, msg.sender, recordId, h.category, Actions.READ, purpose);
    }

    function _checkCid(bytes calldata cid) private pure {
        bool ok = cid.length == CID_LENGTH && cid[0] == 0x01 && (cid[1] == 0x55 || cid[1] == 0x70) && cid[2] == 0x12
            && cid[3] == 0x20;
        if (!ok) revert EHRInvalidCid(cid);
    }

    function _existing(bytes32 recordId) private view returns (RecordState storage r) {
        r = _records[recordId];
        if (r.status == RecordStatus.None) revert EHRUnknownRecord(recordId);
    }

    function _provenInBatch(RecordHeader calldata header, uint256 batchId, bytes32[] calldata proof)
        private
        view
        returns (bytes32 recordId)
    {
        Batch storage b = _batch(batchId);
        recordId = header.id();
        if (header.custodian != b.custodian || !MerkleProof.verifyCalldata(proof, b.root, RecordIds.leaf(recordId))) {
            revert EHRInvalidProof(recordId, batchId);
        }
    }

    function _batch(uint256 batchId) private view returns (Batch storage) {
        if (batchId == 0 || batchId > _batches.length) revert EHRUnknownBatch(batchId);
        return _batches[batchId - 1];
    }

    // ─── Views ──────────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IEHRIndex
    function recordIdOf(RecordHeader calldata header) external pure returns (bytes32) {
        return header.id();
    }

    /// @inheritdoc IEHRIndex
    function record(bytes32 recordId) external view returns (RecordState memory) {
        return _records[recordId];
    }

    /// @inheritdoc IEHRIndex
    function batch(uint256 batchId) external view returns (Batch memory) {
        return _batch(batchId);
    }

    /// @inheritdoc IEHRIndex
    function inBatch(RecordHeader calldata header, uint256 batchId, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        Batch storage b = _batch(batchId);
        return header.custodian == b.custodian
            && MerkleProof.verifyCalldata(proof, b.root, RecordIds.leaf(header.id()));
    }

    /// @inheritdoc IEHRIndex
    function isValidRecord(RecordHeader calldata header) external view returns (bool) {
        RecordStatus status = _records[header.id()].status;
        return status == RecordStatus.Current || status == RecordStatus.Superseded;
    }
}

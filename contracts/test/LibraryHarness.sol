// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClaimsProcessor} from "../../interfaces/IClaimsProcessor.sol";
import {IDrugProvenance} from "../../interfaces/IDrugProvenance.sol";
import {IEHRIndex} from "../../interfaces/IEHRIndex.sol";
import {Actions} from "../libraries/Actions.sol";
import {ClaimIds} from "../libraries/ClaimIds.sol";
import {DrugIds} from "../libraries/DrugIds.sol";
import {KindMasks} from "../libraries/KindMasks.sol";
import {Purposes} from "../libraries/Purposes.sol";
import {RecordIds} from "../libraries/RecordIds.sol";

/// @title LibraryHarness
/// @notice Test-only: exposes the internal functions and constants of contracts/libraries so that
/// tests can check them against the Python SDK's formulas. Holds no state; the SDK never deploys it.
contract LibraryHarness {
    // ─── RecordIds ──────────────────────────────────────────────────────────────────────────

    /// @notice {RecordIds-id}.
    function recordId(IEHRIndex.RecordHeader calldata header) external pure returns (bytes32) {
        return RecordIds.id(header);
    }

    /// @notice {RecordIds-leaf}.
    function recordLeaf(bytes32 id) external pure returns (bytes32) {
        return RecordIds.leaf(id);
    }

    // ─── DrugIds ────────────────────────────────────────────────────────────────────────────

    /// @notice {DrugIds-batchId}.
    function batchId(uint64 gtin, bytes20 lot) external pure returns (bytes32) {
        return DrugIds.batchId(gtin, lot);
    }

    /// @notice {DrugIds-patientRef}.
    function patientRef(address patient, bytes32 salt) external pure returns (bytes32) {
        return DrugIds.patientRef(patient, salt);
    }

    /// @notice {DrugIds-dispenseId}.
    function dispenseId(
        bytes32 batch,
        address dispenser,
        bytes32 ref,
        uint64 quantity,
        uint64 nonce,
        uint256 dispensedAt
    ) external pure returns (bytes32) {
        return DrugIds.dispenseId(batch, dispenser, ref, quantity, nonce, dispensedAt);
    }

    /// @notice {DrugIds-shipmentId} (of a copy in memory) and {DrugIds-shipmentIdCalldata}.
    function shipmentIds(IDrugProvenance.ShipmentRef calldata ref)
        external
        pure
        returns (bytes32 fromMemory, bytes32 fromCalldata)
    {
        return (DrugIds.shipmentId(ref), DrugIds.shipmentIdCalldata(ref));
    }

    /// @notice {DrugIds-serialLeaf}.
    function serialLeaf(string calldata serial) external pure returns (bytes32) {
        return DrugIds.serialLeaf(serial);
    }

    // ─── ClaimIds ───────────────────────────────────────────────────────────────────────────

    /// @notice {ClaimIds-id} (of a copy in memory) and {ClaimIds-idCalldata}.
    function claimIds(IClaimsProcessor.ClaimRecord calldata record)
        external
        pure
        returns (bytes32 fromMemory, bytes32 fromCalldata)
    {
        return (ClaimIds.id(record), ClaimIds.idCalldata(record));
    }

    /// @notice {ClaimIds-coverageLeaf}.
    function coverageLeaf(bytes32 commitment, uint64 allowedAmount, uint64 gtin) external pure returns (bytes32) {
        return ClaimIds.coverageLeaf(commitment, allowedAmount, gtin);
    }

    // ─── Codes ──────────────────────────────────────────────────────────────────────────────

    /// @notice The {Actions} codes.
    function actions() external pure returns (uint8 read, uint8 append, uint8 share, uint8 all) {
        return (Actions.READ, Actions.APPEND, Actions.SHARE, Actions.ALL);
    }

    /// @notice The {Purposes} codes.
    function purposes()
        external
        pure
        returns (uint8 treat, uint8 hpaymt, uint8 hresch, uint8 etreat, uint8 all)
    {
        return (Purposes.TREAT, Purposes.HPAYMT, Purposes.HRESCH, Purposes.ETREAT, Purposes.ALL);
    }

    /// @notice {Purposes-isKnown} and {Purposes-bit}.
    function purpose(uint8 index) external pure returns (bool known, uint8 bit) {
        return (Purposes.isKnown(index), Purposes.bit(index));
    }

    /// @notice The {KindMasks} groups.
    function kindGroups()
        external
        pure
        returns (
            uint256 careProviders,
            uint256 custodians,
            uint256 billingProviders,
            uint256 dispensers,
            uint256 recipients,
            uint256 holders
        )
    {
        return (
            KindMasks.CARE_PROVIDERS,
            KindMasks.CUSTODIANS,
            KindMasks.BILLING_PROVIDERS,
            KindMasks.DISPENSERS,
            KindMasks.RECIPIENTS,
            KindMasks.HOLDERS
        );
    }
}

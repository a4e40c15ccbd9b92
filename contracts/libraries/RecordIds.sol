// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IEHRIndex} from "../../interfaces/IEHRIndex.sol";

/// @title RecordIds
/// @notice The identity of a health record, as EHRIndex anchors it and ClaimsProcessor proves it.
/// The SDK mirrors these formulas (`medchain.ehr.RecordHeader.record_id`, `medchain.merkle.leaf`).
library RecordIds {
    /// @notice A record's id: keccak256 of the ABI encoding of its header.
    /// @param header The record's header (patient, custodian, fingerprint, category, previous).
    /// @return The record id.
    function id(IEHRIndex.RecordHeader calldata header) internal pure returns (bytes32) {
        return keccak256(abi.encode(header));
    }

    /// @notice A record's leaf in a batch's Merkle tree: keccak256(bytes.concat(recordId)).
    /// @dev Double hashing keeps a leaf from ever equalling an inner node (second-preimage safety).
    /// @param recordId The record's id ({id}).
    /// @return The leaf that OpenZeppelin's MerkleProof verifies against the batch root.
    function leaf(bytes32 recordId) internal pure returns (bytes32) {
        return keccak256(bytes.concat(recordId));
    }
}

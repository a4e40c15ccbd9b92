// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClaimsProcessor} from "../../interfaces/IClaimsProcessor.sol";

/// @title ClaimIds
/// @notice The identities ClaimsProcessor gives claims and covered services. The SDK reads claim ids
/// from the {IClaimsProcessor.ClaimSubmitted} event and builds coverage leaves with
/// `medchain.claims.CoveredService.leaf_id` (hashed once more by `medchain.merkle.leaf`).
library ClaimIds {
    /// @notice A claim's id: keccak256 of the ABI encoding of its {IClaimsProcessor.ClaimRecord}.
    /// @param record The claim's record, in memory (as `submitClaim` builds it).
    /// @return The claim id.
    function id(IClaimsProcessor.ClaimRecord memory record) internal pure returns (bytes32) {
        return keccak256(abi.encode(record));
    }

    /// @notice {id} of a record in calldata (as the review and payment calls take it back), without
    /// copying it to memory.
    /// @param record The claim's record.
    /// @return The claim id.
    function idCalldata(IClaimsProcessor.ClaimRecord calldata record) internal pure returns (bytes32) {
        return keccak256(abi.encode(record));
    }

    /// @notice A covered service's leaf in a plan's coverage tree:
    /// keccak256(bytes.concat(keccak256(abi.encode(serviceCommitment, allowedAmount, gtin)))).
    /// @dev Double hashing keeps a leaf from ever equalling an inner node (second-preimage safety).
    /// @param commitment keccak256(abi.encode(billingCode, salt)).
    /// @param allowedAmount The plan's allowed amount for the service.
    /// @param gtin The product of a drug service, or 0.
    /// @return The leaf that OpenZeppelin's MerkleProof verifies against the plan's covered root.
    function coverageLeaf(bytes32 commitment, uint64 allowedAmount, uint64 gtin) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(commitment, allowedAmount, gtin))));
    }
}

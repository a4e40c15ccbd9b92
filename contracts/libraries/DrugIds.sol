// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDrugProvenance} from "../../interfaces/IDrugProvenance.sol";

/// @title DrugIds
/// @notice The identities of batches, shipments, dispenses and packs, as DrugProvenance records them
/// and ClaimsProcessor recomputes them from a drug claim. The SDK mirrors them in `medchain.drug`,
/// `medchain.claims.DispenseRef.dispense_id` and `medchain.types.patient_ref`.
library DrugIds {
    /// @notice A batch's id: keccak256(abi.encode(gtin, lot)).
    /// @param gtin The product's GTIN.
    /// @param lot The lot number (ASCII, zero-padded).
    /// @return The batch id.
    function batchId(uint64 gtin, bytes20 lot) internal pure returns (bytes32) {
        return keccak256(abi.encode(gtin, lot));
    }

    /// @notice The salted commitment a dispense names instead of the patient:
    /// keccak256(abi.encode(patient, salt)).
    /// @param patient The patient's address.
    /// @param salt 32 random bytes the dispenser drew and gave the patient.
    /// @return The patient reference.
    function patientRef(address patient, bytes32 salt) internal pure returns (bytes32) {
        return keccak256(abi.encode(patient, salt));
    }

    /// @notice A dispense's id: keccak256(abi.encode(batchId, dispenser, patientRef, quantity, nonce,
    /// dispensedAt)).
    /// @param batch The batch's id ({batchId}).
    /// @param dispenser Who dispensed.
    /// @param ref The patient reference ({patientRef}).
    /// @param quantity Units dispensed.
    /// @param nonce The dispenser's available units of the batch before the dispense.
    /// @param dispensedAt The block time of the dispense.
    /// @return The dispense id.
    function dispenseId(
        bytes32 batch,
        address dispenser,
        bytes32 ref,
        uint64 quantity,
        uint64 nonce,
        uint256 dispensedAt
    ) internal pure returns (bytes32) {
        return keccak256(abi.encode(batch, dispenser, ref, quantity, nonce, dispensedAt));
    }

    /// @notice A shipment's id: keccak256 of the ABI encoding of its {IDrugProvenance.ShipmentRef}.
    /// @param ref The shipment's identity, in memory (as `ship` builds it).
    /// @return The shipment id.
    function shipmentId(IDrugProvenance.ShipmentRef memory ref) internal pure returns (bytes32) {
        return keccak256(abi.encode(ref));
    }

    /// @notice {shipmentId} of a reference in calldata (as `receiveShipment` and `cancelShipment`
    /// take it back), without copying it to memory.
    /// @param ref The shipment's identity.
    /// @return The shipment id.
    function shipmentIdCalldata(IDrugProvenance.ShipmentRef calldata ref) internal pure returns (bytes32) {
        return keccak256(abi.encode(ref));
    }

    /// @notice A pack's leaf in its batch's serials tree: keccak256(bytes.concat(keccak256(abi.encode(serial)))).
    /// @dev Double hashing keeps a leaf from ever equalling an inner node (second-preimage safety).
    /// @param serial The pack's serial number (GS1 AI 21).
    /// @return The leaf that OpenZeppelin's MerkleProof verifies against the serials root.
    function serialLeaf(string calldata serial) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(serial))));
    }
}

// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IDrugProvenance} from "../../interfaces/IDrugProvenance.sol";
import {IInstitutionRegistry} from "../../interfaces/IInstitutionRegistry.sol";
import {DrugIds} from "../libraries/DrugIds.sol";
import {KindMasks} from "../libraries/KindMasks.sol";

/// @title DrugProvenance
/// @notice GS1-identified batches, two-step custody, dispensing and recall. See {IDrugProvenance}.
/// @dev A shipment costs one storage slot: its id hashes its identity ({ShipmentRef}), which the
/// {Shipped} event carries and {receiveShipment} takes back as calldata.
contract DrugProvenance is IDrugProvenance {
    // ─── Constants ──────────────────────────────────────────────────────────────────────────

    uint64 private constant MAX_GTIN = 99_999_999_999_999; // the largest 14-digit number

    // ─── Storage ────────────────────────────────────────────────────────────────────────────

    IInstitutionRegistry private immutable REGISTRY;

    mapping(uint64 gtin => address manufacturer) private _products;
    mapping(bytes32 batchId => Batch) private _batches;
    mapping(bytes32 batchId => mapping(address holder => Holding)) private _holdings;
    mapping(bytes32 shipmentId => ShipmentStatus) private _shipments;
    mapping(bytes32 dispenseId => bool) private _dispensed;
    mapping(bytes32 batchId => mapping(bytes32 serialLeaf => bytes32 dispenseId)) private _serialDispenses;

    // ─── Constructor ────────────────────────────────────────────────────────────────────────

    constructor(IInstitutionRegistry registry) {
        if (address(registry) == address(0)) revert DrugZeroAddress();
        REGISTRY = registry;
    }

    // ─── Products and batches ───────────────────────────────────────────────────────────────

    /// @inheritdoc IDrugProvenance
    function registerProduct(uint64 gtin) external {
        if (!REGISTRY.isActive(msg.sender, IInstitutionRegistry.Kind.Manufacturer)) {
            revert DrugNotManufacturer(msg.sender);
        }
        if (!_validGtin(gtin)) revert DrugInvalidGtin(gtin);
        address existing = _products[gtin];
        if (existing != address(0)) revert DrugProductExists(gtin, existing);
        _products[gtin] = msg.sender;
        emit ProductRegistered(gtin, msg.sender);
    }

    /// @inheritdoc IDrugProvenance
    function commission(
        uint64 gtin,
        bytes20 lot,
        uint40 manufacturedAt,
        uint40 expiry,
        uint64 quantity,
        bytes32 certificateDigest,
        bytes32 serialsRoot
    ) external returns (bytes32 batchId) {
        address maker = _products[gtin];
        if (maker == address(0)) revert DrugUnknownProduct(gtin);
        if (maker != msg.sender || !REGISTRY.isActive(msg.sender, IInstitutionRegistry.Kind.Manufacturer)) {
            revert DrugNotManufacturer(msg.sender);
        }
        if (lot == bytes20(0) || quantity == 0 || expiry <= manufacturedAt || certificateDigest == bytes32(0)) {
            revert DrugInvalidBatch();
        }
        batchId = DrugIds.batchId(gtin, lot);
        if (_batches[batchId].status != BatchStatus.None) revert DrugBatchExists(batchId);
        _batches[batchId] = Batch({
            manufacturer: msg.sender,
            manufacturedAt: manufacturedAt,
            expiry: expiry,
            status: BatchStatus.Active,
            quarantinedByRegulator: false,
            quantity: quantity,
            dispensed: 0,
            destroyed: 0,
            certificateDigest: certificateDigest,
            serialsRoot: serialsRoot
        });
        _holdings[batchId][msg.sender].available = quantity;
        emit BatchCommissioned(
            batchId, gtin, msg.sender, lot, manufacturedAt, expiry, quantity, certificateDigest, serialsRoot
        );
    }

    // ─── Custody ────────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IDrugProvenance
    function ship(bytes32 batchId, address to, uint64 quantity) external returns (bytes32 shipmentId) {
        Batch storage b = _requireActive(batchId);
        uint40 expiry = b.expiry;
        if (block.timestamp >= expiry) revert DrugBatchExpired(batchId, expiry);
        if (!REGISTRY.isActiveAny(msg.sender, KindMasks.HOLDERS)) revert DrugHolderNotActive(msg.sender);
        if (to == msg.sender || !REGISTRY.isActiveAny(to, KindMasks.RECIPIENTS)) revert DrugInvalidRecipient(to);
        Holding storage h = _holdings[batchId][msg.sender];
        uint64 available = h.available;
        if (quantity == 0 || quantity > available) {
            revert DrugInsufficientHolding(batchId, msg.sender, available, quantity);
        }
        ShipmentRef memory ref = ShipmentRef({
            batchId: batchId,
            from: msg.sender,
            to: to,
            quantity: quantity,
            nonce: available,
            shippedAt: uint40(block.timestamp)
        });
        shipmentId = DrugIds.shipmentId(ref);
        if (_shipments[shipmentId] != ShipmentStatus.None) revert DrugShipmentExists(shipmentId);
        // Cannot underflow: quantity <= available was checked above.
        unchecked {
            h.available = available - quantity;
        }
        h.inTransit += quantity;
        _shipments[shipmentId] = ShipmentStatus.Pending;
        emit Shipped(shipmentId, batchId, msg.sender, ref);
    }

    /// @inheritdoc IDrugProvenance
    function receiveShipment(ShipmentRef calldata ref) external {
        bytes32 shipmentId = _pendingShipment(ref);
        if (msg.sender != ref.to) revert DrugNotParty(shipmentId, msg.sender);
        _requireActive(ref.batchId);
        // No expiry check: units in transit are received where they physically are (see the interface).
        if (!REGISTRY.isActiveAny(msg.sender, KindMasks.RECIPIENTS)) revert DrugHolderNotActive(msg.sender);
        _shipments[shipmentId] = ShipmentStatus.Received;
        _holdings[ref.batchId][ref.from].inTransit -= ref.quantity;
        _holdings[ref.batchId][ref.to].available += ref.quantity;
        emit Received(shipmentId, ref.batchId, ref.to, ref.quantity);
    }

    /// @inheritdoc IDrugProvenance
    function cancelShipment(ShipmentRef calldata ref) external {
        bytes32 shipmentId = _pendingShipment(ref);
        if (msg.sender != ref.from) revert DrugNotParty(shipmentId, msg.sender);
        _shipments[shipmentId] = ShipmentStatus.Cancelled;
        Holding storage h = _holdings[ref.batchId][ref.from];
        h.inTransit -= ref.quantity;
        h.available += ref.quantity;
        emit ShipmentCancelled(shipmentId, ref.batchId, ref.from, ref.quantity);
    }

    /// @inheritdoc IDrugProvenance
    function dispense(bytes32 batchId, uint64 quantity, bytes32 patientRef) external returns (bytes32 dispenseId) {
        Batch storage b = _requireActive(batchId);
        dispenseId = _dispense(batchId, b, quantity, patientRef);
    }

    /// @inheritdoc IDrugProvenance
    function dispenseSerial(bytes32 batchId, string calldata serial, bytes32[] calldata proof, bytes32 patientRef)
        external
        returns (bytes32 dispenseId)
    {
        Batch storage b = _requireActive(batchId);
        bytes32 root = b.serialsRoot;
        if (root == bytes32(0)) revert DrugNoSerials(batchId);
        bytes32 leaf = DrugIds.serialLeaf(serial);
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert DrugUnknownSerial(batchId, leaf);
        bytes32 earlier = _serialDispenses[batchId][leaf];
        if (earlier != bytes32(0)) revert DrugSerialAlreadyDispensed(batchId, leaf, earlier);
        dispenseId = _dispense(batchId, b, 1, patientRef);
        _serialDispenses[batchId][leaf] = dispenseId;
        emit SerialDispensed(batchId, leaf, dispenseId);
    }

    // ─── Status ─────────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IDrugProvenance
    function quarantine(bytes32 batchId, uint16 reason) external {
        (Batch storage b, bool byRegulator) = _authorised(batchId);
        BatchStatus status = b.status;
        // A regulator takes over its manufacturer's quarantine, so that the manufacturer cannot lift it.
        bool takeOver = status == BatchStatus.Quarantined && byRegulator && !b.quarantinedByRegulator;
        if (status != BatchStatus.Active && !takeOver) revert DrugInvalidTransition(batchId, status);
        _setStatus(batchId, b, BatchStatus.Quarantined, byRegulator, reason);
    }

    /// @inheritdoc IDrugProvenance
    function release(bytes32 batchId) external {
        (Batch storage b, bool byRegulator) = _authorised(batchId);
        if (b.status != BatchStatus.Quarantined) revert DrugInvalidTransition(batchId, b.status);
        if (b.quarantinedByRegulator && !byRegulator) revert DrugRegulatorQuarantine(batchId, msg.sender);
        _setStatus(batchId, b, BatchStatus.Active, false, 0);
    }

    /// @inheritdoc IDrugProvenance
    function recall(bytes32 batchId, uint16 reason, address[] calldata holders) external {
        (Batch storage b,) = _authorised(batchId);
        if (b.status != BatchStatus.Active && b.status != BatchStatus.Quarantined) {
            revert DrugInvalidTransition(batchId, b.status);
        }
        uint64 listed;
        address previous;
        for (uint256 i = 0; i < holders.length; ++i) {
            address holder = holders[i];
            if (holder <= previous) revert DrugHolderListUnsorted();
            previous = holder;
            Holding storage h = _holdings[batchId][holder];
            listed += h.available + h.inTransit;
            emit HolderAtRecall(batchId, holder, h.available, h.inTransit);
        }
        uint64 circulating = b.quantity - b.dispensed - b.destroyed;
        if (listed != circulating) revert DrugIncompleteHolderList(circulating, listed);
        _setStatus(batchId, b, BatchStatus.Recalled, false, reason);
    }

    /// @inheritdoc IDrugProvenance
    function destroy(bytes32 batchId, uint64 quantity) external {
        Batch storage b = _existing(batchId);
        if (b.status == BatchStatus.Destroyed) revert DrugInvalidTransition(batchId, b.status);
        Holding storage h = _holdings[batchId][msg.sender];
        uint64 available = h.available;
        if (quantity == 0 || quantity > available) {
            revert DrugInsufficientHolding(batchId, msg.sender, available, quantity);
        }
        // Cannot underflow: quantity <= available was checked above.
        unchecked {
            h.available = available - quantity;
        }
        b.destroyed += quantity;
        emit UnitsDestroyed(batchId, msg.sender, quantity);
        if (b.dispensed + b.destroyed == b.quantity) _setStatus(batchId, b, BatchStatus.Destroyed, false, 0);
    }

    // ─── Internal logic ─────────────────────────────────────────────────────────────────────

    /// @dev `byRegulator` is kept only with Quarantined (callers pass false otherwise).
    function _setStatus(bytes32 batchId, Batch storage b, BatchStatus next, bool byRegulator, uint16 reason)
        private
    {
        BatchStatus previous = b.status;
        b.status = next;
        b.quarantinedByRegulator = byRegulator;
        emit BatchStatusChanged(batchId, previous, next, msg.sender, reason);
    }

    /// @dev The checks and effects every dispense shares (the batch is Active: callers checked).
    function _dispense(bytes32 batchId, Batch storage b, uint64 quantity, bytes32 patientRef)
        private
        returns (bytes32 dispenseId)
    {
        if (!REGISTRY.isActiveAny(msg.sender, KindMasks.DISPENSERS)) revert DrugNotDispenser(msg.sender);
        uint40 expiry = b.expiry;
        if (block.timestamp >= expiry) revert DrugBatchExpired(batchId, expiry);
        if (patientRef == bytes32(0)) revert DrugInvalidPatientRef();
        Holding storage h = _holdings[batchId][msg.sender];
        uint64 available = h.available;
        if (quantity == 0 || quantity > available) {
            revert DrugInsufficientHolding(batchId, msg.sender, available, quantity);
        }
        dispenseId = DrugIds.dispenseId(batchId, msg.sender, patientRef, quantity, available, block.timestamp);
        // A receive or cancellation can restore `available` within the second: one id, one dispense.
        if (_dispensed[dispenseId]) revert DrugDispenseExists(dispenseId);
        // Cannot underflow: quantity <= available was checked above.
        unchecked {
            h.available = available - quantity;
        }
        b.dispensed += quantity;
        _dispensed[dispenseId] = true;
        emit Dispensed(dispenseId, batchId, msg.sender, patientRef, quantity);
    }

    function _existing(bytes32 batchId) private view returns (Batch storage b) {
        b = _batches[batchId];
        if (b.status == BatchStatus.None) revert DrugUnknownBatch(batchId);
    }

    function _requireActive(bytes32 batchId) private view returns (Batch storage b) {
        b = _existing(batchId);
        if (b.status != BatchStatus.Active) revert DrugBatchNotActive(batchId, b.status);
    }

    /// @dev The batch's manufacturer while active as a manufacturer, or an active regulator
    /// (`byRegulator`). One registry call either way.
    function _authorised(bytes32 batchId) private view returns (Batch storage b, bool byRegulator) {
        b = _existing(batchId);
        if (msg.sender == b.manufacturer) {
            if (!REGISTRY.isActive(msg.sender, IInstitutionRegistry.Kind.Manufacturer)) {
                revert DrugNotAuthority(msg.sender);
            }
        } else {
            if (!REGISTRY.isActive(msg.sender, IInstitutionRegistry.Kind.Regulator)) {
                revert DrugNotAuthority(msg.sender);
            }
            byRegulator = true;
        }
    }

    function _pendingShipment(ShipmentRef calldata ref) private view returns (bytes32 shipmentId) {
        shipmentId = DrugIds.shipmentIdCalldata(ref);
        ShipmentStatus status = _shipments[shipmentId];
        if (status == ShipmentStatus.None) revert DrugUnknownShipment(shipmentId);
        if (status != ShipmentStatus.Pending) revert DrugShipmentNotPending(shipmentId, status);
    }

    /// @dev The rule of {IDrugProvenance-registerProduct}: the value of a GTIN's 14-digit form (so
    /// leading zeros are not lost: GTIN-12 012345678905 is 12345678905), not zero, at most 14 digits,
    /// with a right GS1 check digit (mod 10, weights 3,1,3,... from the digit left of the check
    /// digit; leading zeros weigh nothing, so the 8-, 12-, 13- and 14-digit forms agree).
    function _validGtin(uint64 gtin) private pure returns (bool) {
        if (gtin == 0 || gtin > MAX_GTIN) return false;
        // Cannot overflow: at most 7 rounds, each adding at most 3 * 9 + 9 to `sum`.
        unchecked {
            uint256 rest = gtin / 10;
            uint256 sum;
            while (rest != 0) {
                sum += 3 * (rest % 10) + (rest / 10) % 10; // two digits a round: weight 3, then 1
                rest /= 100;
            }
            return (10 - sum % 10) % 10 == gtin % 10;
        }
    }

    // ─── Views ──────────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IDrugProvenance
    function batchIdOf(uint64 gtin, bytes20 lot) external pure returns (bytes32) {
        return DrugIds.batchId(gtin, lot);
    }

    /// @inheritdoc IDrugProvenance
    function batch(bytes32 batchId) external view returns (Batch memory) {
        return _batches[batchId];
    }

    /// @inheritdoc IDrugProvenance
    function holding(bytes32 batchId, address holder) external view returns (Holding memory) {
        return _holdings[batchId][holder];
    }

    /// @inheritdoc IDrugProvenance
    function shipmentStatus(bytes32 shipmentId) external view returns (ShipmentStatus) {
        return _shipments[shipmentId];
    }

    /// @inheritdoc IDrugProvenance
    function manufacturerOf(uint64 gtin) external view returns (address) {
        return _products[gtin];
    }

    /// @inheritdoc IDrugProvenance
    function isDispensed(bytes32 dispenseId) external view returns (bool) {
        return _dispensed[dispenseId];
    }

    /// @inheritdoc IDrugProvenance
    function serialDispense(bytes32 batchId, bytes32 serialLeaf) external view returns (bytes32) {
        return _serialDispenses[batchId][serialLeaf];
    }

    /// @inheritdoc IDrugProvenance
    function verifyPack(uint64 gtin, bytes20 lot, string calldata serial, bytes32[] calldata proof)
        external
        view
        returns (bool genuine, BatchStatus status, uint40 expiry)
    {
        Batch storage b = _batches[DrugIds.batchId(gtin, lot)];
        status = b.status;
        expiry = b.expiry;
        bytes32 leaf = DrugIds.serialLeaf(serial);
        genuine = status != BatchStatus.None && b.serialsRoot != bytes32(0)
            && MerkleProof.verifyCalldata(proof, b.serialsRoot, leaf);
    }
}

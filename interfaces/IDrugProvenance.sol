// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IDrugProvenance
/// @notice Medicine batches identified the GS1 way (GTIN + lot), their two-step custody from the
/// manufacturer to the dispensing pharmacy or hospital, dispensing to (pseudonymous) patients,
/// quarantine, recall and destruction. A recalled batch cannot move: ship, receive and dispense
/// revert. Holdings always sum to quantity minus dispensed minus destroyed.
///
/// Who may act, as the InstitutionRegistry says at the time of the call:
/// - Holding: a batch's manufacturer, distributors, pharmacies, hospitals and clinics. A holder
///   that is suspended or removed can neither ship nor receive (nor dispense); a pending shipment
///   addressed to it waits until it is reinstated, or goes back to its sender by cancellation.
///   A shipment sent while its sender was active may still be received by an active addressee
///   after the sender's suspension: the units are already out of the sender's hands.
/// - What a suspended or removed holder may still do: destroy units it holds and cancel its own
///   pending shipments. Neither puts a unit into anyone else's hands: destruction takes units out
///   of circulation, cancellation returns them to the sender's own (frozen) holding, and it is the
///   way back for a shipment whose addressee can no longer receive it.
/// - Authority over a batch (quarantine, release, recall): its manufacturer while active as a
///   manufacturer, and any active regulator. A suspended or removed manufacturer loses it; the
///   regulator keeps it.
/// - Quarantine: the batch remembers whether a regulator imposed it ({Batch.quarantinedByRegulator}).
///   Only a regulator lifts a regulator's quarantine. A regulator may lift a manufacturer's
///   quarantine (it is the higher authority), and may take a manufacturer's quarantine over by
///   quarantining the batch again, after which the manufacturer can no longer lift it. Either
///   authority may recall a quarantined batch: a recall only tightens the hold.
/// - Expiry: from `block.timestamp >= expiry` on, a batch can be neither shipped nor dispensed.
///   A shipment already in transit may still be received (if the batch is Active), so that the
///   ledger shows the expired units where they physically are, for their holder to destroy; the
///   sender may instead cancel it.
/// - GTINs: every `uint64 gtin` is the value of the GTIN's 14-digit form, the form GS1 asks
///   databases to store (GTIN-8, -12 and -13 left-padded with zeros). One product has one number
///   whichever symbol carried it, and a GTIN with leading zeros keeps them implicitly: GTIN-8
///   01234565 is 1234565, GTIN-12 012345678905 is 12345678905. See {registerProduct} for the rule.
interface IDrugProvenance {
    // ─── Types ──────────────────────────────────────────────────────────────────────────────

    /// @notice Batch states: Active <-> Quarantined, Active|Quarantined -> Recalled,
    /// any -> Destroyed once every unit not dispensed is destroyed.
    enum BatchStatus {
        None,
        Active,
        Quarantined,
        Recalled,
        Destroyed
    }

    /// @notice Shipment states (two-step custody).
    enum ShipmentStatus {
        None,
        Pending,
        Received,
        Cancelled
    }

    /// @notice A batch. Its id is keccak256(abi.encode(gtin, lot)).
    /// @param quarantinedByRegulator While Quarantined: whether a regulator imposed (or took over)
    /// the quarantine, so that only a regulator may lift it. False in every other status.
    /// @dev manufacturer, manufacturedAt, expiry, status and quarantinedByRegulator share one slot.
    struct Batch {
        address manufacturer;
        uint40 manufacturedAt;
        uint40 expiry;
        BatchStatus status;
        bool quarantinedByRegulator;
        uint64 quantity;
        uint64 dispensed;
        uint64 destroyed;
        bytes32 certificateDigest;
        bytes32 serialsRoot;
    }

    /// @notice What a holder has of a batch: units it holds and units it shipped not yet received.
    struct Holding {
        uint64 available;
        uint64 inTransit;
    }

    /// @notice A shipment's identity; its id is keccak256(abi.encode(ref)).
    /// @param nonce The sender's available units before shipping (makes ids unique per sender).
    struct ShipmentRef {
        bytes32 batchId;
        address from;
        address to;
        uint64 quantity;
        uint64 nonce;
        uint40 shippedAt;
    }

    // ─── Errors ─────────────────────────────────────────────────────────────────────────────

    /// @notice Thrown when a dependency given at deployment is the zero address.
    error DrugZeroAddress();
    /// @notice Thrown when `gtin` is not a GTIN's 14-digit value: zero, more than 14 digits, or a
    /// wrong GS1 check digit.
    error DrugInvalidGtin(uint64 gtin);
    /// @notice Thrown when registering a GTIN twice.
    error DrugProductExists(uint64 gtin, address manufacturer);
    /// @notice Thrown when a GTIN is not registered.
    error DrugUnknownProduct(uint64 gtin);
    /// @notice Thrown when the caller is not an active manufacturer (or not the product's).
    error DrugNotManufacturer(address account);
    /// @notice Thrown when commissioning a batch that exists.
    error DrugBatchExists(bytes32 batchId);
    /// @notice Thrown when a batch's data is invalid (empty lot, zero quantity, expiry not after manufacture...).
    error DrugInvalidBatch();
    /// @notice Thrown when a batch id is unknown.
    error DrugUnknownBatch(bytes32 batchId);
    /// @notice Thrown when a batch must be Active and is not (quarantined, recalled, destroyed).
    error DrugBatchNotActive(bytes32 batchId, BatchStatus status);
    /// @notice Thrown when a status change does not fit the batch's state.
    error DrugInvalidTransition(bytes32 batchId, BatchStatus status);
    /// @notice Thrown when the recipient is not an active distributor, pharmacy or hospital, or is the sender.
    error DrugInvalidRecipient(address to);
    /// @notice Thrown when a quantity is zero or more than the holder has.
    error DrugInsufficientHolding(bytes32 batchId, address holder, uint64 available, uint64 requested);
    /// @notice Thrown when a shipment is unknown.
    error DrugUnknownShipment(bytes32 shipmentId);
    /// @notice Thrown when a shipment is no longer pending (received twice, cancelled...).
    error DrugShipmentNotPending(bytes32 shipmentId, ShipmentStatus status);
    /// @notice Thrown when a shipment with the same identity exists (retry in the next block).
    error DrugShipmentExists(bytes32 shipmentId);
    /// @notice Thrown when someone other than the addressee receives, or other than the sender cancels.
    error DrugNotParty(bytes32 shipmentId, address caller);
    /// @notice Thrown when the dispenser is not an active pharmacy or hospital.
    error DrugNotDispenser(address account);
    /// @notice Thrown when shipping or dispensing at or after the batch's expiry.
    error DrugBatchExpired(bytes32 batchId, uint40 expiry);
    /// @notice Thrown when a patient reference is zero.
    error DrugInvalidPatientRef();
    /// @notice Thrown when a dispense would get the id of an earlier one (same dispenser, patient
    /// reference and quantity, from the same available units in the same second): its claim could
    /// not be told from the earlier one's. Retry in the next block.
    error DrugDispenseExists(bytes32 dispenseId);
    /// @notice Thrown when the caller is neither the batch's manufacturer, active as a manufacturer,
    /// nor an active regulator.
    error DrugNotAuthority(address account);
    /// @notice Thrown when a manufacturer tries to lift a quarantine that a regulator imposed.
    error DrugRegulatorQuarantine(bytes32 batchId, address caller);
    /// @notice Thrown when the sender of a shipment, or the addressee receiving it, is not an active
    /// member of a kind that may hold medicines (suspended, removed, or never admitted).
    error DrugHolderNotActive(address holder);
    /// @notice Thrown when a recall's holder list is not strictly ascending.
    error DrugHolderListUnsorted();
    /// @notice Thrown when a recall's holder list does not account for every unit in circulation.
    error DrugIncompleteHolderList(uint64 expected, uint64 listed);
    /// @notice Thrown when dispensing a pack by serial from a batch commissioned without serial numbers.
    error DrugNoSerials(bytes32 batchId);
    /// @notice Thrown when a serial's Merkle proof does not lead to the batch's serials root: the pack
    /// is not one of the batch's (a counterfeit, or a serial of another batch).
    error DrugUnknownSerial(bytes32 batchId, bytes32 serialLeaf);
    /// @notice Thrown when a pack's serial was already dispensed: one physical pack is dispensed once,
    /// so a second pack carrying the same serial is a copy.
    error DrugSerialAlreadyDispensed(bytes32 batchId, bytes32 serialLeaf, bytes32 dispenseId);

    // ─── Events ─────────────────────────────────────────────────────────────────────────────

    /// @notice Emitted when a manufacturer registers a product.
    event ProductRegistered(uint64 indexed gtin, address indexed manufacturer);
    /// @notice Emitted when a batch is commissioned (EPCIS: commissioning).
    event BatchCommissioned(
        bytes32 indexed batchId,
        uint64 indexed gtin,
        address indexed manufacturer,
        bytes20 lot,
        uint40 manufacturedAt,
        uint40 expiry,
        uint64 quantity,
        bytes32 certificateDigest,
        bytes32 serialsRoot
    );
    /// @notice Emitted when units leave a holder (EPCIS: shipping).
    event Shipped(bytes32 indexed shipmentId, bytes32 indexed batchId, address indexed from, ShipmentRef ref);
    /// @notice Emitted when the addressee takes custody (EPCIS: receiving).
    event Received(bytes32 indexed shipmentId, bytes32 indexed batchId, address indexed to, uint64 quantity);
    /// @notice Emitted when the sender cancels a pending shipment; the units return to it.
    event ShipmentCancelled(bytes32 indexed shipmentId, bytes32 indexed batchId, address indexed from, uint64 quantity);
    /// @notice Emitted when units are dispensed to a patient (EPCIS: dispensing).
    /// @param patientRef keccak256(abi.encode(patient, salt)) with 32 random bytes of salt that the
    /// dispenser keeps and gives the patient (ClaimsProcessor checks drug claims against it): never
    /// PHI. A bare address, or a constant or guessable salt, would link the patient to the product.
    event Dispensed(
        bytes32 indexed dispenseId, bytes32 indexed batchId, address indexed dispenser, bytes32 patientRef, uint64 quantity
    );
    /// @notice Emitted with {Dispensed} when the dispensed unit is one pack named by its serial
    /// (see {dispenseSerial}).
    /// @param serialLeaf The pack's leaf in the batch's serials tree
    /// (keccak256(bytes.concat(keccak256(abi.encode(serial))))): the serial itself stays off chain, so
    /// that the chain does not publish the list of genuine serials a counterfeiter could copy.
    /// @param dispenseId The dispense ({Dispensed}) that took the pack.
    event SerialDispensed(bytes32 indexed batchId, bytes32 indexed serialLeaf, bytes32 indexed dispenseId);
    /// @notice Emitted when a batch's status changes (quarantine, release, recall, destruction), and
    /// when a regulator takes over a manufacturer's quarantine (previous and current both Quarantined).
    event BatchStatusChanged(bytes32 indexed batchId, BatchStatus previous, BatchStatus current, address by, uint16 reason);
    /// @notice Emitted once per holder when a batch is recalled: who holds how much at that moment.
    event HolderAtRecall(bytes32 indexed batchId, address indexed holder, uint64 available, uint64 inTransit);
    /// @notice Emitted when a holder destroys units (EPCIS: destroying).
    event UnitsDestroyed(bytes32 indexed batchId, address indexed holder, uint64 quantity);

    // ─── Writes ─────────────────────────────────────────────────────────────────────────────

    /// @notice Registers a product by its GTIN. Caller: an active manufacturer.
    /// @param gtin The value of the GTIN's 14-digit form. Accepted: 0 < gtin < 10**14 whose last
    /// digit is the GS1 check digit of the others (mod 10, weights 3,1,3,... from the right), so
    /// every GTIN-8, -12, -13 and -14 that python-stdnum's `ean` and biip accept, with leading zeros
    /// of any length. Refused: zero (no trade item's GTIN: it lies in GS1 Prefix 0000000, kept for
    /// numbers in restricted circulation within a company; and 0 means "no product" here, as in
    /// ClaimsProcessor's non-drug services), anything above 14 digits, a wrong check digit.
    /// Requirements: caller an active manufacturer; `gtin` valid ({DrugInvalidGtin}) and not yet
    /// registered ({DrugProductExists}). Emits {ProductRegistered}.
    function registerProduct(uint64 gtin) external;

    /// @notice Commissions a batch of a product the caller registered; the caller holds all units.
    function commission(
        uint64 gtin,
        bytes20 lot,
        uint40 manufacturedAt,
        uint40 expiry,
        uint64 quantity,
        bytes32 certificateDigest,
        bytes32 serialsRoot
    ) external returns (bytes32 batchId);

    /// @notice Ships `quantity` units to `to` (pending until received).
    /// Requirements: the batch is Active and not expired; the caller is an active holder (its
    /// manufacturer, a distributor, pharmacy, hospital or clinic) holding `quantity` units; `to` is
    /// another active distributor, pharmacy, hospital or clinic.
    /// Emits {Shipped}.
    function ship(bytes32 batchId, address to, uint64 quantity) external returns (bytes32 shipmentId);

    /// @notice The addressee takes custody of a pending shipment.
    /// Requirements: the caller is the addressee and still an active distributor, pharmacy,
    /// hospital or clinic; the batch is Active (an expired batch's shipment may still be received).
    /// Emits {Received}.
    function receiveShipment(ShipmentRef calldata ref) external;

    /// @notice The sender cancels a pending shipment; the units return to it. Allowed in any batch
    /// status, after expiry, and whatever the sender's or addressee's membership status.
    /// Emits {ShipmentCancelled}.
    function cancelShipment(ShipmentRef calldata ref) external;

    /// @notice Dispenses units to a patient reference (see {Dispensed}), before the batch's expiry.
    /// Caller: an active pharmacy, hospital or clinic holding them. Each dispense has its own id
    /// (a drug claim bills it once), so an identical one in the same second reverts {DrugDispenseExists}.
    function dispense(bytes32 batchId, uint64 quantity, bytes32 patientRef) external returns (bytes32 dispenseId);

    /// @notice Dispenses one pack, named by its serial number, to a patient reference: as {dispense}
    /// with quantity 1, and the pack's serial is recorded as dispensed so that no pack carrying the
    /// same serial can be dispensed again (a duplicate serial is a counterfeit).
    /// @dev Class-level {dispense} stays available: it records no serial, so it cannot mark one pack.
    /// @param batchId The batch the pack belongs to.
    /// @param serial The pack's serial number (GS1 AI 21), as on its DataMatrix.
    /// @param proof The Merkle proof of the serial's leaf against the batch's serials root.
    /// @param patientRef The salted patient commitment (see {Dispensed}).
    /// @return dispenseId The dispense's id, computed as {dispense} computes it for quantity 1.
    /// Requirements: those of {dispense} for one unit; the batch has serials ({DrugNoSerials}); the
    /// proof is valid ({DrugUnknownSerial}); the serial was not dispensed before
    /// ({DrugSerialAlreadyDispensed}, naming the earlier dispense).
    /// Emits {Dispensed} and {SerialDispensed}.
    function dispenseSerial(bytes32 batchId, string calldata serial, bytes32[] calldata proof, bytes32 patientRef)
        external
        returns (bytes32 dispenseId);

    /// @notice Puts an Active batch on hold: no ship, receive or dispense until released.
    /// A regulator may also quarantine a batch its manufacturer quarantined: it takes the
    /// quarantine over, so that only a regulator can lift it.
    /// Requirements: the caller is the batch's manufacturer, active as a manufacturer, or an active
    /// regulator; the batch is Active (or, for a regulator, quarantined by its manufacturer).
    /// Emits {BatchStatusChanged} (Quarantined to Quarantined on a take-over).
    function quarantine(bytes32 batchId, uint16 reason) external;

    /// @notice Releases a Quarantined batch.
    /// Requirements: the caller is an active regulator, or the batch's manufacturer, active as a
    /// manufacturer, if no regulator imposed the quarantine.
    /// Emits {BatchStatusChanged}.
    function release(bytes32 batchId) external;

    /// @notice Recalls an Active or Quarantined batch, listing every holder (ascending addresses)
    /// so that the event records who holds how much. Caller: its manufacturer, active as a
    /// manufacturer, or an active regulator (either may recall a batch the other quarantined).
    /// @dev The list must account for every unit not dispensed or destroyed, so a receive landing
    /// between building the list and the recall makes it revert. Quarantine the batch first (no
    /// receive can land then: the set of holders can only shrink), then build the list and recall;
    /// the SDK's `DrugClient.recall` does so.
    /// Emits {HolderAtRecall} per holder and {BatchStatusChanged}.
    function recall(bytes32 batchId, uint16 reason, address[] calldata holders) external;

    /// @notice Destroys units the caller holds (any status but Destroyed, after expiry, and whatever
    /// the caller's membership status: a suspended holder may destroy its stock).
    /// Emits {UnitsDestroyed}, and {BatchStatusChanged} when no unit is left in circulation.
    function destroy(bytes32 batchId, uint64 quantity) external;

    // ─── Views ──────────────────────────────────────────────────────────────────────────────

    /// @notice The id of batch (gtin, lot).
    function batchIdOf(uint64 gtin, bytes20 lot) external pure returns (bytes32);

    /// @notice A batch (all zero if unknown).
    function batch(bytes32 batchId) external view returns (Batch memory);

    /// @notice What `holder` holds of a batch, available and in transit.
    function holding(bytes32 batchId, address holder) external view returns (Holding memory);

    /// @notice A shipment's status.
    function shipmentStatus(bytes32 shipmentId) external view returns (ShipmentStatus);

    /// @notice The manufacturer that registered `gtin` (zero if none).
    function manufacturerOf(uint64 gtin) external view returns (address);

    /// @notice Whether a dispense with this id happened (claims check drug claims against it).
    function isDispensed(bytes32 dispenseId) external view returns (bool);

    /// @notice The dispense that took the pack with this serial leaf (zero if it was not dispensed by
    /// serial). The leaf is {DrugIds-serialLeaf} of the pack's serial.
    function serialDispense(bytes32 batchId, bytes32 serialLeaf) external view returns (bytes32 dispenseId);

    /// @notice Verifies a pack: is `serial` in the batch's serials Merkle tree (leaf:
    /// keccak256(bytes.concat(keccak256(abi.encode(serial)))))? Returns status and expiry too.
    function verifyPack(uint64 gtin, bytes20 lot, string calldata serial, bytes32[] calldata proof)
        external
        view
        returns (bool genuine, BatchStatus status, uint40 expiry);
}

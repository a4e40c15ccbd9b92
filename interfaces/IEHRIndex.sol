// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IEHRIndex
/// @notice The on-chain index of encrypted, off-chain health records. The chain holds who, what
/// kind, when, the SHA-256 fingerprint of the canonical plaintext and the CID of the ciphertext;
/// the bytes live in a content-addressed store. Every read by another party is checked against the
/// patient's consent and leaves a {RecordAccessed} audit event.
/// @dev One storage slot per record: its id hashes the header (patient, custodian, fingerprint,
/// category, previous version), and the slot holds the custodian, time and status. Calls that need
/// the patient or category take the header and check it against the id. The CID is anchored in the
/// {RecordAnchored} event; the ciphertext is bound to the id through AES-GCM associated data.
interface IEHRIndex {
    // ─── Types ──────────────────────────────────────────────────────────────────────────────

    /// @notice Record status. Amending supersedes; nothing is overwritten or deleted.
    enum RecordStatus {
        None,
        Current,
        Superseded,
        EnteredInError
    }

    /// @notice The identifying header of a record (its id is keccak256(abi.encode(header))).
    /// @param patient The patient's pseudonymous address.
    /// @param custodian The institution that holds the ciphertext.
    /// @param fingerprint SHA-256 of the canonical plaintext.
    /// @param category Data category: the FHIR resource type as bytes32 text (e.g. "Observation").
    /// @param previous The record this one amends, or 0.
    struct RecordHeader {
        address patient;
        address custodian;
        bytes32 fingerprint;
        bytes32 category;
        bytes32 previous;
    }

    /// @notice What is stored per record.
    struct RecordState {
        address custodian;
        uint40 anchoredAt;
        RecordStatus status;
    }

    /// @notice A Merkle batch of records anchored in one transaction.
    struct Batch {
        address custodian;
        uint40 anchoredAt;
        uint32 count;
        bytes32 root;
    }

    // ─── Errors ─────────────────────────────────────────────────────────────────────────────

    /// @notice Thrown when a dependency given at deployment is the zero address.
    error EHRZeroAddress();
    /// @notice Thrown when the caller is not an active custodian institution (hospital kinds or laboratory).
    error EHRNotCustodian(address account);
    /// @notice Thrown when the header's custodian is not the caller.
    error EHRCustodianMismatch(address custodian, address caller);
    /// @notice Thrown when the custodian holds no APPEND consent (purpose TREAT) for the patient's category.
    error EHRNoTreatmentRelationship(address patient, address custodian, bytes32 category);
    /// @notice Thrown when a patient is zero or the custodian itself.
    error EHRInvalidPatient(address patient);
    /// @notice Thrown when a fingerprint, category or Merkle root is zero.
    error EHRInvalidDigest();
    /// @notice Thrown when a CID is not a CIDv1 (raw or dag-pb) with a sha2-256 multihash.
    error EHRInvalidCid(bytes cid);
    /// @notice Thrown when a record with this header was already anchored.
    error EHRRecordExists(bytes32 recordId);
    /// @notice Thrown when a record id is unknown.
    error EHRUnknownRecord(bytes32 recordId);
    /// @notice Thrown when a record is not current (amending or erroring a superseded or erroneous record).
    error EHRRecordNotCurrent(bytes32 recordId, RecordStatus status);
    /// @notice Thrown when an amendment does not link to, or belong with, the record it amends.
    error EHRInvalidAmendment(bytes32 previousId);
    /// @notice Thrown when a reason code is zero.
    error EHRInvalidReason();
    /// @notice Thrown when the accessor holds no consent (and no break-glass session) for the purpose.
    error EHRAccessDenied(bytes32 recordId, address accessor, uint8 purpose);
    /// @notice Thrown when a batch id is unknown.
    error EHRUnknownBatch(uint256 batchId);
    /// @notice Thrown when a batch is empty.
    error EHREmptyBatch();
    /// @notice Thrown when a Merkle proof does not place the record in the batch.
    error EHRInvalidProof(bytes32 recordId, uint256 batchId);
    /// @notice Thrown when a record entered in error is read.
    error EHRRecordEnteredInError(bytes32 recordId);
    /// @notice Thrown when an access names a purpose that is not a known PurposeOfUse index (0-3),
    /// whoever the caller is: an unknown purpose in the audit trail would break its readers.
    error EHRUnknownPurpose(uint8 purpose);

    // ─── Events ─────────────────────────────────────────────────────────────────────────────

    /// @notice Emitted when a record is anchored.
    /// @param recordId The record's id.
    /// @param patient Whose record.
    /// @param custodian Who holds the ciphertext.
    /// @param fingerprint SHA-256 of the canonical plaintext.
    /// @param category The data category.
    /// @param previous The version this one amends, or 0.
    /// @param cid The CIDv1 bytes of the ciphertext.
    event RecordAnchored(
        bytes32 indexed recordId,
        address indexed patient,
        address indexed custodian,
        bytes32 fingerprint,
        bytes32 category,
        bytes32 previous,
        bytes cid
    );
    /// @notice Emitted when a record is amended; the new version's {RecordAnchored} precedes it.
    event RecordAmended(bytes32 indexed previousId, bytes32 indexed newId, address indexed custodian);
    /// @notice Emitted when a custodian marks a record entered-in-error.
    /// @param reason A reason code (1 wrong patient, 2 wrong content, 3 duplicate, other: custodian-defined).
    event RecordEnteredInError(bytes32 indexed recordId, address indexed custodian, uint16 reason);
    /// @notice The audit event: emitted for every permitted read by another party.
    /// @param recordId The record read.
    /// @param accessor Who read it.
    /// @param patient Whose record.
    /// @param purpose PurposeOfUse index.
    /// @param authorization The consent grant id, or the break-glass session id as bytes32.
    /// @param breakGlass Whether an emergency session permitted it.
    event RecordAccessed(
        bytes32 indexed recordId,
        address indexed accessor,
        address indexed patient,
        uint8 purpose,
        bytes32 authorization,
        bool breakGlass
    );
    /// @notice A refused attempt to read a record (audit controls log failures too). Emitted by
    /// {tryAccessRecord} and {tryAccessBatchedRecord} instead of reverting; nothing is released on
    /// it: a custodian's gateway releases a key only on a {RecordAccessed} event.
    /// @param recordId The record the caller tried to read.
    /// @param accessor Who tried.
    /// @param patient Whose record.
    /// @param purpose The PurposeOfUse index the caller named.
    event AccessDenied(bytes32 indexed recordId, address indexed accessor, address indexed patient, uint8 purpose);
    /// @notice Emitted when a batch root is anchored.
    /// @param cid CID of the batch index (headers and ciphertext CIDs of its records) in the store.
    event BatchAnchored(uint256 indexed batchId, address indexed custodian, bytes32 root, uint32 count, bytes cid);

    // ─── Writes ─────────────────────────────────────────────────────────────────────────────

    /// @notice Anchors a record. Caller: the header's custodian, an active hospital-kind institution
    /// or laboratory holding the patient's APPEND consent for TREAT over the record's category.
    /// Emits {RecordAnchored}.
    function anchor(RecordHeader calldata header, bytes calldata cid) external returns (bytes32 recordId);

    /// @notice Anchors a new version of `previous`; the old one becomes Superseded.
    /// Caller: the previous version's custodian, with the same rights as for {anchor}.
    /// Emits {RecordAnchored} and {RecordAmended}.
    function amend(RecordHeader calldata previous, RecordHeader calldata next, bytes calldata cid)
        external
        returns (bytes32 recordId);

    /// @notice Marks a current record entered-in-error. Caller: its custodian, while an active
    /// custodian institution (a suspended or revoked one cannot). Emits {RecordEnteredInError}.
    function markEnteredInError(bytes32 recordId, uint16 reason) external;

    /// @notice Marks a batched record entered-in-error (a batch has no per-record state until then).
    /// Caller: the record's custodian (the batch's), while an active custodian institution; `proof`
    /// places the header in the batch. Afterwards {accessBatchedRecord} refuses it and it is no
    /// valid evidence. Emits {RecordEnteredInError}.
    function markBatchedEnteredInError(
        RecordHeader calldata header,
        uint256 batchId,
        bytes32[] calldata proof,
        uint16 reason
    ) external;

    /// @notice Reads a record with consent: emits the audit event or reverts {EHRAccessDenied}.
    /// The patient and the custodian always pass (and are audited too). Any caller naming a purpose
    /// above 3 (not a PurposeOfUse index) gets {EHRUnknownPurpose}.
    function accessRecord(RecordHeader calldata header, uint8 purpose) external returns (bytes32 recordId);

    /// @notice Like {accessRecord}, but a refusal for lack of consent is recorded instead of
    /// reverted: emits {RecordAccessed} and returns true when consent permits the read, emits
    /// {AccessDenied} and returns false when it does not, so that the attempt stays in the audit
    /// trail. An unknown record, a record entered in error and an unknown purpose still revert
    /// (they are not consent decisions).
    function tryAccessRecord(RecordHeader calldata header, uint8 purpose) external returns (bool granted);

    /// @notice {accessBatchedRecord} with a refusal recorded as {AccessDenied} instead of reverted
    /// (see {tryAccessRecord}). A wrong proof, a retracted record or a missing treatment
    /// relationship of the batch's custodian still revert.
    function tryAccessBatchedRecord(
        RecordHeader calldata header,
        uint256 batchId,
        bytes32[] calldata proof,
        uint8 purpose
    ) external returns (bool granted);

    /// @notice Anchors the Merkle root of `count` records (leaves: keccak256(bytes.concat(recordId)))
    /// and the CID of the batch index. Caller: an active custodian institution. Emits {BatchAnchored}.
    function anchorBatch(bytes32 root, uint32 count, bytes calldata cid) external returns (uint256 batchId);

    /// @notice Reads a batched record with consent, proving its membership with `proof`.
    /// The batch custodian must hold the patient's APPEND consent for the category (checked at
    /// access, since a batch anchor cannot check each record). A record marked entered-in-error
    /// reverts {EHRRecordEnteredInError}. Emits {RecordAccessed}.
    function accessBatchedRecord(RecordHeader calldata header, uint256 batchId, bytes32[] calldata proof, uint8 purpose)
        external
        returns (bytes32 recordId);

    // ─── Views ──────────────────────────────────────────────────────────────────────────────

    /// @notice The id of a header.
    function recordIdOf(RecordHeader calldata header) external pure returns (bytes32);

    /// @notice The stored state of a record (all zero if unknown).
    function record(bytes32 recordId) external view returns (RecordState memory);

    /// @notice A batch.
    function batch(uint256 batchId) external view returns (Batch memory);

    /// @notice Whether `header` is in batch `batchId` (the proof is checked, nothing else).
    function inBatch(RecordHeader calldata header, uint256 batchId, bytes32[] calldata proof)
        external
        view
        returns (bool);

    /// @notice Whether a singly anchored record with this header exists and is not entered in error
    /// (current or superseded). ClaimsProcessor reads {record} instead, for the anchoring time too.
    function isValidRecord(RecordHeader calldata header) external view returns (bool);
}

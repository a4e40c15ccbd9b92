// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IConsentManager
/// @notice Patient-controlled consent, shaped like a FHIR R4 Consent provision: who (grantee) may
/// do what (actions) with which data (scope), for what purpose, and when (validity window).
/// Grants can be given directly, by a guardian, or by an EIP-712 signature that anyone submits.
/// Hospitals can open time-boxed break-glass sessions that stay flagged until reviewed.
///
/// Guardians: a guardian's grants last as long as its guardianship. When the patient removes the
/// guardian, every grant that guardian gave (directly or by signature) stops permitting access at
/// once ({grantOf} reports it `Lapsed`; the patient or a remaining guardian can still revoke it),
/// and appointing the same guardian again does not revive them: each appointment is a new term.
/// A guardian cannot grant to itself or to another guardian of the same patient; only the patient
/// can give a guardian access. The patient's own grants do not depend on any guardian.
///
/// Break-glass disputes: disputing a session ends it at once, together with the institution's
/// current session for the same patient (so a session opened before the review landed does not
/// outlive it). After a dispute the institution may not open another session for that patient
/// for `DISPUTE_WINDOW` (30 days). An institution with `DISPUTE_LIMIT` (3) counted disputes within
/// the last `DISPUTE_WINDOW` may not open any session, and its open sessions stop permitting
/// access, until the oldest of those disputes is `DISPUTE_WINDOW` old. A dispute counts unless it
/// comes within `DISPUTE_WINDOW` of the previous dispute about the same patient: so one patient,
/// guardian or regulator disputing every renewal of one emergency bars that patient but cannot
/// stop the institution's break-glass for everyone else; reaching the limit takes disputes about
/// three patients. The patient (or a guardian) can still give such an institution an ETREAT
/// consent; other institutions are unaffected.
///
/// Signed requests: a patient's requests and its guardians' share the patient's nonce. Appointing
/// a guardian again (a new term) uses that nonce up, so a request signed before it, by that
/// guardian in its earlier term or by anyone, no longer applies.
/// @dev Nothing here is health data: grants name addresses, a record id or a category code digest,
/// bitmaps and times. Every other contract asks {checkAccess}.
interface IConsentManager {
    // ─── Types ──────────────────────────────────────────────────────────────────────────────

    /// @notice What a grant covers: one record, one data category, or all of the patient's data.
    enum ScopeKind {
        None,
        Record,
        Category,
        All
    }

    /// @notice Status of a grant as {grantOf} reports it. Expiry is by time; `Lapsed`: a guardian
    /// gave it and that guardianship has ended.
    enum GrantStatus {
        None,
        Active,
        Revoked,
        Expired,
        Pending,
        Lapsed
    }

    /// @notice Review state of a break-glass session.
    enum Review {
        None,
        Pending,
        Accepted,
        Disputed
    }

    /// @notice The terms of a grant (the signed struct for {grantBySig}).
    /// @param patient Whose data.
    /// @param grantee Who receives access (an institution's or a person's address).
    /// @param scopeKind Record, Category or All.
    /// @param scopeValue Record id for Record, category code (bytes32 of its text) for Category, 0 for All.
    /// @param actions Bitmap of ACTION_READ (1), ACTION_APPEND (2), ACTION_SHARE (4).
    /// @param purposes Bitmap over PurposeOfUse: TREAT (1), HPAYMT (2), HRESCH (4), ETREAT (8).
    /// @param notBefore First second the grant is valid.
    /// @param notAfter Last second the grant is valid (type(uint40).max: no end).
    struct GrantTerms {
        address patient;
        address grantee;
        ScopeKind scopeKind;
        bytes32 scopeValue;
        uint8 actions;
        uint8 purposes;
        uint40 notBefore;
        uint40 notAfter;
    }

    /// @notice What the contract stores per grant: one storage slot. Grantee and scope are part of
    /// the grant id (and of the {ConsentGranted} event), so they need no storage of their own.
    /// A revoked grant keeps its slot with `actions` cleared. The window is stored in 32 bits (until
    /// the year 2106): a `notAfter` beyond that, `NO_END` included, is stored as type(uint32).max.
    /// @param byGuardian True when a guardian gave it: it lasts only as long as that guardianship
    /// ({guardianOfGrant}).
    struct GrantRecord {
        address patient;
        uint32 notBefore;
        uint32 notAfter;
        uint8 actions;
        uint8 purposes;
        bool byGuardian;
    }

    /// @notice A break-glass (emergency) access session.
    struct BreakGlassSession {
        address patient;
        address institution;
        uint40 openedAt;
        uint40 expiresAt;
        Review review;
        bytes32 justificationDigest;
    }

    // ─── Errors ─────────────────────────────────────────────────────────────────────────────

    /// @notice Thrown when a patient, grantee or guardian address is zero.
    error ConsentZeroAddress();
    /// @notice Thrown when a patient names itself as grantee or guardian.
    error ConsentSelfGrant(address patient);
    /// @notice Thrown when a scope kind and value do not describe a real scope.
    error ConsentInvalidScope(ScopeKind scopeKind, bytes32 scopeValue);
    /// @notice Thrown when an actions bitmap is empty or has unknown bits.
    error ConsentInvalidActions(uint8 actions);
    /// @notice Thrown when a purposes bitmap is empty or has unknown PurposeOfUse bits.
    error ConsentUnknownPurpose(uint8 purposes);
    /// @notice Thrown when a validity window ends before it starts or has already ended.
    error ConsentInvalidWindow(uint40 notBefore, uint40 notAfter);
    /// @notice Thrown when the caller is neither the patient nor one of its guardians.
    error ConsentNotPatientOrGuardian(address caller, address patient);
    /// @notice Thrown when a grant id is unknown.
    error ConsentUnknownGrant(bytes32 grantId);
    /// @notice Thrown when revoking a grant that is already revoked.
    error ConsentAlreadyRevoked(bytes32 grantId);
    /// @notice Thrown when a signed request is submitted after its deadline.
    error ConsentSignatureExpired(uint256 deadline);
    /// @notice Thrown when a signed request's nonce is not the signer's patient's current nonce (replay).
    error ConsentInvalidNonce(address patient, uint256 expected, uint256 given);
    /// @notice Thrown when a signature does not recover to the claimed signer (altered or forged).
    error ConsentInvalidSignature(address claimedSigner);
    /// @notice Thrown when a valid signature comes from someone who may not act for the patient.
    error ConsentSignerNotAuthorized(address signer, address patient);
    /// @notice Thrown when adding a guardian twice.
    error ConsentAlreadyGuardian(address patient, address guardian);
    /// @notice Thrown when removing an address that is not a guardian.
    error ConsentNotGuardian(address patient, address guardian);
    /// @notice Thrown when break-glass is opened by someone that is not an active care provider.
    error ConsentNotCareProvider(address account);
    /// @notice Thrown when a break-glass justification digest is zero.
    error ConsentMissingJustification();
    /// @notice Thrown when a break-glass session id is unknown.
    error ConsentUnknownSession(uint256 sessionId);
    /// @notice Thrown when a break-glass session was already reviewed.
    error ConsentSessionAlreadyReviewed(uint256 sessionId, Review review);
    /// @notice Thrown when the reviewer is not the patient, a guardian or an active regulator.
    error ConsentNotReviewer(address caller, uint256 sessionId);
    /// @notice Thrown when the break-glass duration given at deployment is 0 or above 72 hours.
    error ConsentInvalidBreakGlassDuration(uint40 duration);
    /// @notice Thrown when a guardian grants access to itself or to another guardian of the patient.
    /// @param patient Whose data.
    /// @param guardian The guardian acting (directly or by signature).
    /// @param grantee The guardian it named as grantee.
    error ConsentGrantToGuardian(address patient, address guardian, address grantee);
    /// @notice Thrown when an institution with `DISPUTE_LIMIT` sessions disputed within the last
    /// `DISPUTE_WINDOW` opens a break-glass session.
    /// @param institution The institution.
    /// @param disputes Disputes counted within the window (the limit).
    /// @param until First second at which it may open a session again.
    error ConsentBreakGlassLimitReached(address institution, uint8 disputes, uint40 until);
    /// @notice Thrown when an institution opens a break-glass session for a patient within
    /// `DISPUTE_WINDOW` of a dispute of one of its sessions for that patient.
    /// @param institution The institution.
    /// @param patient The patient.
    /// @param until First second at which it may open a session for that patient again.
    error ConsentBreakGlassDisputedForPatient(address institution, address patient, uint40 until);

    // ─── Events ─────────────────────────────────────────────────────────────────────────────

    /// @notice Emitted when a grant is given or its terms replaced.
    /// @param grantId keccak256(patient, grantee, scopeKind, scopeValue): one grant per triple.
    /// @param patient Whose data.
    /// @param grantee Who may access.
    /// @param actor Who acted: the patient, or the guardian acting for it.
    /// @param terms The full terms (for a FHIR Consent export).
    /// @param viaSignature True when submitted with the actor's EIP-712 signature.
    event ConsentGranted(
        bytes32 indexed grantId,
        address indexed patient,
        address indexed grantee,
        address actor,
        GrantTerms terms,
        bool viaSignature
    );
    /// @notice Emitted when a grant is revoked.
    /// @param grantId The grant.
    /// @param patient Whose data.
    /// @param actor The patient or guardian who revoked it.
    event ConsentRevoked(bytes32 indexed grantId, address indexed patient, address actor);
    /// @notice Emitted when a patient appoints a guardian.
    event GuardianAdded(address indexed patient, address indexed guardian);
    /// @notice Emitted when a patient removes a guardian.
    event GuardianRemoved(address indexed patient, address indexed guardian);
    /// @notice Emitted when a hospital opens an emergency session.
    /// @param sessionId Session id (from 1).
    /// @param patient Whose data.
    /// @param institution The hospital.
    /// @param expiresAt Last second of the session.
    /// @param justificationDigest SHA-256 of the written justification (kept off chain).
    event BreakGlassOpened(
        uint256 indexed sessionId,
        address indexed patient,
        address indexed institution,
        uint40 expiresAt,
        bytes32 justificationDigest
    );
    /// @notice Emitted when a session is reviewed.
    /// @param sessionId The session.
    /// @param reviewer Patient, guardian or regulator.
    /// @param review Accepted or Disputed.
    /// @param disputedTotal The institution's disputed sessions after this review (all of them,
    /// counted against its limit or not).
    event BreakGlassReviewed(uint256 indexed sessionId, address indexed reviewer, Review review, uint256 disputedTotal);
    /// @notice Emitted when a dispute ends a session before its time (the disputed session itself,
    /// or the institution's current session for the same patient).
    /// @param sessionId The session that ended.
    /// @param disputedSessionId The disputed session that ended it (equal to `sessionId` for itself).
    /// @param expiresAt Its new last second: the second before the dispute.
    event BreakGlassEnded(uint256 indexed sessionId, uint256 indexed disputedSessionId, uint40 expiresAt);

    // ─── Grants ─────────────────────────────────────────────────────────────────────────────

    /// @notice Grants (or replaces) consent. Caller: the patient or one of its guardians.
    /// A guardian's grant is tied to its guardianship (see the contract notes).
    /// Requirements: valid grantee, scope, actions, purposes and window (`notBefore` before 2106);
    /// a guardian may not name itself or another of the patient's guardians as grantee.
    /// Emits {ConsentGranted}.
    /// @return grantId The grant's id.
    function grant(GrantTerms calldata terms) external returns (bytes32 grantId);

    /// @notice Grants consent with an EIP-712 signature by the patient or a guardian; anyone submits.
    /// @param signer Who signed (the patient or a guardian).
    /// @param nonce The patient's current nonce ({nonces}); consumed.
    /// @param deadline Last second the signature is valid.
    /// Emits {ConsentGranted} with `viaSignature` true.
    function grantBySig(GrantTerms calldata terms, address signer, uint256 nonce, uint256 deadline, bytes calldata signature)
        external
        returns (bytes32 grantId);

    /// @notice Revokes a grant. Caller: the patient or a current guardian. Emits {ConsentRevoked}.
    function revoke(bytes32 grantId) external;

    /// @notice Revokes a grant by EIP-712 signature of the patient or a guardian.
    function revokeBySig(bytes32 grantId, address signer, uint256 nonce, uint256 deadline, bytes calldata signature)
        external;

    // ─── Guardians ──────────────────────────────────────────────────────────────────────────

    /// @notice The caller (a patient) appoints `guardian`. Appointing a former guardian again starts
    /// a new term and uses up the patient's current nonce ({nonces}): requests signed before it are
    /// void. Emits {GuardianAdded}.
    function addGuardian(address guardian) external;

    /// @notice The caller (a patient) removes `guardian`; the grants it gave stop permitting access
    /// and stay ended even if it is appointed again. Emits {GuardianRemoved}.
    function removeGuardian(address guardian) external;

    // ─── Break-glass ────────────────────────────────────────────────────────────────────────

    /// @notice Opens an emergency read session for `patient`. Caller: an active hospital, specialist
    /// hospital or community clinic, neither at its dispute limit ({ConsentBreakGlassLimitReached})
    /// nor within `DISPUTE_WINDOW` of a dispute about this patient
    /// ({ConsentBreakGlassDisputedForPatient}). It replaces the caller's earlier session for the
    /// same patient, if any. Emits {BreakGlassOpened}.
    /// @return sessionId The new session.
    function openBreakGlass(address patient, bytes32 justificationDigest) external returns (uint256 sessionId);

    /// @notice Reviews a session: accepted, or disputed. A dispute ends the session and the
    /// institution's current session for the same patient at once, and counts against the
    /// institution (once per patient per `DISPUTE_WINDOW`; see the contract notes). Caller: the
    /// patient, a guardian, or an active regulator. Emits {BreakGlassReviewed}, and
    /// {BreakGlassEnded} for each session it ends.
    function reviewBreakGlass(uint256 sessionId, bool accept) external;

    // ─── Views ──────────────────────────────────────────────────────────────────────────────

    /// @notice Whether `accessor` may perform `action` (one bit) for `purpose` (a PurposeOfUse
    /// index, 0..3) on `patient`'s data in record `recordId` of category `category`.
    /// A record grant matches only that record, a category grant only that category, an All grant
    /// everything. Revoked, expired and not-yet-valid grants never match, nor do grants to a
    /// registry member that is not active, nor a guardian's grant once that guardianship ended.
    /// An open break-glass session (the accessor's latest for this patient, not ended by a
    /// dispute, its institution not at its dispute limit) permits READ for ETREAT.
    /// @return allowed Whether access is permitted.
    /// @return grantId The grant that permits it, or bytes32(sessionId) for break-glass, or 0.
    /// @return breakGlass True when an emergency session is what permits it.
    function checkAccess(
        address patient,
        address accessor,
        bytes32 recordId,
        bytes32 category,
        uint8 action,
        uint8 purpose
    ) external view returns (bool allowed, bytes32 grantId, bool breakGlass);

    /// @notice The stored record and current status (time- and guardianship-aware) of a grant.
    function grantOf(bytes32 grantId) external view returns (GrantRecord memory record, GrantStatus status);

    /// @notice For a grant a guardian gave: that guardian, and whether the guardianship under which
    /// it granted is still running. (address(0), false) for any other grant.
    function guardianOfGrant(bytes32 grantId) external view returns (address guardian, bool inOffice);

    /// @notice The id a grant for this triple has.
    function grantIdFor(address patient, address grantee, ScopeKind scopeKind, bytes32 scopeValue)
        external
        pure
        returns (bytes32);

    /// @notice Whether `guardian` may act for `patient`.
    function isGuardian(address patient, address guardian) external view returns (bool);

    /// @notice The next nonce a signed request of `patient` must carry.
    function nonces(address patient) external view returns (uint256);

    /// @notice A break-glass session.
    function session(uint256 sessionId) external view returns (BreakGlassSession memory);

    /// @notice How many break-glass sessions of `institution` were disputed, ever.
    function disputedSessions(address institution) external view returns (uint256);

    /// @notice 0 when disputes do not stop `institution` from opening a session for `patient` now;
    /// otherwise the first second at which they no longer do.
    function breakGlassBlockedUntil(address institution, address patient) external view returns (uint40);

    /// @notice Length of a break-glass session in seconds.
    function breakGlassDuration() external view returns (uint40);
}

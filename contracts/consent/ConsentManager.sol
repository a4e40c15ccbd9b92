// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IConsentManager} from "../../interfaces/IConsentManager.sol";
import {IInstitutionRegistry} from "../../interfaces/IInstitutionRegistry.sol";
import {Actions} from "../libraries/Actions.sol";
import {KindMasks} from "../libraries/KindMasks.sol";
import {Purposes} from "../libraries/Purposes.sol";

/// @title ConsentManager
/// @notice Patient consent, guardians and break-glass. See {IConsentManager}.
/// @dev A grant costs one storage slot: its id hashes (patient, grantee, scope), and the slot packs
/// the patient, the window, the actions, the purposes and whether a guardian gave it. `checkAccess`
/// derives the three ids a request could match (record, category, all) and reads at most three
/// slots, plus two more for a guardian's grant (who gave it in which term, and that guardianship).
contract ConsentManager is IConsentManager, EIP712, Nonces {
    // ─── Constants ──────────────────────────────────────────────────────────────────────────

    /// @dev The consent actions of {Actions}, public so that clients can read them.
    uint8 public constant ACTION_READ = Actions.READ;
    uint8 public constant ACTION_APPEND = Actions.APPEND;
    uint8 public constant ACTION_SHARE = Actions.SHARE;

    /// @dev The HL7 v3 PurposeOfUse indices of {Purposes} (bit `1 << index` in a purposes bitmap),
    /// public so that clients can read them.
    uint8 public constant PURPOSE_TREAT = Purposes.TREAT;
    uint8 public constant PURPOSE_HPAYMT = Purposes.HPAYMT;
    uint8 public constant PURPOSE_HRESCH = Purposes.HRESCH;
    uint8 public constant PURPOSE_ETREAT = Purposes.ETREAT;

    uint40 public constant NO_END = type(uint40).max;
    uint40 private constant MAX_BREAK_GLASS = 72 hours;

    /// @notice Counted disputes within `DISPUTE_WINDOW` at which an institution may no longer
    /// break the glass (a patient's disputes count once per window). {DisputeLog} keeps exactly
    /// this many dispute times.
    uint8 public constant DISPUTE_LIMIT = 3;
    /// @notice How long a dispute counts against its institution, and how long after a dispute the
    /// institution may not open a session for the same patient.
    uint40 public constant DISPUTE_WINDOW = 30 days;

    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(address patient,address grantee,uint8 scopeKind,bytes32 scopeValue,uint8 actions,uint8 purposes,"
        "uint40 notBefore,uint40 notAfter,address signer,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REVOKE_TYPEHASH =
        keccak256("Revoke(bytes32 grantId,address signer,uint256 nonce,uint256 deadline)");

    // ─── Storage ────────────────────────────────────────────────────────────────────────────

    IInstitutionRegistry private immutable REGISTRY;
    uint40 private immutable BREAK_GLASS_DURATION;

    /// @dev A guardian appointment. `term` counts the patient's appointments of this guardian, so
    /// a grant given in one term stays ended in the next.
    struct Guardianship {
        bool active;
        uint64 term;
    }

    /// @dev Who gave a guardian's grant, in which term. Written only for guardian grants.
    struct GrantGuardian {
        address guardian;
        uint64 term;
    }

    /// @dev Per (patient, institution): the session that counts (the latest one opened) and when a
    /// session of the pair was last disputed.
    struct PairState {
        uint64 latestSession;
        uint40 lastDisputedAt;
    }

    /// @dev Per institution, one slot: disputes ever, and the times of the last DISPUTE_LIMIT (3)
    /// counted ones, newest first (a dispute within DISPUTE_WINDOW of the same pair's previous one
    /// is not counted). The institution is at its limit while `thirdLast` is within DISPUTE_WINDOW.
    struct DisputeLog {
        uint64 total;
        uint40 last;
        uint40 secondLast;
        uint40 thirdLast;
    }

    mapping(bytes32 grantId => GrantRecord) private _grants;
    mapping(bytes32 grantId => GrantGuardian) private _grantGuardian;
    mapping(address patient => mapping(address guardian => Guardianship)) private _guardians;
    BreakGlassSession[] private _sessions; // id = index + 1
    mapping(bytes32 patientAndInstitution => PairState) private _pairs;
    mapping(address institution => DisputeLog) private _disputes;

    // ─── Constructor ────────────────────────────────────────────────────────────────────────

    /// @param registry The consortium registry consulted for institutions.
    /// @param breakGlassDuration_ Length of an emergency session in seconds (1 s to 72 h).
    constructor(IInstitutionRegistry registry, uint40 breakGlassDuration_) EIP712("MedChain ConsentManager", "1") {
        if (address(registry) == address(0)) revert ConsentZeroAddress();
        if (breakGlassDuration_ == 0 || breakGlassDuration_ > MAX_BREAK_GLASS) {
            revert ConsentInvalidBreakGlassDuration(breakGlassDuration_);
        }
        REGISTRY = registry;
        BREAK_GLASS_DURATION = breakGlassDuration_;
    }

    // ─── Grants ─────────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IConsentManager
    function grant(GrantTerms calldata terms) external returns (bytes32 grantId) {
        _checkActor(msg.sender, terms.patient);
        grantId = _grant(terms, msg.sender, false);
    }

    /// @inheritdoc IConsentManager
    function grantBySig(
        GrantTerms calldata terms,
        address signer,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external returns (bytes32 grantId) {
        bytes32 structHash = keccak256(
            abi.encode(
                GRANT_TYPEHASH,
                terms.patient,
                terms.grantee,
                terms.scopeKind,
                terms.scopeValue,
                terms.actions,
                terms.purposes,
                terms.notBefore,
                terms.notAfter,
                signer,
                nonce,
                deadline
            )
        );
        _verifySigned(terms.patient, structHash, signer, nonce, deadline, signature);
        grantId = _grant(terms, signer, true);
    }

    /// @inheritdoc IConsentManager
    function revoke(bytes32 grantId) external {
        GrantRecord storage g = _existingGrant(grantId);
        _checkActor(msg.sender, g.patient);
        _revoke(grantId, g, msg.sender);
    }

    /// @inheritdoc IConsentManager
    function revokeBySig(bytes32 grantId, address signer, uint256 nonce, uint256 deadline, bytes calldata signature)
        external
    {
        GrantRecord storage g = _existingGrant(grantId);
        bytes32 structHash = keccak256(abi.encode(REVOKE_TYPEHASH, grantId, signer, nonce, deadline));
        _verifySigned(g.patient, structHash, signer, nonce, deadline, signature);
        _revoke(grantId, g, signer);
    }

    // ─── Guardians ──────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IConsentManager
    function addGuardian(address guardian) external {
        if (guardian == address(0)) revert ConsentZeroAddress();
        if (guardian == msg.sender) revert ConsentSelfGrant(msg.sender);
        Guardianship storage g = _guardians[msg.sender][guardian];
        if (g.active) revert ConsentAlreadyGuardian(msg.sender, guardian);
        uint64 term = g.term;
        // A new term: grants from an earlier term of this guardian stay ended.
        _guardians[msg.sender][guardian] = Guardianship({active: true, term: term + 1});
        // A re-appointment also voids requests signed before it: one the guardian signed in an
        // earlier term would otherwise take effect in this one.
        if (term != 0) _useNonce(msg.sender);
        emit GuardianAdded(msg.sender, guardian);
    }

    /// @inheritdoc IConsentManager
    function removeGuardian(address guardian) external {
        Guardianship storage g = _guardians[msg.sender][guardian];
        if (!g.active) revert ConsentNotGuardian(msg.sender, guardian);
        g.active = false; // the term is kept, so re-appointment starts a new one
        emit GuardianRemoved(msg.sender, guardian);
    }

    // ─── Break-glass ────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IConsentManager
    function openBreakGlass(address patient, bytes32 justificationDigest) external returns (uint256 sessionId) {
        if (!REGISTRY.isActiveAny(msg.sender, KindMasks.CARE_PROVIDERS)) revert ConsentNotCareProvider(msg.sender);
        if (patient == address(0)) revert ConsentZeroAddress();
        if (patient == msg.sender) revert ConsentSelfGrant(patient);
        if (justificationDigest == bytes32(0)) revert ConsentMissingJustification();
        uint40 limitedUntil = _limitedUntil(msg.sender);
        if (block.timestamp < limitedUntil) {
            revert ConsentBreakGlassLimitReached(msg.sender, DISPUTE_LIMIT, limitedUntil);
        }
        PairState storage pair = _pairs[_pairKey(patient, msg.sender)];
        uint40 pairUntil = _pairBlockedUntil(pair);
        if (block.timestamp < pairUntil) revert ConsentBreakGlassDisputedForPatient(msg.sender, patient, pairUntil);
        uint40 expiresAt = uint40(block.timestamp) + BREAK_GLASS_DURATION;
        _sessions.push(
            BreakGlassSession({
                patient: patient,
                institution: msg.sender,
                openedAt: uint40(block.timestamp),
                expiresAt: expiresAt,
                review: Review.Pending,
                justificationDigest: justificationDigest
            })
        );
        sessionId = _sessions.length;
        pair.latestSession = SafeCast.toUint64(sessionId);
        emit BreakGlassOpened(sessionId, patient, msg.sender, expiresAt, justificationDigest);
    }

    /// @inheritdoc IConsentManager
    function reviewBreakGlass(uint256 sessionId, bool accept) external {
        BreakGlassSession storage s = _sessionStorage(sessionId);
        address institution = s.institution;
        // The institution never reviews its own session, even when it is also a guardian.
        bool mayReview = msg.sender != institution
            && (msg.sender == s.patient || _guardians[s.patient][msg.sender].active
                || REGISTRY.isActive(msg.sender, IInstitutionRegistry.Kind.Regulator));
        if (!mayReview) revert ConsentNotReviewer(msg.sender, sessionId);
        if (s.review != Review.Pending) revert ConsentSessionAlreadyReviewed(sessionId, s.review);
        DisputeLog storage log = _disputes[institution];
        if (accept) {
            s.review = Review.Accepted;
            emit BreakGlassReviewed(sessionId, msg.sender, Review.Accepted, log.total);
            return;
        }
        s.review = Review.Disputed;
        uint40 now_ = uint40(block.timestamp);
        uint64 total = log.total + 1;
        PairState storage pair = _pairs[_pairKey(s.patient, institution)];
        // A pair counts once per DISPUTE_WINDOW against the limit: disputing every renewal of one
        // emergency must not stop the institution's break-glass for all its other patients.
        if (now_ >= _pairBlockedUntil(pair)) {
            _disputes[institution] =
                DisputeLog({total: total, last: now_, secondLast: log.last, thirdLast: log.secondLast});
        } else {
            log.total = total;
        }
        pair.lastDisputedAt = now_;
        // End the disputed session and the pair's current one (opened before this review landed).
        bool endedItself = _end(s, now_);
        uint256 latest = pair.latestSession; // never 0: opening `s` set it
        bool endedLatest = latest != sessionId && _end(_sessions[latest - 1], now_);
        emit BreakGlassReviewed(sessionId, msg.sender, Review.Disputed, total);
        if (endedItself) emit BreakGlassEnded(sessionId, sessionId, now_ - 1);
        if (endedLatest) emit BreakGlassEnded(latest, sessionId, now_ - 1);
    }

    // ─── Internal logic ─────────────────────────────────────────────────────────────────────

    function _checkActor(address actor, address patient) private view {
        if (actor != patient && !_guardians[patient][actor].active) {
            revert ConsentNotPatientOrGuardian(actor, patient);
        }
    }

    function _verifySigned(
        address patient,
        bytes32 structHash,
        address signer,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) private {
        if (block.timestamp > deadline) revert ConsentSignatureExpired(deadline);
        uint256 expected = nonces(patient);
        if (nonce != expected) revert ConsentInvalidNonce(patient, expected, nonce);
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(_hashTypedDataV4(structHash), signature);
        if (err != ECDSA.RecoverError.NoError || recovered != signer || signer == address(0)) {
            revert ConsentInvalidSignature(signer);
        }
        if (signer != patient && !_guardians[patient][signer].active) {
            revert ConsentSignerNotAuthorized(signer, patient);
        }
        _useNonce(patient);
    }

    function _grant(GrantTerms calldata t, address actor, bool viaSignature) private returns (bytes32 grantId) {
        if (t.patient == address(0) || t.grantee == address(0)) revert ConsentZeroAddress();
        if (t.grantee == t.patient) revert ConsentSelfGrant(t.patient);
        // `actor` is the patient or one of its guardians (checked by the caller).
        bool byGuardian = actor != t.patient;
        if (byGuardian && (t.grantee == actor || _guardians[t.patient][t.grantee].active)) {
            revert ConsentGrantToGuardian(t.patient, actor, t.grantee);
        }
        bool scopeOk = (t.scopeKind == ScopeKind.All && t.scopeValue == bytes32(0))
            || ((t.scopeKind == ScopeKind.Record || t.scopeKind == ScopeKind.Category) && t.scopeValue != bytes32(0));
        if (!scopeOk) revert ConsentInvalidScope(t.scopeKind, t.scopeValue);
        if (t.actions == 0 || t.actions & ~Actions.ALL != 0) revert ConsentInvalidActions(t.actions);
        if (t.purposes == 0 || t.purposes & ~Purposes.ALL != 0) revert ConsentUnknownPurpose(t.purposes);
        if (t.notAfter < t.notBefore || t.notAfter < block.timestamp || t.notBefore > type(uint32).max) {
            revert ConsentInvalidWindow(t.notBefore, t.notAfter);
        }
        grantId = _grantId(t.patient, t.grantee, t.scopeKind, t.scopeValue);
        _grants[grantId] = GrantRecord({
            patient: t.patient,
            notBefore: uint32(t.notBefore), // checked above to fit
            notAfter: t.notAfter > type(uint32).max ? type(uint32).max : uint32(t.notAfter),
            actions: t.actions,
            purposes: t.purposes,
            byGuardian: byGuardian
        });
        if (byGuardian) _grantGuardian[grantId] = GrantGuardian(actor, _guardians[t.patient][actor].term);
        emit ConsentGranted(grantId, t.patient, t.grantee, actor, t, viaSignature);
    }

    function _revoke(bytes32 grantId, GrantRecord storage g, address actor) private {
        if (g.actions == 0) revert ConsentAlreadyRevoked(grantId);
        g.actions = 0;
        emit ConsentRevoked(grantId, g.patient, actor);
    }

    function _existingGrant(bytes32 grantId) private view returns (GrantRecord storage g) {
        g = _grants[grantId];
        if (g.patient == address(0)) revert ConsentUnknownGrant(grantId);
    }

    function _sessionStorage(uint256 sessionId) private view returns (BreakGlassSession storage) {
        if (sessionId == 0 || sessionId > _sessions.length) revert ConsentUnknownSession(sessionId);
        return _sessions[sessionId - 1];
    }

    function _grantId(address patient, address grantee, ScopeKind kind, bytes32 value) private pure returns (bytes32) {
        return keccak256(abi.encode(patient, grantee, kind, value));
    }

    function _pairKey(address patient, address institution) private pure returns (bytes32) {
        return keccak256(abi.encode(patient, institution));
    }

    /// @dev True when the grant is live now and covers the action and purpose bits; a guardian's
    /// grant also needs the guardianship it was given under.
    function _permits(bytes32 grantId, uint8 actionBit, uint8 purposeBit) private view returns (bool) {
        GrantRecord storage g = _grants[grantId];
        bool live = g.actions & actionBit != 0 && g.purposes & purposeBit != 0 && block.timestamp >= g.notBefore
            && block.timestamp <= g.notAfter;
        return live && (!g.byGuardian || _guardianInOffice(grantId, g.patient));
    }

    /// @dev Whether the guardianship under which a guardian's grant was given still runs.
    function _guardianInOffice(bytes32 grantId, address patient) private view returns (bool) {
        GrantGuardian storage by = _grantGuardian[grantId];
        Guardianship storage g = _guardians[patient][by.guardian];
        return g.active && g.term == by.term;
    }

    /// @dev Ends a live session: its last second becomes the one before `now_`. False if already over.
    function _end(BreakGlassSession storage s, uint40 now_) private returns (bool) {
        if (s.expiresAt < now_) return false;
        s.expiresAt = now_ - 1;
        return true;
    }

    /// @dev The first second at which `institution` is no longer at its dispute limit (0 if never).
    function _limitedUntil(address institution) private view returns (uint40) {
        uint40 thirdLast = _disputes[institution].thirdLast;
        return thirdLast > 0 ? thirdLast + DISPUTE_WINDOW : 0;
    }

    /// @dev The first second at which a dispute no longer stops the pair's institution (0 if never).
    function _pairBlockedUntil(PairState storage pair) private view returns (uint40) {
        uint40 disputedAt = pair.lastDisputedAt;
        return disputedAt > 0 ? disputedAt + DISPUTE_WINDOW : 0;
    }

    // ─── Views ──────────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IConsentManager
    function checkAccess(
        address patient,
        address accessor,
        bytes32 recordId,
        bytes32 category,
        uint8 action,
        uint8 purpose
    ) external view returns (bool allowed, bytes32 grantId, bool breakGlass) {
        if (action == 0 || action & (action - 1) != 0 || action > Actions.SHARE) revert ConsentInvalidActions(action);
        if (!Purposes.isKnown(purpose)) revert ConsentUnknownPurpose(purpose);
        if (accessor == patient) return (true, bytes32(0), false);
        // An institution's grants stop working while it is not active; persons are not members.
        IInstitutionRegistry.Status status = REGISTRY.statusOf(accessor);
        if (status != IInstitutionRegistry.Status.None && status != IInstitutionRegistry.Status.Active) {
            return (false, bytes32(0), false);
        }
        uint8 purposeBit = Purposes.bit(purpose);
        if (recordId != bytes32(0)) {
            grantId = _grantId(patient, accessor, ScopeKind.Record, recordId);
            if (_permits(grantId, action, purposeBit)) return (true, grantId, false);
        }
        if (category != bytes32(0)) {
            grantId = _grantId(patient, accessor, ScopeKind.Category, category);
            if (_permits(grantId, action, purposeBit)) return (true, grantId, false);
        }
        grantId = _grantId(patient, accessor, ScopeKind.All, bytes32(0));
        if (_permits(grantId, action, purposeBit)) return (true, grantId, false);

        if (action == Actions.READ && purpose == Purposes.ETREAT) {
            // Only the pair's latest session counts: an earlier one was replaced when it opened.
            uint256 sessionId = _pairs[_pairKey(patient, accessor)].latestSession;
            if (
                sessionId != 0 && block.timestamp <= _sessions[sessionId - 1].expiresAt
                    && block.timestamp >= _limitedUntil(accessor)
            ) {
                return (true, bytes32(sessionId), true);
            }
        }
        return (false, bytes32(0), false);
    }

    /// @inheritdoc IConsentManager
    function grantOf(bytes32 grantId) external view returns (GrantRecord memory record, GrantStatus status) {
        record = _grants[grantId];
        if (record.patient == address(0)) status = GrantStatus.None;
        else if (record.actions == 0) status = GrantStatus.Revoked;
        else if (record.byGuardian && !_guardianInOffice(grantId, record.patient)) status = GrantStatus.Lapsed;
        else if (block.timestamp > record.notAfter) status = GrantStatus.Expired;
        else if (block.timestamp < record.notBefore) status = GrantStatus.Pending;
        else status = GrantStatus.Active;
    }

    /// @inheritdoc IConsentManager
    function guardianOfGrant(bytes32 grantId) external view returns (address guardian, bool inOffice) {
        GrantRecord storage g = _grants[grantId];
        if (!g.byGuardian) return (address(0), false);
        return (_grantGuardian[grantId].guardian, _guardianInOffice(grantId, g.patient));
    }

    /// @inheritdoc IConsentManager
    function grantIdFor(address patient, address grantee, ScopeKind scopeKind, bytes32 scopeValue)
        external
        pure
        returns (bytes32)
    {
        return _grantId(patient, grantee, scopeKind, scopeValue);
    }

    /// @inheritdoc IConsentManager
    function isGuardian(address patient, address guardian) external view returns (bool) {
        return _guardians[patient][guardian].active;
    }

    /// @inheritdoc IConsentManager
    function nonces(address patient) public view override(IConsentManager, Nonces) returns (uint256) {
        return super.nonces(patient);
    }

    /// @inheritdoc IConsentManager
    function session(uint256 sessionId) external view returns (BreakGlassSession memory) {
        return _sessionStorage(sessionId);
    }

    /// @inheritdoc IConsentManager
    function disputedSessions(address institution) external view returns (uint256) {
        return _disputes[institution].total;
    }

    /// @inheritdoc IConsentManager
    function breakGlassBlockedUntil(address institution, address patient) external view returns (uint40) {
        uint40 limitedUntil = _limitedUntil(institution);
        uint40 pairUntil = _pairBlockedUntil(_pairs[_pairKey(patient, institution)]);
        uint40 until = limitedUntil > pairUntil ? limitedUntil : pairUntil;
        return block.timestamp < until ? until : 0;
    }

    /// @inheritdoc IConsentManager
    function breakGlassDuration() external view returns (uint40) {
        return BREAK_GLASS_DURATION;
    }
}

// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IInstitutionRegistry} from "../../interfaces/IInstitutionRegistry.sol";

/// @title ValidatorPolicy
/// @notice Which consortium members validate blocks (Hyperledger Besu QBFT, contract validator
/// selection), and the bounded top-N ranking that picks them. See
/// {IInstitutionRegistry-getValidators} for the rule and why each parameter has its value.
/// @dev A candidate is ranked by one uint256 key, highest first:
/// bit 224 = meets the minimum rating, bits 160..223 = governance weight, bits 0..159 = the
/// address inverted (so the lower address wins a tie). Keys are unique because addresses are, so
/// the order is total and the selection deterministic. The address is recovered from the key.
library ValidatorPolicy {
    // ─── Parameters ─────────────────────────────────────────────────────────────────────────

    /// @notice Most validators the registry names. QBFT tolerates f faulty validators out of
    /// 3f + 1: seven tolerate two, while each round's messages (quadratic in the set) stay few.
    uint256 internal constant MAX_VALIDATORS = 7;

    /// @notice Lowest credit rating (1..100) that qualifies: the pass mark of the 100-point scale.
    uint8 internal constant MIN_RATING = 60;

    /// @notice Kinds that may validate (bit `1 << uint8(kind)`): hospitals, specialist hospitals,
    /// insurers and the regulator. Not community clinics, laboratories, pharmacies,
    /// manufacturers or distributors (see {IInstitutionRegistry-getValidators}).
    uint256 internal constant KIND_MASK = (1 << uint8(IInstitutionRegistry.Kind.Hospital))
        | (1 << uint8(IInstitutionRegistry.Kind.SpecialistHospital))
        | (1 << uint8(IInstitutionRegistry.Kind.Insurer)) | (1 << uint8(IInstitutionRegistry.Kind.Regulator));

    uint256 private constant MEETS_MINIMUM = 1 << 224;
    uint256 private constant WEIGHT_SHIFT = 160;

    // ─── Ranking ────────────────────────────────────────────────────────────────────────────

    /// @notice Whether members of `kind` may validate.
    function isEligibleKind(IInstitutionRegistry.Kind kind) internal pure returns (bool) {
        return (KIND_MASK & (1 << uint8(kind))) != 0;
    }

    /// @notice The ranking key of a candidate with governance weight `weight` and rating `rating`.
    function rankKey(address account, uint64 weight, uint8 rating) internal pure returns (uint256) {
        uint256 key = (uint256(weight) << WEIGHT_SHIFT) | (type(uint160).max - uint160(account));
        return rating >= MIN_RATING ? key | MEETS_MINIMUM : key;
    }

    /// @notice Inserts `key` into `top`, whose first `size` entries are sorted highest first, and
    /// keeps at most `top.length` of them (the lowest falls off). Returns the new size.
    /// @dev At most `top.length` moves per insertion.
    function insert(uint256[] memory top, uint256 size, uint256 key) internal pure returns (uint256) {
        uint256 capacity = top.length;
        uint256 slot;
        if (size < capacity) {
            slot = size;
            ++size;
        } else {
            // Full: the key must beat the lowest entry kept to enter.
            if (capacity == 0 || key <= top[capacity - 1]) return size;
            slot = capacity - 1;
        }
        // Shift lower entries down one place until the key's place is found.
        while (slot > 0 && top[slot - 1] < key) {
            top[slot] = top[slot - 1];
            --slot;
        }
        top[slot] = key;
        return size;
    }

    /// @notice The validators named by the first `size` ranked keys: those meeting the minimum
    /// rating when any does, all of them otherwise (so the set is never empty while a candidate
    /// exists).
    function select(uint256[] memory top, uint256 size) internal pure returns (address[] memory validators) {
        uint256 count = size;
        if (size > 0 && (top[0] & MEETS_MINIMUM) != 0) {
            // Keys meeting the minimum rank above every key that does not: they are a prefix.
            count = 0;
            while (count < size && (top[count] & MEETS_MINIMUM) != 0) ++count;
        }
        validators = new address[](count);
        for (uint256 i; i < count; ++i) {
            validators[i] = address(type(uint160).max - uint160(top[i]));
        }
    }
}

// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Purposes
/// @notice HL7 v3 PurposeOfUse codes, as indices: an access names one index, a grant holds a bitmap
/// with bit `1 << index` set for each purpose it allows. Mirrored by `medchain.consent.Purpose`.
library Purposes {
    /// @notice TREAT: treatment.
    uint8 internal constant TREAT = 0;
    /// @notice HPAYMT: healthcare payment (an insurer adjudicating a claim).
    uint8 internal constant HPAYMT = 1;
    /// @notice HRESCH: healthcare research.
    uint8 internal constant HRESCH = 2;
    /// @notice ETREAT: emergency treatment (break-glass); the highest index.
    uint8 internal constant ETREAT = 3;
    /// @notice The bitmap of every known purpose; a grant with any other bit is refused.
    uint8 internal constant ALL =
        (uint8(1) << TREAT) | (uint8(1) << HPAYMT) | (uint8(1) << HRESCH) | (uint8(1) << ETREAT);

    /// @notice Whether `purpose` is a known index (TREAT to ETREAT).
    /// @param purpose A PurposeOfUse index.
    /// @return True for a known purpose.
    function isKnown(uint8 purpose) internal pure returns (bool) {
        return purpose <= ETREAT;
    }

    /// @notice The bit of `purpose` in a purposes bitmap: `1 << purpose` (0 for an index past 7).
    /// @param purpose A PurposeOfUse index.
    /// @return The purpose's bit.
    function bit(uint8 purpose) internal pure returns (uint8) {
        return uint8(1) << purpose;
    }
}

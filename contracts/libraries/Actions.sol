// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Actions
/// @notice The consent actions bitmap: what a grantee may do with a patient's data. A grant holds a
/// set of them; an access check asks for exactly one. Mirrored by `medchain.consent.Actions`.
library Actions {
    /// @notice Read a record (and receive its key).
    uint8 internal constant READ = 1;
    /// @notice Add records for the patient: the treatment relationship a custodian needs to anchor.
    uint8 internal constant APPEND = 2;
    /// @notice Pass the data on to a third party.
    uint8 internal constant SHARE = 4;
    /// @notice Every known action; a grant with any other bit is refused.
    uint8 internal constant ALL = READ | APPEND | SHARE;
}

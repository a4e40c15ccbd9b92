// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IInstitutionRegistry} from "../../interfaces/IInstitutionRegistry.sol";

/// @title KindMasks
/// @notice Sets of institution kinds as {IInstitutionRegistry-isActiveAny} takes them: bit
/// `1 << uint8(kind)` set for each kind in the set. The groups name who each contract accepts for
/// a role. Mirrored by `medchain.types.kind_mask`.
/// @dev Each kind's bit is written out once here; the registry's `isActiveAny` reads a mask with the
/// same shift inline (a library call there would cost every membership check a jump).
library KindMasks {
    /// @notice Hospital.
    uint256 internal constant HOSPITAL = 1 << uint8(IInstitutionRegistry.Kind.Hospital);
    /// @notice Community clinic.
    uint256 internal constant COMMUNITY_CLINIC = 1 << uint8(IInstitutionRegistry.Kind.CommunityClinic);
    /// @notice Specialist hospital.
    uint256 internal constant SPECIALIST_HOSPITAL = 1 << uint8(IInstitutionRegistry.Kind.SpecialistHospital);
    /// @notice Laboratory.
    uint256 internal constant LABORATORY = 1 << uint8(IInstitutionRegistry.Kind.Laboratory);
    /// @notice Pharmacy.
    uint256 internal constant PHARMACY = 1 << uint8(IInstitutionRegistry.Kind.Pharmacy);
    /// @notice Manufacturer.
    uint256 internal constant MANUFACTURER = 1 << uint8(IInstitutionRegistry.Kind.Manufacturer);
    /// @notice Distributor.
    uint256 internal constant DISTRIBUTOR = 1 << uint8(IInstitutionRegistry.Kind.Distributor);

    /// @notice Who treats patients: the hospital kinds (ConsentManager: who may break the glass).
    uint256 internal constant CARE_PROVIDERS = HOSPITAL | COMMUNITY_CLINIC | SPECIALIST_HOSPITAL;
    /// @notice Who holds health records: care providers and laboratories (EHRIndex).
    uint256 internal constant CUSTODIANS = CARE_PROVIDERS | LABORATORY;
    /// @notice Who bills an insurer: custodians and pharmacies (ClaimsProcessor).
    uint256 internal constant BILLING_PROVIDERS = CUSTODIANS | PHARMACY;
    /// @notice Who dispenses drugs to patients: care providers and pharmacies (DrugProvenance).
    uint256 internal constant DISPENSERS = CARE_PROVIDERS | PHARMACY;
    /// @notice Who may receive a shipment: dispensers and distributors (DrugProvenance).
    uint256 internal constant RECIPIENTS = DISPENSERS | DISTRIBUTOR;
    /// @notice Who may hold units and so ship them: recipients and manufacturers (DrugProvenance).
    uint256 internal constant HOLDERS = RECIPIENTS | MANUFACTURER;
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title IConsentRegistry
/// @notice Patient consent grants and revocations, delegates (guardians) and break-glass access.
/// @dev No personal data on chain: patients are pseudonymous accounts; justifications are hashes.
interface IConsentRegistry {
    /// @notice Consent lifecycle as stored. Expiry is not a stored state: it follows from time.
    enum ConsentState {
        None,
        Active,
        Revoked
    }

    /// @notice Break-glass review outcome, recorded by an auditor.
    enum Review {
        Pending,
        Justified,
        NotJustified
    }

    /// @notice One consent, packed into one storage slot. `grantee == address(0)` means every
    /// active member. `categories` and `purposes` are bit sets (bit i = code i).
    struct Consent {
        address grantee;
        uint16 categories;
        uint8 purposes;
        ConsentState state;
        uint32 validFrom;
        uint32 validUntil;
    }

    /// @notice What a patient grants: to whom (`address(0)` = every active member), which
    /// categories and purposes (bit sets), and the window `[validFrom, validUntil)` in seconds.
    struct GrantTerms {
        address grantee;
        uint16 categories;
        uint8 purposes;
        uint32 validFrom;
        uint32 validUntil;
    }

    /// @notice A declared emergency access.
    struct BreakGlass {
        address member;
        uint32 declaredAt;
        uint32 expiresAt;
        Review review;
        address patient;
        bytes32 justificationHash;
        bytes32 reviewReasonHash;
    }

    // ----------------------------------------------------------------- ERRORS
    error ConsentRegistryNotPatientOrDelegate(address patient, address caller);
    error ConsentRegistryNotPatient(address patient, address caller);
    error ConsentRegistryNotActiveMember(address account);
    error ConsentRegistryNotActiveAuditor(address account);
    error ConsentRegistryInvalidSignature();
    error ConsentRegistryExpiredSignature(uint256 deadline);
    error ConsentRegistryInvalidWindow(uint32 validFrom, uint32 validUntil);
    error ConsentRegistryEmptyScope(uint16 categories, uint8 purposes);
    error ConsentRegistryInvalidPatient(address patient);
    error ConsentRegistryUnknownConsent(uint256 consentId);
    error ConsentRegistryAlreadyRevoked(uint256 consentId);
    error ConsentRegistryInvalidDelegate(address delegate);
    error ConsentRegistryDelegateUnchanged(address patient, address delegate, bool appointed);
    error ConsentRegistryUnknownBreakGlass(uint256 breakGlassId);
    error ConsentRegistryAlreadyReviewed(uint256 breakGlassId);
    error ConsentRegistryBreakGlassBlocked(address patient, address member);
    error ConsentRegistryBreakGlassLimit(address member, uint32 limit, uint32 window, uint32 retryAt);
    error ConsentRegistryBreakGlassNotBlocked(address patient, address member);
    error ConsentRegistryRestrictionUnchanged(address patient, bool restricted);

    // ----------------------------------------------------------------- EVENTS
    event ConsentGranted(
        uint256 indexed consentId,
        address indexed patient,
        address indexed grantee,
        uint16 categories,
        uint8 purposes,
        uint32 validFrom,
        uint32 validUntil,
        address signer
    );
    event ConsentRevoked(uint256 indexed consentId, address indexed patient, address signer);
    event DelegateChanged(address indexed patient, address indexed delegate, bool appointed);
    event BreakGlassDeclared(
        uint256 indexed breakGlassId,
        address indexed patient,
        address indexed member,
        bytes32 justificationHash,
        uint32 expiresAt
    );
    event BreakGlassReviewed(uint256 indexed breakGlassId, address indexed auditor, Review review, bytes32 reasonHash);
    event BreakGlassBlocked(address indexed patient, address indexed member, uint256 indexed breakGlassId);
    event BreakGlassBlockLifted(address indexed patient, address indexed member, address auditor);
    /// @notice The patient restricted (or lifted the restriction of) the sharing of all their records: while
    /// restricted, no consent permits anything (consents stay, overridden); break-glass still applies.
    event SharingRestrictionChanged(address indexed patient, bool restricted, address signer);

    // ------------------------------------------------------------------ VIEWS
    function consent(uint256 consentId) external view returns (Consent memory);
    function consentCount(address patient) external view returns (uint256);
    function nonces(address patient) external view returns (uint256);
    function isDelegate(address patient, address delegate) external view returns (bool);
    function isPermitted(address patient, address requester, uint8 category, uint8 purpose) external view returns (bool);
    function permittingConsent(address patient, address requester, uint8 category, uint8 purpose)
        external
        view
        returns (bool permitted, uint256 consentId);
    function breakGlass(uint256 breakGlassId) external view returns (BreakGlass memory);
    function breakGlassCount() external view returns (uint256);
    function emergencyAccess(address patient, address member) external view returns (bool active, uint256 breakGlassId);
    function breakGlassDuration() external view returns (uint32);
    function breakGlassBlocked(address patient, address member) external view returns (bool);
    function breakGlassLimit() external view returns (uint32 limit, uint32 window);
    function isRestricted(address patient) external view returns (bool);
}

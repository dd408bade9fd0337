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

    /// @notice One consent, packed into one storage slot. `recipients` is the set of named members as
    /// a bit set over their consortium index (bit i = the member at index i; see {grantees}):
    /// a member that joins later is never in it. `categories` and `purposes` are bit sets (bit i = code i).
    /// `careFrom`/`careTo` bound the day of care (days since 1970-01-01, UTC) of the records it covers,
    /// inclusive; 0 leaves that end open.
    struct Consent {
        uint128 recipients;
        uint16 categories;
        uint8 purposes;
        ConsentState state;
        uint32 validFrom;
        uint32 validUntil;
        uint16 careFrom;
        uint16 careTo;
    }

    // A grant's terms. `grantees`: the members it names, each active when signed. `terms`: the rest in one
    // word, which is how `grant`, `grantBySig` and {ConsentGranted} carry them (a relayed grant pays for every
    // word of calldata and log). From the lowest bit: categories (bits 0-15) and purposes (16-23) as bit sets;
    // bits 24-31 zero (where a stored consent keeps its state); the window `[validFrom, validUntil)` in
    // seconds (32-63, 64-95); the days of care `[careFrom, careTo]` whose records it covers, 0 = open end
    // (96-111, 112-127); the version of the consortium's privacy notice the patient was shown before signing
    // (128-143); every higher bit zero. So the low 128 bits are the fields as {Consent} stores them above its
    // recipients. `noticeHash`: the notice's SHA-256. The EIP-712 `ConsentGrant` the patient signs names each
    // of these fields on its own.

    /// @notice What a patient lets a delegate (guardian) do, in one slot. `scope`: 0 none (removed),
    /// 1 view (read the patient's records, consents and history), 2 manage (also grant, revoke and
    /// restrict); `validUntil`: the second it ends (0: until removed); `excludedCategories`: a bit set of
    /// record categories the delegate may neither see nor decide on (for example mental health).
    struct Delegation {
        uint8 scope;
        uint32 validUntil;
        uint16 excludedCategories;
    }

    /// @notice A recovery of a lost key under way: the key proposed, the round it belongs to (a new
    /// proposal starts a new round, so an approval is never counted for another), the approvals counted
    /// (members and guardians) and, once enough, the second from which it may complete (the time lock).
    struct Recovery {
        address newKey;
        uint32 round;
        uint16 approvals;
        uint32 readyAt;
    }

    /// @notice How a patient account's signing key changed: planned rotation (signed by the old key),
    /// recovery (approved by members and guardians, after the time lock), or a minor's claim at age.
    enum Succession {
        None,
        Rotation,
        Recovery,
        MinorClaim
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
    error ConsentRegistryDelegateUnchanged(address patient, address delegate);
    error ConsentRegistryInvalidDelegation(uint8 scope, uint32 validUntil, uint16 excludedCategories);
    error ConsentRegistryDelegateExcluded(address delegate, uint16 categories);
    error ConsentRegistryKeyInUse(address key);
    error ConsentRegistryNoRecovery(address account);
    error ConsentRegistryRecoveryLocked(address account, uint32 readyAt);
    error ConsentRegistryRecoveryAlreadyApproved(address account, address approver);
    error ConsentRegistryRecoveryOtherKey(address account, address pending);
    error ConsentRegistryNotGuardian(address account, address signer);
    error ConsentRegistryNotMinor(address account);
    error ConsentRegistryMinorNotOfAge(address account, uint16 minorUntil);
    error ConsentRegistryInvalidMinor(address account, uint16 minorUntil);
    error ConsentRegistryUnknownBreakGlass(uint256 breakGlassId);
    error ConsentRegistryAlreadyReviewed(uint256 breakGlassId);
    error ConsentRegistryBreakGlassBlocked(address patient, address member);
    error ConsentRegistryBreakGlassLimit(address member, uint32 limit, uint32 window, uint32 retryAt);
    error ConsentRegistryBreakGlassNotBlocked(address patient, address member);
    error ConsentRegistryRestrictionUnchanged(address patient, bool restricted);
    error ConsentRegistryNoRecipients();
    error ConsentRegistryRecipientNotMember(address grantee);
    error ConsentRegistryDuplicateRecipient(address grantee);
    error ConsentRegistryInvalidCareRange(uint16 careFrom, uint16 careTo);
    error ConsentRegistryInvalidNotice(uint16 noticeVersion, bytes32 noticeHash);
    /// @notice Bits of `terms` that carry nothing are set (bits 24-31, or above bit 143).
    error ConsentRegistryInvalidTerms(uint256 terms);

    // ----------------------------------------------------------------- EVENTS
    /// @notice A grant, with every term the patient signed: the members it names (`recipients`: one bit per
    /// consortium index, as {Consent} stores them; `grantees(consentId)` lists their accounts), the scope,
    /// window, days of care and notice version (`terms`, laid out as "A grant's terms" above says) and the privacy
    /// notice's SHA-256, and who signed (the patient, or the delegate who acted for them).
    event ConsentGranted(
        uint256 indexed consentId,
        address indexed patient,
        uint256 terms,
        uint128 recipients,
        bytes32 noticeHash,
        address signer
    );
    event ConsentRevoked(uint256 indexed consentId, address indexed patient, address signer);
    event DelegateChanged(
        address indexed patient, address indexed delegate, uint8 scope, uint32 validUntil, uint16 excludedCategories
    );
    event ConsentConfirmed(uint256 indexed consentId, address indexed patient, address signer);
    event KeyRotated(address indexed account, address indexed oldKey, address indexed newKey, Succession how);
    event RecoveryApproved(address indexed account, address indexed newKey, uint32 round, address approver, uint16 approvals);
    event RecoveryStarted(address indexed account, address indexed newKey, uint32 readyAt);
    event RecoveryCancelled(address indexed account, address indexed newKey, address signer);
    event MinorRegistered(address indexed account, address indexed guardian, uint16 minorUntil, address member);
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
    /// @notice Whether `delegate` is the patient's delegate now (any scope, before its end).
    function isDelegate(address patient, address delegate) external view returns (bool);
    /// @notice The account `key` signs for now: the account a rotation or recovery gave it, else the key's own
    /// address, or zero for an account's own address once its key was replaced (it speaks for no one).
    function accountOf(address key) external view returns (address);
    /// @notice The key that signs for `account` now (the account's own address until a succession).
    function keyOf(address account) external view returns (address);
    /// @notice The recovery under way for `account` (newKey zero: none).
    function recovery(address account) external view returns (Recovery memory);
    /// @notice The day (since 1970-01-01) from which a minor's account may be claimed (0: not a minor).
    function minorUntil(address account) external view returns (uint16);
    /// @notice The delegation as stored (an ended one included: compare `validUntil` with the time).
    function delegation(address patient, address delegate) external view returns (Delegation memory);
    /// @notice The members a consent names, in consortium index order.
    function grantees(uint256 consentId) external view returns (address[] memory);
    function isPermitted(address patient, address requester, uint8 category, uint8 purpose, uint16 encounterDay)
        external
        view
        returns (bool);
    function permittingConsent(address patient, address requester, uint8 category, uint8 purpose, uint16 encounterDay)
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

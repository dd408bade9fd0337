// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IConsentRegistry} from "./interfaces/IConsentRegistry.sol";
import {EIP712Signatures} from "./utils/EIP712Signatures.sol";
import {MembershipMirror} from "./utils/MembershipMirror.sol";
import {Role, MemberStatus} from "./interfaces/IConsortiumRegistry.sol";

/// @title ConsentRegistry
/// @notice Patients decide who may read which categories of their records, for which purposes,
/// and until when, naming each member (PIPL Art. 23: a member that joins later needs a new consent), and
/// for which days of care. Members ask `permittingConsent` at the current block before releasing a record.
/// @dev Grants and revocations come from the patient's own account (or a delegate's), or are
/// relayed by any active member with the patient's (or delegate's) EIP-712 signature, so patients
/// need no ether. Signed messages carry the patient's nonce (one sequence per patient, shared by
/// the patient and their delegates) and a deadline; the domain binds chain id and this contract.
/// A consent id is `(uint256(uint160(patient)) << 96) | index`: unique, and it names its patient.
/// Break-glass: an active member may declare emergency access to a patient; it is allowed for
/// `breakGlassDuration` seconds, recorded, and stays flagged until an auditor reviews it.
/// What is on chain, and why: consents and break-glass are evaluated here at every release, so they
/// name the patient's account, the grantee or declaring member, and a grant's categories and purposes
/// (the patient's own statement of what they allow, not of what records exist). A break-glass
/// declaration shows only who, for whom and until when: its coded reason and justification stay with
/// the declaring member, bound by a salted commitment (`justificationHash`) that auditors open.
contract ConsentRegistry is IConsentRegistry, EIP712Signatures, MembershipMirror {
    // ----------------------------------------------------------------- CONSTANTS
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "ConsentGrant(address patient,address[] grantees,uint16 categories,uint8 purposes,uint32 validFrom,uint32 validUntil,uint16 careFrom,uint16 careTo,uint16 noticeVersion,bytes32 noticeHash,uint256 nonce,uint256 deadline)"
    );
    /// @notice A consent names at most this many members: its recipient set has one bit per consortium index.
    uint256 public constant MAX_RECIPIENT_INDEX = 127;
    bytes32 public constant REVOCATION_TYPEHASH =
        keccak256("ConsentRevocation(address patient,uint256 consentId,uint256 nonce,uint256 deadline)");
    bytes32 public constant DELEGATION_TYPEHASH = keccak256(
        "DelegateChange(address patient,address delegate,uint8 scope,uint32 validUntil,uint16 excludedCategories,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant CONFIRMATION_TYPEHASH =
        keccak256("ConsentConfirmation(address patient,uint256 consentId,uint256 nonce,uint256 deadline)");
    bytes32 public constant KEY_ROTATION_TYPEHASH =
        keccak256("KeyRotation(address account,address newKey,uint256 nonce,uint256 deadline)");
    bytes32 public constant RECOVERY_APPROVAL_TYPEHASH =
        keccak256("RecoveryApproval(address account,address newKey,uint32 round,uint256 deadline)");
    bytes32 public constant RECOVERY_CANCELLATION_TYPEHASH =
        keccak256("RecoveryCancellation(address account,address newKey,uint256 nonce,uint256 deadline)");
    bytes32 public constant MINOR_CLAIM_TYPEHASH =
        keccak256("MinorClaim(address account,address key,uint8 guardianScope,uint256 deadline)");
    /// @notice Delegate scopes: view the patient's records, consents and history; or also manage consents.
    uint8 public constant DELEGATE_VIEW = 1;
    uint8 public constant DELEGATE_MANAGE = 2;
    bytes32 public constant RESTRICTION_TYPEHASH =
        keccak256("SharingRestriction(address patient,bool restricted,uint256 nonce,uint256 deadline)");

    // ------------------------------------------------------------------- STORAGE
    /// @dev Nonce, consent count and the sharing restriction share one slot: a relayed grant writes it
    /// once, and {permittingConsent} reads the restriction with the count it reads anyway.
    struct PatientState {
        uint64 nonce;
        uint64 consentCount;
        bool restricted;
        /// @dev Another key than the account's own address signs for it (read with the nonce, so the
        /// common case, a patient signing with their own address, costs no further read).
        bool keyReplaced;
    }

    uint32 private immutable _breakGlassDuration;
    /// @dev At most `_breakGlassLimit` declarations per member in any `_breakGlassWindow` seconds:
    /// the member's last `_breakGlassLimit` declaration times, as a ring.
    uint32 private immutable _breakGlassLimit;
    uint32 private immutable _breakGlassWindow;
    mapping(address member => uint256 position) private _breakGlassRingPosition;
    mapping(address member => mapping(uint256 slot => uint32 declaredAt)) private _breakGlassRing;
    /// @dev Set by a not-justified review: the member may not declare for the patient until lifted.
    mapping(address patient => mapping(address member => bool)) private _breakGlassBlocked;
    mapping(address patient => PatientState) private _patients;
    mapping(uint256 consentId => Consent) private _consents;
    mapping(address patient => mapping(address delegate => Delegation)) private _delegates;
    /// @dev Succession: the key that signs for an account (zero: the account's own address) and, for a key
    /// given to an account, that account. An account's own address whose key was replaced signs for no one.
    mapping(address account => address key) private _keyOf;
    mapping(address key => address account) private _accountOfKey;
    mapping(address account => Recovery) private _recoveries;
    mapping(address account => mapping(uint32 round => mapping(address approver => bool))) private _recoveryApproved;
    /// @dev A minor's account: the first day it may be claimed (the month after the consortium's age is
    /// reached, so no birth date is on chain) and the guardian the enrolling member registered.
    struct Minor {
        uint16 until;
        address guardian;
    }

    mapping(address account => Minor) private _minors;
    /// @dev What a key given to an account and replaced since maps to: it signs for no one, ever again.
    address private constant RETIRED = address(1);
    uint16 private immutable _recoveryThreshold;
    uint32 private immutable _recoveryDelay;
    BreakGlass[] private _breakGlasses;
    mapping(address patient => mapping(address member => uint256 breakGlassId)) private _latestBreakGlass;

    /// @param breakGlassLimit_ Declarations one member may make in any `breakGlassWindow_` seconds (at least 1).
    /// @param recoveryThreshold_ Approvals (members and guardians) a recovery needs (at least 1).
    /// @param recoveryDelay_ Seconds between enough approvals and completion, while the old key may cancel.
    constructor(
        address registry_,
        uint32 breakGlassDuration_,
        uint32 breakGlassLimit_,
        uint32 breakGlassWindow_,
        uint16 recoveryThreshold_,
        uint32 recoveryDelay_
    ) EIP712Signatures("MedLedger Consent", "1") MembershipMirror(registry_) {
        _breakGlassDuration = breakGlassDuration_;
        _breakGlassLimit = breakGlassLimit_ == 0 ? 1 : breakGlassLimit_;
        _breakGlassWindow = breakGlassWindow_;
        _recoveryThreshold = recoveryThreshold_ == 0 ? 1 : recoveryThreshold_;
        _recoveryDelay = recoveryDelay_;
    }

    // ------------------------------------------------------------------- GRANTS
    /// @notice Grants consent, sent by the patient or one of their delegates who manages consents.
    /// @dev Requirements: caller is the patient or a managing delegate before its end whose excluded
    /// categories the grant does not touch (so never the zero address); `terms` as the interface lays them
    /// out, with non-empty categories and purposes, `validFrom < validUntil` and `validUntil` in the future.
    /// Emits {ConsentGranted}.
    function grant(address patient, address[] calldata named, uint256 terms, bytes32 noticeHash)
        external
        returns (uint256)
    {
        _checkActs(patient, msg.sender, uint16(terms));
        PatientState memory ps = _patients[patient];
        _patients[patient].consentCount = ps.consentCount + 1;
        return _grant(patient, ps.consentCount, named, terms, noticeHash, msg.sender);
    }

    /// @notice Grants consent on the patient's behalf with their (or a delegate's) EIP-712 signature.
    /// @dev Requirements: caller is an active member; deadline not passed; the signature is by the
    /// patient or a delegate over the current nonce; scope and window as in {grant}. The patient's nonce
    /// and consent count share a slot, written once. Emits {ConsentGranted}.
    function grantBySig(
        address patient,
        address[] calldata named,
        uint256 terms,
        bytes32 noticeHash,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256) {
        _checkRelay(deadline);
        PatientState storage ps = _patients[patient];
        uint256 counters;
        assembly ("memory-safe") {
            counters := sload(ps.slot)
        }
        address signer =
            _recoverTyped(_grantHash(patient, named, terms, noticeHash, uint64(counters), deadline), v, r, s);
        _checkSigner(patient, signer, uint16(terms));
        // the nonce (bits 0-63) and the consent count (64-127) both step by one, in one write
        assembly ("memory-safe") {
            sstore(ps.slot, add(counters, 0x10000000000000001))
        }
        return _grant(patient, uint64(counters >> 64), named, terms, noticeHash, signer);
    }

    // -------------------------------------------------------------- REVOCATIONS
    /// @notice Revokes a consent, sent by its patient or one of their delegates. Effective from
    /// this block: `isPermitted` answers false from here on.
    /// @dev Requirements: caller is the patient or a delegate; the consent exists and is not yet
    /// revoked. Emits {ConsentRevoked}.
    function revoke(uint256 consentId) external {
        address patient = _patientOf(consentId);
        _checkActs(patient, msg.sender, _consents[consentId].categories);
        _revoke(consentId, patient, msg.sender);
    }

    /// @notice Revokes a consent with the patient's (or a delegate's) EIP-712 signature.
    /// @dev Requirements: caller is an active member; deadline not passed; signature by the patient
    /// or a delegate over the current nonce; consent exists, not yet revoked. Emits {ConsentRevoked}.
    function revokeBySig(uint256 consentId, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external {
        _checkRelay(deadline);
        address patient = _patientOf(consentId);
        PatientState storage ps = _patients[patient];
        uint64 nonce = ps.nonce;
        address signer =
            _recoverTyped(keccak256(abi.encode(REVOCATION_TYPEHASH, patient, consentId, nonce, deadline)), v, r, s);
        _checkSigner(patient, signer, _consents[consentId].categories);
        ps.nonce = nonce + 1;
        _revoke(consentId, patient, signer);
    }

    /// @notice The patient's own key confirms a consent someone else signed in their name (a guardian while
    /// they were a minor, a delegate): the consent stands as it was, now also the patient's own word.
    /// @dev Requirements: caller an active member; deadline not passed; the signature by the patient's key
    /// (not a delegate's) over the nonce; the consent exists and is not revoked. Emits {ConsentConfirmed}.
    function confirmBySig(uint256 consentId, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external {
        _checkRelay(deadline);
        address patient = _patientOf(consentId);
        PatientState storage ps = _patients[patient];
        uint64 nonce = ps.nonce;
        address signer =
            _recoverTyped(keccak256(abi.encode(CONFIRMATION_TYPEHASH, patient, consentId, nonce, deadline)), v, r, s);
        _checkKey(patient, signer);
        ConsentState state = _consents[consentId].state;
        if (state == ConsentState.None) revert ConsentRegistryUnknownConsent(consentId);
        if (state == ConsentState.Revoked) revert ConsentRegistryAlreadyRevoked(consentId);
        ps.nonce = nonce + 1;
        emit ConsentConfirmed(consentId, patient, signer);
    }

    // ---------------------------------------------------------------- DELEGATES
    /// @notice Appoints a delegate (guardian), changes what they may do, or removes them (scope 0),
    /// sent by the patient.
    /// @dev Requirements: caller is the patient; delegate non-zero, not the patient; scope 0, 1 or 2;
    /// a removal carries no end or exclusions; an end lies in the future; the call changes something.
    /// Emits {DelegateChanged}.
    function setDelegate(address delegate, Delegation calldata terms) external {
        address patient = accountOf(msg.sender);
        if (patient == address(0)) revert ConsentRegistryNotPatient(msg.sender, msg.sender);
        _setDelegate(patient, delegate, terms);
    }

    /// @notice {setDelegate} with the patient's own EIP-712 signature (delegates cannot appoint delegates).
    /// @dev Requirements: caller is an active member; deadline not passed; signature by the patient
    /// over the current nonce; as in {setDelegate}. Emits {DelegateChanged}.
    function setDelegateBySig(
        address patient,
        address delegate,
        Delegation calldata terms,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        _checkRelay(deadline);
        PatientState storage ps = _patients[patient];
        uint64 nonce = ps.nonce;
        address signer = _recoverTyped(
            keccak256(
                abi.encode(
                    DELEGATION_TYPEHASH,
                    patient,
                    delegate,
                    terms.scope,
                    terms.validUntil,
                    terms.excludedCategories,
                    nonce,
                    deadline
                )
            ),
            v,
            r,
            s
        );
        _checkKey(patient, signer);
        ps.nonce = nonce + 1;
        _setDelegate(patient, delegate, terms);
    }

    // --------------------------------------------------------------- RESTRICTION
    /// @notice Restricts (or lifts the restriction of) the sharing of all the patient's records, sent by
    /// the patient or a delegate: a patient's erasure request where the law says the records must be kept
    /// (PIPL Art. 47). While restricted no consent permits anything; consents are not revoked and apply
    /// again once lifted. Break-glass (life and health) is unaffected.
    /// @dev Requirements: caller is the patient or a managing delegate; the call changes something.
    /// Emits {SharingRestrictionChanged}.
    function restrictSharing(address patient, bool restricted) external {
        _checkActs(patient, msg.sender, 0);
        _restrict(_patients[patient], patient, restricted, msg.sender);
    }

    /// @notice {restrictSharing} with the patient's (or a delegate's) EIP-712 signature.
    /// @dev Requirements: caller is an active member; deadline not passed; the signature is by the patient
    /// or a delegate over the current nonce; the call changes something. Emits {SharingRestrictionChanged}.
    function restrictSharingBySig(address patient, bool restricted, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        _checkRelay(deadline);
        PatientState storage ps = _patients[patient];
        uint64 nonce = ps.nonce;
        address signer = _recoverTyped(
            keccak256(abi.encode(RESTRICTION_TYPEHASH, patient, restricted, nonce, deadline)), v, r, s
        );
        _checkSigner(patient, signer, 0);
        ps.nonce = nonce + 1;
        _restrict(ps, patient, restricted, signer);
    }

    // ---------------------------------------------------------------- SUCCESSION
    /// @notice A planned key rotation: the account's current key signs that `newKey` signs for it from now
    /// on; consents, delegates, restrictions and history stay with the account. Relayed by an active member.
    /// @dev Requirements: caller an active member; deadline not passed; signature by the account's current
    /// key over its nonce; `newKey` unused. Emits {KeyRotated}.
    function rotateKeyBySig(address account, address newKey, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        _checkRelay(deadline);
        PatientState storage ps = _patients[account];
        uint64 nonce = ps.nonce;
        address signer = _recoverTyped(
            keccak256(abi.encode(KEY_ROTATION_TYPEHASH, account, newKey, nonce, deadline)), v, r, s
        );
        _checkKey(account, signer);
        ps.nonce = nonce + 1;
        _succeed(account, newKey, Succession.Rotation);
    }

    /// @notice A member approves, after checking the patient's identity in person, that `newKey` replaces
    /// the account's lost key. A different key than the one under way starts a new round (unless the time
    /// lock already runs). With `recoveryThreshold` approvals the time lock starts.
    /// @dev Requirements: caller an active member, once per round; `newKey` unused. Emits
    /// {RecoveryApproved}, and {RecoveryStarted} at the threshold.
    function approveRecovery(address account, address newKey) external {
        if (!_isActiveMember(msg.sender)) revert ConsentRegistryNotActiveMember(msg.sender);
        _approveRecovery(account, newKey, msg.sender, 0);
    }

    /// @notice A guardian (a delegate who manages the account, before their end) approves a recovery with
    /// their EIP-712 signature over the round, relayed by an active member.
    /// @dev Requirements: caller an active member; deadline not passed; the signer's account is a managing
    /// delegate of `account`; once per round. Emits as {approveRecovery}.
    function approveRecoveryBySig(
        address account,
        address newKey,
        uint32 round,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        _checkRelay(deadline);
        address signer = _recoverTyped(
            keccak256(abi.encode(RECOVERY_APPROVAL_TYPEHASH, account, newKey, round, deadline)), v, r, s
        );
        if (signer == address(0)) revert ConsentRegistryInvalidSignature();
        address guardian = accountOf(signer);
        Delegation storage d = _delegates[account][guardian];
        if (
            guardian == address(0) || d.scope != DELEGATE_MANAGE
                || (d.validUntil != 0 && block.timestamp >= d.validUntil)
        ) revert ConsentRegistryNotGuardian(account, signer);
        _approveRecovery(account, newKey, guardian, round);
    }

    /// @notice The account's current key cancels the recovery under way (its key was not lost after all, or
    /// someone else is trying), sent by that key or relayed with its signature.
    /// @dev Requirements: a recovery under way; caller the current key, or an active member relaying its
    /// signature over the nonce. Emits {RecoveryCancelled}.
    function cancelRecovery(address account) external {
        _checkKey(account, msg.sender);
        _cancelRecovery(account, msg.sender);
    }

    /// @notice {cancelRecovery} with the current key's EIP-712 signature.
    function cancelRecoveryBySig(address account, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external {
        _checkRelay(deadline);
        PatientState storage ps = _patients[account];
        uint64 nonce = ps.nonce;
        address pending = _recoveries[account].newKey;
        address signer = _recoverTyped(
            keccak256(abi.encode(RECOVERY_CANCELLATION_TYPEHASH, account, pending, nonce, deadline)), v, r, s
        );
        _checkKey(account, signer);
        ps.nonce = nonce + 1;
        _cancelRecovery(account, signer);
    }

    /// @notice Completes a recovery whose time lock has run out: `newKey` signs for the account from now on.
    /// @dev Requirements: a recovery under way with its time lock started and passed. Emits {KeyRotated}.
    function completeRecovery(address account) external {
        Recovery storage rec = _recoveries[account];
        if (rec.newKey == address(0)) revert ConsentRegistryNoRecovery(account);
        if (rec.readyAt == 0 || block.timestamp < rec.readyAt) {
            revert ConsentRegistryRecoveryLocked(account, rec.readyAt);
        }
        _succeed(account, rec.newKey, Succession.Recovery);
    }

    /// @notice The enrolling member registers a child's account, held by a guardian until the child may
    /// claim it: on chain only the first day of the claim (`minorUntil`, days since 1970); the birth date it
    /// follows from stays with the member.
    /// @dev Requirements: caller an active member; the account and the guardian unused as keys elsewhere,
    /// distinct and non-zero; the account without consents or a nonce; `minorUntil` in the future. The
    /// guardian becomes a managing delegate. Emits {MinorRegistered} and {DelegateChanged}.
    function registerMinor(address account, address guardian, uint16 minorUntil_) external {
        if (!_isActiveMember(msg.sender)) revert ConsentRegistryNotActiveMember(msg.sender);
        _checkUnused(account);
        if (guardian == address(0) || guardian == account || accountOf(guardian) != guardian) {
            revert ConsentRegistryInvalidDelegate(guardian);
        }
        if (minorUntil_ <= block.timestamp / 1 days) revert ConsentRegistryInvalidMinor(account, minorUntil_);
        _minors[account] = Minor({until: minorUntil_, guardian: guardian});
        _delegates[account][guardian] = Delegation({scope: DELEGATE_MANAGE, validUntil: 0, excludedCategories: 0});
        emit MinorRegistered(account, guardian, minorUntil_, msg.sender);
        emit DelegateChanged(account, guardian, DELEGATE_MANAGE, 0, 0);
    }

    /// @notice The child, of age and identified in person at a member, claims their account with their own
    /// key (which signs the claim) and says what their guardian may do from now on (0 nothing, 1 view,
    /// 2 manage). The chain then holds nothing more about the minority.
    /// @dev Requirements: caller an active member; deadline not passed; a minor's account whose claim day has
    /// come; the signature by `key` (unused); scope at most 2. Emits {DelegateChanged} and {KeyRotated}.
    function claimMinorBySig(
        address account,
        address key,
        uint8 guardianScope,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        _checkRelay(deadline);
        Minor memory minor = _minors[account];
        if (minor.until == 0) revert ConsentRegistryNotMinor(account);
        if (block.timestamp / 1 days < minor.until) revert ConsentRegistryMinorNotOfAge(account, minor.until);
        if (guardianScope > DELEGATE_MANAGE) revert ConsentRegistryInvalidDelegation(guardianScope, 0, 0);
        address signer = _recoverTyped(
            keccak256(abi.encode(MINOR_CLAIM_TYPEHASH, account, key, guardianScope, deadline)), v, r, s
        );
        if (signer == address(0) || signer != key) revert ConsentRegistryInvalidSignature();
        delete _minors[account];
        Delegation storage d = _delegates[account][minor.guardian];
        if (d.scope != guardianScope || d.validUntil != 0 || d.excludedCategories != 0) {
            d.scope = guardianScope;
            d.validUntil = 0;
            d.excludedCategories = 0;
            emit DelegateChanged(account, minor.guardian, guardianScope, 0, 0);
        }
        _succeed(account, key, Succession.MinorClaim);
    }

    // --------------------------------------------------------------- BREAK-GLASS
    /// @notice Declares emergency (break-glass) access to a patient's records.
    /// @dev Requirements: caller is an active member; patient non-zero; no not-justified review
    /// blocks the caller for this patient; fewer than `limit` declarations by the caller in the last
    /// `window` seconds (see {breakGlassLimit}). The access is allowed for `breakGlassDuration`
    /// seconds and flagged for review. Emits {BreakGlassDeclared}.
    /// @param justificationHash Salted commitment to the reason and justification, kept by the member.
    function declareBreakGlass(address patient, bytes32 justificationHash)
        external
        returns (uint256 breakGlassId)
    {
        if (!_isActiveMember(msg.sender)) revert ConsentRegistryNotActiveMember(msg.sender);
        if (patient == address(0)) revert ConsentRegistryInvalidPatient(patient);
        if (_breakGlassBlocked[patient][msg.sender]) revert ConsentRegistryBreakGlassBlocked(patient, msg.sender);
        _countDeclaration(msg.sender);
        uint32 expiresAt = uint32(block.timestamp) + _breakGlassDuration;
        _breakGlasses.push(
            BreakGlass({
                member: msg.sender,
                declaredAt: uint32(block.timestamp),
                expiresAt: expiresAt,
                review: Review.Pending,
                patient: patient,
                justificationHash: justificationHash,
                reviewReasonHash: bytes32(0)
            })
        );
        breakGlassId = _breakGlasses.length;
        _latestBreakGlass[patient][msg.sender] = breakGlassId;
        emit BreakGlassDeclared(breakGlassId, patient, msg.sender, justificationHash, expiresAt);
    }

    /// @notice Records an auditor's decision on a break-glass access.
    /// @dev Requirements: caller is an active auditor; the declaration exists and is unreviewed.
    /// A not-justified decision ends the access at once (see {emergencyAccess}) and blocks the member
    /// from declaring again for this patient until an auditor lifts it. Emits {BreakGlassReviewed},
    /// and {BreakGlassBlocked} when not justified.
    function reviewBreakGlass(uint256 breakGlassId, bool justified, bytes32 reasonHash) external {
        if (!_isActiveAuditor(msg.sender)) revert ConsentRegistryNotActiveAuditor(msg.sender);
        BreakGlass storage bg = _breakGlassAt(breakGlassId);
        if (bg.review != Review.Pending) revert ConsentRegistryAlreadyReviewed(breakGlassId);
        Review review = justified ? Review.Justified : Review.NotJustified;
        bg.review = review;
        bg.reviewReasonHash = reasonHash;
        emit BreakGlassReviewed(breakGlassId, msg.sender, review, reasonHash);
        if (!justified) {
            _breakGlassBlocked[bg.patient][bg.member] = true;
            emit BreakGlassBlocked(bg.patient, bg.member, breakGlassId);
        }
    }

    /// @notice Lets a member declare break-glass for a patient again after a not-justified review.
    /// @dev Requirements: caller is an active auditor; the member is blocked for the patient.
    /// Emits {BreakGlassBlockLifted}.
    function liftBreakGlassBlock(address patient, address member) external {
        if (!_isActiveAuditor(msg.sender)) revert ConsentRegistryNotActiveAuditor(msg.sender);
        if (!_breakGlassBlocked[patient][member]) revert ConsentRegistryBreakGlassNotBlocked(patient, member);
        _breakGlassBlocked[patient][member] = false;
        emit BreakGlassBlockLifted(patient, member, msg.sender);
    }

    // --------------------------------------------------------------------- VIEWS
    /// @inheritdoc IConsentRegistry
    function consent(uint256 consentId) external view returns (Consent memory) {
        Consent memory c = _consents[consentId];
        if (c.state == ConsentState.None) revert ConsentRegistryUnknownConsent(consentId);
        return c;
    }

    /// @inheritdoc IConsentRegistry
    function consentCount(address patient) external view returns (uint256) {
        return _patients[patient].consentCount;
    }

    /// @inheritdoc IConsentRegistry
    function nonces(address patient) external view returns (uint256) {
        return _patients[patient].nonce;
    }

    /// @inheritdoc IConsentRegistry
    function isDelegate(address patient, address delegate) external view returns (bool) {
        Delegation storage d = _delegates[patient][delegate];
        return d.scope != 0 && (d.validUntil == 0 || block.timestamp < d.validUntil);
    }

    /// @inheritdoc IConsentRegistry
    function accountOf(address key) public view returns (address) {
        address account = _accountOfKey[key];
        if (account == RETIRED) return address(0);
        if (account != address(0)) return account;
        return _keyOf[key] == address(0) ? key : address(0);
    }

    /// @inheritdoc IConsentRegistry
    function keyOf(address account) external view returns (address) {
        address key = _keyOf[account];
        return key == address(0) ? account : key;
    }

    /// @inheritdoc IConsentRegistry
    function recovery(address account) external view returns (Recovery memory) {
        return _recoveries[account];
    }

    /// @inheritdoc IConsentRegistry
    function minorUntil(address account) external view returns (uint16) {
        return _minors[account].until;
    }

    /// @notice Approvals a recovery needs, and the seconds of its time lock.
    function recoveryPolicy() external view returns (uint16 threshold, uint32 delay) {
        return (_recoveryThreshold, _recoveryDelay);
    }

    /// @inheritdoc IConsentRegistry
    function delegation(address patient, address delegate) external view returns (Delegation memory) {
        return _delegates[patient][delegate];
    }

    /// @inheritdoc IConsentRegistry
    function isPermitted(address patient, address requester, uint8 category, uint8 purpose, uint16 encounterDay)
        external
        view
        returns (bool)
    {
        (bool permitted,) = permittingConsent(patient, requester, category, purpose, encounterDay);
        return permitted;
    }

    /// @inheritdoc IConsentRegistry
    function grantees(uint256 consentId) external view returns (address[] memory named) {
        Consent storage c = _consents[consentId];
        if (c.state == ConsentState.None) revert ConsentRegistryUnknownConsent(consentId);
        uint128 recipients = c.recipients;
        uint256 count = 0;
        for (uint128 rest = recipients; rest != 0; rest &= rest - 1) ++count;
        named = new address[](count);
        uint256 n = 0;
        for (uint32 index = 0; index <= MAX_RECIPIENT_INDEX && n < count; ++index) {
            if ((recipients >> index) & 1 == 1) named[n++] = _accountAt[index];
        }
    }

    /// @inheritdoc IConsentRegistry
    function isRestricted(address patient) external view returns (bool) {
        return _patients[patient].restricted;
    }

    /// @notice Whether, at the current block, an active consent lets `requester` (an active member it
    /// names) read a record of `category` about care on `encounterDay` (days since 1970-01-01) for
    /// `purpose`, and the id of the first consent that does. None does while the patient's sharing is
    /// restricted.
    function permittingConsent(address patient, address requester, uint8 category, uint8 purpose, uint16 encounterDay)
        public
        view
        returns (bool permitted, uint256 consentId)
    {
        if (category >= 16 || purpose >= 8) return (false, 0);
        Seat storage seat = _seats[requester];
        if (seat.status != MemberStatus.Active || seat.role != Role.Member || seat.index > MAX_RECIPIENT_INDEX) {
            return (false, 0);
        }
        uint128 bit = uint128(1) << seat.index;
        PatientState storage ps = _patients[patient];
        if (ps.restricted) return (false, 0);
        uint256 base = uint256(uint160(patient)) << 96;
        uint256 count = ps.consentCount;
        for (uint256 i = 0; i < count; ++i) {
            Consent storage c = _consents[base | i];
            if (
                c.state == ConsentState.Active && c.recipients & bit != 0 && (c.categories >> category) & 1 == 1
                    && (c.purposes >> purpose) & 1 == 1 && block.timestamp >= c.validFrom
                    && block.timestamp < c.validUntil && encounterDay >= c.careFrom
                    && (c.careTo == 0 || encounterDay <= c.careTo)
            ) return (true, base | i);
        }
        return (false, 0);
    }

    /// @inheritdoc IConsentRegistry
    function breakGlass(uint256 breakGlassId) external view returns (BreakGlass memory) {
        return _breakGlassAt(breakGlassId);
    }

    /// @inheritdoc IConsentRegistry
    function breakGlassCount() external view returns (uint256) {
        return _breakGlasses.length;
    }

    /// @inheritdoc IConsentRegistry
    function emergencyAccess(address patient, address member) external view returns (bool active, uint256 breakGlassId) {
        breakGlassId = _latestBreakGlass[patient][member];
        if (breakGlassId == 0 || !_isActiveMember(member)) return (false, breakGlassId);
        BreakGlass storage bg = _breakGlasses[breakGlassId - 1];
        active = block.timestamp < bg.expiresAt && bg.review != Review.NotJustified;
    }

    /// @inheritdoc IConsentRegistry
    function breakGlassDuration() external view returns (uint32) {
        return _breakGlassDuration;
    }

    /// @inheritdoc IConsentRegistry
    function breakGlassBlocked(address patient, address member) external view returns (bool) {
        return _breakGlassBlocked[patient][member];
    }

    /// @inheritdoc IConsentRegistry
    function breakGlassLimit() external view returns (uint32 limit, uint32 window) {
        return (_breakGlassLimit, _breakGlassWindow);
    }

    // ------------------------------------------------------------------ INTERNAL
    /// @dev The EIP-712 struct hash of a `ConsentGrant`: `terms` unpacked into its fields, the grantees hashed
    /// as their 32-byte words (what `abi.encodePacked` of an address array gives, and how calldata holds them).
    function _grantHash(
        address patient,
        address[] calldata named,
        uint256 terms,
        bytes32 noticeHash,
        uint64 nonce,
        uint256 deadline
    ) private pure returns (bytes32 structHash) {
        bytes32 typeHash = GRANT_TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            let size := shl(5, named.length)
            calldatacopy(m, named.offset, size)
            let granteesHash := keccak256(m, size)
            mstore(m, typeHash)
            mstore(add(m, 0x20), patient)
            mstore(add(m, 0x40), granteesHash)
            mstore(add(m, 0x60), and(terms, 0xffff))
            mstore(add(m, 0x80), and(shr(16, terms), 0xff))
            mstore(add(m, 0xa0), and(shr(32, terms), 0xffffffff))
            mstore(add(m, 0xc0), and(shr(64, terms), 0xffffffff))
            mstore(add(m, 0xe0), and(shr(96, terms), 0xffff))
            mstore(add(m, 0x100), and(shr(112, terms), 0xffff))
            mstore(add(m, 0x120), and(shr(128, terms), 0xffff))
            mstore(add(m, 0x140), noticeHash)
            mstore(add(m, 0x160), nonce)
            mstore(add(m, 0x180), deadline)
            structHash := keccak256(m, 0x1a0)
        }
    }

    /// @dev Stores the consent as one word (its recipients below the low 128 bits of `terms`, with the state
    /// Active in bits 24-31 of those) and emits its event; the caller has counted it (`index`).
    function _grant(
        address patient,
        uint64 index,
        address[] calldata named,
        uint256 terms,
        bytes32 noticeHash,
        address signer
    ) private returns (uint256 consentId) {
        _checkTerms(terms, noticeHash);
        uint128 recipients = _recipientSet(named);
        consentId = (uint256(uint160(patient)) << 96) | index;
        uint256 stored = uint256(recipients) | (uint256(uint128(terms)) << 128)
            | (uint256(uint8(ConsentState.Active)) << 152);
        Consent storage c = _consents[consentId];
        assembly ("memory-safe") {
            sstore(c.slot, stored)
        }
        emit ConsentGranted(consentId, patient, terms, recipients, noticeHash, signer);
    }

    function _checkTerms(uint256 terms, bytes32 noticeHash) private view {
        if (terms >> 144 != 0 || uint8(terms >> 24) != 0) revert ConsentRegistryInvalidTerms(terms);
        uint16 categories = uint16(terms);
        uint8 purposes = uint8(terms >> 16);
        if (categories == 0 || purposes == 0) revert ConsentRegistryEmptyScope(categories, purposes);
        uint32 validFrom = uint32(terms >> 32);
        uint32 validUntil = uint32(terms >> 64);
        if (validFrom >= validUntil || validUntil <= block.timestamp) {
            revert ConsentRegistryInvalidWindow(validFrom, validUntil);
        }
        uint16 careFrom = uint16(terms >> 96);
        uint16 careTo = uint16(terms >> 112);
        if (careTo != 0 && careFrom > careTo) revert ConsentRegistryInvalidCareRange(careFrom, careTo);
        uint16 noticeVersion = uint16(terms >> 128);
        if (noticeVersion == 0 || noticeHash == bytes32(0)) revert ConsentRegistryInvalidNotice(noticeVersion, noticeHash);
    }

    /// @dev The named members as a bit set over their index: each must be an active member now (so
    /// "every member" is exactly the members active at signing), named once, and within the set's range.
    function _recipientSet(address[] calldata named) private view returns (uint128 recipients) {
        if (named.length == 0) revert ConsentRegistryNoRecipients();
        for (uint256 i = 0; i < named.length; ++i) {
            Seat storage seat = _seats[named[i]];
            if (seat.status != MemberStatus.Active || seat.role != Role.Member || seat.index > MAX_RECIPIENT_INDEX) {
                revert ConsentRegistryRecipientNotMember(named[i]);
            }
            uint128 bit = uint128(1) << seat.index;
            if (recipients & bit != 0) revert ConsentRegistryDuplicateRecipient(named[i]);
            recipients |= bit;
        }
    }

    function _revoke(uint256 consentId, address patient, address signer) private {
        Consent storage c = _consents[consentId];
        if (c.state == ConsentState.None) revert ConsentRegistryUnknownConsent(consentId);
        if (c.state == ConsentState.Revoked) revert ConsentRegistryAlreadyRevoked(consentId);
        c.state = ConsentState.Revoked;
        emit ConsentRevoked(consentId, patient, signer);
    }

    function _restrict(PatientState storage ps, address patient, bool restricted, address signer) private {
        if (ps.restricted == restricted) revert ConsentRegistryRestrictionUnchanged(patient, restricted);
        ps.restricted = restricted;
        emit SharingRestrictionChanged(patient, restricted, signer);
    }

    function _setDelegate(address patient, address delegate, Delegation calldata terms) private {
        if (delegate == address(0) || delegate == patient) revert ConsentRegistryInvalidDelegate(delegate);
        bool removal = terms.scope == 0;
        if (
            terms.scope > DELEGATE_MANAGE || (removal && (terms.validUntil != 0 || terms.excludedCategories != 0))
                || (terms.validUntil != 0 && terms.validUntil <= block.timestamp)
        ) revert ConsentRegistryInvalidDelegation(terms.scope, terms.validUntil, terms.excludedCategories);
        Delegation storage d = _delegates[patient][delegate];
        if (
            d.scope == terms.scope && d.validUntil == terms.validUntil
                && d.excludedCategories == terms.excludedCategories
        ) revert ConsentRegistryDelegateUnchanged(patient, delegate);
        d.scope = terms.scope;
        d.validUntil = terms.validUntil;
        d.excludedCategories = terms.excludedCategories;
        emit DelegateChanged(patient, delegate, terms.scope, terms.validUntil, terms.excludedCategories);
    }

    /// @dev The patient acts, or a delegate who manages consents, before their end, on none of the
    /// categories kept from them (`categories`: what the act decides on).
    function _checkActs(address patient, address key, uint16 categories) private view {
        if (key == patient && !_patients[patient].keyReplaced) return;
        address account = accountOf(key);
        if (account == patient && account != address(0)) return;
        if (account == address(0)) revert ConsentRegistryNotPatientOrDelegate(patient, key);
        Delegation storage d = _delegates[patient][account];
        if (d.scope != DELEGATE_MANAGE || (d.validUntil != 0 && block.timestamp >= d.validUntil)) {
            revert ConsentRegistryNotPatientOrDelegate(patient, key);
        }
        if (d.excludedCategories & categories != 0) {
            revert ConsentRegistryDelegateExcluded(account, d.excludedCategories & categories);
        }
    }

    /// @dev The signer is the key that signs for `account` now.
    function _checkKey(address account, address signer) private view {
        if (signer == address(0)) revert ConsentRegistryInvalidSignature();
        if (account == address(0) || accountOf(signer) != account) revert ConsentRegistryNotPatient(account, signer);
    }

    /// @dev A key that may be given to an account: no account's key, no account's own replaced address, no
    /// account with consents, a nonce or a minority of its own, and no member's or auditor's seat.
    function _checkUnused(address key) private view {
        PatientState storage ps = _patients[key];
        if (
            key == address(0) || _accountOfKey[key] != address(0) || _keyOf[key] != address(0) || ps.nonce != 0
                || ps.consentCount != 0 || _minors[key].until != 0 || _seats[key].status != MemberStatus.None
        ) revert ConsentRegistryKeyInUse(key);
    }

    function _succeed(address account, address newKey, Succession how) private {
        if (newKey != account) _checkUnused(newKey);
        address oldKey = _keyOf[account];
        if (oldKey == address(0)) oldKey = account;
        if (oldKey != account) _accountOfKey[oldKey] = RETIRED;
        _keyOf[account] = newKey;
        _accountOfKey[newKey] = account;
        _patients[account].keyReplaced = newKey != account;
        delete _recoveries[account];
        emit KeyRotated(account, oldKey, newKey, how);
    }

    function _approveRecovery(address account, address newKey, address approver, uint32 round) private {
        if (newKey == address(0) || newKey == account) revert ConsentRegistryKeyInUse(newKey);
        _checkUnused(newKey);
        Recovery storage rec = _recoveries[account];
        if (rec.newKey != newKey) {
            if (rec.readyAt != 0) revert ConsentRegistryRecoveryOtherKey(account, rec.newKey);
            rec.newKey = newKey;
            rec.round += 1;
            rec.approvals = 0;
        }
        if (round != 0 && round != rec.round) revert ConsentRegistryRecoveryOtherKey(account, rec.newKey);
        if (_recoveryApproved[account][rec.round][approver]) {
            revert ConsentRegistryRecoveryAlreadyApproved(account, approver);
        }
        _recoveryApproved[account][rec.round][approver] = true;
        uint16 approvals = rec.approvals + 1;
        rec.approvals = approvals;
        emit RecoveryApproved(account, newKey, rec.round, approver, approvals);
        if (approvals >= _recoveryThreshold && rec.readyAt == 0) {
            uint32 readyAt = uint32(block.timestamp) + _recoveryDelay;
            rec.readyAt = readyAt;
            emit RecoveryStarted(account, newKey, readyAt);
        }
    }

    function _cancelRecovery(address account, address signer) private {
        Recovery storage rec = _recoveries[account];
        if (rec.newKey == address(0)) revert ConsentRegistryNoRecovery(account);
        address pending = rec.newKey;
        rec.newKey = address(0);
        rec.approvals = 0;
        rec.readyAt = 0;
        emit RecoveryCancelled(account, pending, signer);
    }

    /// @dev Where every by-signature act starts: an active member relays it, before the signature's deadline.
    function _checkRelay(uint256 deadline) private view {
        if (!_isActiveMember(msg.sender)) revert ConsentRegistryNotActiveMember(msg.sender);
        if (block.timestamp > deadline) revert ConsentRegistryExpiredSignature(deadline);
    }

    function _checkSigner(address patient, address signer, uint16 categories) private view {
        if (signer == address(0)) revert ConsentRegistryInvalidSignature();
        _checkActs(patient, signer, categories);
    }

    function _patientOf(uint256 consentId) private pure returns (address) {
        return address(uint160(consentId >> 96));
    }

    /// @dev The ring holds the member's last `limit` declaration times; the slot about to be
    /// overwritten is the oldest of them, and it must lie a whole window back.
    function _countDeclaration(address member) private {
        uint256 position = _breakGlassRingPosition[member];
        uint256 slot = position % _breakGlassLimit;
        uint32 oldest = _breakGlassRing[member][slot];
        if (position >= _breakGlassLimit && block.timestamp < uint256(oldest) + _breakGlassWindow) {
            revert ConsentRegistryBreakGlassLimit(member, _breakGlassLimit, _breakGlassWindow, oldest + _breakGlassWindow);
        }
        _breakGlassRing[member][slot] = uint32(block.timestamp);
        _breakGlassRingPosition[member] = position + 1;
    }

    function _breakGlassAt(uint256 breakGlassId) private view returns (BreakGlass storage) {
        if (breakGlassId == 0 || breakGlassId > _breakGlasses.length) {
            revert ConsentRegistryUnknownBreakGlass(breakGlassId);
        }
        return _breakGlasses[breakGlassId - 1];
    }
}

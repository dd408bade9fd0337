// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title EIP712Signatures
/// @notice EIP-712 domain separator and ECDSA recovery, as in OpenZeppelin's EIP712 and ECDSA.
/// @dev Written out here (about 40 lines) rather than imported so the contracts compile from this
/// repository alone with the pinned solc-js. Rejects malleable signatures (upper-half `s`,
/// `v` other than 27/28) and the zero address, like OpenZeppelin's ECDSA.tryRecover.
abstract contract EIP712Signatures {
    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    uint256 private constant _HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    bytes32 private immutable _hashedName;
    bytes32 private immutable _hashedVersion;
    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    constructor(string memory name, string memory version) {
        _hashedName = keccak256(bytes(name));
        _hashedVersion = keccak256(bytes(version));
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
    }

    /// @notice The EIP-712 domain separator for this contract on this chain.
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(_DOMAIN_TYPEHASH, _hashedName, _hashedVersion, block.chainid, address(this)));
    }

    /// @dev Recovers the signer of an EIP-712 struct hash; returns address(0) for any invalid signature.
    function _recoverTyped(bytes32 structHash, uint8 v, bytes32 r, bytes32 s) internal view returns (address) {
        if (uint256(s) > _HALF_ORDER || (v != 27 && v != 28)) return address(0);
        bytes32 domainSeparator = DOMAIN_SEPARATOR();
        bytes32 digest;
        assembly ("memory-safe") {
            // "\x19\x01" ‖ domain separator ‖ struct hash, in scratch memory (OpenZeppelin's toTypedDataHash)
            let m := mload(0x40)
            mstore(m, hex"1901")
            mstore(add(m, 0x02), domainSeparator)
            mstore(add(m, 0x22), structHash)
            digest := keccak256(m, 0x42)
        }
        return ecrecover(digest, v, r, s);
    }
}

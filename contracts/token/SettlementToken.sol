// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title SettlementToken
/// @notice A test-only ERC-20 (6 decimals, like common stablecoins) used for claim payments on
/// local chains. On real networks the suite is pointed at an existing stablecoin instead.
/// @dev Minting works only on the well-known local chain ids (Anvil 31337, Ganache 1337), so a
/// copy deployed to a real network by mistake cannot create money.
contract SettlementToken is ERC20, Ownable {
    /// @notice Thrown when `mint` is called on a chain that is not a local development chain.
    error SettlementTokenMintingDisabled(uint256 chainId);

    uint256 private constant ANVIL_CHAIN_ID = 31337;
    uint256 private constant GANACHE_CHAIN_ID = 1337;

    /// @param owner_ The account allowed to mint.
    constructor(address owner_) ERC20("MedChain Settlement Dollar", "mUSD") Ownable(owner_) {}

    /// @notice Mints `amount` to `to`. Only the owner, only on local chains.
    /// Emits {Transfer} from the zero address.
    function mint(address to, uint256 amount) external onlyOwner {
        if (block.chainid != ANVIL_CHAIN_ID && block.chainid != GANACHE_CHAIN_ID) {
            revert SettlementTokenMintingDisabled(block.chainid);
        }
        _mint(to, amount);
    }

    /// @inheritdoc ERC20
    function decimals() public pure override returns (uint8) {
        return 6;
    }
}

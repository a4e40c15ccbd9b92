"""EIP-712 signing against a contract's own domain (read through ERC-5267 ``eip712Domain``)."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from medchain.chain import Chain
from medchain.errors import ConfigurationError

DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def domain_of(chain: Chain, contract: Contract) -> dict[str, Any]:
    """The contract's EIP-712 domain as it reports it."""
    _fields, name, version, chain_id, verifying, _salt, _ext = chain.call(contract.functions.eip712Domain())
    return {"name": name, "version": version, "chainId": int(chain_id), "verifyingContract": verifying}


def make_domain(name: str, version: str, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """An EIP-712 domain built from known facts (no node needed), as :func:`domain_of` reports one."""
    return {
        "name": name,
        "version": version,
        "chainId": int(chain_id),
        "verifyingContract": Web3.to_checksum_address(verifying_contract),
    }


def typed_data(
    domain: dict[str, Any], primary: str, fields: list[dict[str, str]], message: dict[str, Any]
) -> dict[str, Any]:
    """The full EIP-712 document (``eth_signTypedData_v4`` shape) for ``message`` under ``domain``."""
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, primary: fields},
        "primaryType": primary,
        "domain": domain,
        "message": message,
    }


def sign_typed_data(signer: LocalAccount, typed: dict[str, Any]) -> bytes:
    """Signs a full EIP-712 document with a local key; offline."""
    if not isinstance(signer, LocalAccount):
        raise ConfigurationError("signing needs a local key (eth_account LocalAccount), not a node account")
    return bytes(Account.sign_message(encode_typed_data(full_message=typed), signer.key).signature)


def recover_typed_data(typed: dict[str, Any], signature: bytes) -> str:
    """The address whose key signed ``typed``.

    Raises:
        ConfigurationError: the signature is malformed (not 65 bytes of a valid secp256k1 signature).
    """
    try:
        return str(Account.recover_message(encode_typed_data(full_message=typed), signature=signature))
    except Exception as exc:  # eth_keys raises its own BadSignature, ValueError or TypeError
        raise ConfigurationError(f"not a valid EIP-712 signature ({type(exc).__name__})") from None


def sign_typed(
    chain: Chain,
    contract: Contract,
    signer: LocalAccount,
    primary: str,
    fields: list[dict[str, str]],
    message: dict[str, Any],
) -> bytes:
    """Signs ``message`` (of type ``primary`` with ``fields``) for ``contract`` with a local key."""
    return sign_typed_data(signer, typed_data(domain_of(chain, contract), primary, fields, message))

"""EIP-712 signing against a contract's own domain (read through ERC-5267 ``eip712Domain``)."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
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


def sign_typed(
    chain: Chain,
    contract: Contract,
    signer: LocalAccount,
    primary: str,
    fields: list[dict[str, str]],
    message: dict[str, Any],
) -> bytes:
    """Signs ``message`` (of type ``primary`` with ``fields``) for ``contract`` with a local key."""
    if not isinstance(signer, LocalAccount):
        raise ConfigurationError("signing needs a local key (eth_account LocalAccount), not a node account")
    typed = {
        "types": {"EIP712Domain": DOMAIN_FIELDS, primary: fields},
        "primaryType": primary,
        "domain": domain_of(chain, contract),
        "message": message,
    }
    return bytes(Account.sign_message(encode_typed_data(full_message=typed), signer.key).signature)

"""A ready-made consortium on a local development chain (Anvil or Ganache).

The node's well-known development accounts play the roles: account 0 is the founding regulator,
accounts 1-7 the institutions below. Their keys are public (every Anvil install has them), so this
exists for local chains only: :func:`deploy_dev_consortium` refuses any other chain id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from eth_typing import ChecksumAddress

from medchain.chain import Chain
from medchain.deploy import LOCAL_CHAIN_IDS, FoundingMember, SuiteConfig, deploy_suite
from medchain.directory import EXAMPLE_GTIN_PREFIX, Directory, sample_entry
from medchain.errors import ConfigurationError
from medchain.suite import Suite
from medchain.types import Kind


@dataclass(frozen=True)
class DevRole:
    """One institution of the development consortium."""

    account: str
    """Its keystore account name (what ``--from`` takes)."""
    name: str
    kind: Kind
    rating: int


REGULATOR = DevRole("regulator", "Health Regulator (founder)", Kind.REGULATOR, 90)
ROLES: tuple[DevRole, ...] = (
    DevRole("hospital-a", "City General Hospital", Kind.HOSPITAL, 85),
    DevRole("hospital-b", "St. Mary Specialist Hospital", Kind.SPECIALIST_HOSPITAL, 75),
    DevRole("laboratory", "Riverside Laboratory", Kind.LABORATORY, 60),
    DevRole("pharmacy", "Main Street Pharmacy", Kind.PHARMACY, 55),
    DevRole("manufacturer", "Acme Pharma", Kind.MANUFACTURER, 65),
    DevRole("distributor", "MedLogistics", Kind.DISTRIBUTOR, 45),
    DevRole("insurer", "Mutual Health Insurance", Kind.INSURER, 70),
)
INSURER_FLOAT = 1_000_000 * 10**6
"""Settlement-token units (6 decimals) minted to the insurer so it can fund plans."""


def licence_digest(name: str) -> bytes:
    """A stand-in licence digest: SHA-256 of a licence document naming the institution."""
    return hashlib.sha256(f"licence of {name}".encode()).digest()


def dev_accounts(chain: Chain) -> list[ChecksumAddress]:
    """The node's unlocked accounts, checked to be enough for the consortium."""
    accounts = list(chain.w3.eth.accounts)
    if len(accounts) < len(ROLES) + 1:
        raise ConfigurationError(
            f"the development consortium needs {len(ROLES) + 1} unlocked accounts; "
            f"the node has {len(accounts)}"
        )
    return accounts


def deploy_dev_consortium(
    chain: Chain, manifest_path: Path | None = None
) -> tuple[Suite, dict[ChecksumAddress, DevRole]]:
    """Deploys the suite with the development consortium as founding members.

    Returns the suite and the role of each member address. The founder (account 0) mints the
    insurer a float of test tokens.

    Raises:
        ConfigurationError: the chain is not a local development chain.
    """
    if chain.chain_id not in LOCAL_CHAIN_IDS:
        raise ConfigurationError(
            f"chain {chain.chain_id} is not a local development chain: the development consortium uses "
            "public keys; deploy with --from and admit members by vote instead"
        )
    accounts = dev_accounts(chain)
    roles = {accounts[0]: REGULATOR} | dict(zip(accounts[1:], ROLES, strict=False))
    founding = tuple(
        FoundingMember(address, role.kind, role.rating, licence_digest(role.name))
        for address, role in roles.items()
        if role is not REGULATOR
    )
    suite = deploy_suite(
        chain,
        accounts[0],
        SuiteConfig(founder_licence=licence_digest(REGULATOR.name), founding_members=founding),
        manifest_path,
    )
    insurer = next(a for a, r in roles.items() if r.kind is Kind.INSURER)
    chain.transact(suite.token.functions.mint(insurer, INSURER_FLOAT), accounts[0])
    return suite, roles


def dev_directory(chain_id: int, roles: dict[ChecksumAddress, DevRole]) -> Directory:
    """Demonstration GS1 identities for the development consortium (GS1 Prefix 952, kept by GS1
    for examples): so that GS1 exports of a local chain name every member by GLN."""
    directory = Directory(chain_id)
    for index, (address, role) in enumerate(roles.items(), 1):
        prefix = EXAMPLE_GTIN_PREFIX if role.kind is Kind.MANUFACTURER else None
        directory = directory.with_entry(sample_entry(address, index, role.name, prefix))
    return directory

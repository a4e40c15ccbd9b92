"""The one deploy path of the suite.

``scripts/deploy.py``, the test fixtures and the ``medchain deploy`` command all call
:func:`deploy_suite`; it writes the manifest (:mod:`medchain.manifest`) that everything else reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from medchain.chain import Chain, Sender
from medchain.errors import ConfigurationError
from medchain.manifest import ContractRecord, Deployment, default_manifest_path
from medchain.registry import RegistryClient
from medchain.suite import Suite
from medchain.types import Kind

LOCAL_CHAIN_IDS = frozenset({31337, 1337})
"""Anvil's and Ganache's chain ids: the only chains where the suite deploys its own test token."""


@dataclass(frozen=True)
class FoundingMember:
    """An institution the founder admits during bootstrap."""

    address: str
    kind: Kind
    rating: int
    licence_digest: bytes


@dataclass(frozen=True)
class SuiteConfig:
    """What a deployment needs beyond the deployer (who becomes the founding regulator).

    Attributes:
        founder_rating: Credit rating of the founding regulator (1..100).
        founder_licence: SHA-256 digest of the founder's licence document.
        quorum_bps: Governance quorum in basis points of active weight; 0 means two thirds.
        voting_period: Seconds a proposal stays open.
        founding_members: Institutions admitted during bootstrap.
        end_bootstrap: Close bootstrap after admitting the founding members.
        settlement_token: Address of an existing ERC-20 to pay claims with. Required on real
            networks; on local chains a test token is deployed when it is None.
        break_glass_duration: Seconds an emergency access session lasts (at most 72 hours).
    """

    founder_licence: bytes
    founder_rating: int = 90
    quorum_bps: int = 0
    voting_period: int = 3 * 24 * 3600
    founding_members: tuple[FoundingMember, ...] = ()
    end_bootstrap: bool = True
    settlement_token: str | None = None
    break_glass_duration: int = 24 * 3600


def deploy_suite(
    chain: Chain, deployer: Sender, config: SuiteConfig, manifest_path: Path | None = None
) -> Suite:
    """Deploys the whole suite, admits the founding members and writes the manifest.

    Args:
        chain: Connection and artifacts.
        deployer: Sends every transaction and becomes the founding regulator.
        config: Governance settings, founding members, settlement token.
        manifest_path: Where to write the manifest; ``deployments/<chain_id>.json`` by default.

    Returns:
        The deployed suite, ready to use.

    Raises:
        ConfigurationError: a real network without a settlement token address.
        ContractRevert / TransactionFailed: a deployment transaction failed.
    """
    chain_id = chain.chain_id
    if config.settlement_token is None and chain_id not in LOCAL_CHAIN_IDS:
        raise ConfigurationError(
            f"chain {chain_id} is not a local chain: pass the address of the stablecoin that pays claims "
            "(--settlement-token); the test token can only be minted on Anvil or Ganache"
        )
    deployer_address = deployer.address if not isinstance(deployer, str) else deployer
    records: dict[str, ContractRecord] = {}

    registry, receipt = chain.deploy(
        "InstitutionRegistry",
        deployer,
        deployer_address,
        config.founder_rating,
        config.founder_licence,
        config.quorum_bps,
        config.voting_period,
    )
    records["InstitutionRegistry"] = _record(registry.address, receipt)
    deploy_block = int(receipt["blockNumber"])

    consent, receipt = chain.deploy("ConsentManager", deployer, registry.address, config.break_glass_duration)
    records["ConsentManager"] = _record(consent.address, receipt)
    ehr, receipt = chain.deploy("EHRIndex", deployer, registry.address, consent.address)
    records["EHRIndex"] = _record(ehr.address, receipt)
    drugs, receipt = chain.deploy("DrugProvenance", deployer, registry.address)
    records["DrugProvenance"] = _record(drugs.address, receipt)

    if config.settlement_token is None:
        token, receipt = chain.deploy("SettlementToken", deployer, deployer_address)
        records["SettlementToken"] = _record(token.address, receipt)
    else:
        records["SettlementToken"] = ContractRecord(Web3.to_checksum_address(config.settlement_token), "", 0)
    claims, receipt = chain.deploy(
        "ClaimsProcessor",
        deployer,
        registry.address,
        consent.address,
        ehr.address,
        drugs.address,
        records["SettlementToken"].address,
    )
    records["ClaimsProcessor"] = _record(claims.address, receipt)

    client = RegistryClient(chain, registry)
    for member in config.founding_members:
        client.bootstrap_member(deployer, member.address, member.kind, member.rating, member.licence_digest)
    if config.end_bootstrap:
        client.end_bootstrap(deployer)

    deployment = Deployment(
        chain_id=chain_id,
        deployer=deployer_address,
        deploy_block=deploy_block,
        deployed_at=int(time.time()),
        abi_source=str(chain.artifacts.directory),
        contracts=records,
        settings={
            "quorum_bps": chain.call(registry.functions.quorumBps()),
            "voting_period": config.voting_period,
        },
    )
    path = manifest_path or default_manifest_path(chain_id)
    deployment.save(path)
    return Suite(chain, deployment)


def _record(address: str, receipt: Any) -> ContractRecord:
    return ContractRecord(
        address=address, tx_hash=receipt["transactionHash"].to_0x_hex(), block=int(receipt["blockNumber"])
    )

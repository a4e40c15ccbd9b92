"""The one deploy path of the suite, and the deployment manifest it writes.

``scripts/deploy.py``, the test fixtures and the ``medchain deploy`` command all call
:func:`deploy_suite`; everything else finds the contracts through the manifest it writes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from medchain.artifacts import Artifacts
from medchain.chain import Chain, Sender
from medchain.claims import ClaimsClient
from medchain.consent import ConsentClient
from medchain.drug import DrugClient
from medchain.ehr import EHRClient
from medchain.errors import ChainError, ConfigurationError, ManifestError
from medchain.registry import RegistryClient
from medchain.store import ContentStore
from medchain.types import Kind

MANIFEST_FORMAT = "medchain-deployment/1"
MANIFEST_DIR = Path("deployments")
LOCAL_CHAIN_IDS = frozenset({31337, 1337})
"""Anvil's and Ganache's chain ids: the only chains where the suite deploys its own test token."""


def default_manifest_path(chain_id: int) -> Path:
    """``deployments/<chain_id>.json`` under the current directory (``$MEDCHAIN_MANIFEST`` overrides)."""
    env = os.environ.get("MEDCHAIN_MANIFEST")
    return Path(env) if env else MANIFEST_DIR / f"{chain_id}.json"


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


@dataclass(frozen=True)
class ContractRecord:
    address: str
    tx_hash: str
    block: int


@dataclass(frozen=True)
class Deployment:
    """A deployed suite, as recorded in its manifest."""

    chain_id: int
    deployer: str
    deploy_block: int
    deployed_at: int
    abi_source: str
    contracts: dict[str, ContractRecord]
    settings: dict[str, Any] = field(default_factory=dict)
    format: str = MANIFEST_FORMAT

    def address_of(self, name: str) -> str:
        try:
            return self.contracts[name].address
        except KeyError:
            raise ManifestError(
                f"the manifest has no {name}; deployed: {', '.join(self.contracts)}"
            ) from None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "manifest") -> Deployment:
        try:
            data = json.loads(text)
            if data.get("format") != MANIFEST_FORMAT:
                raise ManifestError(
                    f"{source} is not a {MANIFEST_FORMAT} manifest (format {data.get('format')!r})"
                )
            contracts = {k: ContractRecord(**v) for k, v in data["contracts"].items()}
            return cls(
                chain_id=int(data["chain_id"]),
                deployer=str(data["deployer"]),
                deploy_block=int(data["deploy_block"]),
                deployed_at=int(data["deployed_at"]),
                abi_source=str(data["abi_source"]),
                contracts=contracts,
                settings=dict(data.get("settings", {})),
            )
        except ManifestError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"{source} is not a readable deployment manifest ({exc})") from exc

    def save(self, path: Path) -> None:
        """Writes the manifest atomically (a crash never leaves half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Deployment:
        if not path.is_file():
            raise ManifestError(
                f"no deployment manifest at {path}; deploy first (`make deploy` or `medchain deploy`)"
            )
        return cls.from_json(path.read_text(), source=str(path))


class Suite:
    """Clients for every contract of a deployment, talking through one :class:`Chain`."""

    def __init__(self, chain: Chain, deployment: Deployment) -> None:
        if chain.chain_id != deployment.chain_id:
            raise ManifestError(
                f"the manifest is for chain {deployment.chain_id} but the node is chain {chain.chain_id}"
            )
        self.chain = chain
        self.deployment = deployment
        self.registry = RegistryClient(
            chain, chain.contract("InstitutionRegistry", deployment.address_of("InstitutionRegistry"))
        )
        self.consent = ConsentClient(
            chain,
            chain.contract("ConsentManager", deployment.address_of("ConsentManager")),
            deployment.deploy_block,
        )
        self.ehr_contract = chain.contract("EHRIndex", deployment.address_of("EHRIndex"))
        self.drugs = DrugClient(
            chain,
            chain.contract("DrugProvenance", deployment.address_of("DrugProvenance")),
            deployment.deploy_block,
        )
        self.token = chain.contract("SettlementToken", deployment.address_of("SettlementToken"))
        self.claims = ClaimsClient(
            chain,
            chain.contract("ClaimsProcessor", deployment.address_of("ClaimsProcessor")),
            self.token,
            deployment.deploy_block,
        )

    def ehr(self, store: ContentStore) -> EHRClient:
        """An EHR client over ``store`` (records are anchored on chain, bytes kept in the store)."""
        return EHRClient(self.chain, self.ehr_contract, store, self.deployment.deploy_block)

    @classmethod
    def from_manifest(cls, w3: Web3, path: Path) -> Suite:
        """Loads a manifest and binds its contracts, reading ABIs from the manifest's ``abi_source``."""
        deployment = Deployment.load(path)
        source = Path(deployment.abi_source)
        if not source.is_absolute():
            source = (path.parent / source).resolve()
        suite = cls(Chain(w3, Artifacts(source)), deployment)
        suite.check_code(str(path))
        return suite

    def check_code(self, source: str = "the manifest") -> None:
        """Checks that every contract of the manifest has code on this chain.

        Raises:
            ManifestError: one line naming the first missing contract: a local chain restarted
                without its state keeps its chain id but forgets every contract.
        """
        names = list(self.deployment.contracts)
        w3 = self.chain.w3
        try:
            with w3.batch_requests() as batch:
                for name in names:
                    batch.add(w3.eth.get_code(Web3.to_checksum_address(self.deployment.address_of(name))))
                codes = batch.execute()
        except Exception as exc:
            raise ChainError(f"could not read contract code from the node ({type(exc).__name__})") from None
        for name, code in zip(names, codes, strict=True):
            if not bytes(code):  # type: ignore[arg-type]
                raise ManifestError(
                    f"no contract code at {self.deployment.address_of(name)} ({name}) on chain "
                    f"{self.deployment.chain_id}: the chain was restarted or reset after {source} was "
                    "written; deploy again (medchain deploy) or start the chain with its saved state"
                )


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
            "quorum_bps": client.chain.call(registry.functions.quorumBps()),
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

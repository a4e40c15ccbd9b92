"""A deployment's clients, bound through one :class:`Chain`: what applications work with."""

from __future__ import annotations

from pathlib import Path

from web3 import Web3

from medchain.artifacts import Artifacts
from medchain.chain import Chain
from medchain.claims import ClaimsClient
from medchain.consent import ConsentClient
from medchain.drug import DrugClient
from medchain.ehr import EHRClient
from medchain.errors import ChainError, ManifestError
from medchain.manifest import Deployment
from medchain.registry import RegistryClient
from medchain.store import ContentStore


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

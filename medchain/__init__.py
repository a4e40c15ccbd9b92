"""MedChain SDK: deploy and drive the MedChain contracts on any EVM node with web3.py."""

from medchain.chain import Chain, connect
from medchain.deploy import Deployment, Suite, SuiteConfig, deploy_suite
from medchain.errors import ContractRevert, MedChainError

__all__ = [
    "Chain",
    "ContractRevert",
    "Deployment",
    "MedChainError",
    "Suite",
    "SuiteConfig",
    "connect",
    "deploy_suite",
]
__version__ = "0.1.0"

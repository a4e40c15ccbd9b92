"""MedChain: a healthcare smart-contract suite and its Python SDK.

The names below are loaded on first use, so that ``import medchain`` (and the CLI's start-up)
stays fast: importing web3 and the clients takes most of a second.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medchain.chain import Chain, connect
    from medchain.deploy import SuiteConfig, deploy_suite
    from medchain.errors import ContractRevert, MedChainError
    from medchain.manifest import Deployment
    from medchain.suite import Suite

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

_HOME = {
    "Chain": "medchain.chain",
    "connect": "medchain.chain",
    "SuiteConfig": "medchain.deploy",
    "deploy_suite": "medchain.deploy",
    "ContractRevert": "medchain.errors",
    "MedChainError": "medchain.errors",
    "Deployment": "medchain.manifest",
    "Suite": "medchain.suite",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(import_module(_HOME[name]), name)
    raise AttributeError(f"module 'medchain' has no attribute {name!r}")
